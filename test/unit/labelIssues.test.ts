import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import {
  computeConfidentJoint,
  confidentThresholds,
  findLabelIssueMask,
  findLabelIssues,
  labelQualityScores,
  numLabelIssues,
  numpySum,
  orderLabelIssues,
  pruneCountMatrix,
  roundPreservingSum,
} from '../../src/core/labelIssues';
import { ClipLensError } from '../../src/core/errors';

interface CleanlabCase {
  name: string;
  labels: number[];
  pred_probs: number[][];
  expected: {
    find_label_issues_mask: boolean[];
    ranked_by_self_confidence: number[];
    ranked_by_normalized_margin: number[];
    confident_joint_calibrated: number[][];
    num_label_issues: number;
    self_confidence_scores: number[];
    normalized_margin_scores: number[];
  };
}

const fixture = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/cleanlab/cases.json'), 'utf8')) as {
  source: string;
  cases: CleanlabCase[];
};

test('the cleanlab fixture holds the seven reference cases', () => {
  assert.match(fixture.source, /cleanlab/);
  assert.equal(fixture.cases.length, 7);
});

for (const c of fixture.cases) {
  const probs = ProbabilityMatrix.fromRows(c.pred_probs);
  const classes = Array.from({ length: probs.numClasses }, (_, i) => `class ${i}`);

  test(`${c.name}: calibrated confident joint equals cleanlab's`, () => {
    assert.deepEqual(computeConfidentJoint(c.labels, probs), c.expected.confident_joint_calibrated);
  });

  test(`${c.name}: find_label_issues mask and num_label_issues equal cleanlab's`, () => {
    const mask = Array.from(findLabelIssueMask(c.labels, probs), Boolean);
    assert.deepEqual(mask, c.expected.find_label_issues_mask);
    assert.equal(numLabelIssues(c.labels, probs), c.expected.num_label_issues);
  });

  test(`${c.name}: label quality scores equal cleanlab's (float32 storage, 1e-6)`, () => {
    const sc = labelQualityScores(c.labels, probs, 'self_confidence');
    const nm = labelQualityScores(c.labels, probs, 'normalized_margin');
    for (let i = 0; i < c.labels.length; i++) {
      assert.ok(Math.abs(sc[i] - c.expected.self_confidence_scores[i]) < 1e-6, `self_confidence ${i}`);
      assert.ok(Math.abs(nm[i] - c.expected.normalized_margin_scores[i]) < 1e-6, `normalized_margin ${i}`);
    }
  });

  test(`${c.name}: ranked issues equal cleanlab's for both rankings`, () => {
    const bySelf = findLabelIssues({ classes, labels: c.labels, probs });
    assert.deepEqual(bySelf.map((x) => x.index), c.expected.ranked_by_self_confidence);
    assert.deepEqual(bySelf.map((x) => x.rank), bySelf.map((_, r) => r + 1));
    const byMargin = findLabelIssues({ classes, labels: c.labels, probs }, { rankBy: 'normalized_margin' });
    assert.deepEqual(byMargin.map((x) => x.index), c.expected.ranked_by_normalized_margin);
    for (const issue of byMargin) {
      assert.equal(issue.given, classes[c.labels[issue.index]]);
      assert.notEqual(issue.suggested, issue.given);
      const row = c.pred_probs[issue.index];
      assert.equal(issue.suggested, classes[row.indexOf(Math.max(...row))]);
      assert.ok(Math.abs(issue.score - c.expected.normalized_margin_scores[issue.index]) < 1e-6);
    }
  });
}

test('findLabelIssues on a hand-made case: the one mislabelled image is found and explained', () => {
  // 3 classes, 5 clean samples each; sample 15 is labelled 'cat' but the model is sure it is a 'dog'.
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let s = 0; s < 5; s++) {
      const row = [0.05, 0.05, 0.05];
      row[c] = 0.9;
      rows.push(row);
      labels.push(c);
    }
  }
  rows.push([0.02, 0.95, 0.03]);
  labels.push(0);
  const issues = findLabelIssues({ classes: ['cat', 'dog', 'fox'], labels, probs: ProbabilityMatrix.fromRows(rows) });
  assert.equal(issues.length, 1);
  assert.equal(issues[0].index, 15);
  assert.equal(issues[0].given, 'cat');
  assert.equal(issues[0].suggested, 'dog');
  assert.equal(issues[0].rank, 1);
  assert.ok(Math.abs(issues[0].score - 0.02) < 1e-7);
});

test('a class nobody is labelled with gets threshold 2 and is never a confident guess', () => {
  const probs = ProbabilityMatrix.fromRows([
    [0.7, 0.2, 0.1],
    [0.6, 0.3, 0.1],
    [0.2, 0.7, 0.1],
    [0.1, 0.8, 0.1],
  ]);
  const t = confidentThresholds([0, 0, 1, 1], probs);
  assert.ok(Math.abs(t[0] - 0.65) < 1e-7);
  assert.ok(Math.abs(t[1] - 0.75) < 1e-7);
  assert.equal(t[2], 2);
  const cj = computeConfidentJoint([0, 0, 1, 1], probs, { calibrate: false });
  assert.deepEqual(cj.map((r) => r[2]), [0, 0, 1]); // only the diagonal floor of 1
});

test('roundPreservingSum matches cleanlab (half to even, remainders moved, sum kept)', () => {
  assert.deepEqual(roundPreservingSum([2.5, 3.5, 0.5, 1.5]), [2, 4, 0, 2]); // numpy rounds half to even; sum 8 kept
  // Expected values from cleanlab's round_preserving_sum run with numpy 1.24 (ties: stable argsort, reversed to add).
  assert.deepEqual(roundPreservingSum([0.4, 0.4, 0.4, 0.4, 0.4]), [0, 0, 0, 1, 1]);
  assert.deepEqual(roundPreservingSum([0.6, 0.6, 0.6, 0.6, 0.6]), [0, 0, 1, 1, 1]);
  assert.deepEqual(roundPreservingSum([1.5, 1.5, 1.5, 1.5, 0.5, 0.5]), [1, 2, 2, 2, 0, 0]);
  assert.deepEqual(roundPreservingSum(new Array(16).fill(0.3)), [...new Array(11).fill(0), 1, 1, 1, 1, 1]);
});

test('numpySum sums pairwise like numpy (differs from a left-to-right sum)', () => {
  const a = [1e16, 1, 1, 1, 1, 1, 1, 1, 1, -1e16];
  // numpy: r = [1e16+1(lost), 1, ...]: ((1e16 + 1) + 2) + 4 ... then + 1 + -1e16
  let seq = 0;
  for (const v of a) seq += v;
  assert.equal(seq, 0);
  assert.equal(numpySum(a), 8);
  assert.equal(numpySum([0.1, 0.2, 0.3]), 0.1 + 0.2 + 0.3);
});

test('pruneCountMatrix raises an empty diagonal to 1 and truncates the fractions taken from the column', () => {
  // Given class 0 has no confident sample of its own: its column (of the transpose) is [0, 3, 2, 1]. cleanlab sets the
  // diagonal to 1 and subtracts 1 / (3 non-zero - 1) = 0.5 from each non-zero entry: [1, 2.5, 1.5, 0.5] -> astype(int).
  const cj = [
    [0, 3, 2, 1],
    [0, 5, 0, 0],
    [0, 0, 5, 0],
    [0, 1, 0, 5],
  ];
  assert.deepEqual(pruneCountMatrix(cj, 1), [
    [1, 0, 0, 0],
    [2, 5, 0, 1],
    [1, 0, 5, 0],
    [0, 0, 0, 5],
  ]);
});

test('orderLabelIssues sorts by score then index', () => {
  assert.deepEqual(orderLabelIssues([1, 0, 1, 1, 1], [0.5, 0, 0.2, 0.5, 0.1]), [4, 2, 0, 3]);
});

test('bad input is a ClipLensError', () => {
  const probs = ProbabilityMatrix.fromRows([[0.5, 0.5]]);
  assert.throws(() => findLabelIssues({ classes: ['a', 'b'], labels: [2], probs }), (e: unknown) => e instanceof ClipLensError && /label of row 0/.test(e.message));
  assert.throws(() => findLabelIssues({ classes: ['a'], labels: [0], probs }), ClipLensError);
  assert.throws(() => findLabelIssueMask([0, 1], probs), ClipLensError);
  assert.deepEqual(findLabelIssues({ classes: ['a', 'b'], labels: [], probs: new ProbabilityMatrix(2) }), []);
});
