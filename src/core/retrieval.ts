/**
 * One-vs-rest average precision of every class, equal to scikit-learn's `average_precision_score` (1.2+ semantics:
 * every distinct score is a threshold, a sample is retrieved when its score >= threshold, tied scores enter
 * together); null for a class without positives (scikit-learn leaves it undefined). The curve the report panel draws
 * is prCurve.ts; the plain sort-based reference versions the tests compare both with are in test/unit/referenceRetrieval.ts.
 *
 * {@link averagePrecisionByClass} computes AP for every class of an N x K matrix without sorting each column:
 * per class it sorts only the positives' distinct scores u_1 > u_2 > ... and counts, in one pass over the column,
 * how many samples score >= each u_t. Scores are compared as float32 bit patterns read as int32 (for non-negative
 * floats integer order is value order). A sample's slot (how many u are above it) is its bucket's table entry
 * (giving how many u lie in higher buckets) plus three branch-free comparisons with the next distinct scores: the
 * scores after the bucket's own lie in lower buckets and never count. Each class's table (256 to 8K entries, at
 * least 8 per distinct score; at most 32 KB) spans its own lowest to highest positive, `(pattern >>> shift) - base`
 * with the finest shift that fits (never coarser than the pattern's top 13 bits), clamped to one entry for "below
 * every positive" and one for "above the highest": positives crowded into a narrow range (near-uniform softmax rows
 * of a weak model) still spread over many buckets. The rare sample whose bucket holds more than three distinct scores takes a branch-free binary
 * search. Classes go in blocks of up to 256: rows are copied 8 at a time into an 8 MB tile of 8192 rows, two
 * adjacent columns per 64-bit move when K is even, so the row-major matrix is read in 1 KB runs, once overall; the
 * samples, tables and histograms of a block share one Int32Array, which keeps V8's per-access checks to one per
 * iteration. Blocks are independent units that helper threads share (parallel.ts). The positives' scores come
 * from one value per row read beforehand (or from computeMetrics' row pass).
 * A class with many distinct positive scores (more than 1/32 of at least 65536 samples: only with few classes)
 * would crowd the table; its column is radix-sorted instead and merged with the positives.
 * Exact, ties included: AP = sum_t (tp_t/P - tp_{t-1}/P) * tp_t / (tp_t + fp_t).
 */
import { defineJob, sharedFloat64, sharedInt32, threadCount, toSharedInt32 } from './parallel';
import { groupRowsByLabel, ProbabilityMatrix, type SharedProbabilityMatrix } from './probabilities';

/**
 * Each class's table has at most TABLE_BUCKETS buckets, keyed by `pattern >>> shift` minus a base, both chosen from
 * the class's own positives: the smallest shift (0 .. MAX_SHIFT) whose buckets span the lowest to the highest
 * positive in at most TABLE_BUCKETS (see {@link bucketing}). MAX_SHIFT = 18 always fits (2^13 buckets cover every
 * non-negative float32 pattern), so a table is never coarser than the top 13 bits of the pattern.
 */
const TABLE_BUCKETS = 1 << 13;
const MAX_SHIFT = 18;
/**
 * A class with few distinct positive scores gets a smaller table (at least BUCKETS_PER_SCORE buckets per score, a
 * power of two from MIN_TABLE_BUCKETS): fewer cache lines to visit per column, less memory.
 */
const BUCKETS_PER_SCORE = 4;
const MIN_TABLE_BUCKETS = 256;
/** Ints before a table's first bucket: shift, base, bucket count, the "below every positive" entry. */
const TABLE_HEAD = 4;
/**
 * Thresholds compared branch-free with each sample: a sample whose bucket holds at most this many distinct positive
 * scores gets its slot from its table entry plus this many comparisons; larger buckets take a binary search.
 */
const COMPARES = 3;
/** Classes gathered per pass over the rows: 256 columns = 1 KB of each row, so rows are read in long runs. */
const CLASS_BLOCK = 256;
/** Narrowest block made to give every thread a block (narrow blocks read rows in short runs). */
const MIN_SPLIT_BLOCK = 64;
/** Rows per gathered tile (tile = CLASS_BLOCK x TILE_ROWS floats = 8 MB), padded off a power of two. */
const TILE_ROWS = 8192;
const TILE_PAD = 8;
/**
 * A class whose distinct positive scores exceed 1/DENSE_RATIO of the samples would crowd the bucket table (a binary
 * search per sample, a large histogram): its column is radix-sorted instead.
 */
const DENSE_RATIO = 32;
/** Below this many samples the table is cheap whatever the density: no sorting. */
const DENSE_MIN_SAMPLES = 1 << 16;
const RADIX_BITS = 11;

/** A class's positives: distinct scores, descending, and how many positives hold each. */
interface Positives {
  /** Number of positives. */
  m: number;
  /** The distinct scores as float32 bit patterns (non-negative floats: integer order is value order). */
  distinct: Int32Array;
  posCount: Int32Array;
}

/**
 * Average precision of every class, one-vs-rest: AP[c] = average_precision_score(labels == c, probs[:, c]) over the
 * rows in `indices` (default: all rows), or null when class c has no positive among them. Labels must be valid
 * class indices (the caller validates). Classes are computed in blocks, on helper threads too for large inputs
 * (parallel.ts). Extra memory per thread: about 16 MB for a block of 256 classes (its 8 MB tile and at most 32 KB per
 * class of bucket tables); a dense class (few classes, many positives) needs 8 bytes per sample while sorted.
 */
export function averagePrecisionByClass(
  probs: ProbabilityMatrix,
  labels: ArrayLike<number>,
  indices?: ArrayLike<number>,
): (number | null)[] {
  const job = averagePrecisionJob(probs, labels, indices);
  job.run();
  return job.result();
}

/** The data of an AP job: what a thread needs to compute the AP of some blocks of classes. */
interface AveragePrecisionData {
  matrix: SharedProbabilityMatrix;
  indices: Int32Array | null;
  /** Rows grouped by label (groupRowsByLabel over `indices`). */
  start: Int32Array;
  rows: Int32Array;
  /** self[i] = float32 pattern of probs[i][labels[i]], for the evaluated rows i. */
  self: Int32Array;
  /** Classes per unit (even). */
  blockWidth: number;
  /** AP per class, NaN when the class has no positive. */
  ap: Float64Array;
}

/** Classes per block for `threads` threads: at most CLASS_BLOCK, and enough blocks to keep the threads busy. */
function blockWidthFor(k: number, threads: number): number {
  let blocks = Math.ceil(k / CLASS_BLOCK);
  if (blocks < threads) blocks = Math.max(blocks, Math.min(threads, Math.floor(k / MIN_SPLIT_BLOCK)));
  return 2 * Math.ceil(k / blocks / 2);
}

/**
 * Prepares the AP of every class as a job of independent units (blocks of classes) over shared memory: `run()` runs
 * them (on helper threads too), then `result()` reads the answers. `self` (see {@link selfScorePatterns}) is
 * computed when not given. Exported for computeMetrics, whose per-row pass yields `self` on the way.
 */
export function averagePrecisionJob(
  probs: ProbabilityMatrix,
  labels: ArrayLike<number>,
  indices?: ArrayLike<number>,
  self?: Int32Array,
): { run: () => void; result: () => (number | null)[] } {
  const k = probs.numClasses;
  const n = indices ? indices.length : probs.length;
  const { start, rows } = groupRowsByLabel(labels, k, indices);
  const blockWidth = blockWidthFor(k, threadCount());
  const data: AveragePrecisionData = {
    matrix: probs.shared(),
    indices: indices ? toSharedInt32(indices) : null,
    start: toSharedInt32(start),
    rows: toSharedInt32(rows),
    self: self ?? selfScorePatterns(probs, labels, indices),
    blockWidth,
    ap: sharedFloat64(k).fill(NaN),
  };
  return {
    run: () => runAveragePrecision(data, Math.ceil(k / blockWidth), n * k, probs.inSharedMemory),
    result: () => Array.from(data.ap, (x) => (Number.isNaN(x) ? null : x)),
  };
}

const contexts = new WeakMap<AveragePrecisionData, { probs: ProbabilityMatrix; source: TileSource }>();

/** Computes one unit (block of classes) of an AP job. */
function averagePrecisionUnit(data: AveragePrecisionData, unit: number): void {
  let ctx = contexts.get(data);
  if (!ctx) {
    const probs = ProbabilityMatrix.fromShared(data.matrix);
    ctx = { probs, source: new TileSource(probs, data.indices ?? undefined) };
    contexts.set(data, ctx);
  }
  const { probs, source } = ctx;
  const { start, rows, indices, self, ap } = data;
  const n = source.n;
  const c0 = unit * data.blockWidth;
  const c1 = Math.min(probs.numClasses, c0 + data.blockWidth);
  const block: (Positives | null)[] = [];
  for (let c = c0; c < c1; c++) {
    const p = start[c + 1] > start[c] ? classPositives(self, rows.subarray(start[c], start[c + 1])) : null;
    if (p && n >= DENSE_MIN_SAMPLES && p.distinct.length * DENSE_RATIO > n) {
      ap[c] = sortedColumnAveragePrecision(probs, indices ?? undefined, c, p);
      block.push(null);
    } else block.push(p);
  }
  if (block.some((p) => p !== null)) {
    blockAveragePrecision(source, c0, block).forEach((x, b) => {
      if (x !== null) ap[c0 + b] = x;
    });
  }
}

const runAveragePrecision = defineJob('averagePrecision', averagePrecisionUnit);

/** Rows per unit of the self-score job. */
const SELF_ROWS_PER_UNIT = 1 << 16;

interface SelfScoreData {
  matrix: SharedProbabilityMatrix;
  labels: Int32Array;
  indices: Int32Array | null;
  self: Int32Array;
}

const runSelfScores = defineJob<SelfScoreData>('selfScores', (data, unit) => {
  const probs = ProbabilityMatrix.fromShared(data.matrix);
  const bits = probs.storage().map((c) => new Int32Array(c.buffer, c.byteOffset, c.length));
  const { labels, indices, self } = data;
  const n = indices ? indices.length : probs.length;
  const rowsPerChunk = probs.rowsPerChunk;
  const k = probs.numClasses;
  for (let s = unit * SELF_ROWS_PER_UNIT, end = Math.min(n, s + SELF_ROWS_PER_UNIT); s < end; s++) {
    const i = indices ? indices[s] : s;
    const chunk = Math.floor(i / rowsPerChunk);
    self[i] = bits[chunk][(i - chunk * rowsPerChunk) * k + labels[i]];
  }
});

/**
 * self[i] = the float32 bit pattern of probs[i][labels[i]] for the rows in `indices` (default all; other entries 0),
 * in shared memory. One value per row: on helper threads too, since the reads wait on memory.
 */
export function selfScorePatterns(probs: ProbabilityMatrix, labels: ArrayLike<number>, indices?: ArrayLike<number>): Int32Array {
  const n = indices ? indices.length : probs.length;
  const data: SelfScoreData = {
    matrix: probs.shared(),
    labels: toSharedInt32(labels),
    indices: indices ? toSharedInt32(indices) : null,
    self: sharedInt32(probs.length),
  };
  runSelfScores(data, Math.ceil(n / SELF_ROWS_PER_UNIT), 64 * n, probs.inSharedMemory);
  return data.self;
}

/**
 * The rows to evaluate, read as 32-bit patterns (and, when the row length is even, as 64-bit pairs of columns).
 * Rows are `indices` (default: all rows) in order; the gathers copy a block of columns of `len` rows into a tile.
 */
class TileSource {
  readonly n: number;
  readonly k: number;
  private readonly rowsPerChunk: number;
  private readonly bits: Int32Array[];
  /**
   * Float64 views of the chunks (two adjacent columns per element) when k is even, else empty. Copying through them
   * is exact: the high half is a finite non-negative float32 pattern (below 0x7f800000), so the double is never a
   * NaN that could be canonicalized.
   */
  private readonly pairs: Float64Array[];
  /** Per row of the current 8-row group: chunk index and offset (in elements of the view being read). */
  private readonly chunkIdx = new Int32Array(8);
  private readonly offset = new Int32Array(8);

  constructor(
    probs: ProbabilityMatrix,
    private readonly indices: ArrayLike<number> | undefined,
  ) {
    this.n = indices ? indices.length : probs.length;
    this.k = probs.numClasses;
    this.rowsPerChunk = probs.rowsPerChunk;
    const chunks = probs.storage();
    this.bits = chunks.map((c) => new Int32Array(c.buffer, c.byteOffset, c.length));
    this.pairs = this.k % 2 === 0 ? chunks.map((c) => new Float64Array(c.buffer, c.byteOffset, c.length >> 1)) : [];
  }

  /**
   * Copies columns c0 .. c0+width of rows s0 .. s0+len into `tile` (an Int32Array holding float32 patterns): column
   * c0 + b, row r goes to tile[2 * ((b >> 1) * stride + r) + (b & 1)], so each pair of columns is interleaved and
   * a class is read with a step of 2. Rows are copied 8 at a time so that each tile cache line is written whole.
   */
  gather(s0: number, len: number, c0: number, width: number, tile: Int32Array, stride: number): void {
    if (this.pairs.length > 0 && c0 % 2 === 0 && width % 2 === 0) this.gatherPairs(s0, len, c0 >> 1, width >> 1, tile, stride);
    else this.gatherSingles(s0, len, c0, width, tile, stride);
  }

  /** Fills chunkIdx/offset for rows s0 + r .. s0 + r + count; true when they all lie in one chunk. */
  private locate(s: number, count: number, unit: number): boolean {
    const { indices, rowsPerChunk, chunkIdx, offset } = this;
    const rowLength = this.k / unit;
    for (let q = 0; q < count; q++) {
      const i = indices ? indices[s + q] : s + q;
      const ci = Math.floor(i / rowsPerChunk);
      chunkIdx[q] = ci;
      offset[q] = (i - ci * rowsPerChunk) * rowLength;
    }
    for (let q = 1; q < count; q++) if (chunkIdx[q] !== chunkIdx[0]) return false;
    return true;
  }

  private gatherPairs(s0: number, len: number, p0: number, pairs: number, tile: Int32Array, stride: number): void {
    const out = new Float64Array(tile.buffer, tile.byteOffset, tile.length >> 1);
    const { offset, chunkIdx } = this;
    let r = 0;
    for (; r + 8 <= len; r += 8) {
      if (this.locate(s0 + r, 8, 2)) {
        const d = this.pairs[chunkIdx[0]];
        const o0 = offset[0] + p0, o1 = offset[1] + p0, o2 = offset[2] + p0, o3 = offset[3] + p0;
        const o4 = offset[4] + p0, o5 = offset[5] + p0, o6 = offset[6] + p0, o7 = offset[7] + p0;
        for (let p = 0, w = r; p < pairs; p++, w += stride) {
          out[w] = d[o0 + p];
          out[w + 1] = d[o1 + p];
          out[w + 2] = d[o2 + p];
          out[w + 3] = d[o3 + p];
          out[w + 4] = d[o4 + p];
          out[w + 5] = d[o5 + p];
          out[w + 6] = d[o6 + p];
          out[w + 7] = d[o7 + p];
        }
      } else {
        for (let q = 0; q < 8; q++) {
          const d = this.pairs[chunkIdx[q]];
          const o = offset[q] + p0;
          for (let p = 0; p < pairs; p++) out[p * stride + r + q] = d[o + p];
        }
      }
    }
    for (; r < len; r++) {
      this.locate(s0 + r, 1, 2);
      const d = this.pairs[chunkIdx[0]];
      const o = offset[0] + p0;
      for (let p = 0; p < pairs; p++) out[p * stride + r] = d[o + p];
    }
  }

  private gatherSingles(s0: number, len: number, c0: number, width: number, tile: Int32Array, stride: number): void {
    const { offset, chunkIdx } = this;
    for (let r = 0; r < len; r++) {
      this.locate(s0 + r, 1, 1);
      const d = this.bits[chunkIdx[0]];
      const o = offset[0] + c0;
      for (let b = 0; b < width; b++) tile[2 * ((b >> 1) * stride + r) + (b & 1)] = d[o + b];
    }
  }
}

/**
 * AP of the sparse classes c0 .. c0 + block.length (null entries are skipped) in one pass over the rows.
 *
 * Per class, one Int32Array `w` holds: the distinct positive scores as float32 patterns, descending (monotone in
 * value for non-negative floats), followed by COMPARES zero patterns (never above a sample); a table (see
 * {@link bucketing}) headed by its shift, base and bucket count, then an entry per bucket, lo = the index in `w` of
 * the first distinct score in that bucket or below (stored as ~lo when the bucket holds more than COMPARES distinct
 * scores), preceded by an entry for "below the lowest positive" (= end) and followed by one for "above the highest"
 * (= the first score's index: none of the scores exceeds such a sample);
 * and a histogram mirroring the scores: hist[slot] = samples with exactly `slot` distinct scores above them. A
 * sample's slot is lo + (how many of w[lo], w[lo+1], w[lo+2] exceed it): the scores after the bucket's own lie in
 * lower buckets (or are the zero padding), so they never count. One array for everything keeps V8's per-access
 * checks to one per iteration.
 */
function blockAveragePrecision(source: TileSource, c0: number, block: (Positives | null)[]): (number | null)[] {
  const counter = new BlockCounter(block, Math.min(source.n, TILE_ROWS));
  counter.count(source, c0);
  return counter.finish();
}

/** The counting state of one block of classes (see {@link blockAveragePrecision}): tile, tables, scores, histograms. */
class BlockCounter {
  private readonly w: Int32Array;
  private readonly tableAt: Int32Array;
  private readonly scoresAt: Int32Array;
  private readonly histOffset: number;
  private readonly stride: number;

  constructor(
    private readonly block: (Positives | null)[],
    private readonly tileRows: number,
    shared = false,
  ) {
    const width = block.length;
    const stride = tileRows + TILE_PAD;
    const tileInts = 2 * ((width + 1) >> 1) * stride;
    const tableAt = new Int32Array(width);
    const scoresAt = new Int32Array(width);
    const shapes = block.map((p) => (p ? bucketing(p.distinct) : null));
    let size = tileInts;
    shapes.forEach((shape, b) => {
      if (shape) {
        tableAt[b] = size + TABLE_HEAD;
        size += TABLE_HEAD + shape.buckets + 1;
      }
    });
    const firstScore = size;
    block.forEach((p, b) => {
      if (p) {
        scoresAt[b] = size;
        size += p.distinct.length + COMPARES;
      }
    });
    const histOffset = size - firstScore;
    const w = shared ? sharedInt32(size + histOffset) : new Int32Array(size + histOffset);

    const perBucket = new Int32Array(TABLE_BUCKETS);
    block.forEach((p, b) => {
      const shape = shapes[b];
      if (!p || !shape) return;
      const { shift, base, buckets } = shape;
      const scores = p.distinct;
      const table = tableAt[b];
      w.set(scores, scoresAt[b]);
      perBucket.fill(0, 0, buckets);
      for (let t = 0; t < scores.length; t++) perBucket[(scores[t] >>> shift) - base]++;
      w[table - 4] = shift;
      w[table - 3] = base;
      w[table - 2] = buckets;
      w[table + buckets] = scoresAt[b]; // above the highest positive: every score is below
      let lo = scoresAt[b];
      for (let q = buckets - 1; q >= 0; q--) {
        w[table + q] = perBucket[q] > COMPARES ? ~lo : lo;
        lo += perBucket[q];
      }
      w[table - 1] = lo; // below the lowest positive: the zero padding, after every score
    });
    this.w = w;
    this.tableAt = tableAt;
    this.scoresAt = scoresAt;
    this.histOffset = histOffset;
    this.stride = stride;
  }

  /** Adds every row of `source` (columns c0 .. c0 + width) to the histograms. */
  count(source: TileSource, c0: number): void {
    countRows(this.state(c0), source);
  }

  /**
   * What {@link countRows} needs, structured-cloneable: in shared memory (a helper thread then counts into this
   * counter's own histograms) when the counter was made `shared`.
   */
  state(c0: number): CounterState {
    return { w: this.w, present: Uint8Array.from(this.block, (p) => (p ? 1 : 0)), tableAt: this.tableAt, histOffset: this.histOffset, stride: this.stride, tileRows: this.tileRows, c0 };
  }

  finish(): (number | null)[] {
    const { w, scoresAt, histOffset } = this;
    return this.block.map((p, b) => (p ? finishAveragePrecision(p, (t) => w[scoresAt[b] + histOffset + t]) : null));
  }
}

/** A block counter's counting state (see {@link BlockCounter.state}): tile, tables and histograms all live in `w`. */
interface CounterState {
  w: Int32Array;
  /** Per class of the block: 1 when it has positives (a table and a histogram). */
  present: Uint8Array;
  tableAt: Int32Array;
  histOffset: number;
  stride: number;
  tileRows: number;
  /** First class of the block. */
  c0: number;
}

/** Adds every row of `source` (columns c0 .. c0 + width of the counter's block) to the counter's histograms. */
function countRows(state: CounterState, source: TileSource): void {
  const { w, present, stride, tableAt, histOffset, tileRows, c0 } = state;
  const width = present.length;
  for (let s0 = 0; s0 < source.n; s0 += tileRows) {
    const len = Math.min(tileRows, source.n - s0);
    source.gather(s0, len, c0, width, w, stride);
    for (let b = 0; b < width; b++) {
      if (!present[b]) continue;
      const from = 2 * ((b >> 1) * stride) + (b & 1);
      countColumn(w, from, from + 2 * len, tableAt[b], histOffset);
    }
  }
}

/**
 * The counting of one block of rows into a {@link StreamingAveragePrecision}: one unit per block of classes (see
 * {@link streamedCountUnit}), each writing only its own counter's memory, so the units may run on any threads.
 */
export interface StreamedCount {
  matrix: SharedProbabilityMatrix;
  /** Rows of the block taking part (block-local), null: all. */
  local: Int32Array | null;
  counters: CounterState[];
}

const countSources = new WeakMap<StreamedCount, TileSource>();

/** Counts unit `unit` (one block of classes) of a {@link StreamedCount}. */
export function streamedCountUnit(data: StreamedCount, unit: number): void {
  let source = countSources.get(data);
  if (!source) {
    source = new TileSource(ProbabilityMatrix.fromShared(data.matrix), data.local ?? undefined);
    countSources.set(data, source);
  }
  countRows(data.counters[unit] as CounterState, source);
}

/**
 * Average precision of every class over rows that arrive in blocks (the streamed judgement, streamedJudgement.ts:
 * the probabilities are recomputed block by block, never held whole). The positives' scores must be known first
 * (`self`, from an earlier pass); each {@link add} counts a block's rows into the same histograms the one-pass
 * computation fills, so the APs are equal to {@link averagePrecisionByClass}'s over the whole matrix, bit for bit.
 * Memory: at most 32 KB per class with positives (less when its positives span a narrow range), plus a tile of the
 * block's rows per 256 classes.
 */
export class StreamingAveragePrecision {
  private readonly counters: { c0: number; counter: BlockCounter }[] = [];
  private readonly k: number;
  /** Subset position of the next row to come (rows arrive in increasing order). */
  private next = 0;

  /**
   * @param labels labels of all rows (row numbers as in {@link add}); `self[i]` the pattern of row i's label score.
   * @param indices the rows taking part (increasing), default all.
   * @param blockRows the largest block {@link add} will be given.
   */
  constructor(
    k: number,
    labels: ArrayLike<number>,
    self: Int32Array,
    private readonly indices: ArrayLike<number> | undefined,
    blockRows: number,
    shared = false,
  ) {
    this.k = k;
    const { start, rows } = groupRowsByLabel(labels, k, indices);
    for (let c0 = 0; c0 < k; c0 += CLASS_BLOCK) {
      const block: (Positives | null)[] = [];
      for (let c = c0; c < Math.min(k, c0 + CLASS_BLOCK); c++) block.push(start[c + 1] > start[c] ? classPositives(self, rows.subarray(start[c], start[c + 1])) : null);
      if (block.some((p) => p !== null)) this.counters.push({ c0, counter: new BlockCounter(block, Math.min(blockRows, TILE_ROWS), shared) });
    }
  }

  /** Adds rows first .. first + block.length - 1 (`block` holds exactly those rows). */
  add(block: ProbabilityMatrix, first: number): void {
    const count = this.counting(block.shared(), first);
    if (count) for (let u = 0; u < count.counters.length; u++) streamedCountUnit(count, u);
  }

  /**
   * The counting of rows first .. first + block.length - 1 as units (one per block of classes: run each once with
   * {@link streamedCountUnit}, on any thread when this accumulator was made `shared` and `block` is in shared
   * memory), or null when none of those rows takes part. Blocks must come in increasing row order.
   */
  counting(block: SharedProbabilityMatrix, first: number): StreamedCount | null {
    let local: Int32Array | null = null;
    const { indices } = this;
    if (indices) {
      const from = this.next;
      while (this.next < indices.length && indices[this.next] < first + block.length) this.next++;
      if (this.next === from) return null;
      local = sharedInt32(this.next - from);
      for (let t = from; t < this.next; t++) local[t - from] = indices[t] - first;
    }
    return { matrix: block, local, counters: this.counters.map(({ c0, counter }) => counter.state(c0)) };
  }

  result(): (number | null)[] {
    const ap: (number | null)[] = new Array(this.k).fill(null);
    for (const { c0, counter } of this.counters) counter.finish().forEach((x, b) => (ap[c0 + b] = x));
    return ap;
  }
}

/**
 * A class's table shape: buckets are `(pattern >>> shift) - base` for 0 .. buckets - 1, with shift the smallest (at
 * most MAX_SHIFT) that spans the class's lowest to highest positive pattern in at most `limit` buckets (a power of two,
 * MIN_TABLE_BUCKETS .. TABLE_BUCKETS, at least BUCKETS_PER_SCORE per distinct score; MAX_SHIFT may leave more). Finer
 * buckets than the fixed top 13 bits spread positives that crowd a narrow range (near-uniform softmax rows, confident
 * scores near 1), so fewer samples meet a bucket with more than COMPARES distinct scores. Exported for the tests.
 */
export function bucketing(distinct: Int32Array): { shift: number; base: number; buckets: number } {
  const hi = distinct[0];
  const lo = distinct[distinct.length - 1];
  let limit = MIN_TABLE_BUCKETS;
  while (limit < TABLE_BUCKETS && limit < BUCKETS_PER_SCORE * distinct.length) limit *= 2;
  let shift = 0;
  while (shift < MAX_SHIFT && (hi >>> shift) - (lo >>> shift) >= limit) shift++;
  const base = lo >>> shift;
  return { shift, base, buckets: (hi >>> shift) - base + 1 };
}

/**
 * Adds the samples w[from], w[from + 2], ... (below `to`) to a class's histogram (see blockAveragePrecision),
 * four samples per iteration. A sample's table entry is its bucket's, clamped branch-free to the entry before the
 * first bucket (below the lowest positive: slot = end, the zero padding) and the one after the last (above the
 * highest: slot 0).
 */
function countColumn(w: Int32Array, from_: number, to_: number, table_: number, histOffset_: number): void {
  const to = to_ | 0;
  const table = table_ | 0;
  const hd = histOffset_ | 0;
  const shift = w[table - 4] | 0;
  const base = w[table - 3] | 0;
  const top = w[table - 2] | 0;
  let s = from_ | 0;
  for (; s + 6 < to; s += 8) {
    const v0 = w[s];
    const v1 = w[s + 2];
    const v2 = w[s + 4];
    const v3 = w[s + 6];
    // x = (v >>> shift) - base, then x | (x >> 31) lifts every negative to -1 and top + min(x - top, 0) caps at top.
    let x0 = ((v0 >>> shift) - base) | 0;
    let x1 = ((v1 >>> shift) - base) | 0;
    let x2 = ((v2 >>> shift) - base) | 0;
    let x3 = ((v3 >>> shift) - base) | 0;
    x0 = (x0 | (x0 >> 31)) - top;
    x1 = (x1 | (x1 >> 31)) - top;
    x2 = (x2 | (x2 >> 31)) - top;
    x3 = (x3 | (x3 >> 31)) - top;
    x0 = table + top + (x0 & (x0 >> 31));
    x1 = table + top + (x1 & (x1 >> 31));
    x2 = table + top + (x2 & (x2 >> 31));
    x3 = table + top + (x3 & (x3 >> 31));
    let e0 = w[x0];
    let e1 = w[x1];
    let e2 = w[x2];
    let e3 = w[x3];
    if ((e0 | e1 | e2 | e3) < 0) {
      // Rare: some bucket holds more than COMPARES distinct scores.
      e0 = e0 < 0 ? searchBucket(w, x0, v0) : e0 + ((v0 - w[e0]) >>> 31) + ((v0 - w[e0 + 1]) >>> 31) + ((v0 - w[e0 + 2]) >>> 31);
      e1 = e1 < 0 ? searchBucket(w, x1, v1) : e1 + ((v1 - w[e1]) >>> 31) + ((v1 - w[e1 + 1]) >>> 31) + ((v1 - w[e1 + 2]) >>> 31);
      e2 = e2 < 0 ? searchBucket(w, x2, v2) : e2 + ((v2 - w[e2]) >>> 31) + ((v2 - w[e2 + 1]) >>> 31) + ((v2 - w[e2 + 2]) >>> 31);
      e3 = e3 < 0 ? searchBucket(w, x3, v3) : e3 + ((v3 - w[e3]) >>> 31) + ((v3 - w[e3 + 1]) >>> 31) + ((v3 - w[e3 + 2]) >>> 31);
    } else {
      // (v - score) >>> 31 is 1 exactly when score > v: patterns of non-negative floats are below 2^31.
      e0 = e0 + ((v0 - w[e0]) >>> 31) + ((v0 - w[e0 + 1]) >>> 31) + ((v0 - w[e0 + 2]) >>> 31);
      e1 = e1 + ((v1 - w[e1]) >>> 31) + ((v1 - w[e1 + 1]) >>> 31) + ((v1 - w[e1 + 2]) >>> 31);
      e2 = e2 + ((v2 - w[e2]) >>> 31) + ((v2 - w[e2 + 1]) >>> 31) + ((v2 - w[e2 + 2]) >>> 31);
      e3 = e3 + ((v3 - w[e3]) >>> 31) + ((v3 - w[e3 + 1]) >>> 31) + ((v3 - w[e3 + 2]) >>> 31);
    }
    w[e0 + hd]++;
    w[e1 + hd]++;
    w[e2 + hd]++;
    w[e3 + hd]++;
  }
  for (; s < to; s += 2) w[slotOf(w, table, w[s]) + hd]++;
}

/** Slot of pattern v (see blockAveragePrecision): branch-free comparisons, or a search in a crowded bucket. */
function slotOf(w: Int32Array, table: number, v: number): number {
  const top = w[table - 2];
  const x = Math.min(Math.max(((v >>> w[table - 4]) - w[table - 3]) | 0, -1), top);
  const e = w[table + x];
  if (e >= 0) return e + ((v - w[e]) >>> 31) + ((v - w[e + 1]) >>> 31) + ((v - w[e + 2]) >>> 31);
  return searchBucket(w, table + x, v);
}

/**
 * Slot of pattern v whose bucket (table entry at w[entry], the next lower bucket's at w[entry - 1]) holds more than
 * COMPARES distinct scores: a branch-free binary search within the bucket (its scores descend, so those above v
 * come first; the answer stays within [lo, lo + n]).
 */
function searchBucket(w: Int32Array, entry: number, v: number): number {
  let lo = ~w[entry];
  const below = w[entry - 1];
  let n = (below < 0 ? ~below : below) - lo;
  while (n > 1) {
    const half = n >>> 1;
    lo += half & ((v - w[lo + half]) >> 31);
    n -= half;
  }
  return lo + ((v - w[lo]) >>> 31);
}

/** The distinct scores of a class among its positive rows (self scores, as patterns), descending, with multiplicities. */
function classPositives(self: Int32Array, rows: Int32Array): Positives {
  const m = rows.length;
  let pos: Int32Array = new Int32Array(m);
  for (let t = 0; t < m; t++) pos[t] = self[rows[t]];
  if (m < DENSE_MIN_SAMPLES) pos.sort(); // ascending
  else pos = new Int32Array(radixSort(new Uint32Array(pos.buffer)).buffer);
  const distinct = new Int32Array(m);
  const posCount = new Int32Array(m);
  let d = 0;
  for (let t = m - 1; t >= 0; t--) {
    if (d > 0 && distinct[d - 1] === pos[t]) posCount[d - 1]++;
    else {
      distinct[d] = pos[t];
      posCount[d++] = 1;
    }
  }
  return { m, distinct: distinct.slice(0, d), posCount: posCount.slice(0, d) };
}

/**
 * AP of a dense class: its column's float32 bit patterns (monotone in value) are radix-sorted, then one merge with
 * the distinct positive scores counts the samples scoring >= each of them.
 */
function sortedColumnAveragePrecision(
  probs: ProbabilityMatrix,
  indices: ArrayLike<number> | undefined,
  c: number,
  positives: Positives,
): number {
  const n = indices ? indices.length : probs.length;
  const column = new Float32Array(n);
  for (let s = 0; s < n; s++) {
    const i = indices ? indices[s] : s;
    column[s] = probs.chunkOf(i)[probs.offsetOf(i) + c];
  }
  const sorted = radixSort(new Uint32Array(column.buffer)); // ascending
  const distinctBits = positives.distinct;
  let next = n; // sorted[next ..) = samples counted so far (>= the previous distinct score)
  return finishAveragePrecision(positives, (t) => {
    const before = next;
    while (next > 0 && sorted[next - 1] >= distinctBits[t]) next--;
    return before - next;
  });
}

/** Ascending LSD radix sort of 32-bit keys (3 passes of 11 bits); returns the sorted array (may reuse `keys`). */
function radixSort(keys: Uint32Array): Uint32Array {
  const mask = (1 << RADIX_BITS) - 1;
  const count = new Int32Array(1 << RADIX_BITS);
  let src: Uint32Array = keys;
  let dst: Uint32Array = new Uint32Array(keys.length);
  for (let shift = 0; shift < 32; shift += RADIX_BITS) {
    count.fill(0);
    for (let i = 0; i < src.length; i++) count[(src[i] >>> shift) & mask]++;
    let sum = 0;
    for (let b = 0; b <= mask; b++) {
      const c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (let i = 0; i < src.length; i++) {
      const x = src[i];
      dst[count[(x >>> shift) & mask]++] = x;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}

/**
 * AP = sum_t (tp_t/P - tp_{t-1}/P) * tp_t / retrieved_t over the distinct positive scores (descending), as sklearn
 * sums it; `newlyRetrieved(t)` = samples scoring >= distinct[t] but below distinct[t - 1], called in order.
 */
function finishAveragePrecision({ m, distinct, posCount }: Positives, newlyRetrieved: (t: number) => number): number {
  let ap = 0;
  let tp = 0;
  let retrieved = 0;
  for (let t = 0; t < distinct.length; t++) {
    const prevRecall = tp / m;
    tp += posCount[t];
    retrieved += newlyRetrieved(t);
    ap += (tp / m - prevRecall) * (tp / retrieved);
  }
  return ap;
}
