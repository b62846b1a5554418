import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classPrCurve, precisionRecallCurve, thinCurve } from '../../src/core/prCurve';
import { computeMetrics } from '../../src/core/metrics';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import { averagePrecisionByClass } from '../../src/core/retrieval';
import { rng } from '../fixtures/rng';
import { averagePrecision } from './referenceRetrieval';

/** Area under the step curve, sum of (R_n - R_(n-1)) * P_n: the curve drawn must enclose the report's AP. */
const area = (c: { recall: number[]; precision: number[]; positives: number }): number | null => {
  if (c.positives === 0) return null;
  let a = 0;
  for (let i = 1; i < c.recall.length; i++) a += (c.recall[i]! - c.recall[i - 1]!) * c.precision[i]!;
  return a;
};
const close = (a: number | null, b: number, eps = 1e-9) => assert.ok(a !== null && Math.abs(a - b) < eps, `${a} != ${b}`);
const closeAll = (a: number[], b: number[]) => {
  assert.equal(a.length, b.length, `${a} vs ${b}`);
  a.forEach((x, i) => close(x, b[i]));
};

test('matches scikit-learn on its documented example', () => {
  // sklearn: precision_recall_curve([0,0,1,1], [0.1,0.4,0.35,0.8]) -> precision [0.5, 0.667, 0.5, 1, 1],
  // recall [1, 1, 0.5, 0.5, 0]; average_precision_score -> 0.8333. Our points run the other way.
  const c = precisionRecallCurve('x', [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
  closeAll(c.recall, [0, 0.5, 0.5, 1, 1]);
  closeAll(c.precision, [1, 1, 0.5, 2 / 3, 0.5]);
  close(area(c), 0.5 + 0.5 * (2 / 3));
  assert.equal(c.source, 'probabilities');
  assert.equal(c.coverage, 1);
  assert.deepEqual([c.positives, c.total], [2, 4]);
});

test('takes tied scores together', () => {
  const c = precisionRecallCurve('x', [0.5, 0.5, 0.5, 0.1], [1, 0, 1, 0]);
  closeAll(c.recall, [0, 1, 1]);
  closeAll(c.precision, [1, 2 / 3, 0.5]);
  close(area(c), 2 / 3);
});

test('unknown scores rank last, together, and mark the curve as top-k', () => {
  const c = precisionRecallCurve('x', [0.9, Number.NaN, 0.8, Number.NaN], [1, 1, 0, 0]);
  closeAll(c.recall, [0, 0.5, 0.5, 1]);
  closeAll(c.precision, [1, 1, 0.5, 0.5]);
  close(area(c), 0.75);
  assert.equal(c.source, 'top-k');
  close(c.coverage, 0.5);
});

test('a class without positives: no area (AP null in the report; the panel said 0 before)', () => {
  const c = precisionRecallCurve('x', [0.3, 0.2], [0, 0]);
  assert.equal(area(c), null);
  assert.equal(c.positives, 0);
  assert.equal(area(precisionRecallCurve('x', [], [])), null);
});

test('the area under the panel curve, the report (the one AP implementation) and the test reference agree on every class, those without positives included', () => {
  const rand = rng(11);
  for (let trial = 0; trial < 12; trial++) {
    const k = 3 + Math.floor(rand() * 6);
    const n = 5 + Math.floor(rand() * 120);
    const probs = new ProbabilityMatrix(k);
    const labels: number[] = [];
    const classes = Array.from({ length: k }, (_, c) => `c${c}`);
    for (let i = 0; i < n; i++) {
      const row = Array.from({ length: k }, () => (trial % 2 ? Math.floor(rand() * 5) / 5 : rand()) + 1e-3);
      const sum = row.reduce((a, b) => a + b, 0);
      probs.push(row.map((x) => x / sum));
      // The last class never occurs: no positives.
      labels.push(Math.floor(rand() * (k - 1)));
    }
    const fast = averagePrecisionByClass(probs, labels);
    const report = computeMetrics({ probs, labels, classes }, { ks: [1] }).perClass.map((c) => c.averagePrecision);
    const samples = labels.map((y, i) => ({ label: classes[y]!, predicted: [{ class: classes[0]!, score: 1 }], probabilities: Array.from(probs.row(i)) }));
    for (let c = 0; c < k; c++) {
      const panel = area(classPrCurve(classes[c]!, classes, samples, null));
      const scores = labels.map((_, i) => probs.row(i)[c]!);
      const reference = averagePrecision(scores, labels.map((y) => y === c));
      if (c === k - 1) assert.equal(reference, null);
      for (const [name, value] of [['panel', panel], ['fast', fast[c]], ['report', report[c]]] as const) {
        if (reference === null) assert.equal(value, null, `trial ${trial} class ${c}: ${name}`);
        else assert.ok(value !== null && value !== undefined && Math.abs(value - reference) < 1e-6, `trial ${trial} class ${c}: ${name} ${value} vs ${reference}`);
      }
    }
  }
});

test('classPrCurve uses full probabilities when every sample has them, else top-K scores', () => {
  const classes = ['a', 'b', 'c'];
  const samples = [
    { label: 'a', predicted: [{ class: 'a', score: 0.7 }, { class: 'b', score: 0.2 }], probabilities: [0.7, 0.2, 0.1] },
    { label: 'b', predicted: [{ class: 'b', score: 0.6 }, { class: 'a', score: 0.3 }], probabilities: [0.3, 0.6, 0.1] },
    { label: 'a', predicted: [{ class: 'c', score: 0.5 }, { class: 'b', score: 0.3 }], probabilities: [0.2, 0.3, 0.5] },
    { label: 'c', predicted: [], split: 'val' }, // unreadable: not scored
  ];
  const exact = classPrCurve('a', classes, samples);
  assert.equal(exact.source, 'probabilities');
  assert.equal(exact.total, 3);
  // scores for 'a': 0.7 (pos), 0.3 (neg), 0.2 (pos) -> AP = 0.5*1 + 0.5*(2/3)
  close(area(exact), 0.5 + 0.5 * (2 / 3));
  const topK = classPrCurve('a', classes, samples.map(({ probabilities: _p, ...s }) => s));
  assert.equal(topK.source, 'top-k');
  close(topK.coverage, 0.5);
  assert.throws(() => classPrCurve('zebra', classes, samples), /Unknown class/);
  assert.equal(classPrCurve('a', classes, samples, 'val').total, 0);
});

test('thinCurve keeps the ends and at most one point per recall step', () => {
  const n = 5000;
  const recall = Array.from({ length: n }, (_, i) => i / (n - 1));
  const precision = recall.map((r) => 1 - r / 2);
  const t = thinCurve(recall, precision, 100);
  assert.ok(t.recall.length <= 102, `${t.recall.length} points`);
  assert.equal(t.recall[0], 0);
  assert.equal(t.recall.at(-1), 1);
  assert.equal(t.precision.at(-1), 0.5);
  for (let i = 1; i < t.recall.length; i++) assert.ok(t.recall[i] >= t.recall[i - 1]);
  assert.equal(thinCurve([0, 1], [1, 0.5], 100).recall.length, 2);
});
