import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXACT_AUTO_MAX_ROWS, IVF_MIN_ROWS, IVF_SCORE_OUTPUT, NeighbourIndex, approximateAvailable, assignBlockRows, bestOfPool, ivfAvailable, packedRowSource } from '../../src/core/neighbours';
import { onnxTopK } from '../../src/core/onnxMatMul';
import { rng } from '../fixtures/rng';

function randomUnit(n: number, dim: number, seed: number, levels = 0): Float32Array {
  const r = rng(seed);
  const v = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      // levels > 0: few distinct values, so many exact ties between rows
      const x = levels > 0 ? Math.floor(r() * levels) - (levels - 1) / 2 : r() - 0.5;
      v[i * dim + d] = x;
      s += x * x;
    }
    s = Math.sqrt(s) || 1;
    for (let d = 0; d < dim; d++) v[i * dim + d] /= s;
  }
  return v;
}

/** The obvious answer: all similarities, sorted by (similarity desc, index asc). */
function naive(base: Float32Array, queries: Float32Array, dim: number, k: number, self: boolean) {
  const n = base.length / dim;
  const m = queries.length / dim;
  const indices: number[][] = [];
  const sims: number[][] = [];
  for (let q = 0; q < m; q++) {
    const all: Array<[number, number]> = [];
    for (let j = 0; j < n; j++) {
      if (self && j === q) continue;
      let s = 0;
      for (let d = 0; d < dim; d++) s += queries[q * dim + d] * base[j * dim + d];
      all.push([s, j]);
    }
    all.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    indices.push(all.slice(0, k).map((x) => x[1]));
    sims.push(all.slice(0, k).map((x) => x[0]));
  }
  return { indices, sims };
}

function rows(nb: { k: number; indices: Int32Array; similarities: Float32Array }, m: number) {
  const indices: number[][] = [];
  const sims: number[][] = [];
  for (let q = 0; q < m; q++) {
    indices.push(Array.from(nb.indices.subarray(q * nb.k, (q + 1) * nb.k)));
    sims.push(Array.from(nb.similarities.subarray(q * nb.k, (q + 1) * nb.k)));
  }
  return { indices, sims };
}

function assertClose(actual: number[][], expected: number[][]) {
  for (let q = 0; q < expected.length; q++) {
    for (let r = 0; r < expected[q].length; r++) {
      assert.ok(Math.abs(actual[q][r] - expected[q][r]) < 1e-6, `row ${q} rank ${r}: ${actual[q][r]} vs ${expected[q][r]}`);
    }
  }
}

test('exact search equals a naive loop (indices, order, similarities), across block boundaries', () => {
  const dim = 19; // not a multiple of 4
  const base = randomUnit(600, dim, 1); // more than one index block
  const queries = randomUnit(70, dim, 2); // more than one query block
  const index = NeighbourIndex.build(base, dim, { approximate: false });
  assert.equal(index.size, 600);
  assert.equal(index.dim, dim);
  assert.equal(index.approximate, false);
  for (const k of [1, 7, 40]) {
    const got = rows(index.search(queries, k), 70);
    const want = naive(base, queries, dim, k, false);
    assert.deepEqual(got.indices, want.indices, `k=${k}`);
    assertClose(got.sims, want.sims);
  }
});

test('ties are stable by index: many equal similarities keep the lower index first', () => {
  const dim = 3;
  const base = randomUnit(400, dim, 3, 3); // values in {-1, 0, 1}: lots of identical rows
  const index = NeighbourIndex.build(base, dim, { approximate: false });
  const got = rows(index.selfNeighbours(25), 400);
  const want = naive(base, base, dim, 25, true);
  assert.deepEqual(got.indices, want.indices);
  // some row really has tied neighbours
  assert.ok(want.sims.some((s) => s[0] === s[1]));
});

test('selfNeighbours excludes the row itself but includes its exact duplicates', () => {
  const dim = 8;
  const base = randomUnit(50, dim, 4);
  base.copyWithin(10 * dim, 3 * dim, 4 * dim); // row 10 = row 3
  const index = NeighbourIndex.build(base, dim);
  const nb = index.selfNeighbours(3);
  for (let i = 0; i < 50; i++) {
    for (let r = 0; r < 3; r++) assert.notEqual(nb.indices[i * 3 + r], i);
  }
  assert.equal(nb.indices[3 * 3], 10);
  assert.equal(nb.indices[10 * 3], 3);
  assert.ok(Math.abs(nb.similarities[3 * 3] - 1) < 1e-6);
  const want = naive(base, base, dim, 3, true);
  assert.deepEqual(rows(nb, 50).indices, want.indices);
});

test('fewer rows than k: padding with -1 and NaN', () => {
  const dim = 4;
  const base = randomUnit(3, dim, 5);
  const index = NeighbourIndex.build(base, dim);
  const nb = index.selfNeighbours(4);
  assert.equal(nb.k, 4);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(Array.from(nb.indices.subarray(i * 4 + 2, i * 4 + 4)), [-1, -1]);
    assert.ok(Number.isNaN(nb.similarities[i * 4 + 2]) && Number.isNaN(nb.similarities[i * 4 + 3]));
    assert.ok(nb.indices[i * 4] >= 0 && nb.indices[i * 4 + 1] >= 0);
  }
  const s = index.search(randomUnit(2, dim, 6), 5);
  assert.equal(s.indices.length, 10);
  assert.deepEqual(Array.from(s.indices.subarray(3, 5)), [-1, -1]);
  const empty = NeighbourIndex.build(new Float32Array(0), dim);
  assert.equal(empty.size, 0);
  assert.deepEqual(Array.from(empty.search(randomUnit(1, dim, 7), 2).indices), [-1, -1]);
});

test('bad arguments are refused', () => {
  assert.throws(() => NeighbourIndex.build(new Float32Array(10), 3), /whole number of rows/);
  assert.throws(() => NeighbourIndex.build(new Float32Array(9), 0), /dim/);
  const index = NeighbourIndex.build(new Float32Array(9), 3);
  assert.throws(() => index.search(new Float32Array(4), 1), /whole number of rows/);
  assert.throws(() => index.selfNeighbours(0), /k must be/);
});

test('approximate path (usearch HNSW, where installed): recall@10 against exact and exact ordering of what it finds', { skip: !approximateAvailable() && 'usearch is not available on this platform' }, () => {
  const dim = 32;
  const n = 3000;
  // clustered data, as embeddings are
  const centres = randomUnit(30, dim, 8);
  const r = rng(9);
  const base = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = i % 30;
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const x = centres[c * dim + d] + (r() - 0.5) * 0.3;
      base[i * dim + d] = x;
      s += x * x;
    }
    s = Math.sqrt(s);
    for (let d = 0; d < dim; d++) base[i * dim + d] /= s;
  }
  const approx = NeighbourIndex.build(base, dim, { approximate: true });
  assert.equal(approx.approximate, true);
  const exact = NeighbourIndex.build(base, dim, { approximate: false });
  const a = approx.selfNeighbours(10);
  const e = exact.selfNeighbours(10);
  let hit = 0;
  for (let i = 0; i < n; i++) {
    const truth = new Set(e.indices.subarray(i * 10, i * 10 + 10));
    for (let r2 = 0; r2 < 10; r2++) {
      const j = a.indices[i * 10 + r2];
      assert.notEqual(j, i);
      if (truth.has(j)) hit++;
      if (r2 > 0) assert.ok(a.similarities[i * 10 + r2] <= a.similarities[i * 10 + r2 - 1]);
    }
  }
  assert.ok(hit / (n * 10) >= 0.95, `recall@10 ${hit / (n * 10)}`);
});

test('exact search of large inputs (candidates from usearch SIMD scan) still equals the naive loop, ties included', { skip: !approximateAvailable() && 'usearch is not available on this platform' }, () => {
  // 1200 x 1200 x 12 >= EXACT_SIMD_MIN_WORK: the SIMD candidate path runs
  for (const [seed, levels] of [[12, 0], [13, 3]] as const) {
    const dim = 12;
    const base = randomUnit(1200, dim, seed, levels);
    const index = NeighbourIndex.build(base, dim, { approximate: false });
    const got = rows(index.selfNeighbours(10), 1200);
    const want = naive(base, base, dim, 10, true);
    assert.deepEqual(got.indices, want.indices, `levels ${levels}`);
    assertClose(got.sims, want.sims);
  }
});

test('vectors given as a view with an offset (usearch paths copy them: its wrapper ignores view offsets)', { skip: !approximateAvailable() && 'usearch is not available on this platform' }, () => {
  const dim = 8;
  const all = randomUnit(400, dim, 14);
  const view = all.subarray(100 * dim); // 300 rows
  const want = naive(view, view, dim, 3, true);
  const approx = NeighbourIndex.build(view, dim, { approximate: true });
  let hit = 0;
  const got = rows(approx.selfNeighbours(3), 300);
  got.indices.forEach((r, i) => r.forEach((j) => (hit += want.indices[i].includes(j) ? 1 : 0)));
  assert.ok(hit / 900 >= 0.95, `recall ${hit / 900}`);
  assert.ok(got.indices.every((r) => r.every((j) => j >= 0 && j < 300)));
});

test('selfNeighboursAsync / searchAsync (similarities as ONNX Runtime matrix products) equal the naive loop, ties included', async () => {
  for (const [seed, levels] of [[15, 0], [16, 3]] as const) {
    const dim = 12;
    const base = randomUnit(1200, dim, seed, levels); // 1200 x 1200 x 12 >= EXACT_GEMM_MIN_WORK
    const index = NeighbourIndex.build(base, dim, { approximate: false });
    const got = rows(await index.selfNeighboursAsync(10), 1200);
    const want = naive(base, base, dim, 10, true);
    assert.deepEqual(got.indices, want.indices, `levels ${levels}`);
    assertClose(got.sims, want.sims);
    const queries = randomUnit(1500, dim, seed + 100, levels);
    const s = rows(await index.searchAsync(queries, 5), 1500);
    assert.deepEqual(s.indices, naive(base, queries, dim, 5, false).indices);
  }
});

test('projected graph (NeighbourIndexOptions.project): full-width similarities, recall@10 against exact, projected queries', { skip: !approximateAvailable() && 'usearch is not available on this platform' }, () => {
  const dim = 256;
  const n = 2000;
  const centres = randomUnit(20, dim, 21);
  const r = rng(22);
  const base = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const x = centres[(i % 20) * dim + d] + (r() - 0.5) * 0.15;
      base[i * dim + d] = x;
      s += x * x;
    }
    s = Math.sqrt(s);
    for (let d = 0; d < dim; d++) base[i * dim + d] /= s;
  }
  const projected = NeighbourIndex.build(base, dim, { approximate: true, project: 64 });
  assert.equal(projected.approximate, true);
  assert.equal(projected.projectedDim, 64);
  // Rows no wider than twice the projection keep the full width.
  assert.equal(NeighbourIndex.build(base.subarray(0, 100 * 128), 128, { approximate: true, project: 64 }).projectedDim, 0);
  const exact = NeighbourIndex.build(base, dim, { approximate: false });
  const e = exact.selfNeighbours(10);
  const a = projected.selfNeighbours(10);
  let hit = 0;
  let worstGap = 0;
  for (let i = 0; i < n; i++) {
    const truth = new Set(e.indices.subarray(i * 10, i * 10 + 10));
    let gap = 0;
    for (let r2 = 0; r2 < 10; r2++) {
      const j = a.indices[i * 10 + r2];
      assert.notEqual(j, i);
      if (truth.has(j)) hit++;
      gap += (e.similarities[i * 10 + r2] - a.similarities[i * 10 + r2]) / 10;
      // re-scored on the full rows
      let s = 0;
      for (let d = 0; d < dim; d++) s += base[i * dim + d] * base[j * dim + d];
      assert.ok(Math.abs(a.similarities[i * 10 + r2] - s) < 1e-5);
      if (r2 > 0) assert.ok(a.similarities[i * 10 + r2] <= a.similarities[i * 10 + r2 - 1]);
    }
    worstGap = Math.max(worstGap, gap);
  }
  // Members of a cluster are all about as near (the hard case for an approximate search): the projection misses
  // some of the exact ten, but what it finds is nearly as near (the outlier score is their mean).
  assert.ok(hit / (n * 10) >= 0.6, `recall@10 ${hit / (n * 10)}`);
  assert.ok(worstGap >= 0 && worstGap < 0.03, `largest gap of the mean similarity ${worstGap}`);
  // Outside queries are projected the same way: a row asked as a query finds itself first.
  const q = projected.search(base.slice(5 * dim, 7 * dim), 3);
  assert.deepEqual([q.indices[0], q.indices[3]], [5, 6]);
});

/** Clustered unit rows: `clusters` random centres, each row centre + noise; every 10th row a near-copy of the row before. */
function clustered(n: number, dim: number, clusters: number, seed: number, noise = 0.6): Float32Array {
  const r = rng(seed);
  const g = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const centres = Array.from({ length: clusters }, () => Array.from({ length: dim }, g));
  const v = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const copy = i % 10 === 9;
    const c = centres[i % clusters];
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const x = copy ? v[(i - 1) * dim + d] + 0.05 * g() / Math.sqrt(dim) : c[d] / Math.sqrt(dim) + (noise * g()) / Math.sqrt(dim);
      v[i * dim + d] = x;
      s += x * x;
    }
    for (let d = 0; d < dim; d++) v[i * dim + d] /= Math.sqrt(s);
  }
  return v;
}

const ivfOptions = { ivf: true, ivfListRows: 64, ivfCandidates: 400 } as const;

test('IVF index (ONNX Runtime): near-copies found, neighbours close to exact after re-scoring, deterministic', async () => {
  const dim = 192;
  const n = 3000;
  const base = clustered(n, dim, 40, 3, 0.4);
  const ivf = await NeighbourIndex.buildFromRows(packedRowSource(base, dim), ivfOptions);
  if (!(await ivfAvailable())) return assert.equal(ivf.kind, 'exact');
  assert.equal(ivf.kind, 'ivf');
  assert.equal(ivf.approximate, true);
  assert.equal(ivf.projectedDim, 64, 'rows wider than twice the width are projected');
  assert.throws(() => ivf.selfNeighbours(3), /selfNeighboursAsync/);
  const k = 10;
  const nb = await ivf.selfNeighboursAsync(k);
  assert.equal(nb.projected, true);
  // Every planted near-copy is its source's first neighbour (projected cosine well above the cluster's).
  for (let i = 9; i < n; i += 10) assert.equal(nb.indices[(i - 1) * k], i, `row ${i - 1}`);
  for (let q = 0; q < n; q++) for (let r = 0; r < k; r++) assert.notEqual(nb.indices[q * k + r], q, 'never itself');
  // Re-scored at full width (rescore: the same neighbours; refine: a deeper search), against the exact answer.
  const exact = NeighbourIndex.build(base, dim, { approximate: false }).selfNeighbours(k);
  const all = Array.from({ length: n }, (_, i) => i);
  const recall = (x: typeof nb) => {
    let hit = 0;
    for (let q = 0; q < n; q++) {
      const truth = new Set(exact.indices.subarray(q * k, (q + 1) * k));
      for (let r = 0; r < k; r++) if (truth.has(x.indices[q * k + r])) hit++;
    }
    return hit / (n * k);
  };
  const meanGap = (x: typeof nb) => {
    let g = 0;
    for (let i = 0; i < n * k; i++) g += exact.similarities[i] - x.similarities[i];
    return g / (n * k);
  };
  ivf.rescore(nb, all);
  for (let q = 0; q < n; q++) {
    for (let r = 0; r < k; r++) {
      const j = nb.indices[q * k + r];
      let s = 0;
      for (let d = 0; d < dim; d++) s += base[q * dim + d] * base[j * dim + d];
      assert.ok(Math.abs(nb.similarities[q * k + r] - s) < 1e-5, 'full-width cosine after rescore');
      if (r > 0) assert.ok(nb.similarities[q * k + r] <= nb.similarities[q * k + r - 1], 'ordered');
    }
  }
  // Members of an isotropic cluster are all about as near (the hard case): recall@10 is low by chance, but the
  // neighbours found are nearly as similar as the exact ten. refine (a deeper search) narrows the gap.
  const rescored = { recall: recall(nb), gap: meanGap(nb) };
  await ivf.refine(nb, all);
  const refined = { recall: recall(nb), gap: meanGap(nb) };
  const text = `rescore ${JSON.stringify(rescored)}, refine ${JSON.stringify(refined)}`;
  assert.ok(rescored.gap >= -1e-6 && rescored.gap < 0.03, text);
  assert.ok(refined.gap >= -1e-6 && refined.gap <= rescored.gap, text);
  assert.ok(refined.recall >= rescored.recall && rescored.recall > 0.2, text);
  // exactRefine (every projected row searched, the best 100 re-scored at full width): nearly the exact answer, on
  // a subset of rows only (the others untouched).
  const some = Array.from({ length: 300 }, (_, i) => i * 10);
  const before = nb.indices.slice();
  await ivf.exactRefine(nb, some);
  let hit = 0;
  let gap = 0;
  for (const q of some) {
    const truth = new Set(exact.indices.subarray(q * k, (q + 1) * k));
    for (let r = 0; r < k; r++) {
      if (truth.has(nb.indices[q * k + r])) hit++;
      gap += exact.similarities[q * k + r] - nb.similarities[q * k + r];
      assert.notEqual(nb.indices[q * k + r], q, 'never itself');
    }
  }
  assert.ok(hit / (some.length * k) >= 0.97 && hit / (some.length * k) >= refined.recall, `exactRefine recall ${hit / (some.length * k)}, refine ${refined.recall}`);
  assert.ok(gap / (some.length * k) >= -1e-6 && gap / (some.length * k) < 1e-3, `exactRefine gap ${gap / (some.length * k)}`);
  for (let q = 1; q < n; q += 10) assert.deepEqual(nb.indices.subarray(q * k, (q + 1) * k), before.subarray(q * k, (q + 1) * k), 'rows not asked for unchanged');
  // refineWithin: one group holding every row is the exact projected search again; rows without a group untouched.
  const fresh = await ivf.selfNeighboursAsync(k);
  const groupOf = new Int32Array(n).fill(-1);
  for (let r = 0; r < n; r += 2) groupOf[r] = 0;
  const asked = Array.from({ length: 300 }, (_, i) => i * 10 + 1).concat(Array.from({ length: 300 }, (_, i) => i * 10));
  const untouched = fresh.indices.slice();
  await ivf.refineWithin(fresh, asked, groupOf, { take: 100 });
  let hitWithin = 0;
  for (let i = 0; i < 300; i++) {
    const odd = i * 10 + 1;
    assert.deepEqual(fresh.indices.subarray(odd * k, (odd + 1) * k), untouched.subarray(odd * k, (odd + 1) * k), 'a row without a group is untouched');
    const q = i * 10;
    // Against the exact ten among the even rows (brute force): the group's rows searched, at full width.
    const sims: [number, number][] = [];
    for (let e = 0; e < n; e += 2) {
      if (e === q) continue;
      let s2 = 0;
      for (let d = 0; d < dim; d++) s2 += base[q * dim + d] * base[e * dim + d];
      sims.push([s2, e]);
    }
    sims.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const truthEven = new Set(sims.slice(0, k).map((x) => x[1]));
    for (let r = 0; r < k; r++) {
      const j = fresh.indices[q * k + r];
      let s2 = 0;
      for (let d = 0; d < dim; d++) s2 += base[q * dim + d] * base[j * dim + d];
      assert.ok(Math.abs(fresh.similarities[q * k + r] - s2) < 1e-5, 'full-width cosine');
      if (truthEven.has(j)) hitWithin++;
    }
  }
  assert.ok(hitWithin / (300 * k) >= 0.95, `refineWithin recall of the exact ten among the group ${hitWithin / (300 * k)}`);
  // Deterministic: a second build answers the same.
  const again = await (await NeighbourIndex.buildFromRows(packedRowSource(base, dim), ivfOptions)).selfNeighboursAsync(k);
  const first = await ivf.selfNeighboursAsync(k);
  assert.deepEqual(again.indices, first.indices);
  assert.deepEqual(again.similarities, first.similarities);
  // searchAsync: full-width answers; a row's own vector finds itself first.
  const q = base.slice(5 * dim, 7 * dim);
  const found = await ivf.searchAsync(q, 3);
  assert.equal(found.indices[0], 5);
  assert.equal(found.indices[3], 6);
  assert.ok(Math.abs(found.similarities[0] - 1) < 1e-5);
});

test('IVF index edge cases: fewer rows than lists, duplicate vectors, k above the list size, narrow rows, zero rows', async () => {
  if (!(await ivfAvailable())) return;
  const dim = 16; // narrow: not projected (the "projected" rows are the normalised rows)
  const base = randomUnit(40, dim, 9);
  // ivfListRows 1: as many lists as rows (never more); k above any list's size: every other row, in exact order.
  const tiny = await NeighbourIndex.buildFromRows(packedRowSource(base, dim), { ivf: true, ivfListRows: 1, ivfCandidates: 4 });
  assert.equal(tiny.kind, 'ivf');
  assert.equal(tiny.projectedDim, dim);
  const nb = await tiny.selfNeighboursAsync(39);
  const want = rows(NeighbourIndex.build(base, dim, { approximate: false }).selfNeighbours(39), 40);
  const got = rows(nb, 40);
  for (let q = 0; q < 40; q++) assert.deepEqual([...got.indices[q]].sort((a, b) => a - b), [...want.indices[q]].sort((a, b) => a - b), `row ${q}: all the others`);
  tiny.rescore(nb, Array.from({ length: 40 }, (_, i) => i));
  assertClose(rows(nb, 40).sims, want.sims);
  // k above the rows: padded with -1 / NaN.
  const over = await tiny.selfNeighboursAsync(45);
  assert.equal(over.indices[44], -1);
  assert.ok(Number.isNaN(over.similarities[44]));
  // All rows the same vector (and not normalised): each row's neighbours are the others, at cosine 1.
  const same = new Float32Array(30 * dim);
  for (let i = 0; i < 30; i++) same.set(base.subarray(0, dim).map((x) => 3 * x), i * dim);
  const dup = await NeighbourIndex.buildFromRows(packedRowSource(same, dim), { ivf: true, ivfListRows: 4 });
  const dn = await dup.selfNeighboursAsync(5);
  for (let q = 0; q < 30; q++) {
    for (let r = 0; r < 5; r++) {
      assert.notEqual(dn.indices[q * 5 + r], q);
      assert.ok(dn.indices[q * 5 + r] >= 0);
      assert.ok(Math.abs(dup.cosine(q, dn.indices[q * 5 + r]) - 1) < 1e-5);
    }
  }
  // A zero row: cosine 0 with everything, no NaN.
  const withZero = base.slice();
  withZero.fill(0, 0, dim);
  const z = await NeighbourIndex.buildFromRows(packedRowSource(withZero, dim), { ivf: true, ivfListRows: 8 });
  assert.equal(z.cosine(0, 1), 0);
  const zn = await z.selfNeighboursAsync(3);
  for (let i = 0; i < zn.similarities.length; i++) assert.ok(!Number.isNaN(zn.similarities[i]));
  // One row: no neighbours.
  const one = await NeighbourIndex.buildFromRows(packedRowSource(base.subarray(0, dim), dim), { ivf: true });
  assert.equal((await one.selfNeighboursAsync(2)).indices[0], -1);
});

test('buildFromRows picks the index by size: exact/HNSW below IVF_MIN_ROWS (same answers as build), never IVF when told not to', async () => {
  const dim = 24;
  const base = randomUnit(300, dim, 4);
  const raw = base.map((x, i) => x * (1 + (Math.floor(i / dim) % 7))); // rows of any norm are normalised
  const fromRows = await NeighbourIndex.buildFromRows(packedRowSource(raw, dim));
  assert.equal(fromRows.kind, 'exact');
  assertClose(rows(fromRows.selfNeighbours(5), 300).sims, rows(NeighbourIndex.build(base, dim).selfNeighbours(5), 300).sims);
  assert.ok(IVF_MIN_ROWS > EXACT_AUTO_MAX_ROWS);
  assert.equal((await NeighbourIndex.buildFromRows(packedRowSource(raw, dim), { ivf: false, approximate: false })).kind, 'exact');
  // onRows: every raw row once, in order, on both the packed and (where ONNX Runtime loads) the IVF build.
  for (const ivf of [false, true]) {
    const seen = new Float32Array(raw.length).fill(NaN);
    let next = 0;
    const index = await NeighbourIndex.buildFromRows(packedRowSource(raw, dim), {
      ivf,
      onRows: (start, block, count) => {
        assert.equal(start, next);
        seen.set(block.subarray(0, count * dim), start * dim);
        next = start + count;
      },
    });
    if (ivf && index.kind !== 'ivf') continue;
    assert.equal(next, 300);
    assert.deepEqual(seen, raw);
  }
});

test('IVF score blocks: at most IVF_SCORE_OUTPUT scores a block (ONNX Runtime keeps its largest buffers), at least one row', () => {
  for (const c of [1, 2, 63, 512, 3906, 100_000, IVF_SCORE_OUTPUT, 2 * IVF_SCORE_OUTPUT]) {
    const rows = assignBlockRows(c);
    assert.ok(rows >= 1 && rows <= 8192, `${c} centroids: ${rows} rows`);
    assert.ok(rows === 1 || rows * c <= IVF_SCORE_OUTPUT, `${c} centroids: ${rows} rows make ${rows * c} scores`);
  }
  assert.equal(assignBlockRows(3906), 1073);
  assert.equal(assignBlockRows(64), 8192);
});

test('the top-k session reads views with an offset as the rows they show (the IVF index passes views, not copies)', async () => {
  const topk = await onnxTopK();
  if (!topk) return;
  const w = 8;
  const all = randomUnit(300, w, 41);
  const a = all.subarray(17 * w, 50 * w);
  const b = all.subarray(100 * w, 290 * w);
  const viewed = await topk.run(a, 33, w, b, 190, 5);
  const copied = await topk.run(a.slice(), 33, w, b.slice(), 190, 5);
  assert.deepEqual(viewed.indices, copied.indices);
  assert.deepEqual(viewed.scores, copied.scores);
  // And they are the rows shown: the best of row 17 among rows 100.. by a plain loop.
  let best = -1;
  let bestS = -Infinity;
  for (let j = 0; j < 190; j++) {
    let s = 0;
    for (let d = 0; d < w; d++) s += a[d] * b[j * w + d];
    if (s > bestS) [best, bestS] = [j, s];
  }
  assert.equal(viewed.indices[0], best);
});

test('bestOfPool: the first t ids by (similarity descending, id ascending), as the comparison sort gives them', () => {
  const next = rng(41);
  for (let trial = 0; trial < 200; trial++) {
    const filled = 1 + Math.floor(next() * 300);
    const t = 1 + Math.floor(next() * 120);
    // Few distinct similarities (ties across the cut), -0 beside 0, ids distinct and unordered.
    const sims = Float32Array.from({ length: filled }, () => (next() < 0.1 ? (next() < 0.5 ? -0 : 0) : Math.round(next() * 20) / 20 - 0.5));
    const ids = Int32Array.from({ length: filled }, (_, x) => x);
    for (let x = filled - 1; x > 0; x--) {
      const y = Math.floor(next() * (x + 1));
      [ids[x], ids[y]] = [ids[y], ids[x]];
    }
    const padded = new Int32Array(filled + 5);
    padded.set(ids);
    const paddedSims = new Float32Array(filled + 5).fill(9); // past `filled`: never read
    paddedSims.set(sims);
    const expected = Array.from({ length: filled }, (_, x) => x)
      .sort((a, b) => sims[b] - sims[a] || ids[a] - ids[b])
      .slice(0, t)
      .map((x) => ids[x]);
    const got = bestOfPool(padded, paddedSims, filled, t);
    assert.deepEqual([...got].sort((a, b) => a - b), [...expected].sort((a, b) => a - b), `trial ${trial}`);
    assert.equal(got.length, Math.min(t, filled));
  }
});
