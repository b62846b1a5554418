/**
 * The per-class bucket tables of the AP counting (retrieval.ts: each class's buckets span its own lowest to highest
 * positive): every edge of the table against a plain AP counted the slow way, compared bit for bit, held and
 * streamed, whole and subset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import { averagePrecisionByClass, bucketing, selfScorePatterns, StreamingAveragePrecision } from '../../src/core/retrieval';
import { rng } from '../fixtures/rng';

const bitsOf = (x: number): number => new Int32Array(new Float32Array([x]).buffer)[0];
const floatOf = (p: number): number => new Float32Array(new Int32Array([p]).buffer)[0];

/**
 * AP the slow way, in the order the product sums it: for each distinct positive score u_1 > u_2 > ... count the
 * samples scoring >= u_t by a full scan, then AP = sum_t (tp_t/P - tp_{t-1}/P) * tp_t / retrieved_t.
 */
function slowAveragePrecision(scores: Float32Array, positive: boolean[]): number | null {
  const pos = scores.filter((_, i) => positive[i]);
  if (pos.length === 0) return null;
  const distinct = [...new Set(pos)].sort((a, b) => b - a);
  let ap = 0;
  let tp = 0;
  for (const u of distinct) {
    const prevRecall = tp / pos.length;
    tp += pos.filter((x) => x === u).length;
    const retrieved = scores.filter((x) => x >= u).length;
    ap += (tp / pos.length - prevRecall) * (tp / retrieved);
  }
  return ap;
}

/** Positive values and other (negative) candidate values of one class, as float32 bit patterns. */
interface Scenario {
  name: string;
  positives: number[];
  others: number[];
}

const range = (from: number, count: number, step = 1): number[] => Array.from({ length: count }, (_, i) => from + i * step);

function scenarios(rand: () => number): Scenario[] {
  const p = bitsOf(0.001);
  const q = bitsOf(0.25);
  const cluster = (at: number, size: number) => range(bitsOf(at), size, 2);
  return [
    // Positives a few patterns apart: shift 0, every sample below, between, equal to or above them.
    { name: 'narrow', positives: range(p, 40, 3), others: range(p - 6, 140) },
    // Positives spanning 2^30 patterns and more (subnormal 1e-40 .. 2): shift stays 18; a cluster of 300 crowds one bucket.
    {
      name: 'octaves',
      positives: [bitsOf(1e-40), bitsOf(1e-30), bitsOf(1e-20), bitsOf(1e-10), bitsOf(0.5), bitsOf(1), bitsOf(2), ...range(q, 300)],
      others: [0, 1, bitsOf(1e-40) - 1, bitsOf(1e-38), bitsOf(1e-30) - 1, bitsOf(1e-30) + 1, bitsOf(1e-10), bitsOf(0.75), bitsOf(2) + 1, bitsOf(3), ...range(q - 3, 310)],
    },
    // One positive: one bucket; samples equal, one pattern below and above, and far away.
    { name: 'one', positives: [bitsOf(0.3)], others: [0, bitsOf(0.3), bitsOf(0.3) - 1, bitsOf(0.3) + 1, bitsOf(1e-20), bitsOf(1)] },
    // Clusters of 1 .. 12 distinct scores in buckets of 2^shift patterns: the 3-compare path and searches of 4 .. 12.
    {
      name: 'crowded',
      positives: [bitsOf(1e-4), bitsOf(0.9), ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].flatMap((s, i) => cluster(0.002 * (i + 1) ** 2, s))],
      others: [0, bitsOf(1e-5), bitsOf(0.95), ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].flatMap((s, i) => range(bitsOf(0.002 * (i + 1) ** 2) - 2, 2 * s + 4))],
    },
    // Zero and the smallest subnormal as positives: zero-valued samples tie with the lowest.
    { name: 'zero', positives: [0, 1, bitsOf(1e-3)], others: [0, 0, 1, 2, bitsOf(1e-3)] },
    // Near-uniform softmax-like values: many positives within two octaves.
    {
      name: 'near-uniform',
      positives: range(0, 400).map(() => bitsOf(0.001 * Math.exp(rand() - 0.5))),
      others: range(0, 400).map(() => bitsOf(0.001 * Math.exp(2 * rand() - 1))),
    },
  ];
}

/** A matrix where class c follows scenario c % scenarios: each positive value once as a positive, plus random rows. */
function build(seed: number, k: number, extraRows: number) {
  const rand = rng(seed);
  const all = scenarios(rand);
  const pick = (xs: number[]) => xs[Math.floor(rand() * xs.length)];
  const value = (c: number, positive: boolean): number => {
    const s = all[c % all.length];
    return floatOf(positive || rand() < 0.2 ? pick(s.positives) : pick(s.others));
  };
  const rows: { label: number; row: number[] }[] = [];
  const addRow = (label: number, own?: number) => {
    const row = Array.from({ length: k }, (_, c) => value(c, c === label));
    if (own !== undefined) row[label] = floatOf(own);
    rows.push({ label, row });
  };
  for (let c = 0; c < k; c++) for (const v of all[c % all.length].positives) addRow(c, v);
  for (let i = 0; i < extraRows; i++) addRow(Math.floor(rand() * k)); // ties among positives and with the rest
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  const probs = new ProbabilityMatrix(k, { chunkFloats: 97 * k }); // chunks that split the row tiles' 8-row groups
  for (const r of rows) probs.push(r.row);
  return { probs, labels: rows.map((r) => r.label), rand };
}

function assertExact(probs: ProbabilityMatrix, labels: number[], fast: (number | null)[], indices: number[] | undefined, what: string) {
  const rows = indices ?? Array.from({ length: probs.length }, (_, i) => i);
  for (let c = 0; c < probs.numClasses; c++) {
    const scores = Float32Array.from(rows, (i) => probs.row(i)[c]);
    const slow = slowAveragePrecision(scores, rows.map((i) => labels[i] === c));
    assert.equal(fast[c], slow, `${what}, class ${c} (${scenarios(rng(0))[c % 6].name})`);
  }
}

test('bucketing: the finest shift spanning the positives in 256 .. 8192 buckets (4 per score), never coarser than 18', () => {
  const shape = (xs: number[]) => bucketing(Int32Array.from(xs).sort().reverse());
  const p = bitsOf(0.001) & ~0xffff; // bucket-aligned at every shift up to 16
  assert.deepEqual(shape([bitsOf(0.3)]), { shift: 0, base: bitsOf(0.3), buckets: 1 });
  assert.deepEqual(shape([0]), { shift: 0, base: 0, buckets: 1 });
  const many = [...range(p, 2047, 4), p + 8191]; // 2,048 scores: 8,192 buckets
  assert.deepEqual(shape(many), { shift: 0, base: p, buckets: 8192 });
  assert.equal(shape([...range(p, 2047, 4), p + 8192]).shift, 1);
  // 1,024 scores: at most 4,096 buckets
  assert.deepEqual(shape([...range(p, 1023, 8), p + 8191]), { shift: 1, base: p >>> 1, buckets: 4096 });
  const two = shape([p, p + 8191]); // 2 scores: 256 buckets
  assert.equal(two.shift, 5);
  assert.ok(two.buckets <= 256);
  assert.equal(shape(range(0, 2048, bitsOf(1) / 2048)).shift, 17); // 2,048 scores over 2^30 - 2^23 patterns
  assert.equal(shape(range(0, 1024, bitsOf(1) / 1024)).shift, 18); // 1,024 of them: 4,096 buckets would need 19
  assert.deepEqual(shape([0, bitsOf(1e-30), bitsOf(2)]), { shift: 18, base: 0, buckets: 4097 }); // capped: more than 256
  assert.equal(shape([bitsOf(1e-38), bitsOf(3.4e38)]).shift, 18);
  assert.equal(shape([bitsOf(0.5), bitsOf(0.99)]).shift, 15); // one octave (2^23 patterns) in 256 buckets
  assert.equal(shape(range(bitsOf(0.5), 2048, 4095)).shift, 10); // ... in 8,192
  assert.equal(shape(range(bitsOf(0.5), 1024, 8191)).shift, 11); // ... in 4,096
  const octaves = scenarios(rng(0)).find((s) => s.name === 'octaves') as Scenario;
  assert.equal(shape(octaves.positives).shift, 18);
});

test('per-class buckets: held AP equals the slow AP bit for bit (below, above, equal, ties, octaves, one positive, crowded)', () => {
  for (const [seed, k, extra] of [
    [1, 6, 0],
    [2, 12, 301],
    [3, 7, 1000],
  ]) {
    const { probs, labels, rand } = build(seed, k, extra);
    assertExact(probs, labels, averagePrecisionByClass(probs, labels), undefined, `seed ${seed}`);
    const subset = Array.from({ length: probs.length }, (_, i) => i).filter(() => rand() < 0.6);
    assertExact(probs, labels, averagePrecisionByClass(probs, labels, subset), subset, `seed ${seed} subset`);
  }
});

test('per-class buckets: streamed AP (blocks of rows) equals the held and the slow AP bit for bit', () => {
  const { probs, labels, rand } = build(4, 12, 777);
  const self = selfScorePatterns(probs, labels);
  const subset = Array.from({ length: probs.length }, (_, i) => i).filter(() => rand() < 0.7);
  for (const indices of [undefined, subset]) {
    for (const blockRows of [1, 5, 333, 4096]) {
      const acc = new StreamingAveragePrecision(probs.numClasses, labels, self, indices, blockRows);
      for (let first = 0; first < probs.length; first += blockRows) {
        const rows = Array.from({ length: Math.min(blockRows, probs.length - first) }, (_, r) => probs.row(first + r));
        acc.add(ProbabilityMatrix.fromRows(rows, probs.numClasses), first);
      }
      const streamed = acc.result();
      assert.deepEqual(streamed, averagePrecisionByClass(probs, labels, indices), `blocks of ${blockRows}`);
      assertExact(probs, labels, streamed, indices, `streamed, blocks of ${blockRows}`);
    }
  }
});
