import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { knnProbabilities } from '../../src/core/knnPredictor';
import { findLabelIssuesFloat64 } from '../../src/core/labelIssues';
import { numpyArgsort } from '../../src/core/numpyArgsort';
import { rng } from '../fixtures/rng';

interface KnnCase {
  name: string;
  kind: 'probe' | 'knn';
  k: number;
  classes: string[];
  labels: number[];
  features: number[][];
  expected: { pred_probs: number[][]; label_issues: number[]; ranked_by_self_confidence: number[] };
}
const dir = path.join(__dirname, '../fixtures/probe-reference');
const fixture = JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8')) as { cases: KnnCase[] };
const knnCases = fixture.cases.filter((c) => c.kind === 'knn');

test('the fixture has the three kNN cases', () => assert.equal(knnCases.length, 3));

for (const c of knnCases) {
  test(`${c.name}: kNN probabilities and label issues (set and order) equal cleanlab Datalab's`, () => {
    const dim = c.features[0].length;
    const r = knnProbabilities(Float32Array.from(c.features.flat()), dim, c.labels, c.classes.length, { k: c.k });
    const k = c.classes.length;
    c.expected.pred_probs.forEach((row, i) => row.forEach((p, j) => assert.ok(Math.abs(p - r.probs[i * k + j]) < 1e-12, `row ${i}`)));
    const issues = findLabelIssuesFloat64(c.classes, c.labels, r.probs);
    assert.deepEqual(issues.map((x) => x.index), c.expected.ranked_by_self_confidence);
    assert.deepEqual(issues.map((x) => x.index).sort((a, b) => a - b), c.expected.label_issues);
    assert.deepEqual(issues.map((x) => x.rank), issues.map((_, i) => i + 1));
  });
}

test('numpyArgsort: a sort; stable insertion sort up to 17 values; introsort partitions reorder ties beyond', () => {
  const r = rng(11);
  for (const n of [0, 1, 2, 17, 18, 100, 5000]) {
    const v = Array.from({ length: n }, () => Math.floor(r() * 5) / 4);
    const got = Array.from(numpyArgsort(v));
    assert.deepEqual([...got].sort((a, b) => a - b), v.map((_, i) => i));
    for (let i = 1; i < n; i++) assert.ok(v[got[i - 1]] <= v[got[i]]);
    const stable = v.map((_, i) => i).sort((a, b) => v[a] - v[b] || a - b);
    if (n <= 17) assert.deepEqual(got, stable);
    else assert.notDeepEqual(got, stable);
  }
  // 18 equal values, by hand from numpy's aquicksort_: median-of-3 moves the middle element (8) next to the end,
  // the scans swap pairs (1,15) ... (7,9) and stop at 8, the pivot returns to 8; the halves are insertion-sorted
  assert.deepEqual(Array.from(numpyArgsort(new Array(18).fill(0))), [0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 16, 17]);
});

test('the tie rule matters: a stable order of tied margins flags other samples than cleanlab on seed1-knn-c', () => {
  const c = knnCases.find((x) => x.name === 'seed1-knn-c')!;
  const dim = c.features[0].length;
  const r = knnProbabilities(Float32Array.from(c.features.flat()), dim, c.labels, c.classes.length, { k: c.k });
  // a margin ordering by index among ties (what numpy does for <= 17 values only) would flag 66 instead of 123
  const issues = findLabelIssuesFloat64(c.classes, c.labels, r.probs).map((x) => x.index);
  assert.ok(issues.includes(123) && !issues.includes(66));
});

test('kNN: own vote removed, neighbours by cosine, bad k refused', () => {
  // two tight clusters; sample 5 sits in cluster A but is labelled B
  const feats = [
    [1, 0], [0.99, 0.1], [0.98, -0.1], [0.97, 0.05], [0.99, -0.05], [1, 0.02],
    [0, 1], [0.1, 0.99], [-0.1, 0.98], [0.05, 0.97], [-0.05, 0.99],
  ].map(([a, b]) => [a * 3, b * 3]); // scale does not matter for the cosine
  const labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
  const r = knnProbabilities(Float32Array.from(feats.flat()), 2, labels, 2, { k: 4 });
  assert.deepEqual(Array.from(r.probs.subarray(10, 12)), [1, 0]);
  assert.deepEqual(Array.from(r.probs.subarray(12, 14)), [0, 1]);
  assert.throws(() => knnProbabilities(Float32Array.from(feats.flat()), 2, labels, 2, { k: 11 }), /need more than 11 samples/);
  assert.throws(() => knnProbabilities(Float32Array.from(feats.flat()), 2, labels, 2, { k: 0 }), /k must be an integer/);
});
