#!/usr/bin/env node
// Check a model directory written by tools/make-fixture-model.py from Node, with the engine's own libraries:
//  - @huggingface/tokenizers reads its tokenizer.json and gives the ids the Python tokenizer gave
//    (text_embeds.json, and with --captions FILE every training caption);
//  - onnxruntime-node loads onnx/{vision,text}_model.onnx and reproduces torch's embeddings
//    (image_embeds.json on pixels/*.f32, text_embeds.json), batched, so the dynamic batch axis is exercised;
//  - the *_quantized.onnx files (dynamic int8) are checked for their op pattern and compared with torch's float
//    outputs by cosine.
// Usage: node tools/check-fixture-model.mjs [--model test/fixtures/tiny-clip] [--captions captions.json]
// Exit code 1 if any check fails. Prints max abs differences and timings.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const dir = opt('--model', 'test/fixtures/tiny-clip');
const captionsFile = opt('--captions', null);
const TOL = 1e-4; // fp32: torch vs onnxruntime, relative to embeddings of magnitude ~1
let failures = 0;
const check = (ok, msg) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${msg}`);
  if (!ok) failures++;
};
const readJson = (p) => JSON.parse(readFileSync(join(dir, p), 'utf8'));

// ---- tokenizer -------------------------------------------------------------------------------------------
const tokenizer = new Tokenizer(readJson('tokenizer.json'), readJson('tokenizer_config.json'));
const config = readJson('config.json');
const eos = config.text_config.eos_token_id;
const CONTEXT = config.text_config.max_position_embeddings;
/** The engine's convention: [BOS] ids [EOS], truncated to 77 keeping EOS last, padded with EOS; mask 1/0. */
function encodePadded(text) {
  let ids = tokenizer.encode(text).ids.map(Number);
  if (ids.length > CONTEXT) ids = [...ids.slice(0, CONTEXT - 1), eos];
  const mask = ids.map(() => 1);
  while (ids.length < CONTEXT) {
    ids.push(eos);
    mask.push(0);
  }
  return { ids, mask };
}
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

const texts = readJson('text_embeds.json');
let tokOk = 0;
for (const t of texts) {
  const { ids, mask } = encodePadded(t.text);
  if (same(ids, t.ids) && same(mask, t.attention_mask)) tokOk++;
  else console.log(`  ids differ for ${JSON.stringify(t.text)}:\n    js ${ids.join(',')}\n    py ${t.ids.join(',')}`);
}
check(tokOk === texts.length, `tokenizer: ${tokOk}/${texts.length} reference strings give the Python ids`);
if (captionsFile) {
  const caps = JSON.parse(readFileSync(captionsFile, 'utf8'));
  let ok = 0;
  for (const c of caps) {
    const ids = tokenizer.encode(c.text).ids.map(Number);
    if (same(ids, c.ids)) ok++;
    else if (ok < 5) console.log(`  ids differ for ${JSON.stringify(c.text)}: js ${ids} py ${c.ids}`);
  }
  check(ok === caps.length, `tokenizer: ${ok}/${caps.length} training captions give the Python ids`);
}

// ---- onnx ------------------------------------------------------------------------------------------------
const maxAbs = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const cosine = (a, b) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
};


/** Largest absolute difference and smallest cosine between the rows of an [n, D] output and reference rows. */
function compareRows(emb, refs) {
  const d = emb.dims[1];
  let worst = 0, minCos = 1;
  refs.forEach((ref, i) => {
    const row = Array.from(emb.data.slice(i * d, (i + 1) * d));
    worst = Math.max(worst, maxAbs(row, ref));
    minCos = Math.min(minCos, cosine(row, ref));
  });
  return { worst, minCos, n: refs.length, dims: emb.dims };
}
async function runVision(file, refName, sessionOptions = {}) {
  const ref = readJson(refName);
  const keys = Object.keys(ref);
  const size = config.vision_config.image_size;
  const per = 3 * size * size;
  const data = new Float32Array(per * keys.length);
  keys.forEach((k, i) => {
    const buf = readFileSync(join(dir, 'pixels', `${k}.f32`));
    data.set(new Float32Array(buf.buffer, buf.byteOffset, per), i * per);
  });
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(join(dir, 'onnx', file), sessionOptions);
  const t1 = performance.now();
  const out = await session.run({ pixel_values: new ort.Tensor('float32', data, [keys.length, 3, size, size]) });
  const t2 = performance.now();
  return { ...compareRows(out.image_embeds, keys.map((k) => ref[k])), load: t1 - t0, run: t2 - t1 };
}

async function runText(file, field, sessionOptions = {}) {
  const n = texts.length;
  const ids = new BigInt64Array(n * CONTEXT);
  const mask = new BigInt64Array(n * CONTEXT);
  texts.forEach((t, i) => {
    t.ids.forEach((v, j) => { ids[i * CONTEXT + j] = BigInt(v); });
    t.attention_mask.forEach((v, j) => { mask[i * CONTEXT + j] = BigInt(v); });
  });
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(join(dir, 'onnx', file), sessionOptions);
  const t1 = performance.now();
  const out = await session.run({
    input_ids: new ort.Tensor('int64', ids, [n, CONTEXT]),
    attention_mask: new ort.Tensor('int64', mask, [n, CONTEXT]),
  });
  const t2 = performance.now();
  return { ...compareRows(out.text_embeds, texts.map((t) => t[field])), load: t1 - t0, run: t2 - t1 };
}

const fmt = (r) => `max abs diff ${r.worst.toExponential(2)}, min cosine ${r.minCos.toFixed(6)} ` +
  `(${r.n} inputs, out [${r.dims}], load ${r.load.toFixed(0)} ms, run ${r.run.toFixed(1)} ms)`;

const v = await runVision('vision_model.onnx', 'image_embeds.json');
check(v.worst < TOL, `vision_model.onnx vs torch: ${fmt(v)}`);
const t = await runText('text_model.onnx', 'text_embeds');
check(t.worst < TOL, `text_model.onnx vs torch: ${fmt(t)}`);
if (existsSync(join(dir, 'onnx', 'vision_model_quantized.onnx'))) {
  // The int8 graphs quantise activations at run time (DynamicQuantizeLinear + MatMulInteger): no torch model gives
  // their exact outputs, so they are compared with the float model by cosine, and their op pattern is checked (a
  // weight-only graph that dequantises to float would run no faster).
  for (const name of ['vision_model_quantized.onnx', 'text_model_quantized.onnx']) {
    const bytes = readFileSync(join(dir, 'onnx', name));
    const has = (op) => bytes.includes(Buffer.from(op));
    check(has('DynamicQuantizeLinear') && has('MatMulInteger'), `${name}: dynamic int8 form (DynamicQuantizeLinear + MatMulInteger)`);
  }
  const vd = await runVision('vision_model_quantized.onnx', 'image_embeds.json');
  check(vd.minCos > 0.999, `vision_model_quantized.onnx vs torch fp32: ${fmt(vd)}`);
  const td = await runText('text_model_quantized.onnx', 'text_embeds');
  check(td.minCos > 0.999, `text_model_quantized.onnx vs torch fp32: ${fmt(td)}`);
}
// the text model pools at the first end token: padding with EOS and mask 0 must not change anything
{
  const session = await ort.InferenceSession.create(join(dir, 'onnx', 'text_model.onnx'));
  const { ids, mask } = encodePadded('a photo of a red circle.');
  const zeros = ids.map((x) => (x === eos ? 0 : x)); // OpenAI-style zero padding after the first EOS
  const first = ids.indexOf(eos);
  zeros[first] = eos;
  const run = async (i, m) => (await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(i.map(BigInt)), [1, CONTEXT]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(m.map(BigInt)), [1, CONTEXT]),
  })).text_embeds.data;
  const a = await run(ids, mask);
  const b = await run(zeros, mask);
  const c = await run(ids, ids.map(() => 1));
  check(maxAbs(Array.from(a), Array.from(b)) < 1e-5 && maxAbs(Array.from(a), Array.from(c)) < 1e-5,
    'text_model.onnx: same embedding with EOS or zero padding, with or without attention_mask on padding');
}
// a dynamic sequence axis (the default export, as optimum's): the reference texts, sorted by length, in batches cut
// to their longest text, must give torch's 77-token embeddings (the engine runs prompts this way: textBatches.ts)
for (const name of ['text_model.onnx', 'text_model_quantized.onnx']) {
  if (!existsSync(join(dir, 'onnx', name))) continue;
  const session = await ort.InferenceSession.create(join(dir, 'onnx', name));
  const axis = session.inputMetadata.find((m) => m.name === 'input_ids')?.shape?.[1];
  if (typeof axis === 'number' && axis > 0) {
    console.log(`info ${name}: sequence axis fixed at ${axis} (exported with --text-length fixed): no trimmed check`);
    continue;
  }
  const full = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(texts.flatMap((t) => t.ids).map(BigInt)), [texts.length, CONTEXT]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(texts.flatMap((t) => t.attention_mask).map(BigInt)), [texts.length, CONTEXT]),
  });
  const used = texts.map((t) => t.attention_mask.reduce((a, b) => a + b, 0));
  const order = texts.map((_, i) => i).sort((a, b) => used[a] - used[b]);
  let worst = 0, minCos = 1, lengths = [];
  for (let start = 0; start < order.length; start += 8) {
    const rows = order.slice(start, start + 8);
    const len = Math.max(...rows.map((r) => used[r]));
    lengths.push(len);
    const ids = BigInt64Array.from(rows.flatMap((r) => texts[r].ids.slice(0, len)).map(BigInt));
    const mask = BigInt64Array.from(rows.flatMap((r) => texts[r].attention_mask.slice(0, len)).map(BigInt));
    const out = (await session.run({ input_ids: new ort.Tensor('int64', ids, [rows.length, len]), attention_mask: new ort.Tensor('int64', mask, [rows.length, len]) })).text_embeds;
    const d = out.dims[1];
    rows.forEach((r, j) => {
      const a = Array.from(out.data.slice(j * d, (j + 1) * d));
      const b = Array.from(full.text_embeds.data.slice(r * d, (r + 1) * d));
      worst = Math.max(worst, maxAbs(a, b));
      minCos = Math.min(minCos, cosine(a, b));
    });
  }
  // int8: activations are quantised with the range of the whole batch, so any change of the batch (trimmed or not)
  // moves the output a little; compared by cosine like the other int8 checks
  const int8 = name.includes('_quantized');
  check(int8 ? minCos > 0.999 : worst < TOL, `${name}: batches cut to ${lengths.join(',')} tokens give the 77-token embeddings (max abs diff ${worst.toExponential(2)}, min cosine ${minCos.toFixed(7)})`);
}
console.log(failures ? `${failures} check(s) FAILED` : 'all checks passed');
process.exit(failures ? 1 : 0);
