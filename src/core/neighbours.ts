/**
 * The one k-nearest-neighbour index of CLIP Lens (kNN label route, near-duplicate search, text search).
 *
 * Vectors are L2-normalised by the caller; similarity = cosine = dot product. Two paths:
 * - exact: blocked dot products in plain TypeScript. Results are ordered by similarity (computed in float64),
 *   ties broken by the lower row index (stable), so the answer is deterministic and equals a naive loop.
 * - approximate: an HNSW graph from the `usearch` package (an optional dependency with prebuilt binaries for
 *   linux-x64, linux-arm64 and macOS; none is downloaded at install time). Where it cannot be loaded (e.g. Windows),
 *   the exact path is used and `approximate` is false. Results of the approximate path are re-scored exactly
 *   (float64 dot products) and ordered the same way as the exact path.
 *
 * `approximate: 'auto'` (the default) uses the exact path up to {@link EXACT_AUTO_MAX_ROWS} indexed rows: below that
 * the exact search of all rows against all rows is faster than building the graph (measured, docs/benchmarks.md).
 */

/** rows x k, row-major, best first; index -1 and similarity NaN pad rows with fewer than k neighbours. */
export interface Neighbours {
  k: number;
  indices: Int32Array;
  similarities: Float32Array;
}

export interface NeighbourIndexOptions {
  /** 'auto' (default): exact up to EXACT_AUTO_MAX_ROWS rows, approximate above (when available). */
  approximate?: boolean | 'auto';
}

/** Above this many indexed rows, 'auto' builds the approximate index (see docs/benchmarks.md). */
export const EXACT_AUTO_MAX_ROWS = 20_000;

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
}

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

  private constructor(vectors: Float32Array, dim: number, graph: UsearchIndex | undefined) {
    this.vectors = vectors;
    this.dim = dim;
    this.size = dim > 0 ? vectors.length / dim : 0;
    this.graph = graph;
    this.approximate = graph !== undefined;
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
    if (us) {
      graph = new us.Index({ metric: 'ip', dimensions: dim, connectivity: 16, expansion_add: 128, expansion_search: 64, quantization: 'f32' });
      const keys = new BigUint64Array(n);
      for (let i = 0; i < n; i++) keys[i] = BigInt(i);
      graph.add(keys, vectors, 0);
    }
    return new NeighbourIndex(vectors, dim, graph);
  }

  /** The k nearest indexed rows of each query row (queries: m x dim). */
  search(queries: Float32Array, k: number): Neighbours {
    const m = this.checkQueries(queries, k);
    if (this.graph) return this.graphSearch(queries, m, k, false);
    return exactSearch(this.vectors, this.size, queries, m, this.dim, k, false);
  }

  /** Each indexed row's k nearest OTHER rows (itself excluded, exact duplicates of it included). */
  selfNeighbours(k: number): Neighbours {
    this.checkK(k);
    if (this.graph) return this.graphSearch(this.vectors, this.size, k, true);
    return exactSearch(this.vectors, this.size, this.vectors, this.size, this.dim, k, true);
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
    const want = Math.min(n, k + (self ? 1 : 0) + 4);
    const out = emptyNeighbours(m, k);
    // Batches bound the memory of one usearch answer.
    const BATCH = 4096;
    const cand: number[] = [];
    const sims: number[] = [];
    for (let b0 = 0; b0 < m; b0 += BATCH) {
      const b1 = Math.min(m, b0 + BATCH);
      const res = graph.search(queries.subarray(b0 * dim, b1 * dim), want, 0);
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
          if (self && j === q) continue;
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
