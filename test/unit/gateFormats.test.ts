/**
 * Output formats of the gate (src/core/gateFormats.ts): SARIF checked against the essential structure of the 2.1.0
 * schema (and where each result points), JUnit parsed by a strict XML well-formedness checker written here (counts of
 * testcases, failures and errors), markdown tables, text and JSON. Both checkers are shown to reject broken input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluateGate, GATE_RULE_IDS } from '../../src/core/gate';
import { formatGate, gateExitCode, SARIF_RULES, type GateOutcome } from '../../src/core/gateFormats';
import type { EvalReport, LabelIssue, ReportSample } from '../../src/core/report';

const FIXTURE = path.resolve(__dirname, '../fixtures/report/shapes-report.json');

// ---------------------------------------------------------------------------------------------------------------------
// A strict XML 1.0 well-formedness checker (no DTD): elements, attributes, references, comments, PIs, CDATA.

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

class XmlError extends Error {}

function isNameStart(c: string): boolean {
  const code = c.charCodeAt(0);
  return c === ':' || c === '_' || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code >= 0xc0;
}

function isNameChar(c: string): boolean {
  const code = c.charCodeAt(0);
  return isNameStart(c) || c === '-' || c === '.' || (code >= 48 && code <= 57) || code === 0xb7;
}

function isXmlChar(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || code >= 0x10000;
}

function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (msg: string): never => {
    throw new XmlError(`${msg} at offset ${i}`);
  };
  for (const ch of src) if (!isXmlChar(ch.codePointAt(0) as number)) fail(`character U+${(ch.codePointAt(0) as number).toString(16)} not allowed`);
  const isWs = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  const skipWs = () => {
    while (isWs(src[i])) i++;
  };
  const name = (): string => {
    if (i >= src.length || !isNameStart(src[i])) fail('expected a name');
    const start = i;
    while (i < src.length && isNameChar(src[i])) i++;
    return src.slice(start, i);
  };
  const expect = (s: string) => {
    if (!src.startsWith(s, i)) fail(`expected '${s}'`);
    i += s.length;
  };
  const reference = (): string => {
    expect('&');
    if (src[i] === '#') {
      i++;
      let hex = false;
      if (src[i] === 'x') {
        hex = true;
        i++;
      }
      const start = i;
      while (i < src.length && (hex ? '0123456789abcdefABCDEF' : '0123456789').includes(src[i])) i++;
      if (i === start) fail('empty character reference');
      const code = parseInt(src.slice(start, i), hex ? 16 : 10);
      expect(';');
      if (!isXmlChar(code)) fail('character reference to a forbidden character');
      return String.fromCodePoint(code);
    }
    const n = name();
    expect(';');
    const known: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (!(n in known)) fail(`undeclared entity &${n};`);
    return known[n];
  };
  const comment = () => {
    expect('<!--');
    const end = src.indexOf('-->', i);
    if (end < 0) fail('unterminated comment');
    if (src.slice(i, end).includes('--')) fail("'--' inside a comment");
    i = end + 3;
  };
  const pi = () => {
    expect('<?');
    const target = name();
    if (target.toLowerCase() === 'xml') fail('XML declaration not at the start');
    const end = src.indexOf('?>', i);
    if (end < 0) fail('unterminated processing instruction');
    i = end + 2;
  };
  const misc = () => {
    for (;;) {
      skipWs();
      if (src.startsWith('<!--', i)) comment();
      else if (src.startsWith('<?', i)) pi();
      else return;
    }
  };
  const element = (): XmlElement => {
    expect('<');
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: '' };
    for (;;) {
      const hadWs = isWs(src[i]);
      skipWs();
      if (src.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      if (!hadWs) fail('expected whitespace before an attribute');
      const an = name();
      skipWs();
      expect('=');
      skipWs();
      const q = src[i];
      if (q !== '"' && q !== "'") fail('attribute value must be quoted');
      i++;
      let value = '';
      while (src[i] !== q) {
        if (i >= src.length) fail('unterminated attribute value');
        if (src[i] === '<') fail("'<' in an attribute value");
        if (src[i] === '&') value += reference();
        else value += src[i++];
      }
      i++;
      if (an in el.attrs) fail(`duplicate attribute ${an}`);
      el.attrs[an] = value;
    }
    for (;;) {
      if (i >= src.length) fail(`unclosed element <${el.name}>`);
      if (src.startsWith('</', i)) {
        i += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        skipWs();
        expect('>');
        return el;
      }
      if (src.startsWith('<!--', i)) comment();
      else if (src.startsWith('<![CDATA[', i)) {
        const end = src.indexOf(']]>', i);
        if (end < 0) fail('unterminated CDATA');
        el.text += src.slice(i + 9, end);
        i = end + 3;
      } else if (src.startsWith('<?', i)) pi();
      else if (src[i] === '<') el.children.push(element());
      else if (src[i] === '&') el.text += reference();
      else {
        if (src.startsWith(']]>', i)) fail("']]>' in text");
        el.text += src[i++];
      }
    }
  };
  if (src.startsWith('<?xml', i)) {
    const end = src.indexOf('?>', i);
    if (end < 0) fail('unterminated XML declaration');
    const decl = src.slice(i, end);
    if (!decl.includes('version="1.0"')) fail('XML declaration without version="1.0"');
    i = end + 2;
  }
  misc();
  if (src[i] !== '<') fail('expected the root element');
  const root = element();
  misc();
  if (i !== src.length) fail('content after the root element');
  return root;
}

function all(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    if (e.name === name) out.push(e);
    e.children.forEach(walk);
  };
  walk(el);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// SARIF 2.1.0: the essential structure of the schema, plus what GitHub code scanning needs.

const LEVELS = new Set(['none', 'note', 'warning', 'error']);

function validateSarif(log: unknown): string[] {
  const errors: string[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const str = (v: unknown, where: string) => {
    if (typeof v !== 'string' || v === '') errors.push(`${where}: expected a non-empty string`);
  };
  if (!isObj(log)) return ['log: expected an object'];
  if (log.version !== '2.1.0') errors.push('version: expected "2.1.0"');
  if (typeof log.$schema !== 'string' || !/^https:\/\/.+sarif-(schema-)?2\.1\.0(-rtm\.\d+)?\.json$/.test(log.$schema)) errors.push('$schema: expected the URI of the 2.1.0 schema');
  if (!Array.isArray(log.runs)) return [...errors, 'runs: expected an array'];
  log.runs.forEach((run: unknown, ri: number) => {
    const w = `runs[${ri}]`;
    if (!isObj(run)) return errors.push(`${w}: expected an object`);
    const driver = isObj(run.tool) && isObj(run.tool.driver) ? run.tool.driver : undefined;
    if (!driver) return errors.push(`${w}.tool.driver: missing`);
    str(driver.name, `${w}.tool.driver.name`);
    const rules = Array.isArray(driver.rules) ? (driver.rules as unknown[]) : [];
    if (!Array.isArray(driver.rules)) errors.push(`${w}.tool.driver.rules: expected an array`);
    const ruleIds = new Set<string>();
    rules.forEach((rule, k) => {
      if (!isObj(rule)) return errors.push(`${w}.tool.driver.rules[${k}]: expected an object`);
      str(rule.id, `${w}.tool.driver.rules[${k}].id`);
      if (ruleIds.has(rule.id as string)) errors.push(`${w}.tool.driver.rules[${k}].id: duplicate ${rule.id}`);
      ruleIds.add(rule.id as string);
      if (!isObj(rule.shortDescription)) errors.push(`${w}.tool.driver.rules[${k}].shortDescription: missing`);
      else str(rule.shortDescription.text, `${w}.tool.driver.rules[${k}].shortDescription.text`);
      if (rule.defaultConfiguration !== undefined && !(isObj(rule.defaultConfiguration) && LEVELS.has(rule.defaultConfiguration.level as string))) {
        errors.push(`${w}.tool.driver.rules[${k}].defaultConfiguration.level: invalid`);
      }
    });
    if (run.originalUriBaseIds !== undefined) {
      if (!isObj(run.originalUriBaseIds)) errors.push(`${w}.originalUriBaseIds: expected an object`);
      else for (const [k, v] of Object.entries(run.originalUriBaseIds)) if (!isObj(v) || typeof v.uri !== 'string' || !v.uri.endsWith('/')) errors.push(`${w}.originalUriBaseIds.${k}.uri: expected a URI ending in /`);
    }
    if (!Array.isArray(run.results)) return errors.push(`${w}.results: expected an array`);
    const checkLocation = (loc: unknown, where: string) => {
      if (!isObj(loc) || !isObj(loc.physicalLocation)) return errors.push(`${where}.physicalLocation: missing`);
      const pl = loc.physicalLocation;
      if (!isObj(pl.artifactLocation)) return errors.push(`${where}.physicalLocation.artifactLocation: missing`);
      const uri = pl.artifactLocation.uri;
      str(uri, `${where}.physicalLocation.artifactLocation.uri`);
      if (typeof uri === 'string') {
        if (uri.includes('\\') || uri.startsWith('/') || /\s/.test(uri)) errors.push(`${where}...uri: not a relative URI reference: ${uri}`);
        try {
          decodeURIComponent(uri);
        } catch {
          errors.push(`${where}...uri: bad percent-encoding: ${uri}`);
        }
        if (pl.artifactLocation.uriBaseId !== undefined && !(isObj(run.originalUriBaseIds) && (pl.artifactLocation.uriBaseId as string) in run.originalUriBaseIds)) {
          errors.push(`${where}...uriBaseId ${pl.artifactLocation.uriBaseId} is not in originalUriBaseIds`);
        }
      }
      if (!isObj(pl.region)) return errors.push(`${where}.physicalLocation.region: missing`);
      const line = pl.region.startLine;
      if (!Number.isInteger(line) || (line as number) < 1) errors.push(`${where}.physicalLocation.region.startLine: expected an integer >= 1`);
      if (pl.region.startColumn !== undefined && (!Number.isInteger(pl.region.startColumn) || (pl.region.startColumn as number) < 1)) errors.push(`${where}...startColumn: expected an integer >= 1`);
    };
    (run.results as unknown[]).forEach((res, k) => {
      const where = `${w}.results[${k}]`;
      if (!isObj(res)) return errors.push(`${where}: expected an object`);
      str(res.ruleId, `${where}.ruleId`);
      if (!ruleIds.has(res.ruleId as string)) errors.push(`${where}.ruleId: ${res.ruleId} is not a rule of the driver`);
      if (res.ruleIndex !== undefined && (rules[res.ruleIndex as number] as { id?: string } | undefined)?.id !== res.ruleId) errors.push(`${where}.ruleIndex: does not point at ${res.ruleId}`);
      if (!LEVELS.has(res.level as string)) errors.push(`${where}.level: expected none/note/warning/error`);
      if (!isObj(res.message)) errors.push(`${where}.message: missing`);
      else str(res.message.text, `${where}.message.text`);
      if (!Array.isArray(res.locations) || res.locations.length === 0) errors.push(`${where}.locations: expected a non-empty array`);
      else res.locations.forEach((l: unknown, m: number) => checkLocation(l, `${where}.locations[${m}]`));
      if (res.relatedLocations !== undefined) {
        if (!Array.isArray(res.relatedLocations)) errors.push(`${where}.relatedLocations: expected an array`);
        else res.relatedLocations.forEach((l: unknown, m: number) => checkLocation(l, `${where}.relatedLocations[${m}]`));
      }
    });
  });
  return errors;
}

// ---------------------------------------------------------------------------------------------------------------------
// Outcomes

/** A label-file dataset: 4 classes, 12 images listed in labels.csv (line i + 2), 3 label issues. */
function labelFileOutcome(): GateOutcome {
  const classes = ['cat', 'dog', 'fish', 'c|<a&b>"'];
  const labels = ['cat', 'cat', 'cat', 'cat', 'dog', 'dog', 'dog', 'dog', 'fish', 'fish', 'c|<a&b>"', 'c|<a&b>"'];
  const predicted = ['cat', 'cat', 'dog', 'dog', 'dog', 'dog', 'dog', 'cat', 'fish', 'fish', 'c|<a&b>"', 'fish'];
  const samples: ReportSample[] = labels.map((label, i) => ({
    path: `images/img ${i}.jpg`,
    label,
    source: { file: 'labels.csv', line: i + 2 },
    predicted: [
      { class: predicted[i], score: 0.8 },
      { class: classes.find((c) => c !== predicted[i]) as string, score: 0.1 },
    ],
  }));
  const perClass = classes.map((c) => {
    const idx = labels.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0);
    const right = idx.filter((i) => predicted[i] === c).length;
    return { class: c, support: idx.length, predicted: predicted.filter((p) => p === c).length, precision: 0, recall: right / idx.length, f1: 0, recallAtK: {}, averagePrecision: null };
  });
  const labelIssues: LabelIssue[] = [
    { index: 2, given: 'cat', suggested: 'dog', score: 0.02, rank: 1, path: samples[2].path },
    { index: 7, given: 'dog', suggested: 'cat', score: 0.04, rank: 2, path: samples[7].path },
    { index: 11, given: 'c|<a&b>"', suggested: 'fish', score: 0.06, rank: 3, path: samples[11].path },
  ];
  const report: EvalReport = {
    schemaVersion: 2,
    tool: { name: 'clip-lens', version: '0.0.0' },
    createdAt: '2025-01-01T00:00:00.000Z',
    model: { id: 'tiny', dir: '/m', quantized: false, embeddingDim: 4, logitScale: 100, imageSize: 224 },
    templates: { name: 'simple', count: 1 },
    topK: 2,
    dataset: { root: '/repo/data/pets', format: 'label-file', labelFile: '/repo/data/pets/labels.csv', classes, counts: { samples: 12, evaluated: 12, failed: 0, perClass: {} } },
    samples,
    errors: [],
    metrics: {
      classes,
      n: 12,
      top1Accuracy: 8 / 12,
      balancedAccuracy: perClass.reduce((a, c) => a + c.recall, 0) / 4,
      recallAtK: { '1': 8 / 12 },
      macro: { precision: 0, recall: 0, f1: 0 },
      weighted: { precision: 0, recall: 0, f1: 0 },
      perClass,
      confusionMatrix: [],
    },
    warnings: [],
    labelIssues,
    timing: { totalMs: 1, textMs: 0, imageMs: 0, imagesComputed: 0, imagesFromCache: 12, imagesPerSecond: 0 },
  };
  const configText = '{\n  "gate": {\n    "minTop1Accuracy": 0.5,\n    "classes": { "cat": { "minRecall": 0.75 } },\n    "maxLabelIssues": 1\n  }\n}\n';
  // cat recall 0.5 < 0.75 (line 4), 3 label issues > 1 (line 5), top-1 0.667 >= 0.5 passes.
  const result = evaluateGate(report, { minTop1Accuracy: 0.5, classes: { cat: { minRecall: 0.75 } }, maxLabelIssues: 1 });
  return { dataset: 'data/pets', configFile: 'data/pets/.clip-lens.json', configText, report, result, durationMs: 1234 };
}

function shapesOutcome(): GateOutcome {
  const report = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as EvalReport;
  const gate = { minTop1Accuracy: 0.8, minRecallAtK: { '3': 0.9 }, minRecall: 0.8, classes: { yellow_star: { minRecall: 0.5 } }, rareClassMinRecall: 0.3, maxLabelIssues: 100 };
  const configText = JSON.stringify({ gate }, null, 2);
  return { dataset: 'examples/shapes', configFile: 'examples/shapes/.clip-lens.json', configText, report, result: evaluateGate(report, gate), durationMs: 50 };
}

const brokenOutcome = (): GateOutcome => ({
  dataset: 'data/broken',
  configFile: 'data/broken/.clip-lens.json',
  error: { message: 'data/broken/labels.csv:3: unterminated quote', code: 'label-file-bad-line', file: 'data/broken/labels.csv', line: 3 },
  durationMs: 5,
});

test('exit codes: 0 all passed, 1 a threshold failed, 2 a dataset could not be checked', () => {
  const shapes = shapesOutcome();
  const passing: GateOutcome = { ...shapes, result: evaluateGate(shapes.report as EvalReport, { minTop1Accuracy: 0.5 }) };
  assert.equal(gateExitCode([passing]), 0);
  assert.equal(gateExitCode([passing, labelFileOutcome()]), 1);
  assert.equal(gateExitCode([passing, labelFileOutcome(), brokenOutcome()]), 2);
  assert.equal(gateExitCode([]), 0);
});

test('the shapes fixture fails where its numbers say it should', () => {
  const o = shapesOutcome();
  const r = o.result!;
  const failed = r.checks.filter((c) => !c.passed).map((c) => c.id);
  // yellow_star: 9 images, recall 0.22 -> below its override 0.5 and below the rare-class minimum 0.3.
  assert.ok(failed.includes('minRecall.yellow_star'), failed.join(', '));
  assert.ok(failed.includes('rareClassMinRecall.yellow_star'), failed.join(', '));
  for (const c of r.checks.filter((x) => x.kind === 'classRecall')) {
    const row = o.report!.metrics!.perClass.find((p) => p.class === c.class)!;
    assert.equal(c.passed, row.recall >= (c.class === 'yellow_star' ? 0.5 : 0.8) - 1e-9, c.id);
  }
});

test('sarif: valid 2.1.0 structure, stable rule ids, results at the config key line and at label-file lines', () => {
  const outcomes = [labelFileOutcome(), shapesOutcome(), brokenOutcome()];
  const log = JSON.parse(formatGate(outcomes, 'sarif', { baseDir: '/repo' }));
  assert.deepEqual(validateSarif(log), []);
  const run = log.runs[0];
  assert.equal(run.tool.driver.name, 'CLIP Lens');
  assert.deepEqual(
    run.tool.driver.rules.map((r: { id: string }) => r.id),
    [
      'clip-lens/min-top1-accuracy',
      'clip-lens/min-balanced-accuracy',
      'clip-lens/min-recall-at-k',
      'clip-lens/min-class-recall',
      'clip-lens/rare-class-min-recall',
      'clip-lens/max-label-issues',
      'clip-lens/gate-config',
      'clip-lens/max-drop-top1-accuracy',
      'clip-lens/max-drop-balanced-accuracy',
      'clip-lens/max-drop-recall-at-k',
      'clip-lens/max-drop-class-recall',
      'clip-lens/baseline',
    ],
  );
  assert.equal(SARIF_RULES.length, Object.keys(GATE_RULE_IDS).length);
  assert.equal(run.originalUriBaseIds['%SRCROOT%'].uri, 'file:///repo/');

  const pets = run.results.filter((r: { properties: { dataset: string } }) => r.properties.dataset === 'data/pets');
  // cat recall: one result at line 4 of the config, with the two misclassified cat images as related locations.
  const cat = pets.find((r: { ruleId: string }) => r.ruleId === 'clip-lens/min-class-recall');
  assert.equal(cat.level, 'error');
  assert.equal(cat.locations[0].physicalLocation.artifactLocation.uri, 'data/pets/.clip-lens.json');
  assert.equal(cat.locations[0].physicalLocation.region.startLine, 4);
  assert.match(cat.message.text, /recall of cat is 0\.5 \(2 of 4 images\), below the minimum 0\.75/);
  assert.deepEqual(
    cat.relatedLocations.map((l: { physicalLocation: { region: { startLine: number } } }) => l.physicalLocation.region.startLine),
    [4, 5],
    'labels.csv lines of samples 2 and 3',
  );
  // label issues: the threshold at line 5, then one result per counted issue at its labels.csv line.
  const li = pets.filter((r: { ruleId: string }) => r.ruleId === 'clip-lens/max-label-issues');
  assert.equal(li.length, 1 + 3);
  assert.equal(li[0].locations[0].physicalLocation.region.startLine, 5);
  assert.deepEqual(
    li.slice(1).map((r: { locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } } }[] }) => [r.locations[0].physicalLocation.artifactLocation.uri, r.locations[0].physicalLocation.region.startLine]),
    [
      ['data/pets/labels.csv', 4],
      ['data/pets/labels.csv', 9],
      ['data/pets/labels.csv', 13],
    ],
  );
  assert.match(li[1].message.text, /labelled 'cat', looks like 'dog'/);
  assert.ok(!pets.some((r: { ruleId: string }) => r.ruleId === 'clip-lens/min-top1-accuracy'), 'passed thresholds are not results');

  // class-folder dataset: label-issue results point at the images (paths with spaces percent-encoded elsewhere).
  const shapes = run.results.filter((r: { properties: { dataset: string } }) => r.properties.dataset === 'examples/shapes');
  const star = shapes.find((r: { properties: { check: string } }) => r.properties.check === 'minRecall.yellow_star');
  assert.equal(star.ruleId, 'clip-lens/min-class-recall');
  assert.ok(star.relatedLocations.every((l: { physicalLocation: { artifactLocation: { uri: string } } }) => l.physicalLocation.artifactLocation.uri.startsWith('examples/shapes/')));
  const rare = shapes.find((r: { ruleId: string }) => r.ruleId === 'clip-lens/rare-class-min-recall');
  assert.ok(rare, 'rare-class failure reported');

  // The dataset that could not be checked is a tool notification, not a result.
  assert.equal(run.invocations[0].executionSuccessful, false);
  assert.match(run.invocations[0].toolExecutionNotifications[0].message.text, /unterminated quote/);
  assert.equal(run.invocations[0].toolExecutionNotifications[0].locations[0].physicalLocation.region.startLine, 3);

  // Fingerprints are stable across runs.
  const again = JSON.parse(formatGate(outcomes, 'sarif', { baseDir: '/repo' }));
  assert.deepEqual(
    again.runs[0].results.map((r: { partialFingerprints: unknown }) => r.partialFingerprints),
    run.results.map((r: { partialFingerprints: unknown }) => r.partialFingerprints),
  );
  // Paths with spaces are percent-encoded.
  const images = formatGate([{ ...labelFileOutcome(), report: { ...labelFileOutcome().report!, samples: labelFileOutcome().report!.samples!.map((s) => ({ ...s, source: undefined })) } }], 'sarif');
  assert.ok(JSON.parse(images).runs[0].results.some((r: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }) => r.locations[0].physicalLocation.artifactLocation.uri === 'data/pets/images/img%202.jpg'));
});

test('sarif validator rejects what it should', () => {
  const log = JSON.parse(formatGate([labelFileOutcome()], 'sarif', { baseDir: '/repo' }));
  const broken = structuredClone(log);
  delete broken.runs[0].results[0].locations[0].physicalLocation.region.startLine;
  broken.runs[0].results[1].ruleId = 'clip-lens/unknown';
  broken.version = '2.0.0';
  const errors = validateSarif(broken);
  assert.ok(errors.some((e) => e.includes('startLine')), errors.join('\n'));
  assert.ok(errors.some((e) => e.includes('not a rule of the driver')), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('version')), errors.join('\n'));
});

test('junit: well-formed XML, one testcase per threshold, failures and errors counted, nasty names escaped', () => {
  const outcomes = [labelFileOutcome(), shapesOutcome(), brokenOutcome()];
  const xml = formatGate(outcomes, 'junit');
  const root = parseXml(xml);
  assert.equal(root.name, 'testsuites');
  const suites = all(root, 'testsuite');
  assert.equal(suites.length, 3);
  let expectedTests = 0;
  let expectedFailures = 0;
  suites.forEach((suite, i) => {
    const o = outcomes[i];
    const cases = all(suite, 'testcase');
    const failures = all(suite, 'failure');
    const errors = all(suite, 'error');
    assert.equal(Number(suite.attrs.tests), cases.length);
    assert.equal(Number(suite.attrs.failures), failures.length);
    assert.equal(Number(suite.attrs.errors), errors.length);
    if (o.result) {
      assert.equal(cases.length, o.result.checks.length, 'one testcase per threshold');
      assert.equal(failures.length, o.result.summary.failed);
      assert.deepEqual(cases.map((c) => c.attrs.name), o.result.checks.map((c) => c.id));
      expectedFailures += o.result.summary.failed;
    } else {
      assert.equal(errors.length, 1);
      assert.match(errors[0].attrs.message, /unterminated quote/);
    }
    expectedTests += cases.length;
  });
  assert.equal(Number(root.attrs.tests), expectedTests);
  assert.equal(Number(root.attrs.failures), expectedFailures);
  assert.equal(Number(root.attrs.errors), 1);
  // The numbers are in the failure.
  const pets = suites[0];
  const catCase = all(pets, 'testcase').find((c) => c.attrs.name === 'minRecall.cat')!;
  const failure = catCase.children.find((c) => c.name === 'failure')!;
  assert.equal(failure.attrs.type, 'clip-lens/min-class-recall');
  assert.match(failure.attrs.message, /0\.5 \(2 of 4 images\), below the minimum 0\.75/);
  assert.match(failure.text, /data\/pets\/labels\.csv:4: labelled 'cat', predicted 'dog'/);
  // A class named c|<a&b>" survives escaping.
  const labelCase = all(pets, 'testcase').find((c) => c.attrs.name === 'maxLabelIssues')!;
  assert.match(labelCase.children[0].text, /labelled 'c\|<a&b>"', looks like 'fish'/);
});

test('junit escaping of control characters and the checker rejects malformed XML', () => {
  const o = labelFileOutcome();
  o.dataset = 'data/\u0001bell\u001b';
  parseXml(formatGate([o], 'junit'));
  for (const bad of ['<a><b></a>', '<a x="1" x="2"/>', '<a>&foo;</a>', '<a>x</a><b/>', '<a x="<"/>', '<a>\u0001</a>', '<a>&#1;</a>', '<a x=1/>', '<a>]]></a>']) {
    assert.throws(() => parseXml(bad), XmlError, bad);
  }
});

test('markdown: tables with the failed thresholds first, cells escaped', () => {
  const md = formatGate([labelFileOutcome(), shapesOutcome(), brokenOutcome()], 'markdown');
  assert.match(md, /^## CLIP Lens quality gate: could not run/);
  const lines = md.split('\n');
  // Every table row has the same number of unescaped cell separators as its header.
  let columns = -1;
  for (const line of lines) {
    if (!line.startsWith('|')) {
      columns = -1;
      continue;
    }
    const seps = line.replace(/\\\|/g, '').split('|').length;
    if (columns === -1) columns = seps;
    assert.equal(seps, columns, `ragged row: ${line}`);
  }
  assert.match(md, /\| :x: \| recall of cat \| 0\.5 \(2\/4\) \| ≥ 0\.75 \| `gate\.classes\.cat\.minRecall` \|/);
  assert.match(md, /\| :x: \| label issues \| 3 \| ≤ 1 \| `gate\.maxLabelIssues` \|/);
  assert.match(md, /c\\\|&lt;a&amp;b&gt;"/, 'pipes and HTML escaped');
  assert.match(md, /### :warning: data\/broken/);
  assert.ok(md.indexOf('recall of cat') < md.indexOf('top-1 accuracy'), 'failures before the passed ones');
});

test('text: the failed thresholds with the numbers, config lines and the images behind them', () => {
  const text = formatGate([labelFileOutcome(), brokenOutcome()], 'text');
  assert.match(text, /data\/pets: FAILED, 2 of 3 thresholds not met in 1\.2 s/);
  assert.match(text, /recall of cat +0\.5 \(2\/4\) +>= 0\.75 +gate\.classes\.cat\.minRecall \(data\/pets\/\.clip-lens\.json:4\)/);
  assert.match(text, /label issues +3 +<= 1 +gate\.maxLabelIssues \(data\/pets\/\.clip-lens\.json:5\)/);
  assert.match(text, /data\/pets\/labels\.csv:4: labelled 'cat', predicted 'dog'/);
  assert.match(text, /data\/broken: could not be checked in 0\.0 s: data\/broken\/labels\.csv:3: unterminated quote/);
  assert.doesNotMatch(text, /top-1 accuracy/, 'passed thresholds are not listed');
});

test('json: exit code, every check with its config line, samples instead of indexes', () => {
  const out = JSON.parse(formatGate([labelFileOutcome(), brokenOutcome()], 'json'));
  assert.equal(out.exitCode, 2);
  assert.equal(out.passed, false);
  const [pets, broken] = out.datasets;
  assert.equal(pets.status, 'failed');
  assert.equal(broken.status, 'error');
  assert.equal(broken.error.code, 'label-file-bad-line');
  const cat = pets.checks.find((c: { id: string }) => c.id === 'minRecall.cat');
  assert.equal(cat.configLine, 4);
  assert.equal(cat.configKey, 'gate.classes.cat.minRecall');
  assert.equal(cat.sampleIndexes, undefined);
  assert.deepEqual(cat.samples.map((s: { path: string }) => s.path), ['images/img 2.jpg', 'images/img 3.jpg']);
  assert.deepEqual(cat.samples[0].source, { file: 'labels.csv', line: 4 });
});
