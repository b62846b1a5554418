/** The human summary `clip-lens eval` prints. */
import { formatRate, headlineMetrics, metricBand, recallAtKBandKind, reportBands, type HeadlineMetric } from '../core/metricCatalogue';
import type { EvalReport, Metrics, ReportSample } from '../core/report';
import { formatSplitsSideBySide, splitsSideBySide } from '../core/splits';
import { DEFAULT_WARNING_THRESHOLDS } from '../core/warnings';
import { samplesOf } from '../core/sampleTable';

const pct = (x: number) => formatRate(x);

/** "good: >= 70%", "fair: 50% to 70%", "poor: < 50%" for a headline metric, with the report's thresholds. */
function bandNote(metric: HeadlineMetric): string {
  const g = formatRate(metric.thresholds.good).replace('.0%', '%');
  const b = formatRate(metric.thresholds.poor).replace('.0%', '%');
  return metric.band === 'good' ? `good: >= ${g}` : metric.band === 'poor' ? `poor: < ${b}` : `fair: ${b} to ${g}`;
}

function metricsLines(r: EvalReport, m: Metrics, indent = ''): string[] {
  const lines: string[] = [];
  const headline = headlineMetrics(r, m);
  const top1 = headline.find((h) => h.key === 'top1Accuracy')!;
  const balanced = headline.find((h) => h.key === 'balancedAccuracy')!;
  lines.push(`${indent}${top1.label.padEnd(19)}${top1.text.padStart(6)}  (${bandNote(top1)})`);
  lines.push(`${indent}${balanced.label.padEnd(19)}${balanced.text.padStart(6)}`);
  const ks = Object.keys(m.recallAtK).map(Number).sort((a, b) => a - b);
  if (ks.length > 0) {
    // The Recall@K the warnings check (thresholds.recallAtK.k, 5 by default), judged with its band.
    const k = String(r.thresholds?.recallAtK.k ?? DEFAULT_WARNING_THRESHOLDS.recallAtK.k);
    const rk = m.recallAtK[k];
    const bands = reportBands(r);
    const kind = recallAtKBandKind(k);
    const note = rk === undefined ? '' : `  (Recall@${k} ${metricBand(kind, rk, bands)}: ${rk >= bands[kind].good ? '>=' : 'should reach'} ${formatRate(bands[kind].good).replace('.0%', '%')})`;
    lines.push(`${indent}${'Recall@K'.padEnd(19)}${ks.map((k) => `@${k} ${pct(m.recallAtK[String(k)])}`).join('   ')}${note}`);
  }
  lines.push(`${indent}${'Macro P / R / F1'.padEnd(19)}${pct(m.macro.precision)} / ${pct(m.macro.recall)} / ${pct(m.macro.f1)}`);
  return lines;
}

export function formatSummary(r: EvalReport, options: { worst?: number; issues?: number } = {}): string {
  const lines: string[] = [];
  const d = r.dataset;
  lines.push(`CLIP Lens ${r.tool.version}: ${d.root}`);
  lines.push(`  ${d.counts.samples} images, ${d.classes.length} classes (${d.format}${d.splits ? `: ${d.splits.join(', ')}` : ''}), model ${r.model.id}${r.model.quantized ? ' (quantized)' : ''}, templates ${r.templates.name} (${r.templates.count})`);
  if (r.precision && r.precision.requested === 'auto') lines.push(`  precision ${r.precision.used} (auto: ${r.precision.reason})`);
  const e = r.embeddings;
  if (e) {
    const v = e.verified ? `verified on ${e.verified.n} images: cosine mean ${e.verified.meanCosine.toFixed(4)}, min ${e.verified.minCosine.toFixed(4)}` : `not verified (${e.verifySkipped ?? 'no image'})`;
    lines.push(`  embeddings ${e.dir}: ${e.rows} rows in ${e.shards} shard${e.shards === 1 ? '' : 's'} (${e.dtype}), ${v}`);
    lines.push(`  ${r.timing.imagesImported ?? 0} embeddings imported, ${d.counts.failed} failed, in ${(r.timing.totalMs / 1000).toFixed(1)} s`);
    const m = e.imagesNotOnDisk;
    if (m) lines.push(`  ${m.images} image${m.images === 1 ? '' : 's'} in ${m.folders} folder${m.folders === 1 ? '' : 's'} not on disk (e.g. ${m.example}): not opened; their duplicates come from the embeddings alone`);
  } else {
    lines.push(`  ${r.timing.imagesComputed} images inferred, ${r.timing.imagesFromCache} from cache, ${d.counts.failed} failed, in ${(r.timing.totalMs / 1000).toFixed(1)} s${r.timing.imagesComputed > 0 ? ` (${r.timing.imagesPerSecond.toFixed(1)} images/s)` : ''}`);
  }
  lines.push('');
  if (!r.metrics) {
    lines.push('No image could be evaluated.');
  } else {
    lines.push(...metricsLines(r, r.metrics, '  '));
    if (r.metricsBySplit && Object.keys(r.metricsBySplit).length > 0) {
      // The splits side by side: headline, then per-class recall (the classes whose recall differs most first).
      const t = splitsSideBySide(r.metricsBySplit, r.dataset.classes);
      const spread = (v: (number | null)[]) => {
        const xs = v.filter((x): x is number => x !== null);
        return xs.length > 1 ? Math.max(...xs) - Math.min(...xs) : -1;
      };
      t.recall.sort((a, b) => spread(b.values) - spread(a.values));
      lines.push('');
      lines.push('  Splits side by side:');
      lines.push(...formatSplitsSideBySide(t, '    ', options.worst ?? 5));
    }
    const worst = [...r.metrics.perClass].filter((c) => c.support > 0).sort((a, b) => a.recall - b.recall || b.support - a.support).slice(0, options.worst ?? 5);
    if (worst.length > 0) {
      lines.push('');
      lines.push('  Worst classes (by recall):');
      const w = Math.max(...worst.map((c) => c.class.length), 5);
      for (const c of worst) lines.push(`    ${c.class.padEnd(w)}  recall ${pct(c.recall).padStart(6)}  precision ${pct(c.precision).padStart(6)}  support ${c.support}`);
    }
  }
  if (r.warnings.length > 0) {
    lines.push('');
    lines.push(`  Warnings (${r.warnings.length}):`);
    for (const w of r.warnings) lines.push(`    ${w.severity === 'error' ? 'x' : w.severity === 'warning' ? '!' : 'i'} [${w.kind}] ${w.message}`);
  }
  if (r.duplicates && (r.duplicates.length > 0 || (r.outliers?.length ?? 0) > 0)) {
    const exact = r.duplicates.filter((g) => g.kind === 'exact').length;
    lines.push('');
    lines.push(`  Duplicates: ${exact} exact and ${r.duplicates.length - exact} near group${r.duplicates.length - exact === 1 ? '' : 's'}; ${r.outliers?.length ?? 0} outlier${r.outliers?.length === 1 ? '' : 's'} (listed in the JSON report)`);
    for (const l of r.leakage ?? []) {
      const withM = r.metricsBySplit?.[l.split];
      const without = l.metricsWithoutLeaked;
      lines.push(`    ${l.split}: ${l.paths.length} leaked from ${l.earlier.join(', ')}${withM && without ? `; top-1 ${pct(withM.top1Accuracy)} with them, ${pct(without.top1Accuracy)} without (n=${without.n})` : ''}`);
    }
  }
  if (r.labelIssues.length > 0) {
    const n = options.issues ?? 10;
    lines.push('');
    lines.push(`  Likely label errors (${r.labelIssues.length}, showing ${Math.min(n, r.labelIssues.length)}):`);
    for (const li of r.labelIssues.slice(0, n)) lines.push(`    ${String(li.rank).padStart(3)}. ${li.path ?? `#${li.index}`}: labelled '${li.given}', looks like '${li.suggested}' (p(given label) ${li.score < 0.001 ? li.score.toExponential(1) : li.score.toFixed(3)})`);
  }
  if (r.errors.length > 0) {
    lines.push('');
    lines.push(`  Problems (${r.errors.length}):`);
    for (const e of r.errors.slice(0, 10)) lines.push(`    ${e.file ?? e.path ?? ''}${e.line ? `:${e.line}` : ''}: ${e.message}`);
    if (r.errors.length > 10) lines.push(`    ... ${r.errors.length - 10} more in the JSON report`);
  }
  const table = samplesOf(r);
  const sampleErrors: ReportSample[] = [];
  for (let i = 0; i < table.length; i++) if (table.field.failed(i)) sampleErrors.push(table.at(i) as ReportSample);
  if (sampleErrors.length > 0) {
    lines.push('');
    lines.push(`  Unreadable images (${sampleErrors.length}):`);
    for (const s of sampleErrors.slice(0, 10)) lines.push(`    ${s.path}: ${s.error?.message}`);
  }
  return lines.join('\n') + '\n';
}
