/**
 * fp32 vs int8: the fixture's int8 graphs are in the dynamic-quantisation form, `auto` measures their agreement with
 * fp32 on a sample of the example's images and takes int8 only when the agreement holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipModel } from '../../src/core/runtime';
import { choosePrecision, compareEmbeddings, measureAgreement, parsePrecision, PRECISION_RULES, sampleIndices } from '../../src/core/precision';
import { promptsForClass } from '../../src/core/prompts';
import { ClipLensError } from '../../src/core/errors';
import { runEvaluation } from '../../src/core/run';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

test('the fixture int8 graphs are dynamically quantised (DynamicQuantizeLinear + MatMulInteger), not weight-only', () => {
  for (const name of ['vision_model_quantized.onnx', 'text_model_quantized.onnx']) {
    const bytes = fs.readFileSync(path.join(MODEL, 'onnx', name));
    assert.ok(bytes.includes(Buffer.from('DynamicQuantizeLinear')), name);
    assert.ok(bytes.includes(Buffer.from('MatMulInteger')), name);
    assert.ok(!bytes.includes(Buffer.from('DequantizeLinear')), `${name} still dequantises weights to float`);
  }
});

test('sampleIndices spreads the sample over the dataset and is deterministic', () => {
  assert.deepEqual(sampleIndices(3, 64), [0, 1, 2]);
  const s = sampleIndices(1000, 4);
  assert.deepEqual(s, [125, 375, 625, 875]);
  assert.equal(new Set(sampleIndices(354, 64)).size, 64);
});

test('choosePrecision: auto takes int8 only when top-1 agreement and every cosine hold', () => {
  const good = { sample: 64, top1Agreement: 1, meanCosine: 0.9999, minCosine: 0.998 };
  assert.equal(choosePrecision('auto', true, good).used, 'int8');
  const flips = choosePrecision('auto', true, { ...good, top1Agreement: 0.95 });
  assert.equal(flips.used, 'fp32');
  assert.match(flips.reason, /predicted class too often.*95\.0%/);
  const far = choosePrecision('auto', true, { ...good, minCosine: 0.97, worstImage: 'a/b.jpg' });
  assert.equal(far.used, 'fp32');
  assert.match(far.reason, /cosine must be >= 0\.99; worst: a\/b\.jpg/);
  assert.equal(choosePrecision('auto', false).used, 'fp32');
  assert.equal(choosePrecision('auto', true, { sample: 0, top1Agreement: 1, meanCosine: 1, minCosine: 1 }).used, 'fp32');
  assert.equal(choosePrecision('fp32', true, good).used, 'fp32');
  assert.equal(choosePrecision('int8', true).used, 'int8');
  assert.throws(() => choosePrecision('int8', false), (e: unknown) => e instanceof ClipLensError && e.code === 'model-no-int8');
  assert.equal(PRECISION_RULES.minTop1Agreement, 0.99);
});

test('parsePrecision names the bad value', () => {
  assert.equal(parsePrecision('int8'), 'int8');
  assert.throws(() => parsePrecision('fp16', { file: '/d/.clip-lens.json', line: 3 }), /\/d\/\.clip-lens\.json:3: precision must be auto, fp32 or int8, got 'fp16'/);
});

test('compareEmbeddings: cosines and top-1 agreement of two samples', () => {
  const dim = 2;
  const classes = { matrix: new Float32Array([1, 0, 0, 1]), dim, computed: 0, ms: 0 };
  const a = new Float32Array([1, 0, 0, 1, Math.SQRT1_2, Math.SQRT1_2]);
  const b = new Float32Array([1, 0, 0, 1, 0.6, 0.8]);
  const r = compareEmbeddings({ images: a, classes }, { images: b, classes }, dim, ['x', 'y', 'z']);
  assert.equal(r.sample, 3);
  assert.equal(r.worstImage, 'z');
  assert.ok(Math.abs(r.minCosine - (0.6 + 0.8) * Math.SQRT1_2) < 1e-6);
  assert.ok(r.top1Agreement > 0.6 && r.top1Agreement < 0.7, String(r.top1Agreement)); // z: class 0 vs class 1
});

test('measureAgreement on the example: int8 agrees with fp32, auto chooses int8', async () => {
  const dirs = fs.readdirSync(EXAMPLE, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const files = dirs.flatMap((d) => fs.readdirSync(path.join(EXAMPLE, d)).sort().map((f) => path.join(EXAMPLE, d, f)));
  const sample = sampleIndices(files.length, PRECISION_RULES.sampleSize).map((i) => files[i]);
  const prompts = dirs.map((c) => promptsForClass(c, ['a photo of a {}.']));
  const fp32 = await ClipModel.load(MODEL, { quantized: false, threads: 1 });
  const int8 = await ClipModel.load(MODEL, { quantized: true, threads: 1 });
  try {
    const agreement = await measureAgreement(fp32, int8, sample, prompts);
    assert.equal(agreement.sample, 64);
    assert.ok(agreement.minCosine > 0.999, JSON.stringify(agreement));
    assert.ok(agreement.top1Agreement >= 0.99, JSON.stringify(agreement));
    const choice = choosePrecision('auto', true, agreement);
    assert.equal(choice.used, 'int8');
    assert.match(choice.reason, /agrees with fp32 on this dataset \(top-1 agreement \d+\.\d%, lowest cosine 0\.99\d\d on 64 images\)/);
  } finally {
    await Promise.all([fp32.dispose(), int8.dispose()]);
  }
});

test('runEvaluation: --precision auto measures agreement and reports it; .clip-lens.json "precision" is honoured; options win', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-precision-'));
  try {
    // a small copy of the example: 3 classes
    for (const c of ['blue_circle', 'red_square', 'green_star']) fs.cpSync(path.join(EXAMPLE, c), path.join(tmp, c), { recursive: true });
    const auto = await runEvaluation({ target: tmp, options: { model: MODEL, precision: 'auto' }, cacheDir: null });
    assert.ok(auto);
    assert.equal(auto.report.precision?.requested, 'auto');
    assert.equal(auto.report.precision?.used, 'int8');
    assert.equal(auto.report.model.quantized, true);
    assert.ok((auto.report.precision?.agreement?.sample ?? 0) > 0);
    assert.match(auto.report.precision?.agreement?.worstImage ?? '', /^(blue_circle|red_square|green_star)\//);

    fs.writeFileSync(path.join(tmp, '.clip-lens.json'), JSON.stringify({ precision: 'int8' }));
    const fromConfig = await runEvaluation({ target: tmp, options: { model: MODEL }, cacheDir: null });
    assert.deepEqual([fromConfig?.report.precision?.requested, fromConfig?.report.model.quantized], ['int8', true]);
    const option = await runEvaluation({ target: tmp, options: { model: MODEL, precision: 'fp32' }, cacheDir: null });
    assert.deepEqual([option?.report.precision?.used, option?.report.model.quantized], ['fp32', false]);
    // same predictions either way on this sample
    assert.equal(option?.report.metrics?.top1Accuracy, fromConfig?.report.metrics?.top1Accuracy);

    fs.writeFileSync(path.join(tmp, '.clip-lens.json'), '{\n  "precision": "int4"\n}\n');
    await assert.rejects(runEvaluation({ target: tmp, options: { model: MODEL }, cacheDir: null }), /\.clip-lens\.json:2.*precision must be auto, fp32 or int8/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('auto with a model folder without int8 graphs runs fp32 and says why', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-precision-'));
  try {
    const model = path.join(tmp, 'model');
    fs.cpSync(MODEL, model, { recursive: true });
    for (const f of ['vision_model_quantized.onnx', 'text_model_quantized.onnx']) fs.rmSync(path.join(model, 'onnx', f));
    for (const c of ['blue_circle', 'red_square']) fs.cpSync(path.join(EXAMPLE, c), path.join(tmp, 'data', c), { recursive: true });
    const r = await runEvaluation({ target: path.join(tmp, 'data'), options: { model, precision: 'auto' }, cacheDir: null });
    assert.deepEqual([r?.report.precision?.used, r?.report.precision?.reason], ['fp32', 'the model has no int8 graphs']);
    await assert.rejects(runEvaluation({ target: path.join(tmp, 'data'), options: { model, precision: 'int8' }, cacheDir: null }), /quantized/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
