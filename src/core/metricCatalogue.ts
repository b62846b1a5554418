/**
 * The headline metrics and how a number is judged (good / fair / poor), shared by every place that shows them: the
 * report panel (webview), the HTML and CSV exports, the CLI summary and the status bar. Pure and node-free: the
 * panel's browser bundle imports it.
 */
import type { EvalReport, Metrics } from './report';

/** How a headline number is judged. */
export type Band = 'good' | 'fair' | 'poor';

/** Band thresholds: a value >= `good` is good, < `poor` is poor, anything between is fair. */
export const METRIC_BANDS = {
  /** Top-1 accuracy, balanced accuracy and macro F1. */
  accuracy: { good: 0.7, poor: 0.5 },
  /** Recall@K for K > 1: the right class should almost always be in the shortlist. */
  recallAtK: { good: 0.9, poor: 0.7 },
} as const;

export type BandKind = keyof typeof METRIC_BANDS;

export function metricBand(kind: BandKind, value: number): Band {
  const t = METRIC_BANDS[kind];
  if (value >= t.good) return 'good';
  if (value < t.poor) return 'poor';
  return 'fair';
}

/** The Recall@K entry the panel headlines: the report's top-K when it was measured, else the largest K measured. */
export function headlineK(report: Pick<EvalReport, 'topK'>, metrics: Pick<Metrics, 'recallAtK'>): string | null {
  const keys = Object.keys(metrics.recallAtK);
  if (keys.length === 0) return null;
  if (keys.includes(String(report.topK))) return String(report.topK);
  return keys.reduce((a, b) => (Number(b) > Number(a) ? b : a));
}
