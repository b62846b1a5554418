/**
 * Results while running (evaluate.ts onProvisional): provisional reports come as batches finish, over growing counts,
 * marked provisional and from zero-shot; they change nothing in the final report; a cancelled run keeps what it
 * embedded in the cache, so the next run infers only the rest (counted at the model's embedImages).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluateDataset, interleaveByLabel } from '../../src/core/evaluate';
import { executeRun, planRun } from '../../src/core/run';
import { ClipModel } from '../../src/core/runtime';
import { CancelledError } from '../../src/core/errors';
import type { EvalReport } from '../../src/core/report';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');
/** A provisional report after every batch (the default rules wait a second between them). */
const EVERY_BATCH = { everyMs: 0, maxShare: 1, minSamples: 8, samplesPerClass: 0 };

function copyExample(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-live-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const cls of fs.readdirSync(EXAMPLE, { withFileTypes: true }).filter((d) => d.isDirectory())) fs.cpSync(path.join(EXAMPLE, cls.name), path.join(dir, cls.name), { recursive: true });
  return dir;
}

/** Everything but when it ran and how long it took. */
function answers(r: EvalReport) {
  const { createdAt, timing, ...rest } = r;
  return rest;
}

test('provisional reports come with increasing counts, from zero-shot over the images done; the final report is unchanged', async (t) => {
  const dataset = copyExample(t);
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const plain = await evaluateDataset(dataset, { model, cacheDir: null, batchSize: 16 });
  const seen: EvalReport[] = [];
  const live = await evaluateDataset(dataset, { model, cacheDir: null, batchSize: 16, onProvisional: (r) => seen.push(r), provisionalRules: EVERY_BATCH });
  const n = plain.samples!.length;
  assert.ok(seen.length >= 5, `${seen.length} provisional reports`);
  assert.deepEqual(answers(live), answers(plain));
  assert.equal(live.provisional, undefined);
  let before = 0;
  for (const r of seen) {
    const p = r.provisional!;
    assert.ok(p && p.total === n && p.done > before && p.done <= n, JSON.stringify(p));
    before = p.done;
    assert.equal(p.cancelled, undefined);
    // Metrics over the samples scored so far; their label issues only; nothing that needs every sample.
    const scored = r.samples!.filter((s) => s.predicted.length > 0).length;
    assert.ok(scored <= p.done);
    assert.equal(r.dataset.counts.evaluated, scored);
    assert.equal(r.metrics!.perClass.reduce((a, c) => a + c.support, 0), scored);
    for (const i of r.labelIssues) assert.ok(r.samples![i.index].predicted.length > 0, `issue on a sample not done: ${i.path}`);
    assert.equal(r.predictor?.used, 'zero-shot');
    assert.match(r.predictor!.reason, /provisional/);
    assert.deepEqual(r.duplicates, []);
    assert.equal(r.createdAt, live.createdAt, 'one run, one identity (the panel keeps its selections)');
  }
  // The classes in turn: the first report already covers every class (the folders are listed one class after another).
  const firstClasses = new Set(seen[0].samples!.filter((s) => s.predicted.length > 0).map((s) => s.label));
  assert.equal(firstClasses.size, plain.dataset.classes.length, `${[...firstClasses].join(', ')} in the first report`);
  // The last covers every image (shown while the predictor and duplicates are computed); label issues appear early.
  assert.equal(seen[seen.length - 1].provisional!.done, n);
  assert.ok(seen.some((r) => r.labelIssues.length > 0 && r.provisional!.done < n), 'label issues before the end');
  // Reports handed over are snapshots: the run does not change them afterwards.
  assert.ok(seen[0].samples!.some((s) => s.predicted.length === 0));
  assert.notEqual(seen[0].samples!, live.samples!);
});

test('a cancelled run keeps what it embedded in the cache: the next run infers only the rest', async (t) => {
  const dataset = copyExample(t);
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-live-cache-'));
  t.after(() => fs.rmSync(cache, { recursive: true, force: true }));
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  let inferred = 0;
  const embedImages = model.embedImages.bind(model);
  model.embedImages = async (pixels, count) => {
    inferred += count;
    return embedImages(pixels, count);
  };
  const plan = await planRun({ target: dataset, cacheDir: cache, batchSize: 8 });
  const controller = new AbortController();
  const seen: EvalReport[] = [];
  // executeRun, as the editor calls it; cancelled at the second provisional report.
  const run = executeRun(plan, {
    model,
    signal: controller.signal,
    onProvisional: (r) => {
      seen.push(r);
      if (seen.length === 2) controller.abort();
    },
  });
  await assert.rejects(run, (e: unknown) => e instanceof CancelledError);
  assert.ok(seen.length >= 2);
  const n = plan.dataset.samples.length;
  const firstRun = inferred;
  assert.ok(firstRun > 0 && firstRun < n, `${firstRun} of ${n} inferred before the cancel`);
  // After the cancel, one last provisional view covers everything embedded (the batch in flight included).
  const last = seen[seen.length - 1].provisional!;
  assert.ok(last.done >= seen[1].provisional!.done);

  inferred = 0;
  const again = await evaluateDataset(dataset, { model, cacheDir: cache, batchSize: 8 });
  assert.equal(again.timing.imagesComputed, inferred);
  assert.equal(again.timing.imagesComputed + again.timing.imagesFromCache, n);
  // Everything the cancelled run inferred came from the cache (exact copies in the dataset may add hits).
  assert.ok(again.timing.imagesFromCache >= firstRun, `${again.timing.imagesFromCache} from the cache, ${firstRun} inferred before`);
  assert.ok(inferred <= n - firstRun, `re-run inferred ${inferred}, the rest is ${n - firstRun}`);
});

test('interleaveByLabel: a permutation with the labels in turn, each label in its order', () => {
  const labels = ['a', 'a', 'a', 'a', 'b', 'c', 'c', 'a'];
  const order = interleaveByLabel(labels.map((label, i) => ({ path: `${i}.png`, label })));
  assert.deepEqual(order, [0, 4, 5, 1, 6, 2, 3, 7]);
  assert.deepEqual(interleaveByLabel([]), []);
  // Many small classes and one large: linear, every index once.
  const many = Array.from({ length: 200_000 }, (_, i) => ({ path: String(i), label: i < 100_000 ? 'big' : `c${i % 5000}` }));
  const o = interleaveByLabel(many);
  assert.equal(o.length, many.length);
  assert.equal(new Set(o).size, many.length);
});
