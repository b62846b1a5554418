/**
 * Comparing two runs (src/core/compare.ts, `clip-lens compare`): headline and per-class deltas sorted by the largest
 * change, images fixed / broken / changed matched by content (also when moved or relabelled), label issues new and
 * gone, the difference confusion matrix, reports and baselines as input, bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBaseline, serializeBaseline } from '../../src/core/baseline';
import { compareRuns, compareWithFile, formatComparison, readRunFile } from '../../src/core/compare';
import { main } from '../../src/cli/main';
import type { CliIO } from '../../src/cli/io';
import { makeReport, many, type S } from './reportFixtures';

const CLASSES = ['cat', 'dog', 'fox'];
// A: cat 9/10 (cat-9 -> dog), dog 8/10 (dog-8, dog-9 -> cat), fox 2/4 (fox-2, fox-3 -> dog).
const A: S[] = [...many('cat', 10, 9, 'dog'), ...many('dog', 10, 8, 'cat'), ...many('fox', 4, 2, 'dog')];
// B: cat-9 fixed; dog-0 broken; fox-3 wrong differently (-> cat); fox-1 relabelled as cat and predicted fox (broken,
// since it was right); fox-2 gone; a new owl class with one image.
const B: S[] = [
  ...many('cat', 10, 10, 'dog'),
  { label: 'dog', pred: 'cat', id: 'dog-0' },
  ...many('dog', 10, 8, 'cat').slice(1),
  { label: 'fox', pred: 'fox', id: 'fox-0' },
  { label: 'cat', pred: 'fox', id: 'fox-1' },
  { label: 'fox', pred: 'cat', id: 'fox-3' },
  { label: 'owl', pred: 'owl', id: 'owl-0' },
];

function runs() {
  const ra = makeReport(CLASSES, A, { issues: [9, 22] }); // cat-9 and fox-2 flagged in A
  const rb = makeReport([...CLASSES, 'owl'], B, { issues: [10, 21] }); // dog-0 and fox-1 flagged in B
  return { ra, rb, a: makeBaseline(ra), b: makeBaseline(rb) };
}

test('compare: headline and per-class deltas, largest change first; classes on one side only first', () => {
  const { a, b } = runs();
  const c = compareRuns(a, b, ['a.json', 'b.json']);
  assert.equal(c.a.name, 'a.json');
  assert.deepEqual(c.setupDifferences, []);
  const top1 = c.headline.find((h) => h.metric === 'top1Accuracy')!;
  assert.equal(top1.a, Math.round((19 / 24) * 1e6) / 1e6);
  // cat-9 fixed, dog-0 and fox-1 broken, owl-0 new and right, fox-2 gone: 19 of 24 again.
  assert.equal(top1.b, Math.round((19 / 24) * 1e6) / 1e6);
  assert.equal(top1.delta, 0);
  assert.deepEqual(
    c.classes.map((x) => x.class),
    ['owl', 'fox', 'dog', 'cat'],
  );
  assert.equal(c.classes[0].a, null);
  assert.equal(c.classes[0].delta, null);
  const fox = c.classes[1];
  assert.deepEqual([fox.a?.recall, fox.b?.recall, fox.delta?.recall], [0.5, 0.5, 0]);
  // fox: precision 2/2 -> 1/2 (fox-1 predicted fox but labelled cat).
  assert.equal(fox.delta?.precision, -0.5);
  // dog: precision 8/11 -> 7/7.
  assert.ok(Math.abs((c.classes[2].delta?.precision as number) - (1 - 8 / 11)) < 2e-6);
  const cat = c.classes.find((x) => x.class === 'cat')!;
  assert.ok(Math.abs((cat.delta?.recall as number) - (10 / 11 - 0.9)) < 2e-6);
});

test('compare: images fixed, broken and changed by content, relabelled ones named; label issues new and gone', () => {
  const { a, b } = runs();
  const c = compareRuns(a, b);
  assert.deepEqual(c.samples.fixed.map((x) => [x.path, x.a, x.b]), [['cat/9.png', 'dog', 'cat']]);
  assert.deepEqual(
    c.samples.broken.map((x) => [x.path, x.label, x.labelBefore, x.a, x.b]),
    [
      ['cat/21.png', 'cat', 'fox', 'fox', 'fox'],
      ['dog/10.png', 'dog', undefined, 'dog', 'cat'],
    ],
  );
  assert.deepEqual(c.samples.changed.map((x) => [x.path, x.a, x.b]), [['fox/22.png', 'dog', 'cat']]);
  assert.deepEqual([c.samples.common, c.samples.onlyInA, c.samples.onlyInB], [23, 1, 1]);
  assert.deepEqual(c.labelIssues.new.map((x) => [x.path, x.suggested]), [['cat/21.png', 'fox'], ['dog/10.png', 'cat']]);
  assert.deepEqual(c.labelIssues.gone.map((x) => [x.path, x.suggested]), [['cat/9.png', 'dog'], ['fox/22.png', 'dog']]);
});

test('compare: the difference confusion matrix B - A over the classes of both', () => {
  const { a, b } = runs();
  const c = compareRuns(a, b);
  assert.deepEqual(c.confusionDelta?.classes, ['cat', 'dog', 'fox', 'owl']);
  // Rows true, columns predicted. cat: A 9 cat / 1 dog, B 10 cat + 1 (fox-1 -> fox) => +1, -1, +1; dog: dog-0 -> cat.
  assert.deepEqual(c.confusionDelta?.matrix, [
    [1, -1, 1, 0],
    [1, -1, 0, 0],
    [1, -2, -1, 0],
    [0, 0, 0, 1],
  ]);
  // Every row sums to the change in support.
  const supportDelta = ['cat', 'dog', 'fox', 'owl'].map((cls) => (b.classes[cls]?.support ?? 0) - (a.classes[cls]?.support ?? 0));
  assert.deepEqual(c.confusionDelta?.matrix.map((r) => r.reduce((x, y) => x + y, 0)), supportDelta);
});

test('compare: another model or prompt set is compared and named; text output', () => {
  const { ra } = runs();
  const other = makeBaseline(makeReport(CLASSES, A, { model: 'clip-vit-large-patch14', templates: 'imagenet80' }));
  const c = compareRuns(makeBaseline(ra), other, ['base.json', 'large.json']);
  assert.deepEqual(c.setupDifferences, ['model: A clip-vit-base-patch32, B clip-vit-large-patch14', 'templates: A simple (1), B imagenet80 (80)']);
  assert.equal(c.samples.fixed.length + c.samples.broken.length, 0);
  const { a, b } = runs();
  const text = formatComparison(compareRuns(a, b, ['a.json', 'b.json']), 1);
  assert.match(text, /^A: a\.json \(model clip-vit-base-patch32, templates simple \(1\), predictor zero-shot, 24 images\)/);
  assert.match(text, /top-1 accuracy +0\.792 +0\.792 +0\n/);
  assert.match(text, /balanced accuracy +0\.733 +0\.777 +\+0\.044\n/);
  assert.match(text, /owl +- +1 +new/);
  assert.match(text, /Images: 23 in both, 1 only in A, 1 only in B; 1 fixed, 2 broken, 1 changed prediction/);
  assert.match(text, /cat\/21\.png: labelled 'cat' \(was 'fox'\), A 'fox' -> B 'fox'\n +\.\.\. and 1 more/);
  assert.match(text, /Likely label errors: 2 new, 2 gone/);
});

test('clip-lens compare: reports and baselines as input, --json, bad input exit 2 naming the file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-compare-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { ra, rb } = runs();
  fs.writeFileSync(path.join(dir, 'a.json'), JSON.stringify(ra));
  fs.writeFileSync(path.join(dir, 'b-baseline.json'), serializeBaseline(makeBaseline(rb)));
  fs.writeFileSync(path.join(dir, 'bad.json'), '{"x": 1,\n "y": }');
  fs.writeFileSync(path.join(dir, 'other.json'), '{"x": 1}');
  const cli = async (...args: string[]) => {
    let out = '';
    let err = '';
    const io: CliIO = { out: (s) => void (out += s), err: (s) => void (err += s), isTTY: false };
    const code = await main(args, io);
    return { code, out, err };
  };
  const r = await cli('compare', path.join(dir, 'a.json'), path.join(dir, 'b-baseline.json'), '--json');
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out);
  assert.deepEqual(json, JSON.parse(JSON.stringify(compareRuns(makeBaseline(ra), makeBaseline(rb), [path.join(dir, 'a.json'), path.join(dir, 'b-baseline.json')]))));
  const text = await cli('compare', path.join(dir, 'a.json'), path.join(dir, 'b-baseline.json'));
  assert.match(text.out, /1 fixed, 2 broken/);
  const bad = await cli('compare', path.join(dir, 'a.json'), path.join(dir, 'bad.json'));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /bad\.json:2: not valid JSON/);
  const other = await cli('compare', path.join(dir, 'other.json'), path.join(dir, 'a.json'));
  assert.equal(other.code, 2);
  assert.match(other.err, /other\.json: neither a clip-lens eval report .* nor a baseline/);
  const missing = await cli('compare', path.join(dir, 'nope.json'), path.join(dir, 'a.json'));
  assert.match(missing.err, /nope\.json: no such file/);
  assert.equal((await cli('compare', path.join(dir, 'a.json'))).code, 2);
  // A report read as a run is its baseline.
  assert.deepEqual(await readRunFile(path.join(dir, 'a.json')), makeBaseline(ra));
  // eval --baseline's section: A = the file, B = this report.
  const section = await compareWithFile(rb, path.join(dir, 'a.json'), 'a.json');
  assert.equal(section.a.name, 'a.json');
  assert.equal(section.b.name, 'this run');
  assert.equal(section.samples.fixed.length, 1);
});
