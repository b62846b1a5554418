/**
 * Judgements a person acts on, computed from metrics and sample content hashes. Each {@link Warning} has a stable
 * kind, the numbers behind it and one plain sentence. Rules (thresholds in {@link DEFAULT_WARNING_THRESHOLDS}):
 *
 * - `rare-class-low-recall` (warning): a rare class ({@link rareClassRule}) whose recall is below rareClassMinRecall.
 *   The accuracy paradox:
 *   a high top-1 accuracy hides a class the model fails on. When zero-shot is near chance and another predictor
 *   (linear probe, kNN) finds the label errors, `judge` gives that predictor's metrics and the rare-class warnings are
 *   computed from them instead (they carry `predictor`): zero-shot's would flag nearly every rare class only because
 *   the class names mean nothing to CLIP, next to the `zero-shot-at-chance` warning that already says so.
 * - `class-imbalance` (warning): largest / smallest support (classes with support) >= imbalanceRatio; the message
 *   puts top-1 accuracy next to balanced accuracy.
 * - `low-accuracy`: top-1 accuracy < lowAccuracy is an error; between lowAccuracy and goodAccuracy it is a warning
 *   (a "fair" model). `good-accuracy` (info): top-1 accuracy >= goodAccuracy.
 * - `low-recall-at-k` (warning): Recall@k below min, when the metrics have that K (classes > k).
 * Duplicates, leakage between splits and outliers (`leakage`, `conflicting-labels`, `duplicate`, `class-outliers`)
 * come from duplicates.ts, which sees near copies as well as exact ones.
 *
 * The metric rules run on the overall metrics and again on each split of `metricsBySplit` (those warnings carry
 * `split`). Warnings are sorted most severe first (error, warning, info); within a severity they keep the order
 * above: overall before splits, classes in class order.
 */
import { ClipLensError } from './errors';
import type { Metrics, Warning } from './report';

export interface WarningThresholds {
  /** A class is rare when its support is at most this fraction of the evaluated images... */
  rareClassMaxFraction: number;
  /** ...or at most this many images. */
  rareClassMaxSupport: number;
  /** A rare class with recall below this is flagged. */
  rareClassMinRecall: number;
  /** Largest / smallest class support at or above this is flagged as imbalance. */
  imbalanceRatio: number;
  /** Top-1 accuracy below this is an error. */
  lowAccuracy: number;
  /** Top-1 accuracy at or above this is good; between lowAccuracy and this is "fair" (a warning). */
  goodAccuracy: number;
  /** Recall@k below min is flagged. */
  recallAtK: { k: number; min: number };
}

export const DEFAULT_WARNING_THRESHOLDS: WarningThresholds = {
  rareClassMaxFraction: 0.02,
  rareClassMaxSupport: 20,
  rareClassMinRecall: 0.5,
  imbalanceRatio: 10,
  lowAccuracy: 0.5,
  goodAccuracy: 0.7,
  recallAtK: { k: 5, min: 0.9 },
};

/**
 * The one rule for "rare class" (warnings, gate and panel read it): support > 0 and either at most
 * rareClassMaxSupport images, or at most rareClassMaxFraction of the evaluated images while also at most half the
 * median support of the classes with images. The second half keeps a balanced many-class dataset (ImageNet's 1,000
 * classes are 0.1% each) from calling every class rare: a class as large as the typical class is not rare.
 */
export function rareClassRule(
  perClass: readonly { support: number }[],
  n: number,
  t: Pick<WarningThresholds, 'rareClassMaxFraction' | 'rareClassMaxSupport'>,
): (support: number) => boolean {
  const supports = perClass.map((c) => c.support).filter((s) => s > 0).sort((a, b) => a - b);
  const mid = supports.length >> 1;
  const median = supports.length === 0 ? 0 : supports.length % 2 === 1 ? (supports[mid] as number) : ((supports[mid - 1] as number) + (supports[mid] as number)) / 2;
  return (support) => support > 0 && n > 0 && (support <= t.rareClassMaxSupport || (support / n <= t.rareClassMaxFraction && support <= median / 2));
}

export interface WarningsInput {
  metrics: Metrics;
  metricsBySplit?: Record<string, Metrics>;
  /**
   * The predictor that judges when zero-shot is near chance, with its metrics over the same rows (and splits): the
   * rare-class warnings follow it. The other metric rules stay on `metrics` (the headline numbers are zero-shot's).
   */
  judge?: { predictor: 'linear-probe' | 'knn'; metrics: Metrics; metricsBySplit?: Record<string, Metrics> };
}

/** How a judging predictor is named in a warning's sentence. */
const JUDGE_NAMES: Record<NonNullable<WarningsInput['judge']>['predictor'], string> = { 'linear-probe': 'linear probe', knn: 'kNN' };

const SEVERITY_RANK: Record<Warning['severity'], number> = { error: 0, warning: 1, info: 2 };

/** "12%", "12.5%": a ratio as a percentage with at most one decimal. */
function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function checkThresholds(t: WarningThresholds): void {
  const numbers: [string, number][] = [
    ['rareClassMaxFraction', t.rareClassMaxFraction],
    ['rareClassMaxSupport', t.rareClassMaxSupport],
    ['rareClassMinRecall', t.rareClassMinRecall],
    ['imbalanceRatio', t.imbalanceRatio],
    ['lowAccuracy', t.lowAccuracy],
    ['goodAccuracy', t.goodAccuracy],
    ['recallAtK.k', t.recallAtK?.k],
    ['recallAtK.min', t.recallAtK?.min],
  ];
  for (const [name, v] of numbers) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new ClipLensError('warnings-bad-threshold', `warning threshold ${name} must be a finite number >= 0, got ${v}`);
    }
  }
  if (t.lowAccuracy > t.goodAccuracy) {
    throw new ClipLensError('warnings-bad-threshold', `lowAccuracy (${t.lowAccuracy}) must not exceed goodAccuracy (${t.goodAccuracy})`);
  }
}

/**
 * The metric rules for one Metrics object (overall when split is undefined). The rare-class rule reads `rare`: `m`
 * itself, or the judging predictor's metrics of the same rows (null: that predictor has none for them).
 */
function metricWarnings(m: Metrics, t: WarningThresholds, split?: string, judge?: { predictor: 'linear-probe' | 'knn'; metrics: Metrics | null }): Warning[] {
  const out: Warning[] = [];
  const where = split === undefined ? '' : `In split '${split}': `;
  const tag = split === undefined ? {} : { split };
  const acc = m.top1Accuracy;
  const correct = Math.round(acc * m.n);
  const accText = `Top-1 accuracy is ${pct(acc)} (${correct} of ${m.n} images)`;

  if (acc < t.lowAccuracy) {
    out.push({
      kind: 'low-accuracy', severity: 'error', ...tag,
      message: `${where}${accText}: below ${pct(t.lowAccuracy)}, the model gets most images wrong.`,
      numbers: { top1Accuracy: acc, n: m.n, threshold: t.lowAccuracy },
    });
  } else if (acc < t.goodAccuracy) {
    out.push({
      kind: 'low-accuracy', severity: 'warning', ...tag,
      message: `${where}${accText}: fair, below the ${pct(t.goodAccuracy)} of a good model.`,
      numbers: { top1Accuracy: acc, n: m.n, threshold: t.goodAccuracy },
    });
  } else {
    out.push({
      kind: 'good-accuracy', severity: 'info', ...tag,
      message: `${where}${accText}, balanced accuracy ${pct(m.balancedAccuracy)}.`,
      numbers: { top1Accuracy: acc, balancedAccuracy: m.balancedAccuracy, n: m.n, threshold: t.goodAccuracy },
    });
  }

  const rare = judge ? judge.metrics : m;
  // The judge's accuracy and recall, named: "the linear probe's top-1 accuracy", "linear probe recall".
  const whose = judge ? `The ${JUDGE_NAMES[judge.predictor]}'s top-1 accuracy` : 'Top-1 accuracy';
  const recallOf = judge ? `${JUDGE_NAMES[judge.predictor]} recall` : 'recall';
  const judgeTag = judge ? { predictor: judge.predictor } : {};
  const isRare = rare ? rareClassRule(rare.perClass, rare.n, t) : () => false;
  for (const c of rare?.perClass ?? []) {
    if (!isRare(c.support) || c.recall >= t.rareClassMinRecall) continue;
    const rareAcc = rare!.top1Accuracy;
    const fraction = c.support / rare!.n;
    const hits = Math.round(c.recall * c.support);
    out.push({
      kind: 'rare-class-low-recall', severity: 'warning', class: c.class, ...tag, ...judgeTag,
      // The accuracy paradox reads "accuracy is high, but this class fails"; when the overall accuracy is itself below
      // the rare-class minimum, "but" would be false (0.3% overall, 9% on the class): the class is named on its own.
      message:
        rareAcc >= t.rareClassMinRecall && rareAcc > c.recall
          ? `${where}${whose} is ${pct(rareAcc)}, but '${c.class}' has ${recallOf} ${pct(c.recall)} (${hits} of ${c.support} images): not production-ready.`
          : `${where}'${c.class}' is a rare class (${c.support} of ${rare!.n} images) with ${recallOf} ${pct(c.recall)} (${hits} of ${c.support}): not production-ready.`,
      numbers: { recall: c.recall, support: c.support, correct: hits, supportFraction: fraction, top1Accuracy: rareAcc, threshold: t.rareClassMinRecall },
    });
  }

  const withSupport = m.perClass.filter((c) => c.support > 0);
  if (withSupport.length >= 2) {
    const largest = withSupport.reduce((a, b) => (b.support > a.support ? b : a));
    const smallest = withSupport.reduce((a, b) => (b.support < a.support ? b : a));
    const ratio = largest.support / smallest.support;
    if (ratio >= t.imbalanceRatio) {
      out.push({
        kind: 'class-imbalance', severity: 'warning', class: smallest.class, ...tag,
        message:
          `${where}Classes are imbalanced: '${largest.class}' has ${largest.support} images, '${smallest.class}' ` +
          `${smallest.support} (${Math.round(ratio * 10) / 10}x). Top-1 accuracy ${pct(acc)} vs balanced accuracy ` +
          `${pct(m.balancedAccuracy)}: judge the model by the balanced figure, which weighs every class equally.`,
        numbers: { ratio, largest: largest.support, smallest: smallest.support, top1Accuracy: acc, balancedAccuracy: m.balancedAccuracy, threshold: t.imbalanceRatio },
      });
    }
  }

  const { k, min } = t.recallAtK;
  const rk = m.recallAtK[String(k)];
  if (rk !== undefined && rk < min) {
    out.push({
      kind: 'low-recall-at-k', severity: 'warning', ...tag,
      message: `${where}Recall@${k} is ${pct(rk)}: for ${pct(1 - rk)} of images the right class is not even among the model's ${k} best guesses.`,
      numbers: { recallAtK: rk, k, threshold: min },
    });
  }
  return out;
}

/** The thresholds in force: each one given, else its default (a fresh object). */
export function effectiveWarningThresholds(thresholds: Partial<WarningThresholds> = {}): WarningThresholds {
  const t: WarningThresholds = { ...DEFAULT_WARNING_THRESHOLDS, ...thresholds };
  return { ...t, recallAtK: { ...t.recallAtK } };
}

/** All warnings for a report, most severe first. Throws ClipLensError on an invalid threshold. */
export function computeWarnings(input: WarningsInput, thresholds: Partial<WarningThresholds> = {}): Warning[] {
  const t = effectiveWarningThresholds(thresholds);
  checkThresholds(t);
  const { judge } = input;
  const judged = (split?: string) =>
    judge && { predictor: judge.predictor, metrics: split === undefined ? judge.metrics : (judge.metricsBySplit?.[split] ?? null) };
  const all = [
    ...metricWarnings(input.metrics, t, undefined, judged()),
    ...Object.entries(input.metricsBySplit ?? {}).flatMap(([split, m]) => metricWarnings(m, t, split, judged(split))),
  ];
  return all.sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity]); // stable: keeps rule order
}

/** Warnings in reading order (the panel, the HTML export and the Problems tree): errors first; within a severity, rare-class recall warnings first. */
export function sortWarnings(warnings: readonly Warning[]): Warning[] {
  const kindFirst = (w: Warning) => (w.kind === 'rare-class-low-recall' ? 0 : 1);
  return [...warnings].sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || kindFirst(a) - kindFirst(b));
}
