/**
 * kNN predictor: cleanlab Datalab's label route from features. Out-of-sample probabilities are the class votes of
 * each sample's k nearest neighbours by cosine similarity (sklearn KNeighborsClassifier(n_neighbors=k + 1) fitted
 * and queried on the same rows, uniform weights), with the sample's own vote removed:
 *   p = (votes_of_k+1 / (k + 1) - onehot(label) / (k + 1)) * (k + 1) / k
 * then cleanlab's find_label_issues (labelIssues.ts). Checked against cleanlab's answers in
 * test/unit/knnPredictor.test.ts. Neighbours come from the project's one index (neighbours.ts); the sample itself is
 * the nearest of its k + 1 (it is excluded there and its vote added back, which is the same).
 */
import { ClipLensError } from './errors';
import { checkFeatures, checkLabels } from './linearProbe';
import { NeighbourIndex, type NeighbourIndexOptions, type Neighbours } from './neighbours';

export const DEFAULT_KNN_K = 10;

/** Copies rows scaled to unit length (rows of norm 0 stay 0). */
export function l2Normalise(features: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(features.length);
  const n = features.length / dim;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += features[i * dim + d] * features[i * dim + d];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let d = 0; d < dim; d++) out[i * dim + d] = features[i * dim + d] * inv;
  }
  return out;
}

export interface KnnProbabilities {
  /** N x numClasses row-major. */
  probs: Float64Array;
  k: number;
  approximate: boolean;
}

/** The checks both kNN drivers share, k, and the L2-normalised features. */
function knnInputs(features: Float32Array, dim: number, labels: ArrayLike<number>, numClasses: number, options: { k?: number; normalised?: boolean }): { k: number; unit: Float32Array } {
  const n = labels.length;
  checkFeatures(features, n, dim);
  checkLabels(labels, numClasses);
  const k = options.k ?? DEFAULT_KNN_K;
  if (!Number.isInteger(k) || k < 1) throw new ClipLensError('knn-bad-k', `k must be an integer >= 1, got ${k}`);
  if (k >= n) throw new ClipLensError('knn-bad-k', `k = ${k} neighbours need more than ${k} samples, found ${n}`);
  return { k, unit: options.normalised ? features : l2Normalise(features, dim) };
}

/**
 * Out-of-sample kNN probabilities. Features need not be normalised (they are, for the cosine). With fewer than
 * k + 1 samples the error says so.
 */
export function knnProbabilities(
  features: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  numClasses: number,
  options: { k?: number; index?: NeighbourIndexOptions; normalised?: boolean } = {},
): KnnProbabilities {
  const { k, unit } = knnInputs(features, dim, labels, numClasses, options);
  const index = NeighbourIndex.build(unit, dim, options.index);
  return voteProbabilities(index.selfNeighbours(k), labels, numClasses, k, index.approximate);
}

/**
 * Up to this many samples the async kNN searches exactly (ONNX Runtime matrix products): measured at 20,000 x 512 on a
 * shared 2-core machine, 28 s exact vs 261 s for building and searching the HNSW graph (docs/benchmarks.md).
 */
export const KNN_EXACT_MAX_ROWS = 50_000;

/**
 * {@link knnProbabilities} with large exact searches on ONNX Runtime (NeighbourIndex.selfNeighboursAsync); exact up
 * to {@link KNN_EXACT_MAX_ROWS} samples unless `options.index` says otherwise, the approximate index above.
 */
export async function knnProbabilitiesAsync(
  features: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  numClasses: number,
  options: { k?: number; index?: NeighbourIndexOptions; normalised?: boolean } = {},
): Promise<KnnProbabilities> {
  const { k, unit } = knnInputs(features, dim, labels, numClasses, options);
  const index = NeighbourIndex.build(unit, dim, options.index ?? { approximate: labels.length > KNN_EXACT_MAX_ROWS });
  return voteProbabilities(await index.selfNeighboursAsync(k), labels, numClasses, k, index.approximate);
}

/** Vote probabilities with the own vote removed (see the module comment). */
function voteProbabilities(nb: Neighbours, labels: ArrayLike<number>, numClasses: number, k: number, approximate: boolean): KnnProbabilities {
  const n = labels.length;
  const probs = new Float64Array(n * numClasses);
  const votes = new Float64Array(numClasses);
  for (let i = 0; i < n; i++) {
    votes.fill(0);
    votes[labels[i]] += 1; // the sample itself
    for (let r = 0; r < k; r++) votes[labels[nb.indices[i * k + r]]] += 1;
    for (let j = 0; j < numClasses; j++) {
      const p = votes[j] / (k + 1);
      probs[i * numClasses + j] = (p - (j === labels[i] ? 1 / (k + 1) : 0)) * (k + 1) / k;
    }
  }
  return { probs, k, approximate };
}
