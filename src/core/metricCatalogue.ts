/**
 * The metric catalogue: the headline metrics (key, label, help, value, band, format) and how a number is judged
 * (good / fair / poor), read by every place that shows them: the report panel's header and class table (webview),
 * the HTML and CSV exports, the CLI summary and the status bar. Pure and node-free: the panel's browser bundle
 * imports it.
 *
 * Bands follow the user's warning thresholds (the report records them, `EvalReport.thresholds`): accuracy-like
 * numbers are good from `goodAccuracy` and poor below `lowAccuracy`; Recall@K (K > 1) is good from `recallAtK.min`
 * and poor below RECALL_AT_K_POOR (or below min, when min is lower). Without thresholds the defaults apply.
 */
import type { EvalReport, Metrics } from './report';
import { DEFAULT_WARNING_THRESHOLDS, type WarningThresholds } from './warnings';

/** How a headline number is judged. */
export type Band = 'good' | 'fair' | 'poor';

/** A value >= `good` is good, < `poor` is poor, anything between is fair. */
export interface BandThresholds {
  good: number;
  poor: number;
}

/** Which thresholds judge a number: accuracy-like rates, or Recall@K for K > 1 (a shortlist should hold the label). */
export type BandKind = 'accuracy' | 'recallAtK';

export type MetricBands = Readonly<Record<BandKind, BandThresholds>>;

/** Recall@K (K > 1) below this is poor (unless the user's recallAtK.min is lower still). */
export const RECALL_AT_K_POOR = 0.7;

/** The bands for a set of warning thresholds (any left out take their defaults). */
export function metricBands(thresholds: Partial<Pick<WarningThresholds, 'lowAccuracy' | 'goodAccuracy' | 'recallAtK'>> = {}): MetricBands {
  const good = thresholds.goodAccuracy ?? DEFAULT_WARNING_THRESHOLDS.goodAccuracy;
  const poor = Math.min(thresholds.lowAccuracy ?? DEFAULT_WARNING_THRESHOLDS.lowAccuracy, good);
  const kGood = thresholds.recallAtK?.min ?? DEFAULT_WARNING_THRESHOLDS.recallAtK.min;
  return { accuracy: { good, poor }, recallAtK: { good: kGood, poor: Math.min(RECALL_AT_K_POOR, kGood) } };
}

/** The default bands: accuracy good from 70 %, poor below 50 %; Recall@K good from 90 %, poor below 70 %. */
export const METRIC_BANDS: MetricBands = metricBands();

/** The bands of a report: from the thresholds it was evaluated with. */
export function reportBands(report: Pick<EvalReport, 'thresholds'>): MetricBands {
  return metricBands(report.thresholds ?? {});
}

export function metricBand(kind: BandKind, value: number, bands: MetricBands = METRIC_BANDS): Band {
  const t = bands[kind];
  if (value >= t.good) return 'good';
  if (value < t.poor) return 'poor';
  return 'fair';
}

/** The band kind of Recall@k: Recall@1 is top-1 accuracy. */
export function recallAtKBandKind(k: string | number): BandKind {
  return String(k) === '1' ? 'accuracy' : 'recallAtK';
}

/** The Recall@K entry the views headline: the report's top-K when it was measured, else the largest K measured. */
export function headlineK(report: Pick<EvalReport, 'topK'>, metrics: Pick<Metrics, 'recallAtK'>): string | null {
  const keys = Object.keys(metrics.recallAtK);
  if (keys.length === 0) return null;
  if (keys.includes(String(report.topK))) return String(report.topK);
  return keys.reduce((a, b) => (Number(b) > Number(a) ? b : a));
}

/**
 * The linear probe's per-class recall by class name, when the report carries it (`predictor.perClass[].probeRecall`,
 * out of sample by cross-validation over all evaluated images, whichever split is shown); null when the probe did not
 * run. The panel's class table shows it as "Probe recall" and the CSV export as `probe_recall`.
 */
export function probeRecallByClass(report: Pick<EvalReport, 'predictor'>): Map<string, number> | null {
  const per = report.predictor?.perClass ?? [];
  const out = new Map<string, number>();
  for (const c of per) if (c.probeRecall !== null) out.set(c.class, c.probeRecall);
  return out.size > 0 ? out : null;
}

/** A rate as a percentage with one decimal: 0.875 -> "87.5%". */
export function formatRate(value: number, digits = 1): string {
  return `${(100 * value).toFixed(digits)}%`;
}

export type HeadlineKey = 'top1Accuracy' | 'balancedAccuracy' | 'recallAtK' | 'macroF1';

/** One headline metric of the catalogue. `k` is the headline K (see headlineK), null when no Recall@K was measured. */
export interface MetricDefinition {
  key: HeadlineKey;
  label: (k: string) => string;
  help: (k: string) => string;
  /** The value, or undefined when the metric does not apply (Recall@K without a K). */
  value: (m: Metrics, k: string | null) => number | undefined;
  band: (k: string | null) => BandKind;
  format: (value: number) => string;
}

export const HEADLINE_METRICS: readonly MetricDefinition[] = [
  {
    key: 'top1Accuracy',
    label: () => 'Top-1 accuracy',
    help: () => 'Share of images whose best prediction is their label.',
    value: (m) => m.top1Accuracy,
    band: () => 'accuracy',
    format: (v) => formatRate(v),
  },
  {
    key: 'balancedAccuracy',
    label: () => 'Balanced accuracy',
    help: () => 'Recall averaged over classes: every class counts the same, however rare.',
    value: (m) => m.balancedAccuracy,
    band: () => 'accuracy',
    format: (v) => formatRate(v),
  },
  {
    key: 'recallAtK',
    label: (k) => `Recall@${k}`,
    help: (k) => `Share of images whose label is among the ${k} best predictions.`,
    value: (m, k) => (k === null ? undefined : m.recallAtK[k]),
    band: (k) => (k === null ? 'recallAtK' : recallAtKBandKind(k)),
    format: (v) => formatRate(v),
  },
  {
    key: 'macroF1',
    label: () => 'Macro F1',
    help: () => 'F1 averaged over classes.',
    value: (m) => m.macro.f1,
    band: () => 'accuracy',
    format: (v) => formatRate(v),
  },
];

/** A headline metric of one report, resolved: what the views print. */
export interface HeadlineMetric {
  key: HeadlineKey;
  label: string;
  help: string;
  value: number;
  bandKind: BandKind;
  /** The thresholds that judge it (the user's, via the report). */
  thresholds: BandThresholds;
  band: Band;
  /** The value formatted, e.g. "87.5%". */
  text: string;
}

/**
 * The headline metrics of a report (or of one split's metrics), in display order, judged with the report's
 * thresholds; Recall@K is left out when no K was measured.
 */
export function headlineMetrics(report: Pick<EvalReport, 'topK' | 'thresholds'>, metrics: Metrics): HeadlineMetric[] {
  const k = headlineK(report, metrics);
  const bands = reportBands(report);
  const out: HeadlineMetric[] = [];
  for (const d of HEADLINE_METRICS) {
    const value = d.value(metrics, k);
    if (value === undefined) continue;
    const bandKind = d.band(k);
    out.push({
      key: d.key,
      label: d.label(k ?? ''),
      help: d.help(k ?? ''),
      value,
      bandKind,
      thresholds: bands[bandKind],
      band: metricBand(bandKind, value, bands),
      text: d.format(value),
    });
  }
  return out;
}

/** One headline metric by key (undefined when it does not apply). */
export function headlineMetric(report: Pick<EvalReport, 'topK' | 'thresholds'>, metrics: Metrics, key: HeadlineKey): HeadlineMetric | undefined {
  return headlineMetrics(report, metrics).find((h) => h.key === key);
}
