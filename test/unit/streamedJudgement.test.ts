/**
 * The streamed judgement (issue 15: a million rows x a thousand classes without the N x K matrix) against the held
 * path on the same inputs: every metric, AP, label issue and rank equal (deepEqual: bit for bit), and EmbeddingRows'
 * float16 storage reading back the float32 rows exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerSampleStore, scoreAll } from '../../src/core/evaluate';
import { EmbeddingRows } from '../../src/core/duplicates';
import { computeMetrics } from '../../src/core/metrics';
import { findLabelIssues, scanRows } from '../../src/core/labelIssues';
import { blockPairsCounted, PruneHeaps, setProvisionalPrune, shareStreamedRowPass, StreamedJudgement } from '../../src/core/streamedJudgement';
import { halfToFloat } from '../../src/core/probabilities';
import { helperUnits, setParallelism, stopHelpers } from '../../src/core/parallel';
import { topKIndices, type ClassEmbeddings } from '../../src/core/zeroShot';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

function normalise(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  for (let j = 0; j < v.length; j++) v[j] = (v[j] as number) / Math.sqrt(s);
  return v;
}

/**
 * A dataset with structure: rows near their class's direction, `noise` of the labels moved to another class; classes
 * 2c + 1 repeat class 2c for c < dups (exact ties in every row).
 */
function dataset(seed: number, n: number, k: number, dim: number, noise: number, dups = 0, spread = 0.9, gaps = true) {
  const rand = lcg(seed);
  const centres = Array.from({ length: k }, () => normalise(Float32Array.from({ length: dim }, () => rand() * 2 - 1)));
  for (let c = 1; c < Math.min(k, 2 * dups); c += 2) centres[c] = centres[c - 1] as Float32Array;
  const matrix = new Float32Array(k * dim);
  centres.forEach((c, i) => matrix.set(c, i * dim));
  const cls: ClassEmbeddings = { matrix, dim, computed: 0, ms: 0 };
  const rows = new EmbeddingRows(n);
  const labelOf = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    // A few samples without an embedding (failed images) and a few with a label that is not a class.
    if (gaps && i % 997 === 5) {
      labelOf[i] = -2;
      continue;
    }
    const truth = Math.floor(rand() * k);
    const e = Float32Array.from({ length: dim }, (_, j) => (centres[truth] as Float32Array)[j] as number + (rand() * 2 - 1) * spread);
    rows.set(i, normalise(e));
    labelOf[i] = gaps && i % 1499 === 7 ? -1 : rand() < noise ? Math.floor(rand() * k) : truth;
  }
  return { cls, rows, labelOf };
}

async function bothPaths(seed: number, n: number, k: number, dim: number, noise: number, splitsOf: (i: number) => number, streamedOptions: { pruneCandidates?: number; lateAfterPass2?: boolean; summary?: boolean; top?: number; dups?: number; labelIssuesNext?: boolean; spread?: number; gaps?: boolean } = {}) {
  const { cls, rows, labelOf } = dataset(seed, n, k, dim, noise, streamedOptions.dups, streamedOptions.spread, streamedOptions.gaps);
  const logitScale = 30;
  const ks = [1, 3, 5];
  const evaluated: number[] = [];
  const rowOfSample = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    if (rows.has[i] && (labelOf[i] as number) >= 0) {
      rowOfSample[i] = evaluated.length;
      evaluated.push(i);
    }
  }
  const labels = evaluated.map((i) => labelOf[i] as number);
  const classes = Array.from({ length: k }, (_, c) => `c${c}`);
  const subsets = [0, 1, 2].map((sp) => evaluated.map((_, r) => r).filter((r) => splitsOf(evaluated[r] as number) === sp)).filter((s) => s.length > 0);
  const late = evaluated.map((_, r) => r).filter((r) => r % 3 !== 0);

  // Held: the whole matrix.
  const store = new PerSampleStore(n, k);
  await scoreAll(rows, cls, logitScale, store);
  const topOf = new Map<number, number[]>();
  for (let i = 0; i < n; i++) if (store.hasProbabilities[i]) topOf.set(i, Array.from(store.probabilities(i)));
  const matrix = store.toMatrix(evaluated);
  const held = {
    all: computeMetrics({ classes, labels, probs: matrix }, { ks }),
    splits: subsets.map((idx) => computeMetrics({ classes, labels, probs: matrix }, { ks, indices: idx })),
    late: computeMetrics({ classes, labels, probs: matrix }, { ks, indices: late }),
    issues: findLabelIssues({ classes, labels, probs: matrix }),
  };

  // Streamed.
  const judge = new StreamedJudgement({ rows, classEmbeddings: cls, logitScale, classes, rowOfSample, labels, ...(streamedOptions.pruneCandidates ? { pruneCandidates: streamedOptions.pruneCandidates } : {}) });
  const seen = new Map<number, number[]>();
  const seenTop = new Map<number, { classes: number[]; scores: number[] }>();
  if (streamedOptions.summary) await judge.firstPass(() => assert.fail('no whole row with a top-t'), { t: streamedOptions.top ?? 5, set: (i, c, v, at, count) => seenTop.set(i, { classes: Array.from(c.subarray(at, at + count)), scores: Array.from(v.subarray(at, at + count)) }) });
  else await judge.firstPass((i, p) => seen.set(i, Array.from(p)));
  const all = judge.metrics(ks);
  const splits = subsets.map((idx) => judge.metrics(ks, idx));
  const lateAfter = streamedOptions.lateAfterPass2 !== false;
  // The same subset twice: one accumulator, both filled in.
  const lateTwice = () => [judge.metrics(ks, late), judge.metrics(ks, late)] as const;
  let twice = lateAfter ? null : lateTwice();
  await judge.secondPass(streamedOptions.labelIssuesNext);
  // Whether pass 2 filled the APs asked for before it (else they are left to pass 3).
  const apAfterPass2 = all.perClass.some((c) => c.averagePrecision !== null);
  twice ??= lateTwice();
  const [lateMetrics, lateAgain] = twice;
  const issues = await judge.labelIssues();
  assert.deepEqual(lateAgain, lateMetrics);
  const heldScan = scanRows(labels, matrix);
  const scan = judge.rowScan();
  return { held, streamed: { all, splits, late: lateMetrics, issues }, topOf, seen, seenTop, passes: judge.passes, heldScan, scan, labels, apAfterPass2, prunedInPass2: { ...judge.prunedInPass2 } };
}

test('streamed judgement = held judgement: metrics, per-split and late-subset APs, label issues and ranks (bit for bit)', async () => {
  const { held, streamed, topOf, seen } = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3);
  assert.deepEqual(seen, topOf, 'every scored sample sees the same probabilities in pass 1');
  assert.ok(held.issues.length > 100, `label issues to compare: ${held.issues.length}`);
  assert.ok(held.all.perClass.every((c) => c.averagePrecision !== null));
  assert.deepEqual(streamed.all, held.all);
  assert.deepEqual(streamed.splits, held.splits);
  assert.deepEqual(streamed.late, held.late);
  assert.deepEqual(streamed.issues, held.issues);
});

test('streamed judgement with pass 1 reduced inside ONNX Runtime (top-5, argmax, label rank and score) = held judgement, bit for bit', async () => {
  const { held, streamed, topOf, seenTop } = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { summary: true });
  // Every scored sample's top-5 is the held row's (the last, smaller block is reduced in JavaScript).
  assert.equal(seenTop.size, topOf.size);
  for (const [i, p] of topOf) {
    const classes = topKIndices(Float32Array.from(p), 5);
    assert.deepEqual(seenTop.get(i), { classes, scores: classes.map((c) => Math.fround(p[c] as number)) }, `sample ${i}`);
  }
  assert.deepEqual(streamed.all, held.all);
  assert.deepEqual(streamed.splits, held.splits);
  assert.deepEqual(streamed.late, held.late);
  assert.deepEqual(streamed.issues, held.issues);
});

test('pass 2 after a summary pass 1 counts the confident classes inside ONNX Runtime: guess, argmax, largest other score = the held scan, ties included', async () => {
  // Top-1 asked for: pass 1 still keeps the top-2 (the largest other score when the label is the argmax).
  for (const options of [{ top: 1 }, { top: 3, pruneCandidates: 16, lateAfterPass2: false }]) {
    const r = await bothPaths(23, 9000, 40, 32, 0.15, (i) => i % 2, { summary: true, dups: 8, ...options });
    assert.ok(r.scan);
    assert.deepEqual(r.scan.guess, r.heldScan.guess);
    assert.deepEqual(r.scan.argmax, r.heldScan.argmax);
    assert.deepEqual(r.scan.maxOther, r.heldScan.maxOther);
    assert.deepEqual(r.streamed, r.held);
    for (const [i, p] of r.topOf) assert.deepEqual(r.seenTop.get(i)?.classes, topKIndices(Float32Array.from(p), options.top), `sample ${i}`);
    // The cases are there: rows whose label ties another class (before and after it), no / one / several confident.
    const guess = Array.from(r.heldScan.guess);
    assert.ok(guess.some((g) => g === -1) && guess.some((g, i) => g >= 0 && g !== r.heldScan.argmax[i]), 'no confident class; one that is not the argmax');
    const self = new Float32Array(r.heldScan.self.buffer, r.heldScan.self.byteOffset, guess.length);
    const other = new Float32Array(r.scan.maxOther.buffer, r.scan.maxOther.byteOffset, guess.length);
    // The label ties the row's maximum: the argmax is the label (the tie after it) or the class before it.
    const topTie = (first: boolean) => guess.filter((_, i) => self[i] === other[i] && (r.heldScan.argmax[i] === r.labels[i]) === first).length;
    assert.ok(topTie(true) > 50 && topTie(false) > 50, `labels tying the maximum, first: ${topTie(true)}, second: ${topTie(false)}`);
  }
});

test('streamed judgement: the prune decided from pass 2\'s candidates (two passes), or redone by pass 3 when too few are kept', async () => {
  const two = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { lateAfterPass2: false, pruneCandidates: 16 });
  assert.equal(two.passes, 2, 'no subset asked for after pass 2 and the candidates decide: two products');
  assert.deepEqual(two.streamed, two.held);
  // One candidate a row cannot decide every pair: some classes are pruned again in pass 3, with the same result.
  const three = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { lateAfterPass2: false, pruneCandidates: 1 });
  assert.equal(three.passes, 3);
  assert.deepEqual(three.streamed, three.held);
  // Without candidates (the default) the prune is pass 3's.
  const plain = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { lateAfterPass2: false });
  assert.equal(plain.passes, 3);
  assert.deepEqual(plain.streamed, plain.held);
});

test('label issues next: pass 2 fills the prune\'s heaps sized from pass 1 and counts the APs (two products), the same results', async () => {
  // Noisy labels: pass 1's argmax, label score and largest other score size the heaps; pass 2 fills them beside its
  // confident counts and counts the APs: no third product.
  const noisy = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { summary: true, labelIssuesNext: true, lateAfterPass2: false });
  assert.equal(noisy.apAfterPass2, true);
  assert.ok(noisy.prunedInPass2.classes > 30, `classes pruned in pass 2: ${noisy.prunedInPass2.classes}`);
  assert.equal(noisy.prunedInPass2.again, 0);
  assert.equal(noisy.passes, 2);
  assert.ok(noisy.held.issues.length > 100, `label issues to compare: ${noisy.held.issues.length}`);
  assert.deepEqual(noisy.streamed, noisy.held);
  // Many rows whose argmax is not confident (its score below that class's cut) but above the lowest cut: pass 1 does
  // not decide them, so they are scored again on their own to size the heaps; the same results.
  const flat = await bothPaths(13, 9000, 40, 32, 0.2, (i) => i % 3, { summary: true, labelIssuesNext: true, lateAfterPass2: false, spread: 0.5 });
  assert.ok(flat.prunedInPass2.rescored > 100, `rows scored again: ${flat.prunedInPass2.rescored}`);
  assert.equal(flat.passes, 2);
  assert.deepEqual(flat.streamed, flat.held);
  // A subset asked for after pass 2: its APs take a third product, the prune stays pass 2's.
  const late = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { summary: true, labelIssuesNext: true });
  assert.equal(late.passes, 3);
  assert.equal(late.prunedInPass2.again, 0);
  assert.deepEqual(late.streamed, noisy.streamed);
  // Heaps half as large for every other class: those classes are pruned again by pass 3, the same results.
  try {
    setProvisionalPrune({ short: true });
    const short = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { summary: true, labelIssuesNext: true, lateAfterPass2: false });
    assert.ok(short.prunedInPass2.again > 5, `classes pruned again: ${short.prunedInPass2.again}`);
    assert.equal(short.passes, 3);
    assert.deepEqual(short.streamed, noisy.streamed);
  } finally {
    setProvisionalPrune({});
  }
  // No room for heaps in pass 2: the APs are left to pass 3, which prunes (three products), the same results.
  try {
    setProvisionalPrune({ slots: 0 });
    const left = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { summary: true, labelIssuesNext: true });
    assert.equal(left.apAfterPass2, false, 'APs left to pass 3');
    assert.equal(left.passes, 3);
    assert.deepEqual(left.streamed, noisy.streamed);
  } finally {
    setProvisionalPrune({});
  }
  // Not told that label issues come next: pass 2 counts the APs (the predictor may not call labelIssues).
  const told = await bothPaths(11, 9000, 60, 32, 0.12, (i) => i % 3, { summary: true });
  assert.equal(told.apAfterPass2, true);
  assert.deepEqual(told.streamed, noisy.streamed);
  // Clean labels on well separated classes: nothing to prune, so pass 2 keeps the APs; with no subset asked for
  // after pass 2, no third product runs.
  const clean = await bothPaths(12, 3000, 4, 32, 0, (i) => i % 3, { summary: true, labelIssuesNext: true, spread: 0.05, lateAfterPass2: false });
  assert.equal(clean.apAfterPass2, true, 'nothing predicts a pass 3');
  assert.deepEqual(clean.streamed, clean.held);
  assert.equal(clean.held.issues.length, 0);
  assert.equal(clean.passes, 2);
});

test('streamed judgement with few classes (large prune counts flag whole classes or fill big heaps) and with 2 classes', async () => {
  for (const [k, noise] of [[3, 0.35], [2, 0.3]] as const) {
    const { held, streamed } = await bothPaths(5 + k, 6000, k, 16, noise, (i) => (i < 3000 ? 0 : 1));
    assert.ok(held.issues.length > 64, `k=${k}: ${held.issues.length} issues`);
    assert.deepEqual(streamed.all, held.all, `k=${k}`);
    assert.deepEqual(streamed.splits, held.splits, `k=${k}`);
    assert.deepEqual(streamed.late, held.late, `k=${k}`);
    assert.deepEqual(streamed.issues, held.issues, `k=${k}`);
  }
});

test('streamed judgement on helper threads (AP counting, cleanlab scan and row pass shared per block) = held judgement, bit for bit', async () => {
  // 300 classes: two AP counters (blocks of 256 classes) per accumulator; 5,000 rows: two score spans.
  try {
    // The caller leaves every unit to the helper, so the units surely run on it.
    setParallelism({ threads: 2, minWork: 0, callerRuns: false });
    shareStreamedRowPass(true);
    const before = helperUnits();
    const { held, streamed, passes } = await bothPaths(17, 5000, 300, 24, 0.15, (i) => i % 2);
    assert.ok(helperUnits() - before > 20, `units run by the helper: ${helperUnits() - before}`);
    assert.equal(passes, 3);
    assert.ok(held.issues.length > 50, `label issues to compare: ${held.issues.length}`);
    assert.deepEqual(streamed, held);
    // Caller and helper sharing the units.
    setParallelism({ threads: 2, minWork: 0 });
    const shared = await bothPaths(17, 5000, 300, 24, 0.15, (i) => i % 2, { lateAfterPass2: false });
    assert.deepEqual(shared.streamed, shared.held);
    assert.deepEqual(shared.streamed.issues, held.issues);
    // Pass 1 reduced inside ONNX Runtime, then pass 2's AP counting deferred to the helper while the next block's
    // product runs (two shared block buffers in turn): the same judgement.
    setParallelism({ threads: 2, minWork: 0, callerRuns: false });
    const beforeDeferred = helperUnits();
    const deferred = await bothPaths(17, 5000, 300, 24, 0.15, (i) => i % 2, { summary: true, lateAfterPass2: false });
    assert.ok(helperUnits() - beforeDeferred > 4, `units run by the helper: ${helperUnits() - beforeDeferred}`);
    assert.deepEqual(deferred.streamed, deferred.held);
    assert.deepEqual(deferred.streamed.issues, held.issues);
  } finally {
    shareStreamedRowPass(false);
    setParallelism({});
    stopHelpers();
  }
});

test('the pruning pass counts the APs two blocks at a time on the helpers: a pair, a pair with a short second block, a last block alone', async () => {
  try {
    setParallelism({ threads: 2, minWork: 0, callerRuns: false });
    // Pass 2 with the prune's heaps (the default), and pass 3 when pass 2 has no room for them.
    for (const slots of [undefined, 0]) {
    setProvisionalPrune({ slots });
    // Every row evaluated, so that blocks are full (4,096 rows): 3 blocks (a pair, then one flushed alone), and 3 blocks
    // and 100 rows (two pairs, the second with a short block).
    for (const [n, pairs] of [[3 * 4096, 1], [3 * 4096 + 100, 2]] as const) {
      const before = blockPairsCounted();
      const r = await bothPaths(29, n, 300, 24, 0.15, (i) => i % 2, { summary: true, labelIssuesNext: true, lateAfterPass2: false, gaps: false });
      assert.equal(r.apAfterPass2, slots === undefined);
      assert.equal(r.passes, slots === undefined ? 2 : 3);
      assert.equal(blockPairsCounted() - before, pairs, `n = ${n}`);
      assert.deepEqual(r.streamed, r.held, `n = ${n}`);
    }
    }
  } finally {
    setProvisionalPrune({});
    setParallelism({});
    stopHelpers();
  }
});

/** A random float16 row (patterns below 1.0, random sign, `or` OR-ed in) and its unit-norm float32 row. */
function halfRow(rand: () => number, dim: number, table: Float32Array, or: number): { e: Float32Array; half: { bits: Uint16Array; scale: number } } {
  const bits = Uint16Array.from({ length: dim }, () => Math.floor(rand() * 0x3c00) | (rand() < 0.5 ? 0x8000 : 0) | or);
  let sq = 0;
  for (const h of bits) sq += (table[h] as number) ** 2;
  const scale = 1 / Math.sqrt(sq);
  return { e: Float32Array.from(bits, (h) => (table[h] as number) * scale), half: { bits, scale } };
}

test('EmbeddingRows decodes float16 rows of any width (four values a step and the rest) bit for bit as the rows set', () => {
  const rand = lcg(11);
  const table = new Float32Array(65536).map((_, h) => halfToFloat(h));
  for (const dim of [1, 2, 3, 4, 5, 6, 7, 9, 510, 513]) {
    const n = 1100; // two storage chunks of 1,024 rows
    const rows = new EmbeddingRows(n);
    const plain = new EmbeddingRows(n);
    for (let i = 0; i < n; i++) {
      if (i % 5 === 2) continue;
      const { e, half } = halfRow(rand, dim, table, 1);
      rows.set(i, e, half);
      plain.set(i, e);
    }
    assert.equal(rows.isHalf, true, `dim ${dim}`);
    for (const [start, end] of [[0, n], [1, 2], [3, 1030], [1023, 1025], [1099, 1100]] as const) {
      const a = rows.copyRows(start, end, new Float32Array((end - start) * dim));
      const b = plain.copyRows(start, end, new Float32Array((end - start) * dim));
      assert.deepEqual(a, b, `dim ${dim}, rows ${start} .. ${end}`);
    }
    assert.deepEqual(rows.block(1), plain.block(1), `dim ${dim}, block 1`);
  }
});

test('EmbeddingRows keeps float16 rows in 2 bytes a value and reads them back bit for bit; a float32 row turns it to float32', () => {
  const rand = lcg(3);
  const dim = 24;
  const n = 2500;
  const rows = new EmbeddingRows(n);
  const plain = new EmbeddingRows(n);
  const table = new Float32Array(65536).map((_, h) => halfToFloat(h));
  for (let i = 0; i < n; i++) {
    if (i % 7 === 3) continue;
    const { e, half } = halfRow(rand, dim, table, 0);
    rows.set(i, e, half);
    plain.set(i, e);
  }
  assert.equal(rows.isHalf, true);
  assert.equal(plain.isHalf, false);
  assert.ok(rows.bytes < plain.bytes * 0.6, `${rows.bytes} vs ${plain.bytes}`);
  assert.deepEqual(rows.packed(), plain.packed());
  const a = new Float32Array(700 * dim);
  const b = new Float32Array(700 * dim);
  assert.deepEqual(rows.copyRows(900, 1600, a), plain.copyRows(900, 1600, b));
  assert.deepEqual(rows.block(1), plain.block(1));
  assert.equal(rows.block(5), undefined);
  // A half form that does not give the row back is not kept; a row without one turns the store to float32.
  const wrong = new Float32Array(dim).fill(0.1);
  rows.set(3, wrong, { bits: new Uint16Array(dim), scale: 1 });
  assert.equal(rows.isHalf, false);
  plain.set(3, wrong);
  assert.deepEqual(rows.packed(), plain.packed());
});

test('PruneHeaps.bar: offering only margins above a heap\'s bar keeps exactly the heaps that offering every margin keeps (ties to the lower row)', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  // Class 0 with four other classes; capacities from 1 to 40; margins half on a coarse grid (ties are common), half
  // anywhere (entries a hair above the bar).
  const pairs = { c: Int32Array.of(0, 0, 0, 0), j: Int32Array.of(1, 2, 3, 4), count: Int32Array.of(1, 3, 17, 40), length: 4 };
  const all = new PruneHeaps(5, pairs);
  const barred = new PruneHeaps(5, pairs);
  let skipped = 0;
  for (let row = 0; row < 5000; row++) {
    for (let h = 0; h < 4; h++) {
      const u = rand();
      const v = row % 2 === 0 ? Math.round(u * 64) / 64 - 0.5 : u - 0.5;
      all.offer(h, v, row);
      if (v > (barred.bar[h] as number)) barred.offer(h, v, row);
      else skipped++;
    }
  }
  assert.ok(skipped > 15000, `offers skipped by the bars: ${skipped}`);
  for (let h = 0; h < 4; h++) {
    assert.deepEqual(barred.rowsOf(h), all.rowsOf(h), `heap ${h}`);
    assert.equal(barred.rowsOf(h).length, pairs.count[h]);
  }
  // Emptied, a class's heaps accept anything again.
  barred.emptyClass(0);
  assert.ok([0, 1, 2, 3].every((h) => barred.bar[h] === -Infinity && barred.rowsOf(h).length === 0));
});
