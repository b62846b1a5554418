/**
 * `clip-lens probe` and `clip-lens label-issues --knn K`: predictions from image features that do not depend on
 * class names (core/linearProbe.ts, core/knnPredictor.ts). Input: `{"classes", "labels", "features"}` JSON or a
 * folder with features.npy, labels.npy and classes.json (core/probabilities.ts readFeaturesFile).
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ClipLensError } from '../core/errors';
import { crossValidatedProbeFast, DEFAULT_FOLDS, DEFAULT_PROBE_C } from '../core/linearProbe';
import { DEFAULT_KNN_K, knnProbabilities } from '../core/knnPredictor';
import { findLabelIssuesFloat64 } from '../core/labelIssues';
import { computeMetrics } from '../core/metrics';
import { ProbabilityMatrix, readFeaturesFile } from '../core/probabilities';
import { PREDICTOR_NAMES } from '../core/predictors';
import type { PredictorName } from '../core/report';
import { UsageError, type CliIO } from './io';

export const PROBE_HELP = `clip-lens probe --input FILE [--folds K] [--c C]

Out-of-sample class probabilities of a linear probe (multinomial logistic regression with an L2 penalty, the
objective of scikit-learn's LogisticRegression(C, lbfgs, multinomial)) by stratified K-fold cross-validation
(scikit-learn's StratifiedKFold order, no shuffling), then metrics and likely label errors from them.

  --input FILE   {"classes": [...], "labels": [...], "features": [[...], ...]} JSON, or a folder with
                 features.npy (N x D float32/float64), labels.npy (N integers) and classes.json
  --folds K      number of folds (default ${DEFAULT_FOLDS}); at least one class needs K samples
  --c C          inverse regularisation strength (default ${DEFAULT_PROBE_C})

Prints JSON: {"pred_probs": N x K, "metrics": (as \`metrics\`), "labelIssues": (as \`label-issues\`), "probe": {...}}.
A class with fewer samples than folds is missing from some training folds; a class with one sample gets
probability 0 for its own sample (listed in probe.singletonClasses).
`;

export const LABEL_ISSUES_KNN_HELP = `clip-lens label-issues --input FILE --knn K [--rank-by self_confidence|normalized_margin]

Likely label errors from features, as cleanlab's Datalab finds them without a model: the votes of each sample's K
nearest neighbours by cosine similarity (its own vote removed) are its out-of-sample probabilities, then
find_label_issues. FILE is the features input of \`clip-lens probe\` ("features" instead of "pred_probs").
Prints {"labelIssues": [...]} as \`label-issues\` does.
`;

function numberOption(value: string | undefined, name: string, check: (n: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !check(n)) throw new UsageError(`--${name} expects ${what}, got '${value}'`);
  return n;
}

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

export async function probeCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { input: { type: 'string' }, folds: { type: 'string' }, c: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.out(PROBE_HELP);
    return 0;
  }
  const input = values.input ?? positionals[0];
  if (!input) throw new UsageError('probe expects --input FILE');
  const folds = numberOption(values.folds, 'folds', (n) => Number.isInteger(n) && n >= 2, 'an integer >= 2');
  const c = numberOption(values.c, 'c', (n) => Number.isFinite(n) && n > 0, 'a positive number');
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
export async function labelIssuesKnnCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { input: { type: 'string' }, knn: { type: 'string' }, 'rank-by': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.out(LABEL_ISSUES_KNN_HELP);
    return 0;
  }
  const input = values.input ?? positionals[0];
  if (!input) throw new UsageError('label-issues expects --input FILE');
  const kn = numberOption(values.knn, 'knn', (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1') ?? DEFAULT_KNN_K;
  const rankBy = values['rank-by'] ?? 'self_confidence';
  if (rankBy !== 'self_confidence' && rankBy !== 'normalized_margin') throw new UsageError(`--rank-by expects self_confidence or normalized_margin, got '${rankBy}'`);
  const file = path.resolve(input);
  const data = await readFeaturesFile(file);
  const res = withFile(file, () => knnProbabilities(data.features, data.dim, data.labels, data.classes.length, { k: kn }));
  io.out(JSON.stringify({ labelIssues: findLabelIssuesFloat64(data.classes, data.labels, res.probs, { rankBy }) }, null, 1) + '\n');
  return 0;
}

/** Core errors about the data name the input file. */
function withFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ClipLensError && !e.file) throw new ClipLensError(e.code, e.message, { file });
    throw e;
  }
}

async function withFileAsync<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ClipLensError && !e.file) throw new ClipLensError(e.code, e.message, { file });
    throw e;
  }
}

/** Whether `label-issues` arguments ask for the kNN route. */
export function wantsKnn(args: string[]): boolean {
  return args.some((a) => a === '--knn' || a.startsWith('--knn='));
}

/** `eval --predictor NAME`. */
export function parsePredictor(value: string | undefined): PredictorName | undefined {
  if (value === undefined) return undefined;
  if (!(PREDICTOR_NAMES as readonly string[]).includes(value)) {
    throw new UsageError(`--predictor expects ${PREDICTOR_NAMES.join(', ')}, got '${value}'`);
  }
  return value as PredictorName;
}
