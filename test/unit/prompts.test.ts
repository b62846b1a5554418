import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from '../../src/core/errors';
import { BUILTIN_TEMPLATES, classPrompt, promptsForClass, resolveTemplates, templateError } from '../../src/core/prompts';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clip-lens-prompts-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

test('classPrompt makes folder names readable and keeps meaningful hyphens and odd names', () => {
  const cases: [string, string][] = [
    ['fire_truck', 'fire truck'],
    ['  great__white_shark ', 'great white shark'],
    ['three-toed sloth', 'three-toed sloth'],
    ['T-shirt', 'T-shirt'],
    ['fire-truck', 'fire-truck'],
    ['fireTruck', 'fire Truck'],
    ['GoldenRetriever', 'Golden Retriever'],
    ['iPod', 'iPod'],
    ['eBay', 'eBay'],
    ['McDonald', 'McDonald'],
    ['USB', 'USB'],
    ['n01440764', 'n01440764'],
    ['001.Black_footed_Albatross', 'Black footed Albatross'],
    ['1.5_liter_bottle', '1.5 liter bottle'],
    ['St. Bernard', 'St. Bernard'],
    ['___', '___'],
  ];
  for (const [name, want] of cases) assert.equal(classPrompt(name), want, name);
});

test('classPrompt overrides are exact-name and win; blank overrides are ignored', () => {
  const overrides = { fire_truck: ' fire engine ', crane: 'construction crane', dog: '  ' };
  assert.equal(classPrompt('fire_truck', overrides), 'fire engine');
  assert.equal(classPrompt('Fire_truck', overrides), 'Fire truck');
  assert.equal(classPrompt('crane', overrides), 'construction crane');
  assert.equal(classPrompt('dog', overrides), 'dog');
  assert.equal(classPrompt('constructor', {}), 'constructor', 'no prototype lookups');
  assert.equal(classPrompt('toString', {}), 'to String', 'no prototype lookups');
});

test('promptsForClass fills each template once and is safe from $ patterns', () => {
  assert.deepEqual(promptsForClass('fire_truck', ['a photo of a {}.', '{} in the wild']), ['a photo of a fire truck.', 'fire truck in the wild']);
  assert.deepEqual(promptsForClass("$&_$'", ['x {} y']), ["x $& $' y"]);
  assert.deepEqual(promptsForClass('cat', ['a {}.'], { cat: 'kitty' }), ['a kitty.']);
});

test('built-in templates: simple, and the 80 CLIP ImageNet templates verbatim', () => {
  assert.deepEqual(BUILTIN_TEMPLATES.simple, ['a photo of a {}.']);
  const t = BUILTIN_TEMPLATES.imagenet80;
  assert.equal(t.length, 80);
  assert.equal(new Set(t).size, 80);
  for (const x of t) assert.equal(templateError(x), undefined, x);
  // Spot checks against openai/CLIP notebooks/Prompt_Engineering_for_ImageNet.ipynb (order matters for reproducibility).
  assert.equal(t[0], 'a bad photo of a {}.');
  assert.equal(t[35], 'a {} in a video game.');
  assert.equal(t[44], 'a origami {}.');
  assert.equal(t[73], 'itap of a {}.');
  assert.equal(t[79], 'a tattoo of the {}.');
});

test('templateError: {} exactly once', () => {
  assert.equal(templateError('a {} b'), undefined);
  assert.match(templateError('a photo')!, /must contain \{\}/);
  assert.match(templateError('{} and {}')!, /exactly once, found 2/);
});

test('resolveTemplates: default, built-in names, custom lists (validated)', async () => {
  assert.deepEqual(await resolveTemplates(undefined, '/'), { name: 'simple', templates: ['a photo of a {}.'] });
  const r = await resolveTemplates('imagenet80', '/');
  assert.equal(r.name, 'imagenet80');
  assert.equal(r.templates.length, 80);
  r.templates.push('mutated {}');
  assert.equal(BUILTIN_TEMPLATES.imagenet80.length, 80, 'callers get a copy');
  assert.deepEqual(await resolveTemplates(['a {}', 'the {}'], '/'), { name: 'custom', templates: ['a {}', 'the {}'] });
  await assert.rejects(resolveTemplates(['a {}', 'no placeholder'], '/'), (e: unknown) => e instanceof ClipLensError && /template 2/.test(e.message));
  await assert.rejects(resolveTemplates([], '/'), ClipLensError);
});

test('resolveTemplates: text file (one per line, # comments) relative to baseDir', async () => {
  const dir = await tempDir({ 't.txt': '# my templates\r\na photo of a {}.\r\n\r\n  a sketch of a {}.  \r\n' });
  assert.deepEqual(await resolveTemplates('t.txt', dir), { name: 't.txt', templates: ['a photo of a {}.', 'a sketch of a {}.'] });
  const bad = await tempDir({ 't.txt': 'a photo of a {}.\n\nno placeholder here\n' });
  await assert.rejects(
    resolveTemplates('t.txt', bad),
    (e: unknown) => e instanceof ClipLensError && e.code === 'templates-invalid' && e.file === path.join(bad, 't.txt') && e.line === 3,
  );
});

test('resolveTemplates: JSON file; errors name the line of the bad entry', async () => {
  const dir = await tempDir({ 'ok.json': '["a {}", "b {}"]', 'bad.json': '[\n  "a {}",\n  "b {} {}"\n]', 'obj.json': '{"x": 1}', 'syntax.json': '[\n"a {}",\n]' });
  assert.deepEqual(await resolveTemplates('ok.json', dir), { name: 'ok.json', templates: ['a {}', 'b {}'] });
  await assert.rejects(resolveTemplates('bad.json', dir), (e: unknown) => e instanceof ClipLensError && e.line === 3 && /exactly once/.test(e.message));
  await assert.rejects(resolveTemplates('obj.json', dir), (e: unknown) => e instanceof ClipLensError && e.line === 1 && /JSON array/.test(e.message));
  await assert.rejects(resolveTemplates('syntax.json', dir), (e: unknown) => e instanceof ClipLensError && e.line === 3 && /trailing comma/.test(e.message));
});

test('resolveTemplates: an unknown name that is not a file says so', async () => {
  const dir = await tempDir({});
  await assert.rejects(
    resolveTemplates('imagenet81', dir),
    (e: unknown) => e instanceof ClipLensError && e.code === 'templates-not-found' && /simple, imagenet80/.test(e.message) && e.file === path.join(dir, 'imagenet81'),
  );
});
