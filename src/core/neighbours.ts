/**
 * The one k-nearest-neighbour index of CLIP Lens (kNN label route, near-duplicate and outlier search, text search).
 *
 * Vectors are L2-normalised by the caller; similarity = cosine = dot product. Two paths:
 * - exact: blocked dot products in plain TypeScript. Results are ordered by similarity (computed in float64),
 *   ties broken by the lower row index (stable), so the answer is deterministic and equals a naive loop. For large
 *   inputs (EXACT_SIMD_MIN_WORK), the candidates come from usearch's SIMD brute-force scan (k + 8 per query, float32)
 *   and are re-scored and ordered the same way; a query whose ties reach past its candidates is redone by the loop.
 * - approximate: an HNSW graph from the `usearch` package (an optional dependency with prebuilt binaries for
 *   linux-x64, linux-arm64 and macOS; none is downloaded at install time). Where it cannot be loaded (e.g. Windows),
 *   the exact path is used and `approximate` is false. Results of the approximate path are re-scored exactly
 *   (float64 dot products) and ordered the same way as the exact path.
 *
 * `approximate: 'auto'` (the default) uses the exact path up to {@link EXACT_AUTO_MAX_ROWS} indexed rows: below that
 * the exact search of all rows against all rows is faster than building the graph (measured, docs/benchmarks.md).
 */

import { onnxMatMul, type MatMul } from './onnxMatMul';

/** rows x k, row-major, best first; index -1 and similarity NaN pad rows with fewer than k neighbours. */
export interface Neighbours {
  k: number;
  indices: Int32Array;
  similarities: Float32Array;
}

export interface NeighbourIndexOptions {
  /** 'auto' (default): exact up to EXACT_AUTO_MAX_ROWS rows, approximate above (when available). */
  approximate?: boolean | 'auto';
  /**
   * On the approximate path, when the rows are wider than twice this: build the graph over a {@link randomProjection}
   * of the rows to this many dimensions (queries are projected the same way), take {@link projectedCandidates}
   * candidates per query from it and re-score them on the full rows (float64), so the answer's similarities are the
   * full-width cosines. About 7x cheaper to build and search at 64 than at 512 dimensions (docs/benchmarks.md).
   */
  project?: number;
}

/** Candidates per query taken from a projected graph (see NeighbourIndexOptions.project): max(2k, k + 8). */
export function projectedCandidates(k: number): number {
  return Math.max(5 * k, k + 8);
}

/**
 * Above this many indexed rows, 'auto' builds the approximate index. Measured (all rows' 10 neighbours, 512 dims, a
 * shared 2-core machine): exact 4.5 s vs graph 5.5 s at 3,000 rows, 31 s vs 45 s at 6,000; exact grows with n^2.
 */
export const EXACT_AUTO_MAX_ROWS = 10_000;

/** Rows of the index scanned per block (keeps the block in cache while a block of queries runs over it). */
const INDEX_BLOCK = 256;
/** Query rows per block. */
const QUERY_BLOCK = 32;

interface UsearchMatches {
  keys: BigUint64Array;
  distances: Float32Array;
  counts?: BigUint64Array;
  k?: number;
}
interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(vectors: Float32Array, k: number, threads: number): UsearchMatches;
}
interface UsearchModule {
  Index: new (config: Record<string, unknown>) => UsearchIndex;
  exactSearch(dataset: Float32Array, queries: Float32Array, dimensions: number, count: number, metric: string, threads?: number): UsearchMatches;
}

/** From this many multiply-adds (queries x rows x dim) on, exact search takes its candidates from usearch's SIMD scan. */
export const EXACT_SIMD_MIN_WORK = 1 << 24;
/** From this many multiply-adds on, searchAsync / selfNeighboursAsync compute similarities on ONNX Runtime. */
export const EXACT_GEMM_MIN_WORK = 1 << 24;
/** Candidates beyond k taken from the SIMD scan, so float32 rounding cannot push a true neighbour out. */
const SIMD_EXTRA = 8;

let usearchModule: UsearchModule | null | undefined;
/** usearch on first use, or null when it is not installed / has no binary for this platform. */
export function loadUsearch(): UsearchModule | null {
  if (usearchModule !== undefined) return usearchModule;
  try {
    const m = require('usearch') as UsearchModule & { default?: UsearchModule };
    usearchModule = m.Index ? m : (m.default ?? null);
  } catch {
    usearchModule = null;
  }
  return usearchModule;
}

/** Whether the approximate path can run on this machine. */
export function approximateAvailable(): boolean {
  return loadUsearch() !== null;
}

export class NeighbourIndex {
  readonly size: number;
  readonly dim: number;
  readonly approximate: boolean;
  private readonly vectors: Float32Array;
  private readonly graph: UsearchIndex | undefined;
  /** The graph's rows when it is built over a projection (width projectedDim), else undefined. */
  private readonly projected: Float32Array | undefined;
  /** Width of the projection the graph holds (0: the graph holds the full rows). */
  readonly projectedDim: number;

  private constructor(vectors: Float32Array, dim: number, graph: UsearchIndex | undefined, projected?: Float32Array, projectedDim = 0) {
    this.vectors = vectors;
    this.dim = dim;
    this.size = dim > 0 ? vectors.length / dim : 0;
    this.graph = graph;
    this.approximate = graph !== undefined;
    this.projected = projected;
    this.projectedDim = projected ? projectedDim : 0;
  }

  /** vectors: n x dim row-major, L2-normalised by the caller; similarity = cosine = dot product. */
  static build(vectors: Float32Array, dim: number, options: NeighbourIndexOptions = {}): NeighbourIndex {
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`NeighbourIndex: dim must be a positive integer, got ${dim}`);
    if (vectors.length % dim !== 0) {
      throw new RangeError(`NeighbourIndex: ${vectors.length} values are not a whole number of rows of width ${dim}`);
    }
    const n = vectors.length / dim;
    const want = options.approximate ?? 'auto';
    const useGraph = want === true || (want === 'auto' && n > EXACT_AUTO_MAX_ROWS);
    let graph: UsearchIndex | undefined;
    const us = useGraph && n > 0 ? loadUsearch() : null;
    let projected: Float32Array | undefined;
    const width = options.project ?? 0;
    if (us) {
      if (width > 0 && dim > 2 * width) projected = randomProjection(vectors, dim, width);
      graph = new us.Index({ metric: 'ip', dimensions: projected ? width : dim, connectivity: 16, expansion_add: 128, expansion_search: 64, quantization: 'f32' });
      const keys = new BigUint64Array(n);
      for (let i = 0; i < n; i++) keys[i] = BigInt(i);
      graph.add(keys, projected ?? plain(vectors), 0);
    }
    return new NeighbourIndex(vectors, dim, graph, projected, width);
  }

  /** The k nearest indexed rows of each query row (queries: m x dim). */
  search(queries: Float32Array, k: number): Neighbours {
    const m = this.checkQueries(queries, k);
    if (this.graph) return this.graphSearch(queries, m, k, false);
    return exactAny(this.vectors, this.size, queries, m, this.dim, k, false);
  }

  /** Each indexed row's k nearest OTHER rows (itself excluded, exact duplicates of it included). */
  selfNeighbours(k: number): Neighbours {
    this.checkK(k);
    if (this.graph) return this.graphSearch(this.vectors, this.size, k, true);
    return exactAny(this.vectors, this.size, this.vectors, this.size, this.dim, k, true);
  }

  /**
   * {@link search}, with a large exact search done as matrix products on ONNX Runtime (same answers; much faster
   * than the scan at tens of thousands of rows). The approximate index answers as in {@link search}.
   */
  async searchAsync(queries: Float32Array, k: number): Promise<Neighbours> {
    const m = this.checkQueries(queries, k);
    const mm = !this.graph && m * this.size * this.dim >= EXACT_GEMM_MIN_WORK ? await onnxMatMul() : null;
    if (!mm || Math.min(this.size, k + SIMD_EXTRA) >= this.size) return this.search(queries, k);
    return exactGemm(mm, this.vectors, this.size, queries, m, this.dim, k, false);
  }

  /** {@link selfNeighbours}, with a large exact search as matrix products on ONNX Runtime (see searchAsync). */
  async selfNeighboursAsync(k: number): Promise<Neighbours> {
    this.checkK(k);
    const mm = !this.graph && this.size * this.size * this.dim >= EXACT_GEMM_MIN_WORK ? await onnxMatMul() : null;
    if (!mm || Math.min(this.size, k + 1 + SIMD_EXTRA) >= this.size) return this.selfNeighbours(k);
    return exactGemm(mm, this.vectors, this.size, this.vectors, this.size, this.dim, k, true);
  }

  private checkK(k: number): void {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`NeighbourIndex: k must be a positive integer, got ${k}`);
  }

  private checkQueries(queries: Float32Array, k: number): number {
    this.checkK(k);
    if (queries.length % this.dim !== 0) {
      throw new RangeError(`NeighbourIndex: ${queries.length} query values are not a whole number of rows of width ${this.dim}`);
    }
    return queries.length / this.dim;
  }

  /** HNSW candidates (a few more than k), re-scored in float64 and ordered like the exact path. */
  private graphSearch(queries: Float32Array, m: number, k: number, self: boolean): Neighbours {
    const graph = this.graph!;
    const n = this.size;
    const dim = this.dim;
    const want = Math.min(n, (this.projected ? projectedCandidates(k) : k + 4) + (self ? 1 : 0));
    // The graph is searched with the queries in its own space: the projected rows themselves, or projected queries.
    const graphQueries = this.projected ? (self ? this.projected : randomProjection(queries, dim, this.projectedDim)) : queries;
    const gdim = this.projected ? this.projectedDim : dim;
    const out = emptyNeighbours(m, k);
    // Batches bound the memory of one usearch answer.
    const BATCH = 4096;
    const cand: number[] = [];
    const sims: number[] = [];
    for (let b0 = 0; b0 < m; b0 += BATCH) {
      const b1 = Math.min(m, b0 + BATCH);
      const res = graph.search(graphQueries.slice(b0 * gdim, b1 * gdim), want, 0);
      const stride = res.keys.length / (b1 - b0);
      for (let q = b0; q < b1; q++) {
        const count = res.counts ? Number(res.counts[q - b0]) : stride;
        cand.length = 0;
        sims.length = 0;
        const qo = q * dim;
        for (let c = 0; c < count; c++) {
          const j = Number(res.keys[(q - b0) * stride + c]);
          if (self && j === q) continue;
          cand.push(j);
          sims.push(dot(queries, qo, this.vectors, j * dim, dim));
        }
        const order = cand.map((_, i) => i).sort((a, b) => sims[b] - sims[a] || cand[a] - cand[b]);
        const take = Math.min(k, order.length);
        for (let r = 0; r < take; r++) {
          out.indices[q * k + r] = cand[order[r]];
          out.similarities[q * k + r] = sims[order[r]];
        }
      }
    }
    return out;
  }
}

/**
 * Exact search: for large inputs, candidates (k + 8 per query) from usearch's SIMD brute-force scan, re-scored in
 * float64 and ordered (similarity, then index); a query whose ties reach the end of its candidate list is redone by
 * the plain loop, so ties stay stable by index. Small inputs, or no usearch: the plain loop.
 */
function exactAny(base: Float32Array, n: number, queries: Float32Array, m: number, dim: number, k: number, self: boolean): Neighbours {
  const us = m * n * dim >= EXACT_SIMD_MIN_WORK ? loadUsearch() : null;
  const want = Math.min(n, k + (self ? 1 : 0) + SIMD_EXTRA);
  if (!us || want >= n) return exactSearch(base, n, queries, m, dim, k, self);
  const out = emptyNeighbours(m, k);
  const BATCH = 2048;
  const cand: number[] = [];
  for (let b0 = 0; b0 < m; b0 += BATCH) {
    const b1 = Math.min(m, b0 + BATCH);
    // slice, not subarray: usearch's wrapper reads a typed array's whole buffer, ignoring a view's offset
    const res = us.exactSearch(plain(base), queries.slice(b0 * dim, b1 * dim), dim, want, 'ip', 0);
    const stride = res.keys.length / (b1 - b0);
    for (let q = b0; q < b1; q++) {
      const count = res.counts ? Number(res.counts[q - b0]) : stride;
      cand.length = 0;
      for (let c = 0; c < count; c++) cand.push(Number(res.keys[(q - b0) * stride + c]));
      finishCandidates(out, q, cand, base, n, queries, dim, k, self);
    }
  }
  return out;
}

/**
 * Row q of the answer from candidate rows (any order; the query's own row is dropped in a self search): re-scored in
 * float64, ordered by (similarity, index); when ties reach the last candidate (or there are too few), the plain
 * loop answers the row instead.
 */
function finishCandidates(out: Neighbours, q: number, candidates: number[], base: Float32Array, n: number, queries: Float32Array, dim: number, k: number, self: boolean): void {
  const cand: number[] = [];
  const sims: number[] = [];
  for (const j of candidates) {
    if (self && j === q) continue;
    cand.push(j);
    sims.push(dot(queries, q * dim, base, j * dim, dim));
  }
  const order = cand.map((_, i) => i).sort((a, b) => sims[b] - sims[a] || cand[a] - cand[b]);
  const lastKept = order[Math.min(k, order.length) - 1];
  let worst = Infinity;
  for (const v of sims) worst = Math.min(worst, v);
  const available = n - (self ? 1 : 0);
  if ((order.length < k && order.length < available) || (order.length > k && sims[lastKept] <= worst)) {
    const one = exactSearch(base, n, queries.subarray(q * dim, (q + 1) * dim), 1, dim, k, self, q);
    out.indices.set(one.indices, q * k);
    out.similarities.set(one.similarities, q * k);
    return;
  }
  for (let r = 0; r < Math.min(k, order.length); r++) {
    out.indices[q * k + r] = cand[order[r]];
    out.similarities[q * k + r] = sims[order[r]];
  }
}

/**
 * Exact search with the similarities computed as float32 matrix products on ONNX Runtime (blocks of queries
 * against all rows), the best k + 8 per query kept by float32 score and finished by {@link finishCandidates}.
 */
async function exactGemm(mm: MatMul, base: Float32Array, n: number, queries: Float32Array, m: number, dim: number, k: number, self: boolean): Promise<Neighbours> {
  const want = Math.min(n, k + (self ? 1 : 0) + SIMD_EXTRA);
  const baseT = new Float32Array(dim * n);
  for (let j = 0; j < n; j++) for (let d = 0; d < dim; d++) baseT[d * n + j] = base[j * dim + d];
  const out = emptyNeighbours(m, k);
  const rowsPerBlock = Math.max(1, Math.floor((1 << 23) / n));
  const topS = new Float32Array(want);
  const topI = new Int32Array(want);
  const cand: number[] = [];
  for (let b0 = 0; b0 < m; b0 += rowsPerBlock) {
    const b1 = Math.min(m, b0 + rowsPerBlock);
    const sims = await mm.run(queries.slice(b0 * dim, b1 * dim), b1 - b0, dim, baseT, n);
    for (let q = b0; q < b1; q++) {
      const o = (q - b0) * n;
      let filled = 0;
      for (let j = 0; j < n; j++) {
        const v = sims[o + j];
        if (filled === want && !(v > topS[want - 1])) continue;
        let p = filled === want ? want - 1 : filled;
        while (p > 0 && topS[p - 1] < v) {
          topS[p] = topS[p - 1];
          topI[p] = topI[p - 1];
          p--;
        }
        topS[p] = v;
        topI[p] = j;
        if (filled < want) filled++;
      }
      cand.length = 0;
      for (let c = 0; c < filled; c++) cand.push(topI[c]);
      finishCandidates(out, q, cand, base, n, queries, dim, k, self);
    }
  }
  return out;
}

/**
 * Rows projected onto `width` random Gaussian directions (a fixed seed: the same answer every run) and L2-normalised.
 * Cosines are preserved to about 1/sqrt(width) (Johnson-Lindenstrauss), plenty to keep a near-copy (cosine >= 0.9)
 * among a row's nearest neighbours, and the HNSW graph costs about 7x less to build and search at 64 than at 512
 * dimensions (measured: 10,000 rows, add 2.1 vs 14.8 s CPU, search 1.0 vs 9.3 s).
 */
export function randomProjection(vectors: Float32Array, dim: number, width: number): Float32Array {
  const n = vectors.length / dim;
  let seed = 0x9e3779b9;
  const uniform = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) + 0.5) / 4294967296;
  };
  const basis = new Float32Array(dim * width);
  for (let i = 0; i < basis.length; i++) basis[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const out = new Float32Array(n * width);
  const row = new Float64Array(width);
  for (let i = 0; i < n; i++) {
    row.fill(0);
    for (let d = 0; d < dim; d++) {
      const x = vectors[i * dim + d];
      if (x === 0) continue;
      const b = d * width;
      for (let w = 0; w < width; w++) row[w] += x * basis[b + w];
    }
    let s = 0;
    for (let w = 0; w < width; w++) s += row[w] * row[w];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let w = 0; w < width; w++) out[i * width + w] = row[w] * inv;
  }
  return out;
}

/** The array itself when it spans its whole buffer, else a copy (usearch ignores a view's offset). */
function plain(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice();
}

function emptyNeighbours(m: number, k: number): Neighbours {
  const indices = new Int32Array(m * k).fill(-1);
  const similarities = new Float32Array(m * k).fill(NaN);
  return { k, indices, similarities };
}

/** Dot product of two rows, four float64 accumulators. */
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d + 4 <= dim; d += 4) {
    s0 += a[ao + d] * b[bo + d];
    s1 += a[ao + d + 1] * b[bo + d + 1];
    s2 += a[ao + d + 2] * b[bo + d + 2];
    s3 += a[ao + d + 3] * b[bo + d + 3];
  }
  for (; d < dim; d++) s0 += a[ao + d] * b[bo + d];
  return s0 + s1 + (s2 + s3);
}

/**
 * Exact top-k by blocked dot products. Per query a sorted list of the best k so far (float64 similarities);
 * a candidate enters only when strictly better than the current k-th, and is inserted after equal ones, so
 * ties keep the lower index first (rows are scanned in increasing order).
 */
function exactSearch(
  base: Float32Array,
  n: number,
  queries: Float32Array,
  m: number,
  dim: number,
  k: number,
  self: boolean,
  /** Row of the index the first query is (self search of a subset of rows). */
  firstQueryRow = 0,
): Neighbours {
  const out = emptyNeighbours(m, k);
  const bestSim = new Float64Array(QUERY_BLOCK * k);
  const bestIdx = new Int32Array(QUERY_BLOCK * k);
  const filled = new Int32Array(QUERY_BLOCK);
  for (let q0 = 0; q0 < m; q0 += QUERY_BLOCK) {
    const q1 = Math.min(m, q0 + QUERY_BLOCK);
    bestSim.fill(-Infinity);
    bestIdx.fill(-1);
    filled.fill(0);
    for (let j0 = 0; j0 < n; j0 += INDEX_BLOCK) {
      const j1 = Math.min(n, j0 + INDEX_BLOCK);
      for (let q = q0; q < q1; q++) {
        const qo = q * dim;
        const slot = (q - q0) * k;
        const qi = q - q0;
        for (let j = j0; j < j1; j++) {
          if (self && j === q + firstQueryRow) continue;
          const s = dot(queries, qo, base, j * dim, dim);
          const f = filled[qi];
          if (f === k && !(s > bestSim[slot + k - 1])) continue;
          // insertion position: after every entry >= s
          let p = f === k ? k - 1 : f;
          while (p > 0 && bestSim[slot + p - 1] < s) {
            bestSim[slot + p] = bestSim[slot + p - 1];
            bestIdx[slot + p] = bestIdx[slot + p - 1];
            p--;
          }
          bestSim[slot + p] = s;
          bestIdx[slot + p] = j;
          if (f < k) filled[qi] = f + 1;
        }
      }
    }
    for (let q = q0; q < q1; q++) {
      const slot = (q - q0) * k;
      const f = filled[q - q0];
      for (let r = 0; r < f; r++) {
        out.indices[q * k + r] = bestIdx[slot + r];
        out.similarities[q * k + r] = bestSim[slot + r];
      }
    }
  }
  return out;
}
