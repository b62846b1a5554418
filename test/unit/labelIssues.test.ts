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
  topByMargin,
} from '../../src/core/labelIssues';
import { ClipLensError } from '../../src/core/errors';
import { setParallelism, stopHelpers } from '../../src/core/parallel';
import { rng } from '../fixtures/rng';

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


/** The previous round_preserving_sum: a full stable argsort of the remainders. */
function referenceRoundPreservingSum(values: number[]): number[] {
  const roundHalfEven = (x: number) => {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const ints = values.map(roundHalfEven);
  const origSum = roundHalfEven(numpySum(values));
  let intSum = roundHalfEven(numpySum(ints));
  while (Math.abs(intSum - origSum) > 1e-6) {
    const diff = roundHalfEven(origSum - intSum);
    const increment = diff < 0 ? -1 : 1;
    const remainder = values.map((f, i) => f - ints[i]);
    const order = values.map((_, i) => i).sort((a, b) => remainder[a] - remainder[b] || a - b);
    if (increment === 1) order.reverse();
    for (const i of order.slice(0, Math.min(Math.abs(diff), values.length))) ints[i] += increment;
    intSum = roundHalfEven(numpySum(ints));
  }
  return ints;
}

/**
 * A straightforward reference of cleanlab's find_label_issues (the previous implementation): full scans of every
 * row, the joint calibrated as cleanlab does, and for every (class, other class) a stable sort of all margins.
 * `rows` hold float32 values (the matrix's). Returns the mask, num_label_issues and both score kinds.
 */
function referenceLabelIssues(labels: number[], rows: number[][], joint?: number[][]) {
  const n = labels.length;
  const k = rows[0].length;
  const argmax = (row: number[]) => row.reduce((best, v, j) => (v > row[best] ? j : best), 0);
  // Thresholds: mean self-confidence per class (numpy's pairwise sum), 2 without samples, at least 2e-6.
  const thresholds = Array.from({ length: k }, (_, c) => {
    const self = labels.flatMap((y, i) => (y === c ? [rows[i][c]] : []));
    return Math.max(self.length > 0 ? numpySum(self) / self.length : 2, 2e-6);
  });
  const guess = rows.map((row) => {
    const confident = row.flatMap((v, j) => (v >= thresholds[j] - 1e-6 ? [j] : []));
    return confident.length === 0 ? -1 : confident.length === 1 ? confident[0] : argmax(row);
  });
  const cj = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  labels.forEach((y, i) => guess[i] >= 0 && cj[y][guess[i]]++);
  cj.forEach((row, c) => (row[c] = Math.max(row[c], 1)));
  const counts = Array.from({ length: k }, (_, c) => labels.filter((y) => y === c).length);
  const scaled = cj.map((row, a) => row.map((v) => (v / Math.max(row.reduce((x, y) => x + y, 0), 1e-100)) * counts[a]));
  const total = Math.max(numpySum(scaled.flat()), 1e-100);
  const calibrated = joint ?? scaled.map((row) => referenceRoundPreservingSum(row.map((v) => (v / total) * n)));
  // prune[j][c], with the diagonal raised to 1 (cleanlab _keep_at_least_n_per_class).
  const prune = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let c = 0; c < k; c++) {
    const column = calibrated[c];
    const nonZero = column.filter((v) => v !== 0).length;
    const newDiag = Math.max(column[c], 1);
    const perEntry = (newDiag - column[c]) / Math.max(nonZero - 1, 1);
    for (let j = 0; j < k; j++) prune[j][c] = Math.trunc(j === c ? newDiag : Math.max(column[j] - perEntry, 0));
  }
  const mask = new Array<boolean>(n).fill(false);
  for (let c = 0; c < k; c++) {
    const members = labels.flatMap((y, i) => (y === c ? [i] : []));
    if (members.length <= 1) continue;
    for (let j = 0; j < k; j++) {
      if (j === c || prune[j][c] <= 0) continue;
      const margins = members.map((i) => rows[i][j] - rows[i][c]);
      const order = members.map((_, t) => t).sort((a, b) => margins[b] - margins[a] || a - b);
      for (const t of order.slice(0, prune[j][c])) mask[members[t]] = true;
    }
  }
  labels.forEach((y, i) => mask[i] && argmax(rows[i]) === y && (mask[i] = false));
  let numIssues = 0;
  labels.forEach((y, i) => {
    if (guess[i] < 0 || guess[i] === y) return;
    const py = rows[i][y] + 1e-6;
    if (rows[i].some((v, j) => j !== y && (v > py || (v === py && j < y)))) numIssues++;
  });
  const selfConfidence = labels.map((y, i) => rows[i][y]);
  const margin = labels.map((y, i) => (rows[i][y] - Math.max(...rows[i].filter((_, j) => j !== y)) + 1) / 2);
  return { mask, numIssues, selfConfidence, margin, calibrated, argmax: rows.map(argmax) };
}

/**
 * Random predictions with deliberate ties (values on a coarse grid) and confusions: class 0 is mostly predicted as
 * class 1 (large prune counts: whole-class and collected selections), other rows are right or confused at random.
 */
function randomPredictions(rand: () => number, n: number, k: number, grid: number) {
  const labels: number[] = [];
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const y = Math.floor(rand() * k);
    const row = Array.from({ length: k }, () => Math.floor(rand() * grid) / grid);
    const top = y === 0 && rand() < 0.8 ? 1 % k : rand() < 0.7 ? y : Math.floor(rand() * k);
    row[top] += 1 + Math.floor(rand() * 3) / 4;
    labels.push(y);
    rows.push(row);
  }
  return { labels, rows };
}

test('label issues equal a straightforward reference on random predictions with ties (mask, counts, scores, ranking)', () => {
  const rand = rng(17);
  for (let trial = 0; trial < 30; trial++) {
    const k = 2 + Math.floor(rand() * 9);
    const n = 20 + Math.floor(rand() * (trial % 3 === 0 ? 1200 : 300));
    const { labels, rows } = randomPredictions(rand, n, k, [2, 4, 10][trial % 3]);
    const probs = new ProbabilityMatrix(k, { chunkFloats: trial % 2 === 0 ? 7 * k : undefined });
    for (const r of rows) probs.push(r);
    const ref = referenceLabelIssues(labels, Array.from({ length: n }, (_, i) => Array.from(probs.row(i))));
    const what = `trial ${trial} (n ${n}, k ${k})`;
    assert.deepEqual(computeConfidentJoint(labels, probs), ref.calibrated, `${what}: joint`);
    assert.deepEqual(Array.from(findLabelIssueMask(labels, probs), Boolean), ref.mask, `${what}: mask`);
    assert.equal(numLabelIssues(labels, probs), ref.numIssues, `${what}: num_label_issues`);
    assert.deepEqual(Array.from(labelQualityScores(labels, probs, 'self_confidence')), ref.selfConfidence, `${what}: self_confidence`);
    assert.deepEqual(Array.from(labelQualityScores(labels, probs, 'normalized_margin')), ref.margin, `${what}: normalized_margin`);
    const classes = Array.from({ length: k }, (_, c) => `c${c}`);
    for (const rankBy of ['self_confidence', 'normalized_margin'] as const) {
      const scores = rankBy === 'self_confidence' ? ref.selfConfidence : ref.margin;
      const expected = ref.mask.flatMap((m, i) => (m ? [i] : [])).sort((a, b) => scores[a] - scores[b] || a - b);
      const issues = findLabelIssues({ classes, labels, probs }, { rankBy });
      assert.deepEqual(issues.map((x) => x.index), expected, `${what}: ${rankBy} ranking`);
      for (const x of issues) {
        assert.equal(x.suggested, classes[ref.argmax[x.index]]);
        assert.equal(x.score, scores[x.index]);
      }
    }
  }
});

test('pruning selects large counts by collecting margins, and flags a whole class for a count >= its size', () => {
  // Class 0: 300 rows, most predicted as class 1 with tied margins; class 2: 10 rows predicted as class 3.
  const rand = rng(5);
  const labels: number[] = [];
  const rows: number[][] = [];
  for (let i = 0; i < 900; i++) {
    const y = i < 300 ? 0 : i < 310 ? 2 : 1 + 2 * Math.floor(rand() * 2);
    const row = [0.05, 0.05, 0.05, 0.05];
    const top = y === 0 ? (rand() < 0.6 ? 1 : 0) : y === 2 ? 3 : y;
    row[top] = 0.5 + Math.floor(rand() * 3) / 10;
    labels.push(y);
    rows.push(row);
  }
  const probs = ProbabilityMatrix.fromRows(rows);
  const stored = Array.from({ length: rows.length }, (_, i) => Array.from(probs.row(i)));
  const ref = referenceLabelIssues(labels, stored);
  assert.ok(ref.calibrated[0][1] >= 64, `joint[0][1] = ${ref.calibrated[0][1]}`);
  assert.deepEqual(Array.from(findLabelIssueMask(labels, probs), Boolean), ref.mask);
  // A given joint may ask for more samples than the class has: all of them are flagged (then unflagged if right).
  const joint = ref.calibrated.map((row) => row.slice());
  joint[2][3] = 25;
  joint[2][1] = 3;
  const refJoint = referenceLabelIssues(labels, stored, joint);
  assert.deepEqual(Array.from(findLabelIssueMask(labels, probs, joint), Boolean), refJoint.mask);
  assert.ok(refJoint.mask.slice(300, 310).every(Boolean), 'class 2 flagged whole');
});

test('num_label_issues: a nudge of 1e-6 is lost on huge scores, so ties with a lower class still count', () => {
  // Not probabilities, but the matrix accepts them: p + 1e-6 === p for p = 1e11, so the tie breaks by class index.
  const rows = [
    [1e11, 1e11, 0],
    [1e11, 1e11, 0],
    [0, 1e11, 1e11],
    [1e11, 0, 0],
    [0, 0, 1e11],
    [1e11, 0, 1e11],
  ];
  const labels = [1, 1, 1, 0, 2, 2];
  const probs = ProbabilityMatrix.fromRows(rows);
  const ref = referenceLabelIssues(labels, rows.map((r) => Array.from(Float32Array.from(r))));
  assert.equal(numLabelIssues(labels, probs), ref.numIssues);
  assert.ok(ref.numIssues > 0);
  assert.deepEqual(Array.from(findLabelIssueMask(labels, probs), Boolean), ref.mask);
});

test('topByMargin picks the largest values, ties to the lower position, like a stable descending sort', () => {
  const rand = rng(3);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 60);
    const values = Float64Array.from({ length: n }, () => Math.floor(rand() * 6) - 2.5);
    const count = 1 + Math.floor(rand() * (n + 2));
    const order = Array.from({ length: n }, (_, t) => t).sort((a, b) => values[b] - values[a] || a - b);
    assert.deepEqual(topByMargin(values, count).sort((a, b) => a - b), order.slice(0, count).sort((a, b) => a - b), `trial ${trial}`);
  }
});

test('roundPreservingSum equals the full-sort version on random rows with tied remainders', () => {
  const rand = rng(8);
  for (let trial = 0; trial < 300; trial++) {
    const len = 1 + Math.floor(rand() * 80);
    const values = Array.from({ length: len }, () => Math.floor(rand() * 8) / 4 + (rand() < 0.3 ? 0.5 : 0));
    if (trial % 4 === 0) values.forEach((_, i) => (values[i] = Math.floor(rand() * 4) * 0.3)); // remainders 0.3, 0.6, 0.9: many moves
    assert.deepEqual(roundPreservingSum(values), referenceRoundPreservingSum(values), `trial ${trial}: ${values}`);
  }
  // More than 32 moves: the sorted path.
  for (const values of [new Array(100).fill(0.4), new Array(90).fill(0.6), Array.from({ length: 120 }, (_, i) => (i % 7) * 0.15)]) {
    assert.deepEqual(roundPreservingSum(values), referenceRoundPreservingSum(values));
  }
});

test('label issues are identical on helper threads', () => {
  const rand = rng(23);
  const { labels, rows } = randomPredictions(rand, 4000, 40, 10);
  const probs = ProbabilityMatrix.fromRows(rows);
  const classes = Array.from({ length: 40 }, (_, c) => `c${c}`);
  const local = findLabelIssues({ classes, labels, probs }, { rankBy: 'normalized_margin' });
  const localJoint = computeConfidentJoint(labels, probs);
  try {
    setParallelism({ threads: 2, minWork: 0, callerRuns: false });
    assert.deepEqual(findLabelIssues({ classes, labels, probs }, { rankBy: 'normalized_margin' }), local);
    assert.deepEqual(computeConfidentJoint(labels, probs), localJoint);
    setParallelism({ threads: 2, minWork: 0 });
    assert.deepEqual(findLabelIssues({ classes, labels, probs }, { rankBy: 'normalized_margin' }), local);
  } finally {
    setParallelism({});
    stopHelpers();
  }
});
