import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readDataset } from '../../src/core/dataset';
import {
  DATASET_FORMATS,
  datasetFormat,
  labelFileExtensions,
  labelFileExtensionsText,
  labelFileGlob,
  labelFileKind,
} from '../../src/core/datasetFormat';
import { ClipLensError } from '../../src/core/errors';
import type { DatasetFormat } from '../../src/core/types';
import { folderMoveTarget } from '../../src/extension/fixPlan';

const ROOT = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-format-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('each format has its traits: how a label is fixed, whether samples have lines, where the class folder is', () => {
  const formats: DatasetFormat[] = ['class-folders', 'class-folders-split', 'label-file'];
  assert.deepEqual(Object.keys(DATASET_FORMATS).sort(), [...formats].sort());
  for (const f of formats) assert.equal(datasetFormat(f).format, f);
  assert.deepEqual(
    formats.map((f) => [datasetFormat(f).fix, datasetFormat(f).samplesHaveLines, datasetFormat(f).classFolderIndex, datasetFormat(f).hasLabelFile]),
    [
      ['move-to-folder', false, 0, false],
      ['move-to-folder', false, 1, false],
      ['change-label', true, null, true],
    ],
  );
  // The class folder index is what the move target uses.
  assert.equal(folderMoveTarget('cat/sub/x.jpg', 'class-folders', 'cat', 'dog'), 'dog/x.jpg');
  assert.equal(folderMoveTarget('train/cat/x.jpg', 'class-folders-split', 'cat', 'dog'), 'train/dog/x.jpg');
  assert.throws(() => folderMoveTarget('x.jpg', 'label-file', 'cat', 'dog'), /fixed by changing its label/);
});

test('label-file extensions: one list, case-insensitive; messages, dialogs and selectors come from it', () => {
  assert.deepEqual(labelFileExtensions(), ['csv', 'tsv', 'jsonl', 'ndjson']);
  assert.equal(labelFileKind('a/LABELS.NDJSON'), 'jsonl');
  assert.equal(labelFileKind('a.Tsv'), 'tsv');
  assert.equal(labelFileKind('a.txt'), undefined);
  assert.equal(labelFileKind('a.constructor'), undefined);
  assert.equal(labelFileKind('csv'), undefined);
  assert.equal(labelFileExtensionsText(), '.csv, .tsv, .jsonl or .ndjson');
  assert.equal(labelFileGlob(), '**/*.{csv,tsv,jsonl,ndjson,CSV,TSV,JSONL,NDJSON}');
});

test('the refusal of a non-label file names every accepted extension (.ndjson was read but left out of the message)', async () => {
  const file = path.join(tmp, 'labels.txt');
  fs.writeFileSync(file, 'image,label\n');
  await assert.rejects(readDataset(file), (e: unknown) => e instanceof ClipLensError && e.message.includes('.csv, .tsv, .jsonl or .ndjson'));
});

test("package.json's when clauses offer Evaluate Label File on exactly the descriptor's extensions", () => {
  const manifest = fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8');
  const lists = [...manifest.matchAll(/resourceExtname =~ \/\^\\\\\.\(([a-z|]+)\)\$\/i/g)].map((m) => m[1]!.split('|'));
  assert.ok(lists.length >= 2, 'the explorer and editor-title menus');
  for (const l of lists) assert.deepEqual(l, labelFileExtensions());
});

test('no dataset-format name is compared outside the descriptor and the readers that produce it', () => {
  const hits: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && rel !== 'src/core/datasetFormat.ts') {
        fs.readFileSync(path.join(ROOT, rel), 'utf8').split('\n').forEach((line, i) => {
          if (/[!=]==?\s*'(label-file|class-folders|class-folders-split)'/.test(line)) hits.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
      }
    }
  };
  walk('src');
  walk('webview');
  assert.deepEqual(hits, []);
});
