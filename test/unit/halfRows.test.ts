/**
 * Image rows handed to the zero-shot graphs as float16 patterns and float32 scales (issue 15: no decoding on the
 * JavaScript thread): EmbeddingRows.copyHalfRows reads back what copyRows decodes, and the head, summary and scan
 * graphs given the float16 form give the same values, bit for bit, as given the decoded float32 rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddingRows } from '../../src/core/duplicates';
import { floatRows, zeroShotBlock, zeroShotScanBlock, zeroShotSummaryBlock, type ClassEmbeddings, type HalfBlock } from '../../src/core/zeroShot';
import { halfValues } from '../../src/core/probabilities';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** m random float16 rows of width dim (normal and subnormal patterns, both signs), each with its float32 normalising scale. */
function halfBlock(rand: () => number, m: number, dim: number): HalfBlock {
  const table = halfValues();
  const bits = Uint16Array.from({ length: m * dim }, (_, j) => (j % 97 === 3 ? Math.floor(rand() * 0x400) : Math.floor(rand() * 0x3c00)) | (rand() < 0.5 ? 0x8000 : 0));
  const scales = new Float32Array(m);
  for (let r = 0; r < m; r++) {
    let sq = 0;
    for (let j = r * dim; j < (r + 1) * dim; j++) sq += (table[bits[j] as number] as number) ** 2;
    scales[r] = Math.fround(1 / Math.sqrt(sq));
  }
  return { bits, scales };
}

function classes(rand: () => number, k: number, dim: number): ClassEmbeddings {
  const matrix = new Float32Array(k * dim);
  for (let c = 0; c < k; c++) {
    let sq = 0;
    for (let j = 0; j < dim; j++) sq += (matrix[c * dim + j] = rand() * 2 - 1) ** 2;
    for (let j = 0; j < dim; j++) matrix[c * dim + j] = (matrix[c * dim + j] as number) / Math.sqrt(sq);
  }
  return { matrix, dim, computed: 0, ms: 0 };
}

test('EmbeddingRows: float16 rows with float32 scales read back as patterns and scales (copyHalfRows) decode to copyRows bit for bit; another scale or a float32 row ends it', () => {
  const rand = lcg(7);
  const dim = 24;
  const n = 2500; // three chunks, the last partial
  const block = halfBlock(rand, n, dim);
  const decoded = floatRows(block, n, dim);
  const rows = new EmbeddingRows(n);
  for (let i = 0; i < n; i++) {
    if (i % 301 === 9) continue; // no embedding
    rows.set(i, decoded.subarray(i * dim, (i + 1) * dim), { bits: block.bits.slice(i * dim, (i + 1) * dim), scale: block.scales[i] as number });
  }
  assert.equal(rows.halfBlocks, true);
  for (const [start, end] of [[0, n], [1000, 2100], [17, 18], [2047, 2500]] as const) {
    const bits = new Uint16Array((end - start) * dim);
    const scales = new Float32Array(end - start);
    rows.copyHalfRows(start, end, bits, scales);
    assert.deepEqual(floatRows({ bits, scales }, end - start, dim), rows.copyRows(start, end, new Float32Array((end - start) * dim)), `rows ${start} .. ${end}`);
  }
  // A row whose scale is not a float32 value (its float16 form still matches it): kept as float16, not as float16 blocks.
  const table = halfValues();
  const bits = block.bits.slice(0, dim);
  const scale = 1 / 3;
  rows.set(9, Float32Array.from(bits, (h) => (table[h] as number) * scale), { bits, scale });
  assert.equal(rows.isHalf, true);
  assert.equal(rows.halfBlocks, false);
  assert.throws(() => rows.copyHalfRows(0, 1, new Uint16Array(dim), new Float32Array(1)), /not float16 rows with float32 scales/);
  // A row given as its float16 form alone (what the clip-retrieval reader hands on): kept as it is; once the store
  // holds float32 rows, decoded.
  const alone = new EmbeddingRows(3);
  alone.set(0, null, { bits: block.bits.slice(0, dim), scale: block.scales[0] as number, exact: true });
  assert.ok(alone.halfBlocks);
  assert.deepEqual(alone.copyRows(0, 1, new Float32Array(dim)), decoded.subarray(0, dim));
  alone.set(1, decoded.subarray(dim, 2 * dim)); // float32: the store turns to float32
  alone.set(2, null, { bits: block.bits.slice(2 * dim, 3 * dim), scale: block.scales[2] as number, exact: true });
  assert.equal(alone.isHalf, false);
  assert.deepEqual(alone.copyRows(0, 3, new Float32Array(3 * dim)), decoded.subarray(0, 3 * dim));
  assert.throws(() => alone.set(0, null, { bits: block.bits.slice(0, dim), scale: 1 }), /needs an exact float16 form/);
});

test('the zero-shot head, summary and scan graphs given float16 rows and scales = given the decoded float32 rows, bit for bit (and the JavaScript fallback)', async () => {
  const rand = lcg(11);
  for (const [m, k, dim] of [[4096, 300, 64], [1200, 1000, 32]] as const) {
    const block = halfBlock(rand, m, dim);
    const rowsF = floatRows(block, m, dim);
    const cls = classes(rand, k, dim);
    const viaHalf = await zeroShotBlock(block, m, cls, 100, 'onnx');
    const viaFloat = await zeroShotBlock(rowsF, m, cls, 100, 'onnx');
    assert.equal(viaHalf.length, m * k);
    assert.deepEqual(viaHalf, viaFloat, `head ${m} x ${k}`);
    // A block's first rows of a larger buffer (what a partly filled block hands over).
    const wider: HalfBlock = { bits: new Uint16Array((m + 5) * dim), scales: new Float32Array(m + 5) };
    wider.bits.set(block.bits);
    wider.scales.set(block.scales);
    assert.deepEqual(await zeroShotBlock(wider, m, cls, 100, 'onnx'), viaFloat);
    const labels = BigInt64Array.from({ length: m }, () => BigInt(Math.floor(rand() * k)));
    const sumHalf = await zeroShotSummaryBlock(block, m, cls, 100, labels, 5, 'onnx');
    const sumFloat = await zeroShotSummaryBlock(rowsF, m, cls, 100, labels, 5, 'onnx');
    assert.ok(sumHalf && sumFloat);
    assert.deepEqual(sumHalf, sumFloat, `summary ${m} x ${k}`);
    const cut = Float32Array.from({ length: k }, (_, j) => viaFloat[Math.floor(rand() * m) * k + j] as number);
    const scanHalf = await zeroShotScanBlock(block, m, cls, 100, cut, true, 'onnx');
    const scanFloat = await zeroShotScanBlock(rowsF, m, cls, 100, cut, true, 'onnx');
    assert.deepEqual(scanHalf, scanFloat, `scan ${m} x ${k}`);
    assert.deepEqual(scanHalf.probs, viaFloat);
    // JavaScript: the float16 block decoded the same way.
    assert.deepEqual(await zeroShotBlock(block, 40, cls, 100, 'js'), await zeroShotBlock(rowsF.subarray(0, 40 * dim), 40, cls, 100, 'js'));
  }
});
