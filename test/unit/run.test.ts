/**
 * core/run.ts: one plan from `.clip-lens.json` + options + settings (precedence option > config > setting > default),
 * the order of checks (dataset, config, then the model: nothing here touches a model before a valid plan), the model
 * loader, and embedFiles (the evaluation's pipeline, results in input order, with the cache).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from '../../src/core/errors';
import { chooseModelSpec, embedFiles, executeRun, loadModel, locateModel, mergeWarningThresholds, planRun } from '../../src/core/run';
import { defaultModelEntry, findModelEntry } from '../../src/core/modelRegistry';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

function tmp(t: { after: (f: () => void) => void }, prefix = 'clip-lens-run-'): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Two example classes, `perClass` images each, in `dir`. */
function smallDataset(dir: string, perClass = 3): string[] {
  const files: string[] = [];
  for (const cls of ['red_circle', 'blue_square']) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (const f of fs.readdirSync(path.join(EXAMPLE, cls)).sort().slice(0, perClass)) {
      fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, cls, f));
      files.push(path.join(dir, cls, f));
    }
  }
  return files;
}

test('chooseModelSpec: option > environment > .clip-lens.json > setting > default; relative paths against their source', () => {
  const project = '/data/set';
  const base = { projectDir: project, settingBaseDir: '/ws' };
  assert.deepEqual(chooseModelSpec(base), { spec: defaultModelEntry().id, baseDir: '/ws', source: 'default' });
  assert.deepEqual(chooseModelSpec({ ...base, setting: 'mobileclip-b' }), { spec: 'mobileclip-b', baseDir: '/ws', source: 'settings' });
  assert.deepEqual(chooseModelSpec({ ...base, setting: 'mobileclip-b', projectModel: './m' }), { spec: './m', baseDir: project, source: 'project' });
  assert.deepEqual(chooseModelSpec({ ...base, projectModel: './m', environment: '/opt/m' }), { spec: '/opt/m', baseDir: '/ws', source: 'environment' });
  assert.deepEqual(chooseModelSpec({ ...base, projectModel: './m', environment: '/opt/m', option: 'x', optionBaseDir: '/cwd' }), { spec: 'x', baseDir: '/cwd', source: 'option' });
  // Restricted Mode: a folder named by the config is skipped with a note, a registry id is used.
  const restricted = chooseModelSpec({ ...base, projectModel: './m', trusted: false });
  assert.equal(restricted.source, 'default');
  assert.match(restricted.note ?? '', /Restricted Mode/);
  assert.equal(chooseModelSpec({ ...base, projectModel: 'clip-vit-base-patch16', trusted: false }).source, 'project');
});

test('planRun: the config fills in what options leave open, settings what the config leaves open', async (t) => {
  const dir = tmp(t);
  smallDataset(dir);
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ model: './my-model', topK: 2, warnings: { lowAccuracy: 0.4 }, gate: { minRecallAtK: { '2': 0.5 } } }, null, 2));
  const plan = await planRun({ target: dir, settings: { model: 'mobileclip-b', topK: 7, templates: 'imagenet80', warnings: { lowAccuracy: 0.3, goodAccuracy: 0.35 } } });
  assert.deepEqual(plan.model, { spec: './my-model', baseDir: dir, source: 'project' });
  assert.equal(plan.topK, 2, 'config over setting');
  assert.equal(plan.templates, 'imagenet80', 'setting when the config is silent');
  assert.deepEqual(plan.warnings, { lowAccuracy: 0.4, goodAccuracy: 0.4 }, 'per key; goodAccuracy never below lowAccuracy');
  assert.deepEqual(plan.ks, [2]);
  assert.equal(plan.dataset.samples.length, 6);
  assert.deepEqual(plan.dataset.classes, ['blue_square', 'red_circle']);

  const withOptions = await planRun({ target: dir, options: { model: MODEL, topK: 4, templates: 'simple' }, settings: { topK: 7 } });
  assert.equal(withOptions.model.source, 'option');
  assert.equal(withOptions.topK, 4, 'option over config');
  assert.equal(withOptions.templates, 'simple');
  assert.deepEqual(mergeWarningThresholds(undefined, { lowAccuracy: 0.5 }), { lowAccuracy: 0.5 });
});

test('planRun checks the dataset, then the config, before any model; an invalid config never falls back', async (t) => {
  const dir = tmp(t);
  // Empty folder: the dataset error, whatever the config says.
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), '{\n  "topK": 0\n}\n');
  await assert.rejects(planRun({ target: dir }), (e: ClipLensError) => e.code === 'dataset-empty' && e.message.startsWith(dir));
  // Images, bad config: a config error naming file, line, column and key.
  smallDataset(dir);
  await assert.rejects(planRun({ target: dir }), (e: ClipLensError) => {
    assert.equal(e.code, 'config-invalid');
    assert.equal(e.file, path.join(dir, '.clip-lens.json'));
    assert.equal(e.line, 2);
    assert.match(e.message, /\.clip-lens\.json:2:\d+: topK: /);
    return true;
  });
  // A syntax error is reported before the dataset is read (the labels section may be what broke).
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), '{ "model": "clip-vit-base-patch32",\n');
  await assert.rejects(planRun({ target: dir }), /\.clip-lens\.json:\d+:\d+: /);
  // 'list': the run goes on with the valid keys, the problems are kept for the report (the editor uses 'fail').
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), '{ "topK": 0, "model": "./m" }');
  const listed = await planRun({ target: dir, configProblems: 'list' });
  assert.equal(listed.configProblems.length, 1);
  assert.equal(listed.model.spec, './m');
  // One class is not a zero-shot dataset: refused before the model too.
  const one = tmp(t);
  fs.mkdirSync(path.join(one, 'only'));
  fs.copyFileSync(path.join(EXAMPLE, 'red_circle', fs.readdirSync(path.join(EXAMPLE, 'red_circle'))[0] as string), path.join(one, 'only/a.png'));
  await assert.rejects(planRun({ target: one }), (e: ClipLensError) => e.code === 'dataset-too-few-classes');
  // A template file that does not exist: before the model.
  await assert.rejects(planRun({ target: dir, configProblems: 'list', options: { templates: 'no-such-templates.txt' } }), ClipLensError);
});

test('locateModel: folders as they are; a registry model not cached goes to the caller, who may decline', async (t) => {
  const cache = tmp(t);
  assert.deepEqual(await locateModel({ spec: MODEL, baseDir: '/', source: 'option' }), { dir: MODEL, quantized: undefined, id: MODEL });
  const asked: string[] = [];
  const declined = await locateModel(
    { spec: 'clip-vit-base-patch32', baseDir: cache, source: 'default' },
    { cacheDir: cache, quantized: true, obtain: async (entry) => void asked.push(entry.id) },
  );
  assert.equal(declined, undefined);
  assert.deepEqual(asked, [findModelEntry('clip-vit-base-patch32-quantized')?.id ?? 'clip-vit-base-patch32-quantized']);
  await assert.rejects(locateModel({ spec: 'clip-vit-base-patch32', baseDir: cache, source: 'default' }, { cacheDir: cache }), /not downloaded/);
  await assert.rejects(locateModel({ spec: 'mobileclip-b', baseDir: cache, source: 'default' }, { cacheDir: cache, quantized: true }), /no quantized variant/);
});

test('executeRun evaluates the planned dataset with the plan\'s values; the gate when thresholds are set', async (t) => {
  const dir = tmp(t);
  smallDataset(dir, 4);
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ model: path.relative(dir, MODEL), topK: 1, gate: { minTop1Accuracy: 0.01 } }));
  const plan = await planRun({ target: dir, cacheDir: null });
  const located = await locateModel(plan.model);
  assert.ok(located);
  assert.equal(located.dir, MODEL, 'the config names the model relative to itself');
  const model = await loadModel(located, { threads: 1 });
  try {
    const { report, gate } = await executeRun(plan, { model });
    assert.equal(report.topK, 1);
    assert.equal(report.model.id, path.relative(dir, MODEL));
    assert.equal(report.dataset.counts.samples, 8);
    assert.ok(report.samples!.every((s) => s.predicted.length === 1));
    assert.ok(gate);
    assert.equal(gate.passed, true);
  } finally {
    await model.dispose();
  }
});

test('embedFiles: results in input order (cache hits, failures and duplicates included), the same with and without cache', async (t) => {
  const dir = tmp(t);
  const images = smallDataset(dir, 5);
  const cache = tmp(t, 'clip-lens-run-cache-');
  const model = await loadModel({ dir: MODEL, quantized: undefined }, { threads: 1 });
  try {
    const collect = async (files: string[], cacheDir: string | null, batchSize: number) => {
      const order: number[] = [];
      const out: (number[] | string)[] = [];
      const counts = await embedFiles(files, {
        model,
        cacheDir,
        batchSize,
        onResult: (i, r) => {
          order.push(i);
          out[i] = 'error' in r ? r.error.message : Array.from(r.embedding);
        },
      });
      assert.deepEqual(order, files.map((_, i) => i), 'input order');
      return { out, counts };
    };
    // Warm the cache with every other image, so that hits arrive while earlier images are still being inferred.
    const warm = images.filter((_, i) => i % 2 === 1);
    await collect(warm, cache, 4);
    const missing = path.join(dir, 'red_circle/missing.png');
    const files = [...images.slice(0, 5), missing, images[0] as string, ...images.slice(5)];
    const cold = await collect(files, null, 3);
    const cached = await collect(files, cache, 3);
    assert.deepEqual(cached.out, cold.out, 'cached embeddings equal computed ones');
    assert.match(cold.out[5] as string, /missing\.png: cannot read/);
    assert.deepEqual(cold.out[6], cold.out[0], 'a repeated path gets the same embedding');
    assert.deepEqual(cold.counts, { computed: files.length - 1, fromCache: 0, failed: 1 });
    assert.ok(cached.counts.fromCache >= warm.length, `${cached.counts.fromCache} from the cache`);
    const norm = Math.sqrt((cold.out[0] as number[]).reduce((a, b) => a + b * b, 0));
    assert.ok(Math.abs(norm - 1) < 1e-5);
  } finally {
    await model.dispose();
  }
});

test('planRun: predictor from the option, else .clip-lens.json, else the settings (undefined: evaluate uses auto)', async (t) => {
  const dir = tmp(t);
  smallDataset(dir);
  assert.equal((await planRun({ target: dir })).predictor, undefined);
  assert.equal((await planRun({ target: dir, settings: { predictor: 'knn' } })).predictor, 'knn');
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ predictor: 'zero-shot' }));
  assert.equal((await planRun({ target: dir, settings: { predictor: 'knn' } })).predictor, 'zero-shot');
  assert.equal((await planRun({ target: dir, options: { predictor: 'linear-probe' }, settings: { predictor: 'knn' } })).predictor, 'linear-probe');
});

test('the wrong folder chosen: a class folder, or the parent of the dataset, names the folder to evaluate', async (t) => {
  const parent = tmp(t);
  const dataset = path.join(parent, 'pets');
  smallDataset(dataset);
  // a class folder: images, no subfolders
  await assert.rejects(planRun({ target: path.join(dataset, 'red_circle') }), (e: ClipLensError) => e.code === 'dataset-empty' && e.message.includes(`it holds 3 images itself, so it looks like one class folder: evaluate its parent folder ${dataset}`));
  // the parent: one "class" that has class folders itself
  await assert.rejects(planRun({ target: parent }), (e: ClipLensError) => e.code === 'dataset-too-few-classes' && e.message.includes(`its only folder 'pets' has 2 folders itself, so it looks like the dataset: evaluate ${dataset}`));
  // an empty folder keeps the plain message
  const empty = tmp(t);
  await assert.rejects(planRun({ target: empty }), (e: ClipLensError) => e.code === 'dataset-empty' && !e.message.includes('looks like'));
});
