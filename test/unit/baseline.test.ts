/**
 * The baseline file and the ratchet (src/core/baseline.ts) on small reports whose metrics are computed here from the
 * samples: the file's shape and stability, reading bad files, and the ratchet per class, with overrides, classes added
 * and removed, another model/templates/predictor, another dataset, and the gate formats showing the numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BASELINE_FORMAT,
  DEFAULT_BASELINE_FILE,
  checkRatchet,
  makeBaseline,
  ratchetChecks,
  readBaseline,
  serializeBaseline,
  validateBaseline,
  type Baseline,
} from '../../src/core/baseline';
import { evaluateGate, gateKs, hasMaxDrop, hasThresholds } from '../../src/core/gate';
import { formatGate } from '../../src/core/gateFormats';
import { parseProjectConfig, type GateConfig } from '../../src/core/projectConfig';
import type { EvalReport } from '../../src/core/report';
import { makeReport, many } from './reportFixtures';

const CLASSES = ['cat', 'dog', 'fox'];
/** Baseline run: cat 9/10, dog 8/10, fox 2/4 (a weak rare class). */
const BASE_SAMPLES = [...many('cat', 10, 9, 'dog'), ...many('dog', 10, 8, 'cat'), ...many('fox', 4, 2, 'dog')];

function gateOf(gate: GateConfig, report: EvalReport, baseline: Baseline | Error, file = 'data/.clip-lens-baseline.json') {
  const result = evaluateGate(report, gate);
  const r = ratchetChecks(report, baseline, gate, file);
  result.checks.push(...r.checks);
  return { checks: r.checks, notes: r.notes, failed: r.checks.filter((c) => !c.passed) };
}

test('the baseline file: no probabilities, stable key order, one line per class and sample, same bytes on a re-run', () => {
  const report = makeReport(CLASSES, BASE_SAMPLES, { issues: [9] });
  const b = makeBaseline(report);
  const text = serializeBaseline(b);
  assert.equal(text, serializeBaseline(makeBaseline(makeReport(CLASSES, BASE_SAMPLES, { issues: [9] }))));
  assert.doesNotMatch(text, /score|probabilit/);
  const parsed = JSON.parse(text) as Baseline;
  assert.equal(parsed.format, BASELINE_FORMAT);
  assert.deepEqual(Object.keys(parsed), ['format', 'version', 'tool', 'model', 'templates', 'predictor', 'dataset', 'metrics', 'classes', 'confusionMatrix', 'samples']);
  assert.deepEqual(parsed.model, { embeddingDim: 512, imageSize: 224, name: 'clip-vit-base-patch32', quantized: false });
  assert.equal(parsed.predictor, 'zero-shot');
  assert.deepEqual(parsed.classes.fox, { correct: 2, f1: parsed.classes.fox.f1, precision: 1, predicted: 2, recall: 0.5, support: 4 });
  assert.equal(Object.keys(parsed.samples).length, 24);
  const lines = text.split('\n');
  // Every sample on its own line, keyed by 16 hex digits, sorted by key.
  const sampleLines = lines.filter((l) => /^ {2}"[0-9a-f]{16}": \{/.test(l));
  assert.equal(sampleLines.length, 24);
  const keys = sampleLines.map((l) => l.slice(3, 19));
  assert.deepEqual(keys, [...keys].sort());
  assert.equal(lines.filter((l) => /^ {2}"(cat|dog|fox)": \{/.test(l)).length, 3);
  // The label issue flag names the suggested class.
  const flagged = Object.values(parsed.samples).filter((s) => s.issue);
  assert.deepEqual(flagged, [{ issue: 'dog', label: 'cat', path: 'cat/9.png', predicted: 'dog' }]);
  // Byte-identical images share one entry.
  const dup = makeBaseline(makeReport(['cat'], [{ label: 'cat', pred: 'cat', id: 'same' }, { label: 'cat', pred: 'cat', id: 'same' }]));
  assert.deepEqual(Object.values(dup.samples), [{ path: 'cat/0.png', label: 'cat', predicted: 'cat', copies: 2 }]);
  // A model given as a folder is named by the folder (paths differ between machines).
  const local = makeReport(CLASSES, BASE_SAMPLES, { model: '../models/my-clip' });
  local.model.dir = '/home/me/models/my-clip';
  assert.equal(makeBaseline(local).model.name, 'my-clip');
});

test('ratchet: per-class recall drop refused with baseline, current and drop; within the drop passes', () => {
  const baseline = makeBaseline(makeReport(CLASSES, BASE_SAMPLES));
  const gate: GateConfig = { maxDrop: { recall: 0.05 } };
  // Same figures: every class passes.
  const same = gateOf(gate, makeReport(CLASSES, BASE_SAMPLES), baseline);
  assert.equal(same.failed.length, 0);
  assert.equal(same.checks.length, 3);
  // dog loses 2 of 10 (0.8 -> 0.6): refused. cat gains: fine.
  const worse = [...many('cat', 10, 10, 'dog'), ...many('dog', 10, 6, 'cat'), ...many('fox', 4, 2, 'dog')];
  const r = gateOf(gate, makeReport(CLASSES, worse), baseline);
  assert.deepEqual(r.failed.map((c) => c.id), ['maxRecallDrop.dog']);
  const dog = r.failed[0];
  assert.equal(dog.kind, 'classRecallDrop');
  assert.equal(dog.class, 'dog');
  assert.equal(dog.actual, 0.6);
  assert.ok(Math.abs((dog.required as number) - 0.75) < 1e-12);
  assert.deepEqual(dog.baseline, { file: 'data/.clip-lens-baseline.json', value: 0.8, maxDrop: 0.05, drop: 0.2 });
  assert.match(dog.message, /recall of dog fell from 0\.8 in the baseline data\/\.clip-lens-baseline\.json to 0\.6 \(6\/10\): a drop of 0\.2, more than the 0\.05 allowed \(gate\.maxDrop\.recall\)/);
  assert.deepEqual(dog.configPath, ['gate', 'maxDrop', 'recall']);
  // The images behind it: the two newly misclassified dogs (the two already wrong in the baseline are not new).
  assert.deepEqual(dog.sampleIndexes, [16, 17]);
  assert.match(r.checks.find((c) => c.class === 'cat')!.message, /rose from 0\.9/);
  // Exactly at the limit passes (0.8 -> 0.75 with maxDrop 0.05; 3/4 vs 0.8 - 0.05).
  const edge = [...many('cat', 10, 9, 'dog'), ...many('dog', 4, 3, 'cat', 'dog'), ...many('fox', 4, 2, 'dog')];
  const e = gateOf(gate, makeReport(CLASSES, edge), baseline);
  assert.equal(e.failed.length, 0, e.failed.map((c) => c.message).join('\n'));
});

test('ratchet: gate.classes.<name>.maxRecallDrop overrides maxDrop.recall, alone too; headline drops', () => {
  const baseline = makeBaseline(makeReport(CLASSES, BASE_SAMPLES));
  const worse = [...many('cat', 10, 8, 'dog'), ...many('dog', 10, 6, 'cat'), ...many('fox', 4, 1, 'dog')];
  const report = makeReport(CLASSES, worse);
  // dog may lose 0.25 (it lost 0.2), the others 0.05: cat (0.1) and fox (0.25) fail.
  const r = gateOf({ maxDrop: { recall: 0.05 }, classes: { dog: { maxRecallDrop: 0.25 } } }, report, baseline);
  assert.deepEqual(r.failed.map((c) => c.class), ['cat', 'fox']);
  const dog = r.checks.find((c) => c.class === 'dog')!;
  assert.equal(dog.passed, true);
  assert.equal(dog.configKey, 'gate.classes.dog.maxRecallDrop');
  // Only an override: only that class is checked.
  const only = gateOf({ classes: { fox: { maxRecallDrop: 0.1 } } }, report, baseline);
  assert.deepEqual(only.checks.map((c) => c.id), ['maxRecallDrop.fox']);
  assert.equal(only.failed.length, 1);
  // Headline: top-1 19/24 -> 15/24 and balanced accuracy, Recall@1.
  const h = gateOf({ maxDrop: { top1Accuracy: 0.1, balancedAccuracy: 0.2, recallAtK: { '1': 0.2 } } }, report, baseline);
  assert.deepEqual(h.checks.map((c) => [c.id, c.passed]), [
    ['maxDrop.top1Accuracy', false],
    ['maxDrop.balancedAccuracy', true],
    ['maxDrop.recallAtK.1', true],
  ]);
  assert.match(h.checks[0].message, /top-1 accuracy fell from 0\.792 in the baseline .* to 0\.625 \(15\/24\): a drop of 0\.1667, more than the 0\.1 allowed \(gate\.maxDrop\.top1Accuracy\)/);
  assert.equal(h.checks[2].k, 1);
  // The config keys of the ratchet count as thresholds and their Ks are computed.
  assert.ok(hasThresholds({ maxDrop: { recall: 0.1 } }) && hasMaxDrop({ classes: { a: { maxRecallDrop: 0 } } }));
  assert.equal(hasMaxDrop({ maxDrop: {} }), false);
  assert.deepEqual(gateKs({ minRecallAtK: { '5': 0.9 }, maxDrop: { recallAtK: { '5': 0.1, '10': 0.1 } } }), [5, 10]);
});

test('ratchet: a class added has no drop to check and says so; a class removed fails naming the file', () => {
  const baseline = makeBaseline(makeReport(CLASSES, BASE_SAMPLES));
  const now = [...many('cat', 10, 9, 'dog'), ...many('dog', 10, 8, 'cat'), ...many('owl', 5, 1, 'cat')];
  const r = gateOf({ maxDrop: { recall: 0.05 } }, makeReport(['cat', 'dog', 'owl'], now), baseline);
  const owl = r.checks.find((c) => c.class === 'owl')!;
  assert.equal(owl.passed, true);
  assert.equal(owl.required, null);
  assert.match(owl.message, /class owl is new since the baseline data\/\.clip-lens-baseline\.json .*: no drop to check/);
  assert.ok(r.notes.some((n) => /new since the baseline .*: owl/.test(n)), r.notes.join('\n'));
  const fox = r.failed.find((c) => c.class === 'fox')!;
  assert.ok(fox, 'the removed class fails');
  assert.equal(fox.actual, null);
  assert.match(fox.message, /class fox is in the baseline data\/\.clip-lens-baseline\.json \(recall 0\.5, 4 images\) but no longer in the dataset.*re-run clip-lens baseline/);
  assert.deepEqual(r.failed.map((c) => c.class), ['fox']);
});

test('ratchet: another model, templates or predictor is one clear failing check and no comparison', () => {
  const baseline = makeBaseline(makeReport(CLASSES, BASE_SAMPLES));
  const gate: GateConfig = { baseline: 'b.json', maxDrop: { recall: 0.05, top1Accuracy: 0.01 } };
  for (const [opts, what] of [
    [{ model: 'clip-vit-large-patch14' }, /model: the baseline clip-vit-base-patch32, this run clip-vit-large-patch14/],
    [{ templates: 'imagenet80' }, /templates: the baseline simple \(1\), this run imagenet80 \(80\)/],
    [{ predictor: 'linear-probe' }, /predictor: the baseline zero-shot, this run linear-probe/],
  ] as const) {
    const r = gateOf(gate, makeReport(CLASSES, BASE_SAMPLES, opts), baseline, 'b.json');
    assert.equal(r.checks.length, 1);
    const c = r.checks[0];
    assert.equal(c.kind, 'baseline');
    assert.equal(c.passed, false);
    assert.equal(c.configKey, 'gate.baseline');
    assert.match(c.message, what);
    assert.match(c.message, /^b\.json was made with another setup .*re-run clip-lens baseline$/);
  }
});

test('ratchet: a baseline of another dataset (no common image), missing, corrupt or foreign files', async (t) => {
  const baseline = makeBaseline(makeReport(CLASSES, BASE_SAMPLES));
  const other = [...many('cat', 10, 9, 'dog', 'x'), ...many('dog', 10, 8, 'cat', 'y'), ...many('fox', 4, 2, 'dog', 'z')];
  const r = gateOf({ maxDrop: { recall: 0.05 } }, makeReport(CLASSES, other), baseline);
  assert.equal(r.checks.length, 1);
  assert.match(r.checks[0].message, /no image of this dataset is in the baseline data\/\.clip-lens-baseline\.json .*it has 24.*another dataset/);
  assert.deepEqual(r.checks[0].configPath, ['gate', 'maxDrop']);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-baseline-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const report = makeReport(CLASSES, BASE_SAMPLES);
  const gate: GateConfig = { maxDrop: { recall: 0.05 } };
  const run = async (content: string | undefined) => {
    const file = path.join(dir, DEFAULT_BASELINE_FILE);
    fs.rmSync(file, { force: true });
    if (content !== undefined) fs.writeFileSync(file, content);
    const result = evaluateGate(report, gate);
    const notes: string[] = [];
    await checkRatchet(result, report, gate, { root: dir, shownRoot: 'data/pets', notes });
    return result;
  };
  const missing = await run(undefined);
  assert.equal(missing.passed, false);
  assert.match(missing.checks[0].message, /^data\/pets\/\.clip-lens-baseline\.json: no such baseline file: write it with clip-lens baseline/);
  assert.match((await run('{"format": "clip-lens-baseline",\n  "version": 1,,\n}')).checks[0].message, /^data\/pets\/\.clip-lens-baseline\.json:2: not valid JSON/);
  assert.match((await run('{"hello": 1}')).checks[0].message, /not a CLIP Lens baseline/);
  assert.match((await run(JSON.stringify(report))).checks[0].message, /this is a clip-lens eval report, not a baseline/);
  assert.match((await run(JSON.stringify({ ...baseline, version: 99 }))).checks[0].message, /written by a newer clip-lens/);
  assert.match((await run(JSON.stringify({ ...baseline, classes: { cat: { support: 'x' } } }))).checks[0].message, /"classes\.cat" must hold support, correct and recall/);
  const ok = await run(serializeBaseline(baseline));
  assert.equal(ok.passed, true);
  assert.equal(ok.summary.total, 3);
  // readBaseline round-trips the file.
  assert.deepEqual(await readBaseline(path.join(dir, DEFAULT_BASELINE_FILE)), JSON.parse(serializeBaseline(baseline)));
  assert.throws(() => validateBaseline([], 'f.json'), /f\.json: not a CLIP Lens baseline/);
  // Nothing to check without maxDrop: the file is not even read.
  const none = evaluateGate(report, {});
  assert.deepEqual(await checkRatchet(none, report, { baseline: 'nope.json' }, { root: dir }), { checks: [], notes: [] });
});

test('ratchet checks in every gate format: the class, its baseline and current figure, and the drop', () => {
  const baseline = makeBaseline(makeReport(CLASSES, BASE_SAMPLES));
  const worse = [...many('cat', 10, 9, 'dog'), ...many('dog', 10, 6, 'cat'), ...many('fox', 4, 2, 'dog')];
  const report = makeReport(CLASSES, worse);
  const configText = '{\n  "gate": {\n    "maxDrop": { "recall": 0.05 }\n  }\n}\n';
  const { config } = parseProjectConfig(configText, 'c.json');
  const result = evaluateGate(report, config.gate as GateConfig);
  const r = ratchetChecks(report, baseline, config.gate as GateConfig, 'data/.clip-lens-baseline.json');
  result.checks.push(...r.checks);
  const failed = result.checks.filter((c) => !c.passed).length;
  result.summary = { total: result.checks.length, passed: result.checks.length - failed, failed };
  result.passed = failed === 0;
  const outcome = { dataset: 'data', configFile: 'data/.clip-lens.json', configText, result, report };
  const text = formatGate([outcome], 'text');
  assert.match(text, /recall of dog +0\.6 \(6\/10\) +>= 0\.75 \(baseline 0\.8 - 0\.05\) +gate\.maxDrop\.recall \(data\/\.clip-lens\.json:3\)/);
  assert.match(text, /fell from 0\.8 in the baseline data\/\.clip-lens-baseline\.json to 0\.6 \(6\/10\): a drop of 0\.2/);
  const json = JSON.parse(formatGate([outcome], 'json'));
  const dog = json.datasets[0].checks.find((c: { id: string }) => c.id === 'maxRecallDrop.dog');
  assert.deepEqual(dog.baseline, { file: 'data/.clip-lens-baseline.json', value: 0.8, maxDrop: 0.05, drop: 0.2 });
  assert.equal(dog.ruleId, 'clip-lens/max-drop-class-recall');
  assert.equal(dog.configLine, 3);
  assert.equal(dog.samples.length, 2);
  const junit = formatGate([outcome], 'junit');
  assert.match(junit, /<failure message="recall of dog fell from 0\.8 [^"]*a drop of 0\.2[^"]*" type="clip-lens\/max-drop-class-recall">/);
  const sarif = JSON.parse(formatGate([outcome], 'sarif'));
  const res = sarif.runs[0].results[0];
  assert.equal(res.ruleId, 'clip-lens/max-drop-class-recall');
  assert.equal(sarif.runs[0].tool.driver.rules[res.ruleIndex].id, res.ruleId);
  assert.match(res.message.text, /fell from 0\.8 .* to 0\.6/);
  assert.equal(res.locations[0].physicalLocation.region.startLine, 3);
  const md = formatGate([outcome], 'markdown');
  assert.match(md, /\| :x: \| recall of dog \| 0\.6 \(6\/10\) \| ≥ 0\.75 \(baseline 0\.8 - 0\.05\) \| `gate\.maxDrop\.recall` \|/);
  assert.match(md, /- recall of dog fell from 0\.8/);
});
