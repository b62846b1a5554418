/**
 * Text search: `clip-lens search` prints {"path","score"} lines best first; after an evaluation every image comes
 * from the embedding cache (none inferred twice); unreadable images are skipped and named once; bad input exits 2
 * with one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import type { CliIO } from '../../src/cli/io';
import { evaluateDataset } from '../../src/core/evaluate';
import { ClipModel } from '../../src/core/runtime';
import { searchDataset } from '../../src/core/search';
import { selectionScores } from '../../src/core/searchSelection';
import { ClipLensError } from '../../src/core/errors';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

function captured(): CliIO & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (s: string) => {
      io.stdout += s;
    },
    err: (s: string) => {
      io.stderr += s;
    },
    isTTY: false,
  };
  return io as CliIO & { stdout: string; stderr: string };
}

function smallDataset(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-search-'));
  for (const cls of ['blue_circle', 'red_star', 'yellow_square', 'green_triangle']) {
    fs.mkdirSync(path.join(dir, cls));
    for (const f of fs.readdirSync(path.join(EXAMPLE, cls)).sort().slice(0, 5)) fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, cls, f));
  }
  return dir;
}

test('search after eval: every image from the cache, results ranked best first, the query class on top', async (t) => {
  const dir = smallDataset();
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-search-cache-'));
  t.after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const report = await evaluateDataset(dir, { model, cacheDir: cache });
  const n = report.samples!.length;

  const r = await searchDataset(dir, 'a red star', { model, cacheDir: cache, top: n });
  assert.equal(r.imagesComputed, 0, 'no image inferred twice');
  assert.equal(r.imagesFromCache, n);
  assert.equal(r.hits.length, n);
  for (let i = 1; i < r.hits.length; i++) assert.ok(r.hits[i - 1].score >= r.hits[i].score);
  assert.deepEqual(new Set(r.hits.map((h) => h.path)), new Set(report.samples!.map((s) => s.path)));
  assert.deepEqual(r.hits.slice(0, 5).map((h) => h.label), ['red_star', 'red_star', 'red_star', 'red_star', 'red_star']);
  const blue = await searchDataset(dir, 'a blue circle', { model, cacheDir: cache, top: 3 });
  assert.equal(blue.hits.length, 3);
  assert.equal(blue.hits[0].label, 'blue_circle');

  // The CLI: exactly {"path","score"} per line, --top honoured, the same order as the core answer.
  const io = captured();
  const code = await main(['search', dir, '--model', MODEL, '--cache', cache, '--top', '4', 'a red star'], io);
  assert.equal(code, 0, io.stderr);
  const lines = io.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  for (const l of lines) assert.deepEqual(Object.keys(l), ['path', 'score']);
  assert.deepEqual(lines.map((l) => l.path), r.hits.slice(0, 4).map((h) => h.path));
  for (const [i, l] of lines.entries()) assert.ok(Math.abs(l.score - r.hits[i].score) < 1e-6);
});

test('search without a cache infers each image once; unreadable images are skipped and named once', async (t) => {
  const dir = smallDataset();
  fs.writeFileSync(path.join(dir, 'red_star', 'broken.png'), 'not an image');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const r = await searchDataset(dir, 'a yellow square', { model, cacheDir: null, top: 100 });
  assert.equal(r.imagesComputed, 20);
  assert.equal(r.hits.length, 20);
  assert.deepEqual(r.failed.map((f) => f.path), ['red_star/broken.png']);
  await assert.rejects(searchDataset(dir, '   ', { model, cacheDir: null }), ClipLensError);
  await assert.rejects(searchDataset(path.join(dir, 'nope'), 'x', { model, cacheDir: null }), ClipLensError);

  const io = captured();
  assert.equal(await main(['search', dir, '--model', MODEL, '--no-cache', '--top', '2', 'a yellow square'], io), 0);
  assert.equal(io.stdout.trim().split('\n').length, 2);
  assert.equal(io.stderr.trim().split('\n').filter((l) => l.includes('broken.png')).length, 1);
});

test('search: bad input exits 2 with one line on stderr', async () => {
  for (const args of [
    ['search', EXAMPLE],
    ['search', EXAMPLE, '--model', MODEL, '--top', '0', 'a cat'],
    ['search', EXAMPLE, '--model', MODEL, '--top', 'x', 'a cat'],
    ['search', EXAMPLE, '--model', MODEL, ''],
    ['search', path.join(EXAMPLE, 'missing'), '--model', MODEL, 'a cat'],
    ['search', EXAMPLE, '--model', MODEL, '--bogus', 'a cat'],
    ['search', EXAMPLE, '--model', MODEL, '--cache', '/tmp/x', '--no-cache', 'a cat'],
  ]) {
    const io = captured();
    assert.equal(await main(args, io), 2, args.join(' '));
    assert.equal(io.stdout, '');
    assert.equal(io.stderr.trim().split('\n').length, 1, io.stderr);
    assert.match(io.stderr, /^clip-lens: /);
  }
});

test('"select all above this score": precision and recall of the selection against a class', async () => {
  const hits = [
    { path: 'a', score: 0.9 },
    { path: 'b', score: 0.8 },
    { path: 'c', score: 0.8 },
    { path: 'd', score: 0.5 },
  ];
  const labels: Record<string, string> = { a: 'cat', b: 'dog', c: 'cat', d: 'cat' };
  const labelOf = (p: string) => labels[p];
  assert.deepEqual(selectionScores(hits, labelOf, 'cat', 5, 0), { selected: 1, truePositives: 1, precision: 1, recall: 0.2, threshold: 0.9 });
  // Ties enter together: selecting at b selects c too.
  assert.deepEqual(selectionScores(hits, labelOf, 'cat', 5, 1), { selected: 3, truePositives: 2, precision: 2 / 3, recall: 0.4, threshold: 0.8 });
  assert.deepEqual(selectionScores(hits, labelOf, 'dog', 0, 3), { selected: 4, truePositives: 1, precision: 0.25, recall: 0, threshold: 0.5 });
  assert.throws(() => selectionScores(hits, labelOf, 'cat', 5, 4), RangeError);
});
