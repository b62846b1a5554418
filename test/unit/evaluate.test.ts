/**
 * evaluateDataset's pipeline in-process with the fixture model: prompts embedded while the first images are decoded
 * and the vision session is created, images finished before the prompts held and finished afterwards, a failing
 * text tower stopping the run with its own error, and the same answers cold, warm and with the model kept loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluateDataset } from '../../src/core/evaluate';
import { ClipModel } from '../../src/core/runtime';
import { CancelledError, ClipLensError } from '../../src/core/errors';
import type { EvalReport } from '../../src/core/report';
import { DEFAULT_WARNING_THRESHOLDS } from '../../src/core/warnings';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

/** A small class-folder dataset: the first `perClass` images of four example classes, in a temporary folder. */
function smallDataset(perClass: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-eval-'));
  for (const cls of ['blue_circle', 'green_square', 'red_star', 'yellow_triangle']) {
    fs.mkdirSync(path.join(dir, cls));
    for (const f of fs.readdirSync(path.join(EXAMPLE, cls)).sort().slice(0, perClass)) fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, cls, f));
  }
  return dir;
}

/** Files of a class-folder dataset as class/name, sorted. */
function listFiles(dir: string): string[] {
  return fs.readdirSync(dir).flatMap((c) => fs.readdirSync(path.join(dir, c)).map((f) => `${c}/${f}`)).sort();
}

/** What must not depend on how the run was scheduled. */
function answers(r: EvalReport) {
  return { samples: r.samples, metrics: r.metrics, labelIssues: r.labelIssues, warnings: r.warnings, errors: r.errors };
}

test('cold, warm, kept-loaded and prompts-last runs give the same report; timings say what ran', async (t) => {
  const dataset = smallDataset(12);
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-eval-cache-'));
  t.after(() => {
    fs.rmSync(dataset, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });

  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const cold = await evaluateDataset(dataset, { model, cacheDir: cache, batchSize: 8 });
  const n = cold.samples!.length;
  assert.equal(n, listFiles(dataset).length);
  // Content hashes: a duplicate's second copy may come from the cache its first copy filled.
  const distinct = new Set(cold.samples!.map((s) => s.contentHash)).size;
  assert.equal(cold.timing.imagesComputed + cold.timing.imagesFromCache, n);
  assert.ok(cold.timing.imagesComputed >= distinct);
  assert.ok((cold.timing.sessionMs ?? 0) > 0, 'the vision session was created in this run');
  assert.ok(cold.timing.imagesPerSecond > 0);
  assert.ok(cold.samples!.every((s) => s.predicted.length === 4 && /^[0-9a-f]{64}$/.test(s.contentHash ?? '')));

  const warm = await evaluateDataset(dataset, { model, cacheDir: cache, batchSize: 8 });
  assert.equal(warm.timing.imagesComputed, 0);
  assert.equal(warm.timing.imagesFromCache, n);
  assert.deepEqual(answers(warm), answers(cold));

  // The report records the warning thresholds it was evaluated with (the bands of every view follow them).
  assert.deepEqual(cold.thresholds, DEFAULT_WARNING_THRESHOLDS);
  const strict = await evaluateDataset(dataset, { model, cacheDir: cache, batchSize: 8, projectConfig: { warnings: { goodAccuracy: 0.99, recallAtK: { k: 2, min: 0.95 } } } });
  assert.deepEqual(strict.thresholds, { ...DEFAULT_WARNING_THRESHOLDS, goodAccuracy: 0.99, recallAtK: { k: 2, min: 0.95 } });

  // No cache, session kept from the first run: nothing to create, everything inferred again, same answers.
  const kept = await evaluateDataset(dataset, { model, cacheDir: null, batchSize: 8 });
  assert.equal(kept.timing.sessionMs, 0);
  assert.equal(kept.timing.imagesComputed, n);
  assert.ok(kept.timing.imagesPerSecond > 0);
  assert.deepEqual(answers(kept), answers(cold));

  // Prompts slower than the images: every image waits for the class embeddings, then is finished the same way.
  const slow = await ClipModel.load(MODEL);
  t.after(() => slow.dispose());
  const embedTexts = slow.embedTexts.bind(slow);
  let imagesBeforePrompts = 0;
  const embedImages = slow.embedImages.bind(slow);
  let promptsDone = false;
  slow.embedImages = async (pixels, count) => {
    if (!promptsDone) imagesBeforePrompts += count;
    return embedImages(pixels, count);
  };
  slow.embedTexts = async (texts) => {
    await new Promise((r) => setTimeout(r, 1500));
    const out = await embedTexts(texts);
    promptsDone = true;
    return out;
  };
  const late = await evaluateDataset(dataset, { model: slow, cacheDir: null, batchSize: 8, probabilities: true });
  assert.ok(imagesBeforePrompts > 0, 'some images were inferred before the prompts were ready');
  assert.deepEqual(answers({ ...late, samples: late.samples!.map(({ probabilities, ...s }) => s) }), answers(cold));
  assert.ok(late.samples!.every((s) => s.probabilities?.length === 4 && Math.abs(s.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5));
});

test('a text tower that cannot load stops the run with its own error, naming the file', async (t) => {
  const dataset = smallDataset(30);
  const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-broken-text-'));
  t.after(() => {
    fs.rmSync(dataset, { recursive: true, force: true });
    fs.rmSync(modelDir, { recursive: true, force: true });
  });
  fs.cpSync(MODEL, modelDir, { recursive: true });
  // A valid graph that is not a text tower (the vision graph): the model folder check passes, the text session is
  // refused when it is created, while images are already being decoded and inferred.
  fs.copyFileSync(path.join(modelDir, 'onnx/vision_model.onnx'), path.join(modelDir, 'onnx/text_model.onnx'));
  const model = await ClipModel.load(modelDir);
  t.after(() => model.dispose());
  let inferred = 0;
  const embedImages = model.embedImages.bind(model);
  model.embedImages = async (pixels, count) => {
    inferred += count;
    return embedImages(pixels, count);
  };
  await assert.rejects(evaluateDataset(dataset, { model, cacheDir: null, batchSize: 4 }), (e: unknown) => {
    assert.ok(e instanceof ClipLensError, String(e));
    assert.equal(e.code, 'model-bad-graph');
    assert.match(e.message, /text_model\.onnx/);
    return true;
  });
  assert.ok(inferred < 120, `the run stopped early (${inferred} of 120 images inferred)`);
});

test('a cancelled run rejects with CancelledError and keeps the dataset untouched', async (t) => {
  const dataset = smallDataset(30);
  t.after(() => fs.rmSync(dataset, { recursive: true, force: true }));
  const before = listFiles(dataset);
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const controller = new AbortController();
  const run = evaluateDataset(dataset, {
    model,
    cacheDir: null,
    batchSize: 4,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.phase === 'images') controller.abort();
    },
  });
  await assert.rejects(run, (e: unknown) => e instanceof CancelledError);
  assert.deepEqual(listFiles(dataset), before);
});
