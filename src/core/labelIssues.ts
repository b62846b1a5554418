/**
 * Likely label errors by confident learning: a port of cleanlab's `filter.find_label_issues(labels, pred_probs)`
 * with its defaults (filter_by='prune_by_noise_rate', frac_noise=1.0, min_examples_per_class=1, multi_label=False),
 * checked against cleanlab's own answers (test/fixtures/cleanlab/cases.json, cleanlab commit 75062574).
 *
 * Steps (cleanlab function in brackets):
 * 1. Per-class thresholds t_k = mean self-confidence of the samples labelled k, 2 for a class nobody has, clipped
 *    below at 2e-6 [count.get_confident_thresholds].
 * 2. Confident joint C[given][guess]: a sample counts when some p_j >= t_j - 1e-6; its guess is that class, or the
 *    argmax when several pass; the diagonal is raised to at least 1 [count.compute_confident_joint]. Calibrated:
 *    each row rescaled to the class count, the whole to N, rounded keeping row totals
 *    [count.calibrate_confident_joint, internal.util.round_preserving_row_totals].
 * 3. Prune counts: C transposed, diagonal raised to min_examples_per_class taking the same amount evenly from the
 *    column's non-zero entries, truncated to integers [filter._keep_at_least_n_per_class].
 * 4. For every given class k with more than 1 sample and every other class j, flag the prune[j][k] samples labelled k
 *    with the largest margin p_j - p_k [filter._prune_by_count].
 * 5. Unflag samples whose argmax is their given label.
 * 6. Rank the flagged samples by label quality score, ascending [rank.order_label_issues]: self_confidence = p_label,
 *    normalized_margin = (p_label - max_{j != label} p_j + 1) / 2 [rank.get_label_quality_scores].
 *
 * Computation: the labels' scores are read first (one value per row) for the thresholds; then one pass over the
 * matrix gives each row's confident guess, argmax and largest score among the other classes, which is all the
 * later steps need (normalized margins included). Step 4 visits a class's rows by decreasing bound on their margins
 * and stops once no row left can be flagged (see pruneClass). Rows and classes are units of jobs that helper threads
 * share for large inputs (parallel.ts); results do not depend on the number of threads.
 *
 * Ties: where cleanlab uses numpy's default argsort (steps 4 and 6, and the rounding of step 2), this port breaks
 * ties by the lower index first, which is what numpy does for arrays of up to 16 elements (insertion sort); numpy's
 * quicksort may order ties differently on longer arrays, and then so may cleanlab from one numpy build to another.
 * Probabilities are float32 (see probabilities.ts): results equal cleanlab's on the float32-rounded matrix.
 */
import { ClipLensError } from './errors';
import { defineJob, sharedInt32, sharedUint8, toSharedInt32 } from './parallel';
import type { LabelIssue } from './report';
import { groupRowsByLabel, ProbabilityMatrix, type SharedProbabilityMatrix } from './probabilities';
import { selfScorePatterns } from './retrieval';
import { numpyArgsort } from './numpyArgsort';

/** cleanlab's FLOATING_POINT_COMPARISON. */
export const FLOATING_POINT_COMPARISON = 1e-6;
/** cleanlab's CONFIDENT_THRESHOLDS_LOWER_BOUND. */
const CONFIDENT_THRESHOLDS_LOWER_BOUND = 2 * FLOATING_POINT_COMPARISON;
/** cleanlab's TINY_VALUE. */
const TINY_VALUE = 1e-100;
/** Threshold of a class without samples: no probability reaches it. */
const BIG_VALUE = 2;
export const MIN_EXAMPLES_PER_CLASS = 1;
/** Values (rows x classes) read by one unit of the per-row pass. */
const VALUES_PER_ROW_UNIT = 1 << 23;
/**
 * Pruning keeps a sorted top list per (class, other class) while it visits a class's rows; an other class with at
 * least this many samples to flag (or flagging them all) gets all its margins collected and selected instead.
 */
const TOP_LIST_MAX = 64;
/** Rows visited first when pruning a class, doubled each round until no unvisited row can be flagged. */
const FIRST_ROUND_ROWS = 32;

export type RankBy = 'self_confidence' | 'normalized_margin';

export interface LabelIssuesInput {
  classes: string[];
  labels: ArrayLike<number>;
  probs: ProbabilityMatrix;
}

function checkInput(labels: ArrayLike<number>, probs: ProbabilityMatrix): void {
  const k = probs.numClasses;
  if (k < 2) throw new ClipLensError('label-issues-one-class', 'finding label issues needs at least 2 classes');
  if (labels.length !== probs.length) {
    throw new ClipLensError('predictions-mismatch', `${labels.length} labels but ${probs.length} probability rows`);
  }
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < k)) {
      throw new ClipLensError('predictions-bad-label', `label of row ${i} is ${y}, not a class index in [0, ${k})`);
    }
  }
}

/** Number of samples per given label. */
function labelCounts(labels: ArrayLike<number>, k: number): Float64Array {
  const counts = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}

/**
 * numpy's np.sum of a contiguous float64 array: pairwise summation (8-way unrolled blocks of up to 128 values), so
 * sums and means round exactly as cleanlab's do.
 */
export function numpySum(a: ArrayLike<number>, from = 0, to = a.length): number {
  const n = to - from;
  if (n < 8) {
    let res = 0;
    for (let i = from; i < to; i++) res += a[i];
    return res;
  }
  if (n <= 128) {
    let r0 = a[from];
    let r1 = a[from + 1];
    let r2 = a[from + 2];
    let r3 = a[from + 3];
    let r4 = a[from + 4];
    let r5 = a[from + 5];
    let r6 = a[from + 6];
    let r7 = a[from + 7];
    let i = from + 8;
    const blocks = to - (n % 8);
    for (; i < blocks; i += 8) {
      r0 += a[i];
      r1 += a[i + 1];
      r2 += a[i + 2];
      r3 += a[i + 3];
      r4 += a[i + 4];
      r5 += a[i + 5];
      r6 += a[i + 6];
      r7 += a[i + 7];
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < to; i++) res += a[i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(a, from, from + n2) + numpySum(a, from + n2, to);
}

/** Per-class confident thresholds (cleanlab count.get_confident_thresholds). */
export function confidentThresholds(labels: ArrayLike<number>, probs: ProbabilityMatrix): Float64Array {
  checkInput(labels, probs);
  return thresholdsFromSelf(labels, probs.numClasses, selfScorePatterns(probs, labels));
}

/** The thresholds from the self-confidence patterns (see selfScorePatterns). */
export function thresholdsFromSelf(labels: ArrayLike<number>, k: number, self: Int32Array): Float64Array {
  // Self-confidences grouped by class in index order, summed like np.mean(pred_probs[:, k][labels == k]).
  const { start, rows } = groupRowsByLabel(labels, k);
  const values = asFloats(self);
  const selfConfidence = new Float64Array(rows.length);
  for (let t = 0; t < rows.length; t++) selfConfidence[t] = values[rows[t]];
  const t = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const count = start[c + 1] - start[c];
    const mean = count > 0 ? numpySum(selfConfidence, start[c], start[c + 1]) / count : BIG_VALUE;
    t[c] = Math.max(mean, CONFIDENT_THRESHOLDS_LOWER_BOUND);
  }
  return t;
}

const patternView = new Int32Array(1);
const floatView = new Float32Array(patternView.buffer);

/** The bit pattern of the smallest float32 >= x (x > 0): a float32 v >= x exactly when its pattern is >= this one. */
export function float32PatternAtLeast(x: number): number {
  if (!(x > 0)) return 0;
  floatView[0] = x;
  return floatView[0] < x ? patternView[0] + 1 : patternView[0]; // + 1: the next float32 up (+Infinity past the largest)
}

/** The per-row pass: what the rest needs from each row, in one read of the matrix. */
export interface RowScanData {
  matrix: SharedProbabilityMatrix;
  labels: Int32Array;
  /** Per class: pattern of the smallest float32 >= threshold - 1e-6 (a value reaching it is confident). */
  cut: Int32Array;
  rowsPerUnit: number;
  /** Output: cleanlab's true_label_guess: the confident class, the argmax when several are, -1 when none is. */
  guess: Int32Array;
  /** Output: argmax of the row, the lowest index on ties. */
  argmax: Int32Array;
  /** Output: pattern of max over j != label of p_j. */
  maxOther: Int32Array;
}

const scanViews = new WeakMap<RowScanData, { bits: Int32Array[]; rowsPerChunk: number; k: number }>();

/**
 * One unit of the per-row pass. Values are read as int32 float patterns (non-negative floats: integer order is value
 * order), four at a time: the rare events (a new maximum, a value reaching its class's threshold) are tested for
 * the four at once (a negative difference), then handled in index order.
 */
export function rowScanUnit(data: RowScanData, unit: number): void {
  let views = scanViews.get(data);
  if (!views) {
    const { chunks, rowsPerChunk, numClasses } = data.matrix;
    views = { bits: chunks.map((c) => new Int32Array(c.buffer, c.byteOffset, c.length)), rowsPerChunk, k: numClasses };
    scanViews.set(data, views);
  }
  const { bits, rowsPerChunk, k } = views;
  const { labels, cut, guess, argmax, maxOther } = data;
  let minCut = 0x7f800000;
  for (let c = 0; c < k; c++) minCut = Math.min(minCut, cut[c]);
  const minCutBelow = minCut - 1;
  const i1 = Math.min(labels.length, (unit + 1) * data.rowsPerUnit);
  for (let i = unit * data.rowsPerUnit; i < i1; i++) {
    const chunk = Math.floor(i / rowsPerChunk);
    const d = bits[chunk];
    const o = (i - chunk * rowsPerChunk) * k;
    const y = labels[i];
    let best = -1; // below every pattern
    let arg = -1;
    let confident = 0;
    let first = -1;
    // A value needs a closer look when it is a new maximum or may reach its class's threshold: when it is above
    // bar = min(best, minCut - 1).
    let bar = Math.min(best, minCutBelow);
    // Classes [0, y) then (y, k): best is the maximum over the classes other than y.
    for (let part = 0; part < 2; part++) {
      let j = part === 0 ? 0 : y + 1;
      const to = part === 0 ? y : k;
      for (; j + 3 < to; j += 4) {
        const p = o + j;
        if (((bar - d[p]) | (bar - d[p + 1]) | (bar - d[p + 2]) | (bar - d[p + 3])) < 0) {
          for (let q = j; q < j + 4; q++) {
            const v = d[o + q];
            if (v > best) {
              best = v;
              arg = q;
            }
            if (v >= cut[q] && confident++ === 0) first = q;
          }
          bar = Math.min(best, minCutBelow);
        }
      }
      for (; j < to; j++) {
        const v = d[o + j];
        if (v > best) {
          best = v;
          arg = j;
        }
        if (v >= cut[j] && confident++ === 0) first = j;
      }
      bar = Math.min(best, minCutBelow);
      if (part === 0) {
        const py = d[o + y];
        if (py >= cut[y] && confident++ === 0) first = y;
      }
    }
    const py = d[o + y];
    const top = py > best || (py === best && y < arg) ? y : arg;
    argmax[i] = top;
    maxOther[i] = best;
    guess[i] = confident === 0 ? -1 : confident === 1 ? first : top;
  }
}

const runRowScan = defineJob('labelIssueRows', rowScanUnit);

/** Everything the label-issue steps need from the per-row pass. */
export interface RowScan {
  /** self[i] = pattern of probs[i][labels[i]]. */
  self: Int32Array;
  thresholds: Float64Array;
  guess: Int32Array;
  argmax: Int32Array;
  maxOther: Int32Array;
}

/**
 * Self-confidences, thresholds, then one pass over the rows (on helper threads too for large inputs).
 * `withThresholds` false skips the thresholds (no class is confident): for the scores alone. Exported for tests.
 */
export function scanRows(labels: ArrayLike<number>, probs: ProbabilityMatrix, withThresholds = true): RowScan {
  const k = probs.numClasses;
  const n = labels.length;
  const sharedLabels = toSharedInt32(labels);
  const self = selfScorePatterns(probs, sharedLabels);
  const thresholds = withThresholds ? thresholdsFromSelf(labels, k, self) : new Float64Array(k).fill(Infinity);
  const cut = sharedInt32(k);
  thresholds.forEach((t, c) => (cut[c] = float32PatternAtLeast(t - FLOATING_POINT_COMPARISON)));
  const rowsPerUnit = Math.max(1, Math.ceil(VALUES_PER_ROW_UNIT / k));
  const data: RowScanData = {
    matrix: probs.shared(),
    labels: sharedLabels,
    cut,
    rowsPerUnit,
    guess: sharedInt32(n),
    argmax: sharedInt32(n),
    maxOther: sharedInt32(n),
  };
  runRowScan(data, Math.ceil(n / rowsPerUnit), n * k, probs.inSharedMemory);
  return { self, thresholds, guess: data.guess, argmax: data.argmax, maxOther: data.maxOther };
}

/** float32 values of patterns. */
function asFloats(patterns: Int32Array): Float32Array {
  return new Float32Array(patterns.buffer, patterns.byteOffset, patterns.length);
}

/**
 * Rounds to integers keeping the (rounded) sum, like cleanlab's internal.util.round_preserving_sum: round half to
 * even, then move the entries with the largest (or smallest) rounding remainders by one until the sums agree.
 */
export function roundPreservingSum(values: ArrayLike<number>): number[] {
  const len = values.length;
  const floats = Float64Array.from(values);
  const ints = new Float64Array(len);
  for (let i = 0; i < len; i++) ints[i] = roundHalfEven(floats[i]);
  const origSum = roundHalfEven(numpySum(floats));
  let intSum = roundHalfEven(numpySum(ints));
  while (Math.abs(intSum - origSum) > FLOATING_POINT_COMPARISON) {
    const diff = roundHalfEven(origSum - intSum);
    const increment = diff < 0 ? -1 : 1;
    const changes = Math.min(Math.abs(diff), len);
    const remainder = new Float64Array(len);
    for (let i = 0; i < len; i++) remainder[i] = floats[i] - ints[i];
    for (const i of firstInOrder(remainder, changes, increment === 1)) ints[i] += increment;
    intSum = roundHalfEven(numpySum(ints));
  }
  return Array.from(ints);
}

/**
 * The first `count` indices of np.argsort(remainder) (stable: ascending remainder, ties by index), or of its reverse
 * when `largest` (descending remainder, ties by the higher index first). A short list when `count` is small.
 */
function firstInOrder(remainder: Float64Array, count: number, largest: boolean): number[] {
  const len = remainder.length;
  // before(a, b): index a comes before index b in the order.
  const before = largest
    ? (a: number, b: number) => remainder[a] > remainder[b] || (remainder[a] === remainder[b] && a > b)
    : (a: number, b: number) => remainder[a] < remainder[b] || (remainder[a] === remainder[b] && a < b);
  if (count > 32) {
    const order = Array.from({ length: len }, (_, i) => i).sort((a, b) => remainder[a] - remainder[b] || a - b);
    if (largest) order.reverse();
    return order.slice(0, count);
  }
  const top: number[] = [];
  for (let i = 0; i < len; i++) {
    if (top.length === count && !before(i, top[count - 1])) continue;
    let q = top.length < count ? top.length : count - 1;
    if (top.length < count) top.push(i);
    while (q > 0 && before(i, top[q - 1])) {
      top[q] = top[q - 1];
      q--;
    }
    top[q] = i;
  }
  return top;
}

/** numpy's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Calibrates a confident joint to the label counts and to N (cleanlab count.calibrate_confident_joint). */
export function calibrateConfidentJoint(confidentJoint: number[][], counts: ArrayLike<number>): number[][] {
  const k = confidentJoint.length;
  const calibrated = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    const row = confidentJoint[a];
    let rowSum = 0;
    for (let b = 0; b < k; b++) rowSum += row[b];
    rowSum = Math.max(rowSum, TINY_VALUE);
    for (let b = 0; b < k; b++) calibrated[a * k + b] = (row[b] / rowSum) * counts[a];
  }
  const total = Math.max(numpySum(calibrated), TINY_VALUE);
  let n = 0;
  for (let a = 0; a < k; a++) n += counts[a];
  const scaled = new Float64Array(k);
  return Array.from({ length: k }, (_, a) => {
    for (let b = 0; b < k; b++) scaled[b] = (calibrated[a * k + b] / total) * n;
    return roundPreservingSum(scaled);
  });
}

/**
 * The confident joint C[given][guess] (cleanlab count.compute_confident_joint), calibrated by default.
 * Rows are given labels, columns the confident guesses, both in class order.
 */
export function computeConfidentJoint(
  labels: ArrayLike<number>,
  probs: ProbabilityMatrix,
  options: { calibrate?: boolean } = {},
): number[][] {
  checkInput(labels, probs);
  return jointFromGuesses(labels, probs.numClasses, scanRows(labels, probs).guess, options.calibrate !== false);
}

export function jointFromGuesses(labels: ArrayLike<number>, k: number, guess: Int32Array, calibrate: boolean): number[][] {
  const cj: number[][] = [];
  for (let a = 0; a < k; a++) cj.push(new Array<number>(k).fill(0));
  for (let i = 0; i < labels.length; i++) if (guess[i] >= 0) cj[labels[i]][guess[i]]++;
  for (let c = 0; c < k; c++) cj[c][c] = Math.max(cj[c][c], 1);
  return calibrate ? calibrateConfidentJoint(cj, labelCounts(labels, k)) : cj;
}

/**
 * cleanlab's count.num_label_issues with its default estimation_method='off_diagonal': samples counted off the
 * diagonal of the uncalibrated confident joint, minus those whose given label wins the argmax after a +1e-6 nudge.
 */
export function numLabelIssues(labels: ArrayLike<number>, probs: ProbabilityMatrix): number {
  checkInput(labels, probs);
  const { self, guess, maxOther } = scanRows(labels, probs);
  const selfValue = asFloats(self);
  const otherValue = asFloats(maxOther);
  let count = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (guess[i] < 0 || guess[i] === y) continue;
    const py = selfValue[i] + FLOATING_POINT_COMPARISON;
    // The nudged label wins unless another class scores more, or as much with a lower index.
    let wins = otherValue[i] < py;
    if (otherValue[i] === py) {
      wins = true;
      const d = probs.chunkOf(i);
      const o = probs.offsetOf(i);
      for (let j = 0; j < y && wins; j++) if (d[o + j] === py) wins = false;
    }
    if (!wins) count++;
  }
  return count;
}

/**
 * cleanlab filter._keep_at_least_n_per_class with frac_noise=1: prune[true][given] counts (the joint transposed),
 * each diagonal raised to `minPerClass` by taking the difference evenly from the column's other non-zero entries,
 * then truncated to integers.
 */
export function pruneCountMatrix(confidentJoint: number[][], minPerClass: number): number[][] {
  const k = confidentJoint.length;
  // pcm[r][col] = confidentJoint[col][r]: columns of pcm are the joint's rows.
  const out: number[][] = [];
  for (let r = 0; r < k; r++) out.push(new Array<number>(k));
  for (let col = 0; col < k; col++) {
    const joint = confidentJoint[col];
    const diag = joint[col];
    const newDiag = Math.max(diag, minPerClass);
    let nonZero = 0;
    for (let r = 0; r < k; r++) if (joint[r] !== 0) nonZero++;
    const perEntry = (newDiag - diag) / Math.max(nonZero - 1, 1);
    for (let r = 0; r < k; r++) {
      const v = r === col ? newDiag : Math.max(joint[r] - perEntry, 0);
      out[r][col] = Math.trunc(v); // _reduce_prune_counts returns new_mat.astype(int)
    }
  }
  return out;
}

/**
 * cleanlab's find_label_issues mask with its defaults: 1 where the sample is a likely label error.
 * `confidentJoint` defaults to the calibrated {@link computeConfidentJoint}.
 */
export function findLabelIssueMask(labels: ArrayLike<number>, probs: ProbabilityMatrix, confidentJoint?: number[][]): Uint8Array {
  checkInput(labels, probs);
  const scan = scanRows(labels, probs);
  return issueMask(labels, probs, scan, confidentJoint ?? jointFromGuesses(labels, probs.numClasses, scan.guess, true));
}

/** Steps 3-5 (see the module comment): prune by noise rate, then unflag the samples whose argmax is their label. */
function issueMask(labels: ArrayLike<number>, probs: ProbabilityMatrix, scan: RowScan, confidentJoint: number[][]): Uint8Array {
  const k = probs.numClasses;
  const n = labels.length;
  const prune = pruneCountMatrix(confidentJoint, MIN_EXAMPLES_PER_CLASS);
  // The positive counts off the diagonal, by given class c: pruneClasses/pruneCounts[pruneStart[c] ..).
  const pruneStart = sharedInt32(k + 1);
  for (let c = 0; c < k; c++) {
    let nonZero = 0;
    for (let j = 0; j < k; j++) if (j !== c && prune[j][c] > 0) nonZero++;
    pruneStart[c + 1] = pruneStart[c] + nonZero;
  }
  const pruneClasses = sharedInt32(pruneStart[k]);
  const pruneCounts = sharedInt32(pruneStart[k]);
  for (let c = 0, q = 0; c < k; c++) {
    for (let j = 0; j < k; j++) {
      if (j !== c && prune[j][c] > 0) {
        pruneClasses[q] = j;
        pruneCounts[q++] = prune[j][c];
      }
    }
  }
  const { start, rows } = groupRowsByLabel(labels, k);
  const classesPerUnit = Math.max(1, Math.ceil(k / 64));
  const data: PruneData = {
    matrix: probs.shared(),
    start: toSharedInt32(start),
    rows: toSharedInt32(rows),
    pruneStart,
    pruneClasses,
    pruneCounts,
    self: scan.self,
    maxOther: scan.maxOther,
    classesPerUnit,
    mask: sharedUint8(n),
  };
  runPrune(data, Math.ceil(k / classesPerUnit), n * k, probs.inSharedMemory);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) if (data.mask[i] && scan.argmax[i] !== labels[i]) mask[i] = 1;
  return mask;
}

interface PruneData {
  matrix: SharedProbabilityMatrix;
  /** Rows grouped by label (groupRowsByLabel). */
  start: Int32Array;
  rows: Int32Array;
  /** For given class c, at q in [pruneStart[c], pruneStart[c + 1]): flag pruneCounts[q] samples for true class pruneClasses[q]. */
  pruneStart: Int32Array;
  pruneClasses: Int32Array;
  pruneCounts: Int32Array;
  self: Int32Array;
  maxOther: Int32Array;
  classesPerUnit: number;
  /** Output: 1 for the flagged samples. */
  mask: Uint8Array;
}

const pruneMatrices = new WeakMap<PruneData, ProbabilityMatrix>();

function pruneUnit(data: PruneData, unit: number): void {
  let probs = pruneMatrices.get(data);
  if (!probs) pruneMatrices.set(data, (probs = ProbabilityMatrix.fromShared(data.matrix)));
  const k = probs.numClasses;
  const c1 = Math.min(k, (unit + 1) * data.classesPerUnit);
  for (let c = unit * data.classesPerUnit; c < c1; c++) pruneClass(data, probs, c);
}

const runPrune = defineJob('labelIssuePrune', pruneUnit);

/**
 * cleanlab filter._prune_by_count for the samples labelled c: for every other class j with prune[j][c] > 0, flag
 * the prune[j][c] samples with the largest margin p_j - p_c, ties to the lower position among the class's rows.
 *
 * No margin p_j - p_c of a row exceeds its bound max_{j' != c} p_j' - p_c (rounding is monotone). Rows are visited
 * in rounds of decreasing bound (32, 64, 128... rows), each class j keeping its top list sorted by (margin
 * descending, position ascending); once every list is full and the best bound left is below every list's last
 * margin, no row left can enter any list and the class is done. Classes j that flag many samples (TOP_LIST_MAX or
 * more, or all) get all their margins and a selection instead.
 */
function pruneClass(data: PruneData, probs: ProbabilityMatrix, c: number): void {
  const { start, pruneStart, pruneClasses, pruneCounts, mask } = data;
  const rows = data.rows.subarray(start[c], start[c + 1]);
  const m = rows.length;
  if (m <= MIN_EXAMPLES_PER_CLASS) return;
  const countOf = new Map<number, number>();
  const listed: number[] = [];
  const collected: number[] = [];
  for (let q = pruneStart[c]; q < pruneStart[c + 1]; q++) {
    const j = pruneClasses[q];
    const count = pruneCounts[q];
    countOf.set(j, count);
    if (count >= m) for (let t = 0; t < m; t++) mask[rows[t]] = 1;
    else if (count >= TOP_LIST_MAX) collected.push(j);
    else listed.push(j);
  }
  if (listed.length === 0 && collected.length === 0) return;

  const selfValue = asFloats(data.self);
  const otherValue = asFloats(data.maxOther);

  for (const j of collected) {
    const margins = new Float64Array(m);
    for (let t = 0; t < m; t++) {
      const i = rows[t];
      margins[t] = probs.chunkOf(i)[probs.offsetOf(i) + j] - selfValue[i];
    }
    for (const t of topByMargin(margins, countOf.get(j) as number)) mask[rows[t]] = 1;
  }
  if (listed.length === 0) return;

  // Top lists: list l holds up to counts[l] (margin, position) pairs at offsets[l].., sorted.
  const L = listed.length;
  const counts = new Int32Array(L);
  const offsets = new Int32Array(L + 1);
  for (let l = 0; l < L; l++) {
    counts[l] = countOf.get(listed[l]) as number;
    offsets[l + 1] = offsets[l] + counts[l];
  }
  const cls = Int32Array.from(listed);
  const filled = new Int32Array(L);
  const topMargin = new Float64Array(offsets[L]);
  const topPos = new Int32Array(offsets[L]);
  // A list's entry bar: its last margin (and position) once full; below everything until then.
  const barMargin = new Float64Array(L).fill(-Infinity);
  const barPos = new Int32Array(L).fill(m);

  const bound = new Float64Array(m);
  for (let t = 0; t < m; t++) bound[t] = otherValue[rows[t]] - selfValue[rows[t]];
  const sortedBound = Float64Array.from(bound).sort(); // ascending

  let upper = Infinity; // rows with bound >= upper are visited
  for (let visit = FIRST_ROUND_ROWS; ; visit += Math.max(FIRST_ROUND_ROWS, visit >> 3)) {
    const lower = visit >= m ? -Infinity : sortedBound[m - visit];
    for (let t = 0; t < m; t++) {
      const b = bound[t];
      if (b >= upper || b < lower) continue;
      const i = rows[t];
      const d = probs.chunkOf(i);
      const o = probs.offsetOf(i);
      const pc = selfValue[i];
      for (let l = 0; l < L; l++) {
        const margin = d[o + cls[l]] - pc;
        if (margin < barMargin[l] || (margin === barMargin[l] && t > barPos[l])) continue;
        // Insert (margin, t) into list l, keeping (margin descending, position ascending).
        const base = offsets[l];
        let q = base + (filled[l] < counts[l] ? filled[l]++ : counts[l] - 1);
        while (q > base && (topMargin[q - 1] < margin || (topMargin[q - 1] === margin && topPos[q - 1] > t))) {
          topMargin[q] = topMargin[q - 1];
          topPos[q] = topPos[q - 1];
          q--;
        }
        topMargin[q] = margin;
        topPos[q] = t;
        if (filled[l] === counts[l]) {
          barMargin[l] = topMargin[base + counts[l] - 1];
          barPos[l] = topPos[base + counts[l] - 1];
        }
      }
    }
    if (lower === -Infinity) break;
    upper = lower;
    // The best bound not visited yet: the largest one below `lower`.
    let next = -Infinity;
    for (let q = m - visit - 1; q >= 0; q--) {
      if (sortedBound[q] < lower) {
        next = sortedBound[q];
        break;
      }
    }
    let bar = Infinity;
    for (let l = 0; l < L; l++) bar = Math.min(bar, barMargin[l]);
    if (next < bar) break;
  }
  for (let l = 0; l < L; l++) for (let q = offsets[l]; q < offsets[l] + filled[l]; q++) mask[rows[topPos[q]]] = 1;
}

/**
 * Positions of the `count` largest values, ties to the lower position: the first `count` of a stable descending
 * order (np.argsort(-margin)[:count] for short arrays). Selects the cut value in O(n) instead of sorting.
 */
export function topByMargin(values: Float64Array, count: number): number[] {
  const n = values.length;
  if (count >= n) return Array.from({ length: n }, (_, t) => t);
  if (count === 1) {
    let best = 0;
    for (let t = 1; t < n; t++) if (values[t] > values[best]) best = t;
    return [best];
  }
  const cut = kthLargest(Float64Array.from(values), count);
  const out: number[] = [];
  let above = 0;
  for (let t = 0; t < n; t++) if (values[t] > cut) above++;
  let equalLeft = count - above;
  for (let t = 0; t < n; t++) {
    if (values[t] > cut) out.push(t);
    else if (values[t] === cut && equalLeft > 0) {
      out.push(t);
      equalLeft--;
    }
  }
  return out;
}

/** The k-th largest value (1-based) by quickselect; reorders `a`. */
function kthLargest(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        const tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target];
  }
  return a[target];
}

/** Label quality scores (cleanlab rank.get_label_quality_scores, adjust_pred_probs=False): lower = more suspicious. */
export function labelQualityScores(labels: ArrayLike<number>, probs: ProbabilityMatrix, method: RankBy = 'self_confidence'): Float64Array {
  checkInput(labels, probs);
  if (method === 'self_confidence') return Float64Array.from(asFloats(selfScorePatterns(probs, labels)).subarray(0, labels.length));
  const { self, maxOther } = scanRows(labels, probs, false);
  return scoresOf(method, self, maxOther, labels.length);
}

/**
 * Scores of the rows (of those where mask[i] when given; others 0): self_confidence = p_label; normalized_margin =
 * (p_label - max other + 1) / 2.
 */
export function scoresOf(method: RankBy, self: Int32Array, maxOther: Int32Array, n: number, mask?: Uint8Array): Float64Array {
  const selfValue = asFloats(self);
  const otherValue = asFloats(maxOther);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    scores[i] = method === 'self_confidence' ? selfValue[i] : (selfValue[i] - otherValue[i] + 1) / 2;
  }
  return scores;
}

/** Indices of the flagged samples ordered by score ascending, ties by index (cleanlab rank.order_label_issues). */
export function orderLabelIssues(mask: ArrayLike<number | boolean>, scores: ArrayLike<number>): number[] {
  const idx: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) idx.push(i);
  return idx.sort((a, b) => scores[a] - scores[b] || a - b);
}

/**
 * Likely label errors, most suspicious first (rank 1). `score` is the label quality score of `rankBy` (default
 * self_confidence, cleanlab's default); `suggested` is the argmax class, which always differs from `given` because
 * cleanlab drops samples whose argmax is their label.
 */
export function findLabelIssues(input: LabelIssuesInput, options: { rankBy?: RankBy } = {}): LabelIssue[] {
  const { classes, labels, probs } = input;
  if (classes.length !== probs.numClasses) {
    throw new ClipLensError('predictions-mismatch', `${classes.length} class names but probabilities have ${probs.numClasses} columns`);
  }
  if (labels.length === 0) return [];
  checkInput(labels, probs);
  const scan = scanRows(labels, probs);
  const mask = issueMask(labels, probs, scan, jointFromGuesses(labels, probs.numClasses, scan.guess, true));
  const scores = scoresOf(options.rankBy ?? 'self_confidence', scan.self, scan.maxOther, labels.length, mask);
  return orderLabelIssues(mask, scores).map((index, r) => ({
    index,
    given: classes[labels[index]],
    suggested: classes[scan.argmax[index]],
    score: scores[index],
    rank: r + 1,
  }));
}

/**
 * find_label_issues on float64 probabilities (N x K row-major), for predictors whose probabilities are computed
 * here in float64 (the kNN votes, the linear probe). cleanlab runs on float64 input, and on vote fractions such as
 * (p - 1/(k+1)) * (k+1)/k many margins differ only in their last bits: the float32 rounding of
 * {@link ProbabilityMatrix} would merge or reorder them and flag other samples. This path keeps cleanlab's float64
 * values. Same steps, defaults and output as {@link findLabelIssues} (a direct loop); ties among margins (step 4)
 * are broken as numpy's default argsort does (numpyArgsort.ts), which decides which of many equal votes cleanlab
 * flags; ranks (step 6) keep ties in index order.
 */
export function findLabelIssuesFloat64(
  classes: string[],
  labels: ArrayLike<number>,
  probs: Float64Array,
  options: { rankBy?: RankBy } = {},
): LabelIssue[] {
  const k = classes.length;
  const n = labels.length;
  if (k < 2) throw new ClipLensError('label-issues-one-class', 'finding label issues needs at least 2 classes');
  if (probs.length !== n * k) throw new ClipLensError('predictions-mismatch', `${n} labels but ${probs.length / k} probability rows`);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < k)) {
      throw new ClipLensError('predictions-bad-label', `label of row ${i} is ${y}, not a class index in [0, ${k})`);
    }
  }
  if (n === 0) return [];
  const { start, rows } = groupRowsByLabel(labels, k);
  // 1. thresholds: mean self-confidence per class (np.mean's pairwise sum), clipped
  const thresholds = new Float64Array(k);
  const selfOf = new Float64Array(rows.length);
  for (let t = 0; t < rows.length; t++) selfOf[t] = probs[rows[t] * k + labels[rows[t]]];
  for (let c = 0; c < k; c++) {
    const count = start[c + 1] - start[c];
    const mean = count > 0 ? numpySum(selfOf, start[c], start[c + 1]) / count : BIG_VALUE;
    thresholds[c] = Math.max(mean, CONFIDENT_THRESHOLDS_LOWER_BOUND);
  }
  // 2. confident guesses and argmax (first maximum)
  const guess = new Int32Array(n);
  const argmax = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let confident = 0;
    let firstConfident = -1;
    let best = 0;
    for (let j = 0; j < k; j++) {
      const v = probs[o + j];
      if (v > probs[o + best]) best = j;
      if (v >= thresholds[j] - FLOATING_POINT_COMPARISON) {
        confident++;
        if (firstConfident < 0) firstConfident = j;
      }
    }
    argmax[i] = best;
    guess[i] = confident === 0 ? -1 : confident > 1 ? best : firstConfident;
  }
  const joint = jointFromGuesses(labels, k, guess, true);
  // 3-4. prune by noise rate
  const prune = pruneCountMatrix(joint, MIN_EXAMPLES_PER_CLASS);
  const mask = new Uint8Array(n);
  for (let c = 0; c < k; c++) {
    const m = start[c + 1] - start[c];
    if (m <= MIN_EXAMPLES_PER_CLASS) continue;
    const margins = new Float64Array(m);
    for (let j = 0; j < k; j++) {
      const count = prune[j][c];
      if (j === c || count <= 0) continue;
      for (let t = 0; t < m; t++) {
        const i = rows[start[c] + t];
        margins[t] = -(probs[i * k + j] - probs[i * k + c]);
      }
      // np.argsort(-margin)[:count], numpy's (unstable) quicksort: which of many tied votes is flagged
      const order = numpyArgsort(margins);
      for (let t = 0; t < Math.min(count, m); t++) mask[rows[start[c] + order[t]]] = 1;
    }
  }
  // 5. unflag samples whose argmax is their label
  for (let i = 0; i < n; i++) if (argmax[i] === labels[i]) mask[i] = 0;
  // 6. rank
  const rankBy = options.rankBy ?? 'self_confidence';
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    const o = i * k;
    const self = probs[o + labels[i]];
    if (rankBy === 'self_confidence') scores[i] = self;
    else {
      let other = -Infinity;
      for (let j = 0; j < k; j++) if (j !== labels[i] && probs[o + j] > other) other = probs[o + j];
      scores[i] = (self - other + 1) / 2;
    }
  }
  return orderLabelIssues(mask, scores).map((index, r) => ({
    index,
    given: classes[labels[index]],
    suggested: classes[argmax[index]],
    score: scores[index],
    rank: r + 1,
  }));
}
