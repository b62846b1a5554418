/**
 * The zero-shot head with cleanlab's confident count inside ONNX Runtime (onnxMatMul.ts zeroShotScanModelBytes,
 * zeroShot.ts zeroShotScanBlock) against the full head's probabilities counted in JavaScript: the same probabilities
 * bit for bit, and per row the count of classes reaching their cut and (when one does) which, as labelIssues.ts
 * rowScanUnit decides it on float32 patterns: cuts exactly at a value, at 0 (every class), above every value (none).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { releaseZeroShotScan, scanOfProbabilities, zeroShotBlock, zeroShotScanBlock } from '../../src/core/zeroShot';
import { tiedProblem } from './zeroShotFixtures';

/** A tiedProblem with rows near a class every second. */
function problem(seed: number, m: number, k: number, dim: number, dups: number) {
  return tiedProblem(seed, m, k, dim, dups, 2);
}

/** Per row: confident count and first confident class on float32 patterns (rowScanUnit's comparison). */
function reference(probs: Float32Array, m: number, k: number, cut: Float32Array): { count: number[]; first: number[] } {
  const bits = new Int32Array(probs.buffer, probs.byteOffset, m * k);
  const cutBits = new Int32Array(cut.buffer, cut.byteOffset, k);
  const count: number[] = [];
  const first: number[] = [];
  for (let r = 0; r < m; r++) {
    let c = 0;
    let f = -1;
    for (let j = 0; j < k; j++) if ((bits[r * k + j] as number) >= (cutBits[j] as number) && c++ === 0) f = j;
    count.push(c);
    first.push(f);
  }
  return { count, first };
}

test('the confident count computed in ONNX Runtime equals the full head counted in JavaScript: cuts at a value, 0 and above every value', async () => {
  const seen = new Set<number>();
  for (const [m, k, dim] of [[4096, 60, 32], [1500, 1000, 16], [700, 7, 64]] as const) {
    const { classes, images, rand } = problem(m + k, m, k, dim, Math.min(10, Math.floor(k / 2)));
    const probs = await zeroShotBlock(images, m, classes, 30, 'onnx');
    // Per class a cut exactly at one of its values (a row of that value is confident, by equality), the last one
    // above every value (Infinity: cleanlab's threshold of a class without rows); then also a class at 0 (every row).
    const cut = Float32Array.from({ length: k }, (_, j) => probs[Math.floor(rand() * m) * k + j] as number);
    cut[k - 1] = Infinity;
    const zero = cut.slice();
    zero[1] = 0;
    const withZero = await zeroShotScanBlock(images, m, classes, 30, zero, false, 'onnx');
    assert.deepEqual(withZero.confident, scanOfProbabilities(probs, m, k, zero));
    assert.ok(withZero.confident.every((v, q) => q % 2 === 1 || v >= 1), 'a cut at 0: every row has a confident class');
    const inside = await zeroShotScanBlock(images, m, classes, 30, cut, true, 'onnx');
    assert.deepEqual(inside.probs, probs, 'the same probabilities, bit for bit');
    assert.deepEqual(inside.confident, scanOfProbabilities(probs, m, k, cut), `m=${m} k=${k}`);
    const ref = reference(probs, m, k, cut);
    for (let r = 0; r < m; r++) {
      assert.equal(inside.confident[2 * r], ref.count[r], `row ${r}: count`);
      if (ref.count[r] === 1) assert.equal(inside.confident[2 * r + 1], ref.first[r], `row ${r}: the confident class`);
    }
    // Without the probabilities: the same counts.
    const countsOnly = await zeroShotScanBlock(images, m, classes, 30, cut, false, 'onnx');
    assert.equal(countsOnly.probs, null);
    assert.deepEqual(countsOnly.confident, inside.confident);
    // Cuts above every value: no row has a confident class.
    const none = await zeroShotScanBlock(images, m, classes, 30, new Float32Array(k).fill(2), false, 'onnx');
    assert.ok(none.confident.every((v) => v === 0));
    // The cases are there: a value exactly at its class's cut, rows with one and with several confident classes.
    let atCut = 0;
    for (let r = 0; r < m; r++) for (let j = 0; j < k; j++) if (probs[r * k + j] === cut[j]) atCut++;
    assert.ok(atCut >= k - 1, `values at their cut: ${atCut}`);
    for (let r = 0; r < m; r++) seen.add(Math.min(3, inside.confident[2 * r] as number));
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3], 'rows without a confident class, with one, two and more');
});

test('a cut exactly at a value makes it confident; the next float32 up does not; a single confident class is named', async () => {
  const p = Float32Array.of(0.1, 0.3, 0.3, 0.2, 0.1, 0.0, 0.0, 0.5, 0.25, 0.25);
  const next = (x: number) => {
    const f = Float32Array.of(x);
    const b = new Int32Array(f.buffer);
    b[0] = (b[0] as number) + 1;
    return f[0] as number;
  };
  const cut = Float32Array.of(0.1, next(0.3), next(0.3), 0.2, 0.1);
  const s = scanOfProbabilities(p, 2, 5, cut);
  // Row 0 (0.1, 0.3, 0.3, 0.2, 0.1): classes 0, 3 and 4 (each at its cut; 0.3 is below the next float32 up).
  // Row 1 (0, 0, 0.5, 0.25, 0.25): classes 2, 3 and 4.
  assert.deepEqual(Array.from(s), [3, 0 + 3 + 4, 3, 2 + 3 + 4]);
  const one = scanOfProbabilities(p, 2, 5, Float32Array.of(1, 1, 0.5, 1, 1));
  assert.deepEqual(Array.from(one), [0, 0, 1, 2], 'row 1: class 2 alone (at its cut)');
});

test('blocks below the ONNX work threshold, or the js engine, are counted in JavaScript from the full head', async () => {
  const { classes, images } = problem(3, 10, 8, 16, 2);
  const cut = new Float32Array(8).fill(0.1);
  for (const engine of ['auto', 'js'] as const) {
    const probs = await zeroShotBlock(images, 10, classes, 30, engine);
    const s = await zeroShotScanBlock(images, 10, classes, 30, cut, true, engine);
    assert.deepEqual(s.probs, probs);
    assert.deepEqual(s.confident, scanOfProbabilities(probs, 10, 8, cut));
  }
});

test('the scan session, released after pass 2 (its memory arena), is made again on the next use with the same results', async () => {
  const { classes, images } = problem(5, 4096, 60, 32, 4);
  const cut = new Float32Array(60).fill(0.02);
  const before = await zeroShotScanBlock(images, 4096, classes, 30, cut, true, 'onnx');
  await releaseZeroShotScan();
  await releaseZeroShotScan(); // twice: nothing to release
  const after = await zeroShotScanBlock(images, 4096, classes, 30, cut, true, 'onnx');
  assert.deepEqual(after, before);
});
