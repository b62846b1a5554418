/**
 * Duplicate groups, split leakage and outliers over a dataset's images (docs/duplicates.md).
 *
 * - **exact** groups: readable images with the same content hash (SHA-256 of the file, as the evaluation computes it).
 * - **near** groups: connected components of "near pairs" among images of distinct content. A pair is near when
 *   BOTH its perceptual hashes are within `maxHashDistance` bits (perceptualHash.ts: a 64-bit DCT hash of the
 *   pixels, also of two centre crops, so a small crop still matches) AND its CLIP embeddings have cosine >=
 *   `minCosine`. Neither signal is enough alone: a weak or domain-mismatched model puts most same-class images
 *   above 0.95 cosine (the fixture model does on the bundled example: 3,030 of 4,775 distinct same-class pairs), and a
 *   perceptual hash now and then matches two different pictures of the same layout (7 distinct pairs of 62,480 at 8
 *   bits there, 1 of them also above 0.75 cosine). Candidates come from a multi-index over the hashes (pigeonhole: a
 *   pair within d bits agrees exactly on at least one of d + 1 blocks), so every pair within the threshold is
 *   examined, whatever the model thinks.
 *   Without pixel hashes (embeddings only, {@link nearDuplicatePairsFromEmbeddings}) candidates come from the kNN
 *   index (neighbours.ts) and the cosine alone decides.
 * - A group's `similarity` is 1 for exact groups and, for near groups, the lowest cosine among the pairs that link it.
 *
 * Unreadable images (no embedding) take part in nothing. Leakage needs splits: a sample is "leaked" when its group
 * holds a sample of an earlier split (train < val < test; other split names after those, by name).
 *
 * Outliers (cleanlab Datalab's `outlier` idea): a sample's mean cosine distance to its `outlierNeighbours` nearest
 * other images (d) scores median(d) / d, at most 1 (lower = more unusual). It is an outlier when d is far out for the
 * dataset (above Q3 + 3 IQR of all d) AND it is unlike its class (cosine distance to the mean of the rest of its class
 * above Q3 + 1.5 IQR of that class's distances; classes of fewer than 5 images skip this second test).
 */
import { memMark } from './memLog';
import { addClassRows, classDistancesOf, startClassDistances, startClassSums, type ClassDistancesJob } from './outlierJobs';
import { canShareMemory, sharedFloat32, sharedFloat64, sharedUint16, threadCount, toSharedFloat64, toSharedInt32 } from './parallel';
import { copyStoredRows, copyStoredRowsOf, storedRowsShared, type StoredRows } from './storedRows';
import * as path from 'node:path';
import { ClipLensError } from './errors';
import { decodeHalfRows, halfValues } from './probabilities';
import { HASH_WORDS, hashDistance, pixelHashesOf, type PixelHashRows, type PixelHashSource } from './perceptualHash';
import type { ImagePreprocessor } from './imagePreprocess';
import { approximateAvailable, EXACT_AUTO_MAX_ROWS, IVF_MIN_ROWS, ivfAvailable, NeighbourIndex, packedRowSource, type Neighbours, type RowSource } from './neighbours';

export { randomProjection } from './neighbours';
import type { DuplicateGroup, LeakedSplit, Metrics, Outlier, Warning } from './report';

export type { DuplicateGroup, LeakedSplit, Outlier } from './report';

export interface DuplicateThresholds {
  /** Largest Hamming distance (of 64 bits) between perceptual hashes of a near pair. */
  maxHashDistance: number;
  /** Smallest cosine between CLIP embeddings of a near pair. */
  minCosine: number;
  /** Neighbours whose distances make the outlier score. */
  outlierNeighbours: number;
  /** Warn when at least this fraction of a class (and at least 3 images) are outliers. */
  classOutlierFraction: number;
}

export const DEFAULT_DUPLICATE_THRESHOLDS: DuplicateThresholds = {
  maxHashDistance: 8,
  minCosine: 0.75,
  outlierNeighbours: 10,
  classOutlierFraction: 0.1,
};

/**
 * With pixel hashes (only the outliers use the kNN index), the exact search up to this many distinct images, the
 * approximate one above (measured on this 2-core machine: 3,000 x 512 exact 6.3 s CPU, HNSW 2.4 s CPU at full width;
 * docs/benchmarks.md). Without them the index also serves the near-duplicates: exact up to EXACT_AUTO_MAX_ROWS.
 */
export const OUTLIER_EXACT_MAX_ROWS = 2000;

/** Largest accepted maxHashDistance: beyond a quarter of the bits, unrelated pictures match. */
export const MAX_HASH_DISTANCE_LIMIT = 16;

export interface DuplicateSample {
  path: string;
  label: string;
  split?: string;
  contentHash?: string;
  /** Unreadable images take part in nothing. */
  error?: unknown;
}

export interface DuplicateInput {
  samples: DuplicateSample[];
  /**
   * Row i: sample i's embedding (any norm; normalised here); rows of samples without one are ignored. Packed n x dim,
   * or the run's EmbeddingRows (read block by block, no packed copy).
   */
  embeddings: Float32Array | EmbeddingRows;
  dim: number;
  /** Sample i has an embedding row. */
  hasEmbedding: Uint8Array;
  /** HASH_WORDS words per sample (perceptualHashes); null: embeddings only. */
  pixelHashes: Uint32Array | null;
  /** Sample i has pixel hashes (ignored when pixelHashes is null). */
  hasPixelHash?: Uint8Array;
  /** Metrics over a set of sample indices (for the leakage figures); null when they cannot be computed. */
  metricsFor?: (sampleIndices: number[]) => Metrics | null;
  /** Metrics per split as reported (the "with" figures of the leakage warning). */
  metricsBySplit?: Record<string, Metrics>;
  /** The kNN index's path: 'auto' (default; see OUTLIER_EXACT_MAX_ROWS), or forced (benchmarks and tests). */
  approximate?: boolean | 'auto';
  /** analyseDuplicatesAsync: the IVF index from IVF_MIN_ROWS distinct images on ('auto', default), always (true), never. */
  ivf?: boolean | 'auto';
}

export interface DuplicateAnalysis {
  groups: DuplicateGroup[];
  leakage: LeakedSplit[];
  outliers: Outlier[];
  warnings: Warning[];
}

/** The metrics the leakage figures need (DuplicateInput's): given with the input, or once known (FoundDuplicates). */
export type LeakageMetrics = Pick<DuplicateInput, 'metricsFor' | 'metricsBySplit'>;

/**
 * Duplicates found (groups, outliers): the leakage figures and the warnings follow from the metrics, which may come
 * later. Holds the samples, the groups and the links, nothing of the kNN index or the normalised rows.
 */
export type FoundDuplicates = (metrics: LeakageMetrics) => DuplicateAnalysis;

export function checkDuplicateThresholds(t: DuplicateThresholds): void {
  const bad = (key: string, v: unknown, what: string) => {
    throw new ClipLensError('duplicates-bad-threshold', `duplicates.${key} must be ${what}, got ${v}`);
  };
  if (!Number.isInteger(t.maxHashDistance) || t.maxHashDistance < 0 || t.maxHashDistance > MAX_HASH_DISTANCE_LIMIT) bad('maxHashDistance', t.maxHashDistance, `an integer from 0 to ${MAX_HASH_DISTANCE_LIMIT}`);
  if (!(typeof t.minCosine === 'number' && t.minCosine >= -1 && t.minCosine <= 1)) bad('minCosine', t.minCosine, 'a number from -1 to 1');
  if (!Number.isInteger(t.outlierNeighbours) || t.outlierNeighbours < 1 || t.outlierNeighbours > 100) bad('outlierNeighbours', t.outlierNeighbours, 'an integer from 1 to 100');
  if (!(typeof t.classOutlierFraction === 'number' && t.classOutlierFraction > 0 && t.classOutlierFraction <= 1)) bad('classOutlierFraction', t.classOutlierFraction, 'a number above 0 and at most 1');
}

/** Rank of a split name for "earlier"/"later": train, then validation, then test, then other names. */
export function splitRank(split: string): number {
  const s = split.toLowerCase();
  if (/^(train|training|trn)$/.test(s)) return 0;
  if (/^(val|valid|validation|dev|development)$/.test(s)) return 1;
  if (/^(test|testing|tst|holdout|eval|evaluation)$/.test(s)) return 2;
  return 3;
}

function compareSplits(a: string, b: string): number {
  return splitRank(a) - splitRank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

class UnionFind {
  readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]];
      x = p[x];
    }
    return x;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

/** Copies the rows into a packed, L2-normalised matrix (from a packed matrix or EmbeddingRows' blocks). */
function normalisedRows(source: Float32Array | EmbeddingRows, dim: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  const per = EmbeddingRows.blockRows;
  rows.forEach((r, j) => {
    let src: Float32Array;
    let o: number;
    if (source instanceof Float32Array) {
      src = source;
      o = r * dim;
    } else {
      const block = source.block(Math.floor(r / per));
      if (!block) return; // no embedding in the block: a zero row, as packed() gives
      src = block;
      o = (r % per) * dim;
    }
    let s = 0;
    for (let d = 0; d < dim; d++) s += src[o + d] * src[o + d];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let d = 0; d < dim; d++) out[j * dim + d] = src[o + d] * inv;
  });
  return out;
}

function dot(v: Float32Array, dim: number, a: number, b: number): number {
  let s = 0;
  const A = a * dim;
  const B = b * dim;
  for (let d = 0; d < dim; d++) s += v[A + d] * v[B + d];
  return s;
}

/** Pairs (a < b) of rows whose hashes are within maxDistance bits (hashDistance), found by a multi-index over blocks. */
export function hashCandidatePairs(hashes: Uint32Array, n: number, maxDistance: number, onPair: (a: number, b: number, distance: number) => void): void {
  // Every scale's hash goes into the index; queries use each image's full-image hash. hashDistance(a, b) compares a's
  // full hash with b's scales and b's full hash with a's, so a pair within the threshold is found from either side.
  const blocks = maxDistance + 1;
  const bounds = Array.from({ length: blocks + 1 }, (_, i) => Math.round((i * 64) / blocks));
  const bitsOf = (hi: number, lo: number, from: number, to: number): number => {
    // Bits [from, to) of the 64-bit value hi:lo (bit 0 = most significant), at most 32 bits wide.
    let v = 0;
    for (let b = from; b < to; b++) v = v * 2 + (b < 32 ? (hi >>> (31 - b)) & 1 : (lo >>> (63 - b)) & 1);
    return v;
  };
  const scales = HASH_WORDS / 2;
  const seen = new Set<number>();
  for (let blk = 0; blk < blocks; blk++) {
    const buckets = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < scales; s++) {
        const key = bitsOf(hashes[i * HASH_WORDS + 2 * s], hashes[i * HASH_WORDS + 2 * s + 1], bounds[blk], bounds[blk + 1]);
        let list = buckets.get(key);
        if (!list) buckets.set(key, (list = []));
        if (list[list.length - 1] !== i) list.push(i);
      }
    }
    for (let i = 0; i < n; i++) {
      const list = buckets.get(bitsOf(hashes[i * HASH_WORDS], hashes[i * HASH_WORDS + 1], bounds[blk], bounds[blk + 1]));
      if (!list) continue;
      for (const j of list) {
        if (j === i) continue;
        const a = Math.min(i, j);
        const b = Math.max(i, j);
        const key = a * n + b;
        if (seen.has(key)) continue;
        const d = hashDistance(hashes, a, b);
        if (d <= maxDistance) {
          seen.add(key);
          onPair(a, b, d);
        }
      }
    }
  }
}

/** Width of the random projection the approximate kNN index of the duplicate analysis holds (neighbours.ts). */
export const PROJECTED_DIM = 64;

/** Neighbours per row the embeddings-only near-duplicate search examines. */
export const NEAR_DUPLICATE_NEIGHBOURS = 10;

/**
 * The kNN index of the duplicate analysis (near-duplicates without pixel hashes, and outliers): exact up to
 * `exactMaxRows` rows, above that (when usearch is available, or `approximate: true`) an HNSW graph over a
 * {@link randomProjection} of the rows to PROJECTED_DIM dimensions, whose candidates are re-scored on the full rows.
 * Built once; `selfNeighbours(k)` answers every use (k = the most neighbours any use needs).
 */
export function duplicateIndex(vectors: Float32Array, dim: number, options: { approximate?: boolean | 'auto'; exactMaxRows?: number } = {}): NeighbourIndex {
  const n = vectors.length / dim;
  const want = options.approximate ?? 'auto';
  const approximate = (want === true || (want === 'auto' && n > (options.exactMaxRows ?? EXACT_AUTO_MAX_ROWS))) && approximateAvailable();
  return NeighbourIndex.build(vectors, dim, { approximate, project: PROJECTED_DIM });
}

/**
 * Near-duplicate pairs among the first `neighbours` of each row's neighbours `nb` (a self search, full-width
 * similarities, best first): every pair whose cosine is >= minCosine, once (a < b).
 */
export function nearDuplicatePairsFromNeighbours(nb: Neighbours, n: number, options: { minCosine: number; neighbours?: number }): { a: Int32Array; b: Int32Array; similarity: Float32Array } {
  const k = Math.min(options.neighbours ?? nb.k, nb.k);
  const a: number[] = [];
  const b: number[] = [];
  const sim: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < k; r++) {
      const j = nb.indices[i * nb.k + r];
      if (j < 0) break;
      const s = nb.similarities[i * nb.k + r];
      // best first: the rest of the row is below the threshold too
      if (!(s >= options.minCosine)) break;
      const lo = Math.min(i, j);
      const hi = Math.max(i, j);
      const key = lo * n + hi;
      if (seen.has(key)) continue;
      seen.add(key);
      a.push(lo);
      b.push(hi);
      sim.push(s);
    }
  }
  return { a: Int32Array.from(a), b: Int32Array.from(b), similarity: Float32Array.from(sim) };
}

/**
 * Near-duplicate pairs of L2-normalised embeddings (n x dim) from the kNN index ({@link duplicateIndex}): every pair
 * among each row's `neighbours` nearest others whose exact cosine is >= minCosine. What the scale benchmark
 * measures. On the approximate path (more than EXACT_AUTO_MAX_ROWS rows with 'auto', or `approximate: true`) the
 * index holds a random projection of the rows to PROJECTED_DIM dimensions; candidates are re-scored on the full rows.
 */
export function nearDuplicatePairsFromEmbeddings(
  vectors: Float32Array,
  dim: number,
  options: { minCosine: number; neighbours?: number; approximate?: boolean | 'auto' },
): { a: Int32Array; b: Int32Array; similarity: Float32Array; approximate: boolean } {
  const n = vectors.length / dim;
  const k = Math.min(options.neighbours ?? NEAR_DUPLICATE_NEIGHBOURS, n - 1);
  if (k < 1) return { a: new Int32Array(), b: new Int32Array(), similarity: new Float32Array(), approximate: false };
  const index = duplicateIndex(vectors, dim, { approximate: options.approximate });
  return { ...nearDuplicatePairsFromNeighbours(index.selfNeighbours(k), n, { minCosine: options.minCosine }), approximate: index.approximate };
}

/** Groups, leakage, outliers and their warnings. Throws ClipLensError on invalid thresholds. */
export function analyseDuplicates(input: DuplicateInput, thresholds: Partial<DuplicateThresholds> = {}): DuplicateAnalysis {
  return findDuplicates(input, thresholds)(input);
}

/** {@link analyseDuplicates} up to the metrics (its input's metricsFor and metricsBySplit are not read). */
function findDuplicates(input: DuplicateInput, thresholds: Partial<DuplicateThresholds>): FoundDuplicates {
  const t: DuplicateThresholds = { ...DEFAULT_DUPLICATE_THRESHOLDS, ...thresholds };
  checkDuplicateThresholds(t);
  const { dim } = input;
  const prep = representativesOf(input);
  const { reps } = prep;
  const m = reps.length;
  const vectors = normalisedRows(input.embeddings, dim, reps);
  const links = new Links(m);
  if (input.pixelHashes) linkHashPairs(input, reps, t, (a, b) => dot(vectors, dim, a, b), links);
  // One kNN index and one neighbour query per row for both the embeddings-only near-duplicates and the outliers.
  const { nearK, outlierK } = neighbourCounts(input, m, t);
  let nb: Neighbours | null = null;
  if (nearK > 0 || outlierK > 0) {
    // Exact as each use had it alone: up to EXACT_AUTO_MAX_ROWS when the near-duplicates need the index, else
    // (outliers only) up to OUTLIER_EXACT_MAX_ROWS.
    const index = duplicateIndex(vectors, dim, { approximate: input.approximate, exactMaxRows: nearK > 0 ? EXACT_AUTO_MAX_ROWS : OUTLIER_EXACT_MAX_ROWS });
    nb = index.selfNeighbours(Math.max(nearK, outlierK));
  }
  if (nb && nearK > 0) {
    const pairs = nearDuplicatePairsFromNeighbours(nb, m, { minCosine: t.minCosine, neighbours: nearK });
    for (let p = 0; p < pairs.a.length; p++) links.link(pairs.a[p], pairs.b[p], pairs.similarity[p]);
  }
  const outliers = nb && outlierK > 0 ? findOutliers(input, prep, outlierDistances(nb, outlierK), classDistances(input, prep, packedRepRows(vectors, dim))) : [];
  return found(input, t, prep, links, outliers);
}

/**
 * {@link analyseDuplicates} for any size: from IVF_MIN_ROWS distinct images on (and unless `approximate: false`, when
 * ONNX Runtime loads) the kNN index is the IVF one of neighbours.ts, built from the embedding rows read by range
 * (no normalised copy of them all): near-duplicate candidates within the projection's slack of minCosine and hash
 * pairs are decided on full-width cosines; outliers as described at {@link outliersFromProjected}. Smaller inputs:
 * exactly analyseDuplicates.
 */
export async function analyseDuplicatesAsync(input: DuplicateInput, thresholds: Partial<DuplicateThresholds> = {}): Promise<DuplicateAnalysis> {
  return (await findDuplicatesAsync(input, thresholds))(input);
}

/** {@link analyseDuplicatesAsync} up to the metrics (its input's metricsFor and metricsBySplit are not read). */
export async function findDuplicatesAsync(input: DuplicateInput, thresholds: Partial<DuplicateThresholds> = {}): Promise<FoundDuplicates> {
  const t: DuplicateThresholds = { ...DEFAULT_DUPLICATE_THRESHOLDS, ...thresholds };
  checkDuplicateThresholds(t);
  const prep = representativesOf(input);
  const m = prep.reps.length;
  const { nearK, outlierK } = neighbourCounts(input, m, t);
  const wantIvf = input.ivf ?? 'auto';
  const large = m >= 3 && wantIvf !== false && (wantIvf === true || m >= IVF_MIN_ROWS) && input.approximate !== false;
  if (!large || !(await ivfAvailable())) return findDuplicates(input, thresholds);
  const source = repRowSource(input.embeddings, input.dim, prep.reps);
  // The outliers' class sums gathered as the build reads the rows (one decode of them fewer).
  const classSums = outlierK > 0 ? (({ classOf, classes }) => new ClassSums(classOf, classes, input.dim))(classesOfReps(input.samples, prep.reps)) : undefined;
  const index = await NeighbourIndex.buildFromRows(source, { ivf: true, ...(classSums ? { onRows: (start: number, rows: Float32Array, count: number) => classSums.add(start, rows, count) } : {}) });
  memMark('duplicates: IVF index built');
  const links = new Links(m);
  if (input.pixelHashes) linkHashPairs(input, prep.reps, t, (a, b) => index.cosine(a, b), links);
  if (nearK === 0 && outlierK === 0) return found(input, t, prep, links, []);
  // The class distances on a helper thread while this one runs the self-search (rows in shared memory), else now.
  const classDistances = outlierK > 0 ? classDistancesOfRows(input, prep, source, classSums, input.embeddings instanceof EmbeddingRows ? input.embeddings.stored : undefined) : undefined;
  const nb = await index.selfNeighboursAsync(Math.max(nearK, outlierK));
  memMark('duplicates: IVF self-neighbours');
  if (nearK > 0) nearPairsOfProjected(index, nb, nearK, t.minCosine, (a, b, sim) => links.link(a, b, sim));
  memMark('duplicates: near pairs');
  let outliers: Outlier[] = [];
  if (classDistances) {
    outliers = findOutliers(input, prep, await outliersFromProjected(index, nb, outlierK, classDistances, classIndexOfReps(input, prep)), classDistances());
    memMark('duplicates: outliers');
  }
  return found(input, t, prep, links, outliers);
}

/**
 * Near pairs from an IVF self-search (projected similarities): each row's first `neighbours` whose projected
 * similarity is within the projection's slack of minCosine are re-scored at full width; a pair (a < b) at >= minCosine
 * is reported once.
 */
function nearPairsOfProjected(index: NeighbourIndex, nb: Neighbours, neighbours: number, minCosine: number, onPair: (a: number, b: number, sim: number) => void): void {
  const m = index.size;
  const low = minCosine - index.projectedSlack(minCosine);
  const seen = new Set<number>();
  for (let i = 0; i < m; i++) {
    for (let r = 0; r < Math.min(neighbours, nb.k); r++) {
      const j = nb.indices[i * nb.k + r];
      if (j < 0 || !(nb.similarities[i * nb.k + r] >= low)) break;
      const a = Math.min(i, j);
      const b = Math.max(i, j);
      if (seen.has(a * m + b)) continue;
      seen.add(a * m + b);
      const sim = index.cosine(a, b);
      if (sim >= minCosine) onPair(a, b, sim);
    }
  }
}

/**
 * {@link nearDuplicatePairsFromEmbeddings} for any size: from IVF_MIN_ROWS rows on (or `ivf: true`), unless
 * `approximate: false`, the IVF index (neighbours.ts) with full-width re-scoring of the candidates near the threshold.
 * `kind` says which index answered.
 */
export async function nearDuplicatePairsFromEmbeddingsAsync(
  vectors: Float32Array,
  dim: number,
  options: { minCosine: number; neighbours?: number; approximate?: boolean | 'auto'; ivf?: boolean | 'auto' },
): Promise<{ a: Int32Array; b: Int32Array; similarity: Float32Array; approximate: boolean; kind: NeighbourIndex['kind'] }> {
  const n = vectors.length / dim;
  const k = Math.min(options.neighbours ?? NEAR_DUPLICATE_NEIGHBOURS, n - 1);
  const useIvf = k >= 1 && options.approximate !== false && options.ivf !== false && (options.ivf === true || n >= IVF_MIN_ROWS) && (await ivfAvailable());
  if (!useIvf) {
    const r = nearDuplicatePairsFromEmbeddings(vectors, dim, options);
    return { ...r, kind: r.approximate ? 'hnsw' : 'exact' };
  }
  const index = await NeighbourIndex.buildFromRows(packedRowSource(vectors, dim), { ivf: true });
  const nb = await index.selfNeighboursAsync(k);
  const a: number[] = [];
  const b: number[] = [];
  const sim: number[] = [];
  nearPairsOfProjected(index, nb, k, options.minCosine, (x, y, s) => {
    a.push(x);
    b.push(y);
    sim.push(s);
  });
  return { a: Int32Array.from(a), b: Int32Array.from(b), similarity: Float32Array.from(sim), approximate: true, kind: index.kind };
}

/** The class (an index per label, -1 without one) of each representative. */
function classIndexOfReps(input: DuplicateInput, prep: Representatives): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(prep.reps, (i) => {
    const label = input.samples[i].label;
    if (label === undefined || label === null) return -1;
    let id = ids.get(label);
    if (id === undefined) ids.set(label, (id = ids.size));
    return id;
  });
}

/** Rows of the sample the IVF path's outlier fence and median come from (each searched exactly in the projection). */
export const OUTLIER_SAMPLE_ROWS = 1024;
/** At most this many outlier candidates of the IVF path are searched exactly in the projection (the nearest the fence first). */
export const OUTLIER_EXACT_CANDIDATES = 1024;

/**
 * Outlier distances from an IVF self-search (projected similarities). The fence (Q3 + 3 IQR) and the median come from
 * an evenly spaced sample of OUTLIER_SAMPLE_ROWS rows whose neighbours are found by the list-probing refine and an exact
 * search in the projection, re-scored at full width (NeighbourIndex.exactRefine: nearly the exact path's distances; refine alone
 * missed a cluster's members for a quarter of the rows at a million, which put the fence out of reach). Only a row
 * beyond its class's limit (the second test, exact: cd) can be an outlier: those rows are re-scored at full width,
 * the ones still beyond the fence (a better search can only lower d) searched deeper (refine), then among their own
 * class (refineWithin), and those still beyond it searched exactly in the projection too (at most
 * OUTLIER_EXACT_CANDIDATES, the nearest the fence first; any others, the most distant, keep their d), so a row is
 * flagged on nearly the distance the exact path gives it. Projected similarities alone
 * cannot pick the candidates: a row's projection errors are shared by a whole cluster (a far row can look close to one).
 */
async function outliersFromProjected(index: NeighbourIndex, nb: Neighbours, k: number, classDistances: () => ClassDistances, classOfReps: Int32Array): Promise<OutlierDistances> {
  const m = index.size;
  const count = Math.min(m, OUTLIER_SAMPLE_ROWS);
  const eligible = new Uint8Array(m);
  const sample: number[] = [];
  for (let i = 0; i < count; i++) {
    const j = Math.floor((i * m) / count);
    sample.push(j);
    eligible[j] = 1;
  }
  await index.refine(nb, sample);
  await index.exactRefine(nb, sample);
  const rowD = (j: number) => meanNeighbourDistance(nb, k, j);
  const sampleD = Float64Array.from(sample, rowD).sort();
  const fence = quantile(sampleD, 0.75) + 3 * (quantile(sampleD, 0.75) - quantile(sampleD, 0.25));
  const candidates: number[] = [];
  const cd = classDistances(); // not before: a helper may still be computing them
  for (let j = 0; j < m; j++) if (!eligible[j] && beyondClassLimit(cd, j)) candidates.push(j);
  index.rescore(nb, candidates);
  const deeper = candidates.filter((j) => rowD(j) > fence);
  await index.refine(nb, deeper);
  for (const j of deeper) eligible[j] = 1;
  // Its own class (the label the class test used) is where a row's nearest images usually are: searched next.
  const within = deeper.filter((j) => rowD(j) > fence);
  await index.refineWithin(nb, within, classOfReps);
  // The rows still beyond the fence nearest it first (the flags a better search is likeliest to change).
  const beyond = within
    .filter((j) => rowD(j) > fence)
    .map((j) => ({ j, d: rowD(j) }))
    .sort((a, b) => a.d - b.d || a.j - b.j)
    .slice(0, OUTLIER_EXACT_CANDIDATES)
    .map((e) => e.j);
  await index.exactRefine(nb, beyond);
  // Rows neither sampled nor candidates keep their projected d: they cannot be flagged (eligible 0).
  const dist = new Float64Array(m);
  for (let j = 0; j < m; j++) dist[j] = rowD(j);
  return { dist, sorted: sampleD, eligible };
}

interface OutlierDistances {
  /** Per representative: mean cosine distance to its first k neighbours. */
  dist: Float64Array;
  /** The distances the fence and median come from, sorted (all of dist, or a sample). */
  sorted: Float64Array;
  /** Only these representatives may be flagged (undefined: all). */
  eligible?: Uint8Array;
}

/** Each representative's mean cosine distance to its first k neighbours in nb (1 when it has none). */
function outlierDistances(nb: Neighbours, k: number): OutlierDistances {
  const m = nb.indices.length / nb.k;
  const dist = new Float64Array(m);
  for (let j = 0; j < m; j++) dist[j] = meanNeighbourDistance(nb, k, j);
  return { dist, sorted: Float64Array.from(dist).sort() };
}

/** Row j's mean cosine distance to its first k neighbours in nb (missing neighbours skipped; 1 when it has none). */
function meanNeighbourDistance(nb: Neighbours, k: number, j: number): number {
  let s = 0;
  let c = 0;
  for (let r = 0; r < k; r++) {
    const v = nb.similarities[j * nb.k + r];
    if (Number.isNaN(v)) continue;
    s += 1 - v;
    c++;
  }
  return c > 0 ? s / c : 1;
}

interface Representatives {
  /** The first readable sample of each content (samples without a hash are their own content), in sample order. */
  reps: number[];
  /** Representative j's samples (increasing): members[memberStart[j] .. memberStart[j + 1]) (no array per representative). */
  members: Int32Array;
  memberStart: Int32Array;
  /** Exact groups (the contents with several samples). */
  groups: { kind: 'exact' | 'near'; members: number[]; similarity: number }[];
}

/** The samples of representative j (increasing sample indices). */
function repMembersOf(prep: Representatives, j: number): Int32Array {
  return prep.members.subarray(prep.memberStart[j], prep.memberStart[j + 1]);
}

function representativesOf(input: DuplicateInput): Representatives {
  const { samples } = input;
  const n = samples.length;
  // Each usable sample's representative (-1: not usable); only hashed contents go through the map.
  const repOf = new Int32Array(n).fill(-1);
  const repOfContent = new Map<string, number>();
  const reps: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = samples[i];
    if (s.error || input.hasEmbedding[i] !== 1) continue;
    if (s.contentHash === undefined || s.contentHash === null) {
      repOf[i] = reps.length;
      reps.push(i);
      continue;
    }
    let j = repOfContent.get(s.contentHash);
    if (j === undefined) {
      repOfContent.set(s.contentHash, (j = reps.length));
      reps.push(i);
    }
    repOf[i] = j;
  }
  const m = reps.length;
  const memberStart = new Int32Array(m + 1);
  for (let i = 0; i < n; i++) if (repOf[i] >= 0) memberStart[repOf[i] + 1]++;
  for (let j = 0; j < m; j++) memberStart[j + 1] += memberStart[j];
  const at = memberStart.slice(0, m);
  const members = new Int32Array(memberStart[m]);
  for (let i = 0; i < n; i++) if (repOf[i] >= 0) members[at[repOf[i]]++] = i;
  const prep: Representatives = { reps, members, memberStart, groups: [] };
  for (let j = 0; j < m; j++) if (memberStart[j + 1] - memberStart[j] > 1) prep.groups.push({ kind: 'exact', members: Array.from(repMembersOf(prep, j)), similarity: 1 });
  return prep;
}

/** Neighbours per row the near-duplicates (embeddings only) and the outliers need (0: not needed). */
function neighbourCounts(input: DuplicateInput, m: number, t: DuplicateThresholds): { nearK: number; outlierK: number } {
  return { nearK: input.pixelHashes || m < 2 ? 0 : Math.min(NEAR_DUPLICATE_NEIGHBOURS, m - 1), outlierK: m >= 3 ? Math.min(t.outlierNeighbours, m - 1) : 0 };
}

/** Union-find over representatives with the cosine of each linking pair. */
class Links {
  readonly uf: UnionFind;
  readonly edgeSims: [number, number, number][] = [];
  constructor(m: number) {
    this.uf = new UnionFind(m);
  }
  link(a: number, b: number, s: number): void {
    this.uf.union(a, b);
    this.edgeSims.push([a, b, s]);
  }
}

/** Near pairs from the pixel-hash multi-index whose cosine (by `cosine`, representatives' indices) is >= minCosine. */
function linkHashPairs(input: DuplicateInput, reps: number[], t: DuplicateThresholds, cosine: (a: number, b: number) => number, links: Links): void {
  // Representatives with pixel hashes, packed; the others (no hash could be computed) are left out.
  const withHash = reps.map((_, j) => j).filter((j) => input.hasPixelHash?.[reps[j]] !== 0);
  const packed = new Uint32Array(withHash.length * HASH_WORDS);
  withHash.forEach((j, p) => packed.set(input.pixelHashes!.subarray(reps[j] * HASH_WORDS, (reps[j] + 1) * HASH_WORDS), p * HASH_WORDS));
  hashCandidatePairs(packed, withHash.length, t.maxHashDistance, (pa, pb) => {
    const a = withHash[pa];
    const b = withHash[pb];
    const s = cosine(a, b);
    if (s >= t.minCosine) links.link(a, b, s);
  });
}

/** What the leakage figures and the warnings read of the input. */
type LeakageInput = Pick<DuplicateInput, 'samples' | 'hasEmbedding'> & LeakageMetrics;

/**
 * The duplicates found, finished when the metrics come ({@link finishAnalysis}). Made here, not inside the functions
 * that find them: a closure made there would keep their whole scope (the kNN index, the normalised rows) alive.
 */
function found(input: DuplicateInput, t: DuplicateThresholds, prep: Representatives, links: Links, outliers: Outlier[]): FoundDuplicates {
  const { samples, hasEmbedding } = input;
  return (metrics) => finishAnalysis({ samples, hasEmbedding, metricsFor: metrics.metricsFor, metricsBySplit: metrics.metricsBySplit }, t, prep, links, outliers);
}

/** Near groups from the links, then leakage and warnings. */
function finishAnalysis(input: LeakageInput, t: DuplicateThresholds, prep: Representatives, links: Links, outliers: Outlier[]): DuplicateAnalysis {
  const { samples } = input;
  const hasSplits = samples.some((s) => s.split !== undefined);
  // A copy: the same duplicates may be finished more than once.
  const groups = prep.groups.slice();
  const m = prep.reps.length;
  const { uf, edgeSims } = links;
  const components = new Map<number, { reps: number[]; similarity: number }>();
  for (const [a, , s] of edgeSims) {
    const root = uf.find(a);
    const c = components.get(root) ?? { reps: [], similarity: 1 };
    c.similarity = Math.min(c.similarity, s);
    components.set(root, c);
  }
  for (let j = 0; j < m; j++) components.get(uf.find(j))?.reps.push(j);
  for (const c of components.values()) {
    const members = c.reps.flatMap((j) => Array.from(repMembersOf(prep, j))).sort((x, y) => x - y);
    groups.push({ kind: 'near', members, similarity: Math.min(1, Math.max(-1, c.similarity)) });
  }
  groups.sort((x, y) => x.members[0] - y.members[0] || (x.kind === y.kind ? 0 : x.kind === 'exact' ? -1 : 1));

  const out: DuplicateGroup[] = groups.map((g) => ({
    kind: g.kind,
    paths: g.members.map((i) => samples[i].path),
    splits: hasSplits ? g.members.map((i) => samples[i].split ?? '') : [],
    labels: g.members.map((i) => samples[i].label),
    similarity: round6(g.similarity),
  }));

  // Leakage: per later split, the samples whose group (exact or near; a near group contains its exact copies)
  // has a member in an earlier split.
  const leakage: LeakedSplit[] = [];
  if (hasSplits) {
    const leakedBySplit = new Map<string, { earlier: Set<string>; items: Map<number, number> }>();
    for (const g of groups) {
      const splits = [...new Set(g.members.map((i) => samples[i].split).filter((s): s is string => s !== undefined))].sort(compareSplits);
      if (splits.length < 2) continue;
      const first = splits[0];
      const earliestCopy = g.members.find((i) => samples[i].split === first) as number;
      for (const i of g.members) {
        const s = samples[i].split;
        if (s === undefined || compareSplits(s, first) <= 0) continue;
        const entry = leakedBySplit.get(s) ?? { earlier: new Set<string>(), items: new Map<number, number>() };
        for (const e of splits) if (compareSplits(e, s) < 0) entry.earlier.add(e);
        if (!entry.items.has(i)) entry.items.set(i, earliestCopy);
        leakedBySplit.set(s, entry);
      }
    }
    for (const split of [...leakedBySplit.keys()].sort(compareSplits)) {
      const { earlier, items } = leakedBySplit.get(split)!;
      const leaked = [...items.keys()].sort((x, y) => x - y);
      const leakedSet = new Set(leaked);
      const rest = samples.map((_, i) => i).filter((i) => samples[i].split === split && !leakedSet.has(i));
      leakage.push({
        split,
        earlier: [...earlier].sort(compareSplits),
        paths: leaked.map((i) => samples[i].path),
        copies: leaked.map((i) => samples[items.get(i)!].path),
        metricsWithoutLeaked: rest.length > 0 && input.metricsFor ? input.metricsFor(rest) : null,
      });
    }
  }

  return { groups: out, leakage, outliers, warnings: duplicateWarnings(out, groups, leakage, outliers, input, t) };
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

function quantile(sorted: Float64Array | number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

interface ClassDistances {
  /** Cosine distance of each representative to the mean of the rest of its class. */
  classDist: Float64Array;
  /** The class of each representative. */
  classOf: Int32Array;
  /** Per class, Q3 + 1.5 IQR of its members' distances (-Infinity for classes of fewer than 5). */
  limitOfClass: Float64Array;
}

/** Whether representative j is farther from its class than its class's limit (the outliers' second test). */
function beyondClassLimit(cd: ClassDistances, j: number): boolean {
  return (cd.classDist[j] as number) > (cd.limitOfClass[cd.classOf[j] as number] as number);
}

/**
 * The outliers' second test, each representative's distance to the rest of its class. rows: the representatives'
 * rows, normalised, read block by block twice (class sums, then each row's leave-one-out class distance): no packed
 * copy needed. The large path's raw rows: {@link classDistancesOfRows}.
 */
function classDistances(input: DuplicateInput, prep: Representatives, rows: RowSource): ClassDistances {
  const { samples, dim } = input;
  const { reps } = prep;
  const m = reps.length;

  // Class means (sum of member vectors, copies counted once) for the leave-one-out class distance.
  const { classOf, classes: classCount } = classesOfReps(samples, reps);
  const sums = new Float64Array(classCount * dim);
  forEachRowBlock(rows, m, dim, (j0, j1, buf) => {
    for (let j = j0; j < j1; j++) {
      const so = classOf[j] * dim;
      const o = (j - j0) * dim;
      for (let d = 0; d < dim; d++) sums[so + d] += buf[o + d];
    }
  });
  const classDist = new Float64Array(m);
  forEachRowBlock(rows, m, dim, (j0, j1, buf) => {
    for (let j = j0; j < j1; j++) {
      const so = classOf[j] * dim;
      const o = (j - j0) * dim;
      let dotp = 0;
      let norm = 0;
      for (let d = 0; d < dim; d++) {
        const rest = sums[so + d] - buf[o + d];
        dotp += rest * buf[o + d];
        norm += rest * rest;
      }
      classDist[j] = norm > 0 ? 1 - dotp / Math.sqrt(norm) : 1;
    }
  });
  return { classDist, classOf, limitOfClass: classLimits(classOf, classCount, classDist) };
}

/** Rows 0 .. m - 1 of `rows` as float32 blocks of about 4 MB: `each(j0, j1, buf)`, rows j0 .. j1 - 1 in `buf`. */
function forEachRowBlock(rows: RowSource, m: number, dim: number, each: (j0: number, j1: number, buf: Float32Array) => void): void {
  const block = Math.max(1, Math.min(m, Math.floor((1 << 20) / dim)));
  const buf = new Float32Array(block * dim);
  for (let j0 = 0; j0 < m; j0 += block) {
    const j1 = Math.min(m, j0 + block);
    rows.copyRows(j0, j1, buf);
    each(j0, j1, buf);
  }
}

/** Each representative's class as an index (classes numbered in order of first appearance), and how many there are. */
function classesOfReps(samples: DuplicateInput['samples'], reps: readonly number[]): { classOf: Int32Array; classes: number } {
  const classIds = new Map<string, number>();
  const classOf = new Int32Array(reps.length);
  reps.forEach((r, j) => {
    let c = classIds.get(samples[r].label);
    if (c === undefined) classIds.set(samples[r].label, (c = classIds.size));
    classOf[j] = c;
  });
  return { classOf, classes: classIds.size };
}

/**
 * The class sums of {@link classDistancesOfRows}: each representative's row, normalised (float64), added to its class's
 * sum, block by block as some other pass reads the rows (the IVF build's: NeighbourIndexOptions.onRows), so the rows
 * are not decoded again for them.
 */
class ClassSums {
  readonly sums: Float64Array;
  readonly classOf: Int32Array;
  /** Rows added so far. */
  seen = 0;
  /** The block a helper thread is adding (see {@link add}), and the shared copy of its rows. */
  private pending: (() => void) | null = null;
  private block: Float32Array | null = null;
  constructor(
    classOf: Int32Array,
    readonly classes: number,
    readonly dim: number,
  ) {
    this.classOf = toSharedInt32(classOf);
    this.sums = sharedFloat64(classes * dim);
  }

  /**
   * Adds rows start .. start + count - 1 (raw, rows[0 .. count * dim); read during the call only). With helper
   * threads the block is copied to shared memory and added by a helper while the caller goes on (the IVF build
   * projects it on ONNX Runtime and reads the next one); blocks are added one after the other, in order: the same sums
   * as on one thread. Call {@link finish} before reading the sums.
   */
  add(start: number, rows: Float32Array, count: number): void {
    this.finish();
    const values = count * this.dim;
    const block = { rows: rows.subarray(0, values), count, dim: this.dim, classOf: this.classOf.subarray(start, start + count), sums: this.sums };
    this.seen += count;
    if (!canShareMemory() || threadCount() < 2) return addClassRows(block);
    if (!this.block || this.block.length < values) this.block = new Float32Array(new SharedArrayBuffer(4 * values));
    this.block.set(block.rows);
    // About four reads a value (the row twice, its class's sum twice).
    this.pending = startClassSums({ ...block, rows: this.block.subarray(0, values) }, 1, 4 * values, true);
  }

  /** Waits for the block being added; the sums are complete for the rows seen. */
  finish(): void {
    const pending = this.pending;
    this.pending = null;
    pending?.();
  }

  /** {@link finish}, and the shared block copy goes (16 MiB at 8,192 rows of 512: it was held to the duplicates' peak). */
  close(): void {
    this.finish();
    this.block = null;
  }
}

/**
 * {@link classDistances} of raw rows (normalised as read) for the large path, in one pass over the rows when the class
 * sums were gathered during another (`sums`, complete), else two; a row costs one fused loop (outlierJobs.ts
 * classDistancesOf). The distances agree with the exact path's (normalised float32 rows) to about 1e-7.
 * Returned as a function: when the rows lie in shared memory (`stored`, with each representative's row number) a
 * helper thread computes them meanwhile (the caller runs the IVF self-search), and the function finishes that job;
 * else they are computed now. The same distances either way, bit for bit (the same decode, the same loop).
 */
function classDistancesOfRows(input: DuplicateInput, prep: Representatives, rows: RowSource, gathered?: ClassSums, stored?: StoredRows): () => ClassDistances {
  const { samples, dim } = input;
  const m = prep.reps.length;
  let cs = gathered;
  if (!cs || cs.seen !== m) {
    const { classOf, classes } = classesOfReps(samples, prep.reps);
    cs = new ClassSums(classOf, classes, dim);
  }
  const { classOf, classes, sums } = cs;
  if (cs.seen !== m) forEachRowBlock(rows, m, dim, (j0, j1, buf) => (cs as ClassSums).add(j0, buf, j1 - j0));
  cs.close();
  const sumSq = new Float64Array(classes);
  for (let c = 0; c < classes; c++) for (let d = 0; d < dim; d++) sumSq[c] += sums[c * dim + d] * sums[c * dim + d];
  const done = (classDist: Float64Array): ClassDistances => ({ classDist, classOf, limitOfClass: classLimits(classOf, classes, classDist) });
  if (stored && storedRowsShared(stored) && canShareMemory() && threadCount() >= 2) {
    const job: ClassDistancesJob = { rows: stored, reps: toSharedInt32(prep.reps), unitRows: CLASS_DISTANCE_UNIT_ROWS, dim, classOf, sums, sumSq: toSharedFloat64(sumSq), classDist: sharedFloat64(m) };
    // Three reads a value (the row, its class's sum, the decode table).
    const finish = startClassDistances(job, Math.ceil(m / CLASS_DISTANCE_UNIT_ROWS), 3 * m * dim, true);
    let result: ClassDistances | undefined;
    return () => {
      if (!result) {
        finish();
        result = done(job.classDist);
      }
      return result;
    };
  }
  const classDist = new Float64Array(m);
  forEachRowBlock(rows, m, dim, (j0, j1, buf) => classDistancesOf({ dim, classOf, sums, sumSq, classDist }, j0, j1, buf));
  const result = done(classDist);
  return () => result;
}

/** Representatives a unit of the class distances' helper job (2 MiB of float32 rows at width 512). */
const CLASS_DISTANCE_UNIT_ROWS = 1024;

/**
 * Per class, Q3 + 1.5 IQR of its members' distances (-Infinity for classes of fewer than 5). The distances grouped by
 * class in one typed array (a counting sort), not a list per class: at a million representatives the lists were tens
 * of MB of heap at the duplicates' peak.
 */
function classLimits(classOf: Int32Array, classes: number, classDist: Float64Array): Float64Array {
  const m = classOf.length;
  const start = new Int32Array(classes + 1);
  for (let j = 0; j < m; j++) start[(classOf[j] as number) + 1]++;
  for (let c = 0; c < classes; c++) start[c + 1] += start[c] as number;
  const next = start.slice(0, classes);
  const byClass = new Float64Array(m);
  for (let j = 0; j < m; j++) byClass[next[classOf[j] as number]++] = classDist[j] as number;
  const limit = new Float64Array(classes).fill(-Infinity);
  for (let c = 0; c < classes; c++) {
    if ((start[c + 1] as number) - (start[c] as number) < 5) continue;
    const cs = byClass.subarray(start[c], start[c + 1]).sort();
    limit[c] = quantile(cs, 0.75) + 1.5 * (quantile(cs, 0.75) - quantile(cs, 0.25));
  }
  return limit;
}

/** Outliers from each representative's neighbour distance (od) and its class distance (cd). */
function findOutliers(input: DuplicateInput, prep: Representatives, od: OutlierDistances, cd: ClassDistances): Outlier[] {
  const { samples } = input;
  const { reps } = prep;
  const m = reps.length;
  const { dist, sorted } = od;
  const { classDist } = cd;
  const median = quantile(sorted, 0.5);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  const farOut = q3 + 3 * (q3 - q1);
  const out: Outlier[] = [];
  for (let j = 0; j < m; j++) {
    if (od.eligible && !od.eligible[j]) continue;
    if (!(dist[j] > farOut) || !beyondClassLimit(cd, j)) continue;
    for (const i of repMembersOf(prep, j)) {
      const s = samples[i];
      out.push({
        path: s.path,
        label: s.label,
        ...(s.split !== undefined ? { split: s.split } : {}),
        score: round6(dist[j] > 0 ? Math.min(1, median / dist[j]) : 1),
        distance: round6(dist[j]),
        classDistance: round6(classDist[j]),
      });
    }
  }
  return out.sort((a, b) => a.score - b.score || (a.path < b.path ? -1 : 1));
}

/** The representatives' normalised rows, packed, as a RowSource. */
function packedRepRows(vectors: Float32Array, dim: number): RowSource {
  return packedRowSource(vectors, dim);
}

/** The raw embedding rows of the representatives (increasing sample indices), read by range without a packed copy. */
function repRowSource(source: Float32Array | EmbeddingRows, dim: number, reps: number[]): RowSource {
  const stored: StoredRows = source instanceof Float32Array ? { dim, chunkRows: Math.max(1, source.length / dim), half: false, values: [source], scales: [] } : source.stored;
  return {
    rows: reps.length,
    dim,
    copyRows: (j0, j1, out) => copyStoredRowsOf(stored, reps, j0, j1, out),
  };
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function pathList(paths: string[], max = 3): string {
  const shown = paths.slice(0, max).join(', ');
  return paths.length > max ? `${shown} and ${paths.length - max} more` : shown;
}

function duplicateWarnings(
  groups: DuplicateGroup[],
  raw: { kind: 'exact' | 'near'; members: number[] }[],
  leakage: LeakedSplit[],
  outliers: Outlier[],
  input: LeakageInput,
  t: DuplicateThresholds,
): Warning[] {
  const out: Warning[] = [];
  const { samples } = input;
  for (const l of leakage) {
    const n = l.paths.length;
    const leakedSet = new Set(l.paths);
    const exactOnly = raw.every((g) => g.kind === 'exact' || !g.members.some((i) => leakedSet.has(samples[i].path)));
    const copy = exactOnly ? 'an exact copy' : 'a near-copy';
    const withM = input.metricsBySplit?.[l.split];
    const without = l.metricsWithoutLeaked;
    const figures =
      withM && without
        ? ` (top-1 ${pct(withM.top1Accuracy)} with them, ${pct(without.top1Accuracy)} without; balanced ${pct(withM.balancedAccuracy)} with, ${pct(without.balancedAccuracy)} without)`
        : '';
    out.push({
      kind: 'leakage',
      severity: 'error',
      split: l.split,
      paths: l.paths,
      message: `${n} ${l.split} image${n === 1 ? ' has' : 's have'} ${copy} in ${l.earlier.join(' and ')}: ${l.split} accuracy is inflated${figures}. ${pathList(l.paths)}.`,
      numbers: {
        count: n,
        ...(withM ? { top1Accuracy: withM.top1Accuracy, balancedAccuracy: withM.balancedAccuracy, n: withM.n } : {}),
        ...(without ? { top1AccuracyWithoutLeaked: without.top1Accuracy, balancedAccuracyWithoutLeaked: without.balancedAccuracy, nWithoutLeaked: without.n } : {}),
      },
    });
  }
  const plainBySplit = new Map<string, Set<string>>();
  groups.forEach((g) => {
    const labels = [...new Set(g.labels)];
    const what = g.kind === 'exact' ? 'The same image appears' : `Near-copies of one image (cosine >= ${g.similarity.toFixed(3)}) appear`;
    if (labels.length > 1) {
      out.push({
        kind: 'conflicting-labels',
        severity: 'warning',
        paths: g.paths,
        message: `${what} ${g.paths.length} times with different labels (${labels.map((l) => `'${l}'`).join(', ')}): ${pathList(g.paths)}. At most one label can be right.`,
        numbers: { count: g.paths.length, labels: labels.length, similarity: g.similarity },
      });
      return;
    }
    const splits = new Set(g.splits);
    if (splits.size > 1) return; // leakage covers it
    const key = g.splits[0] ?? '';
    const set = plainBySplit.get(key) ?? new Set<string>();
    for (const p of g.paths) set.add(p);
    plainBySplit.set(key, set);
  });
  for (const [split, set] of plainBySplit) {
    const paths = [...set];
    const groupsHere = groups.filter((g) => new Set(g.labels).size === 1 && new Set(g.splits).size <= 1 && (g.splits[0] ?? '') === split);
    const where = split ? ` in '${split}'` : '';
    out.push({
      kind: 'duplicate',
      severity: 'info',
      ...(split ? { split } : {}),
      paths,
      message: `${paths.length} images${where} are copies or near-copies of each other, in ${groupsHere.length} group${groupsHere.length === 1 ? '' : 's'} under one label each: each counts several times in the metrics. ${pathList(paths)}.`,
      numbers: { count: paths.length, groups: groupsHere.length },
    });
  }
  const outliersByClass = new Map<string, Outlier[]>();
  for (const o of outliers) outliersByClass.set(o.label, [...(outliersByClass.get(o.label) ?? []), o]);
  for (const [cls, list] of outliersByClass) {
    const size = samples.filter((s, i) => s.label === cls && !s.error && input.hasEmbedding[i] === 1).length;
    if (list.length < 3 || list.length / size < t.classOutlierFraction) continue;
    out.push({
      kind: 'class-outliers',
      severity: 'warning',
      class: cls,
      paths: list.map((o) => o.path),
      message: `${list.length} of ${size} images of '${cls}' look unlike the rest of the class and of the dataset (blank, corrupted or another domain?): ${pathList(list.map((o) => o.path))}.`,
      numbers: { count: list.length, size, fraction: list.length / size, threshold: t.classOutlierFraction },
    });
  }
  return out;
}

/** A row as float16 bit patterns and the scale that makes it unit length (see {@link EmbeddingRows.set}). */
export interface HalfRow {
  /** The row's float16 bit patterns (dim values), as read from a float16 shard. */
  bits: Uint16Array;
  /** The row's value j is fround(half(bits[j]) * scale): the float32 embedding handed to `set`. */
  scale: number;
  /**
   * Set by the reader that made the embedding from these bits and this scale (embeddingsDir.ts decodeRow), so that
   * they are known to match: `set` then skips the check.
   */
  exact?: boolean;
}

/**
 * Embedding rows of a run, kept for the predictors, zero-shot and the duplicate and outlier analysis (chunks of
 * 1,024 rows, made on first use).
 *
 * Storage: float32, or, while every row came from a float16 shard (`set` with a {@link HalfRow}), the float16 bit
 * patterns and one float64 scale per row: 2 bytes a value instead of 4, and lossless (a row reads back as
 * fround(half * scale), bit for bit the float32 row that was set). A row set without its float16 form turns the
 * store to float32 (the float16 rows are decoded once). Readers go through {@link copyRows} (float32 copies of a row
 * range: the way to read rows in bulk), {@link block} or {@link packed}.
 */
export class EmbeddingRows {
  private static readonly CHUNK = 1024;
  private chunks: Float32Array[] = [];
  private halfChunks: Uint16Array[] = [];
  private scales: Float64Array[] = [];
  /** 'half' while every row so far came with its float16 form. */
  private mode: 'empty' | 'half' | 'float' = 'empty';
  /** False once a float16 row came with a scale that is not a float32 value (see {@link halfBlocks}). */
  private float32Scales = true;
  /** The last block decoded by {@link block} in float16 mode (a copy). */
  private cached: { b: number; rows: Float32Array } | undefined;
  readonly has: Uint8Array;
  dim = 0;

  constructor(readonly n: number) {
    this.has = new Uint8Array(n);
  }

  /** True while rows are held as float16 (2 bytes a value). */
  get isHalf(): boolean {
    return this.mode === 'half';
  }

  /** Bytes held by the rows (storage only). */
  get bytes(): number {
    let b = 0;
    for (const c of this.chunks) if (c) b += c.byteLength;
    for (const c of this.halfChunks) if (c) b += c.byteLength;
    for (const c of this.scales) if (c) b += c.byteLength;
    return b;
  }

  /**
   * Row i = `embedding` (copied). `half`, when given, is the same row as float16 patterns and a scale with
   * fround(half(bits[j]) * scale) === embedding[j] for every j (a float16 shard's row, L2-normalised: see
   * embeddingsDir.ts); the store then keeps the 2-byte form. A half form that does not give `embedding` back is
   * ignored (the store turns to float32). `embedding` null: the row is `half` alone (it must be `exact`), decoded here
   * only if the store holds float32 rows.
   */
  set(i: number, embedding: Float32Array | null, half?: HalfRow): void {
    if (!embedding) {
      if (!half?.exact) throw new Error('EmbeddingRows.set: a row without its float32 values needs an exact float16 form');
      if (this.dim !== 0 && half.bits.length !== this.dim) return;
      if (this.mode === 'float') {
        const row = new Float32Array(half.bits.length);
        decodeHalfRows(half.bits, [half.scale], 0, 1, half.bits.length, row);
        return this.set(i, row);
      }
    }
    const width = embedding ? embedding.length : (half as HalfRow).bits.length;
    if (this.dim === 0) this.dim = width;
    if (width !== this.dim) return;
    const c = Math.floor(i / EmbeddingRows.CHUNK);
    const r = i - c * EmbeddingRows.CHUNK;
    if (this.mode !== 'float' && half && half.bits.length === this.dim && (half.exact === true || (embedding !== null && EmbeddingRows.halfMatches(embedding, half)))) {
      this.mode = 'half';
      const chunk = (this.halfChunks[c] ??= this.slabChunk(c, 'half') as Uint16Array);
      chunk.set(half.bits, r * this.dim);
      (this.scales[c] ??= this.slabChunk(c, 'scale') as Float64Array)[r] = half.scale;
      if (Math.fround(half.scale) !== half.scale) this.float32Scales = false;
      if (this.cached?.b === c) this.cached = undefined;
    } else {
      if (this.mode === 'half') this.toFloat();
      this.mode = 'float';
      const chunk = (this.chunks[c] ??= this.slabChunk(c, 'float') as Float32Array);
      chunk.set(embedding as Float32Array, r * this.dim);
    }
    this.has[i] = 1;
  }

  /** Chunks per slab: a slab of 512-wide float16 rows is 64 MiB. */
  private static readonly SLAB_CHUNKS = 64;
  private readonly slabs = new Map<string, Uint16Array | Float32Array | Float64Array>();

  /**
   * Chunk c's storage of one kind, a view of a slab of SLAB_CHUNKS chunks (fewer at the end of the rows) made on first
   * use. Slabs, not a buffer per chunk: glibc serves blocks below its mmap threshold (which rises to 32 MiB as large
   * blocks are freed) from its heap, where a gigabyte of 1 MiB chunks was not always given back to the system once
   * freed (the RSS of a million-row run then stayed 1 GB high while its report was written); a block of more than
   * 32 MiB is always a mapping of its own, returned when freed.
   */
  private slabChunk(c: number, kind: 'half' | 'float' | 'scale'): Uint16Array | Float32Array | Float64Array {
    const per = EmbeddingRows.SLAB_CHUNKS;
    const first = Math.floor(c / per) * per;
    const key = `${kind}:${first}`;
    let slab = this.slabs.get(key);
    if (!slab) {
      const chunks = Math.min(per, Math.ceil(this.n / EmbeddingRows.CHUNK) - first);
      const values = chunks * EmbeddingRows.CHUNK * (kind === 'scale' ? 1 : this.dim);
      // On shared memory where there is some: helper threads then read the rows where they are (storedRows.ts).
      slab = kind === 'half' ? sharedUint16(values) : kind === 'float' ? sharedFloat32(values) : sharedFloat64(values);
      this.slabs.set(key, slab);
    }
    const size = EmbeddingRows.CHUNK * (kind === 'scale' ? 1 : this.dim);
    return slab.subarray((c - first) * size, (c - first + 1) * size);
  }

  private static halfMatches(embedding: Float32Array, half: HalfRow): boolean {
    const table = halfValues();
    const { bits, scale } = half;
    for (let j = 0; j < embedding.length; j++) if (Math.fround((table[bits[j]] as number) * scale) !== embedding[j]) return false;
    return true;
  }

  /** Turns float16 storage into float32 (a row came without its float16 form). */
  private toFloat(): void {
    this.halfChunks.forEach((chunk, c) => {
      if (!chunk) return;
      const out = this.slabChunk(c, 'float') as Float32Array;
      this.decode(c, 0, EmbeddingRows.CHUNK, out, 0);
      this.chunks[c] = out;
    });
    this.halfChunks = [];
    this.scales = [];
    for (const key of [...this.slabs.keys()]) if (!key.startsWith('float:')) this.slabs.delete(key);
    this.cached = undefined;
  }

  /** Decodes rows r0 .. r1 of float16 chunk c into out at `at` (floats). */
  private decode(c: number, r0: number, r1: number, out: Float32Array, at: number): void {
    const per = EmbeddingRows.CHUNK;
    copyStoredRows(this.stored, c * per + r0, c * per + r1, out, at);
  }

  /**
   * True when the rows can be read as float16 patterns and float32 scales ({@link copyHalfRows}): float16 storage, and
   * every scale a float32 value, so that the float32 product Cast(half) * scale is the row {@link copyRows} gives, bit
   * for bit (the exact product of two float32 values fits a double: rounding it once to float32 is IEEE's product).
   */
  get halfBlocks(): boolean {
    return this.mode === 'half' && this.float32Scales;
  }

  /**
   * Rows start .. end - 1 as float16 patterns into `bits` ((end - start) x dim) and their scales into `scales`; rows
   * without an embedding are zeros. Needs {@link halfBlocks}.
   */
  copyHalfRows(start: number, end: number, bits: Uint16Array, scales: Float32Array): void {
    const dim = this.dim;
    const per = EmbeddingRows.CHUNK;
    if (!this.halfBlocks) throw new Error('copyHalfRows: the rows are not float16 rows with float32 scales');
    if (end > this.n || start < 0 || start > end) throw new RangeError(`copyHalfRows: rows ${start} .. ${end} of ${this.n}`);
    if (bits.length < (end - start) * dim || scales.length < end - start) throw new RangeError('copyHalfRows: out is too short');
    for (let i = start; i < end; ) {
      const c = Math.floor(i / per);
      const r0 = i - c * per;
      const r1 = Math.min(per, end - c * per);
      const chunk = this.halfChunks[c];
      const sc = this.scales[c];
      if (chunk && sc) {
        bits.set(chunk.subarray(r0 * dim, r1 * dim), (i - start) * dim);
        scales.set(sc.subarray(r0, r1), i - start);
      } else {
        bits.fill(0, (i - start) * dim, (i - start + r1 - r0) * dim);
        scales.fill(0, i - start, i - start + r1 - r0);
      }
      i = c * per + r1;
    }
  }

  /** Rows per block of {@link block}. */
  static get blockRows(): number {
    return EmbeddingRows.CHUNK;
  }

  /**
   * Rows start .. end - 1 as float32 into `out` (at least (end - start) x dim), row-major; rows without an
   * embedding are zeros. Returns `out`.
   */
  copyRows(start: number, end: number, out: Float32Array): Float32Array {
    if (end > this.n || start < 0 || start > end) throw new RangeError(`copyRows: rows ${start} .. ${end} of ${this.n}`);
    if (out.length < (end - start) * this.dim) throw new RangeError('copyRows: out is too short');
    copyStoredRows(this.stored, start, end, out);
    return out;
  }

  /** The storage as plain data (views, valid until the next {@link set}); see storedRows.ts. */
  get stored(): StoredRows {
    const half = this.mode === 'half';
    return { dim: this.dim, chunkRows: EmbeddingRows.CHUNK, half, values: half ? this.halfChunks : this.chunks, scales: half ? this.scales : [] };
  }

  /**
   * Block b: rows b * blockRows .. (b + 1) * blockRows - 1 (fewer for the last), blockRows x dim row-major, rows
   * without an embedding zeros; undefined when no row of the block has one. A view of the float32 storage, or, in
   * float16 mode, a decoded copy (the last one is kept: reading a block row by row decodes it once). For bulk reads
   * prefer {@link copyRows}.
   */
  block(b: number): Float32Array | undefined {
    if (this.mode !== 'half') return this.chunks[b];
    if (!this.halfChunks[b]) return undefined;
    if (this.cached?.b !== b) {
      const rows = new Float32Array(EmbeddingRows.CHUNK * this.dim);
      this.decode(b, 0, EmbeddingRows.CHUNK, rows, 0);
      this.cached = { b, rows };
    }
    return this.cached.rows;
  }

  /** All rows packed (n x dim; rows without an embedding are zeros). */
  packed(): Float32Array {
    return this.copyRows(0, this.n, new Float32Array(this.n * this.dim));
  }
}

export interface RunDuplicatesArgs {
  root: string;
  samples: DuplicateSample[];
  embeddings: EmbeddingRows;
  /** The pixel hashes the image phase computed or found in the cache; the missing ones are completed here. */
  pixelHashes: PixelHashRows;
  /** Decodes the images whose hashes are missing (the model's, so that every hash of a run is of the same pixels). */
  preprocessor: ImagePreprocessor;
  thresholds?: Partial<DuplicateThresholds>;
  signal?: AbortSignal;
}

/** A sample's image for pixelHashesOf: its folder given, its path joined only when read. */
class SampleImage implements PixelHashSource {
  readonly contentHash?: Buffer;
  constructor(
    private readonly root: string,
    private readonly rel: string,
    readonly folder: string,
    hash: string | undefined,
  ) {
    if (hash) this.contentHash = Buffer.from(hash, 'hex');
  }

  get file(): string {
    return path.join(this.root, this.rel);
  }
}

/**
 * The evaluation's duplicate phase: the pixel hashes not known from the image phase (imported embeddings: read and
 * decoded here, cached by content hash), then {@link findDuplicatesAsync}: the leakage figures wait for the metrics
 * (a streamed judgement finds the duplicates before its first pass, so that the kNN index's memory and the passes'
 * never add up).
 */
export async function duplicatesOfRun(a: RunDuplicatesArgs): Promise<FoundDuplicates> {
  // Each row's source made when it is reached (not a million objects and paths held at once); its folder joined once
  // per folder, its file only when read (a million imported embeddings whose images are elsewhere read none).
  const folders = new Map<string, string>();
  const sourceOf = (i: number): PixelHashSource | null => {
    const s = a.samples[i] as DuplicateSample;
    if (s.error || !a.embeddings.has[i]) return null;
    const rel = s.path.slice(0, Math.max(0, s.path.lastIndexOf('/')));
    let folder = folders.get(rel);
    if (folder === undefined) folders.set(rel, (folder = path.join(a.root, rel)));
    return new SampleImage(a.root, s.path, folder, s.contentHash);
  };
  const { hashes, ok } = await pixelHashesOf(sourceOf, a.pixelHashes, a.preprocessor, { signal: a.signal });
  memMark('duplicates: pixel hashes done');
  const dim = a.embeddings.dim;
  if (dim === 0) return () => ({ groups: [], leakage: [], outliers: [], warnings: [] });
  return findDuplicatesAsync(
    {
      samples: a.samples,
      embeddings: a.embeddings,
      dim,
      hasEmbedding: a.embeddings.has,
      pixelHashes: hashes,
      hasPixelHash: ok,
    },
    a.thresholds,
  );
}
