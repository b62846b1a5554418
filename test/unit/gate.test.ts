/**
 * The quality gate (src/core/gate.ts) on small reports whose metrics are computed here from the samples, so every
 * expected number can be checked by hand: each threshold kind, per-class defaults and overrides, unknown classes,
 * rare classes, label issues with a score filter, missing metrics, floating-point edges, and the config key paths
 * (with their lines in a real `.clip-lens.json` text parsed by projectConfig.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateGate, failedChecks, gateKs, hasThresholds, numPair, rareClasses, GATE_RULE_IDS, type GateCheck } from '../../src/core/gate';
import { configKeyLocation } from '../../src/core/gateFormats';
import { computeWarnings, rareClassRule } from '../../src/core/warnings';
import { parseProjectConfig, type GateConfig } from '../../src/core/projectConfig';
import type { ClassMetrics, EvalReport, LabelIssue, Metrics, ReportSample } from '../../src/core/report';

interface SampleSpec {
  label: string;
  /** Top predictions, best first. */
  top: string[];
}

/** A report whose metrics follow from `samples` (recall@K from the `top` lists), plus the given label issues. */
function makeReport(classes: string[], samples: SampleSpec[], opts: { labelIssues?: LabelIssue[]; metricsNull?: boolean; warnings?: EvalReport['warnings'] } = {}): EvalReport {
  const reportSamples: ReportSample[] = samples.map((s, i) => ({
    path: `${s.label}/${String(i).padStart(3, '0')}.png`,
    label: s.label,
    predicted: s.top.map((c, j) => ({ class: c, score: j === 0 ? 0.9 : 0.05 })),
  }));
  const perClass: ClassMetrics[] = classes.map((c) => {
    const mine = samples.filter((s) => s.label === c);
    const correct = mine.filter((s) => s.top[0] === c).length;
    const predicted = samples.filter((s) => s.top[0] === c).length;
    return {
      class: c,
      support: mine.length,
      predicted,
      precision: predicted ? samples.filter((s) => s.top[0] === c && s.label === c).length / predicted : 0,
      recall: mine.length ? correct / mine.length : 0,
      f1: 0,
      recallAtK: {},
      averagePrecision: null,
    };
  });
  const n = samples.length;
  const recallAtK: Record<string, number> = {};
  for (const k of [1, 3]) if (k < classes.length) recallAtK[String(k)] = samples.filter((s) => s.top.slice(0, k).includes(s.label)).length / n;
  const withSupport = perClass.filter((c) => c.support > 0);
  const metrics: Metrics = {
    classes,
    n,
    top1Accuracy: samples.filter((s) => s.top[0] === s.label).length / n,
    balancedAccuracy: withSupport.reduce((a, c) => a + c.recall, 0) / withSupport.length,
    recallAtK,
    macro: { precision: 0, recall: 0, f1: 0 },
    weighted: { precision: 0, recall: 0, f1: 0 },
    perClass,
    confusionMatrix: [],
  };
  return {
    schemaVersion: 2,
    tool: { name: 'clip-lens', version: '0.0.0' },
    createdAt: '2025-01-01T00:00:00.000Z',
    model: { id: 'test', dir: '/m', quantized: false, embeddingDim: 4, logitScale: 100, imageSize: 224 },
    templates: { name: 'simple', count: 1 },
    topK: 3,
    dataset: {
      root: '/data',
      format: 'class-folders',
      classes,
      counts: { samples: n, evaluated: n, failed: 0, perClass: Object.fromEntries(perClass.map((c) => [c.class, c.support])) },
    },
    samples: reportSamples,
    errors: [],
    metrics: opts.metricsNull ? null : metrics,
    warnings: opts.warnings ?? [],
    labelIssues: opts.labelIssues ?? [],
    timing: { totalMs: 0, textMs: 0, imageMs: 0, imagesComputed: 0, imagesFromCache: n, imagesPerSecond: 0 },
  };
}

function rep(label: string, count: number, top: string[]): SampleSpec[] {
  return Array.from({ length: count }, () => ({ label, top }));
}

// cat: 8 images, 6 right (recall 0.75), 2 predicted dog but dog second -> in top 3.
// dog: 10 images, 10 right. fish: 2 images, 1 right (recall 0.5), 1 predicted cat with fish nowhere in the top 3.
const CLASSES = ['cat', 'dog', 'fish', 'owl'];
const SAMPLES: SampleSpec[] = [
  ...rep('cat', 6, ['cat', 'dog', 'fish']),
  ...rep('cat', 2, ['dog', 'cat', 'fish']),
  ...rep('dog', 10, ['dog', 'cat', 'fish']),
  { label: 'fish', top: ['fish', 'cat', 'dog'] },
  { label: 'fish', top: ['cat', 'dog', 'owl'] },
];
// top-1: (6 + 10 + 1) / 20 = 0.85; balanced: (0.75 + 1 + 0.5) / 3 = 0.75; recall@3: 19/20 = 0.95. owl: no images.

function byId(checks: GateCheck[], id: string): GateCheck {
  const c = checks.find((x) => x.id === id);
  assert.ok(c, `no check ${id} among ${checks.map((x) => x.id).join(', ')}`);
  return c;
}

test('global thresholds: actual, required, passed and the numbers in the message', () => {
  const report = makeReport(CLASSES, SAMPLES);
  const r = evaluateGate(report, { minTop1Accuracy: 0.9, minBalancedAccuracy: 0.7, minRecallAtK: { '3': 0.95, '1': 0.8 } });
  assert.deepEqual(
    r.checks.map((c) => c.id),
    ['minTop1Accuracy', 'minBalancedAccuracy', 'minRecallAtK.1', 'minRecallAtK.3'],
  );
  const top1 = byId(r.checks, 'minTop1Accuracy');
  assert.equal(top1.actual, 0.85);
  assert.equal(top1.required, 0.9);
  assert.equal(top1.passed, false);
  assert.equal(top1.kind, 'top1Accuracy');
  assert.equal(top1.ruleId, 'clip-lens/min-top1-accuracy');
  assert.equal(top1.configKey, 'gate.minTop1Accuracy');
  assert.deepEqual(top1.counts, { hits: 17, total: 20 });
  assert.match(top1.message, /top-1 accuracy is 0\.85 \(17 of 20 images\), below the minimum 0\.9 \(gate\.minTop1Accuracy\)/);

  const bal = byId(r.checks, 'minBalancedAccuracy');
  assert.equal(bal.actual, 0.75);
  assert.equal(bal.passed, true);
  assert.match(bal.message, /at or above the minimum 0\.7/);

  const r3 = byId(r.checks, 'minRecallAtK.3');
  assert.equal(r3.actual, 0.95);
  assert.equal(r3.passed, true, 'equal to the threshold passes');
  assert.equal(r3.k, 3);
  assert.deepEqual(r3.configPath, ['gate', 'minRecallAtK', '3']);
  assert.equal(byId(r.checks, 'minRecallAtK.1').passed, true);

  assert.equal(r.passed, false);
  assert.deepEqual(r.summary, { total: 4, passed: 3, failed: 1 });
  assert.deepEqual(failedChecks(r).map((c) => c.id), ['minTop1Accuracy']);
});

test('per-class recall: default for every class with images, overrides win, the misclassified samples are listed', () => {
  const report = makeReport(CLASSES, SAMPLES);
  const gate: GateConfig = { minRecall: 0.6, classes: { cat: { minRecall: 0.8 }, dog: { minRecall: 0.5 } } };
  const r = evaluateGate(report, gate);
  const ids = r.checks.map((c) => c.id);
  assert.deepEqual(ids, ['minRecall.cat', 'minRecall.dog', 'minRecall.fish', 'minRecall.owl']);

  const cat = byId(r.checks, 'minRecall.cat');
  assert.equal(cat.passed, false);
  assert.equal(cat.actual, 0.75);
  assert.equal(cat.required, 0.8);
  assert.equal(cat.configKey, 'gate.classes.cat.minRecall');
  assert.deepEqual(cat.configPath, ['gate', 'classes', 'cat', 'minRecall']);
  assert.equal(cat.class, 'cat');
  assert.match(cat.message, /recall of cat is 0\.75 \(6 of 8 images\), below the minimum 0\.8 \(gate\.classes\.cat\.minRecall\)/);
  assert.deepEqual(cat.sampleIndexes, [6, 7], 'the two cat images predicted as dog');

  const dog = byId(r.checks, 'minRecall.dog');
  assert.equal(dog.passed, true);
  assert.equal(dog.required, 0.5, 'the override applies even when it is lower than the default');
  assert.equal(dog.sampleIndexes, undefined);

  const fish = byId(r.checks, 'minRecall.fish');
  assert.equal(fish.passed, false);
  assert.equal(fish.configKey, 'gate.minRecall', 'no override: the default key');
  assert.deepEqual(fish.sampleIndexes, [19]);

  const owl = byId(r.checks, 'minRecall.owl');
  assert.equal(owl.passed, false, 'a class without images cannot meet a minimum');
  assert.equal(owl.actual, null);
  assert.match(owl.message, /owl has no evaluated image/);
});

test('only overrides, no default: only the named classes are checked', () => {
  const r = evaluateGate(makeReport(CLASSES, SAMPLES), { classes: { fish: { minRecall: 0.5 } } });
  assert.deepEqual(r.checks.map((c) => c.id), ['minRecall.fish']);
  assert.equal(r.passed, true);
});

test('a class in gate.classes that the dataset does not have fails, naming the key, with a did-you-mean', () => {
  const r = evaluateGate(makeReport(CLASSES, SAMPLES), { classes: { cats: { minRecall: 0.1 }, 'zebra.v2': { minRecall: 0.1 } } });
  const cats = byId(r.checks, 'config.classes.cats');
  assert.equal(cats.kind, 'config');
  assert.equal(cats.passed, false);
  assert.equal(cats.ruleId, GATE_RULE_IDS.config);
  assert.equal(cats.configKey, 'gate.classes.cats');
  assert.match(cats.message, /^gate\.classes\.cats: the dataset has no class 'cats' \(did you mean 'cat'\?\)/);
  const zebra = byId(r.checks, 'config.classes.zebra.v2');
  assert.deepEqual(zebra.configPath, ['gate', 'classes', 'zebra.v2'], 'class names with dots stay one key');
  assert.doesNotMatch(zebra.message, /did you mean/);
  assert.equal(r.passed, false);
});

test('Recall@K: a K at or above the class count is 1; a K the evaluation did not compute fails', () => {
  const r = evaluateGate(makeReport(CLASSES, SAMPLES), { minRecallAtK: { '4': 1, '2': 0.5 } });
  const k4 = byId(r.checks, 'minRecallAtK.4');
  assert.equal(k4.actual, 1);
  assert.equal(k4.passed, true);
  const k2 = byId(r.checks, 'minRecallAtK.2');
  assert.equal(k2.actual, null);
  assert.equal(k2.passed, false);
  assert.match(k2.message, /Recall@2 was not computed/);
  assert.deepEqual(gateKs({ minRecallAtK: { '2': 0.5, '10': 0.9 } }).sort((a, b) => a - b), [2, 10]);
});

test('rare classes: by support or share (config warnings), and classes flagged by a rare-class warning', () => {
  const samples = [...SAMPLES, ...rep('owl', 1, ['cat', 'owl', 'dog'])];
  const report = makeReport(CLASSES, samples);
  // n = 21. With maxSupport 2 and maxFraction 0: fish (2) and owl (1) are rare; cat (8) and dog (10) are not.
  assert.deepEqual(rareClasses(report, { rareClassMaxSupport: 2, rareClassMaxFraction: 0 }), ['fish', 'owl']);
  // By share: 2/21 = 0.095 <= 0.1, 8/21 > 0.1.
  assert.deepEqual(rareClasses(report, { rareClassMaxSupport: 0, rareClassMaxFraction: 0.1 }), ['fish', 'owl']);
  // A rare-class warning of the report counts too.
  const warned = makeReport(CLASSES, samples, {
    warnings: [{ kind: 'rare-class-low-recall', severity: 'warning', message: 'x', class: 'cat', numbers: {} }],
  });
  assert.deepEqual(rareClasses(warned, { rareClassMaxSupport: 2, rareClassMaxFraction: 0 }), ['cat', 'fish', 'owl']);

  const r = evaluateGate(report, { rareClassMinRecall: 0.5 }, { warnings: { rareClassMaxSupport: 2, rareClassMaxFraction: 0 } });
  assert.deepEqual(r.checks.map((c) => c.id), ['rareClassMinRecall.fish', 'rareClassMinRecall.owl']);
  const fish = byId(r.checks, 'rareClassMinRecall.fish');
  assert.equal(fish.passed, true);
  assert.equal(fish.kind, 'rareClassRecall');
  assert.equal(fish.configKey, 'gate.rareClassMinRecall');
  const owl = byId(r.checks, 'rareClassMinRecall.owl');
  assert.equal(owl.passed, false);
  assert.equal(owl.actual, 0);
  assert.match(owl.message, /recall of rare class owl is 0 \(0 of 1 images\), below the minimum 0\.5/);
  assert.deepEqual(owl.sampleIndexes, [20]);
});

test('maxLabelIssues: counts the issues (at or below labelIssueMaxScore when set) and lists them', () => {
  const issues: LabelIssue[] = [
    { index: 6, given: 'cat', suggested: 'dog', score: 0.01, rank: 1, path: 'cat/006.png' },
    { index: 19, given: 'fish', suggested: 'cat', score: 0.05, rank: 2, path: 'fish/019.png' },
    { index: 7, given: 'cat', suggested: 'dog', score: 0.3, rank: 3, path: 'cat/007.png' },
  ];
  const report = makeReport(CLASSES, SAMPLES, { labelIssues: issues });
  const atMax = evaluateGate(report, { maxLabelIssues: 3 });
  assert.equal(atMax.checks[0].actual, 3);
  assert.equal(atMax.checks[0].passed, true, 'equal to the maximum passes');
  const over = evaluateGate(report, { maxLabelIssues: 2 });
  const c = over.checks[0];
  assert.equal(c.passed, false);
  assert.equal(c.comparison, 'max');
  assert.deepEqual(c.sampleIndexes, [6, 19, 7]);
  assert.match(c.message, /3 likely label errors, above the maximum 2 \(gate\.maxLabelIssues\)/);
  const scored = evaluateGate(report, { maxLabelIssues: 1, labelIssueMaxScore: 0.05 });
  assert.equal(scored.checks[0].actual, 2, 'scores 0.01 and 0.05 count, 0.3 does not');
  assert.deepEqual(scored.checks[0].sampleIndexes, [6, 19]);
  assert.match(scored.checks[0].message, /at or below 0\.05 \(gate\.labelIssueMaxScore\)/);
});

test('no evaluated image: every metric threshold fails with actual null', () => {
  const report = makeReport(CLASSES, SAMPLES, { metricsNull: true });
  const r = evaluateGate(report, { minTop1Accuracy: 0.1, minBalancedAccuracy: 0.1, minRecallAtK: { '3': 0.1 }, minRecall: 0.1, rareClassMinRecall: 0.1, maxLabelIssues: 0 });
  const metricChecks = r.checks.filter((c) => c.kind !== 'labelIssues');
  assert.ok(metricChecks.length >= 3 + CLASSES.length);
  for (const c of metricChecks) {
    assert.equal(c.passed, false, c.id);
    assert.equal(c.actual, null, c.id);
    assert.match(c.message, /cannot be measured/, c.id);
  }
  assert.equal(r.passed, false);
});

test('empty gate: passes with no checks; hasThresholds tells', () => {
  const r = evaluateGate(makeReport(CLASSES, SAMPLES), {});
  assert.equal(r.passed, true);
  assert.equal(r.checks.length, 0);
  assert.equal(hasThresholds(undefined), false);
  assert.equal(hasThresholds({}), false);
  assert.equal(hasThresholds({ classes: { cat: {} } }), false);
  assert.equal(hasThresholds({ classes: { cat: { minRecall: 0.1 } } }), true);
  assert.equal(hasThresholds({ maxLabelIssues: 0 }), true);
  assert.equal(hasThresholds({ minRecallAtK: {} }), false);
});

test('floating point: a hair below the threshold passes, a real shortfall never prints as equal', () => {
  const report = makeReport(CLASSES, SAMPLES);
  (report.metrics as Metrics).balancedAccuracy = 0.7999999999999;
  assert.equal(evaluateGate(report, { minBalancedAccuracy: 0.8 }).passed, true);
  (report.metrics as Metrics).balancedAccuracy = 0.79996;
  const r = evaluateGate(report, { minBalancedAccuracy: 0.8 });
  assert.equal(r.passed, false);
  assert.match(r.checks[0].message, /is 0\.79996, below the minimum 0\.8 /);
  assert.deepEqual(numPair(0.79996, 0.8), ['0.79996', '0.8']);
  assert.deepEqual(numPair(0.625, 0.8), ['0.625', '0.8']);
});

test('config keys of failed checks are found on their lines of a real .clip-lens.json', () => {
  const text = [
    '{',
    '  "model": "clip-vit-base-patch32",',
    '  "gate": {',
    '    "minTop1Accuracy": 0.9,',
    '    "minRecall": 0.6,',
    '    "minRecallAtK": { "3": 0.99 },',
    '    "classes": {',
    '      "cat": { "minRecall": 0.8 },',
    '      "cats": { "minRecall": 0.1 }',
    '    }',
    '  }',
    '}',
  ].join('\n');
  const parsed = parseProjectConfig(text, '.clip-lens.json');
  assert.deepEqual(parsed.problems, []);
  const r = evaluateGate(makeReport(CLASSES, SAMPLES), parsed.config.gate as GateConfig);
  const line = (id: string) => configKeyLocation(text, byId(r.checks, id).configPath).line;
  assert.equal(line('minTop1Accuracy'), 4);
  assert.equal(line('minRecall.fish'), 5);
  assert.equal(line('minRecallAtK.3'), 6);
  assert.equal(line('minRecall.cat'), 8);
  assert.equal(configKeyLocation(text, byId(r.checks, 'minRecall.cat').configPath).column, 16, 'column of "minRecall" in the cat object');
  assert.equal(line('config.classes.cats'), 9);
  assert.deepEqual(
    failedChecks(r).map((c) => c.id),
    ['config.classes.cats', 'minTop1Accuracy', 'minRecallAtK.3', 'minRecall.cat', 'minRecall.fish', 'minRecall.owl'],
  );
});

test('rare classes: a balanced many-class dataset has none by fraction; a class under half the median is rare', () => {
  const t = { rareClassMaxFraction: 0.02, rareClassMaxSupport: 20 };
  // 1,000 classes of 1,000 images: each is 0.1% of the images, but as large as the typical class.
  const balanced = Array.from({ length: 1000 }, () => ({ support: 1000 }));
  assert.equal(rareClassRule(balanced, 1_000_000, t)(1000), false);
  // One small class among them (400 < half the median 1,000, and 0.04% of the images): rare.
  const skewed = [...balanced.slice(1), { support: 400 }];
  const isRare = rareClassRule(skewed, 999_400, t);
  assert.equal(isRare(400), true);
  assert.equal(isRare(1000), false);
  // The absolute limit still holds whatever the median: 15 images in classes of 15.
  assert.equal(rareClassRule(Array.from({ length: 10 }, () => ({ support: 15 })), 150, t)(15), true);
  assert.equal(rareClassRule(balanced, 1_000_000, t)(0), false);
});

test('warnings: 1,000 balanced classes failing zero-shot give one low-accuracy error, not 1,000 rare-class warnings', () => {
  const perClass = Array.from({ length: 1000 }, (_, i) => ({ class: `c${i}`, support: 1000, precision: 0, recall: 0.001, f1: 0 })) as unknown as ClassMetrics[];
  const metrics = { n: 1_000_000, top1Accuracy: 0.001, balancedAccuracy: 0.001, perClass, recallAtK: {} } as unknown as Metrics;
  const ws = computeWarnings({ metrics });
  assert.equal(ws.filter((w) => w.kind === 'rare-class-low-recall').length, 0);
  assert.ok(ws.some((w) => w.kind === 'low-accuracy'));
});
