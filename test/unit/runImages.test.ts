/**
 * core/evaluate.ts runImages, the image phase: how far decoding runs ahead of inference. While the vision session is
 * being created, batches are decoded ahead (up to DECODE_AHEAD_IMAGES) on the core that session creation leaves idle;
 * once it is ready, one batch is decoded while the one before it is inferred.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/core/run';
import { DECODE_AHEAD_IMAGES, runImages } from '../../src/core/evaluate';
import type { Dataset } from '../../src/core/types';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

/** The first 3 images of each of the first 4 classes of examples/shapes. */
function exampleDataset(): Dataset {
  const samples: { path: string; label: string }[] = [];
  for (const cls of fs.readdirSync(EXAMPLE, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort().slice(0, 4)) {
    for (const f of fs.readdirSync(path.join(EXAMPLE, cls)).sort().slice(0, 3)) samples.push({ path: `${cls}/${f}`, label: cls });
  }
  return { root: EXAMPLE, format: 'class-folders', classes: [...new Set(samples.map((s) => s.label))], samples, problems: [] };
}

/** A promise with its resolve function. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

/** Resolves once `cond()` holds (checked after each turn of the event loop), or rejects after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function run(dataset: Dataset, batchSize: number, hold: { session: Promise<void>; inference: Promise<void> }, preload = false) {
  const model = await loadModel({ dir: MODEL, quantized: undefined }, { threads: 1 });
  if (preload) await model.prepare({ vision: true });
  // The session (prepare) and each batch's inference wait for the test's gates; the work itself is the real model's.
  const prepare = model.prepare.bind(model);
  const embedImages = model.embedImages.bind(model);
  model.prepare = async (towers) => {
    await hold.session;
    return prepare(towers);
  };
  model.embedImages = async (pixels, count) => {
    await hold.session;
    await hold.inference;
    return embedImages(pixels, count);
  };
  const hashed: number[] = [];
  const computed = new Map<number, number[]>();
  const done = runImages({
    dataset,
    model,
    imageCache: null,
    batchSize,
    onHash: (i) => hashed.push(i),
    onCached: () => assert.fail('no cache'),
    onComputed: (i, e) => computed.set(i, Array.from(e)),
    onFailed: (i, e) => assert.fail(`image ${i}: ${String(e)}`),
    onBatchDone: () => undefined,
  }).finally(() => model.dispose());
  return { hashed, computed, done };
}

test('runImages: while the vision session is being created, batches are decoded ahead (up to DECODE_AHEAD_IMAGES)', async () => {
  const dataset = exampleDataset();
  const n = dataset.samples.length;
  assert.ok(n >= 8 && n <= DECODE_AHEAD_IMAGES, `${n} example images`);
  const session = gate();
  const { hashed, computed, done } = await run(dataset, 2, { session: session.opened, inference: Promise.resolve() });
  // Every image is read and decoded before the session exists (one batch at a time would stop after 2 batches).
  await until(() => hashed.length === n, 20_000, `all ${n} images decoded ahead`);
  assert.equal(computed.size, 0, 'nothing inferred before the session');
  session.open();
  await done;
  assert.deepEqual([...computed.keys()].sort((a, b) => a - b), dataset.samples.map((_, i) => i));
});

test('runImages: once the session is ready, one batch is decoded while the previous one is inferred', async () => {
  const dataset = exampleDataset();
  const inference = gate();
  const { hashed, computed, done } = await run(dataset, 2, { session: Promise.resolve(), inference: inference.opened }, true);
  // Batch 1 waits in inference, batch 2 is decoded and queued behind it; no third batch is decoded.
  await until(() => hashed.length >= 4, 20_000, 'two batches decoded');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(hashed.length, 4, `${hashed.length} images decoded with one batch inferring`);
  inference.open();
  await done;
  assert.equal(computed.size, dataset.samples.length);
});
