/**
 * Regression tests for hostile or faulty input (issue 18): prototype keys, colliding class names, CSV rows that must
 * not vanish, non-regular files, symlinks leaving the root, a cache that cannot be written or is killed mid-run.
 * End-to-end cases run the built CLI (dist/cli.js, built by `npm test`) with the fixture model on copies of
 * examples/shapes in a temporary folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { evaluateGate, hasThresholds } from '../../src/core/gate';
import { computeMetricsBySplit } from '../../src/core/metrics';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import type { EvalReport } from '../../src/core/report';
import { classNameVariants, promptCollisions, resolveTemplates } from '../../src/core/prompts';
import { readDataset } from '../../src/core/dataset';
import { invalidUtf8Lines, parseLabelFile } from '../../src/core/labelFile';
import type { Dataset } from '../../src/core/types';
import { EmbeddingCache } from '../../src/core/embeddingCache';
import { evaluateDataset, openImageCache } from '../../src/core/evaluate';
import { ClipModel } from '../../src/core/runtime';
import { FILE_LIMITS, FileRefusedError, readRegularFile } from '../../src/core/fileSystem';
import { ClipLensError } from '../../src/core/errors';
import { parseProjectConfig, readProjectConfig } from '../../src/core/projectConfig';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: ROOT, maxBuffer: 64 << 20, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function tempDir(t: { after: (fn: () => void) => void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `clip-lens-${prefix}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of some example classes under `dir`, each renamed as given (`{ red_circle: '__proto__' }`). */
function copyClasses(dir: string, classes: Record<string, string>): void {
  for (const [from, to] of Object.entries(classes)) fs.cpSync(path.join(EXAMPLE, from), path.join(dir, to), { recursive: true });
}

// ---------------------------------------------------------------------------------------------------------------------
// Prototype keys

test('config: a class named __proto__ in gate.classes and prompts is kept as a key', () => {
  const { config, problems } = parseProjectConfig(
    '{ "prompts": { "__proto__": "proto shape", "constructor": "x" }, "gate": { "classes": { "__proto__": { "minRecall": 0.9 } } } }',
    '.clip-lens.json',
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(Object.keys(config.gate!.classes!), ['__proto__']);
  assert.equal(Object.getPrototypeOf(config.gate!.classes), Object.prototype, 'the prototype is not replaced');
  assert.equal(config.gate!.classes!['__proto__']!.minRecall, 0.9);
  assert.deepEqual(Object.keys(config.prompts!), ['__proto__', 'constructor']);
  assert.ok(hasThresholds(config.gate));
});

test('gate: a __proto__ class threshold is checked, and an unknown "constructor" class is a config failure', () => {
  const report = {
    dataset: { classes: ['__proto__', 'b'], counts: { perClass: { __proto__: 4, b: 4 } } },
    metrics: {
      n: 8,
      top1Accuracy: 0.625,
      balancedAccuracy: 0.625,
      recallAtK: { '1': 0.625 },
      perClass: [
        { class: '__proto__', support: 4, predicted: 1, precision: 1, recall: 0.25, f1: 0.4, recallAtK: { '1': 0.25 }, averagePrecision: 0.5 },
        { class: 'b', support: 4, predicted: 7, precision: 4 / 7, recall: 1, f1: 0.7, recallAtK: { '1': 1 }, averagePrecision: 0.6 },
      ],
    },
    samples: [],
    labelIssues: [],
    warnings: [],
  } as unknown as EvalReport;
  const { config } = parseProjectConfig('{ "gate": { "classes": { "__proto__": { "minRecall": 0.5 } } } }', 'c.json');
  const result = evaluateGate(report, config.gate!);
  const proto = result.checks.find((c) => c.class === '__proto__');
  assert.ok(proto, 'the __proto__ threshold is a check');
  assert.equal(proto.passed, false);
  assert.equal(proto.actual, 0.25);
  const bad = parseProjectConfig('{ "gate": { "classes": { "constructor": { "minRecall": 0.5 } } } }', 'c.json').config;
  const r2 = evaluateGate(report, bad.gate!);
  assert.equal(r2.checks.filter((c) => c.kind === 'config' && c.class === 'constructor').length, 1);
  assert.ok(r2.checks.every((c) => c.class !== 'b' || c.kind !== 'classRecall'), 'constructor is not inherited as a threshold');
});

test('metrics by split: a split named __proto__ is a key', () => {
  const probs = new ProbabilityMatrix(2);
  probs.push(new Float32Array([0.9, 0.1]));
  probs.push(new Float32Array([0.2, 0.8]));
  const out = computeMetricsBySplit({ classes: ['a', 'b'], labels: [0, 1], probs }, ['__proto__', 'toString']);
  assert.deepEqual(Object.keys(out).sort(), ['__proto__', 'toString']);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.equal(out['__proto__']!.n, 1);
});

test('check end to end: a class named __proto__ with a gate.classes threshold fails the gate (exit 1)', async (t) => {
  assert.ok(fs.existsSync(CLI), 'dist/cli.js missing: run `npm run build` (npm test does)');
  const dir = tempDir(t, 'proto');
  const data = path.join(dir, 'data');
  copyClasses(data, { red_circle: '__proto__', blue_square: 'blue_square', green_star: 'green_star', yellow_triangle: 'yellow_triangle' });
  fs.writeFileSync(path.join(data, '.clip-lens.json'), '{ "gate": { "classes": { "__proto__": { "minRecall": 0.99 } } } }\n');
  const r = await cli(['check', data, '--model', MODEL, '--cache', path.join(dir, 'cache'), '--format', 'json']);
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /nothing to check/i);
  const out = JSON.parse(r.stdout) as { datasets: { checks: { class?: string; passed: boolean; configKey: string }[] }[] };
  const checks = out.datasets[0]!.checks.filter((c) => c.class === '__proto__');
  assert.equal(checks.length, 1);
  assert.equal(checks[0]!.passed, false);
  assert.equal(checks[0]!.configKey, 'gate.classes.__proto__.minRecall');
});

// ---------------------------------------------------------------------------------------------------------------------
// Class names the model cannot tell apart

test('promptCollisions: case and "_" variants collide, the larger class is kept; hyphen variants are only name variants', () => {
  const t = ['a photo of a {}.'];
  const counts = new Map([['RED_CIRCLE', 1], ['red_circle', 44], ['Red Circle', 2], ['blue', 3]]);
  const c = promptCollisions(['RED_CIRCLE', 'Red Circle', 'blue', 'red-circle', 'red_circle'], t, undefined, counts);
  assert.deepEqual(c, [{ kept: 'red_circle', merged: ['RED_CIRCLE', 'Red Circle'], prompt: 'a photo of a red circle.' }]);
  // An override that gives one of them its own text removes the collision.
  assert.deepEqual(promptCollisions(['RED_CIRCLE', 'red_circle'], t, { RED_CIRCLE: 'crimson ring' }), []);
  assert.deepEqual(classNameVariants(['blue', 'red-circle', 'red_circle']), [['red-circle', 'red_circle']]);
});

test('eval end to end: one stray image in RED_CIRCLE is merged into red_circle with a problem and a warning, metrics unchanged', async (t) => {
  const dir = tempDir(t, 'collide');
  const data = path.join(dir, 'shapes');
  fs.cpSync(EXAMPLE, data, { recursive: true });
  const stray = fs.readdirSync(path.join(data, 'red_circle')).sort()[0]!;
  fs.mkdirSync(path.join(data, 'RED_CIRCLE'));
  fs.renameSync(path.join(data, 'red_circle', stray), path.join(data, 'RED_CIRCLE', stray));
  const cache = path.join(dir, 'cache');
  const base = await cli(['eval', EXAMPLE, '--model', MODEL, '--cache', cache, '--json', path.join(dir, 'base.json')]);
  assert.equal(base.code, 0, base.stderr);
  const r = await cli(['eval', data, '--model', MODEL, '--cache', cache, '--json', path.join(dir, 'r.json')]);
  assert.equal(r.code, 0, r.stderr);
  const before = JSON.parse(fs.readFileSync(path.join(dir, 'base.json'), 'utf8')) as EvalReport;
  const after = JSON.parse(fs.readFileSync(path.join(dir, 'r.json'), 'utf8')) as EvalReport;
  assert.ok(!after.dataset.classes.includes('RED_CIRCLE'));
  assert.equal(after.metrics!.top1Accuracy, before.metrics!.top1Accuracy);
  const recall = (rep: EvalReport) => rep.metrics!.perClass.find((c) => c.class === 'red_circle')!.recall;
  assert.equal(recall(after), recall(before));
  const problem = after.errors.find((e) => e.code === 'class-name-collision');
  assert.ok(problem, 'a class-name-collision problem');
  assert.equal(problem.file, 'RED_CIRCLE');
  assert.match(problem.message, /"RED_CIRCLE" \(1 image\).*same prompt as "red_circle"/);
  const w = after.warnings.find((x) => x.kind === 'class-collision');
  assert.ok(w, 'a class-collision warning');
  assert.equal(w.class, 'red_circle');
  assert.match(r.stdout, /class-collision/);
  const sample = after.samples!.find((s) => s.path === `RED_CIRCLE/${stray}`)!;
  assert.equal(sample.label, 'red_circle');
});

// ---------------------------------------------------------------------------------------------------------------------
// CSV/TSV: no row lost silently

/** A dataset folder with empty `img_<i>.jpg` files (readDataset only checks that images exist) and a labels.csv. */
function csvDataset(dir: string, rows: number, csv: string | Buffer): string {
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  for (let i = 0; i < rows; i++) fs.writeFileSync(path.join(data, `img_${i}.jpg`), '');
  fs.writeFileSync(path.join(data, 'labels.csv'), csv);
  return data;
}

/** Every data line (2..n) of a label file is a sample or a problem on that line. */
function assertEveryLineAccounted(ds: Dataset, lines: number): void {
  const seen = new Set<number>();
  for (const s of ds.samples) seen.add(s.source!.line);
  for (const p of ds.problems) if (p.line !== undefined) seen.add(p.line);
  const missing: number[] = [];
  for (let l = 2; l <= lines; l++) if (!seen.has(l)) missing.push(l);
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} lines neither read nor reported`);
}

test('CSV: a stray quote loses no rows: 87 good rows are read, the bad line is a problem naming it', async (t) => {
  const dir = tempDir(t, 'stray');
  const rows = Array.from({ length: 88 }, (_, i) => `img_${i}.jpg,${i % 2 ? 'cat' : 'dog'}`);
  rows[20] = 'img_20.jpg,"dog'; // a stray quote: it used to swallow the following lines into one field
  rows[30] = 'img_30.jpg,cat"'; // the closing half of it
  const data = csvDataset(dir, 88, ['image,label', ...rows].join('\n') + '\n');
  const ds = await readDataset(data);
  assert.equal(ds.samples.length, 86);
  assert.deepEqual(ds.problems.map((p) => [p.code, p.line]), [['label-file-bad-line', 22], ['label-file-bad-line', 32]]);
  assert.match(ds.problems[0]!.message, /stray "\? A quoted field opens here and closes only on line 32/);
  assert.match(ds.problems[1]!.message, /stray "/);
  assert.deepEqual(ds.classes, ['cat', 'dog']);
  assertEveryLineAccounted(ds, 89);
});

test('CSV: 3,000 rows with a stray quote every 100 rows and an unterminated quote at the end: every line accounted for', async (t) => {
  const dir = tempDir(t, 'rows');
  const rows = Array.from({ length: 3000 }, (_, i) => `img_${i}.jpg,${['a', 'b', 'c'][i % 3]}`);
  for (let i = 50; i < 3000; i += 100) rows[i] = `img_${i}.jpg,"${['a', 'b', 'c'][i % 3]}`;
  rows[2990] = `"img_2990.jpg,a`;
  const data = csvDataset(dir, 3000, ['image,label', ...rows].join('\r\n'));
  const ds = await readDataset(data);
  assert.equal(ds.problems.length, 31);
  assert.equal(ds.samples.length, 3000 - 31);
  assertEveryLineAccounted(ds, 3001);
  assert.deepEqual(ds.classes, ['a', 'b', 'c']);
});

test('CSV: a 2 MB line is a problem with a short message, skipped unread; the rows around it are read', async (t) => {
  const dir = tempDir(t, 'long');
  const long = `img_1.jpg,${'x'.repeat(2 * 1024 * 1024)}`;
  const data = csvDataset(dir, 3, ['image,label', 'img_0.jpg,cat', long, 'img_2.jpg,dog'].join('\n'));
  const ds = await readDataset(data);
  assert.deepEqual(ds.samples.map((s) => s.path), ['img_0.jpg', 'img_2.jpg']);
  assert.equal(ds.problems.length, 1);
  assert.equal(ds.problems[0]!.line, 3);
  assert.match(ds.problems[0]!.message, /2,097,162 characters long, over the limit of 65,536/);
  assert.ok(ds.problems[0]!.message.length < 200);
  // A long value under the line limit is cut in messages.
  const path1 = `${'d/'.repeat(20_000)}x.jpg`;
  const r = parseLabelFile(`image,label\n../${path1},cat\n`, 'csv', 'l.csv');
  assert.equal(r.entries.length, 1);
  const ds2 = await readDataset(csvDataset(path.join(dir, 'b'), 0, `image,label\n../${path1},cat\n`));
  assert.equal(ds2.problems[0]!.code, 'path-refused');
  assert.ok(ds2.problems[0]!.message.length < 250, ds2.problems[0]!.message.slice(0, 300));
});

test('CSV: invalid UTF-8 in a label is a problem on its line, not a class with U+FFFD; a UTF-16 file is refused', async (t) => {
  const dir = tempDir(t, 'utf8');
  const csv = Buffer.concat([
    Buffer.from('image,label\nimg_0.jpg,red_circle\nimg_1.jpg,red'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('circle\r\nimg_2.jpg,caf\u00e9\n'),
  ]);
  const ds = await readDataset(csvDataset(dir, 3, csv));
  assert.deepEqual(ds.classes, ['café', 'red_circle']);
  assert.deepEqual(ds.problems.map((p) => [p.code, p.line]), [['label-file-bad-line', 3]]);
  assert.match(ds.problems[0]!.message, /invalid UTF-8/);
  assert.deepEqual(invalidUtf8Lines(csv, 'csv'), new Set([3]));
  const jsonl = Buffer.concat([Buffer.from('{"file_name":"a.jpg","label":"x'), Buffer.from([0xc3]), Buffer.from('"}\n{"file_name":"b.jpg","label":"y"}\n')]);
  assert.deepEqual([...invalidUtf8Lines(jsonl, 'jsonl')], [1]);
  const utf16 = path.join(dir, 'u16');
  await assert.rejects(readDataset(csvDataset(utf16, 1, Buffer.from('\ufeffimage,label\nimg_0.jpg,a\n', 'utf16le'))), /UTF-16/);
});

test('eval: a label file whose every line is bad names those problems in its one-line error, not just "found 0 classes"', async (t) => {
  const dir = tempDir(t, 'allbad');
  const data = csvDataset(dir, 3, 'image,label\n"img_0.jpg,a\nimg_1.jpg\nimg_2.jpg,"b\n');
  const r = await cli(['eval', data, '--model', MODEL, '--cache', path.join(dir, 'cache')]);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /found 0 classes.*3 problems in the dataset: line 2: a stray "\? .*line 3: expected 2 fields.*line 4: unbalanced quote/);
});

test('eval: case-only label variants in a CSV are problems on their lines and evaluated as one class', async (t) => {
  const dir = tempDir(t, 'case');
  const data = path.join(dir, 'data');
  copyClasses(data, { red_circle: 'red_circle', blue_square: 'blue_square' });
  const rows = ['image,label'];
  for (const c of ['red_circle', 'blue_square']) {
    fs.readdirSync(path.join(data, c)).sort().forEach((f, i) => rows.push(`${c}/${f},${c === 'red_circle' && i < 2 ? 'Red_Circle' : c}`));
  }
  fs.writeFileSync(path.join(data, 'labels.csv'), rows.join('\n') + '\n');
  const out = path.join(dir, 'r.json');
  const r = await cli(['eval', data, '--model', MODEL, '--cache', path.join(dir, 'cache'), '--json', out]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport;
  assert.deepEqual(report.dataset.classes, ['blue_square', 'red_circle']);
  assert.deepEqual(report.errors.filter((e) => e.code === 'class-name-collision').map((e) => [e.file, e.line]), [['labels.csv', 2], ['labels.csv', 3]]);
});

// ---------------------------------------------------------------------------------------------------------------------
// The cache never breaks a run

/** Makes writes of cache temporary files fail like a full disk (half the bytes written, then ENOSPC) until restored. */
function failCacheWrites(): () => void {
  const original = fs.promises.open;
  fs.promises.open = (async (file: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
    const fh = await original(file, flags, mode);
    if (!String(file).includes('.tmp-')) return fh;
    fh.writeFile = (async (data: Uint8Array) => {
      await fh.write(data.subarray(0, data.length >> 1));
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }) as typeof fh.writeFile;
    return fh;
  }) as typeof fs.promises.open;
  return () => {
    fs.promises.open = original;
  };
}

test('cache: a full disk stops writing with writeError, leaves no .tmp file, and the cache still opens', async (t) => {
  const root = tempDir(t, 'full');
  const key = (i: number) => Buffer.alloc(32, i);
  const first = await EmbeddingCache.open(root, 'ns');
  first.put(key(1), new Float32Array([1, 2]));
  assert.equal(await first.flush(), true);
  const restore = failCacheWrites();
  try {
    first.put(key(2), new Float32Array([3, 4]));
    assert.equal(await first.flush(), false);
  } finally {
    restore();
  }
  assert.match(first.writeError ?? '', /ENOSPC/);
  first.put(key(3), new Float32Array([5, 6]));
  assert.equal(await first.flush(), false, 'writing stays off for the run');
  assert.deepEqual(fs.readdirSync(first.folder).filter((f) => f.includes('.tmp')), []);
  const again = await EmbeddingCache.open(root, 'ns');
  assert.deepEqual(again.stats.discarded, []);
  assert.ok(again.has(key(1)));
  assert.ok(!again.has(key(2)));
});

test('cache: stale .tmp files of dead processes are removed; FIFOs and folders named seg-*.bin are reported, not read', async (t) => {
  const root = tempDir(t, 'fifo');
  const c = await EmbeddingCache.open(root, 'ns');
  c.put(Buffer.alloc(32, 1), new Float32Array([1, 2]));
  await c.flush();
  const deadPid = 2 ** 22 + 12345; // above Linux's pid_max default range: no such process
  fs.writeFileSync(path.join(c.folder, `seg-x.bin.tmp-${deadPid}`), 'partial');
  fs.mkdirSync(path.join(c.folder, 'seg-dir.bin'));
  const fifo = path.join(c.folder, 'seg-fifo.bin');
  const made = await run('mkfifo', [fifo]).then(() => true, () => false);
  const again = await EmbeddingCache.open(root, 'ns');
  assert.ok(again.has(Buffer.alloc(32, 1)));
  assert.ok(!fs.existsSync(path.join(c.folder, `seg-x.bin.tmp-${deadPid}`)), 'the dead process\'s .tmp file is removed');
  const reasons = again.stats.discarded.map((d) => `${path.basename(d.file)}: ${d.reason}`).sort();
  assert.ok(reasons.includes('seg-dir.bin: a folder, not a cache segment; ignored'), reasons.join('\n'));
  if (made) assert.ok(reasons.includes('seg-fifo.bin: a FIFO (named pipe), not a cache segment; ignored'), reasons.join('\n'));
  assert.ok(fs.existsSync(path.join(c.folder, 'seg-dir.bin')), 'what is not ours is not removed');
});

test('evaluate: a full disk on a small run is one cache-unavailable problem; the run succeeds', async (t) => {
  const dir = tempDir(t, 'fullrun');
  const data = path.join(dir, 'data');
  copyClasses(data, { red_circle: 'red_circle', blue_square: 'blue_square' });
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const restore = failCacheWrites();
  let report: EvalReport;
  try {
    report = await evaluateDataset(data, { model, cacheDir: path.join(dir, 'cache') });
  } finally {
    restore();
  }
  const cacheProblems = report.errors.filter((e) => e.code.startsWith('cache-'));
  assert.equal(cacheProblems.length, 1, JSON.stringify(cacheProblems));
  assert.match(cacheProblems[0]!.message, /ENOSPC.*without saving embeddings/);
  assert.ok(report.metrics && report.metrics.n > 0);
  const leftovers = fs.readdirSync(path.join(dir, 'cache'), { recursive: true }).map(String).filter((f) => f.includes('.tmp'));
  assert.deepEqual(leftovers, []);
});

test('eval: a cache folder that cannot be created is listed once (cache-unavailable) and the run goes on', async (t) => {
  const dir = tempDir(t, 'nocache');
  fs.writeFileSync(path.join(dir, 'file'), '');
  const data = path.join(dir, 'data');
  copyClasses(data, { red_circle: 'red_circle', blue_square: 'blue_square' });
  const out = path.join(dir, 'r.json');
  const r = await cli(['eval', data, '--model', MODEL, '--cache', path.join(dir, 'file', 'cache'), '--json', out]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport;
  const cacheProblems = report.errors.filter((e) => e.code === 'cache-unavailable');
  assert.equal(cacheProblems.length, 1);
  assert.match(cacheProblems[0]!.message, /ENOTDIR.*goes on without it/);
  assert.equal(r.stderr.split('\n').filter((l) => /cache/.test(l)).length <= 1, true, r.stderr);
});

test('eval killed with SIGKILL mid-run keeps its flushed embeddings: the re-run takes them from the cache', async (t) => {
  const dir = tempDir(t, 'kill');
  const data = path.join(dir, 'data');
  // 1,500 distinct images: example images with a different trailing byte sequence each (decoders ignore it).
  const sources = ['red_circle', 'blue_square'].map((c) => fs.readdirSync(path.join(EXAMPLE, c)).filter((f) => f.endsWith('.png')).map((f) => path.join(EXAMPLE, c, f)));
  for (const [k, c] of ['red_circle', 'blue_square'].entries()) {
    fs.mkdirSync(path.join(data, c), { recursive: true });
    for (let i = 0; i < 750; i++) {
      const src = sources[k]![i % sources[k]!.length]!;
      fs.writeFileSync(path.join(data, c, `img_${i}.png`), Buffer.concat([fs.readFileSync(src), Buffer.from(`#${i}`)]));
    }
  }
  const cache = path.join(dir, 'cache');
  const segments = () => {
    try {
      return fs.readdirSync(cache, { recursive: true }).map(String).filter((f) => /seg-[^/]*\.bin$/.test(f)).length;
    } catch {
      return 0;
    }
  };
  const child = spawn(process.execPath, [CLI, 'eval', data, '--model', MODEL, '--cache', cache, '--batch', '4', '--threads', '1'], { stdio: 'ignore' });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // Mid-run only two namespaces write: the text one (one segment, once the prompts are embedded) and the image one
  // (after CACHE_FLUSH_EVERY = 512 images or CACHE_FLUSH_MS = 10 s, whichever comes first: on a loaded machine the
  // first image segment may hold fewer than 512). Two segments: at least one image segment is on disk.
  let exited = false;
  void exit.then(() => (exited = true));
  while (!exited && segments() < 2) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGKILL');
  const how = await exit;
  assert.equal(how.signal, 'SIGKILL', 'the run was killed before it finished (it finished first: make the data set larger)');
  // What reached the disk before the kill, read as the next run reads it.
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const flushed = (await openImageCache(cache, model))!.size;
  assert.ok(flushed > 0 && flushed < 1500, `${flushed} images flushed`);
  const out = path.join(dir, 'r.json');
  const r = await cli(['eval', data, '--model', MODEL, '--cache', cache, '--json', out]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport;
  assert.equal(report.timing.imagesFromCache, flushed, 'every image flushed before the kill comes from the cache');
  assert.equal(report.timing.imagesComputed, 1500 - flushed);
  assert.deepEqual(report.errors.filter((e) => e.code.startsWith('cache-')), []);
});

// ---------------------------------------------------------------------------------------------------------------------
// Every file read checks what it is first

/** mkfifo, or skip the test where FIFOs cannot be made (Windows). */
async function mkfifo(t: { skip: (m: string) => void }, file: string): Promise<boolean> {
  const ok = await run('mkfifo', [file]).then(() => true, () => false);
  if (!ok) t.skip('mkfifo is not available');
  return ok;
}

test('readRegularFile: FIFOs, devices and folders are refused by name without blocking; the size limit holds', async (t) => {
  const dir = tempDir(t, 'regular');
  const fifo = path.join(dir, 'pipe');
  if (!(await mkfifo(t, fifo))) return;
  const refused = async (file: string, maxBytes: number, reason: string, message: RegExp) => {
    await assert.rejects(readRegularFile(file, { maxBytes, code: 'x', what: 'the file' }), (e: unknown) => {
      assert.ok(e instanceof FileRefusedError, String(e));
      assert.equal(e.reason, reason);
      assert.equal(e.file, file);
      assert.match(e.message, message);
      return true;
    });
  };
  await refused(fifo, 1 << 20, 'not-regular', /is a FIFO \(named pipe\), not a regular file/);
  await refused('/dev/zero', 1 << 20, 'not-regular', /is a character device/);
  await refused(dir, 1 << 20, 'not-regular', /is a folder/);
  await refused(path.join(dir, 'none'), 1 << 20, 'missing', /does not exist/);
  fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(3000));
  await refused(path.join(dir, 'big'), 2048, 'too-large', /2\.9 KB, over the limit of 2 KB/);
  fs.symlinkSync('/dev/zero', path.join(dir, 'zero.jpg'));
  await refused(path.join(dir, 'zero.jpg'), FILE_LIMITS.image, 'not-regular', /character device/);
  assert.equal((await readRegularFile(path.join(dir, 'big'), { maxBytes: 3000 })).length, 3000);
});

test('a FIFO as the templates file or as .clip-lens.json is a named error, not a hang', async (t) => {
  const dir = tempDir(t, 'fifo-config');
  if (!(await mkfifo(t, path.join(dir, 'templates.txt')))) return;
  await assert.rejects(resolveTemplates('templates.txt', dir), (e: unknown) => e instanceof ClipLensError && e.code === 'templates-not-found' && /FIFO/.test(e.message));
  await mkfifo(t, path.join(dir, '.clip-lens.json'));
  await assert.rejects(readProjectConfig(dir), (e: unknown) => e instanceof ClipLensError && e.code === 'config-unreadable' && /FIFO/.test(e.message));
});

test('dataset: FIFOs and devices named *.jpg are problems naming them, in class folders and label files', async (t) => {
  const dir = tempDir(t, 'fifo-data');
  const data = path.join(dir, 'classes');
  copyClasses(data, { red_circle: 'red', blue_square: 'blue' });
  if (!(await mkfifo(t, path.join(data, 'red', 'pipe.jpg')))) return;
  fs.symlinkSync('/dev/zero', path.join(data, 'blue', 'zero.jpg')); // a device, and outside the root: not followed
  fs.symlinkSync('pipe.jpg', path.join(data, 'red', 'pipe-link.jpg')); // a link inside the root to the FIFO
  const ds = await readDataset(data);
  const bad = ds.problems.filter((p) => p.code === 'not-a-regular-file' || p.code === 'link-outside-root').map((p) => [p.code, p.path, p.message]);
  assert.deepEqual(bad, [
    ['link-outside-root', 'blue/zero.jpg', 'blue/zero.jpg is a symbolic link to /dev/zero, outside the dataset root; not followed'],
    ['not-a-regular-file', 'red/pipe-link.jpg', 'red/pipe-link.jpg is a FIFO (named pipe), not an image file; skipped'],
    ['not-a-regular-file', 'red/pipe.jpg', 'red/pipe.jpg is a FIFO (named pipe), not an image file; skipped'],
  ]);
  assert.ok(!ds.samples.some((s) => s.path.endsWith('pipe.jpg') || s.path.endsWith('zero.jpg')));
  fs.writeFileSync(path.join(data, 'labels.csv'), 'image,label\nred/pipe.jpg,red\nblue/zero.jpg,blue\nred/pipe-link.jpg,red\n');
  const lf = await readDataset(path.join(data, 'labels.csv'));
  assert.deepEqual(lf.problems.map((p) => [p.code, p.line]), [['not-a-regular-file', 2], ['link-outside-root', 3], ['not-a-regular-file', 4]]);
});

test('embed: a link to /dev/zero and a FIFO are refused by name (exit 2), the other images are embedded', async (t) => {
  const dir = tempDir(t, 'embed');
  fs.symlinkSync('/dev/zero', path.join(dir, 'zero.jpg'));
  if (!(await mkfifo(t, path.join(dir, 'fifo.jpg')))) return;
  const good = path.join(EXAMPLE, 'red_circle', fs.readdirSync(path.join(EXAMPLE, 'red_circle')).sort()[0]!);
  const r = await cli(['embed', '--model', MODEL, path.join(dir, 'zero.jpg'), path.join(dir, 'fifo.jpg'), good]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  assert.match(r.stderr, /zero\.jpg: the image is a character device, not a regular file; refused/);
  assert.match(r.stderr, /fifo\.jpg: the image is a FIFO \(named pipe\), not a regular file; refused/);
});

// ---------------------------------------------------------------------------------------------------------------------
// Symbolic links leaving the dataset root

test('symlinks: a class link to /etc, an image link and a label-file path through a link outside the root are one problem each', async (t) => {
  const dir = tempDir(t, 'links');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(path.join(outside, 'deep'), { recursive: true });
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(outside, 'deep', `o_${i}.jpg`), '');
  fs.writeFileSync(path.join(outside, 'x.jpg'), '');
  const data = path.join(dir, 'data');
  copyClasses(data, { red_circle: 'red', blue_square: 'blue' });
  fs.symlinkSync('/etc', path.join(data, 'etc'));
  fs.symlinkSync(outside, path.join(data, 'red', 'more'));
  fs.symlinkSync(path.join(outside, 'x.jpg'), path.join(data, 'blue', 'x.jpg'));
  fs.symlinkSync(path.join(data, 'blue'), path.join(data, 'red', 'inside')); // inside the root: followed (read once)
  const ds = await readDataset(data);
  assert.deepEqual(ds.classes, ['blue', 'red'], 'the /etc link is not a class');
  const outsideProblems = ds.problems.filter((p) => p.code === 'link-outside-root');
  assert.deepEqual(outsideProblems.map((p) => p.path).sort(), ['blue/x.jpg', 'etc', 'red/more']);
  assert.match(outsideProblems.find((p) => p.path === 'etc')!.message, /^etc is a symbolic link to \/etc, outside the dataset root; not followed$/);
  assert.ok(ds.problems.length <= 5, ds.problems.map((p) => p.message).join('\n'));
  assert.ok(!ds.samples.some((s) => s.path.startsWith('etc/') || s.path.startsWith('red/more/') || s.path === 'blue/x.jpg'));

  // Label-file paths: through a linked folder or a linked image leaving the root, refused on their line.
  fs.writeFileSync(
    path.join(data, 'labels.csv'),
    ['image,label', 'red/more/deep/o_1.jpg,red', 'blue/x.jpg,blue', `red/${fs.readdirSync(path.join(data, 'red')).filter((f) => f.endsWith('.png')).sort()[0]},red`, 'etc/hostname.jpg,x'].join('\n'),
  );
  const lf = await readDataset(path.join(data, 'labels.csv'));
  assert.deepEqual(lf.problems.map((p) => [p.code, p.line]), [
    ['link-outside-root', 2],
    ['link-outside-root', 3],
    ['link-outside-root', 5],
  ]);
  assert.equal(lf.samples.length, 1);
});
