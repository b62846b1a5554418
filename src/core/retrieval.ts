/**
 * One-vs-rest retrieval metrics: precision/recall curves and average precision, equal to scikit-learn's
 * `precision_recall_curve` and `average_precision_score` (1.2+ semantics: every distinct score is a threshold,
 * a sample is retrieved when its score >= threshold, tied scores enter together).
 *
 * {@link averagePrecisionByClass} computes AP for every class of an N x K matrix without sorting each column:
 * per class it sorts only the positives' distinct scores u_1 > u_2 > ... and counts, in one pass over the column,
 * how many samples score >= each u_t. A sample's slot (how many u are above it) comes from an 8K-entry (32 KB) table
 * indexed by the top 13 bits of its float32 pattern (monotone in value for non-negative floats: the exponent and 5
 * mantissa bits); only samples that share a bucket with some u need a binary search. Columns are gathered 256
 * classes x 8K rows at a time into an 8 MB tile, so the row-major matrix is read in 1 KB runs, once overall.
 * A class with many distinct positive scores (more than 1/32 of at least 65536 samples: only with few classes)
 * would crowd the table; its column is radix-sorted instead and merged with the positives.
 * Exact, ties included: AP = sum_t (tp_t/P - tp_{t-1}/P) * tp_t / (tp_t + fp_t).
 */
import { ClipLensError } from './errors';
import { groupRowsByLabel, type ProbabilityMatrix } from './probabilities';

/** sklearn's precision_recall_curve output: thresholds ascending; precision/recall have one more entry (1, 0). */
export interface PrecisionRecallCurve {
  precision: number[];
  recall: number[];
  thresholds: number[];
}

/** Confusion counts and ratios when retrieving every sample with score >= threshold. */
export interface ThresholdPoint {
  threshold: number;
  tp: number;
  fp: number;
  fn: number;
  /** tp / (tp + fp); 0 when nothing is retrieved (sklearn precision_score's zero_division default). */
  precision: number;
  /** tp / (tp + fn); 0 when there are no positives. */
  recall: number;
  /** Harmonic mean of precision and recall; 0 when both are 0. */
  f1: number;
}

function checkPair(scores: ArrayLike<number>, positives: ArrayLike<unknown>): void {
  if (scores.length !== positives.length) {
    throw new ClipLensError('retrieval-length-mismatch', `${scores.length} scores but ${positives.length} positive flags`);
  }
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new ClipLensError('retrieval-bad-score', `score ${i} is ${scores[i]}, not a finite number`);
  }
}

/**
 * Precision/recall at every distinct score, like sklearn.metrics.precision_recall_curve(positives, scores):
 * thresholds ascending, precision[i]/recall[i] for score >= thresholds[i], then a final (precision 1, recall 0).
 * With no positives recall is 1 everywhere (sklearn warns and does the same). `positives[i]` is truthy for positives.
 */
export function precisionRecallCurve(scores: ArrayLike<number>, positives: ArrayLike<unknown>): PrecisionRecallCurve {
  checkPair(scores, positives);
  const n = scores.length;
  if (n === 0) throw new ClipLensError('retrieval-empty', 'precision/recall curve of 0 samples');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const tps: number[] = [];
  const fps: number[] = [];
  const thr: number[] = [];
  let tp = 0;
  for (let r = 0; r < n; r++) {
    const i = order[r];
    if (positives[i]) tp++;
    if (r === n - 1 || scores[order[r + 1]] !== scores[i]) {
      tps.push(tp);
      fps.push(r + 1 - tp);
      thr.push(scores[i]);
    }
  }
  const total = tps[tps.length - 1];
  const precision: number[] = [];
  const recall: number[] = [];
  for (let t = tps.length - 1; t >= 0; t--) {
    precision.push(tps[t] / (tps[t] + fps[t]));
    recall.push(total === 0 ? 1 : tps[t] / total);
  }
  precision.push(1);
  recall.push(0);
  return { precision, recall, thresholds: thr.reverse() };
}

/** sklearn average_precision_score(positives, scores); null when there is no positive. */
export function averagePrecision(scores: ArrayLike<number>, positives: ArrayLike<unknown>): number | null {
  checkPair(scores, positives);
  let any = false;
  for (let i = 0; i < positives.length && !any; i++) any = Boolean(positives[i]);
  if (!any) return null;
  const { precision, recall } = precisionRecallCurve(scores, positives);
  let ap = 0;
  for (let i = 0; i < recall.length - 1; i++) ap -= (recall[i + 1] - recall[i]) * precision[i];
  return ap;
}

/**
 * Counts when retrieving every sample with score >= threshold (one-vs-rest), with sklearn precision_score /
 * recall_score / f1_score zero-division defaults (0).
 */
export function precisionRecallAtThreshold(scores: ArrayLike<number>, positives: ArrayLike<unknown>, threshold: number): ThresholdPoint {
  checkPair(scores, positives);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const retrieved = scores[i] >= threshold;
    if (positives[i]) {
      if (retrieved) tp++;
      else fn++;
    } else if (retrieved) fp++;
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const denom = precision + recall;
  const f1 = denom === 0 ? 0 : (2 * precision * recall) / denom;
  return { threshold, tp, fp, fn, precision, recall, f1 };
}

const BUCKET_SHIFT = 18;
/** Buckets of non-negative float32 bit patterns (sign bit 0): 2^13, plus one sentinel. */
const NUM_BUCKETS = 1 << (31 - BUCKET_SHIFT);
/** Classes gathered per pass over the rows: 256 columns = 1 KB of each row, so rows are read in long runs. */
const CLASS_BLOCK = 256;
/** Floats of the gathered tile (8 MB); rows per tile = TILE_FLOATS / block, padded off a power of two. */
const TILE_FLOATS = 1 << 21;
const TILE_PAD = 24;
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
  distinct: Float32Array;
  posCount: Int32Array;
}

/** Bucket-table state of a sparse class. */
interface ClassCounter {
  positives: Positives;
  /** table[b] = number of distinct scores whose bucket (top bits of the float32 pattern) is >= b. */
  table: Int32Array;
  /** hist[p] = samples with exactly p distinct positive scores above them. */
  hist: Float64Array;
}

/**
 * Average precision of every class, one-vs-rest: AP[c] = average_precision_score(labels == c, probs[:, c]) over the
 * rows in `indices` (default: all rows), or null when class c has no positive among them. Labels must be valid
 * class indices (the caller validates). Extra memory: an 8 MB tile plus 32 KB per class of a 256-class block; a
 * dense class (few classes, many positives) needs 8 bytes per sample while it is sorted.
 */
export function averagePrecisionByClass(
  probs: ProbabilityMatrix,
  labels: ArrayLike<number>,
  indices?: ArrayLike<number>,
): (number | null)[] {
  const k = probs.numClasses;
  const n = indices ? indices.length : probs.length;
  const { start, rows: byClass } = groupRowsByLabel(labels, k, indices);
  const positives = Array.from({ length: k }, (_, c) =>
    start[c + 1] > start[c] ? classPositives(probs, byClass.subarray(start[c], start[c + 1]), c) : null,
  );
  const isDense = (p: Positives | null) => p !== null && n >= DENSE_MIN_SAMPLES && p.distinct.length * DENSE_RATIO > n;

  const result: (number | null)[] = new Array(k).fill(null);
  positives.forEach((p, c) => {
    if (p && isDense(p)) result[c] = sortedColumnAveragePrecision(probs, indices, c, p);
  });
  if (positives.every((p) => p === null || isDense(p))) return result;

  const block = Math.min(CLASS_BLOCK, k);
  const stride = Math.min(n, Math.floor(TILE_FLOATS / block) + TILE_PAD);
  const cols = new Float32Array(block * stride);
  const bits = new Uint32Array(cols.buffer);
  for (let c0 = 0; c0 < k; c0 += block) {
    const width = Math.min(block, k - c0);
    const counters = positives.slice(c0, c0 + width).map((p) => (p && !isDense(p) ? classCounter(p) : null));
    if (counters.every((x) => x === null)) continue;
    for (let s0 = 0; s0 < n; s0 += stride) {
      const len = Math.min(stride, n - s0);
      gatherTile(probs, indices, s0, len, c0, width, cols, stride);
      counters.forEach((counter, b) => {
        if (counter) countTile(cols, bits, b * stride, len, counter);
      });
    }
    counters.forEach((counter, b) => {
      if (counter) result[c0 + b] = finishAveragePrecision(counter.positives, (t) => counter.hist[t]);
    });
  }
  return result;
}

/** cols[b * stride + r] = probs[row s0 + r][c0 + b]: columns c0 .. c0+width of `len` rows, made contiguous. */
function gatherTile(
  probs: ProbabilityMatrix,
  indices: ArrayLike<number> | undefined,
  s0: number,
  len: number,
  c0: number,
  width: number,
  cols: Float32Array,
  stride: number,
): void {
  for (let r = 0; r < len; r++) {
    const i = indices ? indices[s0 + r] : s0 + r;
    const d = probs.chunkOf(i);
    const o = probs.offsetOf(i) + c0;
    for (let b = 0; b < width; b++) cols[b * stride + r] = d[o + b];
  }
}

/** The distinct scores of class c among its positive rows, descending, with their multiplicities. */
function classPositives(probs: ProbabilityMatrix, rows: Int32Array, c: number): Positives {
  const m = rows.length;
  let pos: Float32Array = new Float32Array(m);
  for (let t = 0; t < m; t++) pos[t] = probs.chunkOf(rows[t])[probs.offsetOf(rows[t]) + c];
  if (m < DENSE_MIN_SAMPLES) pos.sort(); // ascending
  else pos = new Float32Array(radixSort(new Uint32Array(pos.buffer)).buffer);
  const distinct = new Float32Array(m);
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

/** Builds the bucket table of a sparse class. */
function classCounter(positives: Positives): ClassCounter {
  const { distinct } = positives;
  const distinctBits = new Uint32Array(distinct.buffer, distinct.byteOffset, distinct.length);
  const table = new Int32Array(NUM_BUCKETS + 1);
  for (let t = 0; t < distinctBits.length; t++) table[distinctBits[t] >>> BUCKET_SHIFT]++;
  for (let b = NUM_BUCKETS - 1; b >= 0; b--) table[b] += table[b + 1];
  return { positives, table, hist: new Float64Array(distinct.length + 1) };
}

/** Adds the samples of one gathered column segment cols[base .. base+len) to the class's histogram. */
function countTile(cols: Float32Array, bits: Uint32Array, base: number, len: number, counter: ClassCounter): void {
  const { table, hist } = counter;
  const { distinct } = counter.positives;
  for (let s = base, end = base + len; s < end; s++) {
    const bucket = bits[s] >>> BUCKET_SHIFT;
    let lo = table[bucket + 1];
    const hi = table[bucket];
    if (lo !== hi) {
      // Binary search among the distinct scores sharing this bucket: lo = how many are > v.
      const v = cols[s];
      let z = hi;
      while (lo < z) {
        const mid = (lo + z) >>> 1;
        if (distinct[mid] > v) lo = mid + 1;
        else z = mid;
      }
    }
    hist[lo]++;
  }
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
  const { distinct } = positives;
  const distinctBits = new Uint32Array(distinct.buffer, distinct.byteOffset, distinct.length);
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
