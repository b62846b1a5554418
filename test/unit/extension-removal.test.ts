/**
 * "Remove <file> from the <split> split" (removalModel.ts, labelEdits.ts dropRecordEdit, fixes.ts removeFromSplit):
 * which images it is offered for, what it does per dataset format (class folders: a move into `.clip-lens-removed/`;
 * label files: the record deleted), the confirmation's text, nothing done when the user says no, and Undo Last Fix
 * putting the image back. Runs against the fake 'vscode'.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EvalReport } from '../../src/core/report';
import { HOLDING_FOLDER, removalCandidates, removalConfirmation, removalPlan, removalTitle } from '../../src/extension/removalModel';
import { dropRecordEdit, LabelEditError } from '../../src/extension/labelEdits';
import { FixError } from '../../src/extension/fixPlan';
import { createFakeVscode, installFakeVscode } from './extension-fakeVscode';

let work: string;
let fake: ReturnType<typeof createFakeVscode>;
let uninstall: () => void;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-removal-'));
  fake = createFakeVscode(work);
  uninstall = installFakeVscode(fake.vscode);
});

after(() => {
  uninstall();
  fs.rmSync(work, { recursive: true, force: true });
});

/** A split class-folder report: train/cat/a.png leaked into test/cat/copy.png; test/dog/d1.png and d2.png duplicates. */
function splitReport(root: string): EvalReport {
  const samples = [
    { path: 'train/cat/a.png', label: 'cat', split: 'train' },
    { path: 'train/dog/b.png', label: 'dog', split: 'train' },
    { path: 'test/cat/copy.png', label: 'cat', split: 'test' },
    { path: 'test/dog/d1.png', label: 'dog', split: 'test' },
    { path: 'test/dog/d2.png', label: 'dog', split: 'test' },
  ].map((s) => ({ ...s, predicted: [] }));
  return {
    dataset: { root, format: 'class-folders-split', classes: ['cat', 'dog'], splits: ['test', 'train'], counts: {} },
    samples,
    labelIssues: [],
    errors: [],
    warnings: [],
    duplicates: [
      { kind: 'exact', paths: ['train/cat/a.png', 'test/cat/copy.png'], splits: ['train', 'test'], labels: ['cat', 'cat'], similarity: 1 },
      { kind: 'near', paths: ['test/dog/d1.png', 'test/dog/d2.png'], splits: ['test', 'test'], labels: ['dog', 'dog'], similarity: 0.97 },
    ],
    leakage: [{ split: 'test', earlier: ['train'], paths: ['test/cat/copy.png'], copies: ['train/cat/a.png'], metricsWithoutLeaked: null }],
  } as unknown as EvalReport;
}

test('candidates: the later copy of a leaked image, and each member of a duplicate group within a split', () => {
  const r = splitReport('/data');
  assert.deepEqual(removalCandidates(r), [
    { samplePath: 'test/cat/copy.png', split: 'test', reason: 'leaked', copy: 'train/cat/a.png' },
    { samplePath: 'test/dog/d1.png', split: 'test', reason: 'duplicate', copy: 'test/dog/d2.png' },
    { samplePath: 'test/dog/d2.png', split: 'test', reason: 'duplicate', copy: 'test/dog/d1.png' },
  ]);
  // The earliest copy of a leak is not offered: removing it would keep the leak's other copy in test.
  assert.ok(!removalCandidates(r).some((c) => c.samplePath === 'train/cat/a.png'));
  assert.equal(removalTitle('test/cat/copy.png', 'test'), "Remove copy.png from the 'test' split");
  assert.equal(removalTitle('cat/copy.png', undefined), 'Remove copy.png from the dataset');
});

test('plan per format: class folders move into .clip-lens-removed/ under the same path; label files drop the record', () => {
  const r = splitReport('/data');
  assert.deepEqual(removalPlan(r, 'test/cat/copy.png'), { kind: 'move', samplePath: 'test/cat/copy.png', split: 'test', to: `${HOLDING_FOLDER}/test/cat/copy.png` });
  assert.throws(() => removalPlan(r, 'test/cat/nope.png'), FixError);
  const c = removalConfirmation(removalPlan(r, 'test/cat/copy.png'), removalCandidates(r)[0]);
  assert.equal(c.message, "Remove test/cat/copy.png from the 'test' split?");
  assert.match(c.detail, /copy of train\/cat\/a\.png, which stays in the earlier split/);
  assert.match(c.detail, /moved to \.clip-lens-removed\/test\/cat\/copy\.png inside the dataset/);
  assert.match(c.detail, /Nothing is deleted/);
  assert.match(c.detail, /Undo Last Fix/);
  assert.equal(c.button, 'Remove');

  const labels = {
    ...r,
    dataset: { ...r.dataset, format: 'label-file', labelFile: '/data/labels.csv' },
    samples: r.samples!.map((s, i) => ({ ...s, source: { file: 'labels.csv', line: i + 2 } })),
  } as unknown as EvalReport;
  const plan = removalPlan(labels, 'test/cat/copy.png');
  assert.deepEqual(plan, { kind: 'drop-record', samplePath: 'test/cat/copy.png', split: 'test', labelFile: path.resolve('/data/labels.csv'), line: 4 });
  const lc = removalConfirmation(plan);
  assert.match(lc.detail, /Line 4 of labels\.csv \(its record\) will be deleted from the label file; the image file itself stays/);
  assert.match(lc.detail, /Ctrl\+Z in labels\.csv/);
});

test('dropRecordEdit deletes exactly the record of a line: CSV, CRLF, a quoted field over two lines, the last line, JSONL', () => {
  const apply = (text: string, e: { offset: number; length: number; text: string }) => text.slice(0, e.offset) + e.text + text.slice(e.offset + e.length);
  const csv = 'image,label,split\na.png,cat,train\ncopy.png,cat,test\nb.png,dog,test\n';
  assert.equal(apply(csv, dropRecordEdit(csv, 'csv', 3, 'cat')), 'image,label,split\na.png,cat,train\nb.png,dog,test\n');
  const crlf = csv.replace(/\n/g, '\r\n');
  assert.equal(apply(crlf, dropRecordEdit(crlf, 'csv', 3, 'cat')), 'image,label,split\r\na.png,cat,train\r\nb.png,dog,test\r\n');
  const last = 'image,label\na.png,cat\nb.png,dog';
  assert.equal(apply(last, dropRecordEdit(last, 'csv', 3, 'dog')), 'image,label\na.png,cat\n');
  const quoted = 'image,label,note\na.png,cat,"two\nlines"\nb.png,dog,x\n';
  assert.equal(apply(quoted, dropRecordEdit(quoted, 'csv', 2, 'cat')), 'image,label,note\nb.png,dog,x\n');
  const tsv = 'image\tlabel\na.png\tcat\nb.png\tdog\n';
  assert.equal(apply(tsv, dropRecordEdit(tsv, 'tsv', 2, 'cat')), 'image\tlabel\nb.png\tdog\n');
  const jsonl = '{"image": "a.png", "label": "cat"}\n{"image": "b.png", "label": "dog"}\n';
  assert.equal(apply(jsonl, dropRecordEdit(jsonl, 'jsonl', 1, 'cat')), '{"image": "b.png", "label": "dog"}\n');
  // The file changed since the evaluation: refused, naming what is there now.
  assert.throws(() => dropRecordEdit(csv, 'csv', 3, 'dog'), (e: Error) => e instanceof LabelEditError && /now 'cat', not 'dog'/.test(e.message));
  assert.throws(() => dropRecordEdit(csv, 'csv', 9, 'cat'), LabelEditError);
});

async function setup(name: string, report: (root: string) => EvalReport, files: Record<string, string>) {
  const root = path.join(work, name);
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), content);
  }
  const { ReportStore } = require('../../src/extension/store') as typeof import('../../src/extension/store');
  const { Fixes } = require('../../src/extension/fixes') as typeof import('../../src/extension/fixes');
  const log = fake.vscode.window.createOutputChannel() as never;
  const store = new ReportStore(undefined, log);
  store.set({ root, target: root, report: report(root), gate: null, config: {}, configFile: path.join(root, '.clip-lens.json'), modelChoice: {} as never, stale: false, resolved: new Map() });
  return { root, store, fixes: new Fixes(store, log), result: store.get(root)! };
}

test('class folders: "no" changes nothing; "Remove" moves the image into .clip-lens-removed/ as one undo step; Undo Last Fix moves it back', async () => {
  const files = Object.fromEntries(splitReport('').samples!.map((s) => [s.path, s.path]));
  const { root, store, fixes, result } = await setup('folders', splitReport, files);
  const asked: string[] = [];
  const edits = fake.state.appliedEdits.length;
  assert.equal(await fixes.removeFromSplit(result, 'test/cat/copy.png', async (q) => (asked.push(q.message), false)), undefined);
  assert.deepEqual(asked, ["Remove test/cat/copy.png from the 'test' split?"]);
  assert.ok(fs.existsSync(path.join(root, 'test/cat/copy.png')), 'declined: the image stays');
  assert.equal(fake.state.appliedEdits.length, edits);
  assert.equal(fixes.history.size, 0);

  const message = await fixes.removeFromSplit(result, 'test/cat/copy.png', async () => true);
  assert.equal(message, `Moved copy.png to ${HOLDING_FOLDER}/ (out of the 'test' split)`);
  assert.ok(!fs.existsSync(path.join(root, 'test/cat/copy.png')));
  assert.equal(fs.readFileSync(path.join(root, HOLDING_FOLDER, 'test/cat/copy.png'), 'utf8'), 'test/cat/copy.png', 'moved, not deleted');
  assert.equal(fixes.history.last?.kind, 'move');
  assert.equal(fixes.history.last?.label, "Remove copy.png from the 'test' split");
  assert.equal(store.get(root)!.resolved.get('test/cat/copy.png'), 'removed');

  assert.equal(await fixes.undoLast(), "Moved copy.png back to 'cat'");
  assert.equal(fs.readFileSync(path.join(root, 'test/cat/copy.png'), 'utf8'), 'test/cat/copy.png');
  assert.ok(!fs.existsSync(path.join(root, HOLDING_FOLDER, 'test/cat/copy.png')));
  assert.equal(store.get(root)!.resolved.has('test/cat/copy.png'), false);

  // A removed copy of the same name already in the holding folder: refused before asking, nothing moved.
  fs.mkdirSync(path.join(root, HOLDING_FOLDER, 'test/dog'), { recursive: true });
  fs.writeFileSync(path.join(root, HOLDING_FOLDER, 'test/dog/d1.png'), 'older');
  asked.length = 0;
  await assert.rejects(fixes.removeFromSplit(result, 'test/dog/d1.png', async (q) => (asked.push(q.message), true)), /already exists/);
  assert.deepEqual(asked, []);
  assert.ok(fs.existsSync(path.join(root, 'test/dog/d1.png')));
  fixes.dispose();
});

test('label file: "Remove" deletes the image\'s line as a text edit recorded in the fix history; the image file stays', async () => {
  const csv = 'image,label,split\ntrain/cat/a.png,cat,train\ntrain/dog/b.png,dog,train\ntest/cat/copy.png,cat,test\ntest/dog/d1.png,dog,test\ntest/dog/d2.png,dog,test\n';
  const report = (root: string) => {
    const r = splitReport(root);
    return {
      ...r,
      dataset: { ...r.dataset, format: 'label-file', labelFile: path.join(root, 'labels.csv') },
      samples: r.samples!.map((s, i) => ({ ...s, source: { file: 'labels.csv', line: i + 2 } })),
    } as unknown as EvalReport;
  };
  const files: Record<string, string> = { 'labels.csv': csv, 'test/cat/copy.png': 'img' };
  const { root, fixes, result } = await setup('labels', report, files);
  let detail = '';
  const message = await fixes.removeFromSplit(result, 'test/cat/copy.png', async (q) => ((detail = q.detail), true));
  assert.equal(message, "Removed line 4 of labels.csv (copy.png, out of the 'test' split); the image file stays");
  assert.match(detail, /Line 4 of labels\.csv/);
  const doc = fake.state.documents.find((d) => d.uri.fsPath === path.join(root, 'labels.csv'))!;
  assert.equal(doc.getText(), csv.replace('test/cat/copy.png,cat,test\n', ''));
  assert.ok(fs.existsSync(path.join(root, 'test/cat/copy.png')), 'the image file is untouched');
  assert.equal(fixes.history.last?.kind, 'text');
  assert.equal(fixes.history.last?.label, "Remove copy.png from the 'test' split");
  // The report's line is stale now (the file changed): the next removal finds the image's current line.
  assert.equal(await fixes.removeFromSplit(result, 'test/dog/d2.png', async () => true), "Removed line 5 of labels.csv (d2.png, out of the 'test' split); the image file stays");
  fixes.dispose();
});

test('a removed image\'s leakage and duplicate diagnostics go at once and come back on undo; the Duplicates node offers the removal', async () => {
  const withWarnings = (root: string) => {
    const r = splitReport(root);
    return {
      ...r,
      warnings: [
        { kind: 'leakage', severity: 'error', split: 'test', message: "1 image of 'test' has a copy in 'train'", numbers: {} },
        { kind: 'duplicate', severity: 'warning', paths: ['test/dog/d1.png', 'test/dog/d2.png'], message: '2 images are near-copies', numbers: {} },
      ],
    } as unknown as EvalReport;
  };
  const files = Object.fromEntries(splitReport('').samples!.map((s) => [s.path, s.path]));
  const { root, store, fixes, result } = await setup('diagnostics', withWarnings, files);
  const { DiagnosticsManager } = require('../../src/extension/diagnostics') as typeof import('../../src/extension/diagnostics');
  const manager = new DiagnosticsManager(store, () => ({ labelIssueWarningScore: 0.05, maxProblems: 300 }) as never, fake.vscode.Uri.file(root) as never);
  const settle = async () => {
    await manager.refresh(root);
    await new Promise((r) => setImmediate(r));
  };
  const published = () => {
    const map = fake.state.diagnostics.get('clipLens.dataset')!;
    return [...map.entries()]
      .filter(([, d]) => d.length > 0)
      .map(([file, d]) => `${path.relative(root, file).split(path.sep).join('/')}:${d.map((x) => (x as unknown as { code: { value: string } | string }).code).map((c) => (typeof c === 'string' ? c : c.value)).join(',')}`)
      .sort();
  };
  await settle();
  assert.deepEqual(published(), ['test/cat/copy.png:leakage', 'test/dog/d1.png:duplicate', 'test/dog/d2.png:duplicate']);

  // The Duplicates node's images: the removal is offered for the candidates only.
  const { DatasetsTree } = require('../../src/extension/trees/datasets') as typeof import('../../src/extension/trees/datasets');
  const engine = { onDidChangeRunning: new fake.vscode.EventEmitter().event, runningStates: [], runningState: () => undefined };
  const tree = new DatasetsTree(store, engine as never, {} as never);
  const dupImages = () =>
    tree
      .getChildren({ kind: 'duplicates', root } as never)
      .flatMap((g) => tree.getChildren(g))
      .map((n) => tree.getTreeItem(n))
      .map((item) => `${item.label}:${item.contextValue}`);
  const offered = dupImages();
  // The menu hands the node to the command, which finds the image from it (as it does for a class's image).
  const { sampleFrom } = require('../../src/extension/commands') as typeof import('../../src/extension/commands');
  const node = tree.getChildren({ kind: 'duplicates', root } as never).flatMap((g) => tree.getChildren(g)).find((n) => tree.getTreeItem(n).label === 'test/cat/copy.png')!;
  assert.equal(sampleFrom(store, node, undefined)?.samplePath, 'test/cat/copy.png');
  assert.ok(offered.includes('test/cat/copy.png:clipLens.image.removable'), offered.join(' '));
  assert.ok(offered.includes('train/cat/a.png:clipLens.image'), 'the earlier copy of a leak is not offered');

  await fixes.removeFromSplit(result, 'test/cat/copy.png', async () => true);
  await settle();
  assert.deepEqual(published(), ['test/dog/d1.png:duplicate', 'test/dog/d2.png:duplicate'], 'the leaked copy\'s diagnostic went with it');
  assert.ok(dupImages().includes('test/cat/copy.png:clipLens.image'), 'no second removal offered');
  await fixes.removeFromSplit(result, 'test/dog/d2.png', async () => true);
  await settle();
  assert.deepEqual(published(), [], 'd1 has no copy left: no duplicate diagnostic either');

  await fixes.undoLast();
  await settle();
  assert.deepEqual(published(), ['test/dog/d1.png:duplicate', 'test/dog/d2.png:duplicate']);
  await fixes.undoLast();
  await settle();
  assert.deepEqual(published(), ['test/cat/copy.png:leakage', 'test/dog/d1.png:duplicate', 'test/dog/d2.png:duplicate']);
  manager.dispose();
  fixes.dispose();
});
