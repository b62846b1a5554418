/**
 * The judgement (metrics, per-split metrics, label issues) without the N x K probability matrix, for evaluations
 * whose matrix would outgrow the embeddings (a million rows x a thousand classes: 3.8 GiB of float32).
 *
 * The zero-shot probabilities are recomputed block by block from the embeddings instead of being held: the blocks
 * are the ones {@link forEachScoredBlock} gives (the same rows, in the same order, as the in-memory path, so the
 * product gives bit-identical values), and each pass over them costs one product. Two passes, a third when needed:
 * 1. each sample's top-K (the report), and per evaluated row its argmax, the rank of its label and its label's
 *    score (metrics.ts' per-row pass): accuracy, Recall@K and the confusion counts of any subset of rows come from
 *    these; the labels' scores give cleanlab's per-class thresholds and every class's positives for the AP.
 * 2. cleanlab's per-row scan (confident guess, argmax, largest other score: labelIssues.ts) against the thresholds
 *    (after a summary pass 1 only the confident count, inside ONNX Runtime: argmax and largest other score came with
 *    pass 1; see {@link StreamedJudgement.countingPass}),
 *    the AP histograms (retrieval.ts StreamingAveragePrecision) of all rows and of every subset asked for so far
 *    (splits, the metrics without leaked samples; left to pass 3 when it will run anyway: see
 *    {@link StreamedJudgement.apInPass3}), and, when asked (pruneCandidates), per row its largest other scores.
 * Then cleanlab's prune by noise rate: per (given class c, other class j) the rows of c with the largest margins
 * p_j - p_c, in a bounded heap (margin descending, then row: cleanlab's order). When label issues come next after a
 * summary pass 1 (the evaluation's way), pass 2 fills these heaps itself, sized from the confident guesses pass 1
 * decides (and the few rows it does not, scored again on their own: see {@link StreamedJudgement.provisionalPrune}),
 * and counts the APs beside them. Otherwise the heaps are filled from
 * pass 2's candidates when asked for: a row lacking j has p_j at most its smallest candidate, so when no such bound
 * can beat the heap's last entry the pair is decided. 3. For the classes whose pass-2 heaps turn out too small or
 * with an undecided pair (all of them without candidates or pass-2 heaps), and subsets asked for after pass 2 or left
 * to it: a third pass prunes them from the exact scores and counts those APs.
 * Every result equals the in-memory path's (the same float32 probabilities, the same integer counts, the same
 * float64 arithmetic in the same order): checked by test/unit/streamedJudgement.test.ts on both paths.
 */
import { throwIfAborted } from './errors';
import { releaseYoungGarbage } from './memLog';
import { EmbeddingRows } from './duplicates';
import { effectiveKs, metricsFromRows, type RowPassData } from './metrics';
import { float32PatternAtLeast, FLOATING_POINT_COMPARISON, jointFromGuesses, MIN_EXAMPLES_PER_CLASS, orderLabelIssues, pruneCountMatrix, scoresOf, thresholdsFromSelf, type RowScanData } from './labelIssues';
import { ProbabilityMatrix, type SharedProbabilityMatrix } from './probabilities';
import { sharedInt32, toSharedInt32 } from './parallel';
import { StreamingAveragePrecision } from './retrieval';
import { rowsPerUnitFor, runBlockParts, startBlockParts, streamedThreads, type BlockPart } from './streamedBlockJob';
import { holdZeroShotHead, holdZeroShotScan, holdZeroShotSummary, summaryOfProbabilities, topKIndices, zeroShotBlock, zeroShotScanBlock, zeroShotSummaryBlock, type ClassEmbeddings, type ImageRows } from './zeroShot';
import type { LabelIssue, Metrics } from './report';

/** Blocks of EmbeddingRows scored per zero-shot product (4 x 1,024 rows). */
export const SCORE_BLOCKS = 4;
/** Rows per zero-shot product. */
export const SCORE_SPAN_ROWS = SCORE_BLOCKS * EmbeddingRows.blockRows;

/**
 * The zero-shot probabilities of every row with an embedding, SCORE_SPAN_ROWS rows of EmbeddingRows at a time
 * (rows without one skipped): `onBlock(index, probs)` gets the sample indices of the block and their probabilities
 * (index.length x K, row-major; valid during the call). The held path scores through here too, so both paths see
 * the same blocks and so the same probabilities.
 */
export async function forEachScoredBlock(
  rows: EmbeddingRows,
  classEmbeddings: ClassEmbeddings,
  logitScale: number,
  onBlock: (index: number[], probs: Float32Array) => void,
  signal?: AbortSignal,
  engine: 'auto' | 'js' | 'onnx' = 'auto',
): Promise<void> {
  const dim = classEmbeddings.dim;
  if (rows.dim !== dim) return; // no embedding at all (rows.dim 0)
  await forEachPackedBlock(rows, (packed, index) => zeroShotBlock(packed, index.length, classEmbeddings, logitScale, engine), onBlock, signal, true);
}

/**
 * The rows with an embedding, SCORE_SPAN_ROWS rows of EmbeddingRows at a time, packed (rows without one skipped) and
 * handed to `product`: as float16 patterns and float32 scales when the rows allow it (EmbeddingRows.halfBlocks: the
 * zero-shot graphs make the same float32 rows inside ONNX Runtime, so this thread decodes nothing), else decoded to
 * float32; `onBlock(index, result)` gets the sample indices of the block and the product's result. The next block is
 * packed and its product started before `onBlock` handles the current one.
 */
async function forEachPackedBlock<R>(rows: EmbeddingRows, product: (packed: ImageRows, index: number[]) => Promise<R>, onBlock: (index: number[], result: R) => void, signal?: AbortSignal, wholeRows = false): Promise<void> {
  const dim = rows.dim;
  const span = SCORE_SPAN_ROWS;
  const half = rows.halfBlocks;
  const buffers: ImageRows[] = half
    ? [0, 1].map(() => ({ bits: new Uint16Array(span * dim), scales: new Float32Array(span) }))
    : [new Float32Array(span * dim), new Float32Array(span * dim)];
  let turn = 0;
  /** Packs the rows with an embedding of span `start` into the next buffer; null when it has none. */
  const pack = (start: number): { index: number[]; packed: ImageRows } | null => {
    const packed = buffers[turn] as ImageRows;
    turn ^= 1;
    const end = Math.min(rows.n, start + span);
    if (packed instanceof Float32Array) rows.copyRows(start, end, packed);
    else rows.copyHalfRows(start, end, packed.bits, packed.scales);
    const index: number[] = [];
    for (let i = start; i < end; i++) {
      if (!rows.has[i]) continue;
      const to = index.length;
      const from = i - start;
      if (from !== to) {
        if (packed instanceof Float32Array) packed.copyWithin(to * dim, from * dim, (from + 1) * dim);
        else {
          packed.bits.copyWithin(to * dim, from * dim, (from + 1) * dim);
          packed.scales[to] = packed.scales[from] as number;
        }
      }
      index.push(i);
    }
    if (index.length === 0) {
      turn ^= 1; // the buffer is free again
      return null;
    }
    return { index, packed };
  };
  const run = (job: { index: number[]; packed: ImageRows }): Promise<R> => {
    const result = product(job.packed, job.index);
    // Surface a failure at its await, without an unhandled rejection meanwhile.
    result.catch(() => undefined);
    return result;
  };
  let start = 0;
  const nextPack = () => {
    for (; start < rows.n; ) {
      const job = pack(start);
      start += span;
      if (job) return job;
    }
    return null;
  };
  // onnxruntime-node's session.run is synchronous on this thread (inside a setImmediate), so the decode of the next
  // span does not overlap the current product: it only keeps the order of the work simple.
  let current = nextPack();
  let currentResult = current ? run(current) : null;
  while (current && currentResult) {
    throwIfAborted(signal);
    const next = nextPack();
    const result = await currentResult;
    const nextResult = next ? run(next) : null;
    onBlock(current.index, result);
    current = next;
    currentResult = nextResult;
    // The block's whole probabilities (ONNX Runtime's output) are garbage now: freed while young (see memLog.ts).
    if (wholeRows) releaseYoungGarbage();
  }
}

/** Pass 1's per-sample output when the probabilities themselves are not wanted: each scored sample's top-t. */
export interface TopOfSample {
  t: number;
  /** classes[at .. at + count) and scores[at .. at + count) (count <= t, best first; valid during the call). */
  set: (sample: number, classes: Int32Array, scores: Float32Array, at: number, count: number) => void;
}

export interface StreamedJudgementInput {
  rows: EmbeddingRows;
  classEmbeddings: ClassEmbeddings;
  logitScale: number;
  classes: string[];
  /** Row of each sample in the evaluated rows, -1 for a sample not evaluated (no embedding or a label not a class). */
  rowOfSample: Int32Array;
  /** Labels (class indices) of the evaluated rows. */
  labels: number[];
  signal?: AbortSignal;
  engine?: 'auto' | 'js' | 'onnx';
  /**
   * Other classes kept per row in pass 2 as candidates of the prune (its largest scores besides the label's;
   * default {@link PRUNE_CANDIDATES}): the prune is decided from them when they provably suffice, else by pass 3.
   */
  pruneCandidates?: number;
}

/**
 * Default of StreamedJudgementInput.pruneCandidates: none. Measured at 1,000,000 x 512 x 1,000
 * (tools/bench-zeroshot.ts --streamed, docs/benchmarks.md), 16 candidates a row decided the prune of 998 of the
 * 1,000 classes: the third pass still ran, and keeping them cost pass 2 about 7 s of CPU. Tests set it.
 */
export const PRUNE_CANDIDATES = 0;

interface PendingAp {
  indices: number[] | undefined;
  metrics: Metrics[];
}

/**
 * The judgement of one evaluation in passes over recomputed blocks (see the module comment). Use: {@link firstPass}
 * (top-K per sample on the way), {@link metrics} for all rows and for every subset (their APs come with the next
 * pass), {@link secondPass}, then {@link labelIssues} (a third pass only when needed) and
 * {@link finishAveragePrecision} (a pass only for subsets asked for after pass 2 and not served since).
 */
export class StreamedJudgement {
  readonly n: number;
  readonly k: number;
  /** Passes over the blocks so far (each one zero-shot product of every row). */
  passes = 0;
  private readonly pred: Int32Array;
  private readonly rank: Int32Array;
  private readonly self: Int32Array;
  private readonly p1: Float32Array | null;
  private guess: Int32Array | null = null;
  /**
   * The prune made by pass 2 (see provisionalPrune): classes with heaps, rows scored again to size them, heap
   * entries, and classes pass 3 pruned again.
   */
  readonly prunedInPass2 = { classes: 0, rescored: 0, slots: 0, again: 0 };
  /** The prune's heaps filled by pass 2 (see provisionalPrune), until labelIssues takes them. */
  private provisional: PruneHeaps | null = null;
  private argmax: Int32Array | null = null;
  private maxOther: Int32Array | null = null;
  /**
   * Pass 1 ran on the row summaries ({@link summaryPass}): argmax (pred) and maxOther are known, and pass 2 counts the
   * confident classes inside ONNX Runtime instead of scanning the rows in JavaScript.
   */
  private summarised = false;
  /** Per row, the T largest scores among the classes other than its label (descending) and their classes (-1: none). */
  private candClass: Int32Array | null = null;
  private candValue: Float32Array | null = null;
  private readonly candidates: number;
  private readonly pending: PendingAp[] = [];
  private readonly labelArray: Int32Array;
  /** Helper threads share each block's work (streamedBlockJob.ts): the block is then copied to shared memory. */
  private readonly threaded: boolean;
  private readonly sharedBlocks: (Float32Array | undefined)[] = [undefined, undefined];
  private sharedTurn = 0;

  constructor(private readonly input: StreamedJudgementInput) {
    this.n = input.labels.length;
    this.k = input.classes.length;
    // Outputs and inputs of the block jobs live in shared memory, so that helper threads read and write them.
    this.pred = sharedInt32(this.n);
    this.rank = sharedInt32(this.n);
    this.self = sharedInt32(this.n);
    this.p1 = this.k === 2 ? new Float32Array(this.n) : null;
    this.labelArray = toSharedInt32(input.labels);
    this.threaded = streamedThreads() > 1;
    this.candidates = Math.max(0, Math.min(input.pruneCandidates ?? PRUNE_CANDIDATES, this.k - 1));
  }

  /**
   * One pass: each block's evaluated rows as a matrix (row r = evaluated row first + r), after `onSample(sample,
   * probs)` for every scored sample of the block.
   */
  private async pass(onBlock: (block: ProbabilityMatrix, first: number) => void, onSample?: (sample: number, probs: Float32Array) => void, share = this.threaded, scan?: PassScan): Promise<void> {
    const { rows, classEmbeddings, logitScale, rowOfSample, signal, engine } = this.input;
    const k = this.k;
    this.passes++;
    const onScored = (index: number[], probs: Float32Array) => {
      if (onSample) index.forEach((i, r) => onSample(i, probs.subarray(r * k, (r + 1) * k)));
      // The evaluated rows of the block: consecutive evaluated row numbers (samples in order); compacted when some
      // scored sample is not evaluated.
      let m = 0;
      let first = -1;
      let contiguous = true;
      index.forEach((i, r) => {
        const row = rowOfSample[i] as number;
        if (row < 0) return;
        if (first < 0) first = row;
        if (r !== m) contiguous = false;
        m++;
      });
      if (m === 0) return;
      let data = probs;
      if (!contiguous || (share && !(probs.buffer instanceof SharedArrayBuffer))) {
        // Compacted, and in shared memory when helper threads are to read it (a copy: ONNX Runtime's output is not).
        // Two shared buffers in turn: a block's counting may still run on a helper while the next one is copied.
        if (share) data = this.sharedBlocks[(this.sharedTurn ^= 1)] ??= new Float32Array(new SharedArrayBuffer(4 * SCORE_SPAN_ROWS * k));
        else data = new Float32Array(m * k);
        if (contiguous) data.set(probs.subarray(0, m * k));
        else {
          let q = 0;
          index.forEach((i, r) => {
            if ((rowOfSample[i] as number) >= 0) data.set(probs.subarray(r * k, (r + 1) * k), k * q++);
          });
        }
      }
      const desc: SharedProbabilityMatrix = { numClasses: k, rowsPerChunk: m, length: m, chunks: [data.subarray(0, m * k)] };
      onBlock(ProbabilityMatrix.fromShared(desc), first);
    };
    if (!scan) return forEachScoredBlock(rows, classEmbeddings, logitScale, onScored, signal, engine);
    const dim = classEmbeddings.dim;
    if (rows.dim !== dim) return;
    await forEachPackedBlock(
      rows,
      (packed, index) => zeroShotScanBlock(packed, index.length, classEmbeddings, logitScale, scan.cut, scan.probs, engine),
      (index, s) => {
        scan.onCounts(index, s.confident);
        if (s.probs) onScored(index, s.probs);
      },
      signal,
      scan.probs,
    );
  }

  /**
   * Pass 1: per evaluated row argmax, rank of the label, label score; `onSample` gets every scored sample's row. With
   * `top` instead (no sample's whole row wanted) the rows are reduced inside ONNX Runtime (zeroShotSummaryBlock: the
   * m x K probabilities of a block are never copied out; the same values), and `top.set` gets each scored sample's
   * top-t.
   */
  async firstPass(onSample: (sample: number, probs: Float32Array) => void, top?: TopOfSample): Promise<void> {
    if (top && !this.p1) return this.summaryPass(top);
    const { pred, rank, self, p1, labelArray } = this;
    // One read per value: cheap next to the product; shared with the helpers only when forced (tests: the copy of
    // each block to shared memory would cost about what they save).
    const share = this.threaded && streamedRowPassShared;
    await this.pass((block, first) => {
      const m = block.length;
      const data: RowPassData = {
        matrix: block.shared(),
        labels: labelArray.subarray(first, first + m),
        indices: null,
        n: m,
        rowsPerUnit: rowsPerUnitFor(m),
        pred: pred.subarray(first, first + m),
        rank: rank.subarray(first, first + m),
        self: self.subarray(first, first + m),
      };
      runBlockParts([{ kind: 'rows', data, units: Math.ceil(m / data.rowsPerUnit) }], m * this.k, share);
      if (p1) for (let r = 0; r < m; r++) p1[first + r] = block.chunkOf(r)[block.offsetOf(r) + 1];
    }, (i, p) => {
      if (top) {
        const t = Math.min(top.t, this.k);
        const cls = Int32Array.from(topKIndices(p, t));
        top.set(i, cls, Float32Array.from(cls, (c) => p[c] as number), 0, cls.length);
      } else onSample(i, p);
    }, share);
  }

  /** Pass 1 on the row summaries (see {@link firstPass}). */
  private async summaryPass(top: TopOfSample): Promise<void> {
    const { rows, classEmbeddings, logitScale, rowOfSample, signal, engine } = this.input;
    const { pred, rank, labelArray, k } = this;
    const selfValue = new Float32Array(this.self.buffer, this.self.byteOffset, this.n);
    // maxOther (the largest score besides the label's) is the top-1 score when the argmax (the first maximum) is not
    // the label (then the maximum is reached off the label), else the top-2 score (the second largest value, ties
    // included): so at least the top-2 is asked for, and the caller gets its top-t of it.
    const maxOther = sharedInt32(this.n).fill(-1); // -1: no other class (k = 1), as rowScanUnit leaves it
    const maxOtherValue = new Float32Array(maxOther.buffer, maxOther.byteOffset, this.n);
    const wanted = Math.min(top.t, k);
    const dim = classEmbeddings.dim;
    this.summarised = true;
    this.maxOther = maxOther;
    if (rows.dim !== dim) return;
    this.passes++;
    // Pass 1 holds the summary session; once over, its memory arena goes (passes 2 and 3 use other graphs).
    const letGo = holdZeroShotSummary();
    try {
      await forEachPackedBlock(
        rows,
        async (packed, index) => {
          const m = index.length;
          // A scored sample that is not evaluated (its label is not a class) gets its top-t only: any label will do.
          const labels = BigInt64Array.from(index, (i) => {
            const row = rowOfSample[i] as number;
            return BigInt(row >= 0 ? (labelArray[row] as number) : 0);
          });
          const images = packed;
          const t = Math.max(2, top.t);
          const inside = await zeroShotSummaryBlock(images, m, classEmbeddings, logitScale, labels, t, engine);
          return inside ?? summaryOfProbabilities(await zeroShotBlock(images, m, classEmbeddings, logitScale, engine), m, k, labels, t);
        },
        (index, s) => {
          const t = s.t;
          index.forEach((i, r) => {
            top.set(i, s.topClasses, s.topScores, r * t, wanted); // no views: two a sample, a million samples
            const row = rowOfSample[i] as number;
            if (row < 0) return;
            const arg = s.argmax[r] as number;
            pred[row] = arg;
            rank[row] = s.rank[r] as number;
            selfValue[row] = s.self[r] as number;
            if (arg !== labelArray[row]) maxOtherValue[row] = s.topScores[r * t] as number;
            else if (t >= 2) maxOtherValue[row] = s.topScores[r * t + 1] as number;
          });
        },
        signal,
      );
    } finally {
      await letGo();
    }
  }

  /**
   * Metrics of the evaluated rows `indices` (increasing; default all), as computeMetrics gives them over the matrix.
   * Everything but the APs is known after the first pass; the APs are filled in (in the returned object) by the next
   * pass: {@link secondPass} or {@link labelIssues}, or {@link finishAveragePrecision}.
   */
  metrics(ks: number[], indices?: number[]): Metrics {
    const { classes } = this.input;
    const n = indices ? indices.length : this.n;
    const pred = indices ? Int32Array.from(indices, (i) => this.pred[i] as number) : this.pred;
    const rank = indices ? Int32Array.from(indices, (i) => this.rank[i] as number) : this.rank;
    const p1 = this.p1;
    const m = metricsFromRows(classes, this.labelArray, indices, effectiveKs(ks, this.k), pred.subarray(0, n), rank.subarray(0, n), p1 ? (i) => p1[i] as number : null, new Array(this.k).fill(null));
    const same = this.pending.find((p) => sameRows(p.indices, indices));
    if (same) same.metrics.push(m);
    else this.pending.push({ indices: indices ? indices.slice() : undefined, metrics: [m] });
    return m;
  }

  /**
   * The AP accumulators of the subsets waiting for one, fed blocks of up to `blockRows` rows; patches their metrics
   * when done.
   */
  private averagePrecisionDue(blockRows = SCORE_SPAN_ROWS): { due: boolean; add: (block: ProbabilityMatrix, first: number) => void; parts: (block: ProbabilityMatrix, first: number) => BlockPart[]; finish: () => void } {
    const due = this.pending.splice(0);
    const acc = due.map((p) => new StreamingAveragePrecision(this.k, this.labelArray, this.self, p.indices, blockRows, this.threaded));
    const parts = (block: ProbabilityMatrix, first: number): BlockPart[] => {
      const out: BlockPart[] = [];
      for (const a of acc) {
        const data = a.counting(block.shared(), first);
        if (data) out.push({ kind: 'count', data });
      }
      return out;
    };
    return {
      due: due.length > 0,
      parts,
      add: (block, first) => {
        const ps = parts(block, first);
        runBlockParts(ps, countWork(ps, block), this.threaded && block.inSharedMemory);
      },
      finish: () =>
        due.forEach((p, t) => {
          const ap = (acc[t] as StreamingAveragePrecision).result();
          for (const m of p.metrics) m.perClass.forEach((c, j) => (c.averagePrecision = ap[j] as number | null));
        }),
    };
  }

  /**
   * Pass 2: cleanlab's per-row scan against the per-class thresholds, and the APs asked for so far, unless they are
   * left to pass 3 (see {@link apInPass3}: `labelIssuesNext` says {@link labelIssues} is called next).
   */
  async secondPass(labelIssuesNext = false): Promise<void> {
    const k = this.k;
    const thresholds = thresholdsFromSelf(this.labelArray, k, this.self);
    const cut = sharedInt32(k);
    thresholds.forEach((t, c) => (cut[c] = float32PatternAtLeast(t - FLOATING_POINT_COMPARISON)));
    const guess = sharedInt32(this.n);
    const T = this.candidates;
    const candClass = new Int32Array(this.n * T).fill(-1);
    const candValue = new Float32Array(this.n * T);
    this.candClass = candClass;
    this.candValue = candValue;
    // Label issues next, after a summary pass 1: the prune's heaps are sized from pass 1 and filled in this pass, the
    // APs counted beside them, so that no third product runs (see provisionalPrune).
    const provisional = labelIssuesNext && this.summarised && T === 0 ? await this.provisionalPrune(cut) : null;
    if (provisional) return this.countingPass(cut, guess, this.averagePrecisionDue(BlockPairs.rows), provisional);
    const ap = this.apInPass3(labelIssuesNext, cut) ? NO_AVERAGE_PRECISION : this.averagePrecisionDue();
    if (this.summarised) return this.countingPass(cut, guess, ap);
    const argmax = sharedInt32(this.n);
    const maxOther = sharedInt32(this.n);
    await this.pass((block, first) => {
      const m = block.length;
      const d = block.chunkOf(0);
      if (T > 0) for (let r = 0; r < m; r++) keepLargest(d, r * k, k, this.labelArray[first + r] as number, T, candClass, candValue, (first + r) * T);
      const data: RowScanData = {
        matrix: block.shared(),
        labels: this.labelArray.subarray(first, first + m),
        cut,
        rowsPerUnit: rowsPerUnitFor(m),
        guess: guess.subarray(first, first + m),
        argmax: argmax.subarray(first, first + m),
        maxOther: maxOther.subarray(first, first + m),
      };
      // The AP counting and the scan of the block in one job (on the helper threads too).
      const parts = ap.parts(block, first);
      const work = countWork(parts, block) + m * k;
      parts.push({ kind: 'scan', data, units: Math.ceil(m / data.rowsPerUnit) });
      runBlockParts(parts, work, this.threaded && block.inSharedMemory);
    });
    ap.finish();
    this.guess = guess;
    this.argmax = argmax;
    this.maxOther = maxOther;
  }

  /**
   * Whether pass 2 leaves the APs due to pass 3, which then counts them beside the prune's offers ({@link BlockPairs}),
   * when pass 2 does not make the prune itself (see {@link provisionalPrune}: no room for its heaps):
   * after a summary pass 1 without prune candidates, pass 2 then copies no probabilities out of ONNX Runtime at all
   * (its confident counts come from inside), so the blocks' whole probabilities are copied out once instead of twice
   * (with BlockPairs and the scavenges after each block, passes 2 and 3 at 1,000,000 x 1,000 went from 24.5 to about
   * 19.5 s, docs/benchmarks.md). Only when label issues come next and pass 3 will run: predicted from pass 1, by a row
   * whose argmax is confident and not its label (an off-diagonal count in cleanlab's confident joint) in a class of
   * more than MIN_EXAMPLES_PER_CLASS rows. A wrong guess costs one product for the APs (labelIssues or
   * finishAveragePrecision run it), never a result.
   */
  private apInPass3(labelIssuesNext: boolean, cut: Int32Array): boolean {
    const { pred, labelArray: labels, maxOther, k, n } = this;
    if (!labelIssuesNext || !this.summarised || this.candidates > 0 || this.pending.length === 0 || !maxOther) return false;
    const size = this.classSizes();
    // pass 1 left the argmax's score in maxOther when the argmax is not the label; cut as float32 is each class's
    // smallest confident score.
    const score = new Float32Array(maxOther.buffer, maxOther.byteOffset, n);
    const least = new Float32Array(cut.buffer, cut.byteOffset, k);
    for (let i = 0; i < n; i++) {
      const c = labels[i] as number;
      const j = pred[i] as number;
      if (j !== c && (size[c] as number) > MIN_EXAMPLES_PER_CLASS && (score[i] as number) >= (least[j] as number)) return true;
    }
    return false;
  }

  /**
   * The prune's heaps for pass 2 to fill beside its confident counts, sized from pass 1, or null when pass 3 would be
   * as cheap (nothing to prune) or the heaps would hold too much memory (more than {@link PROVISIONAL_SLOTS} entries).
   * A row whose argmax is confident counts at its argmax in cleanlab's confident joint (one confident class is the
   * argmax; several count at the argmax), and one whose largest score is below every cut at none: pass 1 decides
   * those. The others (0.5% of a million random rows, 42% of the aligned bench set's) are scored again on their own
   * ({@link guessesOf}): a product of those rows alone costs less than a third pass. The heaps get the prune of that
   * joint ({@link prunePairs}, as labelIssues makes it from the exact one). labelIssues checks every exact count
   * against them, and a class whose count exceeds its heap is pruned again by a third pass: the sizes decide the
   * cost, never the result.
   */
  private async provisionalPrune(cut: Int32Array): Promise<PruneHeaps | null> {
    const { pred, labelArray: labels, maxOther, k, n } = this;
    if (!maxOther || n === 0 || k < 3) return null;
    const selfValue = new Float32Array(this.self.buffer, this.self.byteOffset, n);
    const other = new Float32Array(maxOther.buffer, maxOther.byteOffset, n);
    const least = new Float32Array(cut.buffer, cut.byteOffset, k);
    let lowest = Infinity;
    for (let c = 0; c < k; c++) lowest = Math.min(lowest, least[c] as number);
    const estimate = new Int32Array(n);
    const open: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = labels[i] as number;
      const a = pred[i] as number;
      const top = a === c ? (selfValue[i] as number) : (other[i] as number);
      if (top >= (least[a] as number)) {
        estimate[i] = a;
        continue;
      }
      estimate[i] = -1;
      if (top >= lowest) open.push(i);
    }
    if (open.length > n * PROVISIONAL_RESCORED) return null;
    await this.guessesOf(Int32Array.from(open), least.slice(), estimate);
    const { pairs, slots } = this.prunePairs(estimate);
    if (provisionalShort) {
      // Tests: every other class's heaps half as large, so that pass 3 prunes those classes again.
      let q = 0;
      for (let p = 0; p < pairs.length; p++) {
        const count = (pairs.count[p] as number) >> ((pairs.c[p] as number) % 2);
        if (count <= 0) continue;
        pairs.c[q] = pairs.c[p] as number;
        pairs.j[q] = pairs.j[p] as number;
        pairs.count[q++] = count;
      }
      pairs.length = q;
    }
    if (pairs.length === 0 || slots > provisionalSlots) return null;
    const heaps = new PruneHeaps(k, pairs);
    let classes = 0;
    for (let c = 0; c < k; c++) if (heaps.ofClass(c) > 0) classes++;
    Object.assign(this.prunedInPass2, { classes, rescored: open.length, slots });
    return heaps;
  }

  /**
   * cleanlab's prune for the confident guesses `guess` (calibrated joint, prune counts): per class of more than
   * MIN_EXAMPLES_PER_CLASS rows, the other classes j with a count below the class's rows (its rows with the `count`
   * largest margins p_j - p_c are flagged: a heap each), and the classes with a count reaching their rows (all their
   * rows flagged); `slots`, the heaps' entries in all.
   */
  private prunePairs(guess: Int32Array): { pairs: PrunePairs; flagAll: Uint8Array; slots: number } {
    const { labelArray: labels, k } = this;
    const prune = pruneCountMatrix(jointFromGuesses(labels, k, guess, true), MIN_EXAMPLES_PER_CLASS);
    const size = this.classSizes();
    const pairs = { c: new Int32Array(k * (k - 1)), j: new Int32Array(k * (k - 1)), count: new Int32Array(k * (k - 1)), length: 0 };
    const flagAll = new Uint8Array(k);
    let slots = 0;
    for (let c = 0; c < k; c++) {
      const m = size[c] as number;
      if (m <= MIN_EXAMPLES_PER_CLASS) continue;
      for (let j = 0; j < k; j++) {
        if (j === c) continue;
        const count = (prune[j] as number[])[c] as number;
        if (count <= 0) continue;
        if (count >= m) flagAll[c] = 1;
        else {
          pairs.c[pairs.length] = c;
          pairs.j[pairs.length] = j;
          pairs.count[pairs.length++] = count;
          slots += count;
        }
      }
    }
    return { pairs, flagAll, slots };
  }

  /**
   * The confident guesses (pass 2's, from the confident count) of the evaluated rows `which` (increasing) into
   * `into`, from a product of those rows alone: an estimate (a row's scores in another block may differ in their last
   * bits), used only to size the prune's heaps.
   */
  private async guessesOf(which: Int32Array, cut: Float32Array, into: Int32Array): Promise<void> {
    if (which.length === 0) return;
    const { rows, classEmbeddings, logitScale, rowOfSample, engine } = this.input;
    const dim = rows.dim;
    if (dim !== classEmbeddings.dim) return;
    const sampleOf = new Int32Array(this.n);
    rowOfSample.forEach((row, i) => {
      if (row >= 0) sampleOf[row] = i;
    });
    const span = SCORE_SPAN_ROWS;
    const half = rows.halfBlocks;
    const images: ImageRows = half ? { bits: new Uint16Array(span * dim), scales: new Float32Array(span) } : new Float32Array(span * dim);
    for (let s = 0; s < which.length; s += span) {
      const m = Math.min(span, which.length - s);
      for (let q = 0; q < m; q++) {
        const i = sampleOf[which[s + q] as number] as number;
        if (images instanceof Float32Array) rows.copyRows(i, i + 1, images.subarray(q * dim, (q + 1) * dim));
        else rows.copyHalfRows(i, i + 1, images.bits.subarray(q * dim, (q + 1) * dim), images.scales.subarray(q, q + 1));
      }
      const { confident } = await zeroShotScanBlock(images, m, classEmbeddings, logitScale, cut, false, engine);
      for (let q = 0; q < m; q++) {
        const row = which[s + q] as number;
        const count = confident[2 * q] as number;
        into[row] = count === 0 ? -1 : count === 1 ? (confident[2 * q + 1] as number) : (this.pred[row] as number);
      }
    }
  }

  private sizes: Int32Array | null = null;
  /** Evaluated rows per class (made once). */
  private classSizes(): Int32Array {
    if (this.sizes) return this.sizes;
    const size = new Int32Array(this.k);
    for (let i = 0; i < this.n; i++) size[this.labelArray[i] as number]++;
    return (this.sizes = size);
  }

  /** Pass 2's per-row scan (tests: against labelIssues.ts scanRows on the held matrix); null before it. */
  rowScan(): { guess: Int32Array; argmax: Int32Array; maxOther: Int32Array } | null {
    const { guess, argmax, maxOther } = this;
    return guess && argmax && maxOther ? { guess, argmax, maxOther } : null;
  }

  /**
   * Pass 2 after {@link summaryPass}: argmax and maxOther came with pass 1, so the scan needs per row only how many
   * classes are confident and, when one is, which: counted inside ONNX Runtime (zeroShotScanBlock), the rows' whole
   * probabilities copied out only for the APs and the prune candidates. guess as rowScanUnit gives it: -1 when no
   * class is confident, the confident class when one is, else the argmax.
   */
  private async countingPass(cut: Int32Array, guess: Int32Array, ap: ReturnType<StreamedJudgement['averagePrecisionDue']>, provisional?: PruneHeaps): Promise<void> {
    const { k, pred, labelArray } = this;
    const { rowOfSample } = this.input;
    const T = this.candidates;
    const candClass = this.candClass as Int32Array;
    const candValue = this.candValue as Float32Array;
    const counting: { finish: (() => void) | null } = { finish: null };
    const scan: PassScan = {
      cut: new Float32Array(cut.buffer, cut.byteOffset, k).slice(),
      probs: ap.due || T > 0 || provisional !== undefined,
      onCounts: (index, confident) =>
        index.forEach((i, r) => {
          const row = rowOfSample[i] as number;
          if (row < 0) return;
          const count = confident[2 * r] as number;
          guess[row] = count === 0 ? -1 : count === 1 ? (confident[2 * r + 1] as number) : (pred[row] as number);
        }),
    };
    // Pass 2 holds the scan session; once over, its memory arena goes (pass 3 uses the plain head).
    const letGo = holdZeroShotScan();
    if (provisional) {
      // The prune's offers and the APs in pass 3's way (BlockPairs), beside the confident counts.
      try {
        await this.pruningPass(provisional, null, ap, scan);
      } finally {
        await letGo();
      }
      ap.finish();
      this.guess = guess;
      this.argmax = pred;
      this.provisional = provisional;
      return;
    }
    try {
      await this.pass(
        (block, first) => {
          const m = block.length;
          const d = block.chunkOf(0);
          if (T > 0) for (let r = 0; r < m; r++) keepLargest(d, r * k, k, labelArray[first + r] as number, T, candClass, candValue, (first + r) * T);
          const parts = ap.parts(block, first);
          // The AP counting of this block goes to the helper threads while this thread runs the next block's product
          // (session.run holds it); the previous block's, into the same histograms, is finished first. The block's
          // probabilities stay in their own shared buffer until then (pass() alternates two).
          counting.finish?.();
          counting.finish = parts.length > 0 ? startBlockParts(parts, countWork(parts, block), this.threaded && block.inSharedMemory) : null;
        },
        undefined,
        this.threaded && ap.due,
        scan,
      );
      counting.finish?.();
    } finally {
      await letGo();
    }
    ap.finish();
    this.guess = guess;
    this.argmax = pred;
  }

  /**
   * Fills the prune heaps from pass 2's candidates; returns per class 1 when some pair of it is not decided by them
   * (pass 3 then prunes the class from the exact scores).
   */
  private pruneFromCandidates(heaps: PruneHeaps, selfValue: Float32Array): Uint8Array {
    const { k, n, labelArray: labels, candidates: T } = this;
    const candClass = this.candClass as Int32Array;
    const candValue = this.candValue as Float32Array;
    const redo = new Uint8Array(k);
    if (T === 0) {
      for (let c = 0; c < k; c++) redo[c] = heaps.ofClass(c) > 0 ? 1 : 0;
      return redo;
    }
    // Per heap: the largest bound of a row lacking its class, and the lowest such row at that bound.
    const maxBound = new Float64Array(heaps.count).fill(-Infinity);
    const boundRow = new Int32Array(heaps.count).fill(-1);
    for (let i = 0; i < n; i++) {
      const c = labels[i] as number;
      const h0 = heaps.first[c] as number;
      const h1 = heaps.first[c + 1] as number;
      if (h0 === h1) continue;
      const pc = selfValue[i] as number;
      const at = i * T;
      for (let h = h0; h < h1; h++) {
        const j = heaps.j[h] as number;
        let q = 0;
        while (q < T && candClass[at + q] !== j) q++;
        if (q < T) heaps.offer(h, (candValue[at + q] as number) - pc, i);
        else {
          // Every class but the label's is a candidate when T = k - 1: then q < T always.
          const bound = (candValue[at + T - 1] as number) - pc;
          if (bound > (maxBound[h] as number)) {
            maxBound[h] = bound;
            boundRow[h] = i;
          }
        }
      }
    }
    for (let c = 0; c < k; c++) {
      for (let h = heaps.first[c] as number; h < (heaps.first[c + 1] as number); h++) {
        const row = boundRow[h] as number;
        if (row >= 0 && !heaps.excludes(h, maxBound[h] as number, row)) redo[c] = 1;
      }
    }
    return redo;
  }

  /**
   * A pass making the prune's offers (rows of the classes marked in `classes`, all when null) and counting the APs of
   * `ap` two blocks at a time (BlockPairs); with `scan`, pass 2's confident counts on the way.
   */
  private async pruningPass(heaps: PruneHeaps, classes: Uint8Array | null, ap: ReturnType<StreamedJudgement['averagePrecisionDue']>, scan?: PassScan): Promise<void> {
    const { k, labelArray: labels, n } = this;
    const selfValue = new Float32Array(this.self.buffer, this.self.byteOffset, n);
    const bar = heaps.bar;
    const pairs = new BlockPairs(ap, k, this.threaded);
    // The offers of rows first .. first + m - 1 (rows in increasing order, as the heaps' ties need).
    const offers = (block: ProbabilityMatrix, first: number) => {
      const m = block.length;
      const d = block.chunkOf(0);
      for (let r = 0; r < m; r++) {
        const i = first + r;
        const c = labels[i] as number;
        if (classes && !classes[c]) continue;
        const pc = selfValue[i] as number;
        const o = r * k;
        const h1 = heaps.first[c + 1] as number;
        for (let h = heaps.first[c] as number; h < h1; h++) {
          const v = (d[o + (heaps.j[h] as number)] as number) - pc;
          if (v > (bar[h] as number)) heaps.offer(h, v, i);
        }
      }
    };
    // A block held for its pair's AP counting has its offers made beside that counting (it stays intact until
    // then), not alone while the helpers have nothing to do.
    const waiting: { block: ProbabilityMatrix; first: number }[] = [];
    await this.pass(
      (block, first) => {
        // The AP counting of the pair on the helper threads while this thread makes the offers, then with them.
        const finish = pairs.add(block, first);
        waiting.push({ block, first });
        if (pairs.holds(block)) return;
        for (const w of waiting.splice(0)) offers(w.block, w.first);
        finish();
      },
      undefined,
      this.threaded && ap.due, // blocks copied to shared memory only for AP counting on the helpers
      scan,
    );
    for (const w of waiting.splice(0)) offers(w.block, w.first);
    pairs.flush();
  }

  /** A pass for the APs still due (none when there are none). */
  async finishAveragePrecision(): Promise<void> {
    if (this.pending.length === 0) return;
    const ap = this.averagePrecisionDue();
    await this.pass(ap.add);
    ap.finish();
  }

  /**
   * cleanlab's find_label_issues with its defaults (labelIssues.ts findLabelIssues), ranked by self-confidence;
   * `index` = evaluated row. The prune comes from pass 2's heaps or candidates; a third pass runs for the classes they
   * do not decide and for the APs still due. Needs {@link secondPass}.
   */
  async labelIssues(): Promise<LabelIssue[]> {
    const { guess, argmax, maxOther, labelArray: labels, self, k, n } = this;
    if (!guess || !argmax || !maxOther) throw new Error('StreamedJudgement: labelIssues before secondPass');
    const { classes } = this.input;
    if (n === 0) return [];
    const flagged = new Uint8Array(n);
    // Per given class c: the other classes j with rows to flag, each with a heap of its best (margin, row) so far.
    const { pairs, flagAll } = this.prunePairs(guess);
    const heaps = new PruneHeaps(k, pairs);
    const selfValue = new Float32Array(self.buffer, self.byteOffset, n);
    for (let i = 0; i < n; i++) if (flagAll[labels[i] as number]) flagged[i] = 1;
    // From the candidates of pass 2: a pair (c, j) is decided when every row of c whose candidates lack j (so p_j is
    // at most its smallest candidate) cannot beat the heap's last entry; the classes with an undecided pair are
    // pruned again by pass 3 from their rows' exact scores.
    const provisional = this.provisional;
    this.provisional = null;
    const redo = provisional ? heaps.takeFrom(provisional) : this.pruneFromCandidates(heaps, selfValue);
    if (provisional) redo.forEach((x) => (this.prunedInPass2.again += x));
    const ap = this.averagePrecisionDue(BlockPairs.rows);
    if (redo.some((x) => x === 1) || ap.due) {
      for (let c = 0; c < k; c++) if (redo[c]) heaps.emptyClass(c);
      // The last product of the judgement (a later one makes the session again): the head's memory arena goes
      // before the label issues are made.
      const letGo = holdZeroShotHead();
      try {
        await this.pruningPass(heaps, redo, ap);
      } finally {
        await letGo();
      }
    }
    ap.finish();
    heaps.flag(flagged);
    const mask = new Uint8Array(n);
    for (let i = 0; i < n; i++) if (flagged[i] && argmax[i] !== labels[i]) mask[i] = 1;
    const scores = scoresOf('self_confidence', self, maxOther, n, mask);
    return orderLabelIssues(mask, scores).map((index, r) => ({
      index,
      given: classes[labels[index] as number] as string,
      suggested: classes[argmax[index] as number] as string,
      score: scores[index] as number,
      rank: r + 1,
    }));
  }
}

/**
 * Keeps the T largest values of row d[o .. o + k) other than column `skip` (descending, ties to the lower column)
 * into cls/val at `at`.
 */
function keepLargest(d: Float32Array, o: number, k: number, skip: number, T: number, cls: Int32Array, val: Float32Array, at: number): void {
  let filled = 0;
  let bar = -Infinity; // the T-th value once full
  for (let j = 0; j < k; j++) {
    if (j === skip) continue;
    const v = d[o + j] as number;
    if (filled === T && !(v > bar)) continue;
    let q = filled < T ? filled++ : T - 1;
    while (q > 0 && (val[at + q - 1] as number) < v) {
      val[at + q] = val[at + q - 1] as number;
      cls[at + q] = cls[at + q - 1] as number;
      q--;
    }
    val[at + q] = v;
    cls[at + q] = j;
    if (filled === T) bar = val[at + T - 1] as number;
  }
}

/**
 * Feeds a pass's blocks to the AP accumulators two at a time: each class's look-up table then serves 8,192 rows per
 * load instead of 4,096 (at 1,000 classes the tables, about 24 MB, do not stay in cache from one block to the next
 * beside ONNX Runtime's product: pass 3 at 1,000,000 x 1,000 went from 14.7 to 13.8 s). A full block in shared
 * memory waits for the next one (pass() alternates two shared buffers, so it stays intact until the counting of the
 * pair, which the caller finishes before the next block is copied). The caller finishes each counting before the
 * next product rather than beside it: three threads on two cores cost more than the overlap gave (15.1-15.8 s).
 */
class BlockPairs {
  /** The most rows counted at once (the accumulators' tiles are made for it). */
  static readonly rows = 2 * SCORE_SPAN_ROWS;
  private held: { block: ProbabilityMatrix; first: number } | null = null;

  constructor(
    private readonly ap: { due: boolean; parts: (block: ProbabilityMatrix, first: number) => BlockPart[] },
    private readonly k: number,
    private readonly threaded: boolean,
  ) {}

  /**
   * Takes block `first ..`: starts the counting of the pair it completes (or of the block alone) on the helper
   * threads and returns the function that finishes it on this thread; holds a full block for the next one.
   */
  add(block: ProbabilityMatrix, first: number): () => void {
    if (!this.ap.due) return () => undefined;
    const held = this.held;
    this.held = null;
    if (held) {
      pairsCounted++;
      const chunks = [held.block.chunkOf(0), block.chunkOf(0).subarray(0, block.length * this.k)];
      return this.start(ProbabilityMatrix.fromShared({ numClasses: this.k, rowsPerChunk: SCORE_SPAN_ROWS, length: SCORE_SPAN_ROWS + block.length, chunks }), held.first);
    }
    if (block.length === SCORE_SPAN_ROWS && block.inSharedMemory) {
      this.held = { block, first };
      return () => undefined;
    }
    return this.start(block, first);
  }

  /** Whether `block` is the one held for the next (its pair's counting has not started). */
  holds(block: ProbabilityMatrix): boolean {
    return this.held?.block === block;
  }

  /** Counts a block still held (the pass is over). */
  flush(): void {
    const held = this.held;
    this.held = null;
    if (held) this.start(held.block, held.first)();
  }

  private start(block: ProbabilityMatrix, first: number): () => void {
    const parts = this.ap.parts(block, first);
    return parts.length > 0 ? startBlockParts(parts, countWork(parts, block), this.threaded && block.inSharedMemory) : () => undefined;
  }
}

let pairsCounted = 0;
/** Tests: block pairs counted together by {@link BlockPairs} so far in this thread. */
export function blockPairsCounted(): number {
  return pairsCounted;
}

/**
 * Heap entries (12 bytes each) pass 2 may hold for the prune ({@link StreamedJudgement.provisionalPrune}): 2^21, 24 MiB.
 * The exact counts of a million noisy rows (random labels, 1,000 classes) are about 550,000.
 */
export const PROVISIONAL_SLOTS = 1 << 21;

let provisionalSlots = PROVISIONAL_SLOTS;
let provisionalShort = false;
/**
 * Tests: the heap entries pass 2 may hold for the prune (0: none, the prune left to pass 3; undefined: the default),
 * and whether every other class's heaps are made half as large as pass 1 says.
 */
export function setProvisionalPrune(options: { slots?: number; short?: boolean }): void {
  provisionalSlots = options.slots ?? PROVISIONAL_SLOTS;
  provisionalShort = options.short ?? false;
}

/**
 * The most evaluated rows (a fraction) {@link StreamedJudgement.provisionalPrune} scores again to size the prune's
 * heaps; with more, the prune is left to pass 3 (a product of every row).
 */
export const PROVISIONAL_RESCORED = 0.6;

/** Prune heaps' pairs: the first `length` of (given class c, other class j, count), grouped by c, increasing. */
interface PrunePairs {
  c: Int32Array;
  j: Int32Array;
  count: Int32Array;
  length: number;
}

/** The AP accumulators when none are taken (pass 2 leaving them to pass 3). */
const NO_AVERAGE_PRECISION = { due: false, parts: (): BlockPart[] => [], add: (): void => undefined, finish: (): void => undefined };

/** Pass 2's confident counts: see StreamedJudgement.countingPass. */
interface PassScan {
  /** Per class, the smallest confident probability (cut patterns as float32). */
  cut: Float32Array;
  /** Whether the blocks' probabilities are wanted (onBlock runs only then). */
  probs: boolean;
  /** Per scored sample of a block (index): confident count and sum of the confident classes (2 per sample). */
  onCounts: (index: number[], confident: Float32Array) => void;
}

let streamedRowPassShared = false;
/** Tests: pass 1's per-row pass on the helper threads too (default: on the caller). */
export function shareStreamedRowPass(on: boolean): void {
  streamedRowPassShared = on;
}

/**
 * Values read by the AP counting parts of a block, weighted: counting a value (gather into the tile, table look-up,
 * three comparisons, histogram increment) costs several plain reads (see parallel.ts' work threshold).
 */
function countWork(parts: BlockPart[], block: ProbabilityMatrix): number {
  return 4 * parts.length * block.length * block.numClasses;
}

/** The same rows (undefined: all). */
function sameRows(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let t = 0; t < a.length; t++) if (a[t] !== b[t]) return false;
  return true;
}

/**
 * Per (given class c, other class j) pair, the `count` rows with the largest margins seen so far, ties to the lower
 * row (rows are offered in increasing order): one binary min-heap per pair whose root is the entry a newcomer must
 * beat (smallest margin, then highest row). All heaps live in a few flat arrays (a million pairs at a thousand
 * classes: one object each would hold hundreds of MB); heap h's entries are at start[h] .. start[h] + size[h].
 */
export class PruneHeaps {
  /** Heaps of class c: first[c] .. first[c + 1] - 1, in the order the pairs were given. */
  readonly first: Int32Array;
  readonly j: Int32Array;
  private readonly cap: Int32Array;
  private readonly start: Int32Array;
  private readonly size: Int32Array;
  private readonly margin: Float64Array;
  private readonly row: Int32Array;
  /**
   * Per heap, the margin an offer must exceed to enter: -Infinity until the heap is full, then its root's (a later row
   * ties to a lower rank). Read by the callers' loops, so that most offers cost one comparison and no call.
   */
  readonly bar: Float64Array;

  /** One heap per pair, `count` entries each. */
  constructor(k: number, pairs: PrunePairs) {
    const h = pairs.length;
    this.first = new Int32Array(k + 1);
    this.j = pairs.j.slice(0, h);
    this.cap = pairs.count.slice(0, h);
    this.start = new Int32Array(h);
    this.size = new Int32Array(h);
    let slots = 0;
    for (let q = 0; q < h; q++) {
      this.first[(pairs.c[q] as number) + 1] = q + 1;
      this.start[q] = slots;
      slots += pairs.count[q] as number;
    }
    for (let c = 1; c <= k; c++) this.first[c] = Math.max(this.first[c] as number, this.first[c - 1] as number);
    this.margin = new Float64Array(slots);
    this.row = new Int32Array(slots);
    this.bar = new Float64Array(h).fill(-Infinity);
  }

  get count(): number {
    return this.j.length;
  }

  ofClass(c: number): number {
    return (this.first[c + 1] as number) - (this.first[c] as number);
  }

  /** Empties the heaps of class c (they are filled again). */
  emptyClass(c: number): void {
    this.size.fill(0, this.first[c], this.first[c + 1]);
    this.bar.fill(-Infinity, this.first[c], this.first[c + 1]);
  }

  /** Entry a ranks below entry b: smaller margin, or the same margin and a higher row. */
  private below(a: number, b: number): boolean {
    const ma = this.margin[a] as number;
    const mb = this.margin[b] as number;
    return ma < mb || (ma === mb && (this.row[a] as number) > (this.row[b] as number));
  }

  offer(h: number, margin: number, row: number): void {
    const count = this.cap[h] as number;
    const base = this.start[h] as number;
    const size = this.size[h] as number;
    if (size < count) {
      let q = size;
      this.size[h] = size + 1;
      this.margin[base + q] = margin;
      this.row[base + q] = row;
      while (q > 0) {
        const parent = (q - 1) >> 1;
        if (!this.below(base + q, base + parent)) break;
        this.swap(base + q, base + parent);
        q = parent;
      }
      if (size + 1 === count) this.bar[h] = this.margin[base] as number;
      return;
    }
    // Full: a later row must have a strictly larger margin than the root's.
    if (!(margin > (this.margin[base] as number))) return;
    this.margin[base] = margin;
    this.row[base] = row;
    let q = 0;
    for (;;) {
      const l = 2 * q + 1;
      const r = l + 1;
      let low = q;
      if (l < count && this.below(base + l, base + low)) low = l;
      if (r < count && this.below(base + r, base + low)) low = r;
      if (low === q) break;
      this.swap(base + q, base + low);
      q = low;
    }
    this.bar[h] = this.margin[base] as number;
  }

  private swap(a: number, b: number): void {
    const m = this.margin[a] as number;
    this.margin[a] = this.margin[b] as number;
    this.margin[b] = m;
    const r = this.row[a] as number;
    this.row[a] = this.row[b] as number;
    this.row[b] = r;
  }

  /**
   * True when no row after those offered to heap h, with a margin at most `bound` and a row number at least `row`,
   * could enter: the heap is full and its last entry ranks above (bound, row).
   */
  excludes(h: number, bound: number, row: number): boolean {
    if ((this.size[h] as number) < (this.cap[h] as number)) return false;
    const base = this.start[h] as number;
    const worst = this.margin[base] as number;
    return bound < worst || (bound === worst && row > (this.row[base] as number));
  }

  /**
   * Fills these heaps from `from`'s (the same classes; pass 2's, see StreamedJudgement.provisionalPrune), offering
   * each of its entries in increasing row order: a heap of `from` with room for at least this heap's count holds its
   * best entries among all the rows offered, so the best `count` of them are this heap's. Returns per class 1 when
   * some pair of it has no such heap in `from` (that class's heaps are left empty, to be filled again).
   */
  takeFrom(from: PruneHeaps): Uint8Array {
    const k = this.first.length - 1;
    const redo = new Uint8Array(k);
    const match: number[] = [];
    const entries: number[] = [];
    for (let c = 0; c < k; c++) {
      const h0 = this.first[c] as number;
      const h1 = this.first[c + 1] as number;
      if (h0 === h1) continue;
      let g = from.first[c] as number;
      const g1 = from.first[c + 1] as number;
      match.length = 0;
      for (let h = h0; h < h1; h++) {
        const j = this.j[h] as number;
        while (g < g1 && (from.j[g] as number) < j) g++;
        if (g === g1 || from.j[g] !== j || (from.cap[g] as number) < (this.cap[h] as number)) break;
        match.push(g);
      }
      if (match.length < h1 - h0) {
        redo[c] = 1;
        continue;
      }
      for (let h = h0; h < h1; h++) {
        const f = match[h - h0] as number;
        const base = from.start[f] as number;
        entries.length = 0;
        for (let q = 0; q < (from.size[f] as number); q++) entries.push(base + q);
        if (entries.length > 1) entries.sort((a, b) => (from.row[a] as number) - (from.row[b] as number));
        for (const e of entries) this.offer(h, from.margin[e] as number, from.row[e] as number);
      }
    }
    return redo;
  }

  /** The rows heap h holds, in increasing order (tests). */
  rowsOf(h: number): number[] {
    const base = this.start[h] as number;
    return Array.from(this.row.subarray(base, base + (this.size[h] as number))).sort((a, b) => a - b);
  }

  /** Marks every row held by any heap. */
  flag(mask: Uint8Array): void {
    for (let h = 0; h < this.j.length; h++) {
      const base = this.start[h] as number;
      for (let q = 0; q < (this.size[h] as number); q++) mask[this.row[base + q] as number] = 1;
    }
  }
}
