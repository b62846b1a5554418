/**
 * Which numeric precision a run uses: the model's float graphs (`fp32`) or its dynamically quantised int8 graphs
 * (`int8`: DynamicQuantizeLinear + MatMulInteger, several times faster on CPUs with AVX-512 VNNI or AMX-INT8).
 * Quantisation hurts some trained weights more than others, so `auto` does not take int8 on faith: it embeds a
 * small sample of the user's own images with both graphs and uses int8 only when they agree (PRECISION_RULES).
 */
import { ClipLensError, throwIfAborted } from './errors';
import type { ClipModel } from './runtime';
import { embedClassPrompts, type ClassEmbeddings } from './zeroShot';

import type { Precision, PrecisionAgreement, PrecisionChoice } from './report';

export type { Precision, PrecisionAgreement, PrecisionChoice };
export const PRECISIONS: readonly Precision[] = ['auto', 'fp32', 'int8'];

/** The agreement `auto` requires before it uses int8 (documented in docs/models.md). */
export const PRECISION_RULES = {
  /** Images embedded with both graphs (fewer when the dataset is smaller). */
  sampleSize: 64,
  /** Share of the sample whose zero-shot top-1 class must be the same with both graphs. */
  minTop1Agreement: 0.99,
  /** Every sample image's int8 embedding must have at least this cosine to its fp32 embedding. */
  minCosine: 0.99,
} as const;

export function parsePrecision(value: unknown, where: { file?: string; line?: number; option?: string } = {}): Precision {
  if (typeof value === 'string' && (PRECISIONS as readonly string[]).includes(value)) return value as Precision;
  const shown = typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
  throw new ClipLensError('bad-precision', `${where.option ? `${where.option}: ` : ''}precision must be auto, fp32 or int8, got ${shown}`, { file: where.file, line: where.line });
}

/** `count` indices spread evenly over 0..n-1 (deterministic: the same dataset gives the same sample). */
export function sampleIndices(n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.floor(((i + 0.5) * n) / count));
}

/** Row-wise cosines of two n x dim matrices of L2-normalised rows. */
function rowCosines(a: Float32Array, b: Float32Array, dim: number): Float64Array {
  const n = a.length / dim;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += a[i * dim + j] * b[i * dim + j];
    out[i] = s;
  }
  return out;
}

/** Index of the class with the highest cosine for each image row (argmax of the zero-shot logits). */
function top1(images: Float32Array, classes: ClassEmbeddings): Int32Array {
  const { matrix, dim } = classes;
  const k = matrix.length / dim;
  const n = images.length / dim;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += images[i * dim + j] * matrix[c * dim + j];
      if (s > best) {
        best = s;
        out[i] = c;
      }
    }
  }
  return out;
}

/**
 * Compares the two precisions on embeddings already computed: the image embeddings of the same sample with each
 * graph pair, and each pair's class embeddings (so the text tower's quantisation counts too).
 */
export function compareEmbeddings(
  fp32: { images: Float32Array; classes: ClassEmbeddings },
  int8: { images: Float32Array; classes: ClassEmbeddings },
  dim: number,
  paths?: readonly string[],
): PrecisionAgreement {
  const n = fp32.images.length / dim;
  if (int8.images.length !== fp32.images.length) throw new Error('compareEmbeddings: the two samples differ in size');
  if (n === 0) return { sample: 0, top1Agreement: 1, meanCosine: 1, minCosine: 1 };
  const cos = rowCosines(fp32.images, int8.images, dim);
  const a = top1(fp32.images, fp32.classes);
  const b = top1(int8.images, int8.classes);
  let same = 0;
  let sum = 0;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) same++;
    sum += cos[i];
    if (cos[i] < cos[worst]) worst = i;
  }
  return { sample: n, top1Agreement: same / n, meanCosine: sum / n, minCosine: cos[worst], ...(paths ? { worstImage: paths[worst] } : {}) };
}

/** The decision for `requested`, given whether int8 graphs exist and (for auto) how they agreed. */
export function choosePrecision(requested: Precision, int8Available: boolean, agreement?: PrecisionAgreement): PrecisionChoice {
  if (requested === 'fp32') return { requested, used: 'fp32', reason: 'fp32 requested' };
  if (requested === 'int8') {
    if (!int8Available) throw new ClipLensError('model-no-int8', 'precision int8 needs the quantized graphs onnx/vision_model_quantized.onnx and onnx/text_model_quantized.onnx, which this model does not have');
    return { requested, used: 'int8', reason: 'int8 requested', ...(agreement ? { agreement } : {}) };
  }
  if (!int8Available) return { requested, used: 'fp32', reason: 'the model has no int8 graphs' };
  if (!agreement || agreement.sample === 0) return { requested, used: 'fp32', reason: 'no image to compare fp32 and int8 on' };
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const measured = `top-1 agreement ${pct(agreement.top1Agreement)}, lowest cosine ${agreement.minCosine.toFixed(4)} on ${agreement.sample} images`;
  if (agreement.top1Agreement < PRECISION_RULES.minTop1Agreement) {
    return { requested, used: 'fp32', reason: `int8 changes the predicted class too often (${measured}; needs ${pct(PRECISION_RULES.minTop1Agreement)})`, agreement };
  }
  if (agreement.minCosine < PRECISION_RULES.minCosine) {
    return { requested, used: 'fp32', reason: `int8 moves an embedding too far (${measured}; every cosine must be >= ${PRECISION_RULES.minCosine}${agreement.worstImage ? `; worst: ${agreement.worstImage}` : ''})`, agreement };
  }
  return { requested, used: 'int8', reason: `int8 agrees with fp32 on this dataset (${measured})`, agreement };
}

/**
 * `auto`: embeds `paths` (the sample) and `prompts` with both models and compares them. The images are
 * preprocessed once and run through both vision graphs.
 */
export async function measureAgreement(
  fp32: ClipModel,
  int8: ClipModel,
  paths: readonly string[],
  prompts: string[][],
  signal?: AbortSignal,
): Promise<PrecisionAgreement> {
  const pre = fp32.preprocessor;
  const per = 3 * pre.outputHeight * pre.outputWidth;
  const ok: string[] = [];
  const pixels = new Float32Array(paths.length * per);
  for (const p of paths) {
    throwIfAborted(signal);
    try {
      await pre.preprocess(p, pixels, ok.length * per);
      ok.push(p);
    } catch {
      // an unreadable image is reported by the run itself; it just takes no part in the comparison
    }
  }
  if (ok.length === 0) return { sample: 0, top1Agreement: 1, meanCosine: 1, minCosine: 1 };
  const used = pixels.subarray(0, ok.length * per);
  const [a, b] = [await fp32.embedImages(used.slice(), ok.length), await int8.embedImages(used.slice(), ok.length)];
  throwIfAborted(signal);
  const [ca, cb] = [await embedClassPrompts(fp32, prompts, null, signal), await embedClassPrompts(int8, prompts, null, signal)];
  return compareEmbeddings({ images: a.embeddings, classes: ca }, { images: b.embeddings, classes: cb }, a.dim, ok);
}
