/**
 * The blocked zero-shot product (issue 15, item 6): ONNX Runtime's MatMul + Softmax against the float64 JavaScript
 * row-by-row path, and the evaluation's store handing its probabilities to the metrics in place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topKIndices, zeroShotBlock, zeroShotProbabilities, ZERO_SHOT_ONNX_MIN_WORK, type ClassEmbeddings } from '../../src/core/zeroShot';
import { PerSampleStore, scoreAll } from '../../src/core/evaluate';
import { EmbeddingRows } from '../../src/core/duplicates';
import { onnxZeroShot } from '../../src/core/onnxMatMul';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

function unitRows(rand: () => number, n: number, dim: number): Float32Array {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const v = rand() * 2 - 1;
      out[i * dim + j] = v;
      s += v * v;
    }
    for (let j = 0; j < dim; j++) out[i * dim + j] /= Math.sqrt(s);
  }
  return out;
}

function classes(rand: () => number, k: number, dim: number): ClassEmbeddings {
  return { matrix: unitRows(rand, k, dim), dim, computed: 0, ms: 0 };
}

test('zeroShotBlock on ONNX Runtime equals the float64 JavaScript softmax within float32 rounding; same top-1', async () => {
  assert.ok(await onnxZeroShot(), 'onnxruntime-node loads here');
  const rand = lcg(7);
  const dim = 64;
  const k = 37;
  const m = 300;
  const cls = classes(rand, k, dim);
  const images = unitRows(rand, m, dim);
  const js = await zeroShotBlock(images, m, cls, 100, 'js');
  const ort = await zeroShotBlock(images, m, cls, 100, 'onnx');
  assert.equal(ort.length, m * k);
  let worst = 0;
  let top1Same = 0;
  for (let i = 0; i < m; i++) {
    const a = js.subarray(i * k, (i + 1) * k);
    const b = ort.subarray(i * k, (i + 1) * k);
    let sum = 0;
    for (let c = 0; c < k; c++) {
      worst = Math.max(worst, Math.abs(a[c] - b[c]) / Math.max(a[c], 1e-30));
      sum += b[c];
    }
    assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i} sums to ${sum}`);
    if (topKIndices(a, 1)[0] === topKIndices(b, 1)[0]) top1Same++;
    // The JavaScript block is exactly the per-row function.
    assert.deepEqual(a, zeroShotProbabilities(images.subarray(i * dim, (i + 1) * dim), cls, 100));
  }
  // logits of up to 100 with float32 dot products: relative error of a probability about 1e-5 at most.
  assert.ok(worst < 1e-4, `worst relative difference ${worst}`);
  assert.equal(top1Same, m);
  // 'auto' picks JavaScript for small products (bit-identical to before) and ONNX Runtime for large ones.
  assert.ok(m * k * dim < ZERO_SHOT_ONNX_MIN_WORK);
  assert.deepEqual(await zeroShotBlock(images, m, cls, 100), js);
});

test('scoreAll: blocks of rows with gaps (samples without an embedding) score every embedded sample, ONNX Runtime as JavaScript', async () => {
  const rand = lcg(11);
  const dim = 16;
  const k = 9;
  const n = 9000; // three product spans of 4,096 rows, the last partial
  const cls = classes(rand, k, dim);
  const emb = unitRows(rand, n, dim);
  const rows = new EmbeddingRows(n);
  const skipped = (i: number) => i % 7 === 3 || (i >= 2048 && i < 3072); // a whole EmbeddingRows block missing too
  for (let i = 0; i < n; i++) if (!skipped(i)) rows.set(i, emb.subarray(i * dim, (i + 1) * dim));
  const viaJs = new PerSampleStore(n, k, 1000);
  const viaOrt = new PerSampleStore(n, k, 1000);
  await scoreAll(rows, cls, 50, viaJs, undefined, 'js');
  await scoreAll(rows, cls, 50, viaOrt, undefined, 'onnx');
  for (let i = 0; i < n; i++) {
    assert.equal(viaJs.hasProbabilities[i], skipped(i) ? 0 : 1, `sample ${i}`);
    assert.equal(viaOrt.hasProbabilities[i], viaJs.hasProbabilities[i]);
    if (skipped(i)) continue;
    const expected = zeroShotProbabilities(emb.subarray(i * dim, (i + 1) * dim), cls, 50);
    assert.deepEqual(viaJs.probabilities(i), expected);
    const got = viaOrt.probabilities(i);
    for (let c = 0; c < k; c++) assert.ok(Math.abs(got[c] - expected[c]) <= 1e-5 * Math.max(expected[c], 1e-3), `sample ${i} class ${c}: ${got[c]} vs ${expected[c]}`);
  }
});

test('PerSampleStore.toMatrix: the chosen rows, in order, in place over several chunks, as a shared ProbabilityMatrix', () => {
  const n = 50;
  const k = 3;
  const store = new PerSampleStore(n, k, 7 * k); // 7 rows per chunk
  const rowOf = (i: number) => [i / 1000, (i + 1) / 1000, 1 - (2 * i + 1) / 1000];
  const chosen: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 3 === 1) continue; // never scored (a failed image)
    store.probabilities(i).set(rowOf(i));
    store.hasProbabilities[i] = 1;
    if (i % 5 !== 0) chosen.push(i); // scored but not evaluated (a label that is not a class)
  }
  const m = store.toMatrix(chosen);
  assert.equal(m.length, chosen.length);
  assert.equal(m.numClasses, k);
  assert.equal(m.rowsPerChunk, 7);
  assert.equal(m.inSharedMemory, typeof SharedArrayBuffer === 'function');
  chosen.forEach((i, r) => assert.deepEqual(Array.from(m.row(r)), Array.from(Float32Array.from(rowOf(i))), `row ${r} = sample ${i}`));
  assert.throws(() => store.probabilities(0), /after toMatrix/);
  assert.equal(new PerSampleStore(4, 2).toMatrix([]).length, 0);
});
