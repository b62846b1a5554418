import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from '../../src/core/errors';
import {
  addIgnoredSample,
  didYouMean,
  formatConfigProblem,
  ignoredSampleEdit,
  parseProjectConfig,
  promptEntryEdit,
  projectConfigJsonSchema,
  readProjectConfig,
  type ConfigProblem,
} from '../../src/core/projectConfig';
import { lineColumnFinder, parseJsonTree } from '../../src/core/jsonWithPositions';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** Where `needle` (the n-th occurrence) starts in `text`, as 1-based line/column. */
function pos(text: string, needle: string, nth = 1): { line: number; column: number } {
  let i = -1;
  for (let k = 0; k < nth; k++) i = text.indexOf(needle, i + 1);
  assert.ok(i >= 0, `${needle} not in text`);
  return lineColumnFinder(text)(i);
}

const BRIEF_EXAMPLE = `{ "model": "clip-vit-base-patch32", "templates": "imagenet80",
  "prompts": { "fire_truck": "fire engine" },
  "gate": { "minTop1Accuracy": 0.7, "minBalancedAccuracy": 0.6, "minRecallAtK": { "5": 0.9 },
            "minRecall": 0.5, "classes": { "fire_truck": { "minRecall": 0.8 } }, "maxLabelIssues": 10 } }`;

/** A config that uses every key the schema knows. */
const FULL = {
  $schema: './node_modules/clip-lens/schemas/clip-lens.schema.json',
  model: 'models/my-clip',
  templates: ['a photo of a {}.', 'a blurry photo of a {}.'],
  prompts: { fire_truck: 'fire engine' },
  topK: 5,
  predictor: 'linear-probe',
  precision: 'auto',
  embeddings: 'embeddings',
  gate: {
    minTop1Accuracy: 0.7,
    minBalancedAccuracy: 0.6,
    minRecallAtK: { '5': 0.9, '10': 0.95 },
    minRecall: 0.5,
    rareClassMinRecall: 0.3,
    classes: { fire_truck: { minRecall: 0.8, maxRecallDrop: 0.1 } },
    maxLabelIssues: 10,
    labelIssueMaxScore: 0.2,
    baseline: 'baselines/main.json',
    maxDrop: { top1Accuracy: 0.02, balancedAccuracy: 0.03, recall: 0.05, recallAtK: { '5': 0.01 } },
  },
  warnings: {
    rareClassMaxFraction: 0.02,
    rareClassMaxSupport: 20,
    rareClassMinRecall: 0.5,
    imbalanceRatio: 10,
    lowAccuracy: 0.5,
    goodAccuracy: 0.9,
    recallAtK: { k: 5, min: 0.8 },
  },
  duplicates: { maxHashDistance: 6, minCosine: 0.8, outlierNeighbours: 15, classOutlierFraction: 0.2 },
  labels: { file: 'labels.csv', imageColumn: 'path', labelColumn: 'class', splitColumn: 'fold' },
  ignore: ['cat/0001.jpg', 'dog/sub/x.png'],
};

test('the example config from the docs is valid and read as written', () => {
  const { config, problems } = parseProjectConfig(BRIEF_EXAMPLE, '.clip-lens.json');
  assert.deepEqual(problems, []);
  assert.deepEqual(config, JSON.parse(BRIEF_EXAMPLE));
});

test('a config using every key is valid', () => {
  const text = JSON.stringify(FULL, null, 2);
  const { config, problems } = parseProjectConfig(text, '.clip-lens.json');
  assert.deepEqual(problems, []);
  assert.deepEqual(config, FULL);
});

test('unknown keys are reported with their key path, a suggestion and the key position', () => {
  const text = '{\n  "gate": {\n    "classes": { "fire_truck": { "minRecal": 0.8 } },\n    "maxLabelIssue": 3\n  },\n  "templats": "simple",\n  "zzz": 1\n}';
  const { config, problems } = parseProjectConfig(text, '.clip-lens.json');
  assert.deepEqual(problems, [
    { key: 'gate.classes.fire_truck.minRecal', message: 'unknown key (did you mean minRecall?)', ...pos(text, '"minRecal"') },
    { key: 'gate.maxLabelIssue', message: 'unknown key (did you mean maxLabelIssues?)', ...pos(text, '"maxLabelIssue"') },
    { key: 'templats', message: 'unknown key (did you mean templates?)', ...pos(text, '"templats"') },
    { key: 'zzz', message: 'unknown key', ...pos(text, '"zzz"') },
  ]);
  assert.deepEqual(problems[0]!.line, 3);
  assert.deepEqual(problems[0]!.column, 34);
  assert.deepEqual(config, { gate: { classes: { fire_truck: {} } } });
  assert.equal(
    formatConfigProblem('.clip-lens.json', problems[0]!),
    '.clip-lens.json:3:34: gate.classes.fire_truck.minRecal: unknown key (did you mean minRecall?)',
  );
});

test('bad values are all reported at the value, and left out while good values are kept', () => {
  const text = [
    '{',
    '  "model": "",',
    '  "topK": 2.5,',
    '  "gate": { "minTop1Accuracy": 1.5, "minRecall": "high", "minBalancedAccuracy": 0.5, "maxLabelIssues": -1,',
    '            "minRecallAtK": { "five": 0.9, "3": 0.8 } },',
    '  "warnings": { "imbalanceRatio": 0.5, "lowAccuracy": 0.6, "goodAccuracy": 0.4, "recallAtK": { "k": 0, "min": 0.5 } },',
    '  "prompts": { "cat": 3 },',
    '  "templates": ["a {}", "no placeholder", "{} and {}"],',
    '  "ignore": ["ok.jpg", "/abs.jpg", "../up.jpg", "a/../../b.jpg", 7],',
    '  "labels": []',
    '}',
  ].join('\n');
  const { config, problems } = parseProjectConfig(text, 'x');
  const got = problems.map((p) => [p.key, p.line, p.column, p.message]);
  const at = (needle: string, nth = 1) => {
    const p = pos(text, needle, nth);
    return [p.line, p.column] as const;
  };
  assert.deepEqual(got, [
    ['model', ...at('""'), 'must not be empty'],
    ['topK', ...at('2.5'), 'must be an integer, found 2.5'],
    ['gate.minTop1Accuracy', ...at('1.5'), 'must be between 0 and 1, found 1.5'],
    ['gate.minRecall', ...at('"high"'), 'expected a number, found a string'],
    ['gate.maxLabelIssues', ...at('-1'), 'must be at least 0, found -1'],
    ['gate.minRecallAtK.five', ...at('"five"'), 'K must be a positive integer such as "5"'],
    ['warnings.imbalanceRatio', ...at('0.5, "low'), 'must be at least 1, found 0.5'],
    ['warnings.goodAccuracy', ...at('0.4'), 'must be at least warnings.lowAccuracy (0.6)'],
    ['warnings.recallAtK.k', ...at('0, "min"'), 'must be at least 1, found 0'],
    ['prompts.cat', ...at('3 }'), 'expected a string, found a number'],
    ['templates[1]', ...at('"no placeholder"'), 'a template must contain {} exactly once, found "no placeholder"'],
    ['templates[2]', ...at('"{} and {}"'), 'a template must contain {} exactly once, found "{} and {}"'],
    ['ignore[1]', ...at('"/abs.jpg"'), 'must be a path relative to the dataset root with / separators and no .., found "/abs.jpg"'],
    ['ignore[2]', ...at('"../up.jpg"'), 'must be a path relative to the dataset root with / separators and no .., found "../up.jpg"'],
    ['ignore[3]', ...at('"a/../../b.jpg"'), 'must be a path relative to the dataset root with / separators and no .., found "a/../../b.jpg"'],
    ['ignore[4]', ...at('7]'), 'expected a string, found a number'],
    ['labels', ...at('[]'), 'expected an object, found an array'],
  ]);
  assert.deepEqual(config, {
    gate: { minBalancedAccuracy: 0.5, minRecallAtK: { '3': 0.8 } },
    warnings: { lowAccuracy: 0.6 },
    prompts: {},
    ignore: ['ok.jpg'],
  });
});

test('syntax errors give one problem at the right place; comments and trailing commas are named', () => {
  const cases: [string, string, number, number][] = [
    ['{\n  "a": 1,\n}', 'trailing comma', 3, 1],
    ['{\n  // note\n  "a": 1\n}', 'comments are not allowed', 2, 3],
    ['{ "a": tru }', 'unexpected character', 1, 8],
    ['{ "a": "x\ny" }', 'control character', 1, 10],
    ['', 'empty document', 1, 1],
    ['{ "a": 1 } x', 'after the JSON value', 1, 12],
    ["{ 'a': 1 }", 'property name in double quotes', 1, 3],
    ['{ "a": 01 }', 'invalid number', 1, 8],
  ];
  for (const [text, msg, line, column] of cases) {
    const { config, problems } = parseProjectConfig(text, 'f');
    assert.equal(problems.length, 1, text);
    assert.match(problems[0]!.message, new RegExp(msg), text);
    assert.deepEqual([problems[0]!.key, problems[0]!.line, problems[0]!.column], ['', line, column], text);
    assert.deepEqual(config, {});
  }
  const missing = parseProjectConfig('{ "warnings": { "recallAtK": { "k": 5 } } }', 'f');
  assert.deepEqual(missing.problems, [{ key: 'warnings.recallAtK', message: 'missing "min"', line: 1, column: 30 }]);
  assert.deepEqual(missing.config, { warnings: {} });
  const arr = parseProjectConfig('[1]', 'f').problems;
  assert.deepEqual(arr, [{ key: '', message: 'the config must be a JSON object { ... }', line: 1, column: 1 }]);
});

test('duplicate keys are reported', () => {
  const text = '{ "topK": 3, "topK": 4 }';
  const { config, problems } = parseProjectConfig(text, 'f');
  assert.deepEqual(problems, [{ key: 'topK', message: 'duplicate key (the earlier value is replaced)', line: 1, column: 14 }] satisfies ConfigProblem[]);
  assert.deepEqual(config, { topK: 4 });
});

test('parseJsonTree decodes escapes and records offsets', () => {
  const text = '\uFEFF{"k\\u00e9y": ["a\\"b\\\\c\\n", -1.5e2, true, null]}';
  const tree = parseJsonTree(text);
  assert.equal(tree.type, 'object');
  if (tree.type !== 'object') return;
  const prop = tree.properties[0]!;
  assert.equal(prop.key, 'kéy');
  assert.equal(text.slice(prop.keyOffset, prop.keyOffset + prop.keyLength), '"k\\u00e9y"');
  assert.equal(prop.value.type, 'array');
  if (prop.value.type !== 'array') return;
  assert.deepEqual(
    prop.value.items.map((n) => [n.type, 'value' in n ? n.value : undefined, text.slice(n.offset, n.offset + n.length)]),
    [
      ['string', 'a"b\\c\n', '"a\\"b\\\\c\\n"'],
      ['number', -150, '-1.5e2'],
      ['boolean', true, 'true'],
      ['null', null, 'null'],
    ],
  );
});

test('didYouMean suggests close keys only', () => {
  assert.equal(didYouMean('minRecal', ['minRecall', 'minTop1Accuracy']), 'minRecall');
  assert.equal(didYouMean('TOPK', ['topK']), 'topK');
  assert.equal(didYouMean('colour', ['model', 'gate']), undefined);
});

test('readProjectConfig: no file -> empty config; a file -> parsed with its path', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'clip-lens-config-'));
  dirs.push(dir);
  assert.deepEqual(await readProjectConfig(dir), { config: {}, problems: [] });
  await writeFile(path.join(dir, '.clip-lens.json'), '{ "topK": 3, "modle": "x" }');
  const r = await readProjectConfig(dir);
  assert.equal(r.file, path.join(dir, '.clip-lens.json'));
  assert.deepEqual(r.config, { topK: 3 });
  assert.deepEqual(r.problems, [{ key: 'modle', message: 'unknown key (did you mean model?)', line: 1, column: 14 }]);
});

/** The result is a valid config whose ignore list holds the path. */
function checkAdded(after: string, p: string): void {
  const parsed = parseProjectConfig(after, 'f');
  assert.deepEqual(parsed.problems, [], after);
  assert.ok(parsed.config.ignore?.includes(p), after);
}

test('addIgnoredSample: appends to a multi-line ignore list with its indentation, keeping everything else', () => {
  const text = '{\n    "topK": 5, // placeholder\n    "ignore": [\n        "a.jpg",\n        "b.jpg"\n    ]\n}\n'.replace(' // placeholder', '');
  const out = addIgnoredSample(text, 'cat/c "quoted".jpg');
  assert.equal(out, '{\n    "topK": 5,\n    "ignore": [\n        "a.jpg",\n        "b.jpg",\n        "cat/c \\"quoted\\".jpg"\n    ]\n}\n');
  checkAdded(out, 'cat/c "quoted".jpg');
  assert.equal(addIgnoredSample(out, 'a.jpg'), out, 'already ignored: unchanged');
  assert.equal(ignoredSampleEdit(out, 'b.jpg'), undefined);
});

test('addIgnoredSample: inline and empty lists', () => {
  assert.equal(addIgnoredSample('{"ignore": ["a.jpg"]}', 'b.jpg'), '{"ignore": ["a.jpg", "b.jpg"]}');
  assert.equal(addIgnoredSample('{ "ignore": [ ] }', 'b.jpg'), '{ "ignore": ["b.jpg"] }');
});

test('addIgnoredSample: adds the key after the last property, matching indentation and line endings', () => {
  const twoSpaces = '{\r\n  "model": "m",\r\n  "gate": {\r\n    "minRecall": 0.5\r\n  }\r\n}\r\n';
  const out = addIgnoredSample(twoSpaces, 'x/y.jpg');
  assert.equal(out, '{\r\n  "model": "m",\r\n  "gate": {\r\n    "minRecall": 0.5\r\n  },\r\n  "ignore": [\r\n    "x/y.jpg"\r\n  ]\r\n}\r\n');
  checkAdded(out, 'x/y.jpg');

  const tabs = '{\n\t"topK": 3\n}';
  assert.equal(addIgnoredSample(tabs, 'a.jpg'), '{\n\t"topK": 3,\n\t"ignore": [\n\t\t"a.jpg"\n\t]\n}');

  assert.equal(addIgnoredSample('{ "topK": 3 }', 'a.jpg'), '{ "topK": 3, "ignore": ["a.jpg"] }');
  assert.equal(addIgnoredSample('{}', 'a.jpg'), '{\n  "ignore": [\n    "a.jpg"\n  ]\n}');
  assert.equal(addIgnoredSample('', 'a.jpg'), '{\n  "ignore": [\n    "a.jpg"\n  ]\n}\n');
  checkAdded(addIgnoredSample('  \n', 'a.jpg'), 'a.jpg');
});

test('ignoredSampleEdit is a single small edit', () => {
  const text = '{\n  "topK": 3,\n  "ignore": ["a.jpg"]\n}\n';
  const edit = ignoredSampleEdit(text, 'b.jpg')!;
  assert.deepEqual(edit, { offset: text.indexOf('"a.jpg"') + '"a.jpg"'.length, length: 0, text: ', "b.jpg"' });
});

test('addIgnoredSample refuses text it cannot edit safely, naming the line', () => {
  assert.throws(() => addIgnoredSample('{\n  "a": 1,\n}', 'x.jpg'), (e: unknown) => e instanceof ClipLensError && e.code === 'config-invalid' && e.line === 3);
  assert.throws(() => addIgnoredSample('{\n  "ignore": "x.jpg"\n}', 'y.jpg'), (e: unknown) => e instanceof ClipLensError && e.line === 2);
  assert.throws(() => addIgnoredSample('[]', 'y.jpg'), ClipLensError);
});

test('schemas/clip-lens.schema.json is the schema generated from the validator spec', async () => {
  const file = path.join(__dirname, '..', '..', 'schemas', 'clip-lens.schema.json');
  const onDisk = JSON.parse(await readFile(file, 'utf8'));
  assert.deepEqual(
    onDisk,
    projectConfigJsonSchema(),
    `regenerate with: node --import tsx -e "require('fs').writeFileSync('schemas/clip-lens.schema.json', JSON.stringify(require('./src/core/projectConfig.ts').projectConfigJsonSchema(), null, 2) + '\\n')"`,
  );
  assert.equal(onDisk.$schema, 'http://json-schema.org/draft-07/schema#');
  // Every schema node has a description (VS Code shows it on hover); every fixed-key object is closed.
  const visit = (node: Record<string, unknown>, where: string) => {
    assert.equal(typeof node.description, 'string', `${where} has a description`);
    if (node.properties) {
      assert.equal(node.additionalProperties, false, `${where} is closed`);
      for (const [k, v] of Object.entries(node.properties as Record<string, Record<string, unknown>>)) visit(v, `${where}.${k}`);
    }
    if (typeof node.additionalProperties === 'object') visit(node.additionalProperties as Record<string, unknown>, `${where}.*`);
    if (node.items) visit(node.items as Record<string, unknown>, `${where}[]`);
    if (node.oneOf) (node.oneOf as Record<string, unknown>[]).forEach((o, i) => visit(o, `${where}|${i}`));
  };
  visit(onDisk, '(root)');
});

test('the schema knows exactly the keys the validator accepts', () => {
  // Collect every fixed key path of the schema, and of FULL (which the validator accepts without problems).
  const schemaKeys = new Set<string>();
  const walkSchema = (node: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      schemaKeys.add(prefix + k);
      walkSchema(v, `${prefix}${k}.`);
      if (typeof v.additionalProperties === 'object') walkSchema(v.additionalProperties as Record<string, unknown>, `${prefix}${k}.*.`);
    }
  };
  walkSchema(projectConfigJsonSchema(), '');
  const fullKeys = new Set<string>();
  const mapKeys = new Set(['prompts', 'gate.minRecallAtK', 'gate.classes', 'gate.maxDrop.recallAtK']);
  const walkValue = (v: unknown, prefix: string) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return;
    for (const [k, x] of Object.entries(v)) {
      const parent = prefix.slice(0, -1);
      const key = mapKeys.has(parent) ? '*' : k;
      if (key !== '*') fullKeys.add(prefix + key);
      walkValue(x, `${prefix}${key}.`);
    }
  };
  walkValue(FULL, '');
  // "models" excludes "model" and "embeddings" (both in FULL): accepted on its own.
  const twoModels = { models: ['a', 'b'] };
  assert.deepEqual(parseProjectConfig(JSON.stringify(twoModels), 'x'), { config: twoModels, problems: [] });
  walkValue(twoModels, '');
  assert.deepEqual([...fullKeys].sort(), [...schemaKeys].sort());
});

test('"predictor" accepts auto, zero-shot, linear-probe, knn and names anything else', () => {
  for (const p of ['auto', 'zero-shot', 'linear-probe', 'knn']) {
    assert.deepEqual(parseProjectConfig(JSON.stringify({ predictor: p }), 'x').config, { predictor: p });
  }
  const { config, problems } = parseProjectConfig('{\n  "predictor": "probe"\n}', 'x');
  assert.deepEqual(config, {});
  assert.equal(problems.length, 1);
  assert.equal(problems[0].key, 'predictor');
  assert.equal(problems[0].line, 2);
  assert.match(problems[0].message, /"auto", "zero-shot", "linear-probe" or "knn"/);
});

test('promptEntryEdit adds a prompts entry with the smallest edit and the result validates', () => {
  const apply = (text: string) => {
    const e = promptEntryEdit(text, 'c07', 'fire truck');
    return e ? text.slice(0, e.offset) + e.text + text.slice(e.offset + e.length) : text;
  };
  assert.equal(apply(''), '{\n  "prompts": {\n    "c07": "fire truck"\n  }\n}\n');
  assert.equal(apply('{\n  "topK": 5\n}\n'), '{\n  "topK": 5,\n  "prompts": {\n    "c07": "fire truck"\n  }\n}\n');
  assert.equal(apply('{ "topK": 5 }'), '{ "topK": 5, "prompts": { "c07": "fire truck" } }');
  assert.equal(apply('{\n  "prompts": {\n    "c01": "dog"\n  },\n  "topK": 5\n}'), '{\n  "prompts": {\n    "c01": "dog",\n    "c07": "fire truck"\n  },\n  "topK": 5\n}');
  assert.equal(apply('{"prompts": {}}'), '{"prompts": { "c07": "fire truck" }}');
  assert.equal(promptEntryEdit('{"prompts": {"c07": "x"}}', 'c07', 'y'), undefined);
  for (const text of [apply(''), apply('{\n  "topK": 5\n}\n'), apply('{"prompts": {}}')]) {
    const { config, problems } = parseProjectConfig(text, 'x');
    assert.deepEqual(problems, []);
    assert.equal(config.prompts?.c07, 'fire truck');
  }
  assert.throws(() => promptEntryEdit('{"prompts": []}', 'c07', 'x'), /"prompts" must be an object/);
  assert.throws(() => promptEntryEdit('[1]', 'c07', 'x'), /must be a JSON object/);
});

test('duplicates thresholds out of range are problems on their key, the valid ones kept', () => {
  const text = '{\n  "duplicates": {\n    "maxHashDistance": 40,\n    "minCosine": 1.5,\n    "outlierNeighbours": 2.5,\n    "classOutlierFraction": 0.3\n  }\n}\n';
  const { config, problems } = parseProjectConfig(text, '.clip-lens.json');
  assert.deepEqual(problems.map((p) => [p.key, p.line]), [
    ['duplicates.maxHashDistance', 3],
    ['duplicates.minCosine', 4],
    ['duplicates.outlierNeighbours', 5],
  ]);
  assert.deepEqual(config.duplicates, { classOutlierFraction: 0.3 });
});
