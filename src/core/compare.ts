/**
 * Comparing two runs (`clip-lens compare A.json B.json`, `eval --baseline FILE`, the panel's "Compare with..."): two
 * eval reports or baselines (two runs, two models, two prompt sets) reduced to their baselines (core/baseline.ts) and
 * set side by side:
 * - headline metrics of A and B and the change (B - A);
 * - per class recall, precision and F1 of both, sorted by the largest change (a class of only one side sorts first);
 * - images (matched by content hash) whose prediction changed: fixed (wrong in A, right in B), broken (right in A,
 *   wrong in B), changed (wrong in both, differently); right or wrong against each run's own label;
 * - likely label errors new in B and gone since A;
 * - the difference confusion matrix B - A over the classes of both (rows true, columns predicted).
 * Runs made with another model, templates or predictor are compared all the same (that is the point of comparing
 * models): `setupDifferences` lists what differs.
 */
import { readFile } from 'node:fs/promises';
import { ClipLensError } from './errors';
import { isEvalReport, makeBaseline, parseJsonFile, setupDifferences, validateBaseline, type Baseline, type BaselineHeadline } from './baseline';
import type { EvalReport } from './report';
import { attachSidecar } from './reportSamples';
import type { ClassDelta, ClassFigures, ComparedRun, Comparison, HeadlineDelta, IssueChange, SampleChange } from './comparison';

export type { ClassDelta, ClassFigures, ComparedRun, Comparison, HeadlineDelta, IssueChange, SampleChange } from './comparison';

const r6 = (x: number) => Math.round(x * 1e6) / 1e6;
const delta = (a: number | null | undefined, b: number | null | undefined): number | null => (a === null || a === undefined || b === null || b === undefined ? null : r6(b - a));

function headlineDeltas(a: BaselineHeadline | null | undefined, b: BaselineHeadline | null | undefined): HeadlineDelta[] {
  const rows: HeadlineDelta[] = [];
  const add = (metric: string, name: string, x: number | undefined, y: number | undefined) => rows.push({ metric, name, a: x ?? null, b: y ?? null, delta: delta(x, y) });
  add('top1Accuracy', 'top-1 accuracy', a?.top1Accuracy, b?.top1Accuracy);
  add('balancedAccuracy', 'balanced accuracy', a?.balancedAccuracy, b?.balancedAccuracy);
  add('macroF1', 'macro F1', a?.macroF1, b?.macroF1);
  const ks = new Set([...Object.keys(a?.recallAtK ?? {}), ...Object.keys(b?.recallAtK ?? {})]);
  for (const k of [...ks].sort((x, y) => Number(x) - Number(y))) if (k !== '1') add(`recallAtK.${k}`, `Recall@${k}`, a?.recallAtK[k], b?.recallAtK[k]);
  return rows;
}

function describe(run: Baseline, name: string): ComparedRun {
  return {
    name,
    model: `${run.model.name}${run.model.quantized ? ' (int8)' : ''}`,
    templates: `${run.templates.name} (${run.templates.count})`,
    predictor: run.predictor,
    images: run.metrics?.n ?? 0,
  };
}

const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Compares run A with run B (both as baselines). Pure. */
export function compareRuns(a: Baseline, b: Baseline, names: [string, string] = ['A', 'B']): Comparison {
  // Classes.
  const classNames = [...a.dataset.classes, ...b.dataset.classes.filter((c) => !a.dataset.classes.includes(c))];
  const fig = (run: Baseline, c: string): ClassFigures | null => {
    if (!own(run.classes, c)) return null;
    const x = run.classes[c];
    return { support: x.support, recall: x.recall, precision: x.precision, f1: x.f1 };
  };
  const classes: ClassDelta[] = classNames.map((c) => {
    const fa = fig(a, c);
    const fb = fig(b, c);
    return { class: c, a: fa, b: fb, delta: fa && fb ? { recall: r6(fb.recall - fa.recall), precision: r6(fb.precision - fa.precision), f1: r6(fb.f1 - fa.f1) } : null };
  });
  const size = (d: ClassDelta) => (d.delta ? Math.max(Math.abs(d.delta.recall), Math.abs(d.delta.precision), Math.abs(d.delta.f1)) : Infinity);
  classes.sort((x, y) => size(y) - size(x) || (x.delta && y.delta ? Math.abs(y.delta.recall) - Math.abs(x.delta.recall) : 0) || (x.class < y.class ? -1 : x.class > y.class ? 1 : 0));

  // Samples.
  const fixed: SampleChange[] = [];
  const broken: SampleChange[] = [];
  const changed: SampleChange[] = [];
  const gone: IssueChange[] = [];
  const added: IssueChange[] = [];
  let common = 0;
  let onlyInA = 0;
  for (const key of Object.keys(a.samples).sort()) {
    const sa = a.samples[key];
    if (!own(b.samples, key)) {
      onlyInA++;
      if (sa.issue !== undefined) gone.push({ key, path: sa.path, label: sa.label, suggested: sa.issue });
      continue;
    }
    common++;
    const sb = b.samples[key];
    const rightA = sa.predicted === sa.label;
    const rightB = sb.predicted === sb.label;
    const change: SampleChange = { key, path: sb.path, label: sb.label, ...(sa.label !== sb.label ? { labelBefore: sa.label } : {}), a: sa.predicted, b: sb.predicted };
    if (!rightA && rightB) fixed.push(change);
    else if (rightA && !rightB) broken.push(change);
    else if (!rightA && !rightB && sa.predicted !== sb.predicted) changed.push(change);
    if (sa.issue !== undefined && sb.issue === undefined) gone.push({ key, path: sa.path, label: sa.label, suggested: sa.issue });
    if (sb.issue !== undefined && sa.issue === undefined) added.push({ key, path: sb.path, label: sb.label, suggested: sb.issue });
  }
  let onlyInB = 0;
  for (const key of Object.keys(b.samples).sort()) {
    if (own(a.samples, key)) continue;
    onlyInB++;
    const sb = b.samples[key];
    if (sb.issue !== undefined) added.push({ key, path: sb.path, label: sb.label, suggested: sb.issue });
  }
  const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);
  for (const list of [fixed, broken, changed, gone, added]) (list as { path: string }[]).sort(byPath);

  // Difference confusion matrix.
  let confusionDelta: Comparison['confusionDelta'];
  if (a.confusionMatrix && b.confusionMatrix) {
    const cell = (run: Baseline, t: string, p: string) => {
      const i = run.dataset.classes.indexOf(t);
      const j = run.dataset.classes.indexOf(p);
      return i < 0 || j < 0 ? 0 : (run.confusionMatrix?.[i]?.[j] ?? 0);
    };
    confusionDelta = { classes: classNames, matrix: classNames.map((t) => classNames.map((p) => cell(b, t, p) - cell(a, t, p))) };
  }

  // Splits.
  let splits: Comparison['splits'];
  if (a.metricsBySplit && b.metricsBySplit) {
    splits = Object.keys(a.metricsBySplit)
      .filter((s) => own(b.metricsBySplit as object, s))
      .sort()
      .map((split) => {
        const x = (a.metricsBySplit as NonNullable<Baseline['metricsBySplit']>)[split];
        const y = (b.metricsBySplit as NonNullable<Baseline['metricsBySplit']>)[split];
        return {
          split,
          headline: headlineDeltas(x, y),
          recall: classNames.map((c) => ({ class: c, a: own(x.recall, c) ? x.recall[c] : null, b: own(y.recall, c) ? y.recall[c] : null, delta: delta(own(x.recall, c) ? x.recall[c] : null, own(y.recall, c) ? y.recall[c] : null) })),
        };
      });
  }

  return {
    a: describe(a, names[0]),
    b: describe(b, names[1]),
    setupDifferences: setupDifferences(a, b, ['A', 'B']),
    headline: headlineDeltas(a.metrics, b.metrics),
    classes,
    samples: { common, onlyInA, onlyInB, fixed, broken, changed },
    labelIssues: { new: added, gone },
    ...(confusionDelta ? { confusionDelta } : {}),
    ...(splits && splits.length > 0 ? { splits } : {}),
  };
}

/** A parsed report or baseline as a baseline; ClipLensError naming the file for anything else. */
export function runFromJson(value: unknown, file: string): Baseline {
  if (isEvalReport(value)) return makeBaseline(value);
  if (value && typeof value === 'object' && (value as { format?: unknown }).format !== undefined) return validateBaseline(value, file);
  throw new ClipLensError('compare-input-invalid', 'neither a clip-lens eval report (eval --json) nor a baseline (clip-lens baseline)', { file });
}

/** Reads a report or baseline file for comparing. */
export async function readRunFile(file: string, shownAs = file): Promise<Baseline> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ClipLensError(code === 'ENOENT' ? 'compare-input-missing' : 'compare-input-unreadable', code === 'ENOENT' ? 'no such file' : `cannot read: ${(e as Error).message}`, { file: shownAs });
  }
  const value = parseJsonFile(text, shownAs, 'compare-input');
  // A report whose samples are in its sidecar: read them (errors name the sidecar).
  if (isEvalReport(value)) await attachSidecar(value, file, shownAs);
  return runFromJson(value, shownAs);
}

/** The comparison of a report with an earlier run (a report or baseline file): A = the file, B = this report. */
export async function compareWithFile(report: EvalReport, file: string, shownAs = file): Promise<Comparison> {
  return compareRuns(await readRunFile(file, shownAs), makeBaseline(report), [shownAs, 'this run']);
}

// ---------------------------------------------------------------------------------------------------------------------
// Text

function n3(x: number | null): string {
  return x === null ? '-' : String(Math.round(x * 1000) / 1000);
}

function signed(x: number | null): string {
  if (x === null) return '-';
  const v = Math.round(x * 1000) / 1000;
  return v > 0 ? `+${v}` : v === 0 ? '0' : String(v);
}

function table(rows: string[][], rightAligned: Set<number>): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => `  ${r.map((c, i) => (i === r.length - 1 && !rightAligned.has(i) ? c : rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')}`.trimEnd());
}

/** The comparison as text for the terminal; `limit` images listed per group. */
export function formatComparison(c: Comparison, limit = 20): string {
  const out: string[] = [];
  const run = (tag: string, r: ComparedRun) => `${tag}: ${r.name} (model ${r.model}, templates ${r.templates}, predictor ${r.predictor}, ${r.images} images)`;
  out.push(run('A', c.a), run('B', c.b));
  if (c.setupDifferences.length > 0) out.push(`Setup differs: ${c.setupDifferences.join('; ')}`);
  out.push('', 'Headline (B - A)');
  out.push(...table([['Metric', 'A', 'B', 'Change'], ...c.headline.map((h) => [h.name, n3(h.a), n3(h.b), signed(h.delta)])], new Set([1, 2, 3])));
  out.push('', 'Per class, largest change first');
  out.push(
    ...table(
      [
        ['Class', 'Recall A', 'Recall B', 'Change', 'Precision', 'F1', 'Images A', 'Images B'],
        ...c.classes.map((d) => [
          d.class,
          n3(d.a?.recall ?? null),
          n3(d.b?.recall ?? null),
          d.delta ? signed(d.delta.recall) : d.a ? 'gone' : 'new',
          d.delta ? signed(d.delta.precision) : '-',
          d.delta ? signed(d.delta.f1) : '-',
          d.a ? String(d.a.support) : '-',
          d.b ? String(d.b.support) : '-',
        ]),
      ],
      new Set([1, 2, 3, 4, 5, 6, 7]),
    ),
  );
  for (const s of c.splits ?? []) {
    out.push('', `Split ${s.split}: ${s.headline.map((h) => `${h.name} ${n3(h.a)} -> ${n3(h.b)} (${signed(h.delta)})`).slice(0, 2).join(', ')}`);
  }
  const S = c.samples;
  out.push('', `Images: ${S.common} in both, ${S.onlyInA} only in A, ${S.onlyInB} only in B; ${S.fixed.length} fixed, ${S.broken.length} broken, ${S.changed.length} changed prediction`);
  const list = (title: string, items: SampleChange[]) => {
    if (items.length === 0) return;
    out.push(`  ${title}:`);
    for (const x of items.slice(0, limit)) out.push(`    ${x.path}: labelled '${x.label}'${x.labelBefore ? ` (was '${x.labelBefore}')` : ''}, A '${x.a}' -> B '${x.b}'`);
    if (items.length > limit) out.push(`    ... and ${items.length - limit} more`);
  };
  list('broken (right in A, wrong in B)', S.broken);
  list('fixed (wrong in A, right in B)', S.fixed);
  list('changed (wrong in both)', S.changed);
  const L = c.labelIssues;
  out.push('', `Likely label errors: ${L.new.length} new, ${L.gone.length} gone`);
  const issues = (title: string, items: IssueChange[]) => {
    if (items.length === 0) return;
    out.push(`  ${title}:`);
    for (const x of items.slice(0, limit)) out.push(`    ${x.path}: labelled '${x.label}', looks like '${x.suggested}'`);
    if (items.length > limit) out.push(`    ... and ${items.length - limit} more`);
  };
  issues('new', L.new);
  issues('gone', L.gone);
  return out.join('\n') + '\n';
}
