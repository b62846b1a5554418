/**
 * Results while running in the editor (fake 'vscode', fixture model): label-issue diagnostics, the trees and the
 * status bar fill in from provisional results before the run ends and are replaced by the final ones; a cancelled
 * run leaves its last provisional result marked "cancelled at N of M", and the next run infers only the rest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import type { EvalReport } from '../../src/core/report';
import { COMMANDS, VIEWS } from '../../src/extension/commandIds';
import { activateExtension, closeExtension, type FakeState } from './extension-fakeVscode';

const root = path.join(__dirname, '..', '..');
const MODEL = process.env.CLIP_LENS_TEST_MODEL ?? path.join(root, 'test', 'fixtures', 'tiny-clip');
const SHAPES: Record<string, { colour: string; shape: 'circle' | 'square' | 'triangle' }> = {
  blue_square: { colour: '#2040d8', shape: 'square' },
  green_triangle: { colour: '#20b030', shape: 'triangle' },
  red_circle: { colour: '#d82020', shape: 'circle' },
};

async function png(file: string, cls: string, variant: number): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const { colour, shape } = SHAPES[cls];
  const r = 22 + (variant % 6) * 3;
  const c = 48 + ((variant * 5) % 9) - 4;
  const body =
    shape === 'circle'
      ? `<circle cx="${c}" cy="${c}" r="${r}" fill="${colour}"/>`
      : shape === 'square'
        ? `<rect x="${c - r}" y="${c - r}" width="${2 * r}" height="${2 * r}" fill="${colour}"/>`
        : `<polygon points="${c},${c - r} ${c + r},${c + r} ${c - r},${c + r}" fill="${colour}"/>`;
  // A different background shade per image: every file has its own content hash.
  const bg = (0xd0 + (variant % 40)).toString(16);
  await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="#${bg}${bg}${bg}"/>${body}</svg>`)).png().toFile(file);
}

let work: string;
let dataset: string;
let state: FakeState;
let api: { evaluate(target: string): Promise<EvalReport | undefined>; reports(): EvalReport[] };
let uninstall: () => void;
let deactivate: () => Promise<void>;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-live-ext-'));
  dataset = path.join(work, 'shapes');
  process.env.CLIP_LENS_MODEL = MODEL;
  process.env.CLIP_LENS_CACHE = path.join(work, 'cache');
  // 3 x 30 images; the first folder (read first) holds red circles: label errors among the first images done.
  let v = 0;
  for (const cls of Object.keys(SHAPES)) for (let i = 0; i < 30; i++) await png(path.join(dataset, cls, `${cls}${String(i).padStart(2, '0')}.png`), cls, v++);
  for (let i = 0; i < 3; i++) await png(path.join(dataset, 'blue_square', `a-wrong${i}.png`), 'red_circle', v++);
  ({ state, api, deactivate, uninstall } = activateExtension(root, work, { 'clipLens.batchSize': 4 }));
});

after(() => closeExtension(deactivate, uninstall, work));

function issueDiagnostics() {
  return [...(state.diagnostics.get('clipLens.labelIssues')?.values() ?? [])].flat();
}

/** Calls `probe` at every turn of the event loop until `done` settles. */
async function watch<T>(done: Promise<T>, probe: () => void): Promise<T> {
  let settled = false;
  const result = done.finally(() => (settled = true));
  while (!settled) {
    probe();
    await new Promise((r) => setImmediate(r));
  }
  return result;
}

/** The message above a tree view (the label issues view says there what its list is from). */
function treeMessage(view: string): string {
  return String((state.treeViews.get(view) as { message?: string }).message ?? '');
}

test('diagnostics and trees fill in before the end, marked provisional, and are replaced by the final ones', async () => {
  const provisional: string[] = [];
  let issueTree = '';
  let tooltip = '';
  const report = await watch(api.evaluate(dataset), () => {
    for (const d of issueDiagnostics()) if (/\(provisional: the evaluation is still running\)$/.test(d.message)) provisional.push(d.message);
    const live = api.reports().find((r) => r.provisional);
    if (live && !issueTree) {
      issueTree = treeMessage(VIEWS.labelIssues);
      tooltip = String(state.statusItems[0]?.tooltip ?? '');
    }
  });
  assert.ok(report && !report.provisional);
  assert.ok(provisional.length > 0, 'label-issue diagnostics appeared before the run ended');
  assert.match(issueTree, /^provisional: \d+ of 93 images$/);
  assert.match(tooltip, /likely label errors? so far \(provisional: \d+ of 93 images\)/);
  // Replaced by the final ones: one per label issue, none marked provisional.
  await new Promise((r) => setTimeout(r, 200));
  const final = issueDiagnostics();
  assert.equal(final.length, report.labelIssues.length);
  assert.ok(final.every((d) => !/provisional/.test(d.message)));
  assert.equal(treeMessage(VIEWS.labelIssues), '');
  assert.deepEqual(api.reports().map((r) => r.createdAt), [report.createdAt]);
});

test('cancelling keeps the last provisional result marked "cancelled at N of M"; the next run infers only the rest', async () => {
  // A fresh cache: this run has everything to infer.
  process.env.CLIP_LENS_CACHE = path.join(work, 'cache2');
  let cancelledAt: number | undefined;
  const outcome = await watch(api.evaluate(dataset), () => {
    const live = api.reports().find((r) => r.provisional && !r.provisional.cancelled);
    if (live && cancelledAt === undefined) {
      cancelledAt = live.provisional!.done;
      void state.commands.get(COMMANDS.cancelEvaluation)!(dataset);
    }
  });
  assert.equal(outcome, undefined, 'the cancelled run returns nothing');
  assert.ok(cancelledAt !== undefined && cancelledAt < 93);
  const [kept] = api.reports();
  assert.ok(kept.provisional?.cancelled, 'the last provisional result stays, marked cancelled');
  const done = kept.provisional!.done;
  assert.ok(done >= cancelledAt! && done < 93, `cancelled at ${done}`);
  assert.equal(treeMessage(VIEWS.labelIssues), `cancelled at ${done} of 93 images`);
  assert.match(state.statusItems[0].text, /\$\(debug-pause\) partial$/);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(issueDiagnostics().every((d) => d.message.endsWith(`(cancelled at ${done} of 93 images)`)));

  const again = await api.evaluate(dataset);
  assert.ok(again && !again.provisional);
  // What the cancelled run embedded came from the cache (its last view counts every image it finished).
  assert.equal(again.timing.imagesFromCache, done);
  assert.equal(again.timing.imagesComputed, 93 - done);
  assert.doesNotMatch(state.statusItems[0].text, /partial/);
});

test('Evaluate Dataset opens the report panel with the first provisional result, before the run ends', async () => {
  process.env.CLIP_LENS_CACHE = path.join(work, 'cache3');
  const before = state.panelsCreated;
  let whileRunning = 0;
  const report = await watch(state.commands.get(COMMANDS.evaluateDataset)!(dataset) as Promise<EvalReport | undefined>, () => {
    if (api.reports().some((r) => r.provisional)) whileRunning = state.panelsCreated - before;
  });
  assert.ok(report && !report.provisional);
  // The fake has no webviews: each attempt to open the panel is counted (and fails, logged).
  assert.ok(whileRunning >= 1, 'the panel was opened while the run went on');
});

test('the store never saves a provisional result: the saved index keeps the result from before the run; a failed run puts it back', async () => {
  const { ReportStore } = require('../../src/extension/store') as typeof import('../../src/extension/store');
  const storage = path.join(work, 'store-test');
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as ConstructorParameters<typeof ReportStore>[1];
  const store = new ReportStore(storage, log);
  const base = api.reports().find((r) => !r.provisional)!;
  const result = (root: string, report: EvalReport) => ({ root, target: root, report: { ...report, dataset: { ...report.dataset, root } }, gate: null, config: {}, configFile: path.join(root, '.clip-lens.json'), modelChoice: { spec: MODEL, baseDir: root, source: 'environment' as const }, stale: false, resolved: new Map() });
  const index = () => JSON.parse(fs.readFileSync(path.join(storage, 'index.json'), 'utf8')) as { root: string; createdAt: string }[];
  const a = path.join(work, 'a');
  const b = path.join(work, 'b');
  const done = result(a, base);
  store.persist(done);
  store.set(done);
  await store.flush();
  // A run of `a` shows provisional results; `b` finishes meanwhile (the index is written again).
  const live = { ...base, createdAt: new Date(Date.parse(base.createdAt) + 1000).toISOString(), provisional: { done: 10, total: 93 } };
  store.set(result(a, live));
  const other = result(b, base);
  store.persist(other);
  store.set(other);
  await store.flush();
  assert.deepEqual(index().map((e) => [e.root, e.createdAt]), [[a, base.createdAt], [b, base.createdAt]]);
  // Cancelled: the provisional view stays in memory, marked; the saved result is still the one from before.
  store.endProvisional(a, 'cancelled');
  assert.equal(store.get(a)!.report.provisional?.cancelled, true);
  store.remove(b);
  await store.flush();
  assert.deepEqual(index().map((e) => [e.root, e.createdAt]), [[a, base.createdAt]]);
  // The next run fails: the result from before the cancelled run comes back.
  store.set(result(a, { ...live, createdAt: new Date(Date.parse(base.createdAt) + 2000).toISOString() }));
  // The cancelled run's provisional view is never "the run before" of a comparison.
  assert.equal(store.previous(a)?.createdAt, base.createdAt);
  store.endProvisional(a, 'failed');
  assert.equal(store.get(a)!.report.createdAt, base.createdAt);
  assert.equal(store.get(a)!.report.provisional, undefined);
  store.dispose();
});
