import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { crossValidatedProbe, crossValidatedProbeFast, fitLogistic, lbfgs, stratifiedFolds } from '../../src/core/linearProbe';
import { ClipLensError } from '../../src/core/errors';
import { rng } from '../fixtures/rng';

interface ProbeCase {
  name: string;
  kind: 'probe' | 'knn';
  c: number;
  folds: number;
  classes: string[];
  labels: number[];
  features: number[][];
  expected: { pred_probs: number[][]; fold_of_sample: number[] };
}
const fixture = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/probe-reference/cases.json'), 'utf8')) as { cases: ProbeCase[] };
const probeCases = fixture.cases.filter((c) => c.kind === 'probe');

test('the fixture has the three probe cases', () => assert.equal(probeCases.length, 3));

for (const c of probeCases) {
  test(`${c.name}: StratifiedKFold folds and cross_val_predict probabilities equal scikit-learn's within 1e-3`, () => {
    const dim = c.features[0].length;
    assert.deepEqual(Array.from(stratifiedFolds(c.labels, c.folds)), c.expected.fold_of_sample);
    const r = crossValidatedProbe(Float32Array.from(c.features.flat()), dim, c.labels, c.classes.length, { folds: c.folds, c: c.c });
    assert.equal(r.unconverged, 0);
    const k = c.classes.length;
    let worst = 0;
    c.expected.pred_probs.forEach((row, i) => row.forEach((p, j) => (worst = Math.max(worst, Math.abs(p - r.probs[i * k + j])))));
    assert.ok(worst < 1e-3, `max |difference| ${worst}`);
  });
}

test('stratifiedFolds follows scikit-learn on unordered labels with small classes', () => {
  // computed by hand from _make_test_folds: classes by first appearance 2 -> 0, 0 -> 1, 1 -> 2;
  // sorted encoded labels [0,0,0,0,0,1,1,1,2] dealt to 3 folds: fold0 gets positions 0,3,6 -> {0:2,1:1},
  // fold1 positions 1,4,7 -> {0:2,1:1}, fold2 positions 2,5,8 -> {0:1,1:1,2:1}
  const labels = [2, 0, 2, 1, 2, 0, 2, 0, 2];
  assert.deepEqual(Array.from(stratifiedFolds(labels, 3)), [0, 0, 0, 2, 1, 1, 1, 2, 2]);
});

test('stratifiedFolds refuses too many folds', () => {
  assert.throws(() => stratifiedFolds([0, 0, 1, 1], 3), (e: unknown) => e instanceof ClipLensError && /no class has that many/.test(e.message));
  assert.throws(() => stratifiedFolds([0, 1], 3), /only 2 samples/);
  assert.throws(() => stratifiedFolds([0, 1, 0, 1], 1), /integer >= 2/);
});

test('a class with one sample gets probability 0 for its own class and is reported', () => {
  const r = rng(3);
  const dim = 4;
  const labels: number[] = [];
  const x: number[] = [];
  for (let i = 0; i < 40; i++) {
    const y = i === 17 ? 2 : i % 2;
    labels.push(y);
    for (let d = 0; d < dim; d++) x.push((d === y ? 2 : 0) + r() - 0.5);
  }
  const res = crossValidatedProbe(Float32Array.from(x), dim, labels, 3, { folds: 5, c: 1 });
  assert.deepEqual(res.singletonClasses, [2]);
  assert.deepEqual(res.smallClasses, [2]);
  assert.equal(res.probs[17 * 3 + 2], 0);
  for (let i = 0; i < 40; i++) {
    const s = res.probs[i * 3] + res.probs[i * 3 + 1] + res.probs[i * 3 + 2];
    assert.ok(Math.abs(s - 1) < 1e-9);
  }
});

test('bad features and labels are refused with named problems', () => {
  const x = new Float32Array([0, 1, 1, 0, 0, 1, 1, 0]);
  assert.throws(() => crossValidatedProbe(x, 3, [0, 1, 0, 1], 2), /not 4 rows of width 3/);
  const nan = x.slice();
  nan[5] = NaN;
  assert.throws(() => crossValidatedProbe(nan, 2, [0, 1, 0, 1], 2, { folds: 2 }), /row 2, column 1: NaN is not a finite number/);
  assert.throws(() => crossValidatedProbe(x, 2, [0, 1, 0, 2], 2, { folds: 2 }), /label of row 3 is 2/);
  assert.throws(() => crossValidatedProbe(x, 2, [1, 1, 1, 1], 2, { folds: 2 }), /only one class/);
  assert.throws(() => crossValidatedProbe(x, 2, [0, 1, 0, 1], 2, { folds: 2, c: 0 }), /C must be a positive number/);
});

test('fitLogistic reaches a stationary point of the regularised objective (gradient checked numerically)', () => {
  const r = rng(5);
  const dim = 3;
  const n = 60;
  const x = new Float32Array(n * dim).map(() => r() * 2 - 1);
  const labels = Array.from({ length: n }, (_, i) => (x[i * dim] > 0 ? 1 : 0) + (x[i * dim + 1] > 0.5 ? 1 : 0));
  const rows = Int32Array.from({ length: n }, (_, i) => i);
  const c = 2;
  const model = fitLogistic(x, dim, labels, rows, { c, gradientTolerance: 1e-9 });
  assert.ok(model.converged);
  const k = model.classes.length;
  const f = (w: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const z = Array.from({ length: k }, (_, j) => b[j] + [0, 1, 2].reduce((a, d) => a + w[j * dim + d] * x[i * dim + d], 0));
      const m = Math.max(...z);
      s += Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0)) + m - z[labels[i]];
    }
    return s + w.reduce((a, v) => a + v * v, 0) / (2 * c);
  };
  const h = 1e-5;
  for (let p = 0; p < k * dim; p++) {
    const wp = model.weights.slice();
    const wm = model.weights.slice();
    wp[p] += h;
    wm[p] -= h;
    assert.ok(Math.abs((f(wp, model.intercepts) - f(wm, model.intercepts)) / (2 * h)) < 1e-4);
  }
});

test('lbfgs minimises a badly scaled quadratic', () => {
  const scales = [1, 10, 100, 1000];
  const res = lbfgs((x, g) => {
    let f = 0;
    for (let i = 0; i < 4; i++) {
      f += 0.5 * scales[i] * (x[i] - i) ** 2;
      g[i] = scales[i] * (x[i] - i);
    }
    return f;
  }, new Float64Array(4), { gradientTolerance: 1e-8, maxIterations: 200 });
  assert.ok(res.converged);
  res.x.forEach((v, i) => assert.ok(Math.abs(v - i) < 1e-8));
});

test('the ONNX Runtime path (float32 products) stays within 1e-3 of scikit-learn and of the float64 path on the shared cases', async () => {
  for (const c of probeCases) {
    const dim = c.features[0].length;
    const x = Float32Array.from(c.features.flat());
    const fast = await crossValidatedProbeFast(x, dim, c.labels, c.classes.length, { folds: c.folds, c: c.c, engine: 'onnx' });
    const k = c.classes.length;
    let worst = 0;
    c.expected.pred_probs.forEach((row, i) => row.forEach((p, j) => (worst = Math.max(worst, Math.abs(p - fast.probs[i * k + j])))));
    assert.ok(worst < 1e-3, `${c.name}: max |difference| to scikit-learn ${worst}`);
    const exact = crossValidatedProbe(x, dim, c.labels, k, { folds: c.folds, c: c.c });
    let diff = 0;
    for (let i = 0; i < exact.probs.length; i++) diff = Math.max(diff, Math.abs(exact.probs[i] - fast.probs[i]));
    assert.ok(diff < 1e-3, `${c.name}: float32 products differ by ${diff}`);
  }
});

test("warm start (each fold from the previous fold's model) stays within 1e-3 of scikit-learn on the shared cases, in fewer evaluations", async () => {
  let cold = 0;
  let warm = 0;
  for (const c of probeCases) {
    const dim = c.features[0].length;
    const x = Float32Array.from(c.features.flat());
    const k = c.classes.length;
    const a = await crossValidatedProbeFast(x, dim, c.labels, k, { folds: c.folds, c: c.c, engine: 'js' });
    const b = await crossValidatedProbeFast(x, dim, c.labels, k, { folds: c.folds, c: c.c, engine: 'js', warmStart: true });
    let worst = 0;
    c.expected.pred_probs.forEach((row, i) => row.forEach((p, j) => (worst = Math.max(worst, Math.abs(p - b.probs[i * k + j])))));
    assert.ok(worst < 1e-3, `${c.name}: max |difference| ${worst}`);
    assert.equal(b.unconverged, 0);
    // the first fold starts from zero either way
    assert.equal(b.fits[0].evaluations, a.fits[0].evaluations);
    cold += a.fits.reduce((s, f) => s + f.evaluations, 0);
    warm += b.fits.reduce((s, f) => s + f.evaluations, 0);
  }
  assert.ok(warm < cold, `warm ${warm} vs cold ${cold} evaluations`);
});

test('warm start maps classes by id when a training fold lacks a class', async () => {
  const r = rng(3);
  const dim = 4;
  const labels: number[] = [];
  const x: number[] = [];
  for (let i = 0; i < 40; i++) {
    const y = i === 17 || i === 30 ? 2 : i % 2;
    labels.push(y);
    for (let d = 0; d < dim; d++) x.push((d === y ? 2 : 0) + r() - 0.5);
  }
  const cold = await crossValidatedProbeFast(Float32Array.from(x), dim, labels, 3, { folds: 5, c: 1, engine: 'js' });
  const warm = await crossValidatedProbeFast(Float32Array.from(x), dim, labels, 3, { folds: 5, c: 1, engine: 'js', warmStart: true });
  let diff = 0;
  for (let i = 0; i < cold.probs.length; i++) diff = Math.max(diff, Math.abs(cold.probs[i] - warm.probs[i]));
  assert.ok(diff < 1e-3, `warm vs cold ${diff}`);
  assert.deepEqual(warm.smallClasses, [2]);
});
