/**
 * Linear probe: multinomial logistic regression on image embeddings, with out-of-sample probabilities by stratified
 * K-fold cross-validation. Reproduces scikit-learn's
 *   cross_val_predict(LogisticRegression(C=C, solver='lbfgs', multi_class='multinomial'), X, y,
 *                     cv=StratifiedKFold(n_splits=K), method='predict_proba')
 * (checked against scikit-learn 1.2.1 in test/unit/linearProbe.test.ts):
 * - objective: sum over samples of the cross-entropy + ||W||^2 / (2C); one weight row and one intercept per class
 *   (the over-parameterised softmax), intercepts not penalised; minimised by L-BFGS (memory 10, as scipy's) to a
 *   tight gradient tolerance;
 * - folds: StratifiedKFold without shuffling, in scikit-learn's assignment order (see {@link stratifiedFolds});
 * - a class missing from a training fold is left out of that fold's model and gets probability 0 on its test
 *   samples, as cross_val_predict does. A class with a single sample therefore always gets probability 0 for that
 *   sample (it cannot be predicted out of sample), which flags it as a likely label error; the report says so.
 */
import { ClipLensError } from './errors';
import { onnxLogisticStep } from './onnxMatMul';

/** Default regularisation: C = 10 on L2-normalised CLIP embeddings (chosen by measurement, docs/predictors.md). */
export const DEFAULT_PROBE_C = 10;
/** Default number of folds. */
export const DEFAULT_FOLDS = 5;

/**
 * scikit-learn's StratifiedKFold(n_splits).  _make_test_folds without shuffling: classes are numbered by first
 * appearance; the labels sorted by that number are dealt round-robin to the folds (position i goes to fold i mod K),
 * which fixes how many samples of each class each fold gets; then each class's samples, in order, fill fold 0's
 * share, then fold 1's, and so on. Returns the test fold of every sample.
 *
 * Throws when every class has fewer samples than folds (scikit-learn's ValueError) or folds < 2 or folds > N.
 */
export function stratifiedFolds(labels: ArrayLike<number>, folds: number): Int32Array {
  const n = labels.length;
  if (!Number.isInteger(folds) || folds < 2) {
    throw new ClipLensError('probe-bad-folds', `the number of folds must be an integer >= 2, got ${folds}`);
  }
  if (folds > n) throw new ClipLensError('probe-bad-folds', `${folds} folds but only ${n} samples`);
  // encode classes by first appearance
  const code = new Map<number, number>();
  const enc = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let c = code.get(labels[i]);
    if (c === undefined) {
      c = code.size;
      code.set(labels[i], c);
    }
    enc[i] = c;
  }
  const nc = code.size;
  const counts = new Int32Array(nc);
  for (let i = 0; i < n; i++) counts[enc[i]]++;
  let maxCount = 0;
  for (let c = 0; c < nc; c++) maxCount = Math.max(maxCount, counts[c]);
  if (maxCount < folds) {
    throw new ClipLensError('probe-bad-folds', `${folds} folds but no class has that many samples (largest class: ${maxCount})`);
  }
  // allocation[f][c] = number of class c among sorted positions f, f + K, f + 2K, ...
  const allocation = new Int32Array(folds * nc);
  let pos = 0;
  for (let c = 0; c < nc; c++) {
    for (let j = 0; j < counts[c]; j++, pos++) allocation[(pos % folds) * nc + c]++;
  }
  const next = new Int32Array(nc); // current fold of each class
  const left = new Int32Array(nc); // samples left in that fold's share
  for (let c = 0; c < nc; c++) {
    let f = 0;
    while (f < folds && allocation[f * nc + c] === 0) f++;
    next[c] = f;
    left[c] = f < folds ? allocation[f * nc + c] : 0;
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = enc[i];
    out[i] = next[c];
    if (--left[c] === 0) {
      let f = next[c] + 1;
      while (f < folds && allocation[f * nc + c] === 0) f++;
      next[c] = f;
      left[c] = f < folds ? allocation[f * nc + c] : 0;
    }
  }
  return out;
}

/** A fitted multinomial model over `classes` (indices into the caller's class list). */
export interface LogisticModel {
  classes: Int32Array;
  dim: number;
  /** classes.length x dim, row-major. */
  weights: Float64Array;
  intercepts: Float64Array;
  iterations: number;
  /** Loss-and-gradient evaluations of the fit. */
  evaluations: number;
  converged: boolean;
}

export interface FitOptions {
  c?: number;
  /** Stop when the largest gradient component is at most this (default 1e-4: scikit-learn's `tol`, scipy's `pgtol`). */
  gradientTolerance?: number;
  /**
   * Stop when an iteration lowers the objective by at most this fraction, (f_old - f) / max(|f_old|, |f|, 1)
   * (default 2.22e-9: scipy L-BFGS-B's `ftol`, which scikit-learn leaves at its default).
   */
  relativeReduction?: number;
  maxIterations?: number;
  /** Initial parameters (warm start), in the layout of {@link LogisticModel}: weights then intercepts. */
  start?: Float64Array;
  /** fitLogisticFast only: 'auto' (ONNX Runtime from ONNX_MIN_WORK on), or always 'onnx' / 'js'. */
  engine?: 'auto' | 'onnx' | 'js';
}

/**
 * Fits LogisticRegression(C, lbfgs, multinomial) on the rows `rows` of X (n x dim, row-major).
 * Classes are those present among the rows' labels, in increasing order.
 */
interface LogisticProblem {
  classes: Int32Array;
  k: number;
  m: number;
  /** The rows, gathered contiguously (m x dim). */
  xs: Float32Array;
  /** Local class of each row. */
  y: Int32Array;
  lambda: number;
  start: Float64Array;
  tolerance: number;
  relativeReduction: number;
  maxIterations: number;
}

/** scipy.optimize.minimize(method='L-BFGS-B')'s default `ftol` (factr 1e7 x machine epsilon). */
export const SCIPY_FTOL = 2.220446049250313e-9;
/** scikit-learn's LogisticRegression `tol` (default), passed to scipy as `gtol`. */
export const SKLEARN_TOL = 1e-4;

function lbfgsOptionsOf(p: LogisticProblem): LbfgsOptions {
  return { gradientTolerance: p.tolerance, relativeReduction: p.relativeReduction, maxIterations: p.maxIterations };
}

function logisticProblem(x: Float32Array, dim: number, labels: ArrayLike<number>, rows: Int32Array, options: FitOptions): LogisticProblem {
  const c = options.c ?? DEFAULT_PROBE_C;
  if (!(c > 0) || !Number.isFinite(c)) throw new ClipLensError('probe-bad-c', `C must be a positive number, got ${c}`);
  const present = [...new Set(Array.from(rows, (r) => labels[r]))].sort((a, b) => a - b);
  const classes = Int32Array.from(present);
  const k = classes.length;
  const m = rows.length;
  const local = new Map<number, number>();
  classes.forEach((cl, i) => local.set(cl, i));
  const y = new Int32Array(m);
  for (let i = 0; i < m; i++) y[i] = local.get(labels[rows[i]])!;
  const xs = new Float32Array(m * dim);
  for (let i = 0; i < m; i++) xs.set(x.subarray(rows[i] * dim, rows[i] * dim + dim), i * dim);
  const np = k * dim + k;
  const start = new Float64Array(np);
  if (options.start && options.start.length === np) start.set(options.start);
  return { classes, k, m, xs, y, lambda: 1 / c, start, tolerance: options.gradientTolerance ?? SKLEARN_TOL, relativeReduction: options.relativeReduction ?? SCIPY_FTOL, maxIterations: options.maxIterations ?? 1000 };
}

/**
 * Loss and gradient from the logits (m x k, overwritten with probabilities): the cross-entropy part, with the
 * residuals P - Y left in `logits` and the intercept gradient written to g[nw ..].
 */
function softmaxResiduals(logits: Float64Array | Float32Array, m: number, k: number, y: Int32Array, w: Float64Array, nw: number, g: Float64Array): number {
  let f = 0;
  for (let j = 0; j < k; j++) g[nw + j] = 0;
  for (let i = 0; i < m; i++) {
    const lo = i * k;
    let mx = -Infinity;
    for (let j = 0; j < k; j++) {
      const z = logits[lo + j] + w[nw + j];
      logits[lo + j] = z;
      if (z > mx) mx = z;
    }
    const zy = logits[lo + y[i]];
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const e = Math.exp(logits[lo + j] - mx);
      logits[lo + j] = e;
      sum += e;
    }
    f += Math.log(sum) + mx - zy;
    const inv = 1 / sum;
    for (let j = 0; j < k; j++) {
      const r = logits[lo + j] * inv - (j === y[i] ? 1 : 0);
      logits[lo + j] = r;
      g[nw + j] += r;
    }
  }
  return f;
}

/** Adds the penalty ||W||^2 / (2C) and its gradient. */
function addPenalty(w: Float64Array, g: Float64Array, nw: number, lambda: number): number {
  let reg = 0;
  for (let p = 0; p < nw; p++) {
    reg += w[p] * w[p];
    g[p] += lambda * w[p];
  }
  return 0.5 * lambda * reg;
}

function modelOf(p: LogisticProblem, dim: number, res: LbfgsResult): LogisticModel {
  const nw = p.k * dim;
  return { classes: p.classes, dim, weights: res.x.slice(0, nw), intercepts: res.x.slice(nw), iterations: res.iterations, evaluations: res.evaluations, converged: res.converged };
}

function oneClassModel(p: LogisticProblem, dim: number): LogisticModel {
  // scikit-learn refuses to fit one class; the only sensible model predicts it with certainty
  return { classes: p.classes, dim, weights: new Float64Array(p.k * dim), intercepts: new Float64Array(p.k), iterations: 0, evaluations: 0, converged: true };
}

/**
 * Fits LogisticRegression(C, lbfgs, multinomial) on the rows `rows` of X (n x dim, row-major), in float64.
 * Classes are those present among the rows' labels, in increasing order.
 */
export function fitLogistic(
  x: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  rows: Int32Array,
  options: FitOptions = {},
): LogisticModel {
  const p = logisticProblem(x, dim, labels, rows, options);
  const { k, m, xs, y } = p;
  if (k < 2) return oneClassModel(p, dim);
  const nw = k * dim;
  const logits = new Float64Array(m * k);
  const objective = (w: Float64Array, g: Float64Array): number => {
    for (let i = 0; i < m; i++) {
      const xo = i * dim;
      for (let j = 0; j < k; j++) {
        const wo = j * dim;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let d = 0;
        for (; d + 4 <= dim; d += 4) {
          s0 += w[wo + d] * xs[xo + d];
          s1 += w[wo + d + 1] * xs[xo + d + 1];
          s2 += w[wo + d + 2] * xs[xo + d + 2];
          s3 += w[wo + d + 3] * xs[xo + d + 3];
        }
        for (; d < dim; d++) s0 += w[wo + d] * xs[xo + d];
        logits[i * k + j] = s0 + s1 + (s2 + s3);
      }
    }
    const f = softmaxResiduals(logits, m, k, y, w, nw, g);
    g.fill(0, 0, nw);
    for (let i = 0; i < m; i++) {
      const xo = i * dim;
      for (let j = 0; j < k; j++) {
        const r = logits[i * k + j];
        if (r === 0) continue;
        const go = j * dim;
        for (let d = 0; d < dim; d++) g[go + d] += r * xs[xo + d];
      }
    }
    return f + addPenalty(w, g, nw, p.lambda);
  };
  return modelOf(p, dim, lbfgs(objective, p.start, lbfgsOptionsOf(p)));
}

/** Above this many multiply-adds per product (rows x dim x classes), the probe's products run on ONNX Runtime. */
export const ONNX_MIN_WORK = 1 << 18;

/**
 * {@link fitLogistic} with each loss-and-gradient evaluation as one ONNX Runtime session run (onnxMatMul.ts
 * `logisticStepModelBytes`: X W^T + b, log-softmax, residuals, R^T X, all float32 on MLAS, multi-threaded) when the
 * problem is large and onnxruntime-node loads; the per-row losses are summed and the penalty and L-BFGS kept in
 * float64 here. Same objective and optimum, up to float32 rounding.
 */
export async function fitLogisticFast(
  x: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  rows: Int32Array,
  options: FitOptions = {},
): Promise<LogisticModel> {
  const engine = options.engine ?? 'auto';
  const big = rows.length * dim * new Set(Array.from(rows, (r) => labels[r])).size >= ONNX_MIN_WORK;
  const step = engine === 'onnx' || (engine === 'auto' && big) ? await onnxLogisticStep() : null;
  if (!step) return fitLogistic(x, dim, labels, rows, options);
  const p = logisticProblem(x, dim, labels, rows, options);
  const { k, m, xs, y } = p;
  if (k < 2) return oneClassModel(p, dim);
  const nw = k * dim;
  const yOneHot = new Float32Array(m * k);
  for (let i = 0; i < m; i++) yOneHot[i * k + y[i]] = 1;
  const w32 = new Float32Array(nw);
  const b32 = new Float32Array(k);
  const objective = async (w: Float64Array, g: Float64Array): Promise<number> => {
    for (let q = 0; q < nw; q++) w32[q] = w[q];
    for (let j = 0; j < k; j++) b32[j] = w[nw + j];
    const r = await step.run(xs, m, dim, w32, b32, yOneHot, k);
    let f = 0;
    for (let i = 0; i < m; i++) f += r.rowLoss[i];
    for (let q = 0; q < nw; q++) g[q] = r.gradW[q];
    for (let j = 0; j < k; j++) g[nw + j] = r.gradB[j];
    return f + addPenalty(w, g, nw, p.lambda);
  };
  return modelOf(p, dim, await lbfgsAsync(objective, p.start, lbfgsOptionsOf(p)));
}

/** Probabilities of `model` for rows `rows` of X, written into out (numClasses columns, absent classes 0). */
export function predictInto(
  model: LogisticModel,
  x: Float32Array,
  rows: Int32Array,
  out: Float64Array,
  numClasses: number,
): void {
  const k = model.classes.length;
  const dim = model.dim;
  const z = new Float64Array(k);
  for (const r of rows) {
    const oo = r * numClasses;
    for (let j = 0; j < numClasses; j++) out[oo + j] = 0;
    if (k === 1) {
      out[oo + model.classes[0]] = 1;
      continue;
    }
    let mx = -Infinity;
    for (let j = 0; j < k; j++) {
      let s = model.intercepts[j];
      const wo = j * dim;
      const xo = r * dim;
      for (let d = 0; d < dim; d++) s += model.weights[wo + d] * x[xo + d];
      z[j] = s;
      if (s > mx) mx = s;
    }
    let sum = 0;
    for (let j = 0; j < k; j++) {
      z[j] = Math.exp(z[j] - mx);
      sum += z[j];
    }
    for (let j = 0; j < k; j++) out[oo + model.classes[j]] = z[j] / sum;
  }
}

export interface CrossValidatedProbe {
  /** N x numClasses, row-major, out-of-sample. */
  probs: Float64Array;
  foldOfSample: Int32Array;
  folds: number;
  c: number;
  /** Classes with fewer samples than folds (each such class is missing from some training folds or test folds). */
  smallClasses: number[];
  /** Classes with a single sample: never in their own training fold, so probability 0 for their sample. */
  singletonClasses: number[];
  /** Folds whose L-BFGS hit the iteration limit. */
  unconverged: number;
  /** Each fold's L-BFGS iterations, objective evaluations and whether it converged, in fold order. */
  fits: { iterations: number; evaluations: number; converged: boolean }[];
}

/** Checks features: N x dim, finite. */
export function checkFeatures(features: Float32Array, n: number, dim: number, where: { file?: string } = {}): void {
  if (features.length !== n * dim) {
    throw new ClipLensError('features-bad-shape', `${features.length} feature values are not ${n} rows of width ${dim}`, where);
  }
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i])) {
      const row = Math.floor(i / dim);
      throw new ClipLensError('features-not-finite', `features row ${row}, column ${i - row * dim}: ${features[i]} is not a finite number`, where);
    }
  }
}

export function checkLabels(labels: ArrayLike<number>, numClasses: number, where: { file?: string } = {}): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < numClasses)) {
      throw new ClipLensError('predictions-bad-label', `label of row ${i} is ${y}, not a class index in [0, ${numClasses})`, where);
    }
  }
  const seen = new Set<number>();
  for (let i = 0; i < labels.length && seen.size < 2; i++) seen.add(labels[i]);
  if (seen.size < 2) {
    throw new ClipLensError('probe-one-class', `the labels name ${seen.size === 0 ? 'no class' : 'only one class'}: a predictor needs samples of at least 2 classes`, where);
  }
}

/**
 * What both cross-validation drivers share: the checks, the folds (scikit-learn's StratifiedKFold order), the classes
 * smaller than the folds, and the out-of-sample probabilities each fold's model records for its test samples.
 */
function planProbe(features: Float32Array, dim: number, labels: ArrayLike<number>, numClasses: number, options: { folds?: number; c?: number }) {
  const n = labels.length;
  checkFeatures(features, n, dim);
  checkLabels(labels, numClasses);
  const folds = options.folds ?? DEFAULT_FOLDS;
  const c = options.c ?? DEFAULT_PROBE_C;
  const foldOfSample = stratifiedFolds(labels, folds);
  const counts = new Int32Array(numClasses);
  for (let i = 0; i < n; i++) counts[labels[i]]++;
  const smallClasses: number[] = [];
  const singletonClasses: number[] = [];
  for (let j = 0; j < numClasses; j++) {
    if (counts[j] > 0 && counts[j] < folds) smallClasses.push(j);
    if (counts[j] === 1) singletonClasses.push(j);
  }
  const probs = new Float64Array(n * numClasses);
  let unconverged = 0;
  const fits: CrossValidatedProbe['fits'] = [];
  return {
    folds,
    c,
    foldOfSample,
    record(model: LogisticModel, test: Int32Array): void {
      if (!model.converged) unconverged++;
      fits.push({ iterations: model.iterations, evaluations: model.evaluations, converged: model.converged });
      predictInto(model, features, test, probs, numClasses);
    },
    result: (): CrossValidatedProbe => ({ probs, foldOfSample, folds, c, smallClasses, singletonClasses, unconverged, fits }),
  };
}

/** The training and test samples of fold `f`, in sample order. */
function foldIndices(foldOfSample: ArrayLike<number>, f: number): { train: Int32Array; test: Int32Array } {
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < foldOfSample.length; i++) (foldOfSample[i] === f ? test : train).push(i);
  return { train: Int32Array.from(train), test: Int32Array.from(test) };
}

/**
 * Out-of-sample probabilities of the linear probe: for each stratified fold, fit on the other folds (from zero, as
 * scikit-learn does), predict the fold. `maxIterations` bounds each fit's L-BFGS iterations (default 1000;
 * scikit-learn's default is 100).
 */
export function crossValidatedProbe(
  features: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  numClasses: number,
  options: { folds?: number; c?: number; maxIterations?: number } = {},
): CrossValidatedProbe {
  const plan = planProbe(features, dim, labels, numClasses, options);
  for (let f = 0; f < plan.folds; f++) {
    const { train, test } = foldIndices(plan.foldOfSample, f);
    plan.record(fitLogistic(features, dim, labels, train, { c: plan.c, maxIterations: options.maxIterations }), test);
  }
  return plan.result();
}

/**
 * {@link crossValidatedProbe} with large fits on ONNX Runtime ({@link fitLogisticFast}); what evaluations use.
 * Out-of-sample probabilities of the linear probe: for each stratified fold, fit on the other folds (from zero, as
 * scikit-learn does), predict the fold. `maxIterations` bounds each fit's L-BFGS iterations (default 1000;
 * scikit-learn's default is 100).
 */
export async function crossValidatedProbeFast(
  features: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  numClasses: number,
  options: { folds?: number; c?: number; maxIterations?: number; engine?: FitOptions['engine']; warmStart?: boolean } = {},
): Promise<CrossValidatedProbe> {
  const plan = planProbe(features, dim, labels, numClasses, options);
  let previous: LogisticModel | null = null;
  for (let f = 0; f < plan.folds; f++) {
    const { train, test } = foldIndices(plan.foldOfSample, f);
    const start = options.warmStart && previous ? startFrom(previous, dim, labels, train) : undefined;
    const model = await fitLogisticFast(features, dim, labels, train, { c: plan.c, maxIterations: options.maxIterations, engine: options.engine, start });
    plan.record(model, test);
    previous = model;
  }
  return plan.result();
}

/** Initial parameters for a fit on `rows` from another fold's model: each class's row and intercept, 0 for a class it lacked. */
function startFrom(model: LogisticModel, dim: number, labels: ArrayLike<number>, rows: Int32Array): Float64Array {
  const classes = [...new Set(Array.from(rows, (r) => labels[r]))].sort((a, b) => a - b);
  const k = classes.length;
  const out = new Float64Array(k * dim + k);
  const at = new Map(Array.from(model.classes, (c, j) => [c, j] as const));
  classes.forEach((c, j) => {
    const o = at.get(c);
    if (o === undefined) return;
    out.set(model.weights.subarray(o * dim, (o + 1) * dim), j * dim);
    out[k * dim + j] = model.intercepts[o];
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// L-BFGS

interface LbfgsResult {
  x: Float64Array;
  f: number;
  iterations: number;
  /** Objective evaluations (line-search trials included). */
  evaluations: number;
  converged: boolean;
}

/**
 * Limited-memory BFGS (memory 10) with a backtracking line search satisfying the Armijo condition (cubic/halving
 * steps); curvature pairs with s'y <= 0 are skipped. The objective is convex here, so any stationary point is the
 * optimum. Stops as scipy's L-BFGS-B does (what scikit-learn's lbfgs solver runs): when max |gradient| <=
 * gradientTolerance (`pgtol`), or when an iteration lowers the objective by at most `relativeReduction` x
 * max(|f_old|, |f|, 1) (`ftol`), or after maxIterations iterations (`maxiter`); both tests count as converged.
 */
export function lbfgs(
  fg: (x: Float64Array, g: Float64Array) => number,
  x0: Float64Array,
  options: LbfgsOptions,
): LbfgsResult {
  const steps = lbfgsSteps(x0, options);
  let r = steps.next();
  while (!r.done) r = steps.next(fg(r.value.x, r.value.g));
  return r.value;
}

/** {@link lbfgs} with an asynchronous objective (e.g. matrix products on ONNX Runtime). */
export async function lbfgsAsync(
  fg: (x: Float64Array, g: Float64Array) => Promise<number>,
  x0: Float64Array,
  options: LbfgsOptions,
): Promise<LbfgsResult> {
  const steps = lbfgsSteps(x0, options);
  let r = steps.next();
  while (!r.done) r = steps.next(await fg(r.value.x, r.value.g));
  return r.value;
}

interface LbfgsOptions {
  gradientTolerance: number;
  /** scipy's `ftol` (default 0: only the gradient test and the iteration limit stop). */
  relativeReduction?: number;
  maxIterations: number;
  memory?: number;
}

/** The L-BFGS iteration as a generator: it yields a point and a gradient buffer, and receives the objective there. */
function* lbfgsSteps(x0: Float64Array, options: LbfgsOptions): Generator<{ x: Float64Array; g: Float64Array }, LbfgsResult, number> {
  const n = x0.length;
  const mem = options.memory ?? 10;
  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  const ftol = options.relativeReduction ?? 0;
  let evaluations = 1;
  let f: number = yield { x, g };
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const d = new Float64Array(n);
  const xNew = new Float64Array(n);
  const gNew = new Float64Array(n);
  const alpha = new Float64Array(mem);
  let sNew: Float64Array = new Float64Array(n);
  let yNew: Float64Array = new Float64Array(n);
  const maxAbs = (v: Float64Array) => {
    let m = 0;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
    return m;
  };
  let it = 0;
  for (; it < options.maxIterations; it++) {
    if (maxAbs(g) <= options.gradientTolerance) return { x, f, iterations: it, evaluations, converged: true };
    // two-loop recursion: d = -H g
    for (let i = 0; i < n; i++) d[i] = -g[i];
    for (let j = S.length - 1; j >= 0; j--) {
      let a = 0;
      const s = S[j];
      for (let i = 0; i < n; i++) a += s[i] * d[i];
      a *= rho[j];
      alpha[j] = a;
      const yv = Y[j];
      for (let i = 0; i < n; i++) d[i] -= a * yv[i];
    }
    if (S.length > 0) {
      const s = S[S.length - 1];
      const yv = Y[Y.length - 1];
      let sy = 0;
      let yy = 0;
      for (let i = 0; i < n; i++) {
        sy += s[i] * yv[i];
        yy += yv[i] * yv[i];
      }
      const gamma = sy / yy;
      for (let i = 0; i < n; i++) d[i] *= gamma;
    }
    for (let j = 0; j < S.length; j++) {
      let b = 0;
      const yv = Y[j];
      for (let i = 0; i < n; i++) b += yv[i] * d[i];
      b *= rho[j];
      const s = S[j];
      const a = alpha[j] - b;
      for (let i = 0; i < n; i++) d[i] += a * s[i];
    }
    let gd = 0;
    for (let i = 0; i < n; i++) gd += g[i] * d[i];
    if (!(gd < 0)) {
      // not a descent direction: restart from steepest descent
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i];
      gd = 0;
      for (let i = 0; i < n; i++) gd -= g[i] * g[i];
    }
    let t = S.length === 0 ? Math.min(1, 1 / Math.sqrt(-gd)) : 1;
    let fNew = NaN;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + t * d[i];
      fNew = yield { x: xNew, g: gNew };
      evaluations++;
      if (Number.isFinite(fNew) && fNew <= f + 1e-4 * t * gd) {
        accepted = true;
        break;
      }
      // cubic-free safeguarded quadratic interpolation of phi(t)
      const tq = Number.isFinite(fNew) ? (-gd * t * t) / (2 * (fNew - f - gd * t)) : t / 2;
      t = Math.min(Math.max(tq, 0.1 * t), 0.5 * t);
    }
    if (!accepted) return { x, f, iterations: it, evaluations, converged: maxAbs(g) <= options.gradientTolerance };
    const s = sNew;
    const yv = yNew;
    let sy = 0;
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      yv[i] = gNew[i] - g[i];
      sy += s[i] * yv[i];
    }
    const fOld = f;
    x.set(xNew);
    g.set(gNew);
    f = fNew;
    if (sy > 1e-12) {
      // the pair joins the memory; the oldest pair's buffers (once the memory is full) become the next scratch
      if (S.length === mem) {
        sNew = S.shift()!;
        yNew = Y.shift()!;
        rho.shift();
      } else {
        sNew = new Float64Array(n);
        yNew = new Float64Array(n);
      }
      S.push(s);
      Y.push(yv);
      rho.push(1 / sy);
    }
    if (maxAbs(g) <= options.gradientTolerance) return { x, f, iterations: it + 1, evaluations, converged: true };
    const reduction = fOld - f;
    if (ftol > 0 && reduction <= ftol * Math.max(Math.abs(fOld), Math.abs(f), 1)) return { x, f, iterations: it + 1, evaluations, converged: true };
    if (ftol === 0 && reduction <= 1e-15 * Math.max(1, Math.abs(f)) && maxAbs(g) <= 100 * options.gradientTolerance) {
      return { x, f, iterations: it + 1, evaluations, converged: true };
    }
  }
  return { x, f, iterations: it, evaluations, converged: maxAbs(g) <= options.gradientTolerance };
}
