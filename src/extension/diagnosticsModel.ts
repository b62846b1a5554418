/**
 * Report -> diagnostics, as plain data (files, 0-based ranges, messages, severities, codes). Pure and unit-tested;
 * diagnostics.ts turns these into vscode.Diagnostic objects.
 *
 * Three groups, published in separate collections because they are refreshed at different times:
 * - label issues (`labelIssueDiagnostics`): re-located on every edit of the label file by image path, so a fixed,
 *   moved, ignored or undone label shows or hides its diagnostic at once;
 * - dataset problems (`datasetDiagnostics`): unreadable images, malformed label lines, missing images, duplicates and
 *   leakage, as of the last evaluation;
 * - configuration (`configDiagnostics`, `gateDiagnostics`): problems of `.clip-lens.json` and failed gate thresholds,
 *   located by key path on every edit of that file.
 *
 * Severity of a likely label error: its label-quality score (the probability CLIP gives the given label) below
 * `warningScore` (setting clipLens.labelIssueWarningScore, default 0.05) is a Warning, otherwise Information.
 *
 * Both dataset groups are capped per dataset (setting clipLens.maxProblems, default 300: config.ts): a million-row
 * dataset can have 100,000 likely label errors, and the Problems panel is a list to read, not a report. The worst come
 * first (label issues in the report's rank order, worst label-quality score first; dataset problems errors, then
 * warnings, then information, each in report order), and one more entry on the dataset says how many are not shown
 * and links to the report panel, where all of them are.
 */
import { describeProvisional } from '../core/provisional';
import * as path from 'node:path';
import type { LabelFileKind } from '../core/datasetFormat';
import { parseLabelFile, type LabelColumnOptions } from '../core/labelFile';
import { resolveEntryPath } from '../core/dataset';
import { parseJsonTreeOrNull, type JsonNode } from '../core/jsonWithPositions';
import { parseProjectConfig, type ConfigProblem } from '../core/projectConfig';
import { projectModelProblem } from './runChecksModel';
import type { EvalReport, LabelIssue, PredictorName, ReportSample } from '../core/report';
import type { DatasetProblem } from '../core/types';
import type { GateResult } from '../core/gate';
import { editorLineStarts, fieldsOnLine, labelFileLayout, lineStarts, positionAt, type FieldSpan, type LabelFileLayout } from './labelEdits';
import { datasetFormat } from '../core/datasetFormat';
import { samplesOf } from '../core/sampleTable';

export type Severity = 'error' | 'warning' | 'information' | 'hint';

export interface PlainPosition {
  line: number;
  character: number;
}

export interface PlainRange {
  start: PlainPosition;
  end: PlainPosition;
}

/** What a label-issue diagnostic is about, for code actions and hovers. */
export interface IssueRef {
  datasetRoot: string;
  samplePath: string;
  given: string;
  suggested: string;
  score: number;
  rank: number;
  /** 1-based label-file line (label-file datasets). */
  line?: number;
}

/** Code of the entry that says how many entries the cap left out. */
export const NOT_SHOWN_CODE = 'not-shown';

export interface PlainDiagnostic {
  /** Absolute path of the file the diagnostic is on. */
  file: string;
  range: PlainRange;
  message: string;
  severity: Severity;
  /** The kind: 'label-issue', a dataset problem code ('image-missing', ...), a sample error code, 'config-invalid' or a gate rule id. */
  code: string;
  issue?: IssueRef;
  related?: { file: string; range: PlainRange; message: string }[];
  /**
   * A command the diagnostic's code links to in the Problems panel (shown as the code, e.g. "Move to 'dog'"): the
   * quick fix for files without a text model (images), where VS Code offers no lightbulb.
   */
  link?: { label: string; command: string; args: unknown[] };
}

/** Zero-width range at the start of a file (diagnostics on images and folders). */
export const FILE_START: PlainRange = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };

/** Probabilities as shown in messages: two decimals, up to four when that would print 0.00 / 1.00, then bounds. */
export function formatScore(p: number): string {
  if (!Number.isFinite(p)) return String(p);
  if (p > 0 && p < 0.005) return p < 0.0001 ? '<0.0001' : p.toFixed(4).replace(/0+$/, '');
  if (p < 1 && p >= 0.995) return p > 0.9999 ? '>0.9999' : p.toFixed(4).replace(/0+$/, '');
  return p.toFixed(2);
}

export function labelIssueSeverity(score: number, warningScore: number): Severity {
  return score < warningScore ? 'warning' : 'information';
}

/** Probability of `cls` among a sample's top-K predictions, when it is there. */
function predictedScore(sample: ReportSample | undefined, cls: string): number | undefined {
  return sample?.predicted.find((p) => p.class === cls)?.score;
}

/** Who predicted a label issue, in its message: zero-shot is "CLIP"; the predictors on the image embeddings say so. */
const PREDICTOR_WORDS: Record<Exclude<PredictorName, 'auto'>, string> = { 'zero-shot': 'CLIP', 'linear-probe': 'The linear probe', knn: 'The nearest images' };

/**
 * "CLIP predicts 'dog' (0.91) but the label is 'cat' (0.04)"; for class folders "... but the image is in the folder
 * 'cat' (0.04)". The sample's top-K scores are zero-shot's: with another predictor (`predictor`, the report's
 * predictor.used) they are not shown, and the given label's figure is the issue's own score (that predictor's
 * out-of-sample probability of the given label): "The linear probe predicts 'c03' but ... 'c00' (0.015)".
 */
export function labelIssueMessage(
  issue: LabelIssue,
  sample: ReportSample | undefined,
  format: EvalReport['dataset']['format'],
  predictor: Exclude<PredictorName, 'auto'> = 'zero-shot',
): string {
  const zeroShot = predictor === 'zero-shot';
  const p = zeroShot ? predictedScore(sample, issue.suggested) : undefined;
  const predicted = `${PREDICTOR_WORDS[predictor]} predict${predictor === 'knn' ? '' : 's'} '${issue.suggested}'${p !== undefined ? ` (${formatScore(p)})` : ''}`;
  // The issue score is the label-quality score: with the default self-confidence ranking, the probability of the given label.
  const given = `'${issue.given}' (${formatScore((zeroShot ? predictedScore(sample, issue.given) : undefined) ?? issue.score)})`;
  return datasetFormat(format).fix === 'change-label' ? `${predicted} but the label is ${given}` : `${predicted} but the image is in the folder ${given}`;
}

/** Absolute path of a file named by a report (relative to the dataset root, or absolute). */
export function reportFile(report: EvalReport, file: string): string {
  return path.isAbsolute(file) ? file : path.join(report.dataset.root, ...file.split('/'));
}

/** Absolute path of a sample's image. */
export function sampleFile(report: EvalReport, samplePath: string): string {
  return path.join(report.dataset.root, ...samplePath.split('/'));
}

/** The current state of a label file, as read from an open document or the disk. */
export interface LabelFileText {
  /** Text without BOM. */
  text: string;
  kind: LabelFileKind;
  /** Columns from `.clip-lens.json` `labels` (detected when left out). */
  columns: LabelColumnOptions;
}

/** Where each sample of a label file is now: its line, label and fields, by dataset-relative image path. */
export interface LabelFileIndex {
  layout: LabelFileLayout;
  entries: Map<string, { line: number; label: string }>;
  readerStarts: number[];
  editorStarts: number[];
  text: string;
}

/**
 * Reads a label file's current text the way the evaluation did; null when its columns cannot be found. The first line
 * of an image wins, as in the reader.
 */
export function indexLabelFile(report: EvalReport, state: LabelFileText): LabelFileIndex | null {
  const labelFile = report.dataset.labelFile;
  if (!labelFile) return null;
  const layout = labelFileLayout(state.text, state.kind, state.columns);
  if (!layout) return null;
  const rel = path.relative(report.dataset.root, labelFile);
  const inside = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  const shown = inside ? rel.split(path.sep).join('/') : labelFile;
  const baseRel = inside ? path.posix.dirname(shown).replace(/^\.$/, '') : '';
  let parsed;
  try {
    parsed = parseLabelFile(state.text, state.kind, shown, state.columns);
  } catch {
    return null;
  }
  const entries = new Map<string, { line: number; label: string }>();
  for (const e of parsed.entries) {
    const r = resolveEntryPath(baseRel, e.image);
    if ('rel' in r && !entries.has(r.rel)) entries.set(r.rel, { line: e.line, label: e.label });
  }
  return { layout, entries, readerStarts: lineStarts(state.text, state.kind), editorStarts: editorLineStarts(state.text), text: state.text };
}

function spanRange(index: LabelFileIndex, span: FieldSpan): PlainRange {
  return { start: positionAt(index.editorStarts, span.start), end: positionAt(index.editorStarts, span.end) };
}

/** The editor range of a reader line's content (without its line break). */
function readerLineRange(index: LabelFileIndex, line: number): PlainRange {
  const begin = index.readerStarts[line - 1] ?? index.text.length;
  let end = line < index.readerStarts.length ? index.readerStarts[line] : index.text.length;
  while (end > begin && (index.text.charCodeAt(end - 1) === 10 || index.text.charCodeAt(end - 1) === 13)) end--;
  return { start: positionAt(index.editorStarts, begin), end: positionAt(index.editorStarts, end) };
}

/** A zero-width range at the start of a 1-based line (when the text is not known). */
function lineStartRange(line: number): PlainRange {
  const l = Math.max(0, line - 1);
  return { start: { line: l, character: 0 }, end: { line: l, character: 0 } };
}

export interface LabelIssueInput {
  report: EvalReport;
  /** Label-file datasets: the label file now (null when it cannot be read: the report's lines are used). */
  labelFile?: LabelFileText | null;
  /** Sample paths handled since the evaluation (ignored in this session). */
  resolved?: ReadonlySet<string>;
  /** Class-folder datasets: whether the image is still at its path (a moved image has no diagnostic). Default: yes. */
  imageExists?: (samplePath: string) => boolean;
  warningScore: number;
  /**
   * At most this many issue diagnostics (default: no cap); the rest are counted in one more diagnostic. Past the cap,
   * `imageExists` is not called: an issue counts as not shown unless it was resolved or its label line changed.
   */
  max?: number;
}

/**
 * The one diagnostic saying how many were left out by the cap: on the label file when there is one, else on the
 * dataset folder; its code links to the report panel (clipLens.openReport) of the dataset.
 */
export function notShownDiagnostic(report: EvalReport, count: number, what: 'label' | 'problem', max: number): PlainDiagnostic {
  const noun = what === 'label' ? `likely label error${count === 1 ? '' : 's'}` : `dataset problem${count === 1 ? '' : 's'}`;
  return {
    file: report.dataset.labelFile ?? report.dataset.root,
    range: FILE_START,
    message: `${count.toLocaleString('en-US')} more ${noun} not shown (the ${max.toLocaleString('en-US')} worst are listed): open the CLIP Lens report to see all of them, or raise the setting clipLens.maxProblems.`,
    severity: 'information',
    code: NOT_SHOWN_CODE,
    link: { label: 'Open CLIP Lens report', command: 'clipLens.openReport', args: [report.dataset.root] },
  };
}

/**
 * Diagnostics of the likely label errors: on the label of the image's line for label-file datasets (only while that
 * line still has the given label), on the image file itself for class-folder datasets.
 */
export function labelIssueDiagnostics(input: LabelIssueInput): PlainDiagnostic[] {
  const { report } = input;
  const out: PlainDiagnostic[] = [];
  const isLabelFile = datasetFormat(report.dataset.format).samplesHaveLines && report.dataset.labelFile !== undefined;
  const index = isLabelFile && input.labelFile ? indexLabelFile(report, input.labelFile) : null;
  // Results while running: each message says so (the same words on every update, so the Problems view does not
  // churn); a cancelled run's say how far it got.
  const partial = report.provisional;
  const note = partial ? ` (${partial.cancelled ? describeProvisional(partial) : 'provisional: the evaluation is still running'})` : '';
  const max = input.max ?? Infinity;
  let notShown = 0;
  for (const issue of report.labelIssues) {
    const samplePath = issue.path ?? samplesOf(report).at(issue.index)?.path;
    if (samplePath === undefined || input.resolved?.has(samplePath)) continue;
    if (out.length >= max) {
      // Counted, not built: a fixed or edited label line is not an issue any more; images are not checked.
      if (isLabelFile && index) {
        const entry = index.entries.get(samplePath);
        if (!entry || entry.label !== issue.given) continue;
      }
      notShown++;
      continue;
    }
    const sample = samplesOf(report).at(issue.index);
    const base = {
      message: labelIssueMessage(issue, sample, report.dataset.format, report.predictor?.used) + note,
      severity: labelIssueSeverity(issue.score, input.warningScore),
      code: 'label-issue',
    };
    const ref: IssueRef = { datasetRoot: report.dataset.root, samplePath, given: issue.given, suggested: issue.suggested, score: issue.score, rank: issue.rank };
    const image = sampleFile(report, samplePath);
    if (isLabelFile) {
      const labelFile = report.dataset.labelFile as string;
      let range: PlainRange;
      let line: number;
      if (index) {
        const entry = index.entries.get(samplePath);
        // The line is gone or its label changed (fixed, edited by hand): nothing to report until the next evaluation.
        if (!entry || entry.label !== issue.given) continue;
        line = entry.line;
        const fields = fieldsOnLine(index.text, index.layout, line, index.readerStarts);
        range = fields ? spanRange(index, fields.label) : readerLineRange(index, line);
      } else {
        if (!sample?.source) continue;
        line = sample.source.line;
        range = lineStartRange(line);
      }
      // No related-information row: it doubled every entry in the Problems panel; hover and quick fixes open the image.
      out.push({ ...base, file: labelFile, range, issue: { ...ref, line } });
    } else {
      if (input.imageExists && !input.imageExists(samplePath)) continue;
      out.push({ ...base, file: image, range: FILE_START, issue: ref, link: { label: `Move to '${issue.suggested}'`, command: 'clipLens.applyFix', args: [report.dataset.root, samplePath] } });
    }
  }
  if (notShown > 0) out.push(notShownDiagnostic(report, notShown, 'label', max));
  return out;
}

/**
 * The sample paths of `report.labelIssues`, in rank order, that {@link labelIssueDiagnostics} may ask `imageExists`
 * about with this cap: the first `max` present ones are shown, so the caller checks paths in this order until it has
 * `max` present ones (see diagnostics.ts), not all of them.
 */
export function issuePathsInOrder(report: EvalReport, resolved?: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const issue of report.labelIssues) {
    const p = issue.path ?? samplesOf(report).at(issue.index)?.path;
    if (p !== undefined && !resolved?.has(p)) out.push(p);
  }
  return out;
}

/** Problem codes that are about the tool's cache or the config (shown elsewhere), not about the dataset. */
const NOT_DATASET_CODES = new Set(['cache-discarded', 'cache-unavailable', 'config-invalid']);

/** Problems the evaluation went on without that mostly need no action. */
const INFO_CODES = new Set(['duplicate-line', 'non-image-skipped', 'empty-class', 'symlink-skipped', 'mixed-split-folders', 'class-name-variant']);

export function problemSeverity(code: string): Severity {
  return INFO_CODES.has(code) ? 'information' : 'warning';
}

export interface DatasetDiagnosticsInput {
  report: EvalReport;
  /** Label-file datasets: the label file as evaluated (for exact line ranges); null/undefined: line starts only. */
  labelFile?: LabelFileText | null;
  /** At most this many (errors first, then warnings, then information); the rest are counted in one more. */
  max?: number;
  /**
   * Samples removed from their split since the evaluation ("Remove Image from Split…"): no diagnostic of theirs, none
   * naming them as a copy, and none left on a duplicate whose every other copy was removed.
   */
  removed?: ReadonlySet<string>;
}

const SEVERITY_RANK: Record<Severity, number> = { error: 0, warning: 1, information: 2, hint: 3 };

/** The `max` most severe of `items` (stable within a severity) and one entry counting the rest. */
function capBySeverity(items: PlainDiagnostic[], max: number | undefined, report: EvalReport): PlainDiagnostic[] {
  if (max === undefined || items.length <= max) return items;
  const kept = items
    .map((d, i) => ({ d, i }))
    .sort((a, b) => SEVERITY_RANK[a.d.severity] - SEVERITY_RANK[b.d.severity] || a.i - b.i)
    .slice(0, max)
    .map((x) => x.d);
  kept.push(notShownDiagnostic(report, items.length - max, 'problem', max));
  return kept;
}

/**
 * Diagnostics of what the evaluation could not use: per-sample errors (unreadable images), dataset problems
 * (malformed or duplicate label lines, missing images, refused paths, empty classes) and the duplicate/leakage
 * warnings, each on the label-file line it comes from or, for class folders, on the file or folder itself.
 */
export function datasetDiagnostics(input: DatasetDiagnosticsInput): PlainDiagnostic[] {
  return capBySeverity(allDatasetDiagnostics(input), input.max, input.report);
}

function allDatasetDiagnostics(input: DatasetDiagnosticsInput): PlainDiagnostic[] {
  const { report } = input;
  const removed = (p: string) => input.removed?.has(p) === true;
  const out: PlainDiagnostic[] = [];
  const isLabelFile = datasetFormat(report.dataset.format).samplesHaveLines && report.dataset.labelFile !== undefined;
  const index = isLabelFile && input.labelFile ? indexLabelFile(report, input.labelFile) : null;
  const labelFile = report.dataset.labelFile;

  /** Where a sample lives for the user: its label line (label files) or its image (class folders). */
  const sampleLocation = (sample: ReportSample, field: 'image' | 'label' = 'image'): { file: string; range: PlainRange } => {
    if (isLabelFile && sample.source && labelFile) {
      const line = sample.source.line;
      if (index) {
        const fields = fieldsOnLine(index.text, index.layout, line, index.readerStarts);
        return { file: labelFile, range: fields ? spanRange(index, fields[field]) : readerLineRange(index, line) };
      }
      return { file: labelFile, range: lineStartRange(line) };
    }
    return { file: sampleFile(report, sample.path), range: FILE_START };
  };

  for (const sample of samplesOf(report)) {
    if (!sample.error || removed(sample.path)) continue;
    out.push({
      ...sampleLocation(sample),
      message: `${isLabelFile ? `${sample.path}: ` : ''}${sample.error.message} (left out of the metrics)`,
      severity: 'warning',
      code: sample.error.code,
      ...(isLabelFile ? { related: [{ file: sampleFile(report, sample.path), range: FILE_START, message: 'the image' }] } : {}),
    });
  }

  for (const problem of report.errors) {
    if (NOT_DATASET_CODES.has(problem.code)) continue;
    const loc = problemLocation(report, problem, index);
    if (!loc) continue;
    out.push({ ...loc, message: problem.message, severity: problemSeverity(problem.code), code: problem.code });
  }

  const byPath = { get: (p: string) => samplesOf(report).byPath(p) };
  const locate = (p: string) => {
    const sample = byPath.get(p);
    return sample ? sampleLocation(sample) : { file: sampleFile(report, p), range: FILE_START };
  };
  // The group of each path (a near group holds its exact copies too, so it wins), for related information.
  const groupOf = new Map<string, { kind: 'exact' | 'near'; paths: string[] }>();
  for (const g of report.duplicates ?? []) for (const p of g.paths) if (!groupOf.has(p) || g.kind === 'near') groupOf.set(p, g);
  const severityOf = (w: { severity: string }): Severity => (w.severity === 'error' ? 'error' : w.severity === 'warning' ? 'warning' : 'information');
  for (const w of report.warnings) {
    if (w.kind === 'leakage') {
      // On the later copy only, with the earlier copy as related information.
      const leak = report.leakage?.find((l) => l.split === w.split);
      if (!leak) continue;
      leak.paths.forEach((p, i) => {
        if (removed(p)) return;
        const copy = leak.copies[i];
        const hash = byPath.get(p)?.contentHash;
        const near = hash === undefined || hash !== byPath.get(copy)?.contentHash;
        out.push({
          ...locate(p),
          message: `${p} has ${near ? 'a near-copy' : 'an exact copy'} in '${byPath.get(copy)?.split ?? leak.earlier[0]}' (${copy}): '${leak.split}' accuracy is inflated while both are kept.`,
          severity: severityOf(w),
          code: w.kind,
          related: [{ ...locate(copy), message: `the earlier copy: ${copy}` }],
        });
      });
      continue;
    }
    if ((w.kind !== 'duplicate' && w.kind !== 'possible-leakage' && w.kind !== 'conflicting-labels') || !w.paths) continue;
    for (const p of w.paths) {
      if (removed(p)) continue;
      const group = groupOf.get(p);
      const others = (group ? group.paths : w.paths).filter((q) => q !== p && !removed(q));
      if (others.length === 0) continue; // its copies were removed: nothing left to warn about
      out.push({
        ...locate(p),
        message: w.message,
        severity: severityOf(w),
        code: w.kind,
        related: others.slice(0, 10).map((q) => ({ ...locate(q), message: `${group?.kind === 'near' ? 'a near-copy' : 'the same image'}: ${q}` })),
      });
    }
  }
  return out;
}

function problemLocation(report: EvalReport, problem: DatasetProblem, index: LabelFileIndex | null): { file: string; range: PlainRange } | null {
  if (problem.file !== undefined) {
    const file = reportFile(report, problem.file);
    if (problem.line !== undefined) {
      const isTheLabelFile = report.dataset.labelFile !== undefined && path.resolve(file) === path.resolve(report.dataset.labelFile);
      return { file, range: index && isTheLabelFile ? readerLineRange(index, problem.line) : lineStartRange(problem.line) };
    }
    return { file, range: FILE_START };
  }
  if (problem.path !== undefined) return { file: sampleFile(report, problem.path), range: FILE_START };
  return null;
}

// ---------------------------------------------------------------------------------------------------------------------
// .clip-lens.json

/** The end of the JSON token starting at `offset` (a string with escapes, or a bare word/number). */
function tokenEnd(text: string, offset: number): number {
  if (text[offset] === '"') {
    let i = offset + 1;
    while (i < text.length && text[i] !== '"' && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
    return Math.min(text.length, i + 1);
  }
  let i = offset;
  while (i < text.length && !/[\s,:{}[\]]/.test(text[i])) i++;
  return i === offset ? Math.min(text.length, offset + 1) : i;
}

/** Diagnostics of a `.clip-lens.json` text: syntax errors and invalid values, with the line and column of each. */
export function configDiagnostics(file: string, text: string, exists?: (p: string) => boolean): PlainDiagnostic[] {
  const { problems, config } = parseProjectConfig(text, file);
  const out = configProblemDiagnostics(file, text, problems);
  // A "model" that cannot be loaded is an error on that key (the run would stop there; see runChecksModel.ts).
  const modelProblem = typeof config.model === 'string' && config.model.trim() ? projectModelProblem(config.model, path.dirname(file), exists) : undefined;
  const range = modelProblem ? keyPathRange(text, ['model']) : null;
  if (modelProblem && range) out.push({ file, range, message: `model: ${modelProblem}`, severity: 'error', code: 'model-missing' });
  // The same for each of "models" (two models in one go), on that key.
  (config.models ?? []).forEach((m, i) => {
    const problem = m.trim() ? projectModelProblem(m, path.dirname(file), exists) : undefined;
    const at = problem ? keyPathRange(text, ['models']) : null;
    if (problem && at) out.push({ file, range: at, message: `models[${i}]: ${problem}`, severity: 'error', code: 'model-missing' });
  });
  return out;
}

function configProblemDiagnostics(file: string, text: string, problems: ConfigProblem[]): PlainDiagnostic[] {
  const starts = editorLineStarts(text);
  // Problem columns count UTF-16 units after the last LF, as the editor does.
  const nlStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) nlStarts.push(i + 1);
  return problems.map((p) => {
    const offset = Math.min(text.length, (nlStarts[p.line - 1] ?? text.length) + p.column - 1);
    const end = tokenEnd(text, offset);
    const syntax = p.key === '' && p.message.startsWith('invalid JSON');
    return {
      file,
      range: { start: positionAt(starts, offset), end: positionAt(starts, Math.max(offset, end)) },
      message: `${p.key ? `${p.key}: ` : ''}${p.message}${syntax ? ' (the whole file is ignored until this is fixed)' : ''}`,
      severity: syntax ? 'error' : 'warning',
      code: 'config-invalid',
    };
  });
}

/**
 * The range of the property at a key path (its key through its value); the nearest enclosing property found when the
 * full path is not in the text; null when the text is not a JSON object.
 */
export function keyPathRange(text: string, keyPath: readonly string[]): PlainRange | null {
  const tree = parseJsonTreeOrNull(text);
  if (tree?.type !== 'object') return null;
  const starts = editorLineStarts(text);
  let node: JsonNode = tree;
  let found: { start: number; end: number } | null = null;
  for (const key of keyPath) {
    if (node.type !== 'object') break;
    const prop = node.properties.filter((p) => p.key === key).pop();
    if (!prop) break;
    found = { start: prop.keyOffset, end: prop.value.offset + prop.value.length };
    node = prop.value;
  }
  if (!found) found = { start: tree.offset, end: tree.offset + 1 };
  return { start: positionAt(starts, found.start), end: positionAt(starts, found.end) };
}

/** Diagnostics of the failed gate checks, on the threshold each comes from. */
export function gateDiagnostics(file: string, text: string | null, gate: GateResult): PlainDiagnostic[] {
  return gate.checks
    .filter((c) => !c.passed)
    .map((c) => ({
      file,
      range: (text !== null ? keyPathRange(text, c.configPath) : null) ?? FILE_START,
      message: `Gate: ${c.message}`,
      severity: 'error' as const,
      code: c.ruleId,
    }));
}
