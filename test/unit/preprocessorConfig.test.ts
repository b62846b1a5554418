/**
 * One set of rules for `preprocessor_config.json`: `clip-lens model verify` / Select Model (validateModelDir) and
 * loading a model (ClipModel.load, and the preprocessing pipeline itself) accept and refuse the same files, with the
 * same message. They used to disagree: size {height, width} and resample 4 passed verify and failed at load; a
 * missing size failed verify and loaded fine; a leading BOM passed verify and failed at load.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from '../../src/core/errors';
import { ImagePreprocessor } from '../../src/core/imagePreprocess';
import { validateModelDir } from '../../src/core/modelDir';
import { readPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { ClipModel } from '../../src/core/runtime';

const MODEL = path.resolve(__dirname, '../fixtures/tiny-clip');
const BASE = JSON.parse(fs.readFileSync(path.join(MODEL, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-preproc-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const without = (key: string) => Object.fromEntries(Object.entries(BASE).filter(([k]) => k !== key));

/** [name, file text, expected: null (accepted) or a pattern the one message must match]. */
const CASES: [string, string, RegExp | null][] = [
  ['the fixture as shipped', JSON.stringify(BASE), null],
  ['no size (CLIPImageProcessor default 224)', JSON.stringify(without('size')), null],
  ['no crop_size (default 224)', JSON.stringify(without('crop_size')), null],
  ['no image_mean (OpenAI default)', JSON.stringify(without('image_mean')), null],
  ['numeric size and crop', JSON.stringify({ ...BASE, size: 64, crop_size: 64 }), null],
  ['empty object: all defaults', '{}', null],
  ['leading BOM', '\ufeff' + JSON.stringify(BASE), null],
  ['MobileCLIP: no normalisation', JSON.stringify({ crop_size: { height: 256, width: 256 }, do_center_crop: true, do_normalize: false, size: { shortest_edge: 256 } }), null],
  ['resample 2 (bilinear)', JSON.stringify({ ...BASE, resample: 2 }), null],
  ['size {height, width}', JSON.stringify({ ...BASE, size: { height: 64, width: 64 } }), /"size" as \{height, width\}.*not supported/],
  ['size with longest_edge', JSON.stringify({ ...BASE, size: { shortest_edge: 64, longest_edge: 128 } }), /"size" with longest_edge is not supported/],
  ['resample 4 (box)', JSON.stringify({ ...BASE, resample: 4 }), /"resample" 4 \(box\) is not supported/],
  ['resample 5 (hamming)', JSON.stringify({ ...BASE, resample: 5 }), /"resample" 5 \(hamming\) is not supported/],
  ['resample as a string', JSON.stringify({ ...BASE, resample: 'bicubic' }), /"resample" must be a Pillow filter number/],
  ['do_center_crop false', JSON.stringify({ ...BASE, do_center_crop: false }), /"do_center_crop" is false/],
  ['do_resize not a boolean', JSON.stringify({ ...BASE, do_resize: 'yes' }), /"do_resize" must be true or false/],
  ['a zero std', JSON.stringify({ ...BASE, image_std: [1, 0, 1] }), /"image_std" must not contain 0/],
  ['two means', JSON.stringify({ ...BASE, image_mean: [0.5, 0.5] }), /"image_mean" must be a number or a list of 3 numbers/],
  ['crop_size without width', JSON.stringify({ ...BASE, crop_size: { height: 64 } }), /"crop_size" must be a positive integer/],
  ['rescale_factor 0', JSON.stringify({ ...BASE, rescale_factor: 0 }), /"rescale_factor" must be a positive number/],
  ['not an object', '[1, 2]', /expected a JSON object/],
  ['JSON syntax error on line 3', '{\n  "size": 64,\n  "crop_size": 64,,\n}\n', /^invalid JSON: /],
];

/** A copy of the fixture model (symlinks to its files) with this preprocessor_config.json text. */
function modelWith(name: string, text: string): string {
  const dir = path.join(tmp, name.replace(/[^a-z0-9]+/gi, '-'));
  fs.mkdirSync(dir);
  for (const entry of fs.readdirSync(MODEL)) {
    if (entry !== 'preprocessor_config.json') fs.symlinkSync(path.join(MODEL, entry), path.join(dir, entry));
  }
  fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), text);
  return dir;
}

/** The message without the `file:line: ` prefix, or null when accepted. */
async function outcome(run: () => Promise<unknown>): Promise<{ message: string; line?: number } | null> {
  try {
    await run();
    return null;
  } catch (e) {
    if (!(e instanceof ClipLensError)) throw e;
    assert.ok(e.file?.endsWith('preprocessor_config.json'), `${e.file}: ${e.message}`);
    return { message: e.message.slice(ClipLensError.format('', { file: e.file, line: e.line }).length), line: e.line };
  }
}

test('model verify and model loading accept and refuse the same preprocessor configs, with the same message', async () => {
  for (const [name, text, expected] of CASES) {
    const dir = modelWith(name, text);
    const verified = await validateModelDir(dir);
    const problems = verified.problems.filter((p) => p.file === 'preprocessor_config.json');
    assert.equal(verified.problems.length, problems.length, `${name}: unrelated problems ${JSON.stringify(verified.problems)}`);
    const verify = problems.length === 0 ? null : { message: problems[0]!.message, line: problems[0]!.line };
    assert.ok(problems.length <= 1, name);

    const load = await outcome(() => ClipModel.load(dir));
    const pipeline = await outcome(async () => new ImagePreprocessor(await readPreprocessorConfig(path.join(dir, 'preprocessor_config.json'))));

    if (expected === null) {
      assert.equal(verify, null, `${name}: verify refused: ${verify?.message}`);
      assert.equal(load, null, `${name}: load refused: ${load?.message}`);
      assert.equal(pipeline, null, `${name}: preprocessing refused: ${pipeline?.message}`);
    } else {
      assert.ok(verify && load && pipeline, `${name}: verify ${JSON.stringify(verify)}, load ${JSON.stringify(load)}, pipeline ${JSON.stringify(pipeline)}`);
      assert.match(verify.message, expected, name);
      assert.deepEqual(load, verify, name);
      assert.deepEqual(pipeline, verify, name);
    }
  }
  // The syntax error names its line in both.
  const syntax = await validateModelDir(modelWith('syntax again', CASES.at(-1)![1]));
  assert.equal(syntax.problems[0]!.line, 3);
});
