import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from '../../src/core/errors';
import {
  MODEL_REGISTRY,
  defaultModelEntry,
  editDistance,
  findModelEntry,
  quantizedVariant,
  resolveModelSpec,
} from '../../src/core/modelRegistry';

test('the registry: unique ids, default clip-vit-base-patch32, quantized siblings, well-formed files', () => {
  const ids = MODEL_REGISTRY.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ['clip-vit-base-patch32', 'clip-vit-base-patch16', 'clip-vit-large-patch14']) {
    assert.ok(ids.includes(id), id);
    assert.ok(ids.includes(`${id}-quantized`), `${id}-quantized`);
  }
  assert.equal(defaultModelEntry().id, 'clip-vit-base-patch32');
  assert.equal(MODEL_REGISTRY.filter((e) => e.isDefault).length, 1);
  for (const e of MODEL_REGISTRY) {
    assert.match(e.repo, /^[\w.-]+\/[\w.-]+$/, e.id);
    assert.ok(/^[0-9a-f]{40}$/.test(e.revision) || e.revision === 'main', `${e.id} revision ${e.revision}`);
    const suffix = e.quantized ? '_quantized' : '';
    const paths = e.files.map((f) => f.path);
    for (const required of ['config.json', 'preprocessor_config.json', 'tokenizer.json', `onnx/vision_model${suffix}.onnx`, `onnx/text_model${suffix}.onnx`]) {
      assert.ok(paths.includes(required), `${e.id} lacks ${required}`);
    }
    for (const f of e.files) {
      assert.ok(f.sha256 === null || /^[0-9a-f]{64}$/.test(f.sha256), `${e.id} ${f.path} sha256`);
      assert.ok(f.size === null || (Number.isInteger(f.size) && f.size > 0));
    }
    assert.ok(e.approxBytes > 100_000_000, `${e.id} size`);
    assert.ok(e.license.length > 0 && e.description.length > 0);
    assert.equal(quantizedVariant(e)?.quantized ?? true, true);
  }
  const b32 = findModelEntry('clip-vit-base-patch32')!;
  assert.equal(quantizedVariant(b32)?.id, 'clip-vit-base-patch32-quantized');
  assert.equal(quantizedVariant(b32)?.baseId, 'clip-vit-base-patch32');
  assert.ok(quantizedVariant(b32)!.approxBytes < b32.approxBytes / 3);
  assert.equal(quantizedVariant(findModelEntry('mobileclip-b')!), undefined);
});

test('findModelEntry is case-insensitive and knows "default"', () => {
  assert.equal(findModelEntry('CLIP-ViT-Base-Patch16')?.id, 'clip-vit-base-patch16');
  assert.equal(findModelEntry('default')?.id, 'clip-vit-base-patch32');
  assert.equal(findModelEntry('nope'), undefined);
});

test('resolveModelSpec: ids, repo names, and paths (with a separator, or existing)', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-spec-'));
  assert.deepEqual(resolveModelSpec('clip-vit-large-patch14-quantized', base), { kind: 'registry', entry: findModelEntry('clip-vit-large-patch14-quantized') });
  assert.deepEqual(resolveModelSpec('Xenova/clip-vit-base-patch16', base), { kind: 'registry', entry: findModelEntry('clip-vit-base-patch16') });
  assert.deepEqual(resolveModelSpec('./models/mine', base), { kind: 'path', dir: path.join(base, 'models/mine') });
  assert.deepEqual(resolveModelSpec('someone/other-clip', base), { kind: 'path', dir: path.join(base, 'someone/other-clip') });
  assert.deepEqual(resolveModelSpec('/abs/model', base), { kind: 'path', dir: path.resolve('/abs/model') });
  // A directory named like a registry id wins: the user has it right there.
  fs.mkdirSync(path.join(base, 'clip-vit-base-patch32'));
  assert.deepEqual(resolveModelSpec('clip-vit-base-patch32', base), { kind: 'path', dir: path.join(base, 'clip-vit-base-patch32') });
  fs.mkdirSync(path.join(base, 'mymodel'));
  assert.deepEqual(resolveModelSpec('mymodel', base), { kind: 'path', dir: path.join(base, 'mymodel') });
});

test('unknown ids: an error listing the known ids, with a did-you-mean', () => {
  const base = os.tmpdir();
  const err = (spec: string) => {
    try {
      resolveModelSpec(spec, base);
    } catch (e) {
      assert.ok(e instanceof ClipLensError);
      assert.equal(e.code, 'model-unknown');
      return e.message;
    }
    assert.fail(`${spec} should not resolve`);
  };
  const typo = err('clip-vit-base-patch23');
  assert.match(typo, /^unknown model 'clip-vit-base-patch23'\. Did you mean 'clip-vit-base-patch32'\? Known models: clip-vit-base-patch32, clip-vit-base-patch32-quantized, /);
  for (const e of MODEL_REGISTRY) assert.ok(typo.includes(e.id));
  assert.match(err('vit-large-patch14'), /Did you mean 'clip-vit-large-patch14'\?/);
  assert.match(err('mobileclip-b2'), /Did you mean 'mobileclip-b'\?/);
  assert.doesNotMatch(err('resnet50'), /Did you mean/);
  assert.match(err('  '), /^empty model name; known models: /);
});

test('editDistance', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('same', 'same'), 0);
});
