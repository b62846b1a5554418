/**
 * Words and numbers the editor shows: status-bar text, progress messages, sizes and rates. Pure, unit-tested.
 */
import type { EvaluateProgress } from '../core/evaluate';
import type { DownloadProgress } from '../core/modelDownload';
import type { GateResult } from '../core/gate';
import type { EvalReport, Metrics } from '../core/report';
import { headlineMetrics, metricBand, reportBands, type Band } from '../core/metricCatalogue';

/** 0.875 -> "87.5%", 1 -> "100%", 0.12345 -> "12.3%". */
export function pct(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const v = Math.round(x * 1000) / 10;
  return `${Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)}%`;
}

/** Bytes for people: "950 B", "12.3 kB", "352.0 MB", "1.22 GB" (SI units, as download sizes are given). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  if (n < 1000) return `${Math.round(n)} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** "0.4 s", "12 s", "3 min 05 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** Shortens a name for the status bar: "a_very_long_class_name" -> "a_very_long_cla…". */
export function shorten(s: string, max = 18): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** The class with the lowest recall among classes with images (ties: the first in class order). */
export function worstClass(metrics: Metrics | null): { class: string; recall: number; support: number } | null {
  if (!metrics) return null;
  let worst: { class: string; recall: number; support: number } | null = null;
  for (const c of metrics.perClass) {
    if (c.support === 0) continue;
    if (!worst || c.recall < worst.recall) worst = { class: c.class, recall: c.recall, support: c.support };
  }
  return worst;
}

/**
 * One line of an evaluation's progress, e.g. "412 / 1,000 images · 38.5 images/s · 300 already embedded". Not "from
 * cache": on a first run the only cache hits are duplicates of an image embedded moments before.
 */
export function progressMessage(p: EvaluateProgress): string {
  switch (p.phase) {
    case 'reading':
      return 'Reading the dataset…';
    case 'prompts':
      return `Embedding prompts for ${p.total.toLocaleString('en-US')} classes…`;
    case 'metrics':
      return 'Computing metrics and label issues…';
    case 'images': {
      const parts = [`${p.done.toLocaleString('en-US')} / ${p.total.toLocaleString('en-US')} images`];
      if (p.rate > 0) parts.push(`${p.rate >= 10 ? p.rate.toFixed(0) : p.rate.toFixed(1)} images/s`);
      if (p.fromCache > 0) parts.push(`${p.fromCache.toLocaleString('en-US')} already embedded`);
      return parts.join(' · ');
    }
  }
}

/** How a model of a run is named in its progress, as the comparison names it: its spec, "(int8)" when quantized. */
export function runName(spec: string, precision: 'fp32' | 'int8'): string {
  return `${spec}${precision === 'int8' ? ' (int8)' : ''}`;
}

/** Fraction of the images done by one evaluation, undefined outside the image phase. */
function imageFraction(p: EvaluateProgress): number | undefined {
  return p.phase === 'images' && p.total > 0 ? p.done / p.total : undefined;
}

/**
 * The progress line of a run of one or more models (config "models", Compare): one model's is
 * {@link progressMessage}; two or more models' names each model's own ("ViT-B-32: 412 / 1,000 images · 38 images/s —
 * ViT-B-16: 380 / 1,000 images"), a model not heard from yet as "starting". The fraction done is the least advanced
 * model's while any is in its image phase (a model past it counts as done, one before it as 0).
 */
export function runsProgress(runs: { name: string; progress: EvaluateProgress | undefined }[]): { message: string; fraction: number | undefined } {
  if (runs.length === 1) {
    const p = runs[0]!.progress;
    return p ? { message: progressMessage(p), fraction: imageFraction(p) } : { message: 'Starting…', fraction: undefined };
  }
  const message = runs.map((r) => `${r.name}: ${r.progress ? progressMessage(r.progress) : 'starting'}`).join(' — ');
  if (!runs.some((r) => r.progress?.phase === 'images')) return { message, fraction: undefined };
  const fraction = Math.min(...runs.map((r) => (r.progress === undefined ? 0 : r.progress.phase === 'metrics' ? 1 : (imageFraction(r.progress) ?? 0))));
  return { message, fraction };
}

/** Overall download progress: "onnx/vision_model.onnx · 120.5 MB of ≈606.3 MB · 11.2 MB/s". */
export function downloadMessage(p: DownloadProgress, doneBefore: number, approxTotal: number): string {
  const done = doneBefore + p.bytes;
  const total = Math.max(approxTotal, done);
  return `${p.file} · ${formatBytes(done)} of ≈${formatBytes(total)}${p.bytesPerSecond > 0 ? ` · ${formatBytes(p.bytesPerSecond)}/s` : ''}`;
}

/** What the status bar shows after an evaluation. */
export interface StatusSummary {
  dataset: string;
  top1: number | null;
  /** How top-1 accuracy is judged with the report's thresholds (metricCatalogue.ts). */
  top1Band: Band | null;
  worst: { class: string; recall: number } | null;
  gate: { passed: boolean; failed: number; total: number } | null;
  /** The ratchet's part of the gate (checks against the baseline), when the gate sets gate.maxDrop. */
  ratchet: { failed: number; total: number; file?: string } | null;
  labelIssues: number;
  stale: boolean;
}

export function statusSummary(report: EvalReport, gate: GateResult | null, stale: boolean, datasetName: string): StatusSummary {
  const w = worstClass(report.metrics);
  return {
    dataset: datasetName,
    top1: report.metrics ? report.metrics.top1Accuracy : null,
    top1Band: report.metrics ? metricBand('accuracy', report.metrics.top1Accuracy, reportBands(report)) : null,
    worst: w ? { class: w.class, recall: w.recall } : null,
    gate: gate && gate.summary.total > 0 ? { passed: gate.passed, failed: gate.summary.failed, total: gate.summary.total } : null,
    ratchet: ratchetSummary(gate),
    labelIssues: report.labelIssues.length,
    stale,
  };
}

const RATCHET_KINDS = new Set(['top1AccuracyDrop', 'balancedAccuracyDrop', 'recallAtKDrop', 'classRecallDrop', 'baseline']);

/** The checks of the ratchet (gate.maxDrop against the baseline) within a gate result; null without any. */
export function ratchetSummary(gate: GateResult | null): StatusSummary['ratchet'] {
  const checks = gate?.checks.filter((c) => RATCHET_KINDS.has(c.kind)) ?? [];
  if (checks.length === 0) return null;
  const file = checks.find((c) => c.baseline)?.baseline?.file;
  return { failed: checks.filter((c) => !c.passed).length, total: checks.length, ...(file ? { file } : {}) };
}

/** Status-bar text with codicons, e.g. "$(eye) 87.5% · worst circle_red 40% · $(pass) gate". */
export function statusBarText(s: StatusSummary): string {
  const parts: string[] = [];
  parts.push(s.top1 === null ? '$(eye) CLIP: no result' : `$(eye) CLIP ${pct(s.top1)}`);
  if (s.worst) parts.push(`worst ${shorten(s.worst.class)} ${pct(s.worst.recall)}`);
  if (s.gate) parts.push(s.gate.passed ? '$(pass) gate' : `$(error) gate ${s.gate.failed}/${s.gate.total}${s.ratchet && s.ratchet.failed > 0 ? ` (${s.ratchet.failed} vs baseline)` : ''}`);
  let text = parts.join(' · ');
  if (s.stale) text += ' $(history)';
  return text;
}

/** Markdown lines of the status-bar tooltip (the caller wraps them in a MarkdownString). */
export function statusTooltipLines(report: EvalReport, gate: GateResult | null, extra: { datasetName: string; stale: boolean; modelNote?: string; handled?: number }): string[] {
  const m = report.metrics;
  const lines: string[] = [`**CLIP Lens: ${escapeMarkdown(extra.datasetName)}**`, ''];
  if (m) {
    const headline = headlineMetrics(report, m);
    const top1 = headline.find((x) => x.key === 'top1Accuracy')!;
    const balanced = headline.find((x) => x.key === 'balancedAccuracy')!;
    const rk = headline.find((x) => x.key === 'recallAtK');
    lines.push(`${top1.label} **${pct(top1.value)}** (${top1.band}) · balanced ${pct(balanced.value)}${rk ? ` · ${rk.label} ${pct(rk.value)}` : ''}`, '');
    const w = worstClass(m);
    if (w) lines.push(`Worst class: **${escapeMarkdown(w.class)}**, recall ${pct(w.recall)} of ${w.support} image${w.support === 1 ? '' : 's'}`, '');
  } else {
    lines.push('No image could be evaluated.', '');
  }
  // Fixed or ignored since the evaluation: counted out, so the tooltip is not stale after a fix.
  const open = Math.max(0, report.labelIssues.length - (extra.handled ?? 0));
  const handled = report.labelIssues.length - open;
  lines.push(`${open} likely label error${open === 1 ? '' : 's'}${handled ? ` (${handled} fixed or ignored since the evaluation)` : ''} · ${report.warnings.length} warning${report.warnings.length === 1 ? '' : 's'}`, '');
  if (gate && gate.summary.total > 0) {
    if (gate.passed) lines.push(`Gate: all ${gate.summary.total} thresholds met`, '');
    else {
      lines.push(`Gate: **${gate.summary.failed} of ${gate.summary.total} thresholds not met**`);
      for (const c of gate.checks.filter((x) => !x.passed).slice(0, 5)) lines.push(`- ${escapeMarkdown(c.message)}`);
      lines.push('');
    }
    const r = ratchetSummary(gate);
    if (r) {
      const against = r.file ? ` against the baseline ${escapeMarkdown(r.file)}` : '';
      lines.push(r.failed === 0 ? `Ratchet: all ${r.total} drop checks within gate.maxDrop${against}` : `Ratchet: **${r.failed} of ${r.total} drop checks failed**${against}`, '');
    }
  }
  lines.push(`Model ${escapeMarkdown(report.model.id)}${report.model.quantized ? ' (quantized)' : ''} · ${report.dataset.counts.evaluated} images · ${new Date(report.createdAt).toLocaleString()}`);
  if (extra.modelNote) lines.push('', `_${escapeMarkdown(extra.modelNote)}_`);
  if (extra.stale) lines.push('', '$(history) The dataset changed since this evaluation.');
  lines.push('', 'Click to open the report.');
  return lines;
}

/** Escapes Markdown punctuation in text from the dataset (class names, paths). */
export function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, (c) => `\\${c}`);
}

/** The folder name of a dataset root, for titles. */
export function datasetName(root: string): string {
  const parts = root.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? root;
}
