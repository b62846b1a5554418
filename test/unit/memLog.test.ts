/** Memory phase marks (core/memLog.ts) and releasing a tower mid-run (ClipModel.releaseTower). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { allowFullCollection, formatMemSnapshot, memLogEnabled, memMark, memSnapshot, releaseGarbage, releaseGarbageThoroughly, releaseYoungGarbage } from '../../src/core/memLog';
import { loadModel } from '../../src/core/run';

const MODEL = path.join(__dirname, '../fixtures/tiny-clip');

test('memLogEnabled: on for CLIP_LENS_MEMLOG=1, off when unset, empty or 0', () => {
  assert.equal(memLogEnabled({ CLIP_LENS_MEMLOG: '1' }), true);
  assert.equal(memLogEnabled({}), false);
  assert.equal(memLogEnabled({ CLIP_LENS_MEMLOG: '' }), false);
  assert.equal(memLogEnabled({ CLIP_LENS_MEMLOG: '0' }), false);
});

test('memSnapshot: resident set, peak at least the resident set (Linux), heap and array buffers', () => {
  const hold = new Float64Array(8 << 20); // 64 MiB held while measured
  hold.fill(1);
  const s = memSnapshot('phase x');
  assert.equal(s.phase, 'phase x');
  assert.ok(s.rssMiB > 64, `rss ${s.rssMiB}`);
  assert.ok(s.arrayBuffersMiB >= 64, `arrayBuffers ${s.arrayBuffersMiB}`);
  if (process.platform === 'linux') assert.ok(s.hwmMiB !== null && s.hwmMiB >= s.rssMiB - 1, `hwm ${s.hwmMiB}, rss ${s.rssMiB}`);
  assert.ok(s.heapUsedMiB > 0 && s.heapTotalMiB >= s.heapUsedMiB);
  assert.ok(s.cpuS > 0, `cpu ${s.cpuS}`);
  assert.match(formatMemSnapshot(s), /^\[memlog\] .* rss +\d+ MiB .* cpu \d+\.\d s  phase x$/);
  assert.equal(hold[0], 1);
});

test('memMark: null and silent when CLIP_LENS_MEMLOG is off', () => {
  const before = process.env.CLIP_LENS_MEMLOG;
  delete process.env.CLIP_LENS_MEMLOG;
  try {
    assert.equal(memMark('off'), null);
  } finally {
    if (before !== undefined) process.env.CLIP_LENS_MEMLOG = before;
  }
});

test('ClipModel.releaseTower: the text tower and its tokenizer are released and recreated on next use with the same embeddings', async () => {
  const model = await loadModel({ dir: MODEL, quantized: false }, { threads: 1 });
  try {
    const a = await model.embedTexts(['a photo of a cat.', 'a photo of a dog.']);
    const tokenizer = await model.tokenizer();
    assert.equal(await model.tokenizer(), tokenizer, 'kept while the tower is');
    await model.releaseTower('text');
    assert.notEqual(await model.tokenizer(), tokenizer, 'read again after the release');
    await model.releaseTower('text'); // twice: nothing left to release
    await model.releaseTower('vision'); // never loaded
    const b = await model.embedTexts(['a photo of a cat.', 'a photo of a dog.']);
    assert.equal(b.dim, a.dim);
    assert.deepEqual(Array.from(b.embeddings), Array.from(a.embeddings));
  } finally {
    await model.dispose();
  }
});

test('releaseGarbage: once allowed (the CLI), a full collection frees dropped ArrayBuffers at once', async () => {
  // Whether allowed already depends on what ran before in this process: only the allowed behaviour is asserted.
  allowFullCollection();
  let big: Uint8Array | null = new Uint8Array(256 * 1024 * 1024).fill(1);
  const held = process.memoryUsage().arrayBuffers;
  assert.ok(held >= 256 * 1024 * 1024 && big[12345] === 1);
  big = null;
  assert.equal(releaseGarbage('the test'), true);
  const after = process.memoryUsage().arrayBuffers;
  assert.ok(held - after >= 255 * 1024 * 1024, `freed ${(held - after) / 2 ** 20} MiB`);
});

test('releaseGarbage: many dropped shared buffers (the embedding rows\' chunks), which V8 frees in the background after a full collection, are all given back when it returns', () => {
  allowFullCollection();
  const MiB = 1024 * 1024;
  const before = process.memoryUsage().arrayBuffers;
  let chunks: Uint8Array[] | null = Array.from({ length: 24 }, (_, i) => new Uint8Array(new SharedArrayBuffer(16 * MiB)).fill(i + 1));
  assert.ok(process.memoryUsage().arrayBuffers - before >= 384 * MiB && chunks[23]?.[999] === 24);
  chunks = null;
  assert.equal(releaseGarbage('the test chunks'), true);
  const left = process.memoryUsage().arrayBuffers - before;
  assert.ok(left < 32 * MiB, `${(left / MiB).toFixed(0)} MiB still counted`);
});

test('releaseGarbageThoroughly: memory let go only once a collection has run and the event loop turned (a finalizer\'s held value) is freed by its second collection', async () => {
  allowFullCollection();
  const MiB = 1024 * 1024;
  // A finalization registry holds its held values until their callback has run, in a later task: the pattern of what
  // kept a million rows' memory through one full collection.
  const registry = new FinalizationRegistry<{ chunk: Uint8Array }>(() => undefined);
  const make = () => {
    registry.register({}, { chunk: new Uint8Array(new SharedArrayBuffer(192 * MiB)).fill(1) });
  };
  const before = process.memoryUsage().arrayBuffers;
  make();
  assert.equal(releaseGarbage('the test'), true);
  assert.ok(process.memoryUsage().arrayBuffers - before >= 190 * MiB, 'one collection alone keeps it');
  for (let turn = 0; turn < 3; turn++) {
    await new Promise((r) => setTimeout(r, 0));
    releaseGarbage('the test, again');
  }
  assert.ok(process.memoryUsage().arrayBuffers - before < 8 * MiB, 'collections after a few turns free it');
  make();
  assert.equal(await releaseGarbageThoroughly('the test'), true);
  const left = process.memoryUsage().arrayBuffers - before;
  assert.ok(left < 8 * MiB, `${(left / MiB).toFixed(0)} MiB still counted`);
});

test('releaseYoungGarbage: once allowed, a scavenge frees a dropped young ArrayBuffer (an ONNX Runtime output per block) without a full collection', () => {
  allowFullCollection();
  // 40 blocks of 16 MB, each dropped and a scavenge run (what forEachPackedBlock does): at most the last one is still
  // counted after it (V8's sweeper finishes with the next); left to V8 alone two or three of them were.
  const before = process.memoryUsage().arrayBuffers;
  let most = 0;
  for (let b = 0; b < 40; b++) {
    let block: Float32Array | null = new Float32Array(4 * 1024 * 1024).fill(b);
    assert.equal(block[77], b);
    block = null;
    releaseYoungGarbage();
    most = Math.max(most, process.memoryUsage().arrayBuffers - before);
  }
  assert.ok(most < 24 * 1024 * 1024, `at most ${(most / 2 ** 20).toFixed(0)} MiB left after a scavenge`);
});
