/**
 * The extension's settings (`clipLens.*`), typed and validated. Pure: the caller passes
 * `vscode.workspace.getConfiguration('clipLens')` (or any object with `get`), so this file has no 'vscode' import
 * and is unit-tested directly.
 *
 * Precedence, the same for every value that also exists in `.clip-lens.json` (model, templates, topK, predictor,
 * warning thresholds): the dataset's `.clip-lens.json` wins, these settings fill in what it leaves out, and the built-in
 * defaults come last. So the editor evaluates a dataset exactly as `clip-lens check` and the commit gate do. The one
 * exception is the `CLIP_LENS_MODEL` environment variable, which overrides every model choice (see trust.ts).
 */
import type { WarningThresholds } from '../core/projectConfig';
import { DEFAULT_WARNING_THRESHOLDS } from '../core/warnings';
import { defaultModelEntry } from '../core/modelRegistry';
import { PRECISIONS, type Precision } from '../core/precision';

export const SECTION = 'clipLens';

export type AutoRerun = 'off' | 'onSave' | 'onChange';
export const AUTO_RERUN_VALUES: readonly AutoRerun[] = ['off', 'onSave', 'onChange'];

export type PredictorSetting = 'auto' | 'zero-shot' | 'linear-probe' | 'knn';
export const PREDICTOR_VALUES: readonly PredictorSetting[] = ['auto', 'zero-shot', 'linear-probe', 'knn'];

export type ExecutionProviderSetting = 'cpu' | 'cuda' | 'auto';
export const EXECUTION_PROVIDER_VALUES: readonly ExecutionProviderSetting[] = ['cpu', 'cuda', 'auto'];

/** Warning thresholds as settings; every key is set (defaults from core/warnings.ts). */
export type ThresholdSettings = Required<WarningThresholds>;

export interface Settings {
  /** Registry id or model folder ('' never: falls back to the default model). */
  model: string;
  quantized: boolean;
  /** fp32 | int8 | auto (int8 when it agrees with fp32 on a sample of the dataset); `quantized` means int8. */
  precision: Precision;
  /** 'simple', 'imagenet80', a template file (relative to the dataset folder) or a list of templates. */
  templates: string | string[];
  topK: number;
  /** Which predictions find label errors (the dataset's `.clip-lens.json` "predictor" wins). */
  predictor: PredictorSetting;
  batchSize: number;
  /** ONNX Runtime threads; 0 = automatic (all cores but one, so the editor stays responsive). */
  threads: number;
  /** Cache folder for models and embeddings; '' = the user's cache folder. */
  cacheDirectory: string;
  autoRerun: AutoRerun;
  executionProvider: ExecutionProviderSetting;
  thresholds: ThresholdSettings;
  /** Label issues whose label-quality score is below this are warnings, the others information. */
  labelIssueWarningScore: number;
  /** Minutes an unused model stays loaded. */
  releaseModelAfterMinutes: number;
  /** Problems-panel entries per dataset and group (label issues; dataset problems), worst first; one more counts the rest. */
  maxProblems: number;
}

export const DEFAULT_LABEL_ISSUE_WARNING_SCORE = 0.05;
/** Entries per dataset and group shown in the Problems panel unless clipLens.maxProblems says otherwise. */
export const DEFAULT_MAX_PROBLEMS = 300;

export const DEFAULT_SETTINGS: Settings = {
  model: defaultModelEntry().id,
  quantized: false,
  precision: 'fp32',
  templates: 'simple',
  topK: 5,
  predictor: 'auto',
  batchSize: 32,
  threads: 0,
  cacheDirectory: '',
  autoRerun: 'onSave',
  executionProvider: 'cpu',
  thresholds: { ...DEFAULT_WARNING_THRESHOLDS, recallAtK: { ...DEFAULT_WARNING_THRESHOLDS.recallAtK } },
  labelIssueWarningScore: DEFAULT_LABEL_ISSUE_WARNING_SCORE,
  releaseModelAfterMinutes: 5,
  maxProblems: DEFAULT_MAX_PROBLEMS,
};

/** The part of vscode.WorkspaceConfiguration read here. */
export interface SettingsSource {
  get<T>(key: string): T | undefined;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Reads and validates the settings. A value of the wrong type or out of range is replaced by its default and named
 * in `problems` (one sentence each, for the log), so a typo in settings.json never breaks an evaluation.
 */
export function readSettings(source: SettingsSource): { settings: Settings; problems: string[] } {
  const problems: string[] = [];
  const d = DEFAULT_SETTINGS;
  const bad = (key: string, value: unknown, expected: string) => {
    problems.push(`${SECTION}.${key}: expected ${expected}, got ${JSON.stringify(value)}; using the default`);
  };
  const str = (key: string, def: string, allowEmpty = false): string => {
    const v = source.get<unknown>(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string') return bad(key, v, 'a string'), def;
    const t = v.trim();
    return t === '' && !allowEmpty ? def : t;
  };
  const bool = (key: string, def: boolean): boolean => {
    const v = source.get<unknown>(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') return bad(key, v, 'true or false'), def;
    return v;
  };
  const int = (key: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = source.get<unknown>(key);
    if (v === undefined || v === null) return def;
    if (!isNumber(v) || !Number.isInteger(v) || v < min || v > max) return bad(key, v, `an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`), def;
    return v;
  };
  const num = (key: string, def: number, min: number, max: number): number => {
    const v = source.get<unknown>(key);
    if (v === undefined || v === null) return def;
    if (!isNumber(v) || v < min || v > max) return bad(key, v, `a number from ${min} to ${max}`), def;
    return v;
  };
  const oneOf = <T extends string>(key: string, def: T, values: readonly T[]): T => {
    const v = source.get<unknown>(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string' || !values.includes(v as T)) return bad(key, v, `one of ${values.join(', ')}`), def;
    return v as T;
  };

  let templates: string | string[] = d.templates;
  const rawTemplates = source.get<unknown>('templates');
  if (typeof rawTemplates === 'string' && rawTemplates.trim() !== '') templates = rawTemplates.trim();
  else if (Array.isArray(rawTemplates) && rawTemplates.length > 0 && rawTemplates.every((t) => typeof t === 'string' && t.split('{}').length === 2)) {
    templates = rawTemplates as string[];
  } else if (rawTemplates !== undefined && rawTemplates !== null && rawTemplates !== '') {
    bad('templates', rawTemplates, '"simple", "imagenet80", a template file or a list of templates each containing {} once');
  }

  const t = d.thresholds;
  let recallAtK = { ...t.recallAtK };
  const rawRecallAtK = source.get<unknown>('thresholds.recallAtK');
  if (rawRecallAtK !== undefined && rawRecallAtK !== null) {
    const r = rawRecallAtK as { k?: unknown; min?: unknown };
    if (typeof r === 'object' && isNumber(r.k) && Number.isInteger(r.k) && r.k >= 1 && isNumber(r.min) && r.min >= 0 && r.min <= 1) {
      recallAtK = { k: r.k, min: r.min };
    } else bad('thresholds.recallAtK', rawRecallAtK, '{ "k": integer >= 1, "min": number from 0 to 1 }');
  }
  const thresholds: ThresholdSettings = {
    rareClassMaxFraction: num('thresholds.rareClassMaxFraction', t.rareClassMaxFraction, 0, 1),
    rareClassMaxSupport: int('thresholds.rareClassMaxSupport', t.rareClassMaxSupport, 0),
    rareClassMinRecall: num('thresholds.rareClassMinRecall', t.rareClassMinRecall, 0, 1),
    imbalanceRatio: num('thresholds.imbalanceRatio', t.imbalanceRatio, 1, Number.MAX_VALUE),
    lowAccuracy: num('thresholds.lowAccuracy', t.lowAccuracy, 0, 1),
    goodAccuracy: num('thresholds.goodAccuracy', t.goodAccuracy, 0, 1),
    recallAtK,
  };
  if (thresholds.goodAccuracy < thresholds.lowAccuracy) {
    problems.push(`${SECTION}.thresholds.goodAccuracy (${thresholds.goodAccuracy}) is below thresholds.lowAccuracy (${thresholds.lowAccuracy}); using ${thresholds.lowAccuracy} for both`);
    thresholds.goodAccuracy = thresholds.lowAccuracy;
  }

  const settings: Settings = {
    model: str('model', d.model),
    quantized: bool('quantized', d.quantized),
    precision: oneOf('precision', d.precision, PRECISIONS),
    templates,
    topK: int('topK', d.topK, 1, 1000),
    predictor: oneOf('predictor', d.predictor, PREDICTOR_VALUES),
    batchSize: int('batchSize', d.batchSize, 1, 1024),
    threads: int('threads', d.threads, 0, 1024),
    cacheDirectory: str('cacheDirectory', d.cacheDirectory, true),
    autoRerun: oneOf('autoRerun', d.autoRerun, AUTO_RERUN_VALUES),
    executionProvider: oneOf('executionProvider', d.executionProvider, EXECUTION_PROVIDER_VALUES),
    thresholds,
    labelIssueWarningScore: num('labelIssueWarningScore', d.labelIssueWarningScore, 0, 1),
    releaseModelAfterMinutes: num('releaseModelAfterMinutes', d.releaseModelAfterMinutes, 0, 24 * 60),
    maxProblems: int('maxProblems', d.maxProblems, 1, 1_000_000),
  };
  return { settings, problems };
}

/** ONNX Runtime threads for the `threads` setting: 0 means all cores but one (at least one). */
export function effectiveThreads(threads: number, cores: number): number {
  return threads > 0 ? threads : Math.max(1, cores - 1);
}

/**
 * The warning thresholds an evaluation uses: each key the dataset's `.clip-lens.json` sets wins; the settings fill
 * in the rest.
 */
export function mergeThresholds(fromConfig: WarningThresholds | undefined, fromSettings: ThresholdSettings): ThresholdSettings {
  const out: ThresholdSettings = { ...fromSettings, recallAtK: { ...fromSettings.recallAtK } };
  if (!fromConfig) return out;
  for (const key of Object.keys(fromConfig) as (keyof WarningThresholds)[]) {
    const v = fromConfig[key];
    if (v !== undefined) (out as unknown as Record<string, unknown>)[key] = typeof v === 'object' ? { ...v } : v;
  }
  if (out.goodAccuracy < out.lowAccuracy) out.goodAccuracy = out.lowAccuracy;
  return out;
}
