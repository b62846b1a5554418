/**
 * The quality gate: compares an evaluation report with the thresholds of the `gate` section of `.clip-lens.json`.
 * Pure (no I/O): the CLI (`clip-lens check`, the pre-commit hook) and the extension (status bar, diagnostics on
 * `.clip-lens.json`) call it on a report they already have.
 *
 * Every configured threshold becomes one {@link GateCheck} with the number measured, the number required, whether it
 * passed, a sentence with both numbers, and the config key it comes from (`gate.classes.fire_truck.minRecall`, also as
 * a path of keys since class names may contain dots) so an editor can put a diagnostic on that line.
 *
 * Rules:
 * - `min*` thresholds pass when actual >= required, `max*` when actual <= required (a tolerance of 1e-9 absorbs
 *   floating-point noise such as a balanced accuracy of 0.7999999999 against 0.8).
 * - Per-class recall: `gate.classes.<name>.minRecall` when set, else `gate.minRecall`, for every class of the dataset.
 *   A class named in `gate.classes` that the dataset does not have is a failing `config` check naming the key.
 *   A class with a threshold but no evaluated sample fails: its recall cannot be measured.
 * - `rareClassMinRecall`: applies to every rare class, rare as the report's warnings define it
 *   (warnings.rareClassMaxFraction / rareClassMaxSupport, defaults from warnings.ts) or flagged by a
 *   `rare-class-low-recall` warning of the report.
 * - Recall@K for a K at or above the class count is 1 by definition (the true class is always among the top K).
 * - `maxLabelIssues` counts the report's label issues (ignored samples are already left out by the evaluation), only
 *   those scoring at or below `labelIssueMaxScore` when that is set.
 * - When no image could be evaluated, every metric threshold fails (actual null).
 */
import type { GateConfig, WarningThresholds } from './projectConfig';
import { didYouMean } from './projectConfig';
import type { EvalReport, Metrics } from './report';
import { DEFAULT_WARNING_THRESHOLDS, rareClassRule } from './warnings';
import { samplesOf } from './sampleTable';

/** Floating-point slack of the comparisons. */
export const GATE_EPSILON = 1e-9;


export type GateCheckKind =
  | 'top1Accuracy'
  | 'balancedAccuracy'
  | 'recallAtK'
  | 'classRecall'
  | 'rareClassRecall'
  | 'labelIssues'
  | 'config'
  // The ratchet against the baseline (core/baseline.ts).
  | 'top1AccuracyDrop'
  | 'balancedAccuracyDrop'
  | 'recallAtKDrop'
  | 'classRecallDrop'
  | 'baseline';

/** Stable rule ids (SARIF ruleId, JUnit failure type), one per kind. */
export const GATE_RULE_IDS: Readonly<Record<GateCheckKind, string>> = {
  top1Accuracy: 'clip-lens/min-top1-accuracy',
  balancedAccuracy: 'clip-lens/min-balanced-accuracy',
  recallAtK: 'clip-lens/min-recall-at-k',
  classRecall: 'clip-lens/min-class-recall',
  rareClassRecall: 'clip-lens/rare-class-min-recall',
  labelIssues: 'clip-lens/max-label-issues',
  config: 'clip-lens/gate-config',
  top1AccuracyDrop: 'clip-lens/max-drop-top1-accuracy',
  balancedAccuracyDrop: 'clip-lens/max-drop-balanced-accuracy',
  recallAtKDrop: 'clip-lens/max-drop-recall-at-k',
  classRecallDrop: 'clip-lens/max-drop-class-recall',
  baseline: 'clip-lens/baseline',
};

export interface GateCheck {
  /** Unique within a result and stable across runs: 'minTop1Accuracy', 'minRecallAtK.5', 'minRecall.fire_truck', ... */
  id: string;
  kind: GateCheckKind;
  ruleId: string;
  /** Human name of what is measured: 'top-1 accuracy', 'Recall@5', 'recall of fire_truck', 'label issues'. */
  name: string;
  /** 'min': passes when actual >= required; 'max': passes when actual <= required; 'none': config checks. */
  comparison: 'min' | 'max' | 'none';
  /** The measured value; null when it could not be measured. */
  actual: number | null;
  /** The threshold; null for config checks. */
  required: number | null;
  passed: boolean;
  /** One sentence with both numbers and the config key. */
  message: string;
  /** Dotted config key the threshold comes from, e.g. 'gate.classes.fire_truck.minRecall' or 'gate.minRecall'. */
  configKey: string;
  /** The same key as a list of property names (class names may contain dots). */
  configPath: string[];
  /** The class concerned (class and rare-class recall, config checks about a class). */
  class?: string;
  /** K of a Recall@K check. */
  k?: number;
  /** Counts behind a ratio: `hits` of `total` (correct of support, correct of evaluated). */
  counts?: { hits: number; total: number };
  /**
   * Indexes into `report.samples` behind a failed check: the misclassified samples of the class (class recall), the
   * counted label issues (label issues). Empty or absent otherwise.
   */
  sampleIndexes?: number[];
  /**
   * Ratchet checks: the figure in the baseline file, the largest drop allowed and the drop measured (baseline -
   * actual; null when actual is). `required` is then value - maxDrop.
   */
  baseline?: { file: string; value: number; maxDrop: number; drop: number | null };
}

export interface GateResult {
  passed: boolean;
  checks: GateCheck[];
  summary: { total: number; passed: number; failed: number };
}

export interface GateOptions {
  /** The config's `warnings` section: defines rare classes for `rareClassMinRecall`. */
  warnings?: WarningThresholds;
}

export function evaluateGate(report: EvalReport, gate: GateConfig, options: GateOptions = {}): GateResult {
  const checks: GateCheck[] = [];
  const metrics = report.metrics;
  const classes = report.dataset.classes;
  const known = new Set(classes);

  // Config: classes named in overrides must exist.
  for (const name of Object.keys(gate.classes ?? {})) {
    if (known.has(name)) continue;
    const hint = didYouMean(name, classes);
    checks.push({
      id: `config.classes.${name}`,
      kind: 'config',
      ruleId: GATE_RULE_IDS.config,
      name: `gate.classes.${name}`,
      comparison: 'none',
      actual: null,
      required: null,
      passed: false,
      message: `gate.classes.${name}: the dataset has no class '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}; its threshold cannot be checked`,
      configKey: `gate.classes.${name}`,
      configPath: ['gate', 'classes', name],
      class: name,
    });
  }

  if (gate.minTop1Accuracy !== undefined) {
    const hits = metrics ? Math.round(metrics.top1Accuracy * metrics.n) : 0;
    checks.push(
      ratioCheck({
        id: 'minTop1Accuracy',
        kind: 'top1Accuracy',
        name: 'top-1 accuracy',
        actual: metrics ? metrics.top1Accuracy : null,
        required: gate.minTop1Accuracy,
        path: ['gate', 'minTop1Accuracy'],
        counts: metrics ? { hits, total: metrics.n } : undefined,
        unit: 'images',
      }),
    );
  }

  if (gate.minBalancedAccuracy !== undefined) {
    checks.push(
      ratioCheck({
        id: 'minBalancedAccuracy',
        kind: 'balancedAccuracy',
        name: 'balanced accuracy',
        actual: metrics ? metrics.balancedAccuracy : null,
        required: gate.minBalancedAccuracy,
        path: ['gate', 'minBalancedAccuracy'],
      }),
    );
  }

  const ks = Object.keys(gate.minRecallAtK ?? {}).sort((a, b) => Number(a) - Number(b));
  for (const key of ks) {
    const k = Number(key);
    const required = (gate.minRecallAtK as Record<string, number>)[key];
    const actual = metrics ? recallAtK(metrics, k) : null;
    const check = ratioCheck({
      id: `minRecallAtK.${key}`,
      kind: 'recallAtK',
      name: `Recall@${key}`,
      actual,
      required,
      path: ['gate', 'minRecallAtK', key],
      counts: metrics && actual !== null ? { hits: Math.round(actual * metrics.n), total: metrics.n } : undefined,
      unit: 'images',
      missing: metrics && actual === null ? `Recall@${key} was not computed by the evaluation` : undefined,
    });
    check.k = k;
    checks.push(check);
  }

  // Per-class recall.
  if (gate.minRecall !== undefined || Object.keys(gate.classes ?? {}).length > 0) {
    for (const cls of classes) {
      const override = gate.classes && Object.prototype.hasOwnProperty.call(gate.classes, cls) ? gate.classes[cls]?.minRecall : undefined;
      const required = override ?? gate.minRecall;
      if (required === undefined) continue;
      const path = override !== undefined ? ['gate', 'classes', cls, 'minRecall'] : ['gate', 'minRecall'];
      checks.push(classRecallCheck(report, cls, required, path, 'classRecall'));
    }
  }

  // Rare classes.
  if (gate.rareClassMinRecall !== undefined) {
    for (const cls of rareClasses(report, options.warnings)) {
      checks.push(classRecallCheck(report, cls, gate.rareClassMinRecall, ['gate', 'rareClassMinRecall'], 'rareClassRecall'));
    }
  }

  // Label issues.
  if (gate.maxLabelIssues !== undefined) {
    const maxScore = gate.labelIssueMaxScore;
    const counted = report.labelIssues.filter((li) => maxScore === undefined || li.score <= maxScore + GATE_EPSILON);
    const actual = counted.length;
    const required = gate.maxLabelIssues;
    const passed = actual <= required;
    const scope = maxScore !== undefined ? ` with label quality at or below ${num(maxScore)} (gate.labelIssueMaxScore)` : '';
    checks.push({
      id: 'maxLabelIssues',
      kind: 'labelIssues',
      ruleId: GATE_RULE_IDS.labelIssues,
      name: 'label issues',
      comparison: 'max',
      actual,
      required,
      passed,
      message: passed
        ? `${actual} likely label error${actual === 1 ? '' : 's'}${scope}, within the maximum ${required} (gate.maxLabelIssues)`
        : `${actual} likely label errors${scope}, above the maximum ${required} (gate.maxLabelIssues)`,
      configKey: 'gate.maxLabelIssues',
      configPath: ['gate', 'maxLabelIssues'],
      counts: { hits: actual, total: report.labelIssues.length },
      ...(passed ? {} : { sampleIndexes: counted.map((li) => li.index) }),
    });
  }

  const failed = checks.filter((c) => !c.passed).length;
  return { passed: failed === 0, checks, summary: { total: checks.length, passed: checks.length - failed, failed } };
}

/** The failed checks of a result, in check order. */
export function failedChecks(result: GateResult): GateCheck[] {
  return result.checks.filter((c) => !c.passed);
}

/** True when the gate section sets at least one threshold. */
export function hasThresholds(gate: GateConfig | undefined): boolean {
  if (!gate) return false;
  return (
    gate.minTop1Accuracy !== undefined ||
    gate.minBalancedAccuracy !== undefined ||
    Object.keys(gate.minRecallAtK ?? {}).length > 0 ||
    gate.minRecall !== undefined ||
    gate.rareClassMinRecall !== undefined ||
    Object.values(gate.classes ?? {}).some((c) => c?.minRecall !== undefined || c?.maxRecallDrop !== undefined) ||
    gate.maxLabelIssues !== undefined ||
    hasMaxDrop(gate)
  );
}

/** True when the gate section sets a ratchet (gate.maxDrop or a class's maxRecallDrop). */
export function hasMaxDrop(gate: GateConfig | undefined): boolean {
  if (!gate) return false;
  const d = gate.maxDrop;
  return (
    (d !== undefined && (d.top1Accuracy !== undefined || d.balancedAccuracy !== undefined || d.recall !== undefined || Object.keys(d.recallAtK ?? {}).length > 0)) ||
    Object.values(gate.classes ?? {}).some((c) => c?.maxRecallDrop !== undefined)
  );
}

/** The Ks named in `gate.minRecallAtK` and `gate.maxDrop.recallAtK`, for the evaluation to compute. */
export function gateKs(gate: GateConfig | undefined): number[] {
  const keys = new Set([...Object.keys(gate?.minRecallAtK ?? {}), ...Object.keys(gate?.maxDrop?.recallAtK ?? {})]);
  return [...keys].map(Number).filter((k) => Number.isInteger(k) && k >= 1);
}

/** The rare classes of a report (warnings.ts rareClassRule), plus any class of a `rare-class-low-recall` warning. */
export function rareClasses(report: EvalReport, warnings: WarningThresholds = {}): string[] {
  const metrics = report.metrics;
  const out = new Set<string>();
  for (const w of report.warnings) if (w.kind === 'rare-class-low-recall' && w.class !== undefined) out.add(w.class);
  if (metrics && metrics.n > 0) {
    const maxFraction = warnings.rareClassMaxFraction ?? DEFAULT_WARNING_THRESHOLDS.rareClassMaxFraction;
    const maxSupport = warnings.rareClassMaxSupport ?? DEFAULT_WARNING_THRESHOLDS.rareClassMaxSupport;
    const isRare = rareClassRule(metrics.perClass, metrics.n, { rareClassMaxFraction: maxFraction, rareClassMaxSupport: maxSupport });
    for (const c of metrics.perClass) if (isRare(c.support)) out.add(c.class);
  }
  return report.dataset.classes.filter((c) => out.has(c));
}

/** Formats a number the way thresholds are written: a fraction with at most 4 decimals, or an integer. */
export function num(x: number): string {
  if (Number.isInteger(x)) return String(x);
  return String(Number(x.toFixed(4)));
}

/** Formats `actual` and `required` with enough decimals that a failing pair never prints as equal. */
export function numPair(actual: number, required: number): [string, string] {
  for (let d = 3; d <= 12; d++) {
    const a = trimFixed(actual, d);
    const r = trimFixed(required, d);
    if (a !== r || Math.abs(actual - required) <= GATE_EPSILON) return [a, r];
  }
  return [String(actual), String(required)];
}

function trimFixed(x: number, decimals: number): string {
  if (Number.isInteger(x)) return String(x);
  return String(Number(x.toFixed(decimals)));
}

/** Dotted form of a config path. */
export function configKeyOf(path: readonly string[]): string {
  return path.join('.');
}

function recallAtK(metrics: Metrics, k: number): number | null {
  const v = metrics.recallAtK[String(k)];
  if (v !== undefined) return v;
  if (k >= metrics.classes.length) return 1;
  return null;
}

interface RatioArgs {
  id: string;
  kind: GateCheckKind;
  name: string;
  actual: number | null;
  required: number;
  path: string[];
  counts?: { hits: number; total: number };
  unit?: string;
  /** Why the value is missing although metrics exist. */
  missing?: string;
  cls?: string;
}

function ratioCheck(a: RatioArgs): GateCheck {
  const key = configKeyOf(a.path);
  const passed = a.actual !== null && a.actual >= a.required - GATE_EPSILON;
  let message: string;
  if (a.actual === null) {
    message = `${a.missing ?? `no image could be evaluated, so ${a.name} cannot be measured`}; the minimum is ${num(a.required)} (${key})`;
  } else {
    const [act, req] = numPair(a.actual, a.required);
    const counts = a.counts ? ` (${a.counts.hits} of ${a.counts.total}${a.unit ? ` ${a.unit}` : ''})` : '';
    message = passed ? `${a.name} is ${act}${counts}, at or above the minimum ${req} (${key})` : `${a.name} is ${act}${counts}, below the minimum ${req} (${key})`;
  }
  return {
    id: a.id,
    kind: a.kind,
    ruleId: GATE_RULE_IDS[a.kind],
    name: a.name,
    comparison: 'min',
    actual: a.actual,
    required: a.required,
    passed,
    message,
    configKey: key,
    configPath: a.path,
    ...(a.cls !== undefined ? { class: a.cls } : {}),
    ...(a.counts ? { counts: a.counts } : {}),
  };
}

function classRecallCheck(report: EvalReport, cls: string, required: number, path: string[], kind: 'classRecall' | 'rareClassRecall'): GateCheck {
  const metrics = report.metrics;
  const row = metrics?.perClass.find((c) => c.class === cls);
  const rare = kind === 'rareClassRecall';
  const name = `recall of ${rare ? 'rare class ' : ''}${cls}`;
  const id = `${rare ? 'rareClassMinRecall' : 'minRecall'}.${cls}`;
  let check: GateCheck;
  if (!metrics || !row || row.support === 0) {
    check = ratioCheck({
      id,
      kind,
      name,
      actual: null,
      required,
      path,
      cls,
      missing: metrics ? `class ${cls} has no evaluated image, so its recall cannot be measured` : undefined,
    });
  } else {
    const hits = Math.round(row.recall * row.support);
    check = ratioCheck({ id, kind, name, actual: row.recall, required, path, cls, counts: { hits, total: row.support }, unit: 'images' });
  }
  if (!check.passed) {
    const wrong: number[] = [];
    // Single fields, no sample object per row (a million-sample report's samples are columns).
    const { length, field } = samplesOf(report);
    for (let i = 0; i < length; i++) {
      if (field.label(i) !== cls) continue;
      const top = field.top1(i);
      if (top !== undefined && top !== cls) wrong.push(i);
    }
    check.sampleIndexes = wrong;
  }
  return check;
}
