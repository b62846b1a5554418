/**
 * The editor on a clip-retrieval folder (issue 15: "the CLI and the extension evaluate a clip-retrieval folder"), at a
 * size where the report's samples are columns (above INLINE_SAMPLES_LIMIT): the extension activated from source on
 * the fake 'vscode' evaluates a folder holding img_emb/ and metadata/ (images not on this machine), and the status
 * bar, the Datasets view (paged), the Label Issues view and the saved report (JSON plus samples sidecar) work from
 * the columnar samples.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EvalReport } from '../../src/core/report';
import { INLINE_SAMPLES_LIMIT, readReportFile, samplesOf } from '../../src/core/reportSamples';
import { loadModel } from '../../src/core/run';
import { embedClassPrompts } from '../../src/core/zeroShot';
import { promptsForClass, resolveTemplates } from '../../src/core/prompts';
import { activateExtension, closeExtension, type FakeState } from './extension-fakeVscode';

const root = path.join(__dirname, '..', '..');
const MODEL = path.join(root, 'test', 'fixtures', 'tiny-clip');
const CLASSES = ['blue_square', 'green_circle', 'red_star'];
/** Enough rows for columnar samples. */
const N = INLINE_SAMPLES_LIMIT + 2_000;

let work: string;
let state: FakeState;
let api: { evaluate(target: string): Promise<EvalReport | undefined>; reports(): EvalReport[] };
let uninstall: () => void;
let deactivate: () => Promise<void>;

/** A float32 .npy of `rows` x `dim`. */
function npy(data: Float32Array, rows: number, dim: number): Buffer {
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  dict = dict.padEnd(128 - 10 - 1, ' ') + '\n';
  const head = Buffer.alloc(128);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt16LE(dict.length, 8);
  head.write(dict, 10, 'latin1');
  return Buffer.concat([head, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-ext-emb-'));
  // Rows near the fixture model's own class embeddings (so zero-shot means something), every 50th in another
  // class's direction (label errors); two shards; paths under a folder that does not exist here.
  const model = await loadModel({ dir: MODEL, quantized: undefined });
  const { templates } = await resolveTemplates(undefined, '.');
  const text = await embedClassPrompts(model, CLASSES.map((c) => promptsForClass(c, templates)), null);
  await model.dispose();
  const dim = text.dim;
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const dir = path.join(work, 'shards');
  fs.mkdirSync(path.join(dir, 'img_emb'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'metadata'), { recursive: true });
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  const half = Math.ceil(N / 2);
  for (const [s, start, end] of [[0, 0, half], [1, half, N]] as const) {
    const rows = end - start;
    const data = new Float32Array(rows * dim);
    const paths: string[] = [];
    for (let r = 0; r < rows; r++) {
      const i = start + r;
      const c = i % CLASSES.length;
      const towards = i % 50 === 1 ? (c + 1) % CLASSES.length : c;
      for (let j = 0; j < dim; j++) data[r * dim + j] = (text.matrix[towards * dim + j] as number) + 0.05 * rand();
      paths.push(`/not-here/photos/${CLASSES[c]}/${i}.jpg`);
    }
    fs.writeFileSync(path.join(dir, 'img_emb', `img_emb_${s}.npy`), npy(data, rows, dim));
    fs.writeFileSync(path.join(dir, 'metadata', `metadata_${s}.parquet`), Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'image_path', data: paths, type: 'STRING' }] })));
  }

  process.env.CLIP_LENS_MODEL = MODEL;
  process.env.CLIP_LENS_CACHE = path.join(work, 'cache');
  ({ state, api, deactivate, uninstall } = activateExtension(root, work, { 'clipLens.releaseModelAfterMinutes': 0 }));
});

after(() => closeExtension(deactivate, uninstall, work));

async function until(what: string, probe: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface TreeProvider {
  getChildren(node?: unknown): unknown[] | Promise<unknown[]>;
  getTreeItem(node: unknown): { label?: unknown; description?: unknown };
}

test(`the editor evaluates a clip-retrieval folder of ${N.toLocaleString('en')} embeddings: columnar samples in the views, status bar and saved report`, async () => {
  const dir = path.join(work, 'shards');
  const report = await api.evaluate(dir);
  assert.ok(report, `evaluated (messages: ${JSON.stringify(state.messages)})`);
  assert.equal(report.embeddings?.rows, N);
  assert.equal(report.embeddings?.shards, 2);
  assert.equal(report.embeddings?.imagesNotOnDisk?.images, N, 'no image of this folder is on disk');
  assert.equal(report.timing.imagesImported, N);
  assert.equal(report.timing.imagesComputed, 0, 'nothing embedded again');
  assert.deepEqual(report.dataset.classes, CLASSES);
  assert.equal(report.samples, undefined, 'above the inline limit the samples are columns');
  const table = samplesOf(report);
  assert.equal(table.length, N);
  assert.equal(table.at(4)?.path, `${CLASSES[1]}/4.jpg`);
  assert.ok((report.metrics?.top1Accuracy ?? 0) > 0.9, `top-1 ${report.metrics?.top1Accuracy}`);
  // The rows sent towards another class (every 50th) are the label issues, the worst first.
  assert.ok(report.labelIssues.length >= N / 50 - 10 && report.labelIssues.length <= N / 50 + 50, `${report.labelIssues.length} label issues`);
  assert.ok(report.labelIssues.slice(0, 100).every((li) => li.index % 50 === 1), 'the planted errors lead');

  // Status bar: the accuracy of this run.
  const status = state.statusItems[0]!;
  assert.ok(status.visible);
  assert.match(status.text, /^\$\(eye\) CLIP \d+(\.\d)?% · worst \w+ \d+(\.\d)?%$/);

  // Datasets view: the dataset, its classes with counts, a class's images paged (not 17,000 nodes at once).
  const datasets = state.treeViews.get('clipLens.datasets')!.treeDataProvider as TreeProvider;
  const top = await datasets.getChildren();
  const node = top.find((n) => (n as { root?: string }).root === dir);
  assert.ok(node, 'the folder is listed');
  const classNodes = (await datasets.getChildren(node)).filter((n) => (n as { kind: string }).kind === 'class');
  assert.deepEqual(classNodes.map((n) => (n as { cls: string }).cls).sort(), CLASSES);
  const images = await datasets.getChildren(classNodes[0]);
  const more = images.at(-1) as { kind: string };
  assert.equal(more.kind, 'more');
  assert.ok(images.length <= 501, `${images.length} children`);

  // Label Issues view: the run's issues, read from the same report.
  const issuesView = state.treeViews.get('clipLens.labelIssues')!.treeDataProvider as TreeProvider;
  const issueRoots = await issuesView.getChildren();
  assert.ok(issueRoots.length > 0, 'the Label Issues view shows the run');

  // The saved report: small JSON, samples in its sidecar, read back whole.
  const indexFile = path.join(work, 'storage', 'reports', 'index.json');
  await until('the saved report', () => fs.existsSync(indexFile) && (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { root: string }[]).some((s) => s.root === dir));
  const saved = (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { root: string; file: string }[]).find((s) => s.root === dir)!;
  const json = JSON.parse(fs.readFileSync(saved.file, 'utf8')) as EvalReport;
  assert.equal(json.samples, undefined);
  assert.ok(json.samplesFile, 'the JSON names its sidecar');
  assert.ok(fs.statSync(saved.file).size < 40 * N, `JSON ${fs.statSync(saved.file).size} bytes for ${N} samples`);
  const back = await readReportFile(saved.file);
  assert.equal(samplesOf(back).length, N);
  assert.deepEqual(samplesOf(back).at(12_345), table.at(12_345));
});
