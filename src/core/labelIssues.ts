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
 * Ties: where cleanlab uses numpy's default argsort (steps 4 and 6, and the rounding of step 2), this port breaks
 * ties by the lower index first, which is what numpy does for arrays of up to 16 elements (insertion sort); numpy's
 * quicksort may order ties differently on longer arrays, and then so may cleanlab from one numpy build to another.
 * Probabilities are float32 (see probabilities.ts): results equal cleanlab's on the float32-rounded matrix.
 */
import { ClipLensError } from './errors';
import type { LabelIssue } from './report';
import { groupRowsByLabel, type ProbabilityMatrix } from './probabilities';

/** cleanlab's FLOATING_POINT_COMPARISON. */
const FLOATING_POINT_COMPARISON = 1e-6;
/** cleanlab's CONFIDENT_THRESHOLDS_LOWER_BOUND. */
const CONFIDENT_THRESHOLDS_LOWER_BOUND = 2 * FLOATING_POINT_COMPARISON;
/** cleanlab's TINY_VALUE. */
const TINY_VALUE = 1e-100;
/** Threshold of a class without samples: no probability reaches it. */
const BIG_VALUE = 2;
const MIN_EXAMPLES_PER_CLASS = 1;
/** Margins held at once while pruning one class (32 MB of float64). */
const MARGIN_BATCH_VALUES = 1 << 22;

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
    const r = [a[from], a[from + 1], a[from + 2], a[from + 3], a[from + 4], a[from + 5], a[from + 6], a[from + 7]];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[from + i + j];
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[from + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(a, from, from + n2) + numpySum(a, from + n2, to);
}

/** Per-class confident thresholds (cleanlab count.get_confident_thresholds). */
export function confidentThresholds(labels: ArrayLike<number>, probs: ProbabilityMatrix): Float64Array {
  checkInput(labels, probs);
  const k = probs.numClasses;
  // Self-confidences grouped by class in index order, summed like np.mean(pred_probs[:, k][labels == k]).
  const { start, rows } = groupRowsByLabel(labels, k);
  const selfConfidence = Float64Array.from(rows, (i) => probs.chunkOf(i)[probs.offsetOf(i) + labels[i]]);
  const t = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const count = start[c + 1] - start[c];
    const mean = count > 0 ? numpySum(selfConfidence, start[c], start[c + 1]) / count : BIG_VALUE;
    t[c] = Math.max(mean, CONFIDENT_THRESHOLDS_LOWER_BOUND);
  }
  return t;
}

/**
 * Each sample's confident guess of its true class (cleanlab's true_label_guess), or -1 when no class reaches its
 * threshold.
 */
function confidentGuesses(labels: ArrayLike<number>, probs: ProbabilityMatrix): Int32Array {
  const k = probs.numClasses;
  const cut = confidentThresholds(labels, probs).map((t) => t - FLOATING_POINT_COMPARISON);
  const guess = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const d = probs.chunkOf(i);
    const o = probs.offsetOf(i);
    let confident = 0;
    let first = -1;
    let best = d[o];
    let arg = 0;
    for (let j = 0; j < k; j++) {
      const v = d[o + j];
      if (v >= cut[j]) {
        if (confident++ === 0) first = j;
      }
      if (v > best) {
        best = v;
        arg = j;
      }
    }
    guess[i] = confident === 0 ? -1 : confident === 1 ? first : arg;
  }
  return guess;
}

/**
 * Rounds to integers keeping the (rounded) sum, like cleanlab's internal.util.round_preserving_sum: round half to
 * even, then move the entries with the largest (or smallest) rounding remainders by one until the sums agree.
 */
export function roundPreservingSum(values: ArrayLike<number>): number[] {
  const floats = Array.from(values);
  const ints = floats.map(roundHalfEven);
  const origSum = roundHalfEven(numpySum(floats));
  let intSum = roundHalfEven(numpySum(ints));
  while (Math.abs(intSum - origSum) > FLOATING_POINT_COMPARISON) {
    const diff = roundHalfEven(origSum - intSum);
    const increment = diff < 0 ? -1 : 1;
    const changes = Math.min(Math.abs(diff), floats.length);
    // np.argsort(floats - ints) (stable), reversed when incrementing: largest remainders first, later index first.
    const remainder = floats.map((f, i) => f - ints[i]);
    const order = floats.map((_, i) => i).sort((a, b) => remainder[a] - remainder[b] || a - b);
    if (increment === 1) order.reverse();
    for (const i of order.slice(0, changes)) ints[i] += increment;
    intSum = roundHalfEven(numpySum(ints));
  }
  return ints;
}

/** numpy's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Calibrates a confident joint to the label counts and to N (cleanlab count.calibrate_confident_joint). */
export function calibrateConfidentJoint(confidentJoint: number[][], counts: ArrayLike<number>): number[][] {
  const k = confidentJoint.length;
  const rows = confidentJoint.map((row, a) => {
    const rowSum = Math.max(row.reduce((x, y) => x + y, 0), TINY_VALUE);
    return row.map((v) => (v / rowSum) * counts[a]);
  });
  const total = Math.max(numpySum(rows.flat()), TINY_VALUE);
  let n = 0;
  for (let a = 0; a < k; a++) n += counts[a];
  return rows.map((row) => roundPreservingSum(row.map((v) => (v / total) * n)));
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
  const k = probs.numClasses;
  const guess = confidentGuesses(labels, probs);
  const cj = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < labels.length; i++) if (guess[i] >= 0) cj[labels[i]][guess[i]]++;
  for (let c = 0; c < k; c++) cj[c][c] = Math.max(cj[c][c], 1);
  return options.calibrate === false ? cj : calibrateConfidentJoint(cj, labelCounts(labels, k));
}

/**
 * cleanlab's count.num_label_issues with its default estimation_method='off_diagonal': samples counted off the
 * diagonal of the uncalibrated confident joint, minus those whose given label wins the argmax after a +1e-6 nudge.
 */
export function numLabelIssues(labels: ArrayLike<number>, probs: ProbabilityMatrix): number {
  const k = probs.numClasses;
  const guess = confidentGuesses(labels, probs);
  let count = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (guess[i] < 0 || guess[i] === y) continue;
    const d = probs.chunkOf(i);
    const o = probs.offsetOf(i);
    const py = d[o + y] + FLOATING_POINT_COMPARISON;
    let wins = true;
    for (let j = 0; j < k && wins; j++) {
      const v = j === y ? py : d[o + j];
      if (v > py || (v === py && j < y)) wins = false;
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
  const pcm = Array.from({ length: k }, (_, a) => Array.from({ length: k }, (_, b) => confidentJoint[b][a]));
  const out = pcm.map((row) => row.slice());
  for (let col = 0; col < k; col++) {
    const diag = pcm[col][col];
    const newDiag = Math.max(diag, minPerClass);
    let nonZero = 0;
    for (let r = 0; r < k; r++) if (pcm[r][col] !== 0) nonZero++;
    const perEntry = (newDiag - diag) / Math.max(nonZero - 1, 1);
    for (let r = 0; r < k; r++) {
      const v = r === col ? newDiag : Math.max(pcm[r][col] - perEntry, 0);
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
  const k = probs.numClasses;
  const n = labels.length;
  const prune = pruneCountMatrix(confidentJoint ?? computeConfidentJoint(labels, probs), MIN_EXAMPLES_PER_CLASS);

  const { start, rows: byClass } = groupRowsByLabel(labels, k);

  const mask = new Uint8Array(n);
  for (let c = 0; c < k; c++) {
    const rows = byClass.subarray(start[c], start[c + 1]);
    const others: number[] = [];
    for (let j = 0; j < k; j++) if (j !== c && prune[j][c] > 0) others.push(j);
    if (rows.length <= MIN_EXAMPLES_PER_CLASS || others.length === 0) continue;
    // margins[jj * m + t] = p_j - p_c of the class's t-th row, for a batch of classes j (one visit per row).
    const m = rows.length;
    const batch = Math.max(1, Math.min(others.length, Math.floor(MARGIN_BATCH_VALUES / m)));
    const margins = new Float64Array(batch * m);
    for (let b0 = 0; b0 < others.length; b0 += batch) {
      const js = others.slice(b0, b0 + batch);
      for (let t = 0; t < m; t++) {
        const d = probs.chunkOf(rows[t]);
        const o = probs.offsetOf(rows[t]);
        const pc = d[o + c];
        for (let jj = 0; jj < js.length; jj++) margins[jj * m + t] = d[o + js[jj]] - pc;
      }
      js.forEach((j, jj) => {
        for (const t of topByMargin(margins.subarray(jj * m, (jj + 1) * m), prune[j][c])) mask[rows[t]] = 1;
      });
    }
  }
  for (let i = 0; i < n; i++) if (mask[i] && probs.argmax(i) === labels[i]) mask[i] = 0;
  return mask;
}

/**
 * Positions of the `count` largest values, ties to the lower position: the first `count` of a stable descending
 * order (np.argsort(-margin)[:count] for short arrays). Selects the cut value in O(n) instead of sorting.
 */
function topByMargin(values: Float64Array, count: number): number[] {
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
  const k = probs.numClasses;
  const scores = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const d = probs.chunkOf(i);
    const o = probs.offsetOf(i);
    const y = labels[i];
    if (method === 'self_confidence') {
      scores[i] = d[o + y];
    } else {
      let other = -Infinity;
      for (let j = 0; j < k; j++) if (j !== y && d[o + j] > other) other = d[o + j];
      scores[i] = (d[o + y] - other + 1) / 2;
    }
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
  const mask = findLabelIssueMask(labels, probs);
  const scores = labelQualityScores(labels, probs, options.rankBy ?? 'self_confidence');
  return orderLabelIssues(mask, scores).map((index, r) => ({
    index,
    given: classes[labels[index]],
    suggested: classes[probs.argmax(index)],
    score: scores[index],
    rank: r + 1,
  }));
}
