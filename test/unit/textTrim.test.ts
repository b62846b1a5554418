/**
 * The text tower run at each batch's longest prompt (textBatches.ts, ClipModel.embedTexts) must give the embeddings
 * of the 77-token run: on tiny-clip, whose text graph has a dynamic sequence axis like optimum's exports, against
 * the same graph at 77 tokens, against the fixed-77 export of the same weights (test/fixtures/tiny-clip-fixed77) and
 * against torch (text_embeds.json); rows come back in input order; prompts over 77 tokens are cut as before; a
 * graph that declares a dynamic axis but is not causal is run at 77 tokens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipModel, cosine, TRIM_CHECK_MIN_COSINE } from '../../src/core/runtime';
import { BUILTIN_TEMPLATES, promptsForClass } from '../../src/core/prompts';
import { CONTEXT_LENGTH } from '../../src/core/tokenizer';
import { usedLength } from '../../src/core/textBatches';
import { FLOAT, INT64, onnxModel, valueInfo } from './onnxWriter';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const MODEL = path.join(FIXTURES, 'tiny-clip');
const REFERENCE: { text: string; ids: number[]; text_embeds: number[] }[] = JSON.parse(fs.readFileSync(path.join(MODEL, 'text_embeds.json'), 'utf8'));
const CLASSES = ['red circle', 'yellow star', 'green triangle', 'blue square'];
/** Reference strings (one over 77 tokens) and the 80-template ensemble of four classes: 6 to 77 tokens. */
const TEXTS = [...REFERENCE.map((r) => r.text), ...CLASSES.flatMap((c) => promptsForClass(c, BUILTIN_TEMPLATES.imagenet80))];

function rows(e: Float32Array, dim: number): Float32Array[] {
  return Array.from({ length: e.length / dim }, (_, i) => e.subarray(i * dim, (i + 1) * dim));
}
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
function worstCosine(a: Float32Array, b: Float32Array, dim: number): number {
  const ra = rows(a, dim), rb = rows(b, dim);
  return Math.min(...ra.map((r, i) => cosine(r, rb[i]!)));
}

/** tiny-clip with its text graph replaced (the rest copied), in a temporary folder. */
function modelWithTextGraph(t: { after: (fn: () => void) => void }, graph: Buffer | string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-texttrim-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json', 'config.json']) fs.copyFileSync(path.join(MODEL, f), path.join(dir, f));
  fs.mkdirSync(path.join(dir, 'onnx'));
  fs.copyFileSync(path.join(MODEL, 'onnx/vision_model.onnx'), path.join(dir, 'onnx/vision_model.onnx'));
  if (typeof graph === 'string') fs.copyFileSync(graph, path.join(dir, 'onnx/text_model.onnx'));
  else fs.writeFileSync(path.join(dir, 'onnx/text_model.onnx'), graph);
  return dir;
}

test('the prompts span short to truncated lengths', async (t) => {
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const tok = await model.tokenizer();
  const lengths = TEXTS.map((s) => usedLength(tok.encode(s)));
  assert.ok(Math.min(...lengths) <= 6, `shortest ${Math.min(...lengths)}`);
  assert.equal(Math.max(...lengths), CONTEXT_LENGTH);
  assert.ok(tok.encode(TEXTS[REFERENCE.length - 1]!).truncated, 'the last reference string is over 77 tokens');
});

test('dynamic sequence axis: trimmed batches give the 77-token embeddings, and torch\'s', async (t) => {
  const trimmed = await ClipModel.load(MODEL);
  const full = await ClipModel.load(MODEL, { trimText: false });
  t.after(() => Promise.all([trimmed.dispose(), full.dispose()]));
  const a = await trimmed.embedTexts(TEXTS);
  const b = await full.embedTexts(TEXTS);
  assert.ok(trimmed.textTrimCheck !== null && trimmed.textTrimCheck >= TRIM_CHECK_MIN_COSINE.float32, `trim check ${trimmed.textTrimCheck}`);
  assert.equal(full.textTrimCheck, null, 'trimText: false never trims');
  assert.equal(a.dim, 64);
  assert.ok(worstCosine(a.embeddings, b.embeddings, a.dim) >= 0.99999);
  assert.ok(maxAbsDiff(a.embeddings, b.embeddings) < 1e-5, `max abs diff ${maxAbsDiff(a.embeddings, b.embeddings)}`);
  // torch's 77-token answers (projected, not normalised), including the truncated string
  const ra = rows(a.embeddings, a.dim);
  REFERENCE.forEach((r, i) => assert.ok(cosine(ra[i]!, r.text_embeds) >= 0.99999, `${JSON.stringify(r.text.slice(0, 40))}: ${cosine(ra[i]!, r.text_embeds)}`));
});

test('rows come back in input order, whatever the batch size and order', async (t) => {
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const base = await model.embedTexts(TEXTS);
  const order = TEXTS.map((_, i) => i).sort((x, y) => ((x * 7919) % 101) - ((y * 7919) % 101));
  for (const batchSize of [1, 5, 64, 1000]) {
    const got = await model.embedTexts(order.map((i) => TEXTS[i]!), { batchSize });
    const gr = rows(got.embeddings, got.dim), br = rows(base.embeddings, base.dim);
    order.forEach((src, j) => assert.ok(maxAbsDiff(gr[j]!, br[src]!) < 1e-5, `batch ${batchSize}: row ${j} is not prompt ${src}`));
  }
  // one prompt alone and an empty call
  const alone = await model.embedTexts([TEXTS[20]!]);
  assert.ok(maxAbsDiff(alone.embeddings, rows(base.embeddings, base.dim)[20]!) < 1e-5);
  assert.equal((await model.embedTexts([])).embeddings.length, 0);
});

test('a prompt over 77 tokens is cut as before: the same embedding as its first 75 tokens', async (t) => {
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const tok = await model.tokenizer();
  const long = Array(40).fill('a photo of a blue square').join(' ');
  const enc = tok.encode(long);
  assert.ok(enc.truncated);
  // the same 75 BPE tokens as text: every word is one token in this vocabulary, so cut the words
  const words = long.split(' ');
  const cut = words.slice(0, CONTEXT_LENGTH - 2).join(' ');
  assert.deepEqual(tok.encode(cut).ids, enc.ids);
  const got = await model.embedTexts(['red circle', long, cut]);
  const r = rows(got.embeddings, got.dim);
  assert.ok(maxAbsDiff(r[1]!, r[2]!) < 1e-5);
  assert.ok(cosine(r[0]!, r[1]!) < 0.999, 'and not the short prompt\'s');
});

test('a text graph fixed at 77 tokens runs at 77 (same weights: the same embeddings)', async (t) => {
  const dir = modelWithTextGraph(t, path.join(FIXTURES, 'tiny-clip-fixed77', 'text_model.onnx'));
  const fixed = await ClipModel.load(dir);
  const trimmed = await ClipModel.load(MODEL);
  t.after(() => Promise.all([fixed.dispose(), trimmed.dispose()]));
  const a = await fixed.embedTexts(TEXTS);
  assert.equal(fixed.textTrimCheck, null, 'no trimming, so no check');
  const b = await trimmed.embedTexts(TEXTS);
  assert.ok(worstCosine(a.embeddings, b.embeddings, a.dim) >= 0.99999);
  assert.ok(maxAbsDiff(a.embeddings, b.embeddings) < 1e-5);
});

test('a graph that declares a dynamic axis but is not causal is run at 77 tokens', async (t) => {
  // text_embeds = [mean(ids), max(ids)] over the whole sequence: padding counts, so trimming would change it
  const graph = onnxModel(
    [
      { op: 'Cast', inputs: ['input_ids'], outputs: ['x'], intAttrs: { to: FLOAT } },
      { op: 'ReduceMean', inputs: ['x'], outputs: ['mean'], intsAttrs: { axes: [1] }, intAttrs: { keepdims: 1 } },
      { op: 'ReduceMax', inputs: ['x'], outputs: ['max'], intsAttrs: { axes: [1] }, intAttrs: { keepdims: 1 } },
      { op: 'Concat', inputs: ['mean', 'max'], outputs: ['text_embeds'], intAttrs: { axis: 1 } },
    ],
    [valueInfo('input_ids', INT64, ['batch_size', 'sequence_length'])],
    [valueInfo('text_embeds', FLOAT, ['batch_size', 2])],
  );
  const dir = modelWithTextGraph(t, graph);
  const model = await ClipModel.load(dir);
  const full = await ClipModel.load(dir, { trimText: false });
  t.after(() => Promise.all([model.dispose(), full.dispose()]));
  const texts = CLASSES.flatMap((c) => promptsForClass(c, BUILTIN_TEMPLATES.imagenet80.slice(0, 10)));
  const a = await model.embedTexts(texts, { batchSize: 8 });
  assert.ok(model.textTrimCheck !== null && model.textTrimCheck < TRIM_CHECK_MIN_COSINE.float32, `check ${model.textTrimCheck}`);
  const b = await full.embedTexts(texts);
  assert.deepEqual(Array.from(a.embeddings), Array.from(b.embeddings));
  // and it stays at 77 for later calls
  const again = await model.embedTexts(texts.slice(0, 3));
  assert.deepEqual(Array.from(again.embeddings), Array.from(b.embeddings.subarray(0, 3 * b.dim)));
});

test('int8 graph: trimmed within int8\'s own batch noise of the 77-token run and of float32', async (t) => {
  const q = await ClipModel.load(MODEL, { quantized: true });
  const q77 = await ClipModel.load(MODEL, { quantized: true, trimText: false });
  const f = await ClipModel.load(MODEL);
  t.after(() => Promise.all([q.dispose(), q77.dispose(), f.dispose()]));
  const a = await q.embedTexts(TEXTS);
  assert.ok(q.textTrimCheck !== null && q.textTrimCheck >= TRIM_CHECK_MIN_COSINE.int8, `check ${q.textTrimCheck}`);
  const b = await q77.embedTexts(TEXTS);
  const c = await f.embedTexts(TEXTS);
  assert.ok(worstCosine(a.embeddings, b.embeddings, a.dim) >= 0.995, `int8 trimmed vs int8 77: ${worstCosine(a.embeddings, b.embeddings, a.dim)}`);
  assert.ok(worstCosine(a.embeddings, c.embeddings, a.dim) >= 0.99, `int8 trimmed vs float32: ${worstCosine(a.embeddings, c.embeddings, a.dim)}`);
});
