/**
 * Classification metrics of softmax predictions, equal (to 1e-9) to scikit-learn on the same predictions
 * (checked by tools/crosscheck-sklearn.py and test/unit/metrics.test.ts).
 *
 * Definitions, with y the given labels and pred = argmax of each row (ties -> lowest class index, like numpy):
 * - top1Accuracy = accuracy_score(y, pred).
 * - recallAtK[K] = top_k_accuracy_score(y, probs, k=K, labels=range(K)). Ties follow sklearn: classes are ranked by
 *   a stable ascending sort reversed, so among equal scores the HIGHER class index ranks first. Hence Recall@1 can
 *   differ from top1Accuracy when the top scores tie. With 2 classes sklearn's binary rule applies instead:
 *   predicted class 1 iff probs[:, 1] > 0.5 (> 0 if some probs[:, 1] of the evaluated rows lies outside [0, 1]).
 *   K values >= the number of classes are omitted (always 1); the default Ks are {@link DEFAULT_KS}.
 * - perClass: precision_recall_fscore_support(y, pred, labels=range(K)); recallAtK per class = top-K accuracy over
 *   the class's samples; averagePrecision = average_precision_score(y == c, probs[:, c]), null with no support.
 * - Zero division follows sklearn's default zero_division="warn": a 0/0 ratio is 0 (sklearn also emits an
 *   UndefinedMetricWarning; here the cause stays visible as support 0 or predicted 0). Per-class Recall@K of a class
 *   without support is 0 by the same rule (sklearn would average an empty set).
 * - macro = unweighted mean over the classes present in y or pred (sklearn's default labels=None); weighted = mean
 *   weighted by support.
 * - balancedAccuracy = balanced_accuracy_score(y, pred): mean recall over classes with support.
 * - confusionMatrix = confusion_matrix(y, pred, labels=range(K)): rows true, columns predicted.
 *
 * Computation: one pass over the rows gives each row's argmax, the rank of its label and the label's score (read
 * as int32 float patterns, the row split at the label so the rank is one branch-free comparison per value); the
 * APs then go by blocks of classes (retrieval.ts). Both are jobs whose units (ranges of rows, blocks of classes)
 * helper threads share for large inputs (parallel.ts); the counts are summed afterwards, so results do not depend
 * on the number of threads. Extra memory: about 20 bytes per row, plus the AP blocks.
 */
import { ClipLensError } from './errors';
import { setOwn } from './ownKeys';
import type { AveragedScores, ClassMetrics, Metrics } from './report';
import { defineJob, sharedInt32, toSharedInt32 } from './parallel';
import type { ProbabilityMatrix, SharedProbabilityMatrix } from './probabilities';
import { averagePrecisionJob } from './retrieval';

/** Recall@K values computed when none are asked for. */
export const DEFAULT_KS: readonly number[] = [1, 3, 5];

/** Predictions to evaluate: labels are class indices into `classes`, probs has one row per label. */
export interface MetricsInput {
  classes: string[];
  labels: ArrayLike<number>;
  probs: ProbabilityMatrix;
}

export interface MetricsOptions {
  /** Recall@K values (default 1, 3, 5); those >= the class count are omitted. */
  ks?: number[];
  /** Evaluate only these rows (a split); default all rows. */
  indices?: ArrayLike<number>;
}

/**
 * Checks that labels, probabilities and classes agree; throws ClipLensError naming the first bad entry.
 * `indices`, when given, limits the label check to those rows and checks that each is a valid row.
 */
export function checkPredictionsInput(input: MetricsInput, indices?: ArrayLike<number>): void {
  const { classes, labels, probs } = input;
  if (classes.length !== probs.numClasses) {
    throw new ClipLensError('predictions-mismatch', `${classes.length} class names but probabilities have ${probs.numClasses} columns`);
  }
  if (labels.length !== probs.length) {
    throw new ClipLensError('predictions-mismatch', `${labels.length} labels but ${probs.length} probability rows`);
  }
  const n = indices ? indices.length : labels.length;
  for (let s = 0; s < n; s++) {
    const i = indices ? indices[s] : s;
    if (indices && !(Number.isInteger(i) && i >= 0 && i < labels.length)) {
      throw new ClipLensError('predictions-bad-index', `indices[${s}] = ${i} is not a row in [0, ${labels.length})`);
    }
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < classes.length)) {
      throw new ClipLensError('predictions-bad-label', `label of row ${i} is ${y}, not a class index in [0, ${classes.length})`);
    }
  }
}

/** The Ks that will be reported: positive integers below the class count, sorted, without duplicates. */
export function effectiveKs(ks: readonly number[], numClasses: number): number[] {
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new ClipLensError('metrics-bad-k', `Recall@K needs a positive integer K, got ${k}`);
  }
  return [...new Set(ks)].filter((k) => k < numClasses).sort((a, b) => a - b);
}

function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

/** sklearn's F1 from precision and recall: 2PR/(P+R), 0 when P+R = 0. */
function f1Of(precision: number, recall: number): number {
  const denom = precision + recall;
  return denom === 0 ? 0 : (2 * precision * recall) / denom;
}

/** Computes {@link Metrics} over all rows or over `options.indices`; throws ClipLensError on bad input or no rows. */
export function computeMetrics(input: MetricsInput, options: MetricsOptions = {}): Metrics {
  const { classes, labels, probs } = input;
  const { indices } = options;
  checkPredictionsInput(input, indices);
  const k = classes.length;
  const n = indices ? indices.length : labels.length;
  if (n === 0) throw new ClipLensError('metrics-no-samples', 'cannot compute metrics of 0 samples');
  const ks = effectiveKs(options.ks ?? DEFAULT_KS, k);

  // The per-row pass (argmax, rank of the label, and the label's score for the AP), then the AP by blocks of classes.
  const rowUnit = Math.max(1, Math.ceil(VALUES_PER_ROW_UNIT / k));
  const rows: RowPassData = {
    matrix: probs.shared(),
    labels: toSharedInt32(labels),
    indices: indices ? toSharedInt32(indices) : null,
    n,
    rowsPerUnit: rowUnit,
    pred: sharedInt32(n),
    rank: sharedInt32(n),
    self: sharedInt32(probs.length),
  };
  runRowPass(rows, Math.ceil(n / rowUnit), n * k, probs.inSharedMemory);
  const apJob = averagePrecisionJob(probs, labels, indices, rows.self);
  apJob.run();
  const p1 = (i: number) => probs.chunkOf(i)[probs.offsetOf(i) + 1];
  return metricsFromRows(classes, labels, indices, ks, rows.pred, rows.rank, k === 2 ? p1 : null, apJob.result());
}

/**
 * The metrics from what the per-row pass gives (pred[s], rank[s] of evaluated row s = indices[s], or s) and the APs:
 * shared by {@link computeMetrics} and the streamed judgement (streamedJudgement.ts), which gets the same per-row
 * values without holding the matrix. `ks` are effective Ks (see effectiveKs); `p1(i)` = probs[i][1], needed with
 * 2 classes only (sklearn's binary rule).
 */
export function metricsFromRows(
  classes: string[],
  labels: ArrayLike<number>,
  indices: ArrayLike<number> | undefined,
  ks: number[],
  pred: ArrayLike<number>,
  rank: ArrayLike<number>,
  p1: ((i: number) => number) | null,
  ap: (number | null)[],
): Metrics {
  const k = classes.length;
  const n = indices ? indices.length : labels.length;
  // sklearn's binary rule for Recall@1 with 2 classes needs to know whether all probs[:, 1] lie in [0, 1]
  // (they are >= 0: ProbabilityMatrix rejects negative values).
  let binaryThreshold = 0.5;
  if (k === 2 && p1) {
    for (let s = 0; s < n; s++) {
      const i = indices ? indices[s] : s;
      if (p1(i) > 1) binaryThreshold = 0;
    }
  }

  const confusion = new Float64Array(k * k);
  const hits = ks.map(() => new Float64Array(k));
  for (let s = 0; s < n; s++) {
    const i = indices ? indices[s] : s;
    const y = labels[i];
    confusion[y * k + pred[s]]++;
    const binaryHit = k === 2 && p1 !== null && (p1(i) > binaryThreshold ? 1 : 0) === y;
    for (let t = 0; t < ks.length; t++) {
      if (k === 2 ? binaryHit : rank[s] < ks[t]) hits[t][y]++;
    }
  }

  const support = new Float64Array(k);
  const predicted = new Float64Array(k);
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      support[a] += confusion[a * k + b];
      predicted[b] += confusion[a * k + b];
    }
  }

  const perClass: ClassMetrics[] = [];
  let correct = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c * k + c];
    correct += tp;
    const precision = ratio(tp, predicted[c]);
    const recall = ratio(tp, support[c]);
    const recallAtK: Record<string, number> = {};
    ks.forEach((kk, t) => (recallAtK[String(kk)] = ratio(hits[t][c], support[c])));
    perClass.push({
      class: classes[c],
      support: support[c],
      predicted: predicted[c],
      precision,
      recall,
      f1: f1Of(precision, recall),
      recallAtK,
      averagePrecision: ap[c],
    });
  }

  const recallAtK: Record<string, number> = {};
  ks.forEach((kk, t) => (recallAtK[String(kk)] = hits[t].reduce((a, b) => a + b, 0) / n));

  return {
    classes: [...classes],
    n,
    top1Accuracy: correct / n,
    balancedAccuracy: mean(perClass.filter((m) => m.support > 0).map((m) => m.recall)),
    recallAtK,
    macro: averageScores(perClass.filter((m) => m.support > 0 || m.predicted > 0), () => 1),
    weighted: averageScores(perClass, (m) => m.support),
    perClass,
    confusionMatrix: Array.from({ length: k }, (_, a) => Array.from(confusion.subarray(a * k, (a + 1) * k))),
  };
}

/** Values (rows x classes) read by one row unit. */
const VALUES_PER_ROW_UNIT = 1 << 23;

/** The per-row pass of computeMetrics over evaluated rows s (row indices[s], or s), shared with helper threads. */
export interface RowPassData {
  matrix: SharedProbabilityMatrix;
  labels: Int32Array;
  indices: Int32Array | null;
  n: number;
  rowsPerUnit: number;
  /** Output: argmax of row s, the lowest index on ties. */
  pred: Int32Array;
  /** Output: sklearn's rank of the label: classes scoring higher, plus equal-scoring classes with a higher index. */
  rank: Int32Array;
  /** Output: self[i] = float32 pattern of probs[i][labels[i]] (the AP's positive scores). */
  self: Int32Array;
}

const rowViews = new WeakMap<RowPassData, { bits: Int32Array[]; rowsPerChunk: number; k: number }>();

/**
 * Argmax and label rank of rows s0 .. s0 + rowsPerUnit. Reads float32 patterns as int32: for non-negative floats
 * (no NaN, no -0: see ProbabilityMatrix.push) integer order is value order. The row is split at the label y so that
 * the rank is one branch-free comparison per value: v > py before y, v >= py after it.
 */
export function rowPassUnit(data: RowPassData, unit: number): void {
  let views = rowViews.get(data);
  if (!views) {
    const { chunks, rowsPerChunk, numClasses } = data.matrix;
    views = { bits: chunks.map((c) => new Int32Array(c.buffer, c.byteOffset, c.length)), rowsPerChunk, k: numClasses };
    rowViews.set(data, views);
  }
  const { bits, rowsPerChunk, k } = views;
  const { labels, indices, pred, rank, self } = data;
  const s0 = unit * data.rowsPerUnit;
  const s1 = Math.min(data.n, s0 + data.rowsPerUnit);
  for (let s = s0; s < s1; s++) {
    const i = indices ? indices[s] : s;
    const chunk = Math.floor(i / rowsPerChunk);
    const d = bits[chunk];
    const o = (i - chunk * rowsPerChunk) * k;
    const mid = o + labels[i];
    const end = o + k;
    const py = d[mid];
    let best = d[o];
    let arg = o;
    let count = 0;
    let j = o;
    // Four values at a time; a new maximum is rare: one test for the four (best - v < 0 when v > best).
    for (; j + 3 < mid; j += 4) {
      const v0 = d[j];
      const v1 = d[j + 1];
      const v2 = d[j + 2];
      const v3 = d[j + 3];
      count += ((py - v0) >>> 31) + ((py - v1) >>> 31) + ((py - v2) >>> 31) + ((py - v3) >>> 31);
      if (((best - v0) | (best - v1) | (best - v2) | (best - v3)) < 0) {
        for (let q = j; q < j + 4; q++) {
          if (d[q] > best) {
            best = d[q];
            arg = q;
          }
        }
      }
    }
    for (; j < mid; j++) {
      const v = d[j];
      if (v > best) {
        best = v;
        arg = j;
      }
      count += (py - v) >>> 31;
    }
    if (py > best) {
      best = py;
      arg = mid;
    }
    for (j = mid + 1; j + 3 < end; j += 4) {
      const v0 = d[j];
      const v1 = d[j + 1];
      const v2 = d[j + 2];
      const v3 = d[j + 3];
      count += 4 - ((v0 - py) >>> 31) - ((v1 - py) >>> 31) - ((v2 - py) >>> 31) - ((v3 - py) >>> 31);
      if (((best - v0) | (best - v1) | (best - v2) | (best - v3)) < 0) {
        for (let q = j; q < j + 4; q++) {
          if (d[q] > best) {
            best = d[q];
            arg = q;
          }
        }
      }
    }
    for (; j < end; j++) {
      const v = d[j];
      if (v > best) {
        best = v;
        arg = j;
      }
      count += ((v - py) >>> 31) ^ 1;
    }
    pred[s] = arg - o;
    rank[s] = count;
    self[i] = py;
  }
}

const runRowPass = defineJob('metricsRows', rowPassUnit);

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function averageScores(rows: ClassMetrics[], weight: (m: ClassMetrics) => number): AveragedScores {
  let w = 0;
  let p = 0;
  let r = 0;
  let f = 0;
  for (const m of rows) {
    const x = weight(m);
    w += x;
    p += x * m.precision;
    r += x * m.recall;
    f += x * m.f1;
  }
  return { precision: ratio(p, w), recall: ratio(r, w), f1: ratio(f, w) };
}

/**
 * Metrics per split: rows are grouped by `splits[i]` (rows with an undefined split are skipped) and each group is
 * passed to {@link computeMetrics} as `indices`. Keys keep first-appearance order.
 */
export function computeMetricsBySplit(
  input: MetricsInput,
  splits: ArrayLike<string | undefined>,
  options: Omit<MetricsOptions, 'indices'> = {},
): Record<string, Metrics> {
  if (splits.length !== input.labels.length) {
    throw new ClipLensError('predictions-mismatch', `${splits.length} split names but ${input.labels.length} labels`);
  }
  const groups = new Map<string, number[]>();
  for (let i = 0; i < splits.length; i++) {
    const s = splits[i];
    if (s === undefined) continue;
    let g = groups.get(s);
    if (!g) groups.set(s, (g = []));
    g.push(i);
  }
  const out: Record<string, Metrics> = {};
  for (const [split, indices] of groups) setOwn(out, split, computeMetrics(input, { ...options, indices }));
  return out;
}
