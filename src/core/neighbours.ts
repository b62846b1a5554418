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
 *
 * A third implementation, IVF ({@link NeighbourIndex.buildFromRows}, chosen by 'auto' from {@link IVF_MIN_ROWS} rows on,
 * when ONNX Runtime loads), serves a million rows: it reads raw rows by range from a {@link RowSource} (no packed
 * normalised copy), projects them to {@link IVF_WIDTH} dimensions with a random basis as blocked matrix products on
 * ONNX Runtime (also the rows' norms), trains a two-level spherical k-means quantiser on a sample (about
 * {@link IVF_LIST_ROWS} rows per list), and answers a list's rows at once: its projected rows against those of the
 * nearest lists (by centroid, until {@link IVF_CANDIDATES} rows) as one Gemm + TopK graph. Its self-search answers
 * carry the projected similarities (`Neighbours.projected`); {@link NeighbourIndex.rescore} and
 * {@link NeighbourIndex.cosine} give full-width cosines where the caller needs them (re-scoring every row's
 * neighbours in JavaScript would cost more than the whole search at a million rows).
 */

import { onnxMatMul, onnxProjection, onnxTopK, type MatMul, type Projection, type TopK } from './onnxMatMul';

/** rows x k, row-major, best first; index -1 and similarity NaN pad rows with fewer than k neighbours. */
export interface Neighbours {
  k: number;
  indices: Int32Array;
  similarities: Float32Array;
  /**
   * Set by the IVF index's self-search: the similarities (and the order) are those of the projected rows, not
   * full-width cosines; {@link NeighbourIndex.rescore} makes chosen rows full-width.
   */
  projected?: boolean;
}

/** Raw rows (any norm; normalised by the index) read by range: the input of {@link NeighbourIndex.buildFromRows}. */
export interface RowSource {
  readonly rows: number;
  readonly dim: number;
  /** Rows start..end-1 as float32, row-major, into out[0 .. (end - start) * dim). */
  copyRows(start: number, end: number, out: Float32Array): void;
}

/** A packed n x dim matrix as a RowSource. */
export function packedRowSource(vectors: Float32Array, dim: number): RowSource {
  return { rows: vectors.length / dim, dim, copyRows: (start, end, out) => out.set(vectors.subarray(start * dim, end * dim)) };
}

/** From this many rows on, 'auto' in {@link NeighbourIndex.buildFromRows} builds the IVF index (measured, docs/benchmarks.md). */
export const IVF_MIN_ROWS = 150_000;
/** Width of the IVF index's random projection. */
export const IVF_WIDTH = 64;
/** Rows per inverted list the IVF quantiser aims at. */
export const IVF_LIST_ROWS = 256;
/** Rows a list's queries are compared with: the nearest lists (by centroid) until at least this many rows. */
export const IVF_CANDIDATES = 1536;
/** A row is also held (for the search) by its second-nearest list when that centroid is within this of its nearest. */
export const IVF_SPILL = 0.05;

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
  /**
   * {@link NeighbourIndex.buildFromRows} only: the IVF index. 'auto' (default): from IVF_MIN_ROWS rows on, when ONNX
   * Runtime loads; true: whenever ONNX Runtime loads; false: never.
   */
  ivf?: boolean | 'auto';
  /**
   * {@link NeighbourIndex.buildFromRows} only: called with each block of raw rows as the build reads them (rows
   * start .. start + count - 1 in rows[0 .. count * dim)), in order, each row once, so a caller needing one pass over
   * the rows (class sums, say) does not decode them again. The block is only valid during the call.
   */
  onRows?: (start: number, rows: Float32Array, count: number) => void;
  /** IVF tuning (tests, benchmarks): rows per list, candidate rows per list's queries. */
  ivfListRows?: number;
  ivfCandidates?: number;
  /** IVF: a row is also held by its second list when that list's centroid is within this of its own's (projected inner products). */
  ivfSpill?: number;
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

/** Whether the IVF index can be built here (ONNX Runtime loads). */
export async function ivfAvailable(): Promise<boolean> {
  const [p, t] = await Promise.all([onnxProjection(), onnxTopK()]);
  return p !== null && t !== null;
}

/** Whether the approximate path can run on this machine. */
export function approximateAvailable(): boolean {
  return loadUsearch() !== null;
}

export class NeighbourIndex {
  readonly size: number;
  readonly dim: number;
  readonly approximate: boolean;
  /** Which implementation answers: 'exact', 'hnsw' (usearch graph) or 'ivf' (see buildFromRows). */
  readonly kind: 'exact' | 'hnsw' | 'ivf';
  private readonly vectors: Float32Array;
  private readonly graph: UsearchIndex | undefined;
  /** The graph's rows when it is built over a projection (width projectedDim), else undefined. */
  private readonly projected: Float32Array | undefined;
  /** Width of the projection the graph (or the IVF index) holds (0: the full rows). */
  readonly projectedDim: number;
  private readonly ivf: Ivf | undefined;

  private constructor(vectors: Float32Array, dim: number, graph: UsearchIndex | undefined, projected?: Float32Array, projectedDim = 0, ivf?: Ivf) {
    this.vectors = vectors;
    this.dim = dim;
    this.size = ivf ? ivf.n : dim > 0 ? vectors.length / dim : 0;
    this.graph = graph;
    this.ivf = ivf;
    this.approximate = graph !== undefined || ivf !== undefined;
    this.kind = ivf ? 'ivf' : graph ? 'hnsw' : 'exact';
    this.projected = projected;
    this.projectedDim = ivf ? ivf.width : projected ? projectedDim : 0;
  }

  /**
   * The index of raw rows read by range (any norm; normalised here). IVF when `options.ivf` says so ('auto': from
   * IVF_MIN_ROWS rows on) and ONNX Runtime loads: no packed copy of the rows is made, the source must stay readable
   * while the index is used (re-scoring reads it). Otherwise the rows are packed, normalised, and {@link build} decides.
   */
  static async buildFromRows(source: RowSource, options: NeighbourIndexOptions = {}): Promise<NeighbourIndex> {
    const { rows: n, dim } = source;
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`NeighbourIndex: dim must be a positive integer, got ${dim}`);
    const want = options.ivf ?? 'auto';
    if (n > 0 && (want === true || (want === 'auto' && options.approximate !== false && n >= IVF_MIN_ROWS))) {
      const [proj, topk] = await Promise.all([onnxProjection(), onnxTopK()]);
      if (proj && topk) {
        const ivf = await Ivf.build(source, proj, topk, { width: options.project ?? IVF_WIDTH, listRows: options.ivfListRows ?? IVF_LIST_ROWS, candidates: options.ivfCandidates ?? IVF_CANDIDATES, spill: options.ivfSpill ?? IVF_SPILL, onRows: options.onRows });
        return new NeighbourIndex(new Float32Array(0), dim, undefined, undefined, 0, ivf);
      }
    }
    const vectors = new Float32Array(n * dim);
    source.copyRows(0, n, vectors);
    options.onRows?.(0, vectors, n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += vectors[i * dim + d] * vectors[i * dim + d];
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let d = 0; d < dim; d++) vectors[i * dim + d] *= inv;
    }
    return NeighbourIndex.build(vectors, dim, options);
  }

  /**
   * Full-width cosines for the given rows of a self-search answer `nb` (from this index), in place: each listed row's
   * neighbours re-scored (float64 dot products of the normalised rows) and re-ordered (similarity, then index).
   * Rows of an exact or HNSW answer are already full-width: unchanged.
   */
  rescore(nb: Neighbours, rows: Iterable<number>): void {
    if (!this.ivf || !nb.projected) return;
    const k = nb.k;
    const order: number[] = [];
    const sims: number[] = [];
    for (const q of rows) {
      order.length = 0;
      sims.length = 0;
      for (let r = 0; r < k; r++) {
        const j = nb.indices[q * k + r];
        if (j < 0) break;
        order.push(j);
        sims.push(this.ivf.cosine(q, j));
      }
      const idx = order.map((_, i) => i).sort((a, b) => sims[b] - sims[a] || order[a] - order[b]);
      for (let r = 0; r < idx.length; r++) {
        nb.indices[q * k + r] = order[idx[r]];
        nb.similarities[q * k + r] = sims[idx[r]];
      }
    }
  }

  /**
   * For the IVF index: a deeper search for the given rows of a self-search answer nb (in place; their neighbours become
   * full-width cosines): each row's list's nearest lists until `deep` rows (default 4 x IVF_CANDIDATES), from each
   * list its best k + 1 and of those the best `take` (default max(4k, 40)) by projected similarity and its current neighbours re-scored at full width. Much
   * nearer the exact answer than {@link rescore}, at about 100 microseconds a row. Other indexes: unchanged.
   */
  async refine(nb: Neighbours, rows: ArrayLike<number>, options: { deep?: number; take?: number } = {}): Promise<void> {
    if (!this.ivf || !nb.projected) return;
    await this.ivf.refine(nb, rows, options.deep ?? 4 * IVF_CANDIDATES, options.take ?? Math.max(4 * nb.k, 40));
  }

  /**
   * For the IVF index: an exact search in the projection for the given rows of a self-search answer nb (in place;
   * their neighbours become full-width cosines): each row against every projected row, its best `take` (default
   * max(10k, 100)) by projected similarity and its current neighbours re-scored at full width. Nearly the exact
   * answer (misses only a neighbour the projection ranks below `take`), at about n x width multiply-adds a row: for
   * a bounded number of rows. Other indexes: unchanged.
   */
  async exactRefine(nb: Neighbours, rows: ArrayLike<number>, options: { take?: number } = {}): Promise<void> {
    if (!this.ivf || !nb.projected) return;
    await this.ivf.exactRefine(nb, rows, options.take ?? Math.max(10 * nb.k, 100));
  }

  /**
   * For the IVF index: a search among each given row's own group (groupOf: a group per indexed row, -1 none) for rows
   * of a self-search answer nb (in place; their neighbours become full-width cosines): the best `take` (default
   * max(4k, 40)) of the group by projected similarity and the current neighbours re-scored at full width. Cheap (a
   * group's rows, not all). Other indexes: unchanged.
   */
  async refineWithin(nb: Neighbours, rows: ArrayLike<number>, groupOf: Int32Array, options: { take?: number } = {}): Promise<void> {
    if (!this.ivf || !nb.projected) return;
    await this.ivf.refineWithin(nb, rows, groupOf, options.take ?? Math.max(4 * nb.k, 40));
  }

  /**
   * How far below a full-width cosine c the similarity the index reports for the pair can plausibly be (IVF
   * self-search: 4 standard deviations of the random projection's error at cosine c, (1 - c^2) / sqrt(width), plus
   * 0.02); 0 when the answers are full-width. Callers re-score candidates within this slack of a threshold.
   */
  projectedSlack(c: number): number {
    if (!this.ivf || this.ivf.width === this.dim) return this.ivf ? 1e-5 : 0;
    return (4 * Math.max(0, 1 - c * c)) / Math.sqrt(this.ivf.width) + 0.02;
  }

  /** Full-width cosine of indexed rows a and b (float64 dot product of the normalised rows). */
  cosine(a: number, b: number): number {
    if (this.ivf) return this.ivf.cosine(a, b);
    return dot(this.vectors, a * this.dim, this.vectors, b * this.dim, this.dim);
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
    if (this.ivf) throw new RangeError('NeighbourIndex: the IVF index answers through searchAsync');
    if (this.graph) return this.graphSearch(queries, m, k, false);
    return exactAny(this.vectors, this.size, queries, m, this.dim, k, false);
  }

  /** Each indexed row's k nearest OTHER rows (itself excluded, exact duplicates of it included). */
  selfNeighbours(k: number): Neighbours {
    this.checkK(k);
    if (this.ivf) throw new RangeError('NeighbourIndex: the IVF index answers through selfNeighboursAsync');
    if (this.graph) return this.graphSearch(this.vectors, this.size, k, true);
    return exactAny(this.vectors, this.size, this.vectors, this.size, this.dim, k, true);
  }

  /**
   * {@link search}, with a large exact search done as matrix products on ONNX Runtime (same answers; much faster
   * than the scan at tens of thousands of rows). The approximate index answers as in {@link search}.
   */
  async searchAsync(queries: Float32Array, k: number): Promise<Neighbours> {
    const m = this.checkQueries(queries, k);
    if (this.ivf) return this.ivf.search(queries, m, k);
    const mm = !this.graph && m * this.size * this.dim >= EXACT_GEMM_MIN_WORK ? await onnxMatMul() : null;
    if (!mm || Math.min(this.size, k + SIMD_EXTRA) >= this.size) return this.search(queries, k);
    return exactGemm(mm, this.vectors, this.size, queries, m, this.dim, k, false);
  }

  /** {@link selfNeighbours}, with a large exact search as matrix products on ONNX Runtime (see searchAsync). */
  async selfNeighboursAsync(k: number): Promise<Neighbours> {
    this.checkK(k);
    if (this.ivf) return this.ivf.selfNeighbours(k);
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
  const basis = projectionBasis(dim, width);
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

/** The random Gaussian basis of {@link randomProjection} (dim x width, row-major; a fixed seed). */
export function projectionBasis(dim: number, width: number): Float32Array {
  let seed = 0x9e3779b9;
  const uniform = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) + 0.5) / 4294967296;
  };
  const basis = new Float32Array(dim * width);
  for (let i = 0; i < basis.length; i++) basis[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return basis;
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

/** Rows per block of the IVF index's projection pass and of its assignment. */
const IVF_BLOCK_ROWS = 8192;
/**
 * Scores per Gemm + TopK block of the IVF build's assignments and list ranking (rows x centroids): 16 MiB of float32.
 * ONNX Runtime's arena keeps a session's largest buffers to the end of the process: 8,192 rows x 3,906 centroids made
 * 128 MiB score blocks (and the ranking one of 61 MiB) that stayed in the process at a million rows.
 */
export const IVF_SCORE_OUTPUT = 1 << 22;
/** Rows per assignment block against c centroids: at most IVF_BLOCK_ROWS, at most IVF_SCORE_OUTPUT scores. */
export function assignBlockRows(c: number): number {
  return Math.max(1, Math.min(IVF_BLOCK_ROWS, Math.floor(IVF_SCORE_OUTPUT / Math.max(1, c))));
}
/** Base rows per Gemm + TopK block of Ivf.exactRefine. */
const EXACT_PROJECTED_BASE_ROWS = 32_768;
/**
 * Scores per block of Ivf.exactRefine (query rows x base rows): 16 MiB of float32, as the build's (ONNX Runtime's arena
 * keeps its largest output: 128 MiB blocks left the process 260 MiB larger after the outlier search at 200,000 rows).
 */
const EXACT_PROJECTED_OUTPUT = IVF_SCORE_OUTPUT;
/** Lists (nearest centroids first) each list's ranking holds; its probe set is taken from them. */
const IVF_RANKED_LISTS = 64;

/**
 * Spherical k-means of m rows (width w, unit norm) into c centroids (c <= m): initial centroids evenly spaced rows,
 * `iterations` rounds of assignment (ONNX Runtime Gemm + TopK 1) and normalised means (an empty cluster keeps its
 * centroid). Deterministic.
 */
async function sphericalKMeans(topk: TopK, rows: Float32Array, m: number, w: number, c: number, iterations: number): Promise<Float32Array> {
  const cent = new Float32Array(c * w);
  for (let j = 0; j < c; j++) cent.set(rows.subarray(Math.floor((j * m) / c) * w, (Math.floor((j * m) / c) + 1) * w), j * w);
  if (c <= 1 && m > 0) iterations = Math.min(iterations, 1);
  const sums = new Float64Array(c * w);
  const counts = new Int32Array(c);
  for (let it = 0; it < iterations; it++) {
    const assign = await assignNearest(topk, rows, m, w, cent, c);
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < m; i++) {
      const a = assign[i];
      counts[a]++;
      const o = i * w;
      const so = a * w;
      for (let d = 0; d < w; d++) sums[so + d] += rows[o + d];
    }
    for (let j = 0; j < c; j++) {
      if (counts[j] === 0) continue;
      let s = 0;
      for (let d = 0; d < w; d++) s += sums[j * w + d] * sums[j * w + d];
      if (s === 0) continue;
      const inv = 1 / Math.sqrt(s);
      for (let d = 0; d < w; d++) cent[j * w + d] = sums[j * w + d] * inv;
    }
  }
  return cent;
}

/** The nearest centroid (largest inner product; ties: the lower centroid) of each of m rows, in blocks. */
async function assignNearest(topk: TopK, rows: Float32Array, m: number, w: number, cent: Float32Array, c: number): Promise<Int32Array> {
  const out = new Int32Array(m);
  const block = assignBlockRows(c);
  for (let b0 = 0; b0 < m; b0 += block) {
    const b1 = Math.min(m, b0 + block);
    const { indices } = await topk.run(rows.subarray(b0 * w, b1 * w), b1 - b0, w, cent, c, 1);
    out.set(indices, b0);
  }
  return out;
}

/** The two nearest centroids of each of m rows (c >= 2) and the gap between their inner products. */
async function assignTwo(topk: TopK, rows: Float32Array, m: number, w: number, cent: Float32Array, c: number): Promise<{ first: Int32Array; second: Int32Array; gap: Float32Array }> {
  const first = new Int32Array(m);
  const second = new Int32Array(m);
  const gap = new Float32Array(m);
  const block = assignBlockRows(c);
  for (let b0 = 0; b0 < m; b0 += block) {
    const b1 = Math.min(m, b0 + block);
    const { scores, indices } = await topk.run(rows.subarray(b0 * w, b1 * w), b1 - b0, w, cent, c, 2);
    for (let i = 0; i < b1 - b0; i++) {
      first[b0 + i] = indices[2 * i];
      second[b0 + i] = indices[2 * i + 1];
      gap[b0 + i] = scores[2 * i] - scores[2 * i + 1];
    }
  }
  return { first, second, gap };
}

/** The IVF implementation of NeighbourIndex (see the module comment and NeighbourIndex.buildFromRows). */
class Ivf {
  private constructor(
    readonly n: number,
    readonly dim: number,
    readonly width: number,
    private readonly source: RowSource,
    private readonly topk: TopK,
    private readonly proj: Projection,
    private readonly basis: Float32Array,
    /** 1 / the full-width norm of each row (0 for a zero row). */
    private readonly invNorm: Float32Array,
    /** Projected rows (width, unit norm) in list order: position p holds row order[p]. */
    private readonly listed: Float32Array,
    private readonly order: Int32Array,
    /** List l holds positions listStart[l] .. listStart[l + 1] - 1. */
    private readonly listStart: Int32Array,
    /** Centroids (nlist x width). */
    private readonly centroids: Float32Array,
    /** Probe lists of list l: probe[probeStart[l] .. probeStart[l + 1] - 1], the list itself first. */
    private readonly probe: Int32Array,
    private readonly probeStart: Int32Array,
    /**
     * Spilled entries of list l: ids/home (the row's own list)/pos (the row's position in `listed`, where its projected
     * row is read: no copy) at start[l] .. start[l + 1] - 1.
     */
    private readonly spill: { start: Int32Array; ids: Int32Array; home: Int32Array; pos: Int32Array },
    /** Each list's `rank` nearest lists by centroid, nearest first (for refine's deeper probe sets). */
    private readonly ranked: Int32Array,
    private readonly rank: number,
    /** The list of each row. */
    private readonly listOf: Int32Array,
  ) {
    this.inProbe = new Uint8Array(listStart.length - 1);
  }

  /** Scratch of gatherProbe: the lists of the probe set being gathered. */
  private readonly inProbe: Uint8Array;

  get lists(): number {
    return this.listStart.length - 1;
  }

  static async build(source: RowSource, proj: Projection, topk: TopK, o: { width: number; listRows: number; candidates: number; spill: number; onRows?: (start: number, rows: Float32Array, count: number) => void }): Promise<Ivf> {
    const { rows: n, dim } = source;
    // Narrow rows are not projected (an identity basis): the "projected" rows are then the normalised rows.
    const width = dim > 2 * o.width ? o.width : dim;
    const basis = width === dim ? identity(dim) : projectionBasis(dim, width);
    const projected = new Float32Array(n * width);
    const invNorm = new Float32Array(n);
    const blockRows = Math.max(1, Math.min(IVF_BLOCK_ROWS, Math.floor((1 << 22) / dim)));
    const buf = new Float32Array(blockRows * dim);
    for (let b0 = 0; b0 < n; b0 += blockRows) {
      const b1 = Math.min(n, b0 + blockRows);
      source.copyRows(b0, b1, buf);
      o.onRows?.(b0, buf, b1 - b0);
      const r = await proj.run(buf.subarray(0, (b1 - b0) * dim), b1 - b0, dim, basis, width);
      projected.set(r.projected, b0 * width);
      for (let i = 0; i < b1 - b0; i++) invNorm[b0 + i] = r.squaredNorms[i] > 0 ? 1 / Math.sqrt(r.squaredNorms[i]) : 0;
    }

    // Two-level spherical k-means on an evenly spaced sample: `top` coarse centroids, then each coarse cluster's
    // sample members split into sub-centroids in proportion to their share. Assignment costs n x (top + sub) products
    // instead of n x nlist.
    const nlist = Math.max(1, Math.min(n, Math.round(n / o.listRows)));
    const sampleSize = Math.min(n, Math.max(nlist * 32, 4096));
    const sample = new Float32Array(sampleSize * width);
    for (let i = 0; i < sampleSize; i++) {
      const r = Math.floor((i * n) / sampleSize);
      sample.set(projected.subarray(r * width, (r + 1) * width), i * width);
    }
    const top = Math.max(1, Math.min(sampleSize, Math.round(Math.sqrt(nlist))));
    const coarse = await sphericalKMeans(topk, sample, sampleSize, width, top, 8);
    const sampleTop = await assignNearest(topk, sample, sampleSize, width, coarse, top);
    const byTop = groupBy(sampleTop, top);
    const subCentroids: Float32Array[] = [];
    const subStart = new Int32Array(top + 1);
    for (let t = 0; t < top; t++) {
      const members = byTop.members.subarray(byTop.start[t], byTop.start[t + 1]);
      const c = members.length === 0 ? 0 : Math.max(1, Math.min(members.length, Math.round((nlist * members.length) / sampleSize)));
      const rows = gatherRows(sample, width, members);
      subCentroids.push(c > 0 ? await sphericalKMeans(topk, rows, members.length, width, c, 6) : new Float32Array(0));
      subStart[t + 1] = subStart[t] + c;
    }
    const lists = subStart[top];
    const centroids = new Float32Array(lists * width);
    subCentroids.forEach((c, t) => centroids.set(c, subStart[t] * width));

    // Every row: its nearest list (all centroids: on clusters without hierarchy, such as the benchmark's, comparing a
    // row only with the lists of its nearest coarse clusters put a third of near-copy pairs in different lists), and
    // its second nearest for the spill below.
    const listOf = new Int32Array(n);
    const spillOf = new Int32Array(n).fill(-1);
    if (lists > 1) {
      const two = await assignTwo(topk, projected, n, width, centroids, lists);
      listOf.set(two.first);
      for (let i = 0; i < n; i++) if (two.gap[i] <= o.spill) spillOf[i] = two.second[i];
    }
    const byList = groupBy(listOf, lists);
    permuteRows(projected, width, byList.members);
    // Spilled entries: a row near the border of its list (its second list's centroid within o.spill of its own) is
    // also held, for the search only, by its second list, so a neighbour across the border is found from either side.
    const positionOf = new Int32Array(n);
    for (let p = 0; p < n; p++) positionOf[byList.members[p]] = p;
    let spilled = 0;
    for (let i = 0; i < n; i++) if (spillOf[i] >= 0) spilled++;
    const spillKeys = new Int32Array(spilled);
    const spillRowsOf = new Int32Array(spilled);
    for (let i = 0, e = 0; i < n; i++) if (spillOf[i] >= 0) {
      spillKeys[e] = spillOf[i];
      spillRowsOf[e++] = i;
    }
    const bySpill = groupBy(spillKeys, lists);
    const spillIds = new Int32Array(spilled);
    const spillHome = new Int32Array(spilled);
    const spillPos = new Int32Array(spilled);
    for (let e = 0; e < spilled; e++) {
      const r = spillRowsOf[bySpill.members[e]];
      spillIds[e] = r;
      spillHome[e] = listOf[r];
      spillPos[e] = positionOf[r];
    }
    // Probe sets: each list's nearest lists by centroid (itself first), until `candidates` rows.
    const rank = Math.min(lists, IVF_RANKED_LISTS);
    const ranked = new Int32Array(lists * rank);
    const rankBlock = assignBlockRows(lists);
    for (let b0 = 0; b0 < lists; b0 += rankBlock) {
      const b1 = Math.min(lists, b0 + rankBlock);
      const { indices } = await topk.run(centroids.subarray(b0 * width, b1 * width), b1 - b0, width, centroids, lists, rank);
      ranked.set(indices, b0 * rank);
    }
    const probeList: number[] = [];
    const probeStart = new Int32Array(lists + 1);
    for (let l = 0; l < lists; l++) {
      const chosen = new Set<number>([l]);
      let rows = byList.start[l + 1] - byList.start[l];
      for (let r = 0; r < rank && rows < o.candidates; r++) {
        const other = ranked[l * rank + r];
        if (chosen.has(other)) continue;
        chosen.add(other);
        rows += byList.start[other + 1] - byList.start[other];
      }
      // Too few rows among the ranked lists (tiny or lopsided data): every list.
      if (rows < o.candidates && rank < lists) for (let other = 0; other < lists; other++) chosen.add(other);
      for (const c of chosen) probeList.push(c);
      probeStart[l + 1] = probeList.length;
    }
    return new Ivf(n, dim, width, source, topk, proj, basis, invNorm, projected, byList.members, byList.start, centroids, Int32Array.from(probeList), probeStart, { start: bySpill.start, ids: spillIds, home: spillHome, pos: spillPos }, ranked, rank, listOf);
  }

  /** Full-width cosine of rows a and b. */
  private rowA = new Float32Array(0);
  private rowB = new Float32Array(0);
  cosine(a: number, b: number): number {
    if (this.rowA.length !== this.dim) {
      this.rowA = new Float32Array(this.dim);
      this.rowB = new Float32Array(this.dim);
    }
    this.source.copyRows(a, a + 1, this.rowA);
    this.source.copyRows(b, b + 1, this.rowB);
    return dot(this.rowA, 0, this.rowB, 0, this.dim) * this.invNorm[a] * this.invNorm[b];
  }

  /** The probe rows of list l, packed (projected), and their row indices. */
  private gatherProbe(l: number, into: { rows: Float32Array; ids: Int32Array }): number {
    return this.gatherLists(this.probe.subarray(this.probeStart[l], this.probeStart[l + 1]), into);
  }

  /** The projected rows (and row indices) of the given lists and of their spilled entries, each row once. */
  private gatherLists(probe: Int32Array, into: { rows: Float32Array; ids: Int32Array }): number {
    const w = this.width;
    const sp = this.spill;
    const p0 = 0;
    const p1 = probe.length;
    for (let p = p0; p < p1; p++) this.inProbe[probe[p]] = 1;
    let count = 0;
    for (let p = p0; p < p1; p++) {
      const o = probe[p];
      count += this.listStart[o + 1] - this.listStart[o];
      for (let e = sp.start[o]; e < sp.start[o + 1]; e++) if (!this.inProbe[sp.home[e]]) count++;
    }
    if (into.ids.length < count) {
      into.ids = new Int32Array(count);
      into.rows = new Float32Array(count * w);
    }
    let at = 0;
    for (let p = p0; p < p1; p++) {
      const o = probe[p];
      const s0 = this.listStart[o];
      const s1 = this.listStart[o + 1];
      into.rows.set(this.listed.subarray(s0 * w, s1 * w), at * w);
      into.ids.set(this.order.subarray(s0, s1), at);
      at += s1 - s0;
      // A spilled entry whose own list is probed too is there already.
      // Row by row without a view per row (tens of spilled rows per probe, thousands of probes).
      const { rows, ids } = into;
      const listed = this.listed;
      for (let e = sp.start[o]; e < sp.start[o + 1]; e++) {
        if (this.inProbe[sp.home[e]]) continue;
        const from = sp.pos[e] * w;
        const to = at * w;
        for (let d = 0; d < w; d++) rows[to + d] = listed[from + d];
        ids[at++] = sp.ids[e];
      }
    }
    for (let p = p0; p < p1; p++) this.inProbe[probe[p]] = 0;
    return count;
  }

  /**
   * A deeper search for the given rows of a self-search answer nb, in place: each row's list's nearest lists (by
   * centroid) until `deep` rows, the best `take` of them by projected similarity and the row's current neighbours
   * re-scored at full width, the best k kept (similarity, then index).
   */
  async refine(nb: Neighbours, rows: ArrayLike<number>, deep: number, take: number): Promise<void> {
    const k = nb.k;
    const w = this.width;
    const m = rows.length;
    if (m === 0) return;
    // Each refined row asks its list's nearest lists (itself first) until `deep` rows; the lists are then visited
    // once each, with every row that asks for them as one block of queries (no gathering of probe rows).
    const deepLists = new Map<number, number[]>();
    const asking = new Map<number, number[]>();
    const queries = new Float32Array(m * w);
    for (let i = 0; i < m; i++) {
      const q = rows[i];
      const p = this.positionOf(q);
      queries.set(this.listed.subarray(p * w, (p + 1) * w), i * w);
      const l = this.listOf[q];
      let lists = deepLists.get(l);
      if (!lists) {
        lists = [l];
        let count = this.listStart[l + 1] - this.listStart[l];
        for (let r = 0; r < this.rank && count < deep; r++) {
          const o = this.ranked[l * this.rank + r];
          if (o === l) continue;
          lists.push(o);
          count += this.listStart[o + 1] - this.listStart[o];
        }
        deepLists.set(l, lists);
      }
      for (const o of lists) {
        const a = asking.get(o);
        if (a) a.push(i);
        else asking.set(o, [i]);
      }
    }
    // From each list, a row's best few (k + 1): a list rarely holds more of its nearest.
    const perList = k + 1;
    const poolIds: number[][] = Array.from({ length: m }, () => []);
    const poolSims: number[][] = Array.from({ length: m }, () => []);
    for (const [o, slots] of asking) {
      const s0 = this.listStart[o];
      const s1 = this.listStart[o + 1];
      if (s1 === s0) continue;
      const t = Math.min(s1 - s0, perList);
      const { scores, indices } = await this.topk.run(gatherRows(queries, w, slots), slots.length, w, this.listed.subarray(s0 * w, s1 * w), s1 - s0, t);
      slots.forEach((i, x) => {
        for (let c = 0; c < t; c++) {
          poolIds[i].push(this.order[s0 + indices[x * t + c]]);
          poolSims[i].push(scores[x * t + c]);
        }
      });
    }
    const rowQ = new Float32Array(this.dim);
    const rowC = new Float32Array(this.dim);
    for (let i = 0; i < m; i++) {
      const q = rows[i];
      const ids = poolIds[i];
      const ps = poolSims[i];
      const best = ids.map((_, x) => x).sort((a, b) => ps[b] - ps[a] || ids[a] - ids[b]);
      this.keepBest(nb, q, best.slice(0, take).map((x) => ids[x]), k, rowQ, rowC);
    }
  }

  /**
   * An exact search in the projection for the given rows of a self-search answer nb, in place: each row's projected
   * row against every projected row (Gemm + TopK blocks of EXACT_PROJECTED_BASE_ROWS rows), its best `take` and its
   * current neighbours re-scored at full width, the best k kept (similarity, then index). About n x width
   * multiply-adds a row: for a few thousand rows at most.
   */
  async exactRefine(nb: Neighbours, rows: ArrayLike<number>, take: number): Promise<void> {
    const k = nb.k;
    const w = this.width;
    const n = this.n;
    const m = rows.length;
    if (m === 0) return;
    const t = Math.min(n, take + 1);
    const queryBlock = Math.max(1, Math.floor(EXACT_PROJECTED_OUTPUT / EXACT_PROJECTED_BASE_ROWS));
    // Base blocks outside (each copied once), query blocks inside; each row's pool gathers the base blocks in order.
    const qs = Int32Array.from({ length: m }, (_, i) => this.positionOf(rows[i]));
    const poolIds: Int32Array[] = [];
    const poolSims: Float32Array[] = [];
    const blocks = Math.ceil(n / EXACT_PROJECTED_BASE_ROWS);
    const perRow = Math.min(n, blocks * t);
    for (let i = 0; i < m; i++) {
      poolIds.push(new Int32Array(perRow));
      poolSims.push(new Float32Array(perRow));
    }
    const filled = new Int32Array(m);
    for (let b0 = 0; b0 < n; b0 += EXACT_PROJECTED_BASE_ROWS) {
      const b1 = Math.min(n, b0 + EXACT_PROJECTED_BASE_ROWS);
      const tt = Math.min(t, b1 - b0);
      const base = this.listed.subarray(b0 * w, b1 * w);
      for (let q0 = 0; q0 < m; q0 += queryBlock) {
        const q1 = Math.min(m, q0 + queryBlock);
        const queries = gatherRows(this.listed, w, qs.subarray(q0, q1));
        const { scores, indices } = await this.topk.run(queries, q1 - q0, w, base, b1 - b0, tt);
        for (let i = 0; i < q1 - q0; i++) {
          const ids = poolIds[q0 + i];
          const sims = poolSims[q0 + i];
          for (let c = 0; c < tt; c++) {
            ids[filled[q0 + i]] = this.order[b0 + indices[i * tt + c]];
            sims[filled[q0 + i]++] = scores[i * tt + c];
          }
        }
      }
    }
    const rowQ = new Float32Array(this.dim);
    const rowC = new Float32Array(this.dim);
    for (let i = 0; i < m; i++) this.keepBest(nb, rows[i], bestOfPool(poolIds[i], poolSims[i], filled[i], t), k, rowQ, rowC);
  }

  /**
   * A search among a row's own group for the given rows of a self-search answer nb, in place: groupOf[r] is row r's
   * group (-1: none; such rows are left as they are); each row's projected row against its group's projected rows
   * (Gemm + TopK), its best `take` and its current neighbours re-scored at full width, the best k kept. Exact within
   * the group up to the projection's ranking; the distances found can only fall.
   */
  async refineWithin(nb: Neighbours, rows: ArrayLike<number>, groupOf: Int32Array, take: number): Promise<void> {
    const k = nb.k;
    const w = this.width;
    if (rows.length === 0) return;
    let groups = 0;
    for (let r = 0; r < this.n; r++) groups = Math.max(groups, groupOf[r] + 1);
    const keys = Int32Array.from(groupOf, (g) => (g < 0 ? groups : g));
    const byGroup = groupBy(keys, groups + 1);
    const asking = new Map<number, number[]>();
    for (let i = 0; i < rows.length; i++) {
      const g = groupOf[rows[i]];
      if (g < 0) continue;
      const a = asking.get(g);
      if (a) a.push(rows[i]);
      else asking.set(g, [rows[i]]);
    }
    const rowQ = new Float32Array(this.dim);
    const rowC = new Float32Array(this.dim);
    for (const [g, qs] of asking) {
      const members = byGroup.members.subarray(byGroup.start[g], byGroup.start[g + 1]);
      if (members.length < 2) continue;
      const t = Math.min(members.length, take + 1);
      const base = gatherRows(this.listed, w, Array.from(members, (r) => this.positionOf(r)));
      for (let q0 = 0; q0 < qs.length; q0 += IVF_BLOCK_ROWS) {
        const q1 = Math.min(qs.length, q0 + IVF_BLOCK_ROWS);
        const queries = gatherRows(this.listed, w, qs.slice(q0, q1).map((r) => this.positionOf(r)));
        const { indices } = await this.topk.run(queries, q1 - q0, w, base, members.length, t);
        for (let i = 0; i < q1 - q0; i++) {
          const found: number[] = [];
          for (let c = 0; c < t; c++) found.push(members[indices[i * t + c]]);
          this.keepBest(nb, qs[q0 + i], found, k, rowQ, rowC);
        }
      }
    }
  }

  /** Row q's current neighbours in nb and `more`, re-scored at full width; the best k kept (similarity, then index). */
  private keepBest(nb: Neighbours, q: number, more: number[], k: number, rowQ: Float32Array, rowC: Float32Array): void {
    const cand = new Set<number>();
    for (let r = 0; r < k; r++) if (nb.indices[q * k + r] >= 0) cand.add(nb.indices[q * k + r]);
    for (const j of more) cand.add(j);
    cand.delete(q);
    this.source.copyRows(q, q + 1, rowQ);
    const cs = [...cand];
    const sims = cs.map((j) => {
      this.source.copyRows(j, j + 1, rowC);
      return dot(rowQ, 0, rowC, 0, this.dim) * this.invNorm[q] * this.invNorm[j];
    });
    const order = cs.map((_, x) => x).sort((a, b) => sims[b] - sims[a] || cs[a] - cs[b]);
    for (let r = 0; r < k; r++) {
      nb.indices[q * k + r] = r < order.length ? cs[order[r]] : -1;
      nb.similarities[q * k + r] = r < order.length ? sims[order[r]] : NaN;
    }
  }

  private positions: Int32Array | undefined;
  /** Position (in list order) of row r. */
  private positionOf(r: number): number {
    if (!this.positions) {
      this.positions = new Int32Array(this.n);
      for (let p = 0; p < this.n; p++) this.positions[this.order[p]] = p;
    }
    return this.positions[r];
  }

  /** Each row's k nearest other rows by projected similarity, among its list's probe rows. */
  async selfNeighbours(k: number): Promise<Neighbours> {
    const out = emptyNeighbours(this.n, k);
    out.projected = true;
    const probe = { rows: new Float32Array(0), ids: new Int32Array(0) };
    const w = this.width;
    for (let l = 0; l < this.lists; l++) {
      const s0 = this.listStart[l];
      const s1 = this.listStart[l + 1];
      if (s1 === s0) continue;
      let count = this.gatherProbe(l, probe);
      // k larger than the probe rows (small inputs, large k): every list.
      if (count < Math.min(this.n, k + 1)) count = this.gatherLists(Int32Array.from({ length: this.lists }, (_, i) => i), probe);
      const t = Math.min(count, k + 1);
      const b = probe.rows.subarray(0, count * w);
      for (let q0 = s0; q0 < s1; q0 += IVF_BLOCK_ROWS) {
        const q1 = Math.min(s1, q0 + IVF_BLOCK_ROWS);
        const { scores, indices } = await this.topk.run(this.listed.subarray(q0 * w, q1 * w), q1 - q0, w, b, count, t);
        keepSelfAnswers(out, this.order, q0, q1, probe.ids, scores, indices, t);
      }
    }
    return out;
  }

  /**
   * The k nearest rows of each query (m x dim, unit norm): queries projected, each searched among the probe rows of
   * its nearest list, max(2k, k + 8) candidates re-scored at full width and ordered (similarity, then index).
   */
  async search(queries: Float32Array, m: number, k: number): Promise<Neighbours> {
    const out = emptyNeighbours(m, k);
    if (m === 0) return out;
    const w = this.width;
    const { projected } = await this.proj.run(queries.slice(), m, this.dim, this.basis, w);
    const nearest = await assignNearest(this.topk, projected, m, w, this.centroids, this.lists);
    const byList = groupBy(nearest, this.lists);
    const probe = { rows: new Float32Array(0), ids: new Int32Array(0) };
    const row = new Float32Array(this.dim);
    for (let l = 0; l < this.lists; l++) {
      const members = byList.members.subarray(byList.start[l], byList.start[l + 1]);
      if (members.length === 0) continue;
      let count = this.gatherProbe(l, probe);
      if (count < Math.min(this.n, k)) count = this.gatherLists(Int32Array.from({ length: this.lists }, (_, i) => i), probe);
      const t = Math.min(count, Math.max(2 * k, k + 8));
      const b = probe.rows.subarray(0, count * w);
      const { indices } = await this.topk.run(gatherRows(projected, w, members), members.length, w, b, count, t);
      members.forEach((q, i) => {
        const cand: number[] = [];
        const sims: number[] = [];
        for (let c = 0; c < t; c++) {
          const j = probe.ids[indices[i * t + c]];
          this.source.copyRows(j, j + 1, row);
          cand.push(j);
          sims.push(dot(queries, q * this.dim, row, 0, this.dim) * this.invNorm[j]);
        }
        const idx = cand.map((_, x) => x).sort((a, b2) => sims[b2] - sims[a] || cand[a] - cand[b2]);
        for (let r = 0; r < Math.min(k, idx.length); r++) {
          out.indices[q * k + r] = cand[idx[r]];
          out.similarities[q * k + r] = sims[idx[r]];
        }
      });
    }
    return out;
  }
}

function identity(dim: number): Float32Array {
  const m = new Float32Array(dim * dim);
  for (let d = 0; d < dim; d++) m[d * dim + d] = 1;
  return m;
}

/**
 * The ids of the first `t` of a pool's `filled` entries in the order (similarity descending, then id ascending): the
 * entries above the t-th largest similarity and, of those equal to it, the lowest ids (one numeric sort of the
 * similarities, not a comparison sort of the whole pool). Ids are distinct. Exported for the tests.
 */
export function bestOfPool(ids: Int32Array, sims: Float32Array, filled: number, t: number): number[] {
  const out: number[] = [];
  if (filled <= t) {
    for (let x = 0; x < filled; x++) out.push(ids[x]);
    return out;
  }
  const bar = sims.slice(0, filled).sort()[filled - t];
  const tied: number[] = [];
  for (let x = 0; x < filled; x++) {
    if (sims[x] > bar) out.push(ids[x]);
    else if (sims[x] === bar) tied.push(ids[x]);
  }
  tied.sort((a, b) => a - b);
  for (let x = 0; out.length < t; x++) out.push(tied[x]);
  return out;
}

/**
 * Rows q0 .. q1 - 1 (list order) of a self-search: each one's first k answers of its t (best first) other than
 * itself (a plain function: an async caller's locals are slower to reach in a hot loop).
 */
function keepSelfAnswers(out: Neighbours, order: Int32Array, q0: number, q1: number, ids: Int32Array, scores: Float32Array, indices: Int32Array, t: number): void {
  const k = out.k;
  const outIds = out.indices;
  const outSims = out.similarities;
  for (let p = q0; p < q1; p++) {
    const q = order[p];
    const o = (p - q0) * t;
    let r = 0;
    for (let c = 0; c < t && r < k; c++) {
      const j = ids[indices[o + c]];
      if (j === q) continue;
      outIds[q * k + r] = j;
      outSims[q * k + r] = scores[o + c];
      r++;
    }
  }
}

/** Rows `members` of a packed matrix (width w), packed. */
function gatherRows(rows: Float32Array, w: number, members: ArrayLike<number>): Float32Array {
  const out = new Float32Array(members.length * w);
  for (let i = 0; i < members.length; i++) out.set(rows.subarray(members[i] * w, (members[i] + 1) * w), i * w);
  return out;
}

/** Counting sort of 0..n-1 by key (0..groups-1), stable: members of group g are members[start[g] .. start[g + 1]). */
function groupBy(keys: Int32Array, groups: number): { members: Int32Array; start: Int32Array } {
  const start = new Int32Array(groups + 1);
  for (let i = 0; i < keys.length; i++) start[keys[i] + 1]++;
  for (let g = 0; g < groups; g++) start[g + 1] += start[g];
  const at = start.slice(0, groups);
  const members = new Int32Array(keys.length);
  for (let i = 0; i < keys.length; i++) members[at[keys[i]]++] = i;
  return { members, start };
}

/** In place: row p of the result is row order[p] of the input (cycle by cycle, one spare row). */
function permuteRows(rows: Float32Array, w: number, order: Int32Array): void {
  const done = new Uint8Array(order.length);
  const spare = new Float32Array(w);
  for (let p = 0; p < order.length; p++) {
    if (done[p] || order[p] === p) {
      done[p] = 1;
      continue;
    }
    spare.set(rows.subarray(p * w, (p + 1) * w));
    let q = p;
    for (;;) {
      done[q] = 1;
      const src = order[q];
      if (src === p) {
        rows.set(spare, q * w);
        break;
      }
      rows.copyWithin(q * w, src * w, (src + 1) * w);
      q = src;
    }
  }
}
