/**
 * Duplicates, leakage and outliers: planted copies (resized, recompressed, cropped, brightened) across splits are
 * found with the fixture model and distinct images are not grouped; the real photos of the reference set group
 * their re-encodings only; the hash multi-index finds exactly the pairs a brute-force loop finds; bad thresholds and
 * unreadable images.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { evaluateDataset } from '../../src/core/evaluate';
import { ClipModel } from '../../src/core/runtime';
import { ClipLensError } from '../../src/core/errors';
import { analyseDuplicates, analyseDuplicatesAsync, EmbeddingRows, findDuplicatesAsync, hashCandidatePairs, nearDuplicatePairsFromEmbeddings, nearDuplicatePairsFromEmbeddingsAsync, randomProjection, splitRank } from '../../src/core/duplicates';
import { helperUnits, setParallelism, stopHelpers } from '../../src/core/parallel';
import { approximateAvailable, ivfAvailable } from '../../src/core/neighbours';
import { ImagePreprocessor, decodeObserver } from '../../src/core/imagePreprocess';
import { readObserver } from '../../src/core/fileSystem';
import { readPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { HASH_WORDS, hammingDistance, hashDistance, perceptualHashOfPixels, perceptualHashes } from '../../src/core/perceptualHash';
import type { DuplicateGroup, EvalReport, Metrics } from '../../src/core/report';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');
const PHOTOS = path.join(ROOT, 'test/fixtures/clip-reference/images');
const CLASSES = ['blue_circle', 'green_square', 'red_star', 'yellow_triangle', 'red_circle', 'blue_star'];

/** The planted copies: how each is made from its original's bytes. */
const EDITS: Record<string, (file: string) => Promise<{ data: Buffer; ext: string }>> = {
  resized: async (f) => {
    const m = await sharp(f).metadata();
    return { data: await sharp(f).resize(Math.round(m.width! * 0.6), Math.round(m.height! * 0.6)).png().toBuffer(), ext: 'png' };
  },
  recompressed: async (f) => ({ data: await sharp(f).jpeg({ quality: 35 }).toBuffer(), ext: 'jpg' }),
  cropped: async (f) => {
    const m = await sharp(f).metadata();
    const dx = Math.round(m.width! * 0.05);
    const dy = Math.round(m.height! * 0.05);
    return { data: await sharp(f).extract({ left: dx, top: dy, width: m.width! - 2 * dx, height: m.height! - 2 * dy }).png().toBuffer(), ext: 'png' };
  },
  brightened: async (f) => ({ data: await sharp(f).modulate({ brightness: 1.15 }).png().toBuffer(), ext: 'png' }),
};

interface Planted {
  dir: string;
  /** [original path, copy path] relative to the root. */
  pairs: [string, string][];
  /** Test images that are not copies of anything. */
  distinctTest: string[];
}

/** train/<class>/ (8 originals per class), test/<class>/ (2 originals + one planted copy per edit, of train images). */
async function plantedDataset(): Promise<Planted> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-dups-'));
  const pairs: [string, string][] = [];
  const distinctTest: string[] = [];
  const edits = Object.keys(EDITS);
  for (const [c, cls] of CLASSES.entries()) {
    const files = fs.readdirSync(path.join(EXAMPLE, cls)).sort().filter((f) => !(cls === 'red_square' && f === 'img_0239.png'));
    fs.mkdirSync(path.join(dir, 'train', cls), { recursive: true });
    fs.mkdirSync(path.join(dir, 'test', cls), { recursive: true });
    for (const f of files.slice(0, 8)) fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, 'train', cls, f));
    for (const f of files.slice(8, 10)) {
      fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, 'test', cls, f));
      distinctTest.push(`test/${cls}/${f}`);
    }
    // One edit of one train image per class, cycling through the edits, plus a second edit for the first classes.
    for (const e of [edits[c % edits.length], ...(c < 2 ? [edits[(c + 2) % edits.length]] : [])]) {
      const original = files[c % 8];
      const { data, ext } = await EDITS[e](path.join(EXAMPLE, cls, original));
      const name = `${e}_${original.replace(/\.\w+$/, '')}.${ext}`;
      fs.writeFileSync(path.join(dir, 'test', cls, name), data);
      pairs.push([`train/${cls}/${original}`, `test/${cls}/${name}`]);
    }
  }
  return { dir, pairs, distinctTest };
}

function groupOf(groups: DuplicateGroup[], p: string): DuplicateGroup | undefined {
  return groups.find((g) => g.paths.includes(p));
}


/** A deterministic generator of numbers in [-0.5, 0.5) (32-bit LCG). */
function signedLcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

test('planted resized, recompressed, cropped and brightened copies across splits are found; distinct images are not grouped', async (t) => {
  const planted = await plantedDataset();
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-dups-cache-'));
  t.after(() => {
    fs.rmSync(planted.dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const report = await evaluateDataset(planted.dir, { model, cacheDir: cache });
  const groups = report.duplicates!;
  assert.ok(Array.isArray(groups));

  // Every planted copy is grouped (near) with its original; the edits are all represented.
  assert.deepEqual(new Set(planted.pairs.map(([, c]) => path.basename(c).split('_')[0])), new Set(Object.keys(EDITS)));
  for (const [original, copy] of planted.pairs) {
    const g = groupOf(groups, copy);
    assert.ok(g, `${copy} is in a group`);
    assert.ok(g.paths.includes(original), `${copy} is grouped with ${original}: ${JSON.stringify(g)}`);
    assert.equal(g.kind, 'near');
    assert.ok(g.similarity >= 0.75 && g.similarity <= 1);
    // The exact contract: parallel splits and labels.
    assert.deepEqual(Object.keys(g).sort(), ['kind', 'labels', 'paths', 'similarity', 'splits']);
    assert.equal(g.splits.length, g.paths.length);
    assert.deepEqual(g.splits, g.paths.map((p) => p.split('/')[0]));
    assert.deepEqual(g.labels, g.paths.map((p) => p.split('/')[1]));
  }
  // Precision: no group holds two images that are not copies of each other.
  const copyOf = new Map(planted.pairs.map(([o, c]) => [c, o]));
  for (const g of groups) {
    const originals = new Set(g.paths.map((p) => copyOf.get(p) ?? p));
    assert.equal(originals.size, 1, `group of distinct images: ${g.paths.join(', ')}`);
  }
  for (const p of planted.distinctTest) assert.equal(groupOf(groups, p), undefined, `${p} is not grouped`);

  // Leakage: every planted copy, and the test metrics without them next to those with them.
  const leak = report.warnings.filter((w) => w.kind === 'leakage');
  assert.equal(leak.length, 1);
  assert.equal(leak[0].severity, 'error');
  assert.equal(leak[0].split, 'test');
  assert.deepEqual(new Set(leak[0].paths), new Set(planted.pairs.map(([, c]) => c)));
  const n = planted.pairs.length;
  assert.match(leak[0].message, new RegExp(`^${n} test images have a near-copy in train: test accuracy is inflated \\(top-1 `));
  const testN = report.metricsBySplit!.test.n;
  assert.equal(leak[0].numbers.count, n);
  assert.equal(leak[0].numbers.n, testN);
  assert.equal(leak[0].numbers.nWithoutLeaked, testN - n);
  assert.equal(report.leakage![0].metricsWithoutLeaked!.n, testN - n);
  assert.deepEqual(report.leakage![0].copies, report.leakage![0].paths.map((p) => planted.pairs.find(([, c]) => c === p)![0]));
  assert.equal(report.warnings[0].kind, 'leakage', 'errors first');

  // A re-run takes the pixel hashes from the cache and gives the same groups.
  const again = await evaluateDataset(planted.dir, { model, cacheDir: cache });
  assert.deepEqual(again.duplicates, groups);
  assert.equal(again.timing.imagesComputed, 0);
});

test('a cold run reads and decodes each image once (the perceptual hashes come from the embedding decode); a warm run decodes none', async (t) => {
  const planted = await plantedDataset();
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-dups-cache-'));
  const reads = new Map<string, number>();
  const decodes = new Map<string, number>();
  readObserver.onRead = (f) => {
    if (f.startsWith(planted.dir) && /\.(png|jpe?g)$/.test(f)) reads.set(path.relative(planted.dir, f), (reads.get(path.relative(planted.dir, f)) ?? 0) + 1);
  };
  decodeObserver.onDecode = (name) => decodes.set(name, (decodes.get(name) ?? 0) + 1);
  t.after(() => {
    readObserver.onRead = null;
    decodeObserver.onDecode = null;
    fs.rmSync(planted.dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const images = fs.readdirSync(planted.dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(png|jpe?g)$/.test(f)).map((f) => f.split(path.sep).join('/')).sort();
  const once = Object.fromEntries(images.map((f) => [f, 1]));
  const counted = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
  for (const cacheDir of [cache, null]) {
    reads.clear();
    decodes.clear();
    const cold = await evaluateDataset(planted.dir, { model, cacheDir });
    assert.equal(cold.timing.imagesComputed, images.length);
    assert.deepEqual(counted(reads), once, `cold run (cache ${cacheDir ? 'on' : 'off'}): each image read once`);
    assert.deepEqual(counted(decodes), once, `cold run (cache ${cacheDir ? 'on' : 'off'}): each image decoded once`);
    assert.deepEqual(new Set(cold.leakage![0].paths), new Set(planted.pairs.map(([, c]) => c)), 'and the planted copies are found');
  }
  reads.clear();
  decodes.clear();
  const warm = await evaluateDataset(planted.dir, { model, cacheDir: cache });
  assert.equal(warm.timing.imagesFromCache, images.length);
  assert.deepEqual(counted(reads), once, 'warm run: each image read once (its content hash)');
  assert.deepEqual(counted(decodes), {}, 'warm run: nothing decoded');
  assert.deepEqual(new Set(warm.leakage![0].paths), new Set(planted.pairs.map(([, c]) => c)));
});

test('an exact copy across splits under another label: exact group, leakage and conflicting labels; no split level: groups but no leakage', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-dups-exact-'));
  const flat = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-dups-flat-'));
  t.after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(flat, { recursive: true, force: true });
  });
  for (const cls of ['blue_circle', 'red_star']) {
    const files = fs.readdirSync(path.join(EXAMPLE, cls)).sort().slice(0, 6);
    for (const split of ['train', 'test']) fs.mkdirSync(path.join(dir, split, cls), { recursive: true });
    fs.mkdirSync(path.join(flat, cls), { recursive: true });
    files.forEach((f, i) => {
      fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, i < 4 ? 'train' : 'test', cls, f));
      fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(flat, cls, f));
    });
  }
  const first = fs.readdirSync(path.join(dir, 'train', 'blue_circle')).sort()[0];
  fs.copyFileSync(path.join(dir, 'train', 'blue_circle', first), path.join(dir, 'test', 'red_star', `copy_${first}`));
  fs.copyFileSync(path.join(flat, 'blue_circle', first), path.join(flat, 'blue_circle', `copy_${first}`));
  // An unreadable image: named once (its sample's error), in no group.
  fs.writeFileSync(path.join(dir, 'test', 'red_star', 'broken.png'), Buffer.from('not an image'));
  fs.writeFileSync(path.join(dir, 'test', 'red_star', 'broken_too.png'), Buffer.from('not an image'));

  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const r: EvalReport = await evaluateDataset(dir, { model, cacheDir: null });
  const exact = r.duplicates!.filter((g) => g.kind === 'exact');
  assert.deepEqual(exact, [
    { kind: 'exact', paths: [`test/red_star/copy_${first}`, `train/blue_circle/${first}`], splits: ['test', 'train'], labels: ['red_star', 'blue_circle'], similarity: 1 },
  ].map((g) => ({ ...g, paths: [...g.paths].sort(), splits: [...g.paths].sort().map((p) => p.split('/')[0]), labels: [...g.paths].sort().map((p) => p.split('/')[1]) })));
  const leak = r.warnings.find((w) => w.kind === 'leakage')!;
  assert.match(leak.message, /^1 test image has an exact copy in train: test accuracy is inflated/);
  assert.deepEqual(r.leakage![0].copies, [`train/blue_circle/${first}`]);
  const conflict = r.warnings.filter((w) => w.kind === 'conflicting-labels');
  assert.equal(conflict.length, 1);
  assert.match(conflict[0].message, /different labels \('red_star', 'blue_circle'\)|different labels \('blue_circle', 'red_star'\)/);
  for (const g of r.duplicates!) assert.ok(!g.paths.some((p) => p.includes('broken')), 'unreadable images take part in nothing');
  assert.ok(!r.outliers!.some((o) => o.path.includes('broken')));
  assert.equal(r.warnings.filter((w) => (w.paths ?? []).some((p) => p.includes('broken'))).length, 0);
  assert.equal(r.samples!.filter((s) => s.error).length, 2);

  const noSplits = await evaluateDataset(flat, { model, cacheDir: null });
  assert.deepEqual(noSplits.duplicates!.filter((g) => g.kind === 'exact').map((g) => [g.paths, g.splits]), [[[`blue_circle/copy_${first}`, `blue_circle/${first}`].sort(), []]]);
  assert.equal(noSplits.warnings.filter((w) => w.kind === 'leakage').length, 0);
  assert.equal(noSplits.leakage, undefined);
  const plain = noSplits.warnings.find((w) => w.kind === 'duplicate')!;
  assert.equal(plain.severity, 'info');
  assert.deepEqual(new Set(plain.paths), new Set([`blue_circle/copy_${first}`, `blue_circle/${first}`]));
});

test('real photos: re-encodings of one photo group together, different photos do not', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-dups-photos-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = fs.readdirSync(PHOTOS).filter((f) => /\.(png|jpe?g)$/i.test(f));
  fs.mkdirSync(path.join(dir, 'a'));
  fs.mkdirSync(path.join(dir, 'b'));
  files.forEach((f, i) => fs.copyFileSync(path.join(PHOTOS, f), path.join(dir, i % 2 ? 'a' : 'b', f)));
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const r = await evaluateDataset(dir, { model, cacheDir: null });
  const subject = (p: string) => (/chelsea/.test(p) ? 'chelsea' : /astronaut/.test(p) && !/portrait/.test(p) ? 'astronaut' : p);
  for (const g of r.duplicates!) assert.equal(new Set(g.paths.map(subject)).size, 1, `one photo per group: ${g.paths.join(', ')}`);
  const chelsea = groupOf(r.duplicates!, files.includes('chelsea.png') ? (files.indexOf('chelsea.png') % 2 ? 'a/chelsea.png' : 'b/chelsea.png') : '')!;
  assert.ok(chelsea, 'chelsea.png is grouped with its re-encodings');
  for (const v of ['exif6_chelsea.jpg', 'palette_chelsea.png', 'cmyk_chelsea.jpg']) assert.ok(chelsea.paths.some((p) => p.endsWith(`/${v}`)), v);
});

test('hash multi-index finds exactly the pairs of a brute-force loop', () => {
  let seed = 7;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed;
  };
  const n = 300;
  const hashes = new Uint32Array(n * HASH_WORDS);
  for (let i = 0; i < n; i++) {
    if (i > 0 && i % 3 === 0) {
      // A noisy copy of an earlier image: flip a few bits of each scale.
      const src = rnd() % i;
      for (let w = 0; w < HASH_WORDS; w++) hashes[i * HASH_WORDS + w] = hashes[src * HASH_WORDS + w] ^ (1 << rnd() % 32) ^ (rnd() % 4 === 0 ? 1 << rnd() % 32 : 0);
    } else {
      for (let w = 0; w < HASH_WORDS; w++) hashes[i * HASH_WORDS + w] = rnd();
    }
  }
  for (const max of [0, 4, 8, 12]) {
    const found: string[] = [];
    hashCandidatePairs(hashes, n, max, (a, b, d) => {
      assert.equal(d, hashDistance(hashes, a, b));
      found.push(`${a},${b}`);
    });
    const brute: string[] = [];
    for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) if (hashDistance(hashes, a, b) <= max) brute.push(`${a},${b}`);
    assert.deepEqual(found.sort(), brute.sort(), `max ${max}`);
    if (max >= 4) assert.ok(brute.length >= 90, 'the planted copies are within the threshold');
  }
});

test('perceptual hash: invariant to resizing and a constant brightness, different for different pictures', async (t) => {
  const grey = new Float64Array(1024).map((_, i) => ((i % 32) * 7 + Math.floor(i / 32) * 3) % 255);
  const [hi, lo] = perceptualHashOfPixels(grey);
  const [hi2, lo2] = perceptualHashOfPixels(grey.map((v) => v * 0.8 + 20));
  assert.equal(hammingDistance(hi, lo, hi2, lo2), 0);
  assert.throws(() => perceptualHashOfPixels(new Float64Array(10)), RangeError);
  const a = path.join(PHOTOS, 'chelsea.png');
  // Hashed as the model's preprocessing decodes the image (a real CLIP's 224 pixels, and the fixture model's 64).
  const pre224 = new ImagePreprocessor({ ...(await readPreprocessorConfig(path.join(MODEL, 'preprocessor_config.json'))), resizeShortestEdge: 224, crop: { height: 224, width: 224 } });
  const model = await ClipModel.load(MODEL);
  t.after(() => model.dispose());
  const pre = model.preprocessor;
  const full = await perceptualHashes(fs.readFileSync(a), pre224);
  const small = await perceptualHashes(await sharp(a).resize(150).png().toBuffer(), pre224);
  const other = await perceptualHashes(fs.readFileSync(path.join(PHOTOS, 'camera.png')), pre224);
  const pair = (x: Uint32Array, y: Uint32Array) => {
    const h = new Uint32Array(2 * HASH_WORDS);
    h.set(x, 0);
    h.set(y, HASH_WORDS);
    return hashDistance(h, 0, 1);
  };
  assert.ok(pair(full, small) <= 4, `resized: ${pair(full, small)}`);
  assert.ok(pair(full, other) >= 20, `different: ${pair(full, other)}`);
  const full64 = await perceptualHashes(fs.readFileSync(a), pre);
  assert.ok(pair(full, full64) <= 4, `224 vs 64 pixels: ${pair(full, full64)}`);
  assert.ok(pair(full64, await perceptualHashes(fs.readFileSync(path.join(PHOTOS, 'camera.png')), pre)) >= 20);
  await assert.rejects(perceptualHashes(Buffer.from('not an image'), pre));
});

test('embeddings only: the kNN index and the cosine decide; thresholds are checked; split order', () => {
  const dim = 8;
  // Four directions, the third and fourth rows nearly the first; the rest spread out.
  const rows = [
    [1, 0, 0, 0, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 0, 0, 0],
    [0.99, 0.05, 0, 0, 0, 0, 0, 0],
    [0.98, 0, 0.05, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 0.2, 0, 0],
  ];
  const samples = rows.map((_, i) => ({ path: `${i < 3 ? 'train' : 'test'}/c/${i}.png`, label: 'c', split: i < 3 ? 'train' : 'test' }));
  const input = { samples, embeddings: Float32Array.from(rows.flat()), dim, hasEmbedding: new Uint8Array(rows.length).fill(1), pixelHashes: null };
  const r = analyseDuplicates(input, { minCosine: 0.99 });
  assert.deepEqual(r.groups.map((g) => [g.kind, g.paths]), [['near', ['train/c/0.png', 'train/c/2.png', 'test/c/3.png']]]);
  assert.deepEqual(r.leakage.map((l) => [l.split, l.earlier, l.paths, l.metricsWithoutLeaked]), [['test', ['train'], ['test/c/3.png'], null]]);
  // An image without an embedding takes part in nothing.
  const without = analyseDuplicates({ ...input, hasEmbedding: Uint8Array.from([1, 1, 1, 0, 1, 1]) }, { minCosine: 0.99 });
  assert.deepEqual(without.groups.map((g) => g.paths), [['train/c/0.png', 'train/c/2.png']]);
  assert.deepEqual(without.leakage, []);
  for (const bad of [{ minCosine: 1.5 }, { maxHashDistance: -1 }, { maxHashDistance: 2.5 }, { maxHashDistance: 40 }, { outlierNeighbours: 0 }, { classOutlierFraction: 0 }]) {
    assert.throws(() => analyseDuplicates(input, bad), (e: unknown) => e instanceof ClipLensError && e.code === 'duplicates-bad-threshold' && new RegExp(`duplicates\\.${Object.keys(bad)[0]}`).test(e.message));
  }
  assert.ok(splitRank('train') < splitRank('val') && splitRank('validation') < splitRank('test') && splitRank('test') < splitRank('holdout2'));
});

test('outliers: a blank image and a noise image stand out from a class of similar images', () => {
  const dim = 16;
  const rnd = signedLcg(3);
  const rows: number[][] = [];
  const samples: { path: string; label: string }[] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 30; i++) {
      const v = Array.from({ length: dim }, (_, d) => (d === c ? 5 : 0) + rnd());
      rows.push(v);
      samples.push({ path: `c${c}/${i}.png`, label: `c${c}` });
    }
  }
  for (const [name, v] of [
    ['c0/blank.png', Array.from({ length: dim }, (_, d) => (d === 10 ? 5 : 0) + rnd() * 0.1)],
    ['c0/noise.png', Array.from({ length: dim }, (_, d) => (d === 12 ? 5 : 0) + rnd() * 0.1)],
    ['c0/odd.png', Array.from({ length: dim }, (_, d) => (d === 14 ? 5 : 0) + rnd() * 0.1)],
  ] as const) {
    rows.push([...v]);
    samples.push({ path: name, label: 'c0' });
  }
  const r = analyseDuplicates({ samples, embeddings: Float32Array.from(rows.flat()), dim, hasEmbedding: new Uint8Array(rows.length).fill(1), pixelHashes: null }, { minCosine: 0.999, classOutlierFraction: 0.05 });
  assert.deepEqual(r.outliers.map((o) => o.path).sort(), ['c0/blank.png', 'c0/noise.png', 'c0/odd.png']);
  assert.ok(r.outliers.every((o) => o.score > 0 && o.score < 0.5 && o.distance > 0.5));
  const w = r.warnings.find((x) => x.kind === 'class-outliers')!;
  assert.equal(w.class, 'c0');
  assert.equal(w.numbers.count, 3);
  assert.equal(r.warnings.filter((x) => x.kind === 'class-outliers').length, 1);
  // 3 of 33 is below the default 10%: no warning, the outliers are still listed.
  const quiet = analyseDuplicates({ samples, embeddings: Float32Array.from(rows.flat()), dim, hasEmbedding: new Uint8Array(rows.length).fill(1), pixelHashes: null }, { minCosine: 0.999 });
  assert.equal(quiet.outliers.length, 3);
  assert.equal(quiet.warnings.filter((x) => x.kind === 'class-outliers').length, 0);
});

test('near-duplicate pairs from embeddings: the approximate paths (projected HNSW; IVF) find the exact path\'s pairs', async () => {
  const rnd = signedLcg(11);
  const n = 800;
  const dim = 256;
  const v = new Float32Array(n * dim);
  const norm = (i: number) => {
    let s = 0;
    for (let d = 0; d < dim; d++) s += v[i * dim + d] ** 2;
    for (let d = 0; d < dim; d++) v[i * dim + d] /= Math.sqrt(s);
  };
  for (let i = 0; i < n; i++) {
    const src = i % 10 === 9 ? i - 1 - (i % 7) : -1;
    for (let d = 0; d < dim; d++) v[i * dim + d] = src >= 0 ? v[src * dim + d] + rnd() * 0.02 : rnd();
    norm(i);
  }
  const exact = nearDuplicatePairsFromEmbeddings(v, dim, { minCosine: 0.95, approximate: false });
  assert.equal(exact.approximate, false);
  assert.equal(exact.a.length, 80, 'the planted copies');
  const key = (r: { a: Int32Array; b: Int32Array }) => Array.from(r.a, (x, i) => `${x},${r.b[i]}`).sort();
  const exactKeys = new Set(key(exact));
  // HNSW: usearch builds the graph on several threads, so which of the 80 pairs it finds can change from run to run
  // under load (once 79 of 80). Every pair it reports must be a true one, and it must find at least 95% of them: a
  // broken index (random neighbours, the projection lost, no re-scoring) finds few or reports false ones.
  const approx = nearDuplicatePairsFromEmbeddings(v, dim, { minCosine: 0.95, approximate: true });
  assert.equal(approx.approximate, approximateAvailable());
  for (const k of key(approx)) assert.ok(exactKeys.has(k), `reported pair ${k} is not a near-duplicate`);
  assert.ok(approx.a.length >= 76, `HNSW found ${approx.a.length} of 80 pairs`);
  for (let i = 0; i < approx.a.length; i++) assert.ok(approx.similarity[i] >= 0.95 && approx.a[i] < approx.b[i]);
  // IVF (deterministic: single-threaded k-means order, fixed seeds): all of them, with their full-width cosines.
  const ivf = await nearDuplicatePairsFromEmbeddingsAsync(v, dim, { minCosine: 0.95, ivf: true });
  if (await ivfAvailable()) {
    assert.equal(ivf.kind, 'ivf');
    assert.deepEqual(key(ivf), key(exact));
    const exactSim = new Map<string, number>();
    for (let i = 0; i < exact.a.length; i++) exactSim.set(`${exact.a[i]},${exact.b[i]}`, exact.similarity[i]);
    for (let i = 0; i < ivf.a.length; i++) assert.ok(Math.abs(ivf.similarity[i] - exactSim.get(`${ivf.a[i]},${ivf.b[i]}`)!) < 1e-5);
  }
  // Below IVF_MIN_ROWS the async function answers as the sync one.
  assert.deepEqual(key(await nearDuplicatePairsFromEmbeddingsAsync(v, dim, { minCosine: 0.95, approximate: false })), key(exact));
  // The projection keeps unit rows and roughly the cosines.
  const p = randomProjection(v, dim, 64);
  let s = 0;
  for (let d = 0; d < 64; d++) s += p[d] * p[d];
  assert.ok(Math.abs(s - 1) < 1e-5);
});

test('outliers on the shared kNN index (projected graph above OUTLIER_EXACT_MAX_ROWS) flag the exact path\'s outliers; EmbeddingRows input equals the packed matrix', () => {
  const rnd = signedLcg(5);
  const n = 2500;
  const dim = 192;
  const classes = 25;
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => rnd()));
  const v = new Float32Array(n * dim);
  const samples: { path: string; label: string }[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    // every 250th row: a random direction (an outlier); every 250th + 7: a weak member of its class
    const far = i % 250 === 0;
    const noise = i % 250 === 7 ? 0.35 : 0.1;
    for (let d = 0; d < dim; d++) v[i * dim + d] = far ? rnd() : centres[c][d] + noise * rnd();
    samples.push({ path: `c${c}/${i}.png`, label: `c${c}` });
  }
  // Pixel hashes present (none usable): only the outliers use the index, approximate above 2,000 rows.
  const input = { samples, embeddings: v, dim, hasEmbedding: new Uint8Array(n).fill(1), pixelHashes: new Uint32Array(n * HASH_WORDS), hasPixelHash: new Uint8Array(n) };
  const shared = analyseDuplicates(input);
  const exact = analyseDuplicates({ ...input, approximate: false });
  const flagged = (r: typeof shared) => r.outliers.map((o) => o.path).sort();
  assert.ok(exact.outliers.length >= 10, `${exact.outliers.length} outliers`);
  for (let i = 0; i < n; i += 250) assert.ok(flagged(exact).includes(samples[i].path));
  assert.deepEqual(flagged(shared), flagged(exact));
  // The same rows through EmbeddingRows (block by block, a row without an embedding): the same analysis.
  const rows = new EmbeddingRows(n + 1);
  for (let i = 0; i < n; i++) rows.set(i, v.subarray(i * dim, (i + 1) * dim));
  const hasEmbedding = Uint8Array.from(rows.has);
  const withMissing = { ...input, samples: [...samples, { path: 'c0/missing.png', label: 'c0' }], hasEmbedding, pixelHashes: null, hasPixelHash: undefined };
  const fromRows = analyseDuplicates({ ...withMissing, embeddings: rows });
  const fromPacked = analyseDuplicates({ ...withMissing, embeddings: rows.packed() });
  assert.deepEqual(fromRows, fromPacked);
  assert.deepEqual(flagged(fromRows), flagged(exact));
});

test('analyseDuplicatesAsync: the IVF path (rows read through EmbeddingRows.copyRows, no packed copy) flags the exact path\'s outliers and groups; small inputs answer exactly as analyseDuplicates', async () => {
  const rnd = signedLcg(7);
  const n = 3000;
  const dim = 160;
  const classes = 30;
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => rnd()));
  const v = new Float32Array(n * dim);
  const samples: { path: string; label: string; split?: string }[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    const far = i % 300 === 0;
    const weak = i % 300 === 7;
    const copyOf = i % 50 === 49 ? i - 20 : -1; // a near-copy of a row of the same class
    for (let d = 0; d < dim; d++) v[i * dim + d] = copyOf >= 0 ? v[copyOf * dim + d] + 0.01 * rnd() : far ? rnd() : centres[c][d] + (weak ? 0.4 : 0.12) * rnd();
    samples.push({ path: `c${c}/${i}.png`, label: `c${c}`, split: i % 3 === 0 ? 'test' : 'train' });
  }
  const rows = new EmbeddingRows(n + 1); // one sample without an embedding
  for (let i = 0; i < n; i++) rows.set(i, v.subarray(i * dim, (i + 1) * dim));
  // copyRows: ranges across chunks, rows without an embedding are zeros.
  const out = new Float32Array(3 * dim).fill(9);
  rows.copyRows(1023, 1026, out);
  assert.deepEqual(out.subarray(0, dim), v.subarray(1023 * dim, 1024 * dim));
  assert.deepEqual(out.subarray(2 * dim), v.subarray(1025 * dim, 1026 * dim));
  const tail = new Float32Array(dim).fill(9);
  rows.copyRows(n, n + 1, tail);
  assert.ok(tail.every((x) => x === 0));
  const input = { samples: [...samples, { path: 'c0/missing.png', label: 'c0' }], embeddings: rows, dim, hasEmbedding: Uint8Array.from(rows.has), pixelHashes: null };
  const exact = analyseDuplicates({ ...input, approximate: false });
  const small = await analyseDuplicatesAsync({ ...input, approximate: false });
  assert.deepEqual(small, exact, 'the exact path: identical');
  assert.deepEqual(await analyseDuplicatesAsync(input), analyseDuplicates(input), 'below IVF_MIN_ROWS: identical');
  const ivf = await analyseDuplicatesAsync({ ...input, ivf: true });
  if (!(await ivfAvailable())) return;
  const flagged = (r: typeof exact) => r.outliers.map((o) => o.path).sort();
  assert.ok(exact.outliers.length >= 10, `${exact.outliers.length} outliers`);
  for (let i = 0; i < n; i += 300) assert.ok(flagged(exact).includes(samples[i].path), `far row ${i}`);
  assert.deepEqual(flagged(ivf), flagged(exact));
  // Reported distances are full-width cosines of the neighbours found: never below the exact path's (those are the
  // nearest), and near it (a random direction's nearest rows are scattered over the lists: its distance can be
  // overstated by a few hundredths; it is flagged either way); class distances equal.
  const byPath = new Map(exact.outliers.map((o) => [o.path, o]));
  for (const o of ivf.outliers) {
    const d = byPath.get(o.path)!.distance;
    assert.ok(o.distance >= d - 1e-5 && o.distance < d + 0.1, `${o.path} ${o.distance} vs ${d}`);
    // One pass over the rows after the build (class sums gathered as the build read them): the exact path's class
    // distances to its rounding (6 decimals) plus float32 noise.
    assert.ok(Math.abs(o.classDistance - byPath.get(o.path)!.classDistance) <= 2e-6, `${o.path} ${o.classDistance} vs ${byPath.get(o.path)!.classDistance}`);
  }
  // Near-duplicate groups (the planted copies), leakage between the splits, as the exact path has them.
  const groups = (r: typeof exact) => r.groups.map((g) => g.paths.join(' ')).sort();
  assert.ok(exact.groups.length >= 10, `${exact.groups.length} groups`);
  assert.deepEqual(groups(ivf), groups(exact));
  assert.deepEqual(ivf.leakage.map((l) => l.paths), exact.leakage.map((l) => l.paths));
  // Exact copies (one content hash, one representative): the same groups and outliers (with every copy) on both paths.
  const hashed = input.samples.map((s, i) => (i % 100 === 1 || i % 100 === 41 ? { ...s, contentHash: 'a'.repeat(63) + String(i % 7) } : i === 600 || i === 1500 ? { ...s, contentHash: 'far' } : s));
  const exactH = analyseDuplicates({ ...input, samples: hashed, approximate: false });
  const ivfH = await analyseDuplicatesAsync({ ...input, samples: hashed, ivf: true });
  assert.ok(exactH.groups.some((g) => g.kind === 'exact' && g.paths.length > 2));
  assert.deepEqual(groups(ivfH), groups(exactH));
  assert.ok(flagged(exactH).includes(samples[600].path) && flagged(exactH).includes(samples[1500].path), 'both copies of a far row');
  assert.deepEqual(flagged(ivfH), flagged(exactH));
  // The class sums added on a helper thread block by block (outlierJobs.ts) while the build goes on, and the class
  // distances computed there from the rows in shared memory while the self-search runs: the same analysis, bit for
  // bit, as on one thread; also with representatives that skip rows (exact copies).
  try {
    setParallelism({ threads: 1 });
    const oneThread = await analyseDuplicatesAsync({ ...input, ivf: true });
    const oneThreadH = await analyseDuplicatesAsync({ ...input, samples: hashed, ivf: true });
    setParallelism({ threads: 2, minWork: 0, callerRuns: false });
    const before = helperUnits();
    const helped = await analyseDuplicatesAsync({ ...input, ivf: true });
    // One class-sum block (the build reads 3,001 rows at once) and three units of 1,024 class distances.
    assert.ok(helperUnits() - before >= 4, `units run by the helper: ${helperUnits() - before}`);
    assert.deepEqual(helped, oneThread);
    assert.deepEqual(helped, ivf);
    assert.deepEqual(await analyseDuplicatesAsync({ ...input, samples: hashed, ivf: true }), oneThreadH);
  } finally {
    setParallelism({});
    stopHelpers();
  }
});

test('findDuplicatesAsync: the duplicates found before the metrics exist, finished with them, are analyseDuplicatesAsync\'s analysis (IVF and exact paths)', async () => {
  const rnd = signedLcg(11);
  const n = 2400;
  const dim = 64;
  const classes = 12;
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => rnd()));
  const rows = new EmbeddingRows(n);
  const samples: { path: string; label: string; split: string }[] = [];
  const row = new Float32Array(dim);
  const kept: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    // Every 40th row a near-copy of the row 13 before it (another split half the time): leakage to report.
    const copyOf = i % 40 === 39 ? i - 13 : -1;
    for (let d = 0; d < dim; d++) row[d] = copyOf >= 0 ? (kept[copyOf] as Float32Array)[d] + 0.005 * rnd() : centres[c][d] + (i % 200 === 3 ? 3 : 0.8) * rnd();
    kept.push(row.slice());
    rows.set(i, row);
    samples.push({ path: `c${c}/${i}.png`, label: `c${c}`, split: i % 2 === 0 ? 'test' : 'train' });
  }
  // Fake metrics, told apart by what they were asked for: the leakage figures and the warnings' numbers follow them.
  const asked: number[][] = [];
  const metricsFor = (indices: number[]) => {
    asked.push(indices);
    return { n: indices.length, top1Accuracy: (indices.length % 97) / 97, balancedAccuracy: (indices.length % 89) / 89 } as unknown as Metrics;
  };
  const metricsBySplit = { test: { n: n / 2, top1Accuracy: 0.75, balancedAccuracy: 0.5 } as unknown as Metrics };
  const input = { samples, embeddings: rows, dim, hasEmbedding: Uint8Array.from(rows.has), pixelHashes: null };
  for (const ivf of [false, true]) {
    const found = await findDuplicatesAsync({ ...input, ivf }, { minCosine: 0.99 });
    assert.equal(asked.length, 0, 'nothing asked before the metrics are given');
    const later = found({ metricsFor, metricsBySplit });
    assert.ok(asked.length > 0, 'the leakage figures asked for the metrics without the leaked samples');
    asked.length = 0;
    const atOnce = await analyseDuplicatesAsync({ ...input, ivf, metricsFor, metricsBySplit }, { minCosine: 0.99 });
    assert.deepEqual(later, atOnce, `ivf ${ivf}`);
    // The planted pairs are the groups (60), half of them across the splits.
    assert.deepEqual(later.groups.map((g) => g.paths.length), Array.from({ length: n / 40 }, () => 2));
    assert.ok(later.leakage.length === 1 && later.leakage[0]?.metricsWithoutLeaked !== null, JSON.stringify(later.leakage.map((l) => l.split)));
    assert.match(later.warnings.find((w) => w.kind === 'leakage')?.message ?? '', /top-1 75% with them/);
    // Finished again without metrics: the same groups and outliers, no figures.
    const bare = found({});
    assert.deepEqual([bare.groups, bare.outliers], [later.groups, later.outliers]);
    assert.equal(bare.leakage[0]?.metricsWithoutLeaked, null);
    asked.length = 0;
    if (!(await ivfAvailable())) break;
  }
});
