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
 */
import { ClipLensError } from './errors';
import type { AveragedScores, ClassMetrics, Metrics } from './report';
import type { ProbabilityMatrix } from './probabilities';
import { averagePrecisionByClass } from './retrieval';

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

  // sklearn's binary rule for Recall@1 with 2 classes needs to know whether all probs[:, 1] lie in [0, 1]
  // (they are >= 0: ProbabilityMatrix rejects negative values).
  let binaryThreshold = 0.5;
  if (k === 2) {
    for (let s = 0; s < n; s++) {
      const i = indices ? indices[s] : s;
      const p1 = probs.chunkOf(i)[probs.offsetOf(i) + 1];
      if (p1 > 1) binaryThreshold = 0;
    }
  }

  const confusion = new Float64Array(k * k);
  const hits = ks.map(() => new Float64Array(k));
  for (let s = 0; s < n; s++) {
    const i = indices ? indices[s] : s;
    const d = probs.chunkOf(i);
    const o = probs.offsetOf(i);
    const y = labels[i];
    const py = d[o + y];
    let best = d[o]; // argmax (lowest index on ties), fused with the rank count: one read of the row
    let arg = 0;
    // sklearn's position of y: classes scoring higher, plus equal-scoring classes with a higher index.
    // Counted branch-free (+(a > b)): the comparison is unpredictable on flat rows.
    let rank = 0;
    for (let j = 0; j < k; j++) {
      const v = d[o + j];
      if (v > best) {
        best = v;
        arg = j;
      }
      rank += +(v > py);
    }
    for (let j = y + 1; j < k; j++) rank += +(d[o + j] === py);
    confusion[y * k + arg]++;
    for (let t = 0; t < ks.length; t++) {
      const hit = k === 2 ? (d[o + 1] > binaryThreshold ? 1 : 0) === y : rank < ks[t];
      if (hit) hits[t][y]++;
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
  const ap = averagePrecisionByClass(probs, labels, indices);

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
  for (const [split, indices] of groups) out[split] = computeMetrics(input, { ...options, indices });
  return out;
}
