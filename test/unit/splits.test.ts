/**
 * Splits side by side and the train-test gap (src/core/splits.ts), through `clip-lens metrics --input` with a
 * "splits" array (JSON) or a "split" column (CSV), and the eval summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OVERFIT_GAP, formatSplitsSideBySide, orderedSplits, overfittingWarnings, splitsSideBySide } from '../../src/core/splits';
import { computeMetricsBySplit } from '../../src/core/metrics';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import { main } from '../../src/cli/main';
import type { CliIO } from '../../src/cli/io';
import { formatSummary } from '../../src/cli/summary';
import { makeReport } from './reportFixtures';

const CLASSES = ['cat', 'dog'];

/** Rows (label, predicted, split): probability 0.9 on the predicted class. */
function rows(spec: [string, string, string, number][]): { labels: number[]; preds: number[][]; splits: string[] } {
  const labels: number[] = [];
  const preds: number[][] = [];
  const splits: string[] = [];
  for (const [label, pred, split, count] of spec) {
    for (let i = 0; i < count; i++) {
      labels.push(CLASSES.indexOf(label));
      preds.push(CLASSES.map((c) => (c === pred ? 0.9 : 0.1)));
      splits.push(split);
    }
  }
  return { labels, preds, splits };
}

// train: cat 10/10, dog 9/10 (95%); test: cat 9/10, dog 5/10 (70%); val: cat 9/10, dog 8/10.
const SPEC: [string, string, string, number][] = [
  ['cat', 'cat', 'train', 10],
  ['dog', 'dog', 'train', 9],
  ['dog', 'cat', 'train', 1],
  ['cat', 'cat', 'test', 9],
  ['cat', 'dog', 'test', 1],
  ['dog', 'dog', 'test', 5],
  ['dog', 'cat', 'test', 5],
  ['cat', 'cat', 'val', 9],
  ['cat', 'dog', 'val', 1],
  ['dog', 'dog', 'val', 8],
  ['dog', 'cat', 'val', 2],
];

function metricsBySplit(spec = SPEC) {
  const r = rows(spec);
  const probs = new ProbabilityMatrix(2);
  for (const p of r.preds) probs.push(p);
  return computeMetricsBySplit({ classes: CLASSES, labels: r.labels, probs }, r.splits, { ks: [1] });
}

test('splits in display order; side by side: headline and per-class recall per split', () => {
  assert.deepEqual(orderedSplits(['test', 'extra', 'val', 'train']), ['train', 'val', 'test', 'extra']);
  const t = splitsSideBySide(metricsBySplit(), CLASSES);
  assert.deepEqual(t.splits, ['train', 'val', 'test']);
  assert.deepEqual(t.n, [20, 20, 20]);
  assert.deepEqual(t.headline[0], { metric: 'top1Accuracy', name: 'top-1 accuracy', values: [0.95, 0.85, 0.7] });
  assert.deepEqual(t.recall, [
    { class: 'cat', values: [1, 0.9, 0.9] },
    { class: 'dog', values: [0.9, 0.8, 0.5] },
  ]);
  const text = formatSplitsSideBySide(t, '');
  assert.match(text[0], /^ +train \(20\) +val \(20\) +test \(20\)$/);
  assert.match(text[1], /^top-1 accuracy +95\.0% +85\.0% +70\.0%$/);
  assert.match(text.at(-1)!, /^recall dog +90\.0% +80\.0% +50\.0%$/);
});

test('overfitting: a train-test gap beyond OVERFIT_GAP warns with the numbers, overall and per class; within it nothing', () => {
  assert.equal(OVERFIT_GAP, 0.1);
  const w = overfittingWarnings(metricsBySplit());
  assert.deepEqual(w.map((x) => [x.kind, x.class, x.split]), [
    ['overfitting', undefined, 'test'],
    ['overfitting', 'dog', 'test'],
  ]);
  assert.match(w[0].message, /top-1 accuracy is 95\.0% on train but 70\.0% on test: a gap of 25\.0 points, more than 10\.0 points/);
  assert.ok(Math.abs(w[0].numbers.gap - 0.25) < 1e-12);
  assert.match(w[1].message, /recall of dog is 90\.0% on train \(10 images\) but 50\.0% on test \(10 images\): a gap of 40\.0 points/);
  // Without test, val is the held-out split: 95% vs 85% is exactly 10 points, not beyond.
  const noTest = metricsBySplit(SPEC.filter((s) => s[2] !== 'test'));
  assert.deepEqual(overfittingWarnings(noTest), []);
  assert.deepEqual(overfittingWarnings(noTest, 0.05).map((x) => [x.class, x.split]), [[undefined, 'val'], ['cat', 'val'], ['dog', 'val']]);
  // No train split: nothing to say.
  assert.deepEqual(overfittingWarnings(metricsBySplit(SPEC.filter((s) => s[2] !== 'train'))), []);
});

async function cli(...args: string[]) {
  let out = '';
  let err = '';
  const io: CliIO = { out: (s) => void (out += s), err: (s) => void (err += s), isTTY: false };
  const code = await main(args, io);
  return { code, out, err };
}

test('clip-lens metrics --input with a splits array (JSON) or a split column (CSV): per split, side by side, the warning', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-splits-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = rows(SPEC);
  fs.writeFileSync(path.join(dir, 'p.json'), JSON.stringify({ classes: CLASSES, labels: r.labels, pred_probs: r.preds, splits: r.splits }));
  const csv = ['label,split,cat,dog', ...r.labels.map((l, i) => `${CLASSES[l]},${r.splits[i]},${r.preds[i].join(',')}`)].join('\n') + '\n';
  fs.writeFileSync(path.join(dir, 'p.csv'), csv);
  for (const file of ['p.json', 'p.csv']) {
    const res = await cli('metrics', '--input', path.join(dir, file));
    assert.equal(res.code, 0, res.err);
    const out = JSON.parse(res.out);
    assert.equal(out.n, 60);
    assert.deepEqual(out.classes, CLASSES, 'the split column is not a class');
    assert.deepEqual(Object.keys(out.metricsBySplit), ['train', 'test', 'val']);
    assert.equal(out.metricsBySplit.test.top1Accuracy, 0.7);
    assert.deepEqual(out.splitsSideBySide.splits, ['train', 'val', 'test']);
    assert.deepEqual(out.warnings.map((w: { class?: string }) => w.class ?? null), [null, 'dog']);
    assert.match(res.err, /^warning: top-1 accuracy is 95\.0% on train but 70\.0% on test/m);
  }
  // Without splits the output is the metrics object as before.
  fs.writeFileSync(path.join(dir, 'plain.json'), JSON.stringify({ classes: CLASSES, labels: r.labels, pred_probs: r.preds }));
  const plain = JSON.parse((await cli('metrics', '--input', path.join(dir, 'plain.json'))).out);
  assert.equal(plain.metricsBySplit, undefined);
  assert.equal(plain.warnings, undefined);
  // Bad splits: exit 2 naming the file (and the line for CSV).
  fs.writeFileSync(path.join(dir, 'short.json'), JSON.stringify({ classes: CLASSES, labels: r.labels, pred_probs: r.preds, splits: ['train'] }));
  const short = await cli('metrics', '--input', path.join(dir, 'short.json'));
  assert.equal(short.code, 2);
  assert.match(short.err, /short\.json: "splits" must be an array of 60 split names/);
  fs.writeFileSync(path.join(dir, 'empty.csv'), 'label,split,cat,dog\ncat,,0.9,0.1\n');
  const empty = await cli('metrics', '--input', path.join(dir, 'empty.csv'));
  assert.equal(empty.code, 2);
  assert.match(empty.err, /empty\.csv:2: empty split/);
});

test('the eval summary sets the splits side by side, the classes that differ most first', () => {
  const report = makeReport(CLASSES, [{ label: 'cat', pred: 'cat' }, { label: 'dog', pred: 'dog' }]);
  report.metricsBySplit = metricsBySplit();
  const text = formatSummary(report);
  assert.match(text, /Splits side by side:\n +train \(20\) +val \(20\) +test \(20\)\n +top-1 accuracy +95\.0% +85\.0% +70\.0%/);
  assert.ok(text.indexOf('recall dog') < text.indexOf('recall cat'), text);
});
