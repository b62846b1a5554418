import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import { computeMetrics, computeMetricsBySplit, effectiveKs } from '../../src/core/metrics';
import { averagePrecisionByClass } from '../../src/core/retrieval';
import { averagePrecision, precisionRecallAtThreshold, precisionRecallCurve } from './referenceRetrieval';
import { ClipLensError } from '../../src/core/errors';
import { setParallelism, stopHelpers } from '../../src/core/parallel';
import type { Metrics } from '../../src/core/report';
import { rng } from '../fixtures/rng';

interface SklearnFixture {
  name: string;
  classes: string[];
  labels: number[];
  pred_probs: number[][];
  ks: number[];
  indices?: number[];
  expected: Omit<Metrics, 'classes'> & {
    retrieval: {
      class: number;
      curve: { precision: number[]; recall: number[]; thresholds: number[] };
      atThreshold: { threshold: number; precision: number; recall: number; f1: number };
    };
  };
}

const dir = path.join(__dirname, '../fixtures/sklearn');
const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as SklearnFixture);

const TOL = 1e-9;

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= TOL, `${what}: ${actual} vs sklearn ${expected}`);
}

function closeArray(actual: number[], expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) => close(v, expected[i], `${what}[${i}]`));
}

function matrix(rows: number[][], chunkFloats?: number): ProbabilityMatrix {
  const m = new ProbabilityMatrix(rows[0].length, { chunkFloats });
  for (const r of rows) m.push(r);
  return m;
}

test('all eight sklearn fixtures are present', () => {
  assert.deepEqual(
    fixtures.map((f) => f.name).sort(),
    ['balanced', 'empty-class', 'imbalanced', 'k-edge', 'never-predicted', 'split-subset', 'ties', 'two-classes'],
  );
});

for (const fx of fixtures) {
  test(`${fx.name}: computeMetrics equals scikit-learn to 1e-9`, () => {
    const m = computeMetrics({ classes: fx.classes, labels: fx.labels, probs: matrix(fx.pred_probs) }, { ks: fx.ks, indices: fx.indices });
    const e = fx.expected;
    assert.deepEqual(m.classes, fx.classes);
    assert.equal(m.n, e.n);
    close(m.top1Accuracy, e.top1Accuracy, 'top1Accuracy');
    close(m.balancedAccuracy, e.balancedAccuracy, 'balancedAccuracy');
    assert.deepEqual(Object.keys(m.recallAtK), Object.keys(e.recallAtK));
    for (const k of Object.keys(e.recallAtK)) close(m.recallAtK[k], e.recallAtK[k], `Recall@${k}`);
    for (const avg of ['macro', 'weighted'] as const) {
      for (const s of ['precision', 'recall', 'f1'] as const) close(m[avg][s], e[avg][s], `${avg} ${s}`);
    }
    assert.deepEqual(m.confusionMatrix, e.confusionMatrix);
    assert.equal(m.perClass.length, e.perClass.length);
    m.perClass.forEach((pc, c) => {
      const ec = e.perClass[c];
      assert.equal(pc.class, ec.class);
      assert.equal(pc.support, ec.support);
      assert.equal(pc.predicted, ec.predicted);
      for (const s of ['precision', 'recall', 'f1'] as const) close(pc[s], ec[s], `${pc.class} ${s}`);
      assert.deepEqual(Object.keys(pc.recallAtK), Object.keys(ec.recallAtK));
      for (const k of Object.keys(ec.recallAtK)) close(pc.recallAtK[k], ec.recallAtK[k], `${pc.class} Recall@${k}`);
      if (ec.averagePrecision === null) assert.equal(pc.averagePrecision, null, `${pc.class} AP`);
      else close(pc.averagePrecision as number, ec.averagePrecision, `${pc.class} AP`);
    });
  });

  test(`${fx.name}: chunked storage gives identical metrics`, () => {
    const input = { classes: fx.classes, labels: fx.labels };
    const options = { ks: fx.ks, indices: fx.indices };
    const whole = computeMetrics({ ...input, probs: matrix(fx.pred_probs) }, options);
    const chunked = computeMetrics({ ...input, probs: matrix(fx.pred_probs, 3 * fx.classes.length + 1) }, options);
    assert.deepEqual(chunked, whole);
  });

  test(`${fx.name}: one-vs-rest precision/recall curve and threshold point equal scikit-learn`, () => {
    const r = fx.expected.retrieval;
    const rows = fx.indices ? fx.indices.map((i) => fx.pred_probs[i]) : fx.pred_probs;
    const labels = fx.indices ? fx.indices.map((i) => fx.labels[i]) : fx.labels;
    const scores = rows.map((row) => row[r.class]);
    const positives = labels.map((y) => y === r.class);
    const curve = precisionRecallCurve(scores, positives);
    closeArray(curve.precision, r.curve.precision, 'precision');
    closeArray(curve.recall, r.curve.recall, 'recall');
    closeArray(curve.thresholds, r.curve.thresholds, 'thresholds');
    const at = precisionRecallAtThreshold(scores, positives, r.atThreshold.threshold);
    close(at.precision, r.atThreshold.precision, 'precision@t');
    close(at.recall, r.atThreshold.recall, 'recall@t');
    close(at.f1, r.atThreshold.f1, 'f1@t');
    assert.equal(at.tp + at.fn, positives.filter(Boolean).length);
  });
}


test('bucketed averagePrecisionByClass equals the sort-based AP on hard inputs (ties, zeros, tiny values, shared buckets)', () => {
  const rand = rng(7);
  for (let trial = 0; trial < 40; trial++) {
    const k = 2 + Math.floor(rand() * 20);
    const n = 1 + Math.floor(rand() * 400);
    const probs = new ProbabilityMatrix(k, { chunkFloats: 5 * k });
    const labels: number[] = [];
    const kind = trial % 4;
    for (let i = 0; i < n; i++) {
      const row: number[] = [];
      for (let j = 0; j < k; j++) {
        const u = rand();
        if (kind === 0) row.push(Math.floor(u * 4) / 8); // coarse grid: heavy ties
        else if (kind === 1) row.push(u < 0.3 ? 0 : u * 1e-30); // zeros and denormal-ish tiny values
        else if (kind === 2) row.push(0.5 + u * 1e-3); // everything in very few 16-bit buckets
        else row.push(Math.exp(-30 * u));
      }
      probs.push(row);
      labels.push(Math.floor(rand() * k));
    }
    const indices = trial % 3 === 0 ? Array.from({ length: n }, (_, i) => i).filter(() => rand() < 0.6) : undefined;
    const fast = averagePrecisionByClass(probs, labels, indices);
    const rows = indices ?? Array.from({ length: n }, (_, i) => i);
    for (let c = 0; c < k; c++) {
      const scores = rows.map((i) => probs.row(i)[c]);
      const slow = averagePrecision(scores, rows.map((i) => labels[i] === c));
      if (slow === null) assert.equal(fast[c], null);
      else assert.ok(Math.abs((fast[c] as number) - slow) < 1e-12, `trial ${trial} class ${c}: ${fast[c]} vs ${slow}`);
    }
  }
});

test('averagePrecisionByClass across several row tiles and class blocks (20000 rows x 300 classes)', () => {
  const rand = rng(11);
  const n = 20000; // > 2 tiles of 8216 rows
  const k = 300; // a block of 256 classes and one of 44
  const probs = new ProbabilityMatrix(k);
  const labels: number[] = [];
  const row = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) row[j] = Math.floor(rand() * 64) / 4096; // coarse grid: ties everywhere
    labels.push(Math.floor(rand() * k));
    probs.push(row);
  }
  const indices = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 1);
  for (const subset of [undefined, indices]) {
    const fast = averagePrecisionByClass(probs, labels, subset);
    const rows = subset ?? Array.from({ length: n }, (_, i) => i);
    for (const c of [0, 1, 255, 256, 257, 299]) {
      const slow = averagePrecision(rows.map((i) => probs.row(i)[c]), rows.map((i) => labels[i] === c));
      assert.ok(Math.abs((fast[c] as number) - (slow as number)) < 1e-12, `class ${c}: ${fast[c]} vs ${slow}`);
    }
  }
});

test('averagePrecisionByClass on dense classes (80000 rows x 4 classes: radix-sorted columns) equals the sort-based AP', () => {
  const rand = rng(5);
  const n = 80000;
  const k = 4;
  const probs = new ProbabilityMatrix(k);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rand() < 0.85 ? 0 : 1 + Math.floor(rand() * 3); // class 0: > 65536 positives, radix-sorted too
    const row = [rand(), rand(), rand(), rand()].map((u) => Math.floor(u * 1000) / 1000); // ties
    row[y] += rand() < 0.5 ? 1 : 0;
    const sum = row.reduce((a, b) => a + b, 0) || 1;
    probs.push(row.map((v) => v / sum));
    labels.push(y);
  }
  const subset = Array.from({ length: n }, (_, i) => i).filter((i) => i % 7 !== 3); // still > 65536 rows
  for (const indices of [undefined, subset]) {
    const fast = averagePrecisionByClass(probs, labels, indices);
    const rows = indices ?? Array.from({ length: n }, (_, i) => i);
    for (let c = 0; c < k; c++) {
      const slow = averagePrecision(rows.map((i) => probs.row(i)[c]), rows.map((i) => labels[i] === c)) as number;
      assert.ok(Math.abs((fast[c] as number) - slow) < 1e-12, `class ${c}: ${fast[c]} vs ${slow}`);
    }
  }
});

/** Random rows of `kind`; labels uniform. Values are pushed as given (the matrix rounds them to float32). */
function randomInput(rand: () => number, n: number, k: number, kind: number, chunkFloats?: number) {
  const probs = new ProbabilityMatrix(k, { chunkFloats });
  const labels: number[] = [];
  const row: number[] = new Array(k);
  for (let i = 0; i < n; i++) {
    const y = Math.floor(rand() * k);
    for (let j = 0; j < k; j++) {
      const u = rand();
      if (kind === 0) row[j] = 0.5 + Math.floor(u * 200) * 1e-4; // one or two 13-bit buckets, many distinct: binary searches
      else if (kind === 1) row[j] = [0, 1e-45, 1e-40, 1e-38, 1e-30, 0.5, 1, 1e30, 3.4e38][Math.floor(u * 9)]; // extremes, ties
      else if (kind === 2) row[j] = Math.floor(u * 5) / 4; // coarse grid: ties everywhere
      else row[j] = u ** 8; // spread over many buckets
    }
    if (rand() < 0.5) row[y] += kind === 1 ? 0 : 0.25; // positives score higher in half the rows
    probs.push(row);
    labels.push(y);
  }
  return { probs, labels };
}

/** Rows s of `indices` (default all), as arrays of float32 values. */
function rowsOf(probs: ProbabilityMatrix, indices?: number[]): { i: number; row: Float32Array }[] {
  const idx = indices ?? Array.from({ length: probs.length }, (_, i) => i);
  return idx.map((i) => ({ i, row: probs.row(i) }));
}

test('bucketed AP equals the sort-based AP: crowded buckets, extreme values, ties, odd and even K, tiny chunks, shuffled subsets', () => {
  const rand = rng(2024);
  for (let trial = 0; trial < 48; trial++) {
    const k = 2 + Math.floor(rand() * 40); // odd K: columns gathered one by one; even K: in pairs
    const n = 1 + Math.floor(rand() * 1500);
    const kind = trial % 4;
    const { probs, labels } = randomInput(rand, n, k, kind, trial % 2 === 0 ? 3 * k + (trial % 5) : undefined);
    let indices: number[] | undefined;
    if (trial % 3 === 1) indices = Array.from({ length: n }, (_, i) => i).filter(() => rand() < 0.7);
    if (trial % 3 === 2) indices = Array.from({ length: n }, (_, i) => i).sort(() => rand() - 0.5); // any order
    const fast = averagePrecisionByClass(probs, labels, indices);
    const rows = rowsOf(probs, indices);
    for (let c = 0; c < k; c++) {
      const slow = averagePrecision(rows.map((r) => r.row[c]), rows.map((r) => labels[r.i] === c));
      if (slow === null) assert.equal(fast[c], null, `trial ${trial} class ${c}`);
      else assert.ok(Math.abs((fast[c] as number) - slow) < 1e-12, `trial ${trial} (kind ${kind}, k ${k}) class ${c}: ${fast[c]} vs ${slow}`);
    }
  }
});

test('computeMetrics argmax, Recall@K and confusion equal a direct computation on random inputs with ties', () => {
  const rand = rng(99);
  for (let trial = 0; trial < 24; trial++) {
    const k = 2 + Math.floor(rand() * 12);
    const n = 1 + Math.floor(rand() * 600);
    const { probs, labels } = randomInput(rand, n, k, 2 + (trial % 2), trial % 2 === 0 ? 2 * k + 1 : undefined);
    const indices = trial % 3 === 0 ? Array.from({ length: n }, (_, i) => i).filter(() => rand() < 0.5) : undefined;
    if (indices?.length === 0) continue;
    const classes = Array.from({ length: k }, (_, c) => `c${c}`);
    const ks = [1, 2, 3, 5];
    const m = computeMetrics({ classes, labels, probs }, { ks, indices });
    const rows = rowsOf(probs, indices);
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    const hits = new Map<number, number>();
    const binaryThreshold = k === 2 && rows.some((r) => r.row[1] > 1) ? 0 : 0.5;
    for (const { i, row } of rows) {
      const y = labels[i];
      let pred = 0;
      for (let j = 1; j < k; j++) if (row[j] > row[pred]) pred = j;
      confusion[y][pred]++;
      let rank = 0; // sklearn: classes scoring higher, and equal-scoring classes with a higher index, rank first
      for (let j = 0; j < k; j++) if (row[j] > row[y] || (row[j] === row[y] && j > y)) rank++;
      for (const kk of ks.filter((x) => x < k)) {
        const hit = k === 2 ? (row[1] > binaryThreshold ? 1 : 0) === y : rank < kk;
        if (hit) hits.set(kk, (hits.get(kk) ?? 0) + 1);
      }
    }
    assert.deepEqual(m.confusionMatrix, confusion, `trial ${trial}`);
    for (const kk of ks.filter((x) => x < k)) assert.equal(m.recallAtK[String(kk)], (hits.get(kk) ?? 0) / rows.length, `trial ${trial} Recall@${kk}`);
  }
});

test('computeMetrics and averagePrecisionByClass give identical results on helper threads', () => {
  const rand = rng(31);
  const { probs, labels } = randomInput(rand, 9000, 301, 3);
  const classes = Array.from({ length: 301 }, (_, c) => `c${c}`);
  const indices = Array.from({ length: 9000 }, (_, i) => i).filter((i) => i % 5 !== 2);
  const local = computeMetrics({ classes, labels, probs }, { indices });
  const localAp = averagePrecisionByClass(probs, labels);
  try {
    // Every unit on the helper (the caller only waits), then shared between the caller and the helper.
    setParallelism({ threads: 2, minWork: 0, callerRuns: false });
    assert.deepEqual(computeMetrics({ classes, labels, probs }, { indices }), local);
    assert.deepEqual(averagePrecisionByClass(probs, labels), localAp);
    setParallelism({ threads: 3, minWork: 0 });
    assert.deepEqual(computeMetrics({ classes, labels, probs }, { indices }), local);
  } finally {
    setParallelism({});
    stopHelpers();
  }
});

test('averagePrecision of a perfect and of a reversed ranking', () => {
  assert.equal(averagePrecision([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]), 1);
  // positives ranked 3rd and 4th of 4: (1/2)(1/3) + (1/2)(2/4)
  close(averagePrecision([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) as number, 1 / 6 + 1 / 4, 'AP');
  // all tied: precision at the single threshold = 2/4
  close(averagePrecision([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) as number, 0.5, 'AP tied');
  assert.equal(averagePrecision([0.5, 0.2], [0, 0]), null);
});

test('precisionRecallCurve without positives sets recall to 1 like sklearn', () => {
  const c = precisionRecallCurve([0.3, 0.7], [false, false]);
  assert.deepEqual(c, { precision: [0, 0, 1], recall: [1, 1, 0], thresholds: [0.3, 0.7] });
});

test('a perfect classifier: every metric is 1 and the confusion matrix is diagonal', () => {
  const probs = ProbabilityMatrix.fromRows([
    [0.9, 0.05, 0.05],
    [0.1, 0.8, 0.1],
    [0.2, 0.2, 0.6],
    [0.7, 0.2, 0.1],
  ]);
  const m = computeMetrics({ classes: ['a', 'b', 'c'], labels: [0, 1, 2, 0], probs });
  assert.equal(m.top1Accuracy, 1);
  assert.equal(m.balancedAccuracy, 1);
  assert.deepEqual(m.recallAtK, { '1': 1 }); // 3 and 5 are not below the 3 classes
  assert.deepEqual(m.macro, { precision: 1, recall: 1, f1: 1 });
  assert.deepEqual(m.confusionMatrix, [[2, 0, 0], [0, 1, 0], [0, 0, 1]]);
  assert.deepEqual(m.perClass.map((c) => c.averagePrecision), [1, 1, 1]);
});

test('computeMetricsBySplit evaluates each split on its own rows', () => {
  const probs = ProbabilityMatrix.fromRows([
    [0.9, 0.1],
    [0.8, 0.2],
    [0.3, 0.7],
    [0.6, 0.4],
  ]);
  const input = { classes: ['a', 'b'], labels: [0, 1, 1, 0], probs };
  const by = computeMetricsBySplit(input, ['train', 'test', 'test', undefined]);
  assert.deepEqual(Object.keys(by), ['train', 'test']);
  assert.equal(by.train.n, 1);
  assert.equal(by.test.n, 2);
  assert.equal(by.test.top1Accuracy, 0.5);
  assert.deepEqual(by.test.confusionMatrix, [[0, 0], [1, 1]]);
  assert.deepEqual(by.test, computeMetrics(input, { indices: [1, 2] }));
});

test('effectiveKs drops K >= classes, sorts and dedupes; rejects non-positive K', () => {
  assert.deepEqual(effectiveKs([5, 1, 3, 3, 10], 6), [1, 3, 5]);
  assert.deepEqual(effectiveKs([1, 3, 5], 2), [1]);
  assert.throws(() => effectiveKs([0], 5), ClipLensError);
  assert.throws(() => effectiveKs([1.5], 5), ClipLensError);
});

test('bad input to computeMetrics is a ClipLensError naming the row', () => {
  const probs = ProbabilityMatrix.fromRows([
    [0.5, 0.5],
    [0.2, 0.8],
  ]);
  const bad = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ClipLensError && re.test(e.message));
  bad(() => computeMetrics({ classes: ['a', 'b'], labels: [0, 2], probs }), /label of row 1 is 2/);
  bad(() => computeMetrics({ classes: ['a', 'b'], labels: [0], probs }), /1 labels but 2 probability rows/);
  bad(() => computeMetrics({ classes: ['a', 'b', 'c'], labels: [0, 1], probs }), /3 class names/);
  bad(() => computeMetrics({ classes: ['a', 'b'], labels: [0, 1], probs }, { indices: [5] }), /indices\[0\] = 5/);
  bad(() => computeMetrics({ classes: ['a', 'b'], labels: [0, 1], probs }, { indices: [] }), /0 samples/);
});
