/**
 * Class names -> prompt texts.
 *
 * classPrompt() turns a class name (usually a folder name) into readable text, by these rules, in order:
 * 1. An override (`prompts` in .clip-lens.json) for the exact class name wins and is used as written (trimmed).
 * 2. A numeric ordering prefix ending in a dot is dropped: `001.Black_footed_Albatross` (CUB-200 style).
 * 3. `_` becomes a space: `fire_truck` -> `fire truck`.
 * 4. camelCase / PascalCase words are split where a run of at least two lower-case letters is followed by an upper-case
 *    letter and then a lower-case one: `fireTruck` -> `fire Truck`, `GoldenRetriever` -> `Golden Retriever`, while `iPod`,
 *    `eBay`, `McDonald` keep their form (the run before the capital is one letter, or the name is a prefix-cap).
 *    Case is not changed: CLIP's tokenizer lower-cases text anyway.
 * 5. Whitespace is collapsed and trimmed.
 * Hyphens are kept (`three-toed sloth`, `T-shirt`): they are often part of the name; use an override for `fire-truck`.
 * WordNet ids such as `n01440764` cannot be helped and stay as they are (map them with overrides).
 *
 * Templates contain `{}` exactly once; promptsForClass() puts the class prompt there.
 */
import * as path from 'node:path';
import { ClipLensError } from './errors';
import { FILE_LIMITS, FileRefusedError, readRegularFile } from './fileSystem';
import { JsonSyntaxError, lineColumnFinder, parseJsonTree } from './jsonWithPositions';

export type BuiltinTemplateName = 'simple' | 'imagenet80';

/**
 * `imagenet80`: the 80 templates of the CLIP paper's ImageNet zero-shot evaluation, verbatim and in their order, from
 * openai/CLIP notebooks/Prompt_Engineering_for_ImageNet.ipynb (`imagenet_templates`; the same list is in
 * notebooks/imagenet_data.json). They include quirks such as "a origami {}." and "itap of a {}." on purpose.
 */
export const BUILTIN_TEMPLATES: Record<BuiltinTemplateName, string[]> = {
  simple: ['a photo of a {}.'],
  imagenet80: [
    'a bad photo of a {}.',
    'a photo of many {}.',
    'a sculpture of a {}.',
    'a photo of the hard to see {}.',
    'a low resolution photo of the {}.',
    'a rendering of a {}.',
    'graffiti of a {}.',
    'a bad photo of the {}.',
    'a cropped photo of the {}.',
    'a tattoo of a {}.',
    'the embroidered {}.',
    'a photo of a hard to see {}.',
    'a bright photo of a {}.',
    'a photo of a clean {}.',
    'a photo of a dirty {}.',
    'a dark photo of the {}.',
    'a drawing of a {}.',
    'a photo of my {}.',
    'the plastic {}.',
    'a photo of the cool {}.',
    'a close-up photo of a {}.',
    'a black and white photo of the {}.',
    'a painting of the {}.',
    'a painting of a {}.',
    'a pixelated photo of the {}.',
    'a sculpture of the {}.',
    'a bright photo of the {}.',
    'a cropped photo of a {}.',
    'a plastic {}.',
    'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.',
    'a photo of the {}.',
    'a good photo of the {}.',
    'a rendering of the {}.',
    'a {} in a video game.',
    'a photo of one {}.',
    'a doodle of a {}.',
    'a close-up photo of the {}.',
    'a photo of a {}.',
    'the origami {}.',
    'the {} in a video game.',
    'a sketch of a {}.',
    'a doodle of the {}.',
    'a origami {}.',
    'a low resolution photo of a {}.',
    'the toy {}.',
    'a rendition of the {}.',
    'a photo of the clean {}.',
    'a photo of a large {}.',
    'a rendition of a {}.',
    'a photo of a nice {}.',
    'a photo of a weird {}.',
    'a blurry photo of a {}.',
    'a cartoon {}.',
    'art of a {}.',
    'a sketch of the {}.',
    'a embroidered {}.',
    'a pixelated photo of a {}.',
    'itap of the {}.',
    'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.',
    'a plushie {}.',
    'a photo of the nice {}.',
    'a photo of the small {}.',
    'a photo of the weird {}.',
    'the cartoon {}.',
    'art of the {}.',
    'a drawing of the {}.',
    'a photo of the large {}.',
    'a black and white photo of a {}.',
    'the plushie {}.',
    'a dark photo of a {}.',
    'itap of a {}.',
    'graffiti of the {}.',
    'a toy {}.',
    'itap of my {}.',
    'a photo of a cool {}.',
    'a photo of a small {}.',
    'a tattoo of the {}.',
  ],
};

/** The template set used when none is given. */
export const DEFAULT_TEMPLATES: BuiltinTemplateName = 'simple';

/** The readable prompt text for a class (see the module comment for the rules). */
export function classPrompt(className: string, overrides?: Record<string, string>): string {
  if (overrides && Object.prototype.hasOwnProperty.call(overrides, className)) {
    const o = overrides[className]!.trim();
    if (o !== '') return o;
  }
  let s = className.replace(/^\d+\.(?=\D)/, '');
  s = s.replace(/_/g, ' ');
  s = s.replace(/(\p{Ll}{2,})(?=\p{Lu}\p{Ll})/gu, '$1 ');
  s = s.replace(/\s+/g, ' ').trim();
  return s === '' ? className : s;
}

/** Put `text` into a template's `{}` (without `$` replacement patterns). */
export function fillTemplate(template: string, text: string): string {
  const i = template.indexOf('{}');
  return i < 0 ? template : template.slice(0, i) + text + template.slice(i + 2);
}

/** The prompts for one class: every template filled with classPrompt(className, overrides). */
export function promptsForClass(className: string, templates: readonly string[], overrides?: Record<string, string>): string[] {
  const text = classPrompt(className, overrides);
  return templates.map((t) => fillTemplate(t, text));
}

/**
 * The text the model sees for a prompt, for comparison: CLIP's tokenizer lower-cases text and collapses whitespace, so
 * `red_circle`, `RED_CIRCLE` and `Red circle` all give the same embedding.
 */
export function promptKey(prompt: string): string {
  return prompt.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Classes whose prompts are identical as the model sees them: `kept` stands for all of `merged`. */
export interface PromptCollision {
  kept: string;
  merged: string[];
  /** The (first) prompt they share. */
  prompt: string;
}

/**
 * Groups of classes whose prompts are the same for the model (promptKey of every template filled in). Such classes get
 * identical text embeddings, so every image of them ties and the first class wins: a silent wrong answer. In each group
 * the class with the most samples (`counts`; ties: the first by code point, which `classes` is sorted in) is kept.
 */
export function promptCollisions(
  classes: readonly string[],
  templates: readonly string[],
  overrides: Record<string, string> | undefined,
  counts: ReadonlyMap<string, number> = new Map(),
): PromptCollision[] {
  const groups = new Map<string, string[]>();
  for (const c of classes) {
    const key = promptsForClass(c, templates, overrides).map(promptKey).join('\n');
    const g = groups.get(key);
    if (g) g.push(c);
    else groups.set(key, [c]);
  }
  const out: PromptCollision[] = [];
  for (const g of groups.values()) {
    if (g.length < 2) continue;
    let kept = g[0]!;
    for (const c of g) if ((counts.get(c) ?? 0) > (counts.get(kept) ?? 0)) kept = c;
    out.push({ kept, merged: g.filter((c) => c !== kept), prompt: promptsForClass(kept, templates, overrides)[0]! });
  }
  return out;
}

/**
 * Groups of class names equal when case, blanks, `_` and `-` are ignored (`red-circle`, `red_circle`) whose prompts
 * still differ (so they are not promptCollisions): probably one class written two ways, worth a word to the user.
 */
export function classNameVariants(classes: readonly string[]): string[][] {
  const groups = new Map<string, string[]>();
  for (const c of classes) {
    const key = c.toLowerCase().replace(/[\s_-]+/g, '');
    const g = groups.get(key);
    if (g) g.push(c);
    else groups.set(key, [c]);
  }
  return [...groups.values()].filter((g) => g.length > 1);
}

/** Why a template is invalid, or undefined when it contains `{}` exactly once. */
export function templateError(template: string): string | undefined {
  const n = template.split('{}').length - 1;
  if (n === 1) return undefined;
  return n === 0 ? 'a template must contain {} (where the class goes)' : `a template must contain {} exactly once, found ${n}`;
}

/**
 * Resolve a template spec:
 * - undefined -> the `simple` set;
 * - 'simple' | 'imagenet80' -> the built-in set of that name;
 * - any other string -> a file, relative to `baseDir`: `.json` files hold a JSON array of strings; other files hold one
 *   template per line (blank lines and lines starting with `#` are skipped). `name` is the path as given.
 * - an array -> those templates, named 'custom'.
 * Every template must contain `{}` exactly once: otherwise ClipLensError('templates-invalid') naming the file and line
 * (or the list index); a missing file is ClipLensError('templates-not-found').
 */
export async function resolveTemplates(
  spec: string | string[] | undefined,
  baseDir: string,
): Promise<{ name: string; templates: string[] }> {
  if (spec === undefined) return { name: DEFAULT_TEMPLATES, templates: [...BUILTIN_TEMPLATES[DEFAULT_TEMPLATES]] };
  if (Array.isArray(spec)) {
    if (spec.length === 0) throw new ClipLensError('templates-invalid', 'the template list is empty');
    spec.forEach((t, i) => {
      const err = typeof t === 'string' ? templateError(t) : 'a template must be a string';
      if (err) throw new ClipLensError('templates-invalid', `template ${i + 1} (${JSON.stringify(t)}): ${err}`);
    });
    return { name: 'custom', templates: [...spec] };
  }
  if (spec === 'simple' || spec === 'imagenet80') return { name: spec, templates: [...BUILTIN_TEMPLATES[spec]] };
  const file = path.resolve(baseDir, spec);
  let text: string;
  try {
    text = (await readRegularFile(file, { maxBytes: FILE_LIMITS.config, code: 'templates-not-found', what: 'the template file' })).toString('utf8');
  } catch (e) {
    if (!(e instanceof FileRefusedError)) throw e;
    const why = e.reason === 'missing' ? 'no such file' : e.message.slice(e.message.indexOf(': ') + 2);
    throw new ClipLensError(
      'templates-not-found',
      `templates "${spec}" is neither a built-in set (simple, imagenet80) nor a readable template file: ${why}`,
      { file },
    );
  }
  const templates = path.extname(file).toLowerCase() === '.json' ? templatesFromJson(text, file) : templatesFromText(text, file);
  return { name: spec, templates };
}

function templatesFromText(text: string, file: string): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) return;
    const err = templateError(t);
    if (err) throw new ClipLensError('templates-invalid', `${err}: ${JSON.stringify(t)}`, { file, line: i + 1 });
    out.push(t);
  });
  if (out.length === 0) throw new ClipLensError('templates-invalid', 'the template file has no templates', { file });
  return out;
}

function templatesFromJson(text: string, file: string): string[] {
  const at = lineColumnFinder(text);
  let tree;
  try {
    tree = parseJsonTree(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new ClipLensError('templates-invalid', `invalid JSON: ${e.message}`, { file, line: at(e.offset).line });
  }
  if (tree.type !== 'array') {
    throw new ClipLensError('templates-invalid', 'expected a JSON array of template strings', { file, line: at(tree.offset).line });
  }
  if (tree.items.length === 0) throw new ClipLensError('templates-invalid', 'the template list is empty', { file });
  return tree.items.map((item) => {
    const line = at(item.offset).line;
    if (item.type !== 'string') throw new ClipLensError('templates-invalid', 'each template must be a string', { file, line });
    const err = templateError(item.value);
    if (err) throw new ClipLensError('templates-invalid', `${err}: ${JSON.stringify(item.value)}`, { file, line });
    return item.value;
  });
}
