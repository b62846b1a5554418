/**
 * The zero-shot head's row summary inside ONNX Runtime (onnxMatMul.ts zeroShotSummaryModelBytes, zeroShot.ts
 * zeroShotSummaryBlock) against the full head's probabilities reduced in JavaScript (summaryOfProbabilities), bit for
 * bit, with exact ties (duplicated class embeddings) on the label, before and after it, and in the top-k.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdZeroShotSummary, releaseZeroShotSummary, summaryOfProbabilities, zeroShotBlock, zeroShotSummaryBlock, topKIndices } from '../../src/core/zeroShot';
import { tiedProblem } from './zeroShotFixtures';
import { onnxZeroShotSummary } from '../../src/core/onnxMatMul';

/** A tiedProblem (rows near a class every third) with labels: on a duplicated pair (either member), or anywhere. */
function problem(seed: number, m: number, k: number, dim: number, dups: number) {
  const { classes, images, rand } = tiedProblem(seed, m, k, dim, dups, 3);
  const labels = BigInt64Array.from({ length: m }, (_, r) => BigInt(r % 4 === 0 ? 2 * Math.floor(rand() * dups) + (r % 8 === 0 ? 1 : 0) : Math.floor(rand() * k)));
  return { classes, images, labels };
}

test('the summary computed in ONNX Runtime equals the full head reduced in JavaScript, ties included', async () => {
  for (const [m, k, dim, t] of [[4096, 60, 32, 5], [1500, 1000, 16, 5], [700, 7, 64, 10]] as const) {
    const { classes, images, labels } = problem(m + k, m, k, dim, Math.min(10, Math.floor(k / 2)));
    const inside = await zeroShotSummaryBlock(images, m, classes, 30, labels, t, 'onnx');
    assert.ok(inside, 'ONNX Runtime loads here');
    const probs = await zeroShotBlock(images, m, classes, 30, 'onnx');
    const outside = summaryOfProbabilities(probs, m, k, labels, t);
    assert.deepEqual(inside, outside, `m=${m} k=${k} t=${t}`);
    // The ties are really there: some label ties another class.
    let tiedLabels = 0;
    for (let r = 0; r < m; r++) {
      const p = probs.subarray(r * k, (r + 1) * k);
      const l = Number(labels[r]);
      if (p.some((v, j) => j !== l && v === p[l])) tiedLabels++;
    }
    assert.ok(tiedLabels > m / 10, `tied labels: ${tiedLabels}`);
  }
});

test('summaryOfProbabilities: top-k as topKIndices, the first maximum, the label\'s rank as metrics.ts counts it', () => {
  const p = Float32Array.of(0.1, 0.3, 0.3, 0.2, 0.1, 0.0, 0.0);
  const labels = BigInt64Array.of(2n);
  const s = summaryOfProbabilities(p, 1, 7, labels, 3);
  assert.deepEqual(Array.from(s.topClasses), topKIndices(p, 3));
  assert.deepEqual(Array.from(s.topClasses), [1, 2, 3]);
  assert.equal(s.argmax[0], 1, 'the first of equal maxima');
  assert.equal(s.self[0], Math.fround(0.3));
  assert.equal(s.rank[0], 0, 'class 1 ties before the label: not ahead; nothing after it is as large');
  const s1 = summaryOfProbabilities(p, 1, 7, BigInt64Array.of(1n), 3);
  assert.equal(s1.rank[0], 1, 'class 2 ties after the label: counted ahead (metrics.ts rowPassUnit)');
  const s5 = summaryOfProbabilities(p, 1, 7, BigInt64Array.of(5n), 9);
  assert.equal(s5.t, 7);
  assert.equal(s5.rank[0], 6, 'five larger, and class 6 ties after it');
});

test('blocks below the ONNX work threshold, or the js engine, get no summary from ONNX Runtime (the caller reduces the full head)', async () => {
  const { classes, images, labels } = problem(3, 10, 8, 16, 2);
  assert.equal(await zeroShotSummaryBlock(images, 10, classes, 30, labels, 5, 'auto'), null);
  assert.equal(await zeroShotSummaryBlock(images, 10, classes, 30, labels, 5, 'js'), null);
});

test('the summary session released after a pass is made again on its next use, with the same results', async () => {
  const { classes, images, labels } = problem(9, 4096, 40, 16, 5);
  const first = await zeroShotSummaryBlock(images, 4096, classes, 30, labels, 5, 'onnx');
  await releaseZeroShotSummary();
  await releaseZeroShotSummary(); // twice: nothing left to release, no error
  const again = await zeroShotSummaryBlock(images, 4096, classes, 30, labels, 5, 'onnx');
  assert.ok(first && again);
  assert.deepEqual(again, first);
});

test('two passes at once (two models): one letting go of the summary session does not release it under the other; runs in flight finish first', async () => {
  const { classes, images, labels } = problem(10, 4096, 40, 16, 5);
  const expected = await zeroShotSummaryBlock(images, 4096, classes, 30, labels, 5, 'onnx');
  const a = holdZeroShotSummary();
  const b = holdZeroShotSummary();
  const head = await onnxZeroShotSummary();
  assert.ok(head);
  // A runs a block while B lets go: the session stays for A, and A's runs are whole.
  const inFlight = zeroShotSummaryBlock(images, 4096, classes, 30, labels, 5, 'onnx');
  await b();
  await b(); // letting go twice counts once
  assert.equal(await onnxZeroShotSummary(), head, 'still the same session: A holds it');
  assert.deepEqual(await inFlight, expected);
  // A run in flight when A lets go: the release waits for it; then a head kept across the release runs on a new session.
  const transposed = new Float32Array(16 * 40);
  for (let c = 0; c < 40; c++) for (let j = 0; j < 16; j++) transposed[j * 40 + c] = classes.matrix[c * 16 + j] as number;
  const last = head.run(images, 4096, 16, transposed, 40, 30, labels, 5);
  await a();
  assert.deepEqual(await last, expected);
  assert.notEqual(await onnxZeroShotSummary(), head, 'released once nobody held it: a new session');
  assert.deepEqual(await head.run(images, 4096, 16, transposed, 40, 30, labels, 5), expected, 'a head kept across the release still runs');
});
