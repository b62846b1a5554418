/**
 * Exports of an evaluation report, as pure functions of the report (no I/O):
 * - {@link jsonReport}: the report itself, pretty-printed;
 * - {@link perClassCsv}: per-class metrics as RFC 4180 CSV;
 * - {@link htmlReport}: a self-contained static HTML page (inline CSS, no script, no remote content).
 *
 * The bands of the headline metrics come from metricCatalogue.ts and the warning order from warnings.ts, which the
 * report panel shares; this module is host-side only (the panel does not import it).
 */
import { headlineK, headlineMetrics, probeRecallByClass, reportBands, type HeadlineMetric, type MetricBands } from './metricCatalogue';
import type { ClassMetrics, EvalReport, LabelIssue, Metrics } from './report';
import { samplesOf } from './sampleTable';
import { sortWarnings } from './warnings';

/** One off-diagonal cell of a confusion matrix. */
export interface Confusion {
  trueClass: string;
  predictedClass: string;
  count: number;
  /** count / support of the true class. */
  rate: number;
}

/** The largest off-diagonal cells, by count then rate, at most `limit`. */
export function topConfusions(metrics: Metrics, limit: number): Confusion[] {
  const out: Confusion[] = [];
  const { classes, confusionMatrix } = metrics;
  for (let i = 0; i < classes.length; i++) {
    const row = confusionMatrix[i];
    let support = 0;
    for (const v of row) support += v;
    for (let j = 0; j < classes.length; j++) {
      if (i === j || row[j] === 0) continue;
      out.push({ trueClass: classes[i], predictedClass: classes[j], count: row[j], rate: row[j] / support });
    }
  }
  out.sort((a, b) => b.count - a.count || b.rate - a.rate || a.trueClass.localeCompare(b.trueClass));
  return out.slice(0, limit);
}

/** Report arrays that grow with the dataset: written a block of elements at a time by {@link jsonReportChunks}. */
const STREAMED_ARRAYS: ReadonlySet<string> = new Set(['samples', 'labelIssues', 'errors']);
const STREAMED_BLOCK = 1024;

/**
 * `JSON.stringify(report, null, indent)` in pieces, byte for byte: the arrays that grow with the dataset (samples,
 * label issues, errors) a block of elements at a time, so that writing the report of a large dataset never holds it
 * as one string (10,000 samples make about 6 MB of JSON; a million, over half a gigabyte).
 */
export function* jsonReportChunks(report: EvalReport, indent = 1): Generator<string> {
  const pad = ' '.repeat(indent);
  const p = pad.length;
  // A value's JSON one level deeper, as the report's keys have it: stringified inside an array (no pass over the
  // text to indent its lines: at a million samples that pass cost about 0.25 s), then that array's "[\n" + pad and
  // "\n]" cut off. Without indentation, as it is.
  const nested = (value: unknown) => (p > 0 ? (JSON.stringify([value], null, indent) as string).slice(2 + p, -2) : JSON.stringify(value));
  let sep = '';
  yield '{';
  for (const [key, value] of Object.entries(report)) {
    if (value === undefined || typeof value === 'function') continue;
    const head = `${sep}\n${pad}${JSON.stringify(key)}: `;
    sep = ',';
    if (STREAMED_ARRAYS.has(key) && Array.isArray(value) && value.length > 0) {
      yield `${head}[`;
      // STREAMED_BLOCK elements at a time: one stringify per block (a million calls cost more than their output), its
      // elements one level deeper (the block's own brackets cut off: "[" + elements + "\n" + pad + "]").
      for (let i = 0; i < value.length; i += STREAMED_BLOCK) {
        const json = nested(value.slice(i, i + STREAMED_BLOCK));
        yield `${i > 0 ? ',' : ''}${json.slice(1, json.length - (p > 0 ? 2 + p : 1))}`;
      }
      yield `\n${pad}]`;
    } else {
      yield head + nested(value);
    }
  }
  yield sep ? '\n}' : '}';
}

/**
 * The report as pretty JSON (2-space indent, trailing newline), exactly as loaded; a report whose samples were read
 * from its sidecar gets them inline (the export is one self-contained file: the sidecar's name would not resolve
 * next to it).
 */
export function jsonReport(report: EvalReport): string {
  if (Array.isArray(report.samples)) return JSON.stringify(report, null, 2) + '\n';
  const { samplesFile: _f, ...rest } = report;
  return JSON.stringify({ ...rest, samples: samplesOf(report).toArray() }, null, 2) + '\n';
}

/** A number for CSV: up to 6 decimals, no exponent for ordinary values, empty for null/NaN. */
function csvNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  return String(Math.round(v * 1e6) / 1e6);
}

/**
 * A text field for CSV: quoted when it holds a comma, quote or line break (RFC 4180). A leading = + @ tab or CR, or a
 * '-' not starting a number, is prefixed with ' so spreadsheets do not run a class name as a formula (OWASP advice);
 * numeric-looking labels such as "-1" are kept as they are.
 */
export function csvText(s: string): string {
  const safe = /^(?:[=+@\t\r]|-(?![\d.]))/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/**
 * Per-class metrics as CSV (CRLF line ends, header row): class, support, predicted, precision, recall, then
 * probe_recall when the linear probe ran (as the panel's class table shows it: out of sample over all evaluated
 * images, whichever split), f1, recall@K for each K measured, average_precision. `split` selects
 * `metricsBySplit[split]`.
 */
export function perClassCsv(report: EvalReport, split?: string): string {
  const metrics = split ? report.metricsBySplit?.[split] : report.metrics;
  if (!metrics) throw new Error(split ? `No metrics for split '${split}'` : 'The report has no metrics');
  const ks = Object.keys(metrics.recallAtK).sort((a, b) => Number(a) - Number(b));
  const probe = probeRecallByClass(report);
  const header = ['class', 'support', 'predicted', 'precision', 'recall', ...(probe ? ['probe_recall'] : []), 'f1', ...ks.map((k) => `recall@${k}`), 'average_precision'];
  const lines = [header.join(',')];
  for (const c of metrics.perClass) {
    lines.push(
      [
        csvText(c.class),
        String(c.support),
        String(c.predicted),
        csvNumber(c.precision),
        csvNumber(c.recall),
        ...(probe ? [csvNumber(probe.get(c.class))] : []),
        csvNumber(c.f1),
        ...ks.map((k) => csvNumber(c.recallAtK[k])),
        csvNumber(c.averagePrecision),
      ].join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

function pct(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(digits)}%`;
}

export interface HtmlReportOptions {
  /** PNG data URL of the confusion matrix (from the panel's canvas), embedded as an image. */
  matrixPng?: string;
  /** Label issues listed at most (default 200). */
  maxLabelIssues?: number;
  /** Matrices up to this many classes are also written as an HTML table (default 24). */
  maxTableMatrixClasses?: number;
}

const HTML_STYLE = `
:root { color-scheme: light dark; --fg:#1f2328; --muted:#59636e; --bg:#ffffff; --card:#f6f8fa; --line:#d1d9e0;
  --good:#1a7f37; --fair:#9a6700; --poor:#cf222e; --bar:#0969da; --err:#cf222e; --warn:#9a6700; --info:#0969da; }
@media (prefers-color-scheme: dark) { :root { --fg:#e6edf3; --muted:#9198a1; --bg:#0d1117; --card:#151b23; --line:#3d444d;
  --good:#3fb950; --fair:#d29922; --poor:#f85149; --bar:#4493f8; --err:#f85149; --warn:#d29922; --info:#4493f8; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-left-width: 4px; border-radius: 6px; padding: 10px 14px; }
.card .v { font-size: 26px; font-weight: 600; } .card .l { color: var(--muted); }
.card.good { border-left-color: var(--good); } .card.fair { border-left-color: var(--fair); } .card.poor { border-left-color: var(--poor); }
.band { font-size: 12px; font-weight: 600; text-transform: uppercase; }
.band.good { color: var(--good); } .band.fair { color: var(--fair); } .band.poor { color: var(--poor); }
ul.warnings { list-style: none; padding: 0; margin: 0; }
ul.warnings li { border: 1px solid var(--line); border-left-width: 4px; border-radius: 6px; padding: 8px 12px; margin: 0 0 8px; background: var(--card); }
li.error { border-left-color: var(--err); } li.warning { border-left-color: var(--warn); } li.info { border-left-color: var(--info); }
.sev { font-weight: 600; margin-right: 6px; text-transform: uppercase; font-size: 12px; }
li.error .sev { color: var(--err); } li.warning .sev { color: var(--warn); } li.info .sev { color: var(--info); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
th { color: var(--muted); font-weight: 600; position: sticky; top: 0; background: var(--bg); }
td.poor { color: var(--poor); font-weight: 600; }
table.matrix td { text-align: center; min-width: 28px; }
table.matrix td.d { font-weight: 600; }
img.matrix { max-width: 100%; border: 1px solid var(--line); border-radius: 6px; image-rendering: pixelated; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
`;

function card(metric: HeadlineMetric): string {
  const { band, label, value } = metric;
  return `<div class="card ${band}"><div class="l">${escapeHtml(label)}</div><div class="v">${pct(value)}</div><div class="band ${band}">${band}</div></div>`;
}

function classRow(c: ClassMetrics, k: string | null, bands: MetricBands, probe: Map<string, number> | null): string {
  const poor = (v: number) => (v < bands.accuracy.poor ? ' class="poor"' : '');
  const probeRecall = probe?.get(c.class);
  const probeCell = probe ? (probeRecall === undefined ? '<td>–</td>' : `<td${poor(probeRecall)}>${pct(probeRecall)}</td>`) : '';
  return `<tr><td class="text">${escapeHtml(c.class)}</td><td>${c.support}</td><td>${c.predicted}</td><td${poor(c.precision)}>${pct(
    c.precision,
  )}</td><td${poor(c.recall)}>${pct(c.recall)}</td>${probeCell}<td${poor(c.f1)}>${pct(c.f1)}</td>${
    k ? `<td>${pct(c.recallAtK[k])}</td>` : ''
  }<td>${c.averagePrecision === null ? '–' : c.averagePrecision.toFixed(3)}</td></tr>`;
}

function matrixTable(metrics: Metrics): string {
  const { classes, confusionMatrix } = metrics;
  let maxOff = 0;
  confusionMatrix.forEach((row, i) => row.forEach((v, j) => i !== j && v > maxOff && (maxOff = v)));
  const head = classes.map((c) => `<th title="${escapeHtml(c)}">${escapeHtml(c.length > 6 ? c.slice(0, 5) + '…' : c)}</th>`).join('');
  const rows = confusionMatrix
    .map((row, i) => {
      const cells = row
        .map((v, j) => {
          if (v === 0) return '<td></td>';
          return i === j ? `<td class="d">${v}</td>` : `<td class="poor">${v}</td>`;
        })
        .join('');
      return `<tr><th class="text">${escapeHtml(classes[i])}</th>${cells}</tr>`;
    })
    .join('');
  return `<table class="matrix"><thead><tr><th class="text">true \\ predicted</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

function issueRow(issue: LabelIssue): string {
  return `<tr><td>${issue.rank}</td><td class="text"><code>${escapeHtml(issue.path ?? `#${issue.index}`)}</code></td><td class="text">${escapeHtml(
    issue.given,
  )}</td><td class="text">${escapeHtml(issue.suggested)}</td><td>${issue.score.toFixed(3)}</td></tr>`;
}

/**
 * A self-contained static HTML report: header and headline metrics with their bands, warnings, the confusion matrix
 * (the given PNG, and an HTML table for small class counts), the most confused pairs, per-class metrics and label
 * issues. It carries a CSP that forbids scripts and remote loads, and adapts to the reader's light/dark preference.
 */
export function htmlReport(report: EvalReport, options: HtmlReportOptions = {}): string {
  const m = report.metrics;
  const maxIssues = options.maxLabelIssues ?? 200;
  const datasetName = report.dataset.root.split(/[\\/]/).filter(Boolean).pop() ?? report.dataset.root;
  const k = m ? headlineK(report, m) : null;
  const parts: string[] = [];
  parts.push(`<h1>CLIP Lens report: ${escapeHtml(datasetName)}</h1>`);
  parts.push(
    `<p class="meta">${escapeHtml(report.dataset.root)} · ${escapeHtml(report.dataset.format)} · model <code>${escapeHtml(
      report.model.id,
    )}</code> · ${report.dataset.counts.evaluated.toLocaleString('en-US')} of ${report.dataset.counts.samples.toLocaleString(
      'en-US',
    )} images evaluated · ${escapeHtml(report.createdAt)}</p>`,
  );
  if (m) {
    parts.push('<div class="cards">');
    for (const metric of headlineMetrics(report, m)) parts.push(card(metric));
    parts.push('</div>');
  } else {
    parts.push('<p>No sample could be evaluated, so there are no metrics.</p>');
  }

  const warnings = sortWarnings(report.warnings);
  parts.push(`<h2>Warnings (${warnings.length})</h2>`);
  if (warnings.length === 0) parts.push('<p class="meta">None.</p>');
  else {
    parts.push('<ul class="warnings">');
    for (const w of warnings) {
      const paths = w.paths?.length ? `<br>${w.paths.map((p) => `<code>${escapeHtml(p)}</code>`).join(' · ')}` : '';
      parts.push(`<li class="${w.severity}"><span class="sev">${w.severity}</span>${escapeHtml(w.message)}${paths}</li>`);
    }
    parts.push('</ul>');
  }

  if (m) {
    parts.push(`<h2>Confusion matrix (${m.classes.length} classes; rows: true class, columns: prediction)</h2>`);
    if (options.matrixPng && /^data:image\/png;base64,[A-Za-z0-9+/=]+$/.test(options.matrixPng)) {
      parts.push(`<img class="matrix" alt="Confusion matrix" src="${options.matrixPng}">`);
    }
    if (m.classes.length <= (options.maxTableMatrixClasses ?? 24)) parts.push(matrixTable(m));
    const confusions = topConfusions(m, 25);
    if (confusions.length) {
      parts.push('<h2>Most confused pairs</h2><table><thead><tr><th class="text">True class</th><th class="text">Predicted as</th><th>Images</th><th>Share of class</th></tr></thead><tbody>');
      for (const c of confusions) {
        parts.push(
          `<tr><td class="text">${escapeHtml(c.trueClass)}</td><td class="text">${escapeHtml(c.predictedClass)}</td><td>${c.count}</td><td>${pct(c.rate)}</td></tr>`,
        );
      }
      parts.push('</tbody></table>');
    }
    const probe = probeRecallByClass(report);
    parts.push(
      `<h2>Per-class metrics</h2><table><thead><tr><th class="text">Class</th><th>Support</th><th>Predicted</th><th>Precision</th><th>${
        probe ? 'Zero-shot recall</th><th>Probe recall' : 'Recall'
      }</th><th>F1</th>${k ? `<th>Recall@${k}</th>` : ''}<th>AP</th></tr></thead><tbody>`,
    );
    for (const c of m.perClass) parts.push(classRow(c, k, reportBands(report), probe));
    parts.push('</tbody></table>');
  }

  if (report.labelIssues.length) {
    const shown = [...report.labelIssues].sort((a, b) => a.rank - b.rank).slice(0, maxIssues);
    parts.push(
      `<h2>Likely label errors (${report.labelIssues.length}${shown.length < report.labelIssues.length ? `, first ${shown.length}` : ''})</h2>`,
    );
    parts.push('<table><thead><tr><th>Rank</th><th class="text">Image</th><th class="text">Label</th><th class="text">Suggested</th><th>Label quality</th></tr></thead><tbody>');
    for (const issue of shown) parts.push(issueRow(issue));
    parts.push('</tbody></table>');
  }

  if (report.errors.length) {
    parts.push(`<h2>Dataset problems (${report.errors.length})</h2><ul>`);
    for (const e of report.errors.slice(0, 500)) {
      const where = e.file ? `<code>${escapeHtml(e.file)}${e.line ? `:${e.line}` : ''}</code> ` : e.path ? `<code>${escapeHtml(e.path)}</code> ` : '';
      parts.push(`<li>${where}${escapeHtml(e.message)}</li>`);
    }
    parts.push('</ul>');
  }

  parts.push(
    `<footer>Generated by ${escapeHtml(report.tool.name)} ${escapeHtml(report.tool.version)} · prompts: ${escapeHtml(
      report.templates.name,
    )} (${report.templates.count}) · ${(report.timing.totalMs / 1000).toFixed(1)} s</footer>`,
  );

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CLIP Lens report: ${escapeHtml(datasetName)}</title>
<style>${HTML_STYLE}</style>
</head>
<body>
${parts.join('\n')}
</body>
</html>
`;
}
