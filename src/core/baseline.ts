/**
 * The baseline file and the ratchet of the quality gate.
 *
 * `clip-lens baseline <dataset>` writes a compact summary of one evaluation (makeBaseline + serializeBaseline): the
 * model, templates and predictor that made it, the headline metrics, per class support/recall/precision/F1, the
 * confusion matrix, and per sample (keyed by the first 16 hex digits of its content hash) the label, the predicted
 * class and the suggested class when it is a likely label error. No probabilities. Keys are in a fixed order and every
 * class, matrix row and sample sits on its own line, so the file diffs well in git and a re-run over unchanged data
 * writes the same bytes (no time stamp). Byte-identical images share one entry (`copies`).
 *
 * The ratchet (`gate.maxDrop` in `.clip-lens.json`, checked by ratchetChecks / checkRatchet) compares a report with
 * the baseline at `gate.baseline` (relative to the dataset root; default .clip-lens-baseline.json):
 * - top-1 accuracy, balanced accuracy and Recall@K may not fall by more than their maxDrop;
 * - the recall of every class may not fall by more than `gate.maxDrop.recall`, or the class's own
 *   `gate.classes.<name>.maxRecallDrop`; a drop check passes when actual >= baseline - maxDrop (1e-6 slack: the file
 *   keeps 6 decimals);
 * - a class the baseline does not have is new: nothing to check (a passing check and a note say so); a class of the
 *   baseline the dataset no longer has fails (its recall cannot be checked) until the baseline is re-made;
 * - a baseline from another model, other templates or another predictor is one failing `baseline` check and no
 *   comparison; so is a missing, corrupt or foreign file, and a baseline sharing no sample with the dataset.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ClipLensError } from './errors';
import { GATE_RULE_IDS, hasMaxDrop, num, numPair, type GateCheck, type GateCheckKind, type GateResult } from './gate';
import { JsonSyntaxError, lineColumnFinder, parseJsonTree } from './jsonWithPositions';
import type { GateConfig } from './projectConfig';
import type { EvalReport, Metrics } from './report';
import { TOOL_VERSION } from './version';
import { samplesOf } from './sampleTable';

export const BASELINE_FORMAT = 'clip-lens-baseline';
export const BASELINE_VERSION = 1;
/** Where the baseline is when `gate.baseline` is not set, relative to the dataset root. */
export const DEFAULT_BASELINE_FILE = '.clip-lens-baseline.json';
/** Hex digits of the content hash that key a sample. */
export const SAMPLE_KEY_CHARS = 16;
/** Slack of the ratchet's comparisons: the file keeps 6 decimals. */
export const RATCHET_EPSILON = 1e-6;

/** Headline figures of a run (all samples, or one split). */
export interface BaselineHeadline {
  /** Evaluated samples. */
  n: number;
  /** Correct top-1 predictions. */
  correct: number;
  top1Accuracy: number;
  balancedAccuracy: number;
  recallAtK: Record<string, number>;
  macroF1: number;
}

export interface BaselineClass {
  support: number;
  /** Samples of the class predicted as it (recall = correct / support). */
  correct: number;
  /** Samples predicted as the class. */
  predicted: number;
  recall: number;
  precision: number;
  f1: number;
}

export interface BaselineSample {
  path: string;
  label: string;
  /** Top-1 predicted class. */
  predicted: string;
  split?: string;
  /** The suggested class, when the sample is a likely label error. */
  issue?: string;
  /** Byte-identical images sharing this entry (more than one). */
  copies?: number;
}

/** What made a run: runs are comparable by the ratchet only when all of it is the same. */
export interface RunSetup {
  /** Registry id, or the model folder's name. */
  model: { name: string; quantized: boolean; embeddingDim: number; imageSize: number };
  templates: { name: string; count: number };
  predictor: string;
}

export interface Baseline extends RunSetup {
  format: typeof BASELINE_FORMAT;
  version: number;
  /** Version of clip-lens that wrote it. */
  tool: string;
  dataset: { classes: string[]; splits?: string[]; samples: number; evaluated: number };
  metrics: BaselineHeadline | null;
  /** Per split: headline figures and per-class recall. */
  metricsBySplit?: Record<string, BaselineHeadline & { recall: Record<string, number> }>;
  classes: Record<string, BaselineClass>;
  /** Rows true classes, columns predicted, in dataset.classes order. */
  confusionMatrix?: number[][];
  /** Keyed by the first SAMPLE_KEY_CHARS hex digits of the content hash. */
  samples: Record<string, BaselineSample>;
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;

/** The model name used to compare runs: a registry id as given, else the model folder's name (paths differ per machine). */
export function modelName(report: EvalReport): string {
  const id = report.model.id;
  if (/[\\/]/.test(id) || id.startsWith('.')) return path.basename(report.model.dir.replace(/[\\/]+$/, '')) || id;
  return id;
}

/** The predictor behind a report's predictions: zero-shot CLIP unless the report names another. */
export function predictorOf(report: unknown): string {
  const p = (report as { predictor?: unknown }).predictor;
  if (typeof p === 'string' && p !== '') return p;
  if (p && typeof p === 'object') {
    for (const k of ['name', 'kind', 'id', 'used']) {
      const v = (p as Record<string, unknown>)[k];
      if (typeof v === 'string' && v !== '') return v;
    }
  }
  return 'zero-shot';
}

export function reportSetup(report: EvalReport): RunSetup {
  return {
    model: { name: modelName(report), quantized: report.model.quantized, embeddingDim: report.model.embeddingDim, imageSize: report.model.imageSize },
    templates: { name: report.templates.name, count: report.templates.count },
    predictor: predictorOf(report),
  };
}

/** One line per difference between the setups of `a` (the baseline) and `b` (this run); empty when comparable. */
export function setupDifferences(a: RunSetup, b: RunSetup, names: [string, string] = ['the baseline', 'this run']): string[] {
  const out: string[] = [];
  const m = (s: RunSetup) => `${s.model.name}${s.model.quantized ? ' (int8)' : ''}`;
  if (m(a) !== m(b) || a.model.embeddingDim !== b.model.embeddingDim || a.model.imageSize !== b.model.imageSize) {
    out.push(`model: ${names[0]} ${m(a)}, ${names[1]} ${m(b)}`);
  }
  if (a.templates.name !== b.templates.name || a.templates.count !== b.templates.count) {
    out.push(`templates: ${names[0]} ${a.templates.name} (${a.templates.count}), ${names[1]} ${b.templates.name} (${b.templates.count})`);
  }
  if (a.predictor !== b.predictor) out.push(`predictor: ${names[0]} ${a.predictor}, ${names[1]} ${b.predictor}`);
  return out;
}

function headline(m: Metrics): BaselineHeadline {
  const recallAtK: Record<string, number> = {};
  for (const k of Object.keys(m.recallAtK).sort((a, b) => Number(a) - Number(b))) recallAtK[k] = round(m.recallAtK[k]);
  return {
    n: m.n,
    correct: Math.round(m.top1Accuracy * m.n),
    top1Accuracy: round(m.top1Accuracy),
    balancedAccuracy: round(m.balancedAccuracy),
    recallAtK,
    macroF1: round(m.macro.f1),
  };
}

/** The sample key of a content hash (hex). */
export function sampleKey(contentHash: string): string {
  return contentHash.slice(0, SAMPLE_KEY_CHARS);
}

/** The baseline of a report. */
export function makeBaseline(report: EvalReport): Baseline {
  const m = report.metrics;
  const classes: Record<string, BaselineClass> = {};
  for (const c of m?.perClass ?? []) {
    classes[c.class] = {
      support: c.support,
      correct: Math.round(c.recall * c.support),
      predicted: c.predicted,
      recall: round(c.recall),
      precision: round(c.precision),
      f1: round(c.f1),
    };
  }
  const issues = new Map<number, string>();
  for (const li of report.labelIssues) issues.set(li.index, li.suggested);
  const samples: Record<string, BaselineSample> = {};
  samplesOf(report).forEach((s, i) => {
    if (!s.contentHash || s.predicted.length === 0) return;
    const key = sampleKey(s.contentHash);
    const had = samples[key];
    if (had) {
      had.copies = (had.copies ?? 1) + 1;
      return;
    }
    const entry: BaselineSample = { path: s.path, label: s.label, predicted: s.predicted[0].class };
    if (s.split !== undefined) entry.split = s.split;
    const issue = issues.get(i);
    if (issue !== undefined) entry.issue = issue;
    samples[key] = entry;
  });
  let metricsBySplit: Baseline['metricsBySplit'];
  if (report.metricsBySplit) {
    metricsBySplit = {};
    for (const split of Object.keys(report.metricsBySplit).sort()) {
      const sm = report.metricsBySplit[split];
      const recall: Record<string, number> = {};
      for (const c of sm.perClass) if (c.support > 0) recall[c.class] = round(c.recall);
      metricsBySplit[split] = { ...headline(sm), recall };
    }
  }
  return {
    format: BASELINE_FORMAT,
    version: BASELINE_VERSION,
    tool: TOOL_VERSION,
    ...reportSetup(report),
    dataset: {
      classes: [...report.dataset.classes],
      ...(report.dataset.splits ? { splits: [...report.dataset.splits] } : {}),
      samples: report.dataset.counts.samples,
      evaluated: report.dataset.counts.evaluated,
    },
    metrics: m ? headline(m) : null,
    ...(metricsBySplit ? { metricsBySplit } : {}),
    classes,
    ...(m && m.confusionMatrix.length > 0 ? { confusionMatrix: m.confusionMatrix.map((r) => [...r]) } : {}),
    samples,
  };
}

/** A value with every object's keys sorted (arrays keep their order). */
function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortedKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

const TOP_KEYS = ['format', 'version', 'tool', 'model', 'templates', 'predictor', 'dataset', 'metrics', 'metricsBySplit', 'classes', 'confusionMatrix', 'samples'] as const;
/** Top-level keys written one entry (or row) per line. */
const LINE_PER_ENTRY = new Set<string>(['metricsBySplit', 'classes', 'confusionMatrix', 'samples']);

/** The text of a baseline file: fixed key order, one line per class, matrix row and sample. */
export function serializeBaseline(b: Baseline): string {
  const lines: string[] = [];
  const present = TOP_KEYS.filter((k) => (b as unknown as Record<string, unknown>)[k] !== undefined);
  present.forEach((k, i) => {
    const v = (b as unknown as Record<string, unknown>)[k];
    const comma = i === present.length - 1 ? '' : ',';
    if (LINE_PER_ENTRY.has(k) && v !== null && typeof v === 'object') {
      if (Array.isArray(v)) {
        lines.push(` ${JSON.stringify(k)}: [`);
        v.forEach((row, j) => lines.push(`  ${JSON.stringify(row)}${j === v.length - 1 ? '' : ','}`));
        lines.push(` ]${comma}`);
      } else {
        const keys = k === 'classes' ? Object.keys(v) : Object.keys(v).sort();
        lines.push(` ${JSON.stringify(k)}: {`);
        keys.forEach((key, j) => lines.push(`  ${JSON.stringify(key)}: ${JSON.stringify(sortedKeys((v as Record<string, unknown>)[key]))}${j === keys.length - 1 ? '' : ','}`));
        lines.push(` }${comma}`);
      }
    } else {
      lines.push(` ${JSON.stringify(k)}: ${JSON.stringify(sortedKeys(v))}${comma}`);
    }
  });
  return `{\n${lines.join('\n')}\n}\n`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** True when `v` looks like an `eval --json` report. */
export function isEvalReport(v: unknown): v is EvalReport {
  return isObject(v) && isObject(v.tool) && v.tool.name === 'clip-lens' && typeof v.schemaVersion === 'number' && (Array.isArray(v.samples) || typeof v.samplesFile === 'string') && isObject(v.dataset) && isObject(v.model);
}

/** Parses JSON text, throwing ClipLensError(code) naming the file and line on a syntax error. */
export function parseJsonFile(text: string, file: string, what: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    // Find the line with the positional parser.
    try {
      parseJsonTree(text);
    } catch (e) {
      if (e instanceof JsonSyntaxError) throw new ClipLensError(`${what}-invalid`, `not valid JSON: ${e.message}`, { file, line: lineColumnFinder(text)(e.offset).line });
    }
    throw new ClipLensError(`${what}-invalid`, 'not valid JSON', { file });
  }
}

/** Checks the shape of a parsed baseline; throws ClipLensError('baseline-invalid') naming the file and what is wrong. */
export function validateBaseline(v: unknown, file: string): Baseline {
  const bad = (what: string): never => {
    throw new ClipLensError('baseline-invalid', what, { file });
  };
  if (isEvalReport(v)) bad(`this is a clip-lens eval report, not a baseline: write one with clip-lens baseline <dataset>`);
  if (!isObject(v) || v.format !== BASELINE_FORMAT) bad(`not a CLIP Lens baseline (no "format": "${BASELINE_FORMAT}"): write one with clip-lens baseline <dataset>`);
  const b = v as Record<string, unknown>;
  if (typeof b.version !== 'number' || !Number.isInteger(b.version) || b.version < 1) bad('"version" must be a positive integer');
  if ((b.version as number) > BASELINE_VERSION) bad(`baseline version ${b.version} was written by a newer clip-lens (this one reads version ${BASELINE_VERSION}); upgrade, or re-run clip-lens baseline`);
  const model = b.model;
  if (!isObject(model) || typeof model.name !== 'string' || typeof model.quantized !== 'boolean' || typeof model.embeddingDim !== 'number' || typeof model.imageSize !== 'number') {
    bad('"model" must be { "name", "quantized", "embeddingDim", "imageSize" }');
  }
  if (!isObject(b.templates) || typeof b.templates.name !== 'string' || typeof b.templates.count !== 'number') bad('"templates" must be { "name", "count" }');
  if (typeof b.predictor !== 'string') bad('"predictor" must be a string');
  if (!isObject(b.dataset) || !Array.isArray(b.dataset.classes) || !b.dataset.classes.every((c) => typeof c === 'string')) bad('"dataset.classes" must be a list of class names');
  if (b.metrics !== null) {
    const m = b.metrics;
    if (!isObject(m) || typeof m.n !== 'number' || typeof m.top1Accuracy !== 'number' || typeof m.balancedAccuracy !== 'number' || !isObject(m.recallAtK)) {
      bad('"metrics" must hold n, top1Accuracy, balancedAccuracy and recallAtK (or be null)');
    }
  }
  if (!isObject(b.classes)) bad('"classes" must be an object keyed by class name');
  for (const [name, c] of Object.entries(b.classes as Record<string, unknown>)) {
    if (!isObject(c) || typeof c.support !== 'number' || typeof c.correct !== 'number' || typeof c.recall !== 'number') bad(`"classes.${name}" must hold support, correct and recall`);
  }
  if (!isObject(b.samples)) bad('"samples" must be an object keyed by content hash');
  for (const [key, s] of Object.entries(b.samples as Record<string, unknown>)) {
    if (!isObject(s) || typeof s.label !== 'string' || typeof s.predicted !== 'string' || typeof s.path !== 'string') bad(`"samples.${key}" must hold path, label and predicted`);
  }
  return v as unknown as Baseline;
}

/** Reads and checks a baseline file; ClipLensError naming the file when it is missing, unreadable, corrupt or foreign. */
export async function readBaseline(file: string, shownAs = file): Promise<Baseline> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ClipLensError('baseline-missing', 'no such baseline file: write it with clip-lens baseline <dataset> (and commit it)', { file: shownAs });
    throw new ClipLensError('baseline-unreadable', `cannot read the baseline: ${(e as Error).message}`, { file: shownAs });
  }
  return validateBaseline(parseJsonFile(text, shownAs, 'baseline'), shownAs);
}

/** The baseline file of a dataset: gate.baseline relative to the root, else DEFAULT_BASELINE_FILE. */
export function baselineFileOf(root: string, gate: GateConfig | undefined): { file: string; rel: string } {
  const rel = gate?.baseline ?? DEFAULT_BASELINE_FILE;
  return { file: path.join(root, ...rel.split('/')), rel };
}

// ---------------------------------------------------------------------------------------------------------------------
// The ratchet

export interface RatchetOutcome {
  checks: GateCheck[];
  notes: string[];
}

function fmt(x: number): string {
  return num(Math.round(x * 1e6) / 1e6);
}

function baselineProblem(message: string, gate: GateConfig): GateCheck {
  const keyPath = gate.baseline !== undefined ? ['gate', 'baseline'] : ['gate', 'maxDrop'];
  return {
    id: 'baseline',
    kind: 'baseline',
    ruleId: GATE_RULE_IDS.baseline,
    name: 'baseline',
    comparison: 'none',
    actual: null,
    required: null,
    passed: false,
    message,
    configKey: keyPath.join('.'),
    configPath: keyPath,
  };
}

interface DropArgs {
  id: string;
  kind: GateCheckKind;
  name: string;
  actual: number | null;
  counts?: { hits: number; total: number };
  value: number;
  maxDrop: number;
  path: string[];
  file: string;
  cls?: string;
  k?: number;
}

function dropCheck(a: DropArgs): GateCheck {
  const key = a.path.join('.');
  const required = Math.max(0, a.value - a.maxDrop);
  const drop = a.actual === null ? null : a.value - a.actual;
  const passed = a.actual !== null && a.actual >= required - RATCHET_EPSILON;
  const counts = a.counts ? ` (${a.counts.hits}/${a.counts.total})` : '';
  let message: string;
  if (a.actual === null) {
    message = `${a.name} cannot be measured (no evaluated image); the baseline ${a.file} has ${fmt(a.value)} and allows a drop of at most ${fmt(a.maxDrop)} (${key})`;
  } else {
    const [act, base] = numPair(a.actual, a.value);
    const d = drop as number;
    const change = d > RATCHET_EPSILON ? `fell from ${base} in the baseline ${a.file} to ${act}${counts}: a drop of ${fmt(d)}` : d < -RATCHET_EPSILON ? `rose from ${base} in the baseline ${a.file} to ${act}${counts}` : `is ${act}${counts}, as in the baseline ${a.file}`;
    message = passed ? `${a.name} ${change}, within the ${fmt(a.maxDrop)} allowed (${key})` : `${a.name} ${change}, more than the ${fmt(a.maxDrop)} allowed (${key})`;
  }
  return {
    id: a.id,
    kind: a.kind,
    ruleId: GATE_RULE_IDS[a.kind],
    name: a.name,
    comparison: 'min',
    actual: a.actual,
    required,
    passed,
    message,
    configKey: key,
    configPath: a.path,
    ...(a.cls !== undefined ? { class: a.cls } : {}),
    ...(a.k !== undefined ? { k: a.k } : {}),
    ...(a.counts ? { counts: a.counts } : {}),
    baseline: { file: a.file, value: a.value, maxDrop: a.maxDrop, drop: drop === null ? null : Math.round(drop * 1e9) / 1e9 },
  };
}

/**
 * The ratchet's checks of a report against a baseline (or the error reading it), for the `gate.maxDrop` settings.
 * `file` names the baseline in messages. Pure.
 */
export function ratchetChecks(report: EvalReport, baseline: Baseline | Error, gate: GateConfig, file: string): RatchetOutcome {
  const checks: GateCheck[] = [];
  const notes: string[] = [];
  if (!hasMaxDrop(gate)) return { checks, notes };
  if (baseline instanceof Error) {
    checks.push(baselineProblem(`${baseline.message.split('\n')[0]}; the ratchet (gate.maxDrop) cannot be checked`, gate));
    return { checks, notes };
  }
  const diffs = setupDifferences(baseline, reportSetup(report));
  if (diffs.length > 0) {
    checks.push(baselineProblem(`${file} was made with another setup (${diffs.join('; ')}): its figures are not comparable; re-run clip-lens baseline`, gate));
    return { checks, notes };
  }
  // Samples in common (by content).
  const keyOf: (string | undefined)[] = [];
  samplesOf(report).forEach((s) => keyOf.push(s.contentHash ? sampleKey(s.contentHash) : undefined));
  const baselineKeys = Object.keys(baseline.samples).length;
  const common = new Set(keyOf.filter((k): k is string => k !== undefined && Object.prototype.hasOwnProperty.call(baseline.samples, k))).size;
  if (baselineKeys > 0 && keyOf.some((k) => k !== undefined) && common === 0) {
    checks.push(baselineProblem(`no image of this dataset is in the baseline ${file} (matched by content; it has ${baselineKeys}): it is the baseline of another dataset; re-run clip-lens baseline`, gate));
    return { checks, notes };
  }
  notes.push(`ratchet against ${file}: ${common} of ${baselineKeys} baseline images still present, model ${baseline.model.name}`);

  const m = report.metrics;
  const bm = baseline.metrics;
  const drop = gate.maxDrop ?? {};
  if (drop.top1Accuracy !== undefined && bm) {
    checks.push(
      dropCheck({
        id: 'maxDrop.top1Accuracy',
        kind: 'top1AccuracyDrop',
        name: 'top-1 accuracy',
        actual: m ? m.top1Accuracy : null,
        counts: m ? { hits: Math.round(m.top1Accuracy * m.n), total: m.n } : undefined,
        value: bm.top1Accuracy,
        maxDrop: drop.top1Accuracy,
        path: ['gate', 'maxDrop', 'top1Accuracy'],
        file,
      }),
    );
  }
  if (drop.balancedAccuracy !== undefined && bm) {
    checks.push(
      dropCheck({
        id: 'maxDrop.balancedAccuracy',
        kind: 'balancedAccuracyDrop',
        name: 'balanced accuracy',
        actual: m ? m.balancedAccuracy : null,
        value: bm.balancedAccuracy,
        maxDrop: drop.balancedAccuracy,
        path: ['gate', 'maxDrop', 'balancedAccuracy'],
        file,
      }),
    );
  }
  for (const key of Object.keys(drop.recallAtK ?? {}).sort((a, b) => Number(a) - Number(b))) {
    const k = Number(key);
    const allowed = (drop.recallAtK as Record<string, number>)[key];
    const value = bm ? (bm.recallAtK[key] ?? (k >= baseline.dataset.classes.length ? 1 : undefined)) : undefined;
    const path = ['gate', 'maxDrop', 'recallAtK', key];
    if (value === undefined) {
      notes.push(`Recall@${key} is not in the baseline ${file}: gate.maxDrop.recallAtK.${key} has nothing to compare with until the baseline is re-made`);
      continue;
    }
    const actual = m ? (m.recallAtK[key] ?? (k >= m.classes.length ? 1 : null)) : null;
    checks.push(
      dropCheck({ id: `maxDrop.recallAtK.${key}`, kind: 'recallAtKDrop', name: `Recall@${key}`, actual, counts: m && actual !== null ? { hits: Math.round(actual * m.n), total: m.n } : undefined, value, maxDrop: allowed, path, file, k }),
    );
  }

  // Per class.
  const classGate = (cls: string) => (gate.classes && Object.prototype.hasOwnProperty.call(gate.classes, cls) ? gate.classes[cls] : undefined);
  const allowedFor = (cls: string): { maxDrop: number; path: string[] } | undefined => {
    const own = classGate(cls)?.maxRecallDrop;
    if (own !== undefined) return { maxDrop: own, path: ['gate', 'classes', cls, 'maxRecallDrop'] };
    if (drop.recall !== undefined) return { maxDrop: drop.recall, path: ['gate', 'maxDrop', 'recall'] };
    return undefined;
  };
  const current = report.dataset.classes;
  const currentSet = new Set(current);
  const inBaseline = (cls: string) => Object.prototype.hasOwnProperty.call(baseline.classes, cls) && baseline.classes[cls].support > 0;
  const added: string[] = [];
  for (const cls of current) {
    const allowed = allowedFor(cls);
    if (!allowed) continue;
    const row = m?.perClass.find((c) => c.class === cls);
    const actual = row && row.support > 0 ? row.recall : null;
    if (!inBaseline(cls)) {
      added.push(cls);
      checks.push({
        id: `maxRecallDrop.${cls}`,
        kind: 'classRecallDrop',
        ruleId: GATE_RULE_IDS.classRecallDrop,
        name: `recall of ${cls}`,
        comparison: 'none',
        actual,
        required: null,
        passed: true,
        message: `class ${cls} is new since the baseline ${file} (not in it, or without images there): no drop to check`,
        configKey: allowed.path.join('.'),
        configPath: allowed.path,
        class: cls,
        ...(row && row.support > 0 ? { counts: { hits: Math.round(row.recall * row.support), total: row.support } } : {}),
      });
      continue;
    }
    const b = baseline.classes[cls];
    const check = dropCheck({
      id: `maxRecallDrop.${cls}`,
      kind: 'classRecallDrop',
      name: `recall of ${cls}`,
      actual,
      counts: row && row.support > 0 ? { hits: Math.round(row.recall * row.support), total: row.support } : undefined,
      value: b.support > 0 ? b.correct / b.support : b.recall,
      maxDrop: allowed.maxDrop,
      path: allowed.path,
      file,
      cls,
    });
    if (!check.passed) check.sampleIndexes = newErrors(report, keyOf, baseline, cls);
    checks.push(check);
  }
  if (added.length > 0) notes.push(`new since the baseline ${file}, no drop to check: ${added.join(', ')}`);
  const removed = Object.keys(baseline.classes).filter((c) => !currentSet.has(c) && baseline.classes[c].support > 0 && allowedFor(c));
  for (const cls of removed) {
    const allowed = allowedFor(cls) as { maxDrop: number; path: string[] };
    const b = baseline.classes[cls];
    checks.push({
      id: `maxRecallDrop.${cls}`,
      kind: 'classRecallDrop',
      ruleId: GATE_RULE_IDS.classRecallDrop,
      name: `recall of ${cls}`,
      comparison: 'min',
      actual: null,
      required: Math.max(0, b.recall - allowed.maxDrop),
      passed: false,
      message: `class ${cls} is in the baseline ${file} (recall ${fmt(b.recall)}, ${b.support} images) but no longer in the dataset: its recall cannot be checked; if it was removed on purpose, re-run clip-lens baseline`,
      configKey: allowed.path.join('.'),
      configPath: allowed.path,
      class: cls,
      baseline: { file, value: b.recall, maxDrop: allowed.maxDrop, drop: null },
    });
  }
  return { checks, notes };
}

/** Misclassified samples of `cls` that the baseline did not have misclassified the same way (new, relabelled or newly wrong). */
function newErrors(report: EvalReport, keyOf: (string | undefined)[], baseline: Baseline, cls: string): number[] {
  const out: number[] = [];
  samplesOf(report).forEach((s, i) => {
    if (s.label !== cls || s.predicted.length === 0 || s.predicted[0].class === cls) return;
    const k = keyOf[i];
    const before = k !== undefined && Object.prototype.hasOwnProperty.call(baseline.samples, k) ? baseline.samples[k] : undefined;
    if (before && before.label === s.label && before.predicted === s.predicted[0].class) return;
    out.push(i);
  });
  return out;
}

export interface CheckRatchetOptions {
  /** The folder the baseline path is relative to: the dataset root (or the staged checkout of it). */
  root: string;
  /** How the dataset root is shown ('data/pets'): baseline files are named under it in messages ('.' or none: as written). */
  shownRoot?: string;
  /** Notes are appended here. */
  notes?: string[];
}

/**
 * Reads the dataset's baseline and adds the ratchet's checks to `result` (its summary and `passed` updated). Does
 * nothing when the gate sets no maxDrop. Never throws on a bad baseline file: that is a failing `baseline` check.
 */
export async function checkRatchet(result: GateResult, report: EvalReport, gate: GateConfig | undefined, options: CheckRatchetOptions): Promise<RatchetOutcome> {
  if (!gate || !hasMaxDrop(gate)) return { checks: [], notes: [] };
  const { file, rel } = baselineFileOf(options.root, gate);
  const shown = options.shownRoot && options.shownRoot !== '.' ? `${options.shownRoot.replace(/\/+$/, '')}/${rel}` : rel;
  let baseline: Baseline | Error;
  try {
    baseline = await readBaseline(file, shown);
  } catch (e) {
    if (!(e instanceof ClipLensError)) throw e;
    baseline = e;
  }
  const outcome = ratchetChecks(report, baseline, gate, shown);
  addChecks(result, outcome.checks);
  options.notes?.push(...outcome.notes);
  return outcome;
}

/** Appends checks to a gate result, updating its summary and `passed`. */
export function addChecks(result: GateResult, checks: GateCheck[]): void {
  result.checks.push(...checks);
  const failed = result.checks.filter((c) => !c.passed).length;
  result.summary = { total: result.checks.length, passed: result.checks.length - failed, failed };
  result.passed = failed === 0;
}
