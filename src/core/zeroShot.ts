/**
 * Zero-shot classification: class embeddings from prompt templates (each prompt embedded and L2-normalised, the
 * class's prompts averaged and normalised again, as in the CLIP paper), then softmax(logitScale * cosine).
 */
import type { ClipModel } from './runtime';
import type { EmbeddingCache } from './embeddingCache';
import { sha256 } from './embeddingCache';
import { throwIfAborted } from './errors';
import { onnxZeroShot, onnxZeroShotScan, onnxZeroShotSummary, type ImageRows, type ZeroShotScan, type ZeroShotSummary } from './onnxMatMul';
import { decodeHalfRows } from './probabilities';

export type { HalfBlock, ImageRows } from './onnxMatMul';

export type { ZeroShotScan, ZeroShotSummary } from './onnxMatMul';
export { holdZeroShotHead, holdZeroShotScan, holdZeroShotSummary, releaseZeroShotHead, releaseZeroShotScan, releaseZeroShotSummary } from './onnxMatMul';

/**
 * Prompts handed to the model per call: it sorts them by length and batches them (ClipModel.embedTexts), so the
 * larger the call the better the batches fit; this bounds the memory of the tokenised prompts of a big ensemble
 * (80 templates x 1,000 classes) and lets an abort be seen between calls as well as between batches.
 */
const TEXT_CHUNK = 4096;

export interface ClassEmbeddings {
  /** K x D, row-normalised, in `classes` order. */
  matrix: Float32Array;
  dim: number;
  /** Prompts embedded by the model in this call (the rest came from the cache). */
  computed: number;
  ms: number;
}

/**
 * Embeds every prompt of every class (using and filling `cache` when given) and averages per class.
 * `prompts[k]` are the prompt texts of class k (one per template).
 */
export async function embedClassPrompts(model: ClipModel, prompts: string[][], cache: EmbeddingCache | null, signal?: AbortSignal): Promise<ClassEmbeddings> {
  const t0 = performance.now();
  const unique = new Map<string, Float32Array | null>();
  for (const list of prompts) for (const p of list) unique.set(p, cache?.get(sha256(p)) ?? null);
  const missing = [...unique.entries()].filter(([, v]) => v === null).map(([k]) => k);
  for (let i = 0; i < missing.length; i += TEXT_CHUNK) {
    throwIfAborted(signal);
    const texts = missing.slice(i, i + TEXT_CHUNK);
    const { embeddings, dim } = await model.embedTexts(texts, { signal });
    texts.forEach((t, j) => {
      const e = embeddings.subarray(j * dim, (j + 1) * dim);
      unique.set(t, e);
      cache?.put(sha256(t), e);
    });
  }
  const dim = [...unique.values()][0]?.length ?? 0;
  const matrix = new Float32Array(prompts.length * dim);
  prompts.forEach((list, k) => {
    const row = matrix.subarray(k * dim, (k + 1) * dim);
    for (const p of list) {
      const e = unique.get(p) as Float32Array;
      for (let j = 0; j < dim; j++) row[j] += e[j];
    }
    let s = 0;
    for (let j = 0; j < dim; j++) s += row[j] * row[j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) row[j] *= inv;
  });
  return { matrix, dim, computed: missing.length, ms: performance.now() - t0 };
}

/** softmax(logitScale * classMatrix . image) into `out` (length K). Computed in float64, stored as float32. */
export function zeroShotProbabilities(image: Float32Array, classes: ClassEmbeddings, logitScale: number, out: Float32Array = new Float32Array(classes.matrix.length / classes.dim)): Float32Array {
  const { matrix, dim } = classes;
  const k = out.length;
  const logits = new Float64Array(k);
  let max = -Infinity;
  for (let c = 0; c < k; c++) {
    let dot = 0;
    const off = c * dim;
    for (let j = 0; j < dim; j++) dot += matrix[off + j] * image[j];
    logits[c] = logitScale * dot;
    if (logits[c] > max) max = logits[c];
  }
  let sum = 0;
  for (let c = 0; c < k; c++) {
    logits[c] = Math.exp(logits[c] - max);
    sum += logits[c];
  }
  for (let c = 0; c < k; c++) out[c] = logits[c] / sum;
  return out;
}

/**
 * Below this many multiply-adds per block (rows x classes x dim), a block is scored in JavaScript
 * ({@link zeroShotProbabilities}, float64); above it, on ONNX Runtime (float32 MatMul, Mul, Softmax: MLAS kernels,
 * SIMD, all cores). 2^22: the session's fixed cost per run (tens of microseconds) is then under a few percent.
 */
export const ZERO_SHOT_ONNX_MIN_WORK = 1 << 22;

const transposedCache = new WeakMap<ClassEmbeddings, Float32Array>();

/** The class matrix transposed (dim x K), made once per ClassEmbeddings. */
function transposed(classes: ClassEmbeddings): Float32Array {
  let t = transposedCache.get(classes);
  if (!t) {
    const { matrix, dim } = classes;
    const k = matrix.length / dim;
    t = new Float32Array(matrix.length);
    for (let c = 0; c < k; c++) for (let j = 0; j < dim; j++) t[j * k + c] = matrix[c * dim + j];
    transposedCache.set(classes, t);
  }
  return t;
}

/**
 * Zero-shot probabilities of a block of `m` images (`images`: m x dim, row-major), m x K row-major. Large blocks run
 * on ONNX Runtime (float32 throughout: within float32 rounding of {@link zeroShotProbabilities}, which accumulates in
 * float64); small ones, or all when `engine` is 'js' or ONNX Runtime cannot load, row by row in JavaScript.
 */
export async function zeroShotBlock(images: ImageRows, m: number, classes: ClassEmbeddings, logitScale: number, engine: 'auto' | 'js' | 'onnx' = 'auto'): Promise<Float32Array> {
  const { matrix, dim } = classes;
  const k = matrix.length / dim;
  const head = engine === 'onnx' || (engine === 'auto' && m * k * dim >= ZERO_SHOT_ONNX_MIN_WORK) ? await onnxZeroShot() : null;
  if (head) return head.run(firstRows(images, m, dim), m, dim, transposed(classes), k, logitScale);
  const rows = floatRows(images, m, dim);
  const out = new Float32Array(m * k);
  for (let r = 0; r < m; r++) zeroShotProbabilities(rows.subarray(r * dim, (r + 1) * dim), classes, logitScale, out.subarray(r * k, (r + 1) * k));
  return out;
}

/** The first m rows of a block (views). */
function firstRows(images: ImageRows, m: number, dim: number): ImageRows {
  if (images instanceof Float32Array) return images.length === m * dim ? images : images.subarray(0, m * dim);
  return { bits: images.bits.subarray(0, m * dim), scales: images.scales.subarray(0, m) };
}

/** The first m rows of a block as float32 (float16 rows decoded: fround(half * scale), the graphs' Cast(half) * scale). */
export function floatRows(images: ImageRows, m: number, dim: number): Float32Array {
  if (images instanceof Float32Array) return images.length === m * dim ? images : images.subarray(0, m * dim);
  const out = new Float32Array(m * dim);
  decodeHalfRows(images.bits, images.scales, 0, m, dim, out);
  return out;
}

/**
 * The row summary of a block (see onnxMatMul.ts zeroShotSummaryModelBytes: top-t, argmax, the label's probability and
 * rank) computed inside ONNX Runtime, so that the m x K probabilities are never copied out: for blocks that
 * {@link zeroShotBlock} would give to ONNX Runtime, with the same values. Null when that block would be scored in
 * JavaScript, or ONNX Runtime cannot load: the caller then uses zeroShotBlock and {@link summaryOfProbabilities}.
 * `labels` (m): each row's class index (any class for a row without one; its self and rank mean nothing).
 */
export async function zeroShotSummaryBlock(images: ImageRows, m: number, classes: ClassEmbeddings, logitScale: number, labels: BigInt64Array, t: number, engine: 'auto' | 'js' | 'onnx' = 'auto'): Promise<ZeroShotSummary | null> {
  const { matrix, dim } = classes;
  const k = matrix.length / dim;
  if (!(engine === 'onnx' || (engine === 'auto' && m * k * dim >= ZERO_SHOT_ONNX_MIN_WORK))) return null;
  const head = await onnxZeroShotSummary();
  if (!head || !(await onnxZeroShot())) return null; // both or neither: the values must be the full head's
  return head.run(firstRows(images, m, dim), m, dim, transposed(classes), k, logitScale, labels, Math.min(t, k));
}

/**
 * The same summary as {@link zeroShotSummaryBlock} from a block's probabilities (m x k, row-major): top-t by
 * {@link topKIndices}, the first maximum, the label's probability and how many classes rank ahead of it (before the
 * label: strictly larger; after it: at least as large).
 */
export function summaryOfProbabilities(probs: Float32Array, m: number, k: number, labels: BigInt64Array, t: number): ZeroShotSummary {
  const tt = Math.min(t, k);
  const out: ZeroShotSummary = { topScores: new Float32Array(m * tt), topClasses: new Int32Array(m * tt), t: tt, argmax: new Int32Array(m), self: new Float32Array(m), rank: new Float32Array(m) };
  for (let r = 0; r < m; r++) {
    const o = r * k;
    const p = probs.subarray(o, o + k);
    topKIndices(p, tt).forEach((c, q) => {
      out.topClasses[r * tt + q] = c;
      out.topScores[r * tt + q] = p[c] as number;
    });
    const label = Number(labels[r]);
    const py = p[label] as number;
    let arg = 0;
    let ahead = 0;
    for (let j = 0; j < k; j++) {
      const v = p[j] as number;
      if (v > (p[arg] as number)) arg = j;
      if (v > py || (v === py && j > label)) ahead++;
    }
    out.argmax[r] = arg;
    out.self[r] = py;
    out.rank[r] = ahead;
  }
  return out;
}

/**
 * A block's probabilities with cleanlab's per-row confident count (see onnxMatMul.ts zeroShotScanModelBytes): per row
 * how many classes have a probability >= their `cut` and the sum of those classes' indices. Blocks that
 * {@link zeroShotBlock} gives to ONNX Runtime are counted inside it (the same probabilities; with `probs` false they
 * are not even copied out); the others are scored by zeroShotBlock and counted by {@link scanOfProbabilities}.
 */
export async function zeroShotScanBlock(images: ImageRows, m: number, classes: ClassEmbeddings, logitScale: number, cut: Float32Array, probs: boolean, engine: 'auto' | 'js' | 'onnx' = 'auto'): Promise<ZeroShotScan> {
  const { matrix, dim } = classes;
  const k = matrix.length / dim;
  const a = firstRows(images, m, dim);
  if (engine === 'onnx' || (engine === 'auto' && m * k * dim >= ZERO_SHOT_ONNX_MIN_WORK)) {
    const head = await onnxZeroShotScan();
    if (head && (await onnxZeroShot())) return head.run(a, m, dim, transposed(classes), k, logitScale, cut, probs); // both or neither
  }
  const p = await zeroShotBlock(a, m, classes, logitScale, engine);
  return { probs: probs ? p : null, confident: scanOfProbabilities(p, m, k, cut) };
}

/** The confident count of {@link zeroShotScanBlock} from a block's probabilities (m x k, row-major): m x 2. */
export function scanOfProbabilities(probs: Float32Array, m: number, k: number, cut: Float32Array): Float32Array {
  const out = new Float32Array(2 * m);
  for (let r = 0; r < m; r++) {
    const o = r * k;
    let count = 0;
    let sum = 0;
    for (let j = 0; j < k; j++) {
      if ((probs[o + j] as number) >= (cut[j] as number)) {
        count++;
        sum += j;
      }
    }
    out[2 * r] = count;
    out[2 * r + 1] = sum;
  }
  return out;
}

/** Indices of the k largest values, best first; ties keep the lower index first (stable, like numpy's argsort of -p). */
export function topKIndices(values: ArrayLike<number>, k: number): number[] {
  const n = values.length;
  const kk = Math.min(k, n);
  const best: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (best.length === kk && v <= values[best[kk - 1]]) continue;
    let pos = best.length;
    while (pos > 0 && values[best[pos - 1]] < v) pos--;
    best.splice(pos, 0, i);
    if (best.length > kk) best.pop();
  }
  return best;
}
