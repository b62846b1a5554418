/**
 * `clip-lens probe` and `clip-lens label-issues --knn K`: predictions from image features that do not depend on
 * class names (core/linearProbe.ts, core/knnPredictor.ts). Input: `{"classes", "labels", "features"}` JSON or a
 * folder with features.npy, labels.npy and classes.json (core/probabilities.ts readFeaturesFile). The options are
 * declared in the command table (commands.ts: PROBE_COMMAND, LABEL_ISSUES_COMMAND's --knn).
 */
import * as path from 'node:path';
import { ClipLensError } from '../core/errors';
import { crossValidatedProbeFast } from '../core/linearProbe';
import { knnProbabilitiesAsync } from '../core/knnPredictor';
import { findLabelIssuesFloat64 } from '../core/labelIssues';
import { computeMetrics } from '../core/metrics';
import { ProbabilityMatrix, readFeaturesFile } from '../core/probabilities';
import { PREDICTOR_NAMES } from '../core/predictors';
import type { PredictorName } from '../core/report';
import { UsageError, type CliIO } from './io';

function toRows(probs: Float64Array, k: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < probs.length / k; i++) rows.push(Array.from(probs.subarray(i * k, (i + 1) * k)));
  return rows;
}

function toMatrix(probs: Float64Array, k: number): ProbabilityMatrix {
  const m = new ProbabilityMatrix(k);
  for (let i = 0; i < probs.length / k; i++) m.push(probs.subarray(i * k, (i + 1) * k));
  return m;
}

/** `clip-lens probe`: out-of-sample probabilities, metrics and label issues of the linear probe on features. */
export async function runProbe(input: string, options: { folds?: number; c?: number }, io: CliIO): Promise<number> {
  const { folds, c } = options;
  const file = path.resolve(input);
  const data = await readFeaturesFile(file);
  const k = data.classes.length;
  const res = await withFileAsync(file, () => crossValidatedProbeFast(data.features, data.dim, data.labels, k, { folds, c }));
  for (const j of res.singletonClasses) {
    io.err(`clip-lens: class '${data.classes[j]}' has one sample: it cannot be predicted out of sample (probability 0, flagged)\n`);
  }
  const matrix = toMatrix(res.probs, k);
  const metrics = computeMetrics({ classes: data.classes, labels: data.labels, probs: matrix }, { ks: [1, 3, 5] });
  const labelIssues = findLabelIssuesFloat64(data.classes, data.labels, res.probs);
  const out = {
    pred_probs: toRows(res.probs, k),
    metrics,
    labelIssues,
    probe: {
      folds: res.folds,
      c: res.c,
      smallClasses: res.smallClasses.map((j) => data.classes[j]),
      singletonClasses: res.singletonClasses.map((j) => data.classes[j]),
      unconvergedFolds: res.unconverged,
    },
  };
  io.out(JSON.stringify(out, null, 1) + '\n');
  return 0;
}

/** `label-issues --knn K`: the same output as `label-issues`, from features. */
export async function runLabelIssuesKnn(input: string, kn: number, rankBy: 'self_confidence' | 'normalized_margin', io: CliIO): Promise<number> {
  const file = path.resolve(input);
  const data = await readFeaturesFile(file);
  const res = await withFileAsync(file, () => knnProbabilitiesAsync(data.features, data.dim, data.labels, data.classes.length, { k: kn }));
  io.out(JSON.stringify({ labelIssues: findLabelIssuesFloat64(data.classes, data.labels, res.probs, { rankBy }) }, null, 1) + '\n');
  return 0;
}

/** Core errors about the data name the input file. */
async function withFileAsync<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ClipLensError && !e.file) throw new ClipLensError(e.code, e.message, { file });
    throw e;
  }
}

/** `eval --predictor NAME`. */
export function parsePredictor(value: string | undefined): PredictorName | undefined {
  if (value === undefined) return undefined;
  if (!(PREDICTOR_NAMES as readonly string[]).includes(value)) {
    throw new UsageError(`--predictor expects ${PREDICTOR_NAMES.join(', ')}, got '${value}'`);
  }
  return value as PredictorName;
}
