/**
 * CLI contracts of issue 12 (in-process `main`): `clip-lens probe --input FILE [--folds K] [--c C]` and
 * `clip-lens label-issues --input FILE --knn K` on the shared scikit-learn / cleanlab cases, JSON and .npy inputs,
 * bad input (exit 2, one line on stderr, nothing on stdout) and --help.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';

interface Case {
  name: string;
  kind: 'probe' | 'knn';
  c: number;
  folds: number;
  k: number;
  classes: string[];
  labels: number[];
  features: number[][];
  expected: { pred_probs: number[][]; ranked_by_self_confidence: number[] };
}
const cases = (JSON.parse(readFileSync(path.join(__dirname, '../fixtures/probe-reference/cases.json'), 'utf8')) as { cases: Case[] }).cases;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'clip-lens-probe-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s), isTTY: false });
  return { code, out, err };
}

function writeInput(name: string, data: unknown): string {
  const f = path.join(tmp, `${name}.json`);
  writeFileSync(f, JSON.stringify(data));
  return f;
}

/** A .npy file (format 1.0, little-endian, C order) as np.save writes it. */
function npy(dtype: '<f4' | '<f8' | '<i8', shape: number[], values: number[]): Buffer {
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  const size = dtype === '<f4' ? 4 : 8;
  const body = Buffer.alloc(values.length * size);
  values.forEach((v, i) => (dtype === '<f4' ? body.writeFloatLE(v, i * 4) : dtype === '<f8' ? body.writeDoubleLE(v, i * 8) : body.writeBigInt64LE(BigInt(v), i * 8)));
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

for (const c of cases.filter((x) => x.kind === 'probe')) {
  test(`probe --input ${c.name}: pred_probs within 1e-3 of cross_val_predict, metrics and labelIssues present`, async () => {
    const file = writeInput(c.name, { classes: c.classes, labels: c.labels, features: c.features });
    const r = await run(['probe', '--input', file, '--folds', String(c.folds), '--c', String(c.c)]);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out);
    assert.equal(out.pred_probs.length, c.labels.length);
    let worst = 0;
    c.expected.pred_probs.forEach((row, i) => row.forEach((p, j) => (worst = Math.max(worst, Math.abs(p - out.pred_probs[i][j])))));
    assert.ok(worst < 1e-3, `max |difference| ${worst}`);
    assert.equal(typeof out.metrics.top1Accuracy, 'number');
    assert.ok(Array.isArray(out.labelIssues));
    assert.deepEqual(out.probe.folds, c.folds);
  });
}

for (const c of cases.filter((x) => x.kind === 'knn')) {
  test(`label-issues --knn on ${c.name}: cleanlab's issues in cleanlab's order`, async () => {
    const file = writeInput(c.name, { classes: c.classes, labels: c.labels, features: c.features });
    const r = await run(['label-issues', '--input', file, '--knn', String(c.k)]);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out);
    assert.deepEqual(Object.keys(out), ['labelIssues']);
    assert.deepEqual(out.labelIssues.map((x: { index: number }) => x.index), c.expected.ranked_by_self_confidence);
  });
}

test('probe and label-issues --knn read a folder with features.npy, labels.npy, classes.json', async () => {
  const c = cases.find((x) => x.name === 'seed1-knn-a')!;
  const dir = path.join(tmp, 'npy');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'features.npy'), npy('<f8', [c.labels.length, c.features[0].length], c.features.flat()));
  writeFileSync(path.join(dir, 'labels.npy'), npy('<i8', [c.labels.length], c.labels));
  writeFileSync(path.join(dir, 'classes.json'), JSON.stringify(c.classes));
  const knn = await run(['label-issues', '--input', dir, '--knn', '10']);
  assert.equal(knn.code, 0, knn.err);
  assert.deepEqual(JSON.parse(knn.out).labelIssues.map((x: { index: number }) => x.index), c.expected.ranked_by_self_confidence);
  const probe = await run(['probe', '--input', dir]);
  assert.equal(probe.code, 0, probe.err);
  assert.equal(JSON.parse(probe.out).probe.folds, 5);
  // NaN in the .npy
  const bad = path.join(tmp, 'npy-nan');
  mkdirSync(bad);
  const values = c.features.flat();
  values[3 * c.features[0].length + 2] = NaN;
  writeFileSync(path.join(bad, 'features.npy'), npy('<f4', [c.labels.length, c.features[0].length], values));
  writeFileSync(path.join(bad, 'labels.npy'), npy('<i8', [c.labels.length], c.labels));
  writeFileSync(path.join(bad, 'classes.json'), JSON.stringify(c.classes));
  const r = await run(['probe', '--input', bad]);
  assert.equal(r.code, 2);
  assert.equal(r.out, '');
  assert.match(r.err, /^clip-lens: .*features\.npy: row 3, column 2: NaN is not a finite number\n$/);
});

test('bad input: exit 2, one line naming the problem, nothing on stdout', async () => {
  const base = { classes: ['a', 'b'], labels: [0, 1, 0, 1, 0, 1], features: [[1, 0], [0, 1], [1, 0.1], [0.1, 1], [1, 0.2], [0.2, 1]] };
  const expectations: Array<[string, unknown, string[], RegExp]> = [
    ['width', { ...base, features: [[1, 0], [0, 1, 2], [1, 0], [0, 1], [1, 0], [0, 1]] }, ['probe'], /features\[1\] has 3 values, expected 2/],
    ['nan', { ...base, features: [[1, 0], [0, 1], [1, 'NaN'], [0, 1], [1, 0], [0, 1]] }, ['probe'], /features\[2\]\[1\] is "NaN", not a finite number/],
    ['range', { ...base, labels: [0, 1, 0, 1, 0, 7] }, ['probe'], /labels\[5\]: label 7 is neither a class index/],
    ['one-class', { ...base, labels: [1, 1, 1, 1, 1, 1] }, ['probe'], /only one class/],
    ['folds', base, ['probe', '--folds', '4'], /4 folds but no class has that many samples \(largest class: 3\)/],
    ['knn-k', base, ['label-issues', '--knn', '6'], /k = 6 neighbours need more than 6 samples, found 6/],
    ['knn-one-class', { ...base, labels: [0, 0, 0, 0, 0, 0] }, ['label-issues', '--knn', '2'], /only one class/],
  ];
  for (const [name, data, args, message] of expectations) {
    const file = writeInput(`bad-${name}`, data);
    const r = await run([...args, '--input', file]);
    assert.equal(r.code, 2, name);
    assert.equal(r.out, '', name);
    assert.match(r.err, message, name);
    assert.ok(r.err.includes(file), `${name}: names the file`);
    assert.equal(r.err.split('\n').length, 2, `${name}: one line`);
  }
  for (const args of [['probe', '--c=-1'], ['probe', '--folds', '1'], ['label-issues', '--knn', 'x']]) {
    const r = await run([...args, '--input', writeInput('ok', base)]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /expects/);
  }
});

test('--help on probe and label-issues --knn', async () => {
  const p = await run(['probe', '--help']);
  assert.equal(p.code, 0);
  assert.match(p.out, /clip-lens probe --input FILE \[--folds K\] \[--c C\]/);
  const k = await run(['label-issues', '--knn', '10', '--help']);
  assert.equal(k.code, 0);
  assert.match(k.out, /--knn K/);
});
