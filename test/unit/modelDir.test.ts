import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from '../../src/core/errors';
import {
  graphInterfaceProblems,
  jsonErrorOffset,
  readLogitScale,
  resolveModelDir,
  validateModelDir,
} from '../../src/core/modelDir';
import { CUDA_PROVIDER_LIB, executionProviders, type CudaProbe } from '../../src/core/executionProviders';
import { bytes, FLOAT, int, INT32, INT64, onnxModel, str, valueInfo, type NodeSpec } from './onnxWriter';

/** pixel_values float [N,3,4,4] -> Flatten -> image_embeds float [N,48]. */
function visionGraph(inputName = 'pixel_values', outputName = 'image_embeds'): Buffer {
  return onnxModel(
    [{ op: 'Flatten', inputs: [inputName], outputs: [outputName] }],
    [valueInfo(inputName, FLOAT, ['N', 3, 4, 4])],
    [valueInfo(outputName, FLOAT, ['N', 48])],
  );
}

/** input_ids (int64 [N,77]) -> Cast(float) -> text_embeds float [N,77]. */
function textGraph(inputType = INT64, extraInput?: string): Buffer {
  const nodes: NodeSpec[] = [{ op: 'Cast', inputs: ['input_ids'], outputs: ['text_embeds'], intAttrs: { to: FLOAT } }];
  const inputs = [valueInfo('input_ids', inputType, ['N', 77])];
  if (extraInput) {
    nodes.push({ op: 'Identity', inputs: [extraInput], outputs: ['extra_out'] });
    inputs.push(valueInfo(extraInput, INT64, ['N', 77]));
  }
  const outputs = [valueInfo('text_embeds', FLOAT, ['N', 77])];
  if (extraInput) outputs.push(valueInfo('extra_out', INT64, ['N', 77]));
  return onnxModel(nodes, inputs, outputs);
}

const PREPROCESSOR = {
  crop_size: { height: 4, width: 4 },
  do_center_crop: true,
  do_normalize: true,
  do_resize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { shortest_edge: 4 },
};
const TOKENIZER = { version: '1.0', model: { type: 'BPE', vocab: { a: 0, b: 1, 'ab</w>': 2 }, merges: ['a b</w>'] } };

let tmpCounter = 0;
function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `clip-lens-modeldir-${tmpCounter++}-`));
}

/** A complete, valid model directory; `edit` then breaks it. */
function makeModelDir(edit?: (dir: string) => void): string {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'onnx'));
  fs.writeFileSync(path.join(dir, 'onnx/vision_model.onnx'), visionGraph());
  fs.writeFileSync(path.join(dir, 'onnx/text_model.onnx'), textGraph());
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(TOKENIZER));
  fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify(PREPROCESSOR, null, 2));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'clip', logit_scale: 100 }));
  edit?.(dir);
  return dir;
}

const write = (dir: string, rel: string, data: string | Buffer) => fs.writeFileSync(path.join(dir, rel), data);
const rm = (dir: string, rel: string) => fs.rmSync(path.join(dir, rel), { recursive: true });

async function problemsOf(dir: string, options = {}): Promise<string[]> {
  const r = await validateModelDir(dir, options);
  assert.equal(r.ok, r.problems.length === 0);
  return r.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}`);
}

async function resolveError(dir: string, options = {}): Promise<ClipLensError> {
  try {
    await resolveModelDir(dir, options);
  } catch (e) {
    assert.ok(e instanceof ClipLensError, `expected a ClipLensError, got ${e}`);
    return e;
  }
  assert.fail('resolveModelDir should have thrown');
}

// ---- Valid directories ----

test('a valid directory resolves to absolute paths and validates, deep included', async () => {
  const dir = makeModelDir();
  const files = await resolveModelDir(dir);
  assert.equal(files.dir, path.resolve(dir));
  assert.equal(files.visionModel, path.join(dir, 'onnx/vision_model.onnx'));
  assert.equal(files.textModel, path.join(dir, 'onnx/text_model.onnx'));
  assert.deepEqual(files.tokenizer, { tokenizerJson: path.join(dir, 'tokenizer.json') });
  assert.equal(files.preprocessorConfig, path.join(dir, 'preprocessor_config.json'));
  assert.equal(files.config, path.join(dir, 'config.json'));
  assert.equal(files.quantized, false);
  assert.deepEqual(await problemsOf(dir, { deep: true }), []);
});

test('config.json is optional; vocab.json + merges.txt stand in for tokenizer.json', async () => {
  const dir = makeModelDir((d) => {
    rm(d, 'config.json');
    rm(d, 'tokenizer.json');
    write(d, 'vocab.json', JSON.stringify({ a: 0, b: 1 }));
    write(d, 'merges.txt', '#version: 0.2\na b\n');
  });
  const files = await resolveModelDir(dir);
  assert.equal(files.config, null);
  assert.deepEqual(files.tokenizer, { vocabJson: path.join(dir, 'vocab.json'), mergesTxt: path.join(dir, 'merges.txt') });
});

test('quantized graphs: selected by the option, or automatically when they are the only ones', async () => {
  const both = makeModelDir((d) => {
    write(d, 'onnx/vision_model_quantized.onnx', visionGraph());
    write(d, 'onnx/text_model_quantized.onnx', textGraph());
  });
  assert.equal((await resolveModelDir(both)).quantized, false);
  const q = await resolveModelDir(both, { quantized: true });
  assert.equal(q.quantized, true);
  assert.equal(q.visionModel, path.join(both, 'onnx/vision_model_quantized.onnx'));
  assert.equal(q.textModel, path.join(both, 'onnx/text_model_quantized.onnx'));

  const onlyQ = makeModelDir((d) => {
    fs.renameSync(path.join(d, 'onnx/vision_model.onnx'), path.join(d, 'onnx/vision_model_quantized.onnx'));
    fs.renameSync(path.join(d, 'onnx/text_model.onnx'), path.join(d, 'onnx/text_model_quantized.onnx'));
  });
  assert.equal((await resolveModelDir(onlyQ)).quantized, true);
  const e = await resolveError(onlyQ, { quantized: false });
  assert.match(e.message, /onnx\/vision_model\.onnx: missing; only the quantized variant is present \(found onnx\/vision_model_quantized\.onnx\)/);
});

const REFERENCE = '/work/shared/clip-reference/tiny-random-clip';
test('the reference tiny CLIP export passes the deep check', { skip: !fs.existsSync(REFERENCE) && 'reference model not present' }, async () => {
  assert.deepEqual(await problemsOf(REFERENCE, { deep: true }), []);
  const files = await resolveModelDir(REFERENCE);
  assert.deepEqual(files.tokenizer, { tokenizerJson: path.join(REFERENCE, 'tokenizer.json') });
});

// ---- Broken directories: each kind is rejected with a message naming the problem ----

test('a missing directory, or a file instead of one', async () => {
  const missing = path.join(tmpDir(), 'nope');
  const e = await resolveError(missing);
  assert.equal(e.code, 'model-dir-missing');
  assert.equal(e.message, `${missing}: model directory does not exist`);
  const file = path.join(tmpDir(), 'file');
  fs.writeFileSync(file, 'x');
  assert.deepEqual(await problemsOf(file), ['.: expected a model directory, found a file']);
});

test('missing quantized variant: the exact message of the issue', async () => {
  const e = await resolveError(makeModelDir(), { quantized: true });
  assert.equal(e.code, 'model-missing-file');
  assert.ok(
    e.message.endsWith('onnx/vision_model_quantized.onnx: missing; this model has no quantized variant (found onnx/vision_model.onnx)'),
    e.message,
  );
});

test('missing graphs name the file and the expected interface, with hints for misplaced exports', async () => {
  const noVision = makeModelDir((d) => rm(d, 'onnx/vision_model.onnx'));
  const e = await resolveError(noVision);
  assert.equal(e.code, 'model-missing-file');
  assert.equal(e.file, path.join(noVision, 'onnx/vision_model.onnx'));
  assert.match(e.message, /missing; expected the ONNX image encoder \(input 'pixel_values' float32 \[N,3,H,W\] -> output 'image_embeds' \[N,D\]\)/);

  const topLevel = makeModelDir((d) => fs.renameSync(path.join(d, 'onnx/text_model.onnx'), path.join(d, 'text_model.onnx')));
  assert.deepEqual(await problemsOf(topLevel), [
    "onnx/text_model.onnx: missing; found text_model.onnx at the top level: move it into onnx/ (expected the ONNX text encoder (input 'input_ids' int64 [N,77] -> output 'text_embeds' [N,D]))",
  ]);

  const combined = makeModelDir((d) => {
    rm(d, 'onnx');
    write(d, 'model.onnx', visionGraph());
  });
  const problems = await problemsOf(combined);
  assert.equal(problems.length, 2);
  assert.match(problems[0], /^onnx\/vision_model\.onnx: missing; found model\.onnx, a combined CLIP graph/);
});

test('empty, garbage, truncated, HTML and Git LFS pointer .onnx files are rejected without loading them', async () => {
  const cases: [string, Buffer | string, RegExp][] = [
    ['empty', Buffer.alloc(0), /empty file \(0 bytes\); expected an ONNX model/],
    ['garbage', Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]), /not an ONNX model: a ModelProto starts with byte 0x08 \(field 1, ir_version\), this file starts with 0x50 0x4b 0x03 0x04/],
    ['truncated', visionGraph().subarray(0, 60), /truncated: field 7 at byte \d+ needs \d+ bytes but the file has 60/],
    ['html', '<!DOCTYPE html><html><body>Not found</body></html>', /looks like an HTML\/XML page/],
    ['lfs', 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n', /is a Git LFS pointer, not the model/],
    ['no graph', Buffer.concat([int(1, 8), str(2, 'x')]), /no graph \(ModelProto field 7\)/],
    ['bad ir_version', Buffer.concat([int(1, 5000), bytes(7, Buffer.from('g'))]), /ir_version 5000 is out of range/],
  ];
  for (const [name, data, pattern] of cases) {
    const dir = makeModelDir((d) => write(d, 'onnx/text_model.onnx', data));
    const problems = await problemsOf(dir);
    assert.equal(problems.length, 1, `${name}: ${problems.join(' | ')}`);
    assert.ok(problems[0].startsWith('onnx/text_model.onnx: '), problems[0]);
    assert.match(problems[0], pattern, name);
    const e = await resolveError(dir);
    assert.equal(e.code, 'model-bad-file', name);
  }
});

test('unparsable JSON is reported with its line', async () => {
  const dir = makeModelDir((d) => write(d, 'preprocessor_config.json', '{\n  "size": 224,\n  "do_resize": true,\n}\n'));
  const problems = await problemsOf(dir);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /^preprocessor_config\.json:4: invalid JSON/);
  const e = await resolveError(dir);
  assert.equal(e.line, 4);
  assert.equal(e.file, path.join(dir, 'preprocessor_config.json'));

  const cfg = makeModelDir((d) => write(d, 'config.json', '{"logit_scale": 100,\n"x": tru}'));
  assert.match((await problemsOf(cfg))[0], /^config\.json:2: invalid JSON/);
});

test('config.json logit scale of the wrong type', async () => {
  const dir = makeModelDir((d) => write(d, 'config.json', JSON.stringify({ logit_scale: '100' })));
  assert.deepEqual(await problemsOf(dir), [
    `config.json: 'logit_scale' must be a positive number (the already exponentiated scale, e.g. 100), got "100"`,
  ]);
  const init = makeModelDir((d) => write(d, 'config.json', JSON.stringify({ logit_scale_init_value: [2.6] })));
  assert.match((await problemsOf(init))[0], /'logit_scale_init_value' must be a number/);
});

test('preprocessor_config.json: the loader rules (defaults for missing keys, the first problem named)', async () => {
  const { image_mean: _m, crop_size: _c, ...rest } = PREPROCESSOR;
  const dir = makeModelDir((d) => write(d, 'preprocessor_config.json', JSON.stringify({ ...rest, image_std: [1, 0, 1], do_resize: 'yes' })));
  assert.deepEqual(await problemsOf(dir), ['preprocessor_config.json: "do_resize" must be true or false, found "yes"']);
  // Missing size, crop_size, image_mean: CLIPImageProcessor's defaults, as when loading (preprocessorConfig.test.ts).
  const defaults = makeModelDir((d) => write(d, 'preprocessor_config.json', JSON.stringify({ ...rest })));
  assert.deepEqual(await problemsOf(defaults), []);
  // MobileCLIP's processor: no normalisation, so no mean/std needed.
  const mobile = makeModelDir((d) =>
    write(d, 'preprocessor_config.json', JSON.stringify({ crop_size: { height: 256, width: 256 }, do_center_crop: true, do_normalize: false, size: { shortest_edge: 256 } })),
  );
  assert.deepEqual(await problemsOf(mobile), []);
});

test('tokenizer problems: lacking vocab/merges, missing entirely, half of the vocab.json + merges.txt pair', async () => {
  const noMerges = makeModelDir((d) => write(d, 'tokenizer.json', JSON.stringify({ model: { type: 'BPE', vocab: { a: 0 } } })));
  assert.deepEqual(await problemsOf(noMerges), ['tokenizer.json: lacks model.merges (a non-empty list of merges); expected a CLIP BPE tokenizer']);
  const noModel = makeModelDir((d) => write(d, 'tokenizer.json', '{"version": "1.0"}'));
  assert.match((await problemsOf(noModel))[0], /tokenizer\.json: no 'model' object/);
  const none = makeModelDir((d) => rm(d, 'tokenizer.json'));
  assert.deepEqual(await problemsOf(none), ['tokenizer.json: missing; expected tokenizer.json, or vocab.json + merges.txt']);
  const half = makeModelDir((d) => {
    rm(d, 'tokenizer.json');
    write(d, 'vocab.json', '{"a": 0}');
  });
  assert.match((await problemsOf(half))[0], /^merges\.txt: missing; vocab\.json needs merges\.txt/);
  const badMerge = makeModelDir((d) => {
    rm(d, 'tokenizer.json');
    write(d, 'vocab.json', '{"a": 0}');
    write(d, 'merges.txt', '#version: 0.2\na b\nabc\n');
  });
  assert.match((await problemsOf(badMerge))[0], /^merges\.txt:3: expected a merge 'a b'/);
});

test('validateModelDir lists every problem, resolveModelDir throws the first', async () => {
  const dir = makeModelDir((d) => {
    rm(d, 'onnx/vision_model.onnx');
    write(d, 'onnx/text_model.onnx', Buffer.alloc(0));
    rm(d, 'tokenizer.json');
    rm(d, 'preprocessor_config.json');
    write(d, 'config.json', '{"logit_scale": -1}');
  });
  const problems = await validateModelDir(dir);
  assert.equal(problems.ok, false);
  assert.deepEqual(
    problems.problems.map((p) => p.file),
    ['onnx/vision_model.onnx', 'onnx/text_model.onnx', 'tokenizer.json', 'preprocessor_config.json', 'config.json'],
  );
  const e = await resolveError(dir);
  assert.equal(e.file, path.join(dir, 'onnx/vision_model.onnx'));
});

test('deep check compares graph inputs and outputs with the CLIP interface', async () => {
  const wrongNames = makeModelDir((d) => {
    write(d, 'onnx/vision_model.onnx', visionGraph('x', 'y'));
    write(d, 'onnx/text_model.onnx', textGraph(INT32, 'position_ids'));
  });
  assert.deepEqual(await problemsOf(wrongNames), [], 'the cheap check does not load graphs');
  assert.deepEqual(await problemsOf(wrongNames, { deep: true }), [
    "onnx/vision_model.onnx: expected input 'pixel_values', the graph has: x",
    "onnx/vision_model.onnx: the graph also requires input 'x', which CLIP Lens does not provide (it feeds 'pixel_values')",
    "onnx/vision_model.onnx: expected output 'image_embeds', the graph has: y",
    "onnx/text_model.onnx: input 'input_ids' must be int64, the graph has int32",
    "onnx/text_model.onnx: the graph also requires input 'position_ids', which CLIP Lens does not provide (it feeds 'input_ids' and 'attention_mask')",
  ]);
  // A file that passes the cheap check but is not a loadable graph.
  const unloadable = makeModelDir((d) => write(d, 'onnx/vision_model.onnx', Buffer.concat([int(1, 8), bytes(7, Buffer.from([0xff, 0xff]))])));
  const problems = await problemsOf(unloadable, { deep: true });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /^onnx\/vision_model\.onnx: onnxruntime cannot load this graph: /);
});

test('graphInterfaceProblems checks types and ranks', () => {
  assert.deepEqual(
    graphInterfaceProblems(
      'vision',
      [{ name: 'pixel_values', isTensor: true, type: 'float32', shape: ['N', 1, 224, 224] }],
      [{ name: 'image_embeds', isTensor: true, type: 'float16', shape: ['N', 1, 512] }],
    ),
    [
      "input 'pixel_values' must have 3 channels, the graph has [N,1,224,224]",
      "output 'image_embeds' must be float32, the graph has float16",
      "output 'image_embeds' must have rank 2 [N,D], the graph has [N,1,512]",
    ],
  );
  assert.deepEqual(
    graphInterfaceProblems(
      'text',
      [
        { name: 'input_ids', isTensor: true, type: 'int64', shape: ['N', 77] },
        { name: 'attention_mask', isTensor: true, type: 'int64', shape: ['N', 77] },
      ],
      [{ name: 'text_embeds', isTensor: true, type: 'float32', shape: ['N', 512] }],
    ),
    [],
  );
  // optimum's export (Xenova/*): a dynamic sequence axis is fine (prompts then run trimmed); a fixed length other
  // than CLIP's 77 is not
  const text = (len: number | string) =>
    graphInterfaceProblems(
      'text',
      [{ name: 'input_ids', isTensor: true, type: 'int64', shape: ['batch_size', len] }],
      [{ name: 'text_embeds', isTensor: true, type: 'float32', shape: ['batch_size', 512] }],
    );
  assert.deepEqual(text('sequence_length'), []);
  assert.deepEqual(text(-1), []);
  assert.deepEqual(text(64), ["input 'input_ids' must take 77 tokens (CLIP's context) or have a dynamic sequence axis, the graph has [batch_size,64]"]);
});

// ---- readLogitScale ----

test('readLogitScale: logit_scale, else exp(logit_scale_init_value), else 100; wrong types name the file', () => {
  assert.equal(readLogitScale({ logit_scale: 100, logit_scale_init_value: 1 }, 'config.json'), 100);
  assert.ok(Math.abs(readLogitScale({ logit_scale_init_value: 2.6592 }, 'config.json') - 14.2857) < 1e-3);
  assert.equal(readLogitScale({ model_type: 'clip' }, 'config.json'), 100);
  assert.throws(() => readLogitScale({ logit_scale: 0 }, 'm/config.json'), (e: unknown) => e instanceof ClipLensError && e.message.startsWith("m/config.json: 'logit_scale' must be a positive number"));
  assert.throws(() => readLogitScale({ logit_scale_init_value: 'x' }, 'c.json'), /c\.json: 'logit_scale_init_value' must be a number/);
  assert.throws(() => readLogitScale([1, 2], 'c.json'), /c\.json: expected a JSON object, got \[1,2\]/);
});

test('jsonErrorOffset finds where valid JSON stops', () => {
  assert.equal(jsonErrorOffset('{"a": 1}'), 8);
  assert.equal(jsonErrorOffset('{"a": 1,}'), 8);
  assert.equal(jsonErrorOffset('{"a": tru}'), 9);
  assert.equal(jsonErrorOffset('[1, 2'), 5);
  assert.equal(jsonErrorOffset('{"a": "x\\q"}'), 9);
  assert.equal(jsonErrorOffset('{} x'), 3);
  assert.equal(jsonErrorOffset('{"a": [1, {"b": null}], "c": -1.5e3}'), 36);
});

// ---- Execution providers ----

function probe(over: Partial<CudaProbe>): CudaProbe {
  return { platform: 'linux', arch: 'x64', backends: ['cpu', 'webgpu', 'cuda', 'tensorrt'], bindingDir: '/ort/bin/napi-v6/linux/x64', fileExists: () => true, ...over };
}

test('executionProviders: CPU always works; CUDA only where onnxruntime-node offers it, else a clear fallback note', () => {
  assert.deepEqual(executionProviders('cpu', probe({ platform: 'darwin' })), { providers: ['cpu'] });
  assert.deepEqual(executionProviders('auto', probe({})), { providers: ['cuda', 'cpu'] });
  assert.deepEqual(executionProviders('cuda', probe({})), { providers: ['cuda', 'cpu'] });

  const mac = executionProviders('cuda', probe({ platform: 'darwin', arch: 'arm64' }));
  assert.deepEqual(mac.providers, ['cpu']);
  assert.equal(mac.note, 'CUDA was requested but is not available: onnxruntime-node offers CUDA only on linux/x64, this is darwin/arm64; using the CPU');

  const noLib = executionProviders('auto', probe({ fileExists: () => false }));
  assert.deepEqual(noLib.providers, ['cpu']);
  assert.ok(noLib.note?.startsWith(`CUDA is not available: ${path.join('/ort/bin/napi-v6/linux/x64', CUDA_PROVIDER_LIB)} is not installed`), noLib.note);

  const noBackend = executionProviders('auto', probe({ backends: ['cpu'] }));
  assert.match(noBackend.note ?? '', /lists no CUDA backend \(it has: cpu\)/);
  assert.match(executionProviders('auto', probe({ backends: null })).note ?? '', /binding could not be loaded/);

  // This machine, probed for real: CPU is always in the list.
  const real = executionProviders('auto');
  assert.equal(real.providers[real.providers.length - 1], 'cpu');
  if (real.providers.length === 1) assert.ok(real.note && real.note.length > 0);
});
