/**
 * The report panel's samples, host side: the panel gets the report without its samples (any size: one code path)
 * plus the few samples its lists name (label issues, warnings, duplicates, leakage, outliers), and asks for the rows
 * of a grid by range, source, sort and split ({@link querySamples}); the host answers from the report's sample table
 * (core/sampleTable.ts: the inline array or the sidecar's columns). The webview holds a few pages, never all samples.
 *
 * Pure (no Node, no vscode): the extension's ReportPanel and the webview test harness answer with the same code.
 */
import type { GridSort, GridSource, PanelSampleRow, PanelSamplesQuery, SearchHitItem } from './panelProtocol';
import type { EvalReport, ReportSample } from './report';
import { samplesOf, type SampleTable } from './sampleTable';

/** Most rows answered per request. */
export const MAX_PAGE_ROWS = 1000;

/** The CLIP score of the image's own label: from its probabilities when known, else its top-K (0 when not in it). */
export function labelScore(s: ReportSample, classes?: readonly string[]): number {
  const k = classes ? classes.indexOf(s.label) : -1;
  if (k >= 0 && s.probabilities && s.probabilities.length === classes!.length) return s.probabilities[k] ?? 0;
  return s.predicted.find((p) => p.class === s.label)?.score ?? 0;
}

export function topScore(s: ReportSample): number {
  return s.predicted[0]?.score ?? 0;
}

/** Sample indices of a grid source, in report order (evaluated samples of `split`, all splits when null). */
export function sourceIndices(report: EvalReport, source: GridSource, split: string | null): number[] {
  const table = samplesOf(report);
  const f = table.field;
  const out: number[] = [];
  if (source.kind === 'issues') {
    for (const issue of report.labelIssues) {
      const i = issue.path !== undefined ? table.indexOfPath(issue.path) : issue.index;
      if (i >= 0 && i < table.length && (split === null || f.split(i) === split)) out.push(i);
    }
    return out;
  }
  // Fields, not samples: a scan of a million rows makes no objects.
  const label = source.kind === 'class' ? source.class : source.cell.trueClass;
  for (let i = 0; i < table.length; i++) {
    if (f.label(i) !== label || f.failed(i) || (split !== null && f.split(i) !== split)) continue;
    if (source.kind === 'cell' && f.top1(i) !== source.cell.predictedClass) continue;
    out.push(i);
  }
  return out;
}

/** Orders sample indices for a grid (stable: ties keep report order). */
export function sortIndices(report: EvalReport, indices: readonly number[], sort: GridSort | 'report'): number[] {
  if (sort === 'report') return [...indices];
  const table = samplesOf(report);
  const classes = report.metrics?.classes ?? report.dataset.classes;
  const f = table.field;
  const keyed = indices.map((i, order) => ({ i, order, key: sort === 'path' ? f.path(i) : sort === 'labelScore' ? labelScore(table.at(i) as ReportSample, classes) : -f.topScore(i) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.order - b.order));
  return keyed.map((k) => k.i);
}

/** Ordered indices of recent queries, per table (a grid scrolled to its end asks the same query many times). */
const orders = new WeakMap<SampleTable, Map<string, number[]>>();
const ORDERS_KEPT = 4;

function orderOf(report: EvalReport, q: PanelSamplesQuery): number[] {
  const table = samplesOf(report);
  let cache = orders.get(table);
  if (!cache) orders.set(table, (cache = new Map()));
  const key = JSON.stringify([q.source, q.sort, q.split]);
  let order = cache.get(key);
  if (order) {
    cache.delete(key);
  } else {
    order = sortIndices(report, sourceIndices(report, q.source, q.split), q.sort);
    while (cache.size >= ORDERS_KEPT) cache.delete(cache.keys().next().value as string);
  }
  cache.set(key, order);
  return order;
}

/** Panel form of a sample: without its content hash, and without probabilities when the report's are stripped. */
export function panelSample(s: ReportSample, stripProbabilities: boolean): ReportSample {
  if (!s.contentHash && !(stripProbabilities && s.probabilities)) return s;
  const { contentHash: _hash, probabilities, ...rest } = s;
  return stripProbabilities || !probabilities ? rest : { ...rest, probabilities };
}

/** Rows [start, end) of a grid query (at most {@link MAX_PAGE_ROWS}) and how many rows the query has. */
export function querySamples(report: EvalReport, q: PanelSamplesQuery, start: number, end: number, stripProbabilities = false): { total: number; rows: PanelSampleRow[] } {
  const order = orderOf(report, q);
  const table = samplesOf(report);
  const a = Math.max(0, Math.min(start, order.length));
  const b = Math.max(a, Math.min(end, order.length, a + MAX_PAGE_ROWS));
  const rows: PanelSampleRow[] = [];
  for (let at = a; at < b; at++) {
    const index = order[at] as number;
    rows.push({ index, sample: panelSample(table.at(index) as ReportSample, stripProbabilities) });
  }
  return { total: order.length, rows };
}

/** Indices of the samples the report's lists name: label issues, warning paths, duplicates, leakage, outliers. */
export function referencedIndices(report: EvalReport): number[] {
  const table = samplesOf(report);
  const out = new Set<number>();
  const byPath = (p: string) => {
    const i = table.indexOfPath(p);
    if (i >= 0) out.add(i);
  };
  for (const issue of report.labelIssues) {
    if (issue.path !== undefined) byPath(issue.path);
    else if (table.at(issue.index)) out.add(issue.index);
  }
  for (const w of report.warnings) for (const p of w.paths ?? []) byPath(p);
  for (const g of report.duplicates ?? []) for (const p of g.paths) byPath(p);
  for (const l of report.leakage ?? []) for (const p of [...l.paths, ...l.copies]) byPath(p);
  for (const o of report.outliers ?? []) byPath(o.path);
  return [...out].sort((x, y) => x - y);
}

/**
 * Search hits with their samples as the report has them now (index and data), for a panel that holds no samples of
 * its own; a hit whose image is gone drops out.
 */
export function withSamples(report: EvalReport, hits: SearchHitItem[]): SearchHitItem[] {
  const table = samplesOf(report);
  return hits.flatMap((h) => {
    const index = table.indexOfPath(h.path);
    return index < 0 ? [] : [{ path: h.path, score: h.score, index, sample: panelSample(table.at(index) as ReportSample, true) }];
  });
}
