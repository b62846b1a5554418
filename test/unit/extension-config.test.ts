import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_SETTINGS, effectiveThreads, mergeThresholds, readSettings } from '../../src/extension/config';
import { chooseModel, isModelFolder, MODEL_ENV } from '../../src/extension/trust';

const source = (values: Record<string, unknown>) => ({ get: <T>(key: string) => values[key] as T | undefined });

test('readSettings: nothing set gives the defaults and no problems', () => {
  const { settings, problems } = readSettings(source({}));
  assert.deepEqual(settings, DEFAULT_SETTINGS);
  assert.deepEqual(problems, []);
});

test('readSettings: valid values are taken (trimmed), invalid ones replaced by defaults and named', () => {
  const { settings, problems } = readSettings(
    source({
      model: '  ./models/clip ',
      quantized: true,
      templates: ['a photo of {}.', 'a drawing of a {}.'],
      topK: 0,
      batchSize: 8,
      threads: 2.5,
      cacheDirectory: '',
      autoRerun: 'always',
      executionProvider: 'auto',
      'thresholds.lowAccuracy': 0.6,
      'thresholds.goodAccuracy': 0.55,
      'thresholds.recallAtK': { k: 3, min: 2 },
      labelIssueWarningScore: 0.1,
    }),
  );
  assert.equal(settings.model, './models/clip');
  assert.equal(settings.quantized, true);
  assert.deepEqual(settings.templates, ['a photo of {}.', 'a drawing of a {}.']);
  assert.equal(settings.topK, 5);
  assert.equal(settings.batchSize, 8);
  assert.equal(settings.threads, 0);
  assert.equal(settings.autoRerun, 'onSave');
  assert.equal(settings.executionProvider, 'auto');
  assert.equal(settings.thresholds.lowAccuracy, 0.6);
  assert.equal(settings.thresholds.goodAccuracy, 0.6, 'raised to lowAccuracy');
  assert.deepEqual(settings.thresholds.recallAtK, DEFAULT_SETTINGS.thresholds.recallAtK);
  assert.equal(settings.labelIssueWarningScore, 0.1);
  const named = problems.map((p) => p.split(':')[0]);
  assert.deepEqual(named.sort(), ['clipLens.autoRerun', 'clipLens.thresholds.goodAccuracy (0.55) is below thresholds.lowAccuracy (0.6); using 0.6 for both', 'clipLens.thresholds.recallAtK', 'clipLens.threads', 'clipLens.topK'].sort());
});

test('readSettings: maxProblems is an integer from 1 (default 300)', () => {
  assert.equal(readSettings(source({})).settings.maxProblems, 300);
  assert.equal(readSettings(source({ maxProblems: 50 })).settings.maxProblems, 50);
  const bad = readSettings(source({ maxProblems: 0 }));
  assert.equal(bad.settings.maxProblems, 300);
  assert.match(bad.problems[0], /^clipLens\.maxProblems: expected an integer from 1 to 1000000/);
});

test('readSettings: templates must be a name/file or a list with {} exactly once in each', () => {
  assert.equal(readSettings(source({ templates: 'imagenet80' })).settings.templates, 'imagenet80');
  const bad = readSettings(source({ templates: ['no placeholder'] }));
  assert.equal(bad.settings.templates, 'simple');
  assert.equal(bad.problems.length, 1);
});

test('mergeThresholds: each key set in .clip-lens.json wins, the settings fill in the rest', () => {
  const fromSettings = { ...DEFAULT_SETTINGS.thresholds, rareClassMinRecall: 0.3, imbalanceRatio: 4 };
  const merged = mergeThresholds({ rareClassMinRecall: 0.8, recallAtK: { k: 3, min: 0.7 } }, fromSettings);
  assert.equal(merged.rareClassMinRecall, 0.8);
  assert.equal(merged.imbalanceRatio, 4);
  assert.deepEqual(merged.recallAtK, { k: 3, min: 0.7 });
  assert.deepEqual(mergeThresholds(undefined, fromSettings), fromSettings);
  assert.equal(mergeThresholds({ lowAccuracy: 0.9 }, DEFAULT_SETTINGS.thresholds).goodAccuracy, 0.9);
});

test('effectiveThreads: 0 leaves one core for the editor', () => {
  assert.equal(effectiveThreads(0, 8), 7);
  assert.equal(effectiveThreads(0, 1), 1);
  assert.equal(effectiveThreads(3, 8), 3);
});

test('chooseModel: environment > .clip-lens.json > setting > default; model folders of the workspace need trust', () => {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-trust-'));
  fs.mkdirSync(path.join(project, 'my-model'));
  const base = { env: {}, projectDir: project, settingModel: 'clip-vit-base-patch32', settingBaseDir: os.homedir(), trusted: true };
  assert.deepEqual(chooseModel(base), { spec: 'clip-vit-base-patch32', baseDir: os.homedir(), source: 'default' });
  assert.equal(chooseModel({ ...base, settingModel: 'mobileclip-b' }).source, 'settings');
  const fromProject = chooseModel({ ...base, projectModel: 'my-model', settingModel: 'mobileclip-b' });
  assert.deepEqual(fromProject, { spec: 'my-model', baseDir: project, source: 'project' });
  const env = chooseModel({ ...base, env: { [MODEL_ENV]: ' /opt/tiny-clip ' }, projectModel: 'my-model' });
  assert.deepEqual(env, { spec: '/opt/tiny-clip', baseDir: os.homedir(), source: 'environment' });

  const restricted = chooseModel({ ...base, trusted: false, projectModel: 'my-model', settingModel: 'mobileclip-b' });
  assert.equal(restricted.spec, 'mobileclip-b');
  assert.equal(restricted.source, 'settings');
  assert.match(restricted.note ?? '', /Restricted Mode/);
  const registryInRestricted = chooseModel({ ...base, trusted: false, projectModel: 'clip-vit-base-patch16' });
  assert.equal(registryInRestricted.source, 'project', 'a registry id is allowed in Restricted Mode');
  assert.equal(chooseModel({ ...base, trusted: false, projectModel: './elsewhere' }).source, 'default', 'a relative path is a folder even when missing');
});

test('isModelFolder follows resolveModelSpec', () => {
  assert.equal(isModelFolder('clip-vit-base-patch32', os.tmpdir()), false);
  assert.equal(isModelFolder('Xenova/clip-vit-base-patch32', '/nonexistent'), false);
  assert.equal(isModelFolder('./x', '/nonexistent'), true);
  assert.equal(isModelFolder('no-such-model', '/nonexistent'), false);
});

test('clipLens.predictor: the four values, default auto, a bad value named and replaced', () => {
  for (const p of ['auto', 'zero-shot', 'linear-probe', 'knn']) {
    assert.equal(readSettings({ get: <T>(k: string) => (k === 'predictor' ? p : undefined) as T }).settings.predictor, p);
  }
  const { settings, problems } = readSettings({ get: <T>(k: string) => (k === 'predictor' ? 'probe' : undefined) as T });
  assert.equal(settings.predictor, 'auto');
  assert.deepEqual(problems, ['clipLens.predictor: expected one of auto, zero-shot, linear-probe, knn, got "probe"; using the default']);
});
