/**
 * Two models in one go (eval --model A --model B, config "models"): one read and one decode of each image for models
 * with the same preprocessing (one read for different preprocessing), each model's own cache entries, and a report
 * that is the first model's single-model report plus `models` and the comparison `compare` makes of the two reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { executeRun, executeRuns, loadModel, modelRunName, planRun, type RunPlan } from '../../src/core/run';
import { compareRuns } from '../../src/core/compare';
import { makeBaseline } from '../../src/core/baseline';
import { parseProjectConfig } from '../../src/core/projectConfig';
import type { ClipModel } from '../../src/core/runtime';
import type { EvalReport } from '../../src/core/report';
import { main } from '../../src/cli/main';
import type { CliIO } from '../../src/cli/io';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

function tmp(t: { after: (f: () => void) => void }): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-models-')));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Three classes, `perClass` images each. */
function dataset(dir: string, perClass = 5): number {
  let n = 0;
  for (const cls of ['red_circle', 'blue_square', 'green_star']) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (const f of fs.readdirSync(path.join(EXAMPLE, cls)).sort().slice(0, perClass)) {
      fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, cls, f));
      n++;
    }
  }
  return n;
}

/** The fixture model with another preprocessing (resize to 80, crop 64): same tensor size, other pixels. */
function otherPreprocessing(dir: string): string {
  const m = path.join(dir, 'tiny-clip-80');
  fs.cpSync(MODEL, m, { recursive: true });
  const file = path.join(m, 'preprocessor_config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  cfg.size = { shortest_edge: 80 };
  fs.writeFileSync(file, JSON.stringify(cfg));
  return m;
}

/** Counts the model's decodes (preprocess calls): the counting seam. */
function countDecodes(model: ClipModel): { n: number } {
  const count = { n: 0 };
  const pre = model.preprocessor;
  const original = pre.preprocess.bind(pre);
  pre.preprocess = (...args: Parameters<typeof pre.preprocess>) => {
    count.n++;
    return original(...args);
  };
  return count;
}

/** The report without what differs from run to run (time stamps, durations). */
function stable(r: EvalReport): unknown {
  const { createdAt: _c, timing, models: _m, comparison: _cmp, ...rest } = r;
  return { ...rest, timing: { imagesComputed: timing.imagesComputed, imagesFromCache: timing.imagesFromCache } };
}

async function loadPair(plan: RunPlan, second: string, secondInt8: boolean): Promise<[ClipModel, ClipModel]> {
  const a = await loadModel({ dir: MODEL, quantized: plan.quantized ? true : undefined }, { threads: 1 });
  const b = await loadModel({ dir: second, quantized: secondInt8 ? true : undefined }, { threads: 1 });
  return [a, b];
}

test('two models, same preprocessing (fp32 and int8 graphs): each image read and decoded once; report = the single run + models + comparison', async (t) => {
  const dir = tmp(t);
  const n = dataset(dir);
  const plan = await planRun({ target: dir, cacheDir: null, options: { models: [MODEL, MODEL], comparedPrecision: 'int8' } });
  assert.ok(plan.compared);
  assert.equal(plan.compared.precision, 'int8');
  assert.equal(plan.precision, 'fp32');
  const [a, b] = await loadPair(plan, MODEL, true);
  try {
    assert.equal(a.preprocessor.fingerprint, b.preprocessor.fingerprint);
    assert.notEqual(a.imageFingerprint, b.imageFingerprint, 'two vision graphs: two cache namespaces');
    const da = countDecodes(a);
    const db = countDecodes(b);
    const both = await executeRuns(plan, { model: a, modelId: 'fp32' }, { model: b, modelId: 'int8' });
    assert.deepEqual(both.images, { reads: n, decodes: n });
    assert.equal(da.n + db.n, n, 'one decode per image for both models');
    assert.equal(both.report.timing.imagesComputed, n);
    assert.equal(both.compared.timing.imagesComputed, n);

    // The same models one at a time.
    const single = (await executeRun(plan, { model: a, modelId: 'fp32' })).report;
    const other = (await executeRun(plan, { model: b, modelId: 'int8' })).report;
    assert.equal(da.n + db.n, 3 * n, 'the single runs decode once each');
    assert.deepEqual(stable(both.report), stable(single), 'every existing key as in the single-model report');
    assert.deepEqual(stable(both.compared), stable(other));
    assert.deepEqual(both.report.comparison, compareRuns(makeBaseline(other), makeBaseline(single), [modelRunName(other), modelRunName(single)]));
    assert.equal(both.report.comparison?.a.name, 'int8 (int8)');
    assert.deepEqual(
      both.report.models?.map((m) => [m.id, m.quantized, m.top1Accuracy, m.labelIssues]),
      [['fp32', false, single.metrics?.top1Accuracy, single.labelIssues.length], ['int8', true, other.metrics?.top1Accuracy, other.labelIssues.length]],
    );
  } finally {
    await Promise.all([a.dispose(), b.dispose()]);
  }
});

test('two models, different preprocessing: each image read once, decoded per model; each model its own cache entries', async (t) => {
  const dir = tmp(t);
  const work = tmp(t);
  const n = dataset(dir);
  const m80 = otherPreprocessing(work);
  const cache = path.join(work, 'cache');
  const plan = await planRun({ target: dir, cacheDir: cache, options: { models: [MODEL, m80] } });
  const [a, b] = await loadPair(plan, m80, false);
  try {
    assert.notEqual(a.preprocessor.fingerprint, b.preprocessor.fingerprint);
    const da = countDecodes(a);
    const db = countDecodes(b);
    const both = await executeRuns(plan, { model: a, modelId: 'a' }, { model: b, modelId: 'b' });
    assert.deepEqual(both.images, { reads: n, decodes: 2 * n });
    assert.deepEqual([da.n, db.n], [n, n]);
    // The second model's embeddings are in its own cache namespace: a single run of it computes nothing.
    const again = (await executeRun({ ...plan, compared: undefined }, { model: b, modelId: 'b' })).report;
    assert.equal(again.timing.imagesFromCache, n);
    assert.equal(again.timing.imagesComputed, 0);
    assert.equal(db.n, n, 'no decode on a cached run');
    const single = (await executeRun(plan, { model: a, modelId: 'a' })).report;
    assert.equal(single.timing.imagesFromCache, n);
    assert.deepEqual(both.report.comparison, compareRuns(makeBaseline(again), makeBaseline(single), ['b', 'a']));
    assert.notDeepEqual(both.report.samples?.map((x) => x.predicted), both.compared.samples?.map((x) => x.predicted), 'the preprocessing changes the scores');
    // Both runs again: every image from the caches, nothing decoded, still one read.
    const cached = await executeRuns(plan, { model: a, modelId: 'a' }, { model: b, modelId: 'b' });
    assert.deepEqual(cached.images, { reads: n, decodes: 0 });
  } finally {
    await Promise.all([a.dispose(), b.dispose()]);
  }
});

test('a failure in one evaluation stops both with that error, not a cancellation', async (t) => {
  const dir = tmp(t);
  dataset(dir, 2);
  const plan = await planRun({ target: dir, cacheDir: null, options: { models: [MODEL, MODEL], comparedPrecision: 'int8' } });
  const [a, b] = await loadPair(plan, MODEL, true);
  try {
    b.embedImages = async () => {
      throw new Error('vision worker died');
    };
    await assert.rejects(executeRuns(plan, { model: a }, { model: b }), /vision worker died/);
  } finally {
    await Promise.all([a.dispose(), b.dispose()]);
  }
});

test('config "models": two models, relative to the config; conflicts are errors on their key', async (t) => {
  const dir = tmp(t);
  dataset(dir, 1);
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ models: ['./a', 'clip-vit-base-patch16'] }));
  const plan = await planRun({ target: dir });
  assert.deepEqual(plan.model, { spec: './a', baseDir: dir, source: 'project' });
  assert.deepEqual(plan.compared?.model, { spec: 'clip-vit-base-patch16', baseDir: dir, source: 'project' });
  // check and baseline: the first model only (the gate judges it).
  const first = await planRun({ target: dir, firstModelOnly: true });
  assert.deepEqual([first.model.spec, first.compared], ['./a', undefined]);
  // An option names one model: no comparison; the environment (the editor's CLIP_LENS_MODEL) too.
  assert.equal((await planRun({ target: dir, options: { model: 'x' } })).compared, undefined);
  assert.equal((await planRun({ target: dir, settings: { environmentModel: '/m' } })).compared, undefined);
  // Restricted Mode: a folder named by the config is not used.
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ models: ['clip-vit-base-patch16', './b'] }));
  const restricted = await planRun({ target: dir, trusted: false });
  assert.equal(restricted.compared, undefined);
  assert.match(restricted.model.note ?? '', /Restricted Mode/);

  const problems = (text: string) => parseProjectConfig(text, 'x').problems.map((p) => `${p.line}:${p.key}: ${p.message}`);
  assert.deepEqual(problems('{\n "model": "a",\n "models": ["a", "b"]\n}'), ['3:models: "model" and "models" exclude each other: name one model in "model", or two in "models"']);
  assert.deepEqual(problems('{\n "embeddings": "e",\n "models": ["a", "b"]\n}'), ['3:models: "models" and "embeddings" exclude each other: embeddings computed elsewhere come from one model']);
  assert.deepEqual(problems('{\n "models": ["a"]\n}'), ['2:models: must have at least 2 items']);
  assert.deepEqual(problems('{\n "models": ["a", "b", "c"]\n}'), ['2:models: must have at most 2 items']);
  assert.deepEqual(problems('{\n "models": ["a", ""]\n}').length, 1);
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), '{\n "models": "a"\n}');
  await assert.rejects(planRun({ target: dir }), (e: Error) => /\.clip-lens\.json:2:\d+: models: expected an array/.test(e.message));

  await assert.rejects(planRun({ target: dir, options: { models: [MODEL, MODEL] }, configProblems: 'list' }), /the two models are the same/);
  await assert.rejects(planRun({ target: dir, options: { models: [MODEL] }, configProblems: 'list' }), /two models are compared in one go, got 1/);
});

function captureIO(): CliIO & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', isTTY: false, out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

test('eval --model A --model B: the first model\'s report with comparison and models; usage errors where options conflict', async (t) => {
  const dir = tmp(t);
  const work = tmp(t);
  dataset(dir, 3);
  const m80 = otherPreprocessing(work);
  const run = async (args: string[]) => {
    const io = captureIO();
    const code = await main(args, io);
    return { code, ...io };
  };
  const out = path.join(work, 'two.json');
  const r = await run(['eval', dir, '--model', MODEL, '--model', m80, '--no-cache', '--json', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Compared with model .*tiny-clip-80:\nA: .*tiny-clip-80/);
  assert.match(r.stdout, /Headline \(B - A\)/);
  const two = JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport;
  assert.equal(two.model.dir, MODEL);
  assert.equal(two.models?.length, 2);
  assert.equal(two.models?.[1]?.dir, m80);
  // On a terminal the progress line follows both models (it showed the first model's alone before).
  const tty = captureIO();
  tty.isTTY = true;
  assert.equal(await main(['eval', dir, '--model', MODEL, '--model', m80, '--no-cache'], tty), 0, tty.stderr);
  assert.ok(tty.stderr.includes(`${path.basename(MODEL)} `) && tty.stderr.includes(`· ${path.basename(m80)} `), `both models in the progress line: ${JSON.stringify(tty.stderr.slice(0, 600))}`);

  // The same as compare B.json A.json of the two single runs (names aside).
  const fa = path.join(work, 'a.json');
  const fb = path.join(work, 'b.json');
  assert.equal((await run(['eval', dir, '--model', MODEL, '--no-cache', '--json', fa])).code, 0);
  assert.equal((await run(['eval', dir, '--model', m80, '--no-cache', '--json', fb])).code, 0);
  const cmp = await run(['compare', fb, fa, '--json']);
  const viaCompare = JSON.parse(cmp.stdout);
  const named = (c: unknown) => ({ ...(c as object), a: { ...(c as { a: object }).a, name: '' }, b: { ...(c as { b: object }).b, name: '' } });
  assert.deepEqual(named(two.comparison), named(viaCompare));

  for (const [args, message] of [
    [['--model', MODEL, '--model', m80, '--baseline', fa], /--baseline and two --model options exclude each other/],
    [['--model', MODEL, '--model', m80, '--model', MODEL], /two models at most, got 3/],
    [['--model', MODEL, '--precision', 'fp32', '--precision', 'int8'], /--precision is given once .* got 2 for 1 model/],
    [['--model', MODEL, '--model', m80, '--embeddings', work], /--embeddings and two --model options exclude each other/],
  ] as [string[], RegExp][]) {
    const bad = await run(['eval', dir, ...args]);
    assert.equal(bad.code, 2, args.join(' '));
    assert.match(bad.stderr, message);
  }
  // Config "models" and --baseline: a usage error before any model is loaded.
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ models: [MODEL, m80] }));
  const conflict = await run(['eval', dir, '--baseline', fa, '--no-cache']);
  assert.equal(conflict.code, 2);
  assert.match(conflict.stderr, /--baseline and "models" of \.clip-lens\.json exclude each other/);
  const fromConfig = await run(['eval', dir, '--no-cache']);
  assert.equal(fromConfig.code, 0, fromConfig.stderr);
  assert.match(fromConfig.stdout, /Compared with model /);
  // The baseline of a config with "models" is the first model's.
  const baselineFile = path.join(work, 'baseline.json');
  const written = await run(['baseline', dir, '--out', baselineFile, '--cache', path.join(work, 'cache')]);
  assert.equal(written.code, 0, written.stderr);
  assert.equal(JSON.parse(fs.readFileSync(baselineFile, 'utf8')).metrics.top1Accuracy, two.metrics?.top1Accuracy);
});
