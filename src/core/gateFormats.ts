/**
 * Output formats of the quality gate (`clip-lens check --format ...`), as pure functions of the gate outcomes:
 * - text: per dataset, a table of the failed thresholds with the numbers (and the images behind them);
 * - json: machine-readable outcome, one entry per dataset with every check;
 * - junit: JUnit XML, one testsuite per dataset and one testcase per threshold, failures carrying the numbers;
 * - sarif: SARIF 2.1.0 for code scanning; threshold failures point at the key's line in `.clip-lens.json`, label-issue
 *   failures at each counted sample (its label-file line, else its image), with stable rule ids ({@link GATE_RULE_IDS});
 * - markdown: a summary for pull-request comments and $GITHUB_STEP_SUMMARY.
 * Paths in every format are relative to a base folder (the repository root or the working folder), with `/`.
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { GATE_RULE_IDS, failedChecks, num, numPair, type GateCheck, type GateCheckKind, type GateResult } from './gate';
import { lineColumnFinder, parseJsonTree, type JsonNode } from './jsonWithPositions';
import type { EvalReport, ReportSample } from './report';
import { TOOL_VERSION } from './version';
import { samplesOf, type SampleTable } from './sampleTable';

export type GateFormat = 'text' | 'json' | 'junit' | 'sarif' | 'markdown';
export const GATE_FORMATS: readonly GateFormat[] = ['text', 'json', 'junit', 'sarif', 'markdown'];

/** The outcome of checking one dataset. */
export interface GateOutcome {
  /** Dataset root relative to the base folder, POSIX ('.' for the base folder itself). */
  dataset: string;
  /** The config file relative to the base folder, POSIX, e.g. 'data/pets/.clip-lens.json'. */
  configFile: string;
  /** Text of the config file, to find the line of a key (line 1 without it). */
  configText?: string;
  /** Present when the dataset was evaluated and compared. */
  result?: GateResult;
  /** The evaluation behind `result` (sample paths and label-file lines of the failures). */
  report?: EvalReport;
  /** Present when the dataset could not be checked. */
  error?: { message: string; code?: string; file?: string; line?: number };
  /** Wall time of evaluating and comparing, ms. */
  durationMs?: number;
  /** Things worth knowing that do not fail the gate (images that could not be read, no thresholds set). */
  notes?: string[];
}

export interface FormatOptions {
  /** Absolute base folder the relative paths are relative to (SARIF originalUriBaseIds). */
  baseDir?: string;
  /** Samples listed per failed check in text and markdown (default 5). */
  samplesPerCheck?: number;
}

/** 0 when every dataset passed, 1 when a threshold failed, 2 when a dataset could not be checked. */
export function gateExitCode(outcomes: readonly GateOutcome[]): 0 | 1 | 2 {
  if (outcomes.some((o) => o.error || !o.result)) return 2;
  return outcomes.some((o) => o.result && !o.result.passed) ? 1 : 0;
}

export function formatGate(outcomes: readonly GateOutcome[], format: GateFormat, options: FormatOptions = {}): string {
  switch (format) {
    case 'text':
      return gateText(outcomes, options);
    case 'json':
      return gateJson(outcomes, options);
    case 'junit':
      return gateJUnit(outcomes);
    case 'sarif':
      return gateSarif(outcomes, options);
    case 'markdown':
      return gateMarkdown(outcomes, options);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Shared helpers

/** `a/b` joined POSIX-style, with '.' as the empty base. */
export function joinRel(base: string, rel: string): string {
  if (base === '' || base === '.') return rel;
  return `${base.replace(/\/+$/, '')}/${rel}`;
}

/** 1-based line and column of a config key in a `.clip-lens.json` text; the deepest existing key of the path. */
export function configKeyLocation(text: string | undefined, path: readonly string[]): { line: number; column: number } {
  if (text === undefined) return { line: 1, column: 1 };
  let tree: JsonNode;
  try {
    tree = parseJsonTree(text);
  } catch {
    return { line: 1, column: 1 };
  }
  const at = lineColumnFinder(text);
  let node: JsonNode = tree;
  let offset = tree.offset;
  for (const key of path) {
    if (node.type !== 'object') break;
    const prop = node.properties.filter((p) => p.key === key).pop();
    if (!prop) break;
    offset = prop.keyOffset;
    node = prop.value;
  }
  return at(offset);
}

/** Where a sample's label is written: its label-file line, else its image (line 1). Relative to the base folder. */
export function sampleLocation(dataset: string, sample: ReportSample): { path: string; line: number; isLabelFile: boolean } {
  if (sample.source) return { path: joinRel(dataset, sample.source.file), line: sample.source.line, isLabelFile: true };
  return { path: joinRel(dataset, sample.path), line: 1, isLabelFile: false };
}

function checkSamples(outcome: GateOutcome, check: GateCheck): ReportSample[] {
  if (!outcome.report || !check.sampleIndexes) return [];
  let samples: SampleTable;
  try {
    samples = samplesOf(outcome.report);
  } catch {
    return []; // samples in a sidecar that was not read
  }
  return check.sampleIndexes.map((i) => samples.at(i)).filter((s): s is ReportSample => s !== undefined);
}

function issueFor(outcome: GateOutcome, index: number) {
  return outcome.report?.labelIssues.find((li) => li.index === index);
}

/** Short description of why a sample is listed under a check. */
function sampleNote(outcome: GateOutcome, check: GateCheck, sample: ReportSample, index: number): string {
  if (check.kind === 'labelIssues') {
    const li = issueFor(outcome, index);
    if (li) return `labelled '${li.given}', looks like '${li.suggested}' (label quality ${num(li.score)})`;
  }
  const top = sample.predicted[0];
  return top ? `labelled '${sample.label}', predicted '${top.class}' (${num(top.score)})` : `labelled '${sample.label}'`;
}

function actualText(c: GateCheck): string {
  if (c.actual === null) return 'n/a';
  const a = c.required !== null ? numPair(c.actual, c.required)[0] : num(c.actual);
  if (!c.counts) return a;
  return c.kind === 'labelIssues' ? a : `${a} (${c.counts.hits}/${c.counts.total})`;
}

function requiredText(c: GateCheck, unicode = false): string {
  if (c.required === null) return '-';
  const r = c.actual !== null ? numPair(c.actual, c.required)[1] : num(c.required);
  // Ratchet checks: where the minimum comes from.
  const from = c.baseline ? ` (baseline ${num(c.baseline.value)} - ${num(c.baseline.maxDrop)})` : '';
  if (unicode) return c.comparison === 'max' ? `\u2264 ${r}` : `\u2265 ${r}${from}`;
  return c.comparison === 'max' ? `<= ${r}` : `>= ${r}${from}`;
}

function datasetStatus(o: GateOutcome): 'passed' | 'failed' | 'error' {
  if (o.error || !o.result) return 'error';
  return o.result.passed ? 'passed' : 'failed';
}

// ---------------------------------------------------------------------------------------------------------------------
// text

function gateText(outcomes: readonly GateOutcome[], options: FormatOptions): string {
  const perCheck = options.samplesPerCheck ?? 5;
  const lines: string[] = [];
  for (const o of outcomes) {
    const status = datasetStatus(o);
    const time = o.durationMs !== undefined ? ` in ${(o.durationMs / 1000).toFixed(1)} s` : '';
    if (status === 'error') {
      lines.push(`${o.dataset}: could not be checked${time}: ${o.error?.message ?? 'no result'}`);
      for (const n of o.notes ?? []) lines.push(`  note: ${n}`);
      continue;
    }
    const r = o.result as GateResult;
    const failed = failedChecks(r);
    lines.push(
      status === 'passed'
        ? `${o.dataset}: passed, ${r.summary.total} threshold${r.summary.total === 1 ? '' : 's'} met${time}`
        : `${o.dataset}: FAILED, ${r.summary.failed} of ${r.summary.total} thresholds not met${time}`,
    );
    if (failed.length > 0) {
      const rows = failed.map((c) => {
        const loc = configKeyLocation(o.configText, c.configPath);
        return [c.name, actualText(c), requiredText(c), `${c.configKey} (${o.configFile}:${loc.line})`];
      });
      const header = ['Failed check', 'Actual', 'Required', 'Config key'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
      const fmt = (cells: string[]) => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}`.trimEnd();
      lines.push(fmt(header));
      lines.push(fmt(widths.map((w) => '-'.repeat(w))));
      failed.forEach((c, i) => {
        lines.push(fmt(rows[i]));
        if (c.kind === 'config' || c.kind === 'baseline' || c.baseline) lines.push(`    ${c.message}`);
        const samples = checkSamples(o, c);
        samples.slice(0, perCheck).forEach((s, j) => {
          const loc = sampleLocation(o.dataset, s);
          lines.push(`    ${loc.isLabelFile ? `${loc.path}:${loc.line}` : loc.path}: ${sampleNote(o, c, s, (c.sampleIndexes as number[])[j])}`);
        });
        if (samples.length > perCheck) lines.push(`    ... and ${samples.length - perCheck} more`);
      });
    }
    for (const n of o.notes ?? []) lines.push(`  note: ${n}`);
  }
  const code = gateExitCode(outcomes);
  if (outcomes.length > 1 || outcomes.length === 0) {
    const counts = { passed: 0, failed: 0, error: 0 };
    for (const o of outcomes) counts[datasetStatus(o)]++;
    lines.push(`${outcomes.length} dataset${outcomes.length === 1 ? '' : 's'}: ${counts.passed} passed, ${counts.failed} failed, ${counts.error} could not be checked`);
  }
  if (code === 1) lines.push('Quality gate failed.');
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------------------------------
// json

function gateJson(outcomes: readonly GateOutcome[], _options: FormatOptions): string {
  const datasets = outcomes.map((o) => ({
    dataset: o.dataset,
    configFile: o.configFile,
    status: datasetStatus(o),
    passed: datasetStatus(o) === 'passed',
    ...(o.durationMs !== undefined ? { durationMs: Math.round(o.durationMs) } : {}),
    ...(o.error ? { error: o.error } : {}),
    ...(o.report
      ? {
          model: o.report.model.id,
          images: { total: o.report.dataset.counts.samples, evaluated: o.report.dataset.counts.evaluated, failed: o.report.dataset.counts.failed },
          timing: o.report.timing,
        }
      : {}),
    ...(o.result
      ? {
          summary: o.result.summary,
          checks: o.result.checks.map((c) => {
            const { sampleIndexes: _drop, ...rest } = c;
            const samples = checkSamples(o, c);
            const line = configKeyLocation(o.configText, c.configPath).line;
            return {
              ...rest,
              configLine: line,
              ...(samples.length > 0
                ? {
                    samples: samples.map((s) => ({
                      path: s.path,
                      label: s.label,
                      ...(s.predicted[0] ? { predicted: s.predicted[0].class, score: s.predicted[0].score } : {}),
                      ...(s.source ? { source: s.source } : {}),
                    })),
                  }
                : {}),
            };
          }),
        }
      : {}),
    ...(o.notes && o.notes.length > 0 ? { notes: o.notes } : {}),
  }));
  const code = gateExitCode(outcomes);
  return JSON.stringify({ tool: { name: 'clip-lens', version: TOOL_VERSION }, passed: code === 0, exitCode: code, datasets }, null, 1) + '\n';
}

// ---------------------------------------------------------------------------------------------------------------------
// junit

/** Characters XML 1.0 does not allow, even escaped. */
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function xmlText(s: string): string {
  return s.replace(XML_INVALID, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

function seconds(ms: number | undefined): string {
  return ((ms ?? 0) / 1000).toFixed(3);
}

function gateJUnit(outcomes: readonly GateOutcome[]): string {
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let totalMs = 0;
  const suites: string[] = [];
  for (const o of outcomes) {
    const cases: string[] = [];
    let sFailures = 0;
    let sErrors = 0;
    const classname = `clip-lens.${o.dataset}`;
    if (o.error || !o.result) {
      sErrors = 1;
      const msg = o.error?.message ?? 'no result';
      cases.push(
        `    <testcase name="evaluate" classname="${xmlAttr(classname)}" time="${seconds(o.durationMs)}">\n` +
          `      <error message="${xmlAttr(msg)}" type="${xmlAttr(o.error?.code ?? 'check-error')}">${xmlText(msg)}</error>\n` +
          `    </testcase>`,
      );
    } else {
      for (const c of o.result.checks) {
        const open = `    <testcase name="${xmlAttr(c.id)}" classname="${xmlAttr(classname)}" time="0"`;
        if (c.passed) {
          cases.push(`${open}>\n      <system-out>${xmlText(c.message)}</system-out>\n    </testcase>`);
          continue;
        }
        sFailures++;
        const loc = configKeyLocation(o.configText, c.configPath);
        const detail = [
          c.message,
          `actual: ${c.actual === null ? 'n/a' : c.actual}`,
          `required: ${c.required === null ? 'n/a' : `${c.comparison === 'max' ? '<=' : '>='} ${c.required}`}`,
          `config: ${o.configFile}:${loc.line} (${c.configKey})`,
          ...checkSamples(o, c).map((s, j) => {
            const l = sampleLocation(o.dataset, s);
            return `${l.isLabelFile ? `${l.path}:${l.line}` : l.path}: ${sampleNote(o, c, s, (c.sampleIndexes as number[])[j])}`;
          }),
        ].join('\n');
        cases.push(`${open}>\n      <failure message="${xmlAttr(c.message)}" type="${xmlAttr(c.ruleId)}">${xmlText(detail)}</failure>\n    </testcase>`);
      }
    }
    const n = cases.length;
    tests += n;
    failures += sFailures;
    errors += sErrors;
    totalMs += o.durationMs ?? 0;
    suites.push(
      `  <testsuite name="${xmlAttr(`clip-lens check: ${o.dataset}`)}" tests="${n}" failures="${sFailures}" errors="${sErrors}" skipped="0" time="${seconds(o.durationMs)}">\n` +
        `    <properties>\n      <property name="config" value="${xmlAttr(o.configFile)}"/>\n` +
        (o.report ? `      <property name="model" value="${xmlAttr(o.report.model.id)}"/>\n` : '') +
        `    </properties>\n` +
        (n > 0 ? cases.join('\n') + '\n' : '') +
        `  </testsuite>`,
    );
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="clip-lens check" tests="${tests}" failures="${failures}" errors="${errors}" time="${seconds(totalMs)}">\n` +
    (suites.length > 0 ? suites.join('\n') + '\n' : '') +
    `</testsuites>\n`
  );
}

// ---------------------------------------------------------------------------------------------------------------------
// sarif

export const SARIF_SCHEMA = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';
const SRCROOT = '%SRCROOT%';

interface RuleInfo {
  id: string;
  name: string;
  short: string;
  full: string;
  level: 'error' | 'warning';
}

/** The rules, in a fixed order (ruleIndex is stable too). */
export const SARIF_RULES: readonly RuleInfo[] = [
  { id: GATE_RULE_IDS.top1Accuracy, name: 'MinTop1Accuracy', short: 'Top-1 accuracy below gate.minTop1Accuracy', full: 'The zero-shot top-1 accuracy of the dataset is below the minimum set by gate.minTop1Accuracy in .clip-lens.json.', level: 'error' },
  { id: GATE_RULE_IDS.balancedAccuracy, name: 'MinBalancedAccuracy', short: 'Balanced accuracy below gate.minBalancedAccuracy', full: 'The balanced accuracy (mean of per-class recalls) is below the minimum set by gate.minBalancedAccuracy in .clip-lens.json.', level: 'error' },
  { id: GATE_RULE_IDS.recallAtK, name: 'MinRecallAtK', short: 'Recall@K below gate.minRecallAtK', full: 'The share of images whose true class is among the top K predictions is below the minimum set in gate.minRecallAtK of .clip-lens.json.', level: 'error' },
  { id: GATE_RULE_IDS.classRecall, name: 'MinClassRecall', short: 'Class recall below its minimum', full: 'The recall of a class is below gate.classes.<class>.minRecall, or gate.minRecall when the class has no threshold of its own. Images labelled with the class that the model puts in another class are listed as related locations.', level: 'error' },
  { id: GATE_RULE_IDS.rareClassRecall, name: 'RareClassMinRecall', short: 'Rare-class recall below gate.rareClassMinRecall', full: 'The recall of a rare class (few images, see warnings.rareClassMaxFraction and rareClassMaxSupport) is below gate.rareClassMinRecall.', level: 'error' },
  { id: GATE_RULE_IDS.labelIssues, name: 'MaxLabelIssues', short: 'More likely label errors than gate.maxLabelIssues allows', full: 'The dataset has more likely label errors (confident learning on the CLIP predictions) than gate.maxLabelIssues allows. Each counted image is reported at its label (label-file line, or the image itself for class folders); add reviewed images to "ignore" in .clip-lens.json.', level: 'warning' },
  { id: GATE_RULE_IDS.config, name: 'GateConfig', short: 'Gate threshold that cannot be checked', full: 'A threshold in the gate section of .clip-lens.json names something the dataset does not have, such as a class in gate.classes.', level: 'error' },
  { id: GATE_RULE_IDS.top1AccuracyDrop, name: 'MaxDropTop1Accuracy', short: 'Top-1 accuracy fell more than gate.maxDrop.top1Accuracy', full: 'Top-1 accuracy fell below the baseline (gate.baseline, written by clip-lens baseline) by more than gate.maxDrop.top1Accuracy allows.', level: 'error' },
  { id: GATE_RULE_IDS.balancedAccuracyDrop, name: 'MaxDropBalancedAccuracy', short: 'Balanced accuracy fell more than gate.maxDrop.balancedAccuracy', full: 'Balanced accuracy fell below the baseline by more than gate.maxDrop.balancedAccuracy allows.', level: 'error' },
  { id: GATE_RULE_IDS.recallAtKDrop, name: 'MaxDropRecallAtK', short: 'Recall@K fell more than gate.maxDrop.recallAtK', full: 'Recall@K fell below the baseline by more than gate.maxDrop.recallAtK allows for that K.', level: 'error' },
  { id: GATE_RULE_IDS.classRecallDrop, name: 'MaxDropClassRecall', short: 'Class recall fell more than its maxDrop', full: 'The recall of a class fell below the baseline by more than gate.classes.<class>.maxRecallDrop, or gate.maxDrop.recall when the class has none; a class of the baseline that the dataset no longer has fails too. Images of the class misclassified since the baseline are listed as related locations.', level: 'error' },
  { id: GATE_RULE_IDS.baseline, name: 'Baseline', short: 'The baseline cannot be compared with', full: 'The ratchet (gate.maxDrop) needs the baseline file of gate.baseline, written by clip-lens baseline with the same model, templates and predictor over the same dataset; re-run clip-lens baseline when it is missing, invalid or made with another setup.', level: 'error' },
];

function fingerprint(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

export function sarifUri(relPath: string): string {
  return relPath
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

function physical(relPath: string, line: number, column?: number) {
  // Paths outside the base folder are shown absolute: give those as file URIs.
  const absolute = relPath.startsWith('/') || /^[A-Za-z]:[\\/]/.test(relPath);
  return {
    physicalLocation: {
      artifactLocation: absolute ? { uri: pathToFileURL(relPath).href } : { uri: sarifUri(relPath), uriBaseId: SRCROOT },
      region: { startLine: Math.max(1, line), ...(column !== undefined ? { startColumn: Math.max(1, column) } : {}) },
    },
  };
}

function ruleIndex(kind: GateCheckKind): number {
  return SARIF_RULES.findIndex((r) => r.id === GATE_RULE_IDS[kind]);
}

function gateSarif(outcomes: readonly GateOutcome[], options: FormatOptions): string {
  const results: unknown[] = [];
  const notifications: unknown[] = [];
  for (const o of outcomes) {
    if (o.error || !o.result) {
      const where = o.error?.file ? [physical(o.error.file, o.error.line ?? 1)] : [physical(o.configFile, 1)];
      notifications.push({ level: 'error', message: { text: `${o.dataset}: could not be checked: ${o.error?.message ?? 'no result'}` }, locations: where });
      continue;
    }
    for (const c of failedChecks(o.result)) {
      const idx = ruleIndex(c.kind);
      const rule = SARIF_RULES[idx];
      const loc = configKeyLocation(o.configText, c.configPath);
      const props = { dataset: o.dataset, check: c.id, configKey: c.configKey, actual: c.actual, required: c.required };
      const samples = checkSamples(o, c);
      if (c.kind === 'labelIssues') {
        // The threshold itself, at its key ...
        results.push({
          ruleId: rule.id,
          ruleIndex: idx,
          level: 'error',
          kind: 'fail',
          message: { text: `${o.dataset}: ${c.message}` },
          locations: [physical(o.configFile, loc.line, loc.column)],
          partialFingerprints: { 'clipLensGate/v1': fingerprint(rule.id, o.dataset, c.id) },
          properties: props,
        });
        // ... and each counted sample, at its label.
        samples.forEach((s, j) => {
          const index = (c.sampleIndexes as number[])[j];
          const l = sampleLocation(o.dataset, s);
          const li = issueFor(o, index);
          results.push({
            ruleId: rule.id,
            ruleIndex: idx,
            level: rule.level,
            kind: 'fail',
            message: {
              text: `Likely label error: ${s.path} is ${sampleNote(o, c, s, index)}${li ? `, rank ${li.rank}` : ''}. ${o.dataset}: ${c.actual} label issues, gate.maxLabelIssues allows ${c.required}.`,
            },
            locations: [physical(l.path, l.line)],
            partialFingerprints: { 'clipLensGate/v1': fingerprint(rule.id, o.dataset, s.path) },
            properties: { dataset: o.dataset, check: c.id, sample: s.path, given: li?.given ?? s.label, suggested: li?.suggested, score: li?.score },
          });
        });
        continue;
      }
      const related = samples.slice(0, 100).map((s, j) => ({
        id: j + 1,
        ...physical(sampleLocation(o.dataset, s).path, sampleLocation(o.dataset, s).line),
        message: { text: `${s.path}: ${sampleNote(o, c, s, (c.sampleIndexes as number[])[j])}` },
      }));
      results.push({
        ruleId: rule.id,
        ruleIndex: idx,
        level: 'error',
        kind: 'fail',
        message: { text: `${o.dataset}: ${c.message}${samples.length > 0 ? ` (${samples.length} misclassified image${samples.length === 1 ? '' : 's'} listed as related locations)` : ''}` },
        locations: [physical(o.configFile, loc.line, loc.column)],
        ...(related.length > 0 ? { relatedLocations: related } : {}),
        partialFingerprints: { 'clipLensGate/v1': fingerprint(rule.id, o.dataset, c.id) },
        properties: props,
      });
    }
  }
  const base = options.baseDir ? pathToFileURL(options.baseDir.endsWith('/') ? options.baseDir : `${options.baseDir}/`).href : undefined;
  const log = {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'CLIP Lens',
            version: TOOL_VERSION,
            semanticVersion: TOOL_VERSION,
            rules: SARIF_RULES.map((r) => ({
              id: r.id,
              name: r.name,
              shortDescription: { text: r.short },
              fullDescription: { text: r.full },
              help: { text: r.full, markdown: r.full },
              defaultConfiguration: { level: r.level },
              properties: { tags: ['dataset-quality', 'clip'] },
            })),
          },
        },
        ...(base ? { originalUriBaseIds: { [SRCROOT]: { uri: base } } } : {}),
        invocations: [{ executionSuccessful: notifications.length === 0, ...(notifications.length > 0 ? { toolExecutionNotifications: notifications } : {}) }],
        columnKind: 'utf16CodeUnits',
        results,
      },
    ],
  };
  return JSON.stringify(log, null, 1) + '\n';
}

// ---------------------------------------------------------------------------------------------------------------------
// markdown

/** A table cell: pipes escaped, HTML neutralised, one line. */
export function mdCell(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function mdCode(s: string): string {
  // Inline code cannot escape backticks: fall back to plain escaped text when the key contains one.
  return s.includes('`') ? mdCell(s) : `\`${s.replace(/\|/g, '\\|')}\``;
}

function gateMarkdown(outcomes: readonly GateOutcome[], options: FormatOptions): string {
  const perCheck = options.samplesPerCheck ?? 5;
  const code = gateExitCode(outcomes);
  const title = code === 0 ? 'passed :white_check_mark:' : code === 1 ? 'failed :x:' : 'could not run :warning:';
  const out: string[] = [`## CLIP Lens quality gate: ${title}`, ''];
  for (const o of outcomes) {
    const status = datasetStatus(o);
    const time = o.durationMs !== undefined ? `, ${(o.durationMs / 1000).toFixed(1)} s` : '';
    if (status === 'error') {
      out.push(`### :warning: ${mdCell(o.dataset)}`, '', `Could not be checked: ${mdCell(o.error?.message ?? 'no result')}`, '');
      continue;
    }
    const r = o.result as GateResult;
    const rep = o.report;
    const facts = rep ? ` (${rep.dataset.counts.evaluated} images, ${rep.dataset.classes.length} classes, model ${mdCell(rep.model.id)}${time})` : '';
    out.push(`### ${status === 'passed' ? ':white_check_mark:' : ':x:'} ${mdCell(o.dataset)}`, '');
    out.push(status === 'passed' ? `All ${r.summary.total} thresholds met${facts}.` : `**${r.summary.failed} of ${r.summary.total} thresholds not met**${facts}.`, '');
    const failed = failedChecks(r);
    const row = (c: GateCheck) =>
      `| ${c.passed ? ':white_check_mark:' : ':x:'} | ${mdCell(c.name)} | ${mdCell(actualText(c))} | ${mdCell(requiredText(c, true))} | ${mdCode(c.configKey)} |`;
    const head = ['| | Check | Actual | Required | Config key |', '|---|---|---:|---:|---|'];
    if (failed.length > 0) {
      out.push(...head, ...failed.map(row), '');
      for (const c of failed) {
        const samples = checkSamples(o, c);
        if (samples.length === 0) {
          if (c.kind === 'config' || c.kind === 'baseline' || c.baseline) out.push(`- ${mdCell(c.message)}`);
          continue;
        }
        if (c.baseline) out.push(`- ${mdCell(c.message)}`, '');
        out.push(`<details><summary>${mdCell(c.name)}: ${samples.length} image${samples.length === 1 ? '' : 's'}</summary>`, '');
        samples.slice(0, perCheck * 4).forEach((s, j) => {
          const l = sampleLocation(o.dataset, s);
          out.push(`- ${mdCode(l.isLabelFile ? `${l.path}:${l.line}` : l.path)}: ${mdCell(sampleNote(o, c, s, (c.sampleIndexes as number[])[j]))}`);
        });
        if (samples.length > perCheck * 4) out.push(`- ... and ${samples.length - perCheck * 4} more`);
        out.push('', '</details>', '');
      }
    }
    const passed = r.checks.filter((c) => c.passed);
    if (passed.length > 0) {
      out.push(`<details><summary>${passed.length} threshold${passed.length === 1 ? '' : 's'} met</summary>`, '', ...head, ...passed.map(row), '', '</details>', '');
    }
    for (const n of o.notes ?? []) out.push(`> ${mdCell(n)}`, '');
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
