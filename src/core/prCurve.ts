/**
 * One-vs-rest precision-recall curve of one class, following scikit-learn's precision_recall_curve: thresholds are
 * the distinct scores, ties are taken together. Only the curve, for drawing: average precision has one
 * implementation, the report's per-class AP (src/core/retrieval.ts, null for a class without positives); the panel
 * shows that figure next to the curve. Pure, DOM-free and node-free: the report panel's webview bundle imports it
 * (when samples carry probabilities), and so does the extension host (otherwise).
 */
import type { PrCurve } from './panelProtocol';

/** Most points kept for drawing; the curve is thinned by recall steps of 1/maxPoints. */
export const PR_CURVE_MAX_POINTS = 1000;

/**
 * @param scores score of the class for each sample; NaN = unknown (ranked after every known score, all tied)
 * @param positive 1 where the sample's true label is the class
 */
export function precisionRecallCurve(
  className: string,
  scores: ArrayLike<number>,
  positive: ArrayLike<number>,
  maxPoints = PR_CURVE_MAX_POINTS,
): PrCurve {
  const n = scores.length;
  if (positive.length !== n) throw new RangeError('scores and positive differ in length');
  const order: number[] = [];
  let positives = 0;
  let knownPositives = 0;
  let unknown = false;
  for (let i = 0; i < n; i++) {
    if (positive[i]) positives++;
    if (Number.isNaN(scores[i])) {
      unknown = true;
      continue;
    }
    if (positive[i]) knownPositives++;
    order.push(i);
  }
  order.sort((a, b) => scores[b] - scores[a]);

  const recall: number[] = [0];
  const precision: number[] = [1];
  let tp = 0;
  let fp = 0;
  const push = (r: number, p: number) => {
    recall.push(r);
    precision.push(p);
  };
  for (let k = 0; k < order.length; ) {
    const s = scores[order[k]];
    for (; k < order.length && scores[order[k]] === s; k++) {
      if (positive[order[k]]) tp++;
      else fp++;
    }
    push(positives ? tp / positives : 0, tp / (tp + fp));
  }
  if (unknown) {
    // Every sample with an unknown score counts at the last threshold: recall reaches 1 at the base rate.
    push(positives ? 1 : 0, n ? positives / n : 0);
  }
  const thin = thinCurve(recall, precision, maxPoints);
  return {
    class: className,
    recall: thin.recall,
    precision: thin.precision,
    positives,
    total: n,
    source: unknown ? 'top-k' : 'probabilities',
    coverage: positives ? knownPositives / positives : 1,
  };
}

/** Keeps the first and last points and, in between, the first point of every recall step of 1/maxPoints. */
export function thinCurve(recall: number[], precision: number[], maxPoints: number): { recall: number[]; precision: number[] } {
  if (recall.length <= maxPoints) return { recall, precision };
  const r: number[] = [recall[0]];
  const p: number[] = [precision[0]];
  let bucket = Math.floor(recall[0] * maxPoints);
  for (let i = 1; i < recall.length - 1; i++) {
    const b = Math.floor(recall[i] * maxPoints);
    if (b !== bucket) {
      bucket = b;
      r.push(recall[i]);
      p.push(precision[i]);
    }
  }
  r.push(recall[recall.length - 1]);
  p.push(precision[precision.length - 1]);
  return { recall: r, precision: p };
}

/** Minimal sample shape needed to score a class. */
export interface ScorableSample {
  label: string;
  split?: string;
  predicted: ReadonlyArray<{ class: string; score: number }>;
  probabilities?: ReadonlyArray<number>;
}

/**
 * The curve of `className` over evaluated samples (those with a prediction), optionally of one split: from the full
 * probability vectors when every sample has one, else from the top-K scores (unknown beyond the top-K).
 */
export function classPrCurve(
  className: string,
  classes: readonly string[],
  samples: readonly ScorableSample[],
  split: string | null = null,
): PrCurve {
  const ci = classes.indexOf(className);
  if (ci < 0) throw new RangeError(`Unknown class '${className}'`);
  const scored = samples.filter((s) => s.predicted.length > 0 && (split === null || s.split === split));
  const full = scored.length > 0 && scored.every((s) => s.probabilities && s.probabilities.length === classes.length);
  const scores = new Float64Array(scored.length);
  const positive = new Uint8Array(scored.length);
  scored.forEach((s, i) => {
    positive[i] = s.label === className ? 1 : 0;
    if (full) scores[i] = s.probabilities![ci];
    else scores[i] = s.predicted.find((p) => p.class === className)?.score ?? Number.NaN;
  });
  return precisionRecallCurve(className, scores, positive);
}
