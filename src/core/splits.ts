/**
 * Splits side by side, and the train-test gap.
 *
 * splitsSideBySide: the headline metrics and per-class recall of every split in columns (train, val, test first, in
 * that order, then the others), for the `eval` summary and `clip-lens metrics --input` with splits.
 *
 * overfittingWarnings: for a model trained on the train split (the user's own model's probabilities given to
 * `clip-lens metrics --input` with a `splits` array or `split` column), a top-1 accuracy on train more than
 * OVERFIT_GAP (10 points) above the held-out split (test, else val/valid/validation) is an `overfitting` warning;
 * so is each class whose recall is more than OVERFIT_GAP higher on train. The held-out figure is what to expect on new
 * data; the gap says the model learnt the training images rather than the classes (or the splits differ).
 */
import { computeMetricsBySplit, type MetricsInput } from './metrics';
import type { Metrics, Warning } from './report';

/** Train minus held-out top-1 accuracy (or class recall) above which `overfitting` is warned: 0.1 = 10 points. */
export const OVERFIT_GAP = 0.1;

const ORDER = ['train', 'training', 'val', 'valid', 'validation', 'dev', 'test'];

export interface SplitsSideBySide {
  splits: string[];
  /** Images per split. */
  n: number[];
  headline: { metric: string; name: string; values: (number | null)[] }[];
  recall: { class: string; values: (number | null)[] }[];
}

/** The split names in display order: train, val, test (and their synonyms) first, then the rest as given. */
export function orderedSplits(names: string[]): string[] {
  const rank = (s: string) => {
    const i = ORDER.indexOf(s.toLowerCase());
    return i < 0 ? ORDER.length : i;
  };
  return names.map((s, i) => ({ s, i })).sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i).map((x) => x.s);
}

export function splitsSideBySide(metricsBySplit: Record<string, Metrics>, classes: string[]): SplitsSideBySide {
  const splits = orderedSplits(Object.keys(metricsBySplit));
  const ms = splits.map((s) => metricsBySplit[s]);
  const ks = [...new Set(ms.flatMap((m) => Object.keys(m.recallAtK)))].filter((k) => k !== '1').sort((a, b) => Number(a) - Number(b));
  const headline: SplitsSideBySide['headline'] = [
    { metric: 'top1Accuracy', name: 'top-1 accuracy', values: ms.map((m) => m.top1Accuracy) },
    { metric: 'balancedAccuracy', name: 'balanced accuracy', values: ms.map((m) => m.balancedAccuracy) },
    { metric: 'macroF1', name: 'macro F1', values: ms.map((m) => m.macro.f1) },
    ...ks.map((k) => ({ metric: `recallAtK.${k}`, name: `Recall@${k}`, values: ms.map((m) => m.recallAtK[k] ?? null) })),
  ];
  const recall = classes.map((c) => ({
    class: c,
    values: ms.map((m) => {
      const row = m.perClass.find((x) => x.class === c);
      return row && row.support > 0 ? row.recall : null;
    }),
  }));
  return { splits, n: ms.map((m) => m.n), headline, recall };
}

function findSplit(names: string[], wanted: string[]): string | undefined {
  for (const w of wanted) {
    const hit = names.find((n) => n.toLowerCase() === w);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const points = (x: number) => `${(100 * x).toFixed(1)} points`;

/** `overfitting` warnings for a train-test gap beyond `threshold` (default OVERFIT_GAP); none without both splits. */
export function overfittingWarnings(metricsBySplit: Record<string, Metrics>, threshold = OVERFIT_GAP): Warning[] {
  const names = Object.keys(metricsBySplit);
  const train = findSplit(names, ['train', 'training']);
  const held = findSplit(names, ['test', 'val', 'valid', 'validation', 'dev']);
  if (train === undefined || held === undefined) return [];
  const a = metricsBySplit[train];
  const b = metricsBySplit[held];
  const out: Warning[] = [];
  const gap = a.top1Accuracy - b.top1Accuracy;
  if (gap > threshold + 1e-12) {
    out.push({
      kind: 'overfitting',
      severity: 'warning',
      split: held,
      message: `top-1 accuracy is ${pct(a.top1Accuracy)} on ${train} but ${pct(b.top1Accuracy)} on ${held}: a gap of ${points(gap)}, more than ${points(threshold)}. The model may be overfitting ${train} (or the splits differ); expect the ${held} figure on new data.`,
      numbers: { trainTop1Accuracy: a.top1Accuracy, heldOutTop1Accuracy: b.top1Accuracy, gap, threshold },
    });
  }
  for (const ca of a.perClass) {
    const cb = b.perClass.find((x) => x.class === ca.class);
    if (!cb || ca.support === 0 || cb.support === 0) continue;
    const g = ca.recall - cb.recall;
    if (g <= threshold + 1e-12) continue;
    out.push({
      kind: 'overfitting',
      severity: 'warning',
      class: ca.class,
      split: held,
      message: `recall of ${ca.class} is ${pct(ca.recall)} on ${train} (${ca.support} images) but ${pct(cb.recall)} on ${held} (${cb.support} images): a gap of ${points(g)}, more than ${points(threshold)}.`,
      numbers: { trainRecall: ca.recall, heldOutRecall: cb.recall, gap, threshold, trainSupport: ca.support, heldOutSupport: cb.support },
    });
  }
  return out;
}

/** The side-by-side table as text lines (percentages), `indent` before each; per-class rows limited to `maxClasses`. */
export function formatSplitsSideBySide(t: SplitsSideBySide, indent = '  ', maxClasses = Infinity): string[] {
  const cell = (v: number | null) => (v === null ? '-' : pct(v));
  const rows: string[][] = [['', ...t.splits.map((s, i) => `${s} (${t.n[i]})`)]];
  for (const h of t.headline) rows.push([h.name, ...h.values.map(cell)]);
  const classRows = t.recall.slice(0, maxClasses).map((r) => [`recall ${r.class}`, ...r.values.map(cell)]);
  const all = [...rows, ...classRows];
  const widths = all[0].map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => `${indent}${r.map((c, i) => (i === 0 ? c.padEnd(widths[0]) : c.padStart(widths[i]))).join('  ')}`.trimEnd();
  const out = rows.map(line);
  if (classRows.length > 0) out.push(...classRows.map(line));
  if (t.recall.length > classRows.length) out.push(`${indent}... ${t.recall.length - classRows.length} more classes in the JSON report`);
  return out;
}

/**
 * What `clip-lens metrics --input` adds for a file with splits: metrics per split, the splits side by side, and the
 * overfitting warnings.
 */
export function splitSections(input: MetricsInput, splits: string[], ks: number[]): { metricsBySplit: Record<string, Metrics>; splitsSideBySide: SplitsSideBySide; warnings: Warning[] } {
  const metricsBySplit = computeMetricsBySplit(input, splits, { ks });
  return { metricsBySplit, splitsSideBySide: splitsSideBySide(metricsBySplit, input.classes), warnings: overfittingWarnings(metricsBySplit) };
}
