import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProbabilityMatrix, readPredictionsFile, splitCsvLine, checkProbabilityRow, groupRowsByLabel } from '../../src/core/probabilities';
import { ClipLensError } from '../../src/core/errors';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'clip-lens-probs-'));
const sklearnDir = path.join(__dirname, '../fixtures/sklearn');

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, text);
  return file;
}

/** Asserts that reading `file` fails with a ClipLensError of `code` naming the file (and `line`), message matching re. */
async function rejects(file: string, code: string, re: RegExp, line?: number): Promise<void> {
  await assert.rejects(readPredictionsFile(file), (e: unknown) => {
    assert.ok(e instanceof ClipLensError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.file, file);
    assert.equal(e.line, line);
    assert.ok(e.message.startsWith(line === undefined ? `${file}: ` : `${file}:${line}: `), e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('ProbabilityMatrix stores rows across chunks and returns float32 views', () => {
  const m = new ProbabilityMatrix(3, { chunkFloats: 7 }); // 2 rows per chunk
  assert.equal(m.rowsPerChunk, 2);
  const rows = Array.from({ length: 200 }, (_, i) => [i / 1000, 0.1, 1 - i / 1000 - 0.1]);
  for (const r of rows) m.push(r);
  assert.equal(m.length, 200);
  assert.equal(m.numClasses, 3);
  for (let i = 0; i < 200; i++) assert.deepEqual(Array.from(m.row(i)), Array.from(Float32Array.from(rows[i])));
  assert.ok(m.row(5) instanceof Float32Array);
  assert.equal(m.chunkOf(5)[m.offsetOf(5)], Math.fround(0.005));
  assert.throws(() => m.row(200), RangeError);
});

test('ProbabilityMatrix grows its first chunk and keeps earlier views valid', () => {
  const m = new ProbabilityMatrix(2);
  m.push([0.25, 0.75]);
  const first = m.row(0);
  for (let i = 0; i < 1000; i++) m.push([0.5, 0.5]);
  assert.deepEqual(Array.from(first), [0.25, 0.75]);
  assert.deepEqual(Array.from(m.row(0)), [0.25, 0.75]);
  assert.deepEqual(Array.from(m.row(1000)), [0.5, 0.5]);
});

test('ProbabilityMatrix keeps its chunks in shared memory; shared()/fromShared rebuild it without a copy', () => {
  const m = new ProbabilityMatrix(3, { chunkFloats: 300 }); // 100 rows per chunk
  for (let i = 0; i < 250; i++) m.push([i / 1000, 0.5, 0.25]);
  assert.equal(m.inSharedMemory, true);
  assert.ok(m.storage().every((c) => c.buffer instanceof SharedArrayBuffer));
  // The first chunk grows by doubling; later chunks are allocated whole (no copies while a large matrix grows).
  assert.deepEqual(m.storage().map((c) => c.length), [300, 300, 300]);
  const copy = ProbabilityMatrix.fromShared(structuredClone(m.shared()));
  assert.equal(copy.length, 250);
  assert.equal(copy.rowsPerChunk, 100);
  for (const i of [0, 99, 100, 249]) assert.deepEqual(Array.from(copy.row(i)), Array.from(m.row(i)));
  assert.ok(copy.storage().every((c, q) => c.buffer instanceof SharedArrayBuffer && c.length === m.storage()[q].length));
  // Same memory: a write through one is seen through the other.
  copy.storage()[2][0] = 0.125;
  assert.equal(m.row(200)[0], 0.125);
});

test('ProbabilityMatrix rejects bad rows and stores -0 as 0', () => {
  const m = ProbabilityMatrix.fromRows([[-0, 1]]);
  assert.ok(Object.is(m.row(0)[0], 0));
  assert.throws(() => m.push([0.5]), (e: unknown) => e instanceof ClipLensError && /expected 2 probabilities, found 1/.test(e.message));
  assert.throws(() => m.push([NaN, 1]), ClipLensError);
  assert.throws(() => m.push([-0.1, 1]), ClipLensError);
  assert.throws(() => m.push([Infinity, 1]), ClipLensError);
  assert.equal(m.length, 1);
  assert.equal(ProbabilityMatrix.fromRows([], 4).numClasses, 4);
  assert.throws(() => ProbabilityMatrix.fromRows([]), RangeError);
});

test('argmax takes the lowest index on ties; groupRowsByLabel keeps row order', () => {
  const m = ProbabilityMatrix.fromRows([
    [0.2, 0.4, 0.4],
    [0.5, 0.25, 0.25],
    [0.1, 0.1, 0.8],
  ]);
  assert.deepEqual([0, 1, 2].map((i) => m.argmax(i)), [1, 0, 2]);
  const g = groupRowsByLabel([2, 0, 2, 1, 0], 4);
  assert.deepEqual(Array.from(g.start), [0, 2, 3, 5, 5]);
  assert.deepEqual(Array.from(g.rows), [1, 4, 3, 0, 2]);
  const sub = groupRowsByLabel([2, 0, 2, 1, 0], 4, [4, 2, 0]);
  assert.deepEqual(Array.from(sub.start), [0, 1, 1, 3, 3]);
  assert.deepEqual(Array.from(sub.rows), [4, 2, 0]);
});

test('checkProbabilityRow: sum within 0.01 of 1, values in [0, 1]', () => {
  assert.equal(checkProbabilityRow([0.2, 0.8], 2), undefined);
  assert.equal(checkProbabilityRow([0.2, 0.805], 2), undefined);
  assert.match(checkProbabilityRow([2.0, -1.0], 2) ?? '', /outside \[0, 1\]/);
  assert.match(checkProbabilityRow([3.1, 0.2], 2) ?? '', /outside/);
  assert.match(checkProbabilityRow([0.3, 0.3], 2) ?? '', /sum to 0.6.*logits/);
});

test('reads the JSON format; labels may be indices or class names', async () => {
  const file = write('ok.json', JSON.stringify({ classes: ['cat', 'dog'], labels: [0, 'dog', 1], pred_probs: [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]] }));
  const p = await readPredictionsFile(file);
  assert.deepEqual(p.classes, ['cat', 'dog']);
  assert.deepEqual(p.labels, [0, 1, 1]);
  assert.equal(p.probs.length, 3);
  assert.deepEqual(Array.from(p.probs.row(1)), [Math.fround(0.3), Math.fround(0.7)]);
});

test('JSON errors name the file and the entry', async () => {
  // V8 reports a position for most syntax errors; the line is computed from it.
  await rejects(write('syntax.json', '{\n"classes": ["a"],\n"labels": [0]\n"x": 1}'), 'predictions-bad-json', /not valid JSON: Expected ','/, 4);
  const base = { classes: ['a', 'b'], labels: [0, 1], pred_probs: [[0.5, 0.5], [0.5, 0.5]] };
  const bad = (name: string, patch: object) => write(name, JSON.stringify({ ...base, ...patch }));
  await rejects(bad('len.json', { pred_probs: [[0.5, 0.5], [1]] }), 'predictions-bad-row', /pred_probs\[1\]: expected 2 probabilities, found 1/);
  await rejects(bad('sum.json', { pred_probs: [[0.5, 0.5], [2.5, 1.5]] }), 'predictions-bad-row', /pred_probs\[1\]: probability of class 0 is 2.5/);
  await rejects(bad('logits.json', { pred_probs: [[0.5, 0.5], [0.1, 0.2]] }), 'predictions-bad-row', /pred_probs\[1\]: probabilities sum to 0.3/);
  await rejects(bad('label.json', { labels: [0, 2] }), 'predictions-bad-label', /labels\[1\]: label 2 is neither a class index in \[0, 1\] nor a class name/);
  await rejects(bad('name.json', { labels: [0, 'zebra'] }), 'predictions-bad-label', /labels\[1\]: label "zebra"/);
  await rejects(bad('count.json', { labels: [0] }), 'predictions-bad-field', /"labels" has 1 entries but "pred_probs" has 2 rows/);
  await rejects(bad('dup.json', { classes: ['a', 'a'] }), 'predictions-bad-field', /class 1 'a' is a duplicate/);
  await rejects(write('array.json', '[1, 2]'), 'predictions-bad-field', /expected an object/);
  await rejects(path.join(tmp, 'missing.json'), 'predictions-read-failed', /cannot read predictions/);
  await rejects(write('preds.txt', ''), 'predictions-unknown-format', /use .json, .csv/);
});

test('reads the CSV format: header label,<classes>; quoted names; label by name or index', async () => {
  const file = write('ok.csv', '\uFEFFlabel,cat,"dog, big"\r\ncat,0.9,0.1\n\n1,0.2,0.8\n"dog, big",0.4,0.6\n');
  const p = await readPredictionsFile(file);
  assert.deepEqual(p.classes, ['cat', 'dog, big']);
  assert.deepEqual(p.labels, [0, 1, 1]);
  assert.deepEqual(Array.from(p.probs.row(2)), [Math.fround(0.4), Math.fround(0.6)]);
  assert.deepEqual(splitCsvLine('a,"b ""c""",,d'), ['a', 'b "c"', '', 'd']);
});

test('CSV errors name the file and the 1-based line', async () => {
  await rejects(write('header.csv', 'cls,a,b\n'), 'predictions-bad-header', /header must be label/, 1);
  await rejects(write('fields.csv', 'label,a,b\na,0.5,0.5\nb,0.5\n'), 'predictions-bad-row', /expected 3 fields/, 3);
  await rejects(write('value.csv', 'label,a,b\na,0.5,0.5\n\nb,x,0.5\n'), 'predictions-bad-row', /class 0 is NaN/, 4);
  await rejects(write('sum.csv', 'label,a,b\na,0.9,0.9\n'), 'predictions-bad-row', /sum to 1.8/, 2);
  await rejects(write('lab.csv', 'label,a,b\nc,0.5,0.5\n'), 'predictions-bad-label', /label "c"/, 2);
  await rejects(write('dupe.csv', 'label,a,a\n'), 'predictions-bad-field', /duplicate/, 1);
  await rejects(write('empty.csv', '\n'), 'predictions-bad-header', /empty file/);
});

test('reads .npy directories written by numpy (float32 + int64, float64 + int32) like their JSON twins', async () => {
  for (const name of ['balanced', 'k-edge']) {
    const fx = JSON.parse(readFileSync(path.join(sklearnDir, `${name}.json`), 'utf8')) as { classes: string[]; labels: number[]; pred_probs: number[][] };
    const p = await readPredictionsFile(path.join(sklearnDir, `${name}-npy`));
    assert.deepEqual(p.classes, fx.classes);
    assert.deepEqual(p.labels, fx.labels);
    assert.equal(p.probs.length, fx.pred_probs.length);
    fx.pred_probs.forEach((row, i) => assert.deepEqual(Array.from(p.probs.row(i)), row));
  }
});

test('.npy errors name the file', async () => {
  const dir = path.join(tmp, 'npy');
  mkdirSync(dir);
  const src = path.join(sklearnDir, 'k-edge-npy');
  await rejects(dir, 'predictions-read-failed', /classes.json/);
  writeFileSync(path.join(dir, 'classes.txt'), 'w\nx\ny\n'); // 3 classes, but the arrays have 4 columns
  copyFileSync(path.join(src, 'labels.npy'), path.join(dir, 'labels.npy'));
  copyFileSync(path.join(src, 'pred_probs.npy'), path.join(dir, 'pred_probs.npy'));
  await assert.rejects(readPredictionsFile(dir), (e: unknown) => e instanceof ClipLensError && e.file === path.join(dir, 'labels.npy') && /label 3/.test(e.message));
  writeFileSync(path.join(dir, 'classes.txt'), 'w\nx\ny\nz\nextra\n');
  await assert.rejects(readPredictionsFile(dir), (e: unknown) => e instanceof ClipLensError && e.file === path.join(dir, 'pred_probs.npy') && /shape \(12, 5\)/.test(e.message));
  writeFileSync(path.join(dir, 'pred_probs.npy'), 'not numpy');
  writeFileSync(path.join(dir, 'classes.txt'), 'w\nx\ny\nz\n');
  await assert.rejects(readPredictionsFile(dir), (e: unknown) => e instanceof ClipLensError && /bad magic/.test(e.message));
});
