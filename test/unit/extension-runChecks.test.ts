/** The editor's order of checks before a run (src/extension/runChecksModel.ts) and the config's model diagnostic. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { configDiagnostics } from '../../src/extension/diagnosticsModel';
import { projectModelError, projectModelProblem, topLevelKeyLine } from '../../src/extension/runChecksModel';

const file = path.resolve('/data/pets/.clip-lens.json');

test('projectModelProblem: a missing folder or an unknown id is a problem; a registry id (maybe to download) is not', () => {
  assert.match(projectModelProblem('./models/mine', '/data/pets', () => false)!, /no model folder at .*models.mine; fix the path, or remove "model"/);
  assert.equal(projectModelProblem('./models/mine', '/data/pets', () => true), undefined);
  assert.match(projectModelProblem('mobileclip-bb', '/data/pets', () => false)!, /unknown model 'mobileclip-bb'.*Did you mean 'mobileclip-b'/);
  assert.equal(projectModelProblem('mobileclip-b', '/nonexistent-dir-for-test'), undefined);
});

test('projectModelError and the config diagnostic point at the "model" key', () => {
  const text = '{\n  "topK": 3,\n  "model": "./nope"\n}\n';
  assert.equal(topLevelKeyLine(text, 'model'), 3);
  assert.equal(topLevelKeyLine(text, 'gate'), undefined);
  const e = projectModelError(path.join('/nonexistent-dir-for-test', '.clip-lens.json'), text, './nope');
  assert.equal(e?.code, 'model-missing');
  assert.equal(e?.line, 3);
  const diags = configDiagnostics(file, text, () => false);
  const d = diags.find((x) => x.code === 'model-missing');
  assert.equal(d?.severity, 'error');
  assert.equal(d?.range.start.line, 2);
  assert.deepEqual(configDiagnostics(file, text, () => true), []);
  // "models": a missing folder is an error on the key, naming the item.
  const two = '{\n  "models": [\n    "clip-vit-base-patch32",\n    "./gone"\n  ]\n}\n';
  const m = configDiagnostics(file, two, () => false).filter((x) => x.code === 'model-missing');
  assert.deepEqual(m.map((x) => [x.range.start.line, x.message.split(':')[0]]), [[1, 'models[1]']]);
  assert.equal(projectModelError(path.join('/nonexistent-dir-for-test', '.clip-lens.json'), two, './gone', 'models')?.line, 2);
});
