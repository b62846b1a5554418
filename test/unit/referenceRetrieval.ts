/**
 * Plain, sort-based reference versions of scikit-learn's precision_recall_curve, average_precision_score and the
 * precision/recall/F1 at one threshold, for tests only: they check the fast AP of src/core/retrieval.ts and the
 * panel's curve (src/core/prCurve.ts) against each other and against scikit-learn's recorded answers.
 */
import { ClipLensError } from '../../src/core/errors';

/** sklearn's precision_recall_curve output: thresholds ascending; precision/recall have one more entry (1, 0). */
export interface PrecisionRecallCurve {
  precision: number[];
  recall: number[];
  thresholds: number[];
}

/** Confusion counts and ratios when retrieving every sample with score >= threshold. */
export interface ThresholdPoint {
  threshold: number;
  tp: number;
  fp: number;
  fn: number;
  /** tp / (tp + fp); 0 when nothing is retrieved (sklearn precision_score's zero_division default). */
  precision: number;
  /** tp / (tp + fn); 0 when there are no positives. */
  recall: number;
  /** Harmonic mean of precision and recall; 0 when both are 0. */
  f1: number;
}

function checkPair(scores: ArrayLike<number>, positives: ArrayLike<unknown>): void {
  if (scores.length !== positives.length) {
    throw new ClipLensError('retrieval-length-mismatch', `${scores.length} scores but ${positives.length} positive flags`);
  }
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new ClipLensError('retrieval-bad-score', `score ${i} is ${scores[i]}, not a finite number`);
  }
}

/**
 * Precision/recall at every distinct score, like sklearn.metrics.precision_recall_curve(positives, scores):
 * thresholds ascending, precision[i]/recall[i] for score >= thresholds[i], then a final (precision 1, recall 0).
 * With no positives recall is 1 everywhere (sklearn warns and does the same). `positives[i]` is truthy for positives.
 */
export function precisionRecallCurve(scores: ArrayLike<number>, positives: ArrayLike<unknown>): PrecisionRecallCurve {
  checkPair(scores, positives);
  const n = scores.length;
  if (n === 0) throw new ClipLensError('retrieval-empty', 'precision/recall curve of 0 samples');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const tps: number[] = [];
  const fps: number[] = [];
  const thr: number[] = [];
  let tp = 0;
  for (let r = 0; r < n; r++) {
    const i = order[r];
    if (positives[i]) tp++;
    if (r === n - 1 || scores[order[r + 1]] !== scores[i]) {
      tps.push(tp);
      fps.push(r + 1 - tp);
      thr.push(scores[i]);
    }
  }
  const total = tps[tps.length - 1];
  const precision: number[] = [];
  const recall: number[] = [];
  for (let t = tps.length - 1; t >= 0; t--) {
    precision.push(tps[t] / (tps[t] + fps[t]));
    recall.push(total === 0 ? 1 : tps[t] / total);
  }
  precision.push(1);
  recall.push(0);
  return { precision, recall, thresholds: thr.reverse() };
}

/** sklearn average_precision_score(positives, scores); null when there is no positive. */
export function averagePrecision(scores: ArrayLike<number>, positives: ArrayLike<unknown>): number | null {
  checkPair(scores, positives);
  let any = false;
  for (let i = 0; i < positives.length && !any; i++) any = Boolean(positives[i]);
  if (!any) return null;
  const { precision, recall } = precisionRecallCurve(scores, positives);
  let ap = 0;
  for (let i = 0; i < recall.length - 1; i++) ap -= (recall[i + 1] - recall[i]) * precision[i];
  return ap;
}

/**
 * Counts when retrieving every sample with score >= threshold (one-vs-rest), with sklearn precision_score /
 * recall_score / f1_score zero-division defaults (0).
 */
export function precisionRecallAtThreshold(scores: ArrayLike<number>, positives: ArrayLike<unknown>, threshold: number): ThresholdPoint {
  checkPair(scores, positives);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const retrieved = scores[i] >= threshold;
    if (positives[i]) {
      if (retrieved) tp++;
      else fn++;
    } else if (retrieved) fp++;
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const denom = precision + recall;
  const f1 = denom === 0 ? 0 : (2 * precision * recall) / denom;
  return { threshold, tp, fp, fn, precision, recall, f1 };
}
