/**
 * Which predictor's probabilities find the label errors of an evaluation, and what the report says about it.
 *
 * - `zero-shot`: CLIP's zero-shot probabilities from the class prompts (needs class names CLIP understands).
 * - `linear-probe`: the cross-validated linear probe on the image embeddings (linearProbe.ts).
 * - `knn`: cleanlab Datalab's kNN label route on the image embeddings (knnPredictor.ts).
 * - `auto` (default): the linear probe always runs (its per-class recall goes next to zero-shot's), and its
 *   probabilities find the label errors when zero-shot is near chance or the probe is far ahead of it; otherwise
 *   zero-shot does. The rule and the measurements behind it are in docs/predictors.md ({@link AUTO_RULE}).
 *
 * Nothing here runs inference: the embeddings are those the evaluation already computed (or read from the cache).
 */
import { crossValidatedProbeFast, DEFAULT_FOLDS, DEFAULT_PROBE_C, type CrossValidatedProbe } from './linearProbe';
import { probeCacheKey, readCachedProbe, writeCachedProbe } from './probeCache';
import { DEFAULT_KNN_K, knnProbabilitiesAsync, l2Normalise } from './knnPredictor';
import { findLabelIssues, findLabelIssuesFloat64 } from './labelIssues';
import { computeMetrics } from './metrics';
import { ProbabilityMatrix } from './probabilities';
import type { LabelIssue, Metrics, PredictorName, PredictorReport, Warning } from './report';

export const PREDICTOR_NAMES: readonly PredictorName[] = ['auto', 'zero-shot', 'linear-probe', 'knn'];

/**
 * auto uses the probe when zero-shot balanced accuracy is below `chanceFactor` x chance (1 / classes), or when the
 * probe's balanced accuracy is at least `probeLead` above zero-shot's.
 */
export const AUTO_RULE = { chanceFactor: 2, probeLead: 0.3 };

/**
 * auto runs the linear probe only up to this many samples (above, zero-shot finds the label errors and the report
 * says why; `linear-probe` or `knn` can still be asked for): the probe is minutes of work at tens of thousands of
 * samples on a laptop (docs/benchmarks.md), and every embedding must be held in memory for it.
 */
export const AUTO_PROBE_MAX_SAMPLES = 50_000;

/** Whether an evaluation must keep every image embedding for the predictor (see AUTO_PROBE_MAX_SAMPLES). */
export function predictorNeedsEmbeddings(requested: PredictorName, samples: number): boolean {
  return requested === 'linear-probe' || requested === 'knn' || (requested === 'auto' && samples <= AUTO_PROBE_MAX_SAMPLES);
}

/** L-BFGS iterations per fold in evaluations (scikit-learn's default max_iter is 100). */
export const PROBE_MAX_ITERATIONS = 300;

/**
 * Evaluations start each fold's fit from the previous fold's model (14% fewer objective evaluations at 20,000 x 512,
 * 100 classes; probabilities still within 1e-3 of scikit-learn's cold-started cross_val_predict on the shared cases,
 * docs/benchmarks.md). `clip-lens probe` starts every fold from zero, as scikit-learn does.
 */
export const PROBE_WARM_START = true;

/** Per-class thresholds of the predictor warnings. */
export const PREDICTOR_WARNING_THRESHOLDS = {
  /** 'prompt-fails': probe recall at least this... */
  probeGoodRecall: 0.8,
  /** ...and zero-shot recall at most this. */
  zeroShotBadRecall: 0.3,
  /** 'classes-do-not-separate': both recalls below this. */
  bothLowRecall: 0.5,
  /** Classes with fewer samples are not judged per class. */
  minSupport: 5,
};

export interface PredictorInput {
  classes: string[];
  /** Labels of the evaluated rows. */
  labels: number[];
  /** Image embeddings of the evaluated rows (rows x dim). */
  embeddings: Float32Array;
  dim: number;
  /**
   * Zero-shot probabilities of the evaluated rows and their metrics; or, when the judgement streams
   * (streamedJudgement.ts), what finds zero-shot's label issues without the matrix.
   */
  zeroShot: ProbabilityMatrix | (() => Promise<LabelIssue[]>);
  zeroShotMetrics: Metrics;
  requested?: PredictorName;
  folds?: number;
  c?: number;
  k?: number;
  /**
   * Cache root (the embedding cache's): the probe's out-of-sample probabilities are kept there (probeCache.ts) and
   * reused while the embeddings, labels, classes, folds and C are unchanged. null or absent: no cache.
   */
  cacheRoot?: string | null;
}

export interface PredictorOutcome {
  /** Label issues, `index` = evaluated row. */
  labelIssues: LabelIssue[];
  report: PredictorReport;
  warnings: Warning[];
  /**
   * Set when zero-shot is near chance and another predictor finds the label errors: that predictor's probabilities
   * over the evaluated rows and their metrics. The rare-class warnings follow it (warnings.ts `judge`): zero-shot's
   * would flag nearly every rare class only because the class names mean nothing to CLIP.
   */
  judge?: { predictor: 'linear-probe' | 'knn'; probs: ProbabilityMatrix; metrics: Metrics };
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function toMatrix(probs: Float64Array, k: number): ProbabilityMatrix {
  const m = new ProbabilityMatrix(k);
  for (let i = 0; i < probs.length / k; i++) m.push(probs.subarray(i * k, (i + 1) * k));
  return m;
}

/**
 * Whether {@link runPredictors} takes its label issues from zero-shot for certain, before any other predictor runs:
 * asked for, or `auto` above AUTO_PROBE_MAX_SAMPLES (false: it may, depending on the zero-shot metrics).
 */
export function zeroShotFindsLabelIssues(requested: PredictorInput['requested'], n: number): boolean {
  const r = requested ?? 'auto';
  return r === 'zero-shot' || (r === 'auto' && n > AUTO_PROBE_MAX_SAMPLES);
}

/** Runs the requested predictor(s) and says which one found the label issues. */
export async function runPredictors(input: PredictorInput): Promise<PredictorOutcome> {
  const { classes, labels, zeroShotMetrics } = input;
  const requested = input.requested ?? 'auto';
  const k = classes.length;
  const n = labels.length;
  const present = new Set(labels).size;
  const zeroShot = input.zeroShot;
  const zeroShotIssues = async () => (zeroShot instanceof ProbabilityMatrix ? findLabelIssues({ classes, labels, probs: zeroShot }) : zeroShot());
  const perClassZeroShot = zeroShotMetrics.perClass;
  const base = (used: PredictorReport['used'], reason: string): PredictorReport => ({
    requested,
    used,
    reason,
    zeroShot: { top1Accuracy: zeroShotMetrics.top1Accuracy, balancedAccuracy: zeroShotMetrics.balancedAccuracy },
    perClass: perClassZeroShot.map((c) => ({ class: c.class, support: c.support, zeroShotRecall: c.recall, probeRecall: null })),
  });
  if (zeroShotFindsLabelIssues(requested, n)) {
    const reason = requested === 'zero-shot' ? 'requested' : `${n} samples: above ${AUTO_PROBE_MAX_SAMPLES}, auto does not run the linear probe (ask for --predictor linear-probe or knn)`;
    return { labelIssues: await zeroShotIssues(), report: base('zero-shot', reason), warnings: [] };
  }
  if (present < 2 || input.dim === 0) {
    return { labelIssues: await zeroShotIssues(), report: base('zero-shot', 'the embedding predictors need samples of at least 2 classes'), warnings: [] };
  }
  const unit = l2Normalise(input.embeddings, input.dim);
  const chance = 1 / Math.max(2, present);
  const atChance = zeroShotMetrics.balancedAccuracy < AUTO_RULE.chanceFactor * chance;

  if (requested === 'knn') {
    const kn = Math.min(input.k ?? DEFAULT_KNN_K, n - 1);
    const knn = await knnProbabilitiesAsync(unit, input.dim, labels, k, { k: kn, normalised: true });
    const probs = toMatrix(knn.probs, k);
    const m = computeMetrics({ classes, labels, probs });
    const report = base('knn', 'requested');
    report.knn = { k: kn, top1Accuracy: m.top1Accuracy, balancedAccuracy: m.balancedAccuracy, approximate: knn.approximate };
    const labelIssues = findLabelIssuesFloat64(classes, labels, knn.probs);
    if (!atChance) return { labelIssues, report, warnings: [] };
    return { labelIssues, report, warnings: [atChanceWarning(report, m)], judge: { predictor: 'knn', probs, metrics: m } };
  }

  // linear-probe or auto: the probe runs
  let maxCount = 0;
  const counts = new Map<number, number>();
  for (const y of labels) counts.set(y, (counts.get(y) ?? 0) + 1);
  for (const v of counts.values()) maxCount = Math.max(maxCount, v);
  const folds = Math.min(input.folds ?? DEFAULT_FOLDS, maxCount);
  if (folds < 2) {
    return { labelIssues: await zeroShotIssues(), report: base('zero-shot', 'no class has 2 samples: the linear probe cannot be cross-validated'), warnings: [] };
  }
  const probe = await cachedProbe(input, unit, folds, input.c ?? DEFAULT_PROBE_C);
  const probeProbs = toMatrix(probe.probs, k);
  const pm = computeMetrics({ classes, labels, probs: probeProbs });
  const lead = pm.balancedAccuracy - zeroShotMetrics.balancedAccuracy;
  let used: PredictorReport['used'];
  let reason: string;
  if (requested === 'linear-probe') {
    used = 'linear-probe';
    reason = 'requested';
  } else if (atChance) {
    used = 'linear-probe';
    reason = `zero-shot balanced accuracy ${pct(zeroShotMetrics.balancedAccuracy)} is near chance (${pct(chance)})`;
  } else if (lead >= AUTO_RULE.probeLead) {
    used = 'linear-probe';
    reason = `the linear probe's balanced accuracy ${pct(pm.balancedAccuracy)} is far ahead of zero-shot's ${pct(zeroShotMetrics.balancedAccuracy)}`;
  } else {
    used = 'zero-shot';
    reason = `zero-shot balanced accuracy ${pct(zeroShotMetrics.balancedAccuracy)} is close to the linear probe's ${pct(pm.balancedAccuracy)}`;
  }
  const report = base(used, reason);
  report.linearProbe = {
    folds: probe.folds,
    c: probe.c,
    top1Accuracy: pm.top1Accuracy,
    balancedAccuracy: pm.balancedAccuracy,
    singletonClasses: probe.singletonClasses.map((j) => classes[j]),
    fromCache: probe.fromCache,
    cChosenBy: input.c === undefined ? 'default' : 'requested',
  };
  report.perClass = perClassZeroShot.map((c, j) => ({ class: c.class, support: c.support, zeroShotRecall: c.recall, probeRecall: pm.perClass[j].recall }));
  const labelIssues = used === 'linear-probe' ? findLabelIssuesFloat64(classes, labels, probe.probs) : await zeroShotIssues();
  const warnings = predictorWarnings(report, pm, atChance);
  // At chance the probe judges (auto and linear-probe alike): the rare-class warnings follow it.
  if (atChance && used === 'linear-probe') return { labelIssues, report, warnings, judge: { predictor: 'linear-probe', probs: probeProbs, metrics: pm } };
  return { labelIssues, report, warnings };
}

/**
 * The cross-validated probe of the evaluated rows, from the probe cache when the same embeddings, labels, classes,
 * folds and C were fitted before (`fromCache` true), else fitted and stored.
 */
async function cachedProbe(input: PredictorInput, unit: Float32Array, folds: number, c: number): Promise<CrossValidatedProbe & { fromCache: boolean }> {
  const root = input.cacheRoot;
  const key = root ? probeCacheKey({ embeddings: input.embeddings, dim: input.dim, labels: input.labels, classes: input.classes, folds, c, maxIterations: PROBE_MAX_ITERATIONS }) : '';
  if (root) {
    const hit = await readCachedProbe(root, key, input.labels, input.classes.length);
    if (hit) return { ...hit, fromCache: true };
  }
  const probe = await crossValidatedProbeFast(unit, input.dim, input.labels, input.classes.length, { folds, c, maxIterations: PROBE_MAX_ITERATIONS, warmStart: PROBE_WARM_START });
  if (root) await writeCachedProbe(root, key, probe);
  return { ...probe, fromCache: false };
}

/**
 * `zero-shot-at-chance` (warning): the class names mean nothing to CLIP, and `judge` (the report's `used` predictor,
 * linear probe or kNN, with its metrics) finds the label errors and gives the rare-class warnings.
 */
function atChanceWarning(report: PredictorReport, judge: Metrics): Warning {
  const name = report.used === 'knn' ? 'kNN' : 'the linear probe';
  return {
    kind: 'zero-shot-at-chance',
    severity: 'warning',
    message:
      `Zero-shot balanced accuracy is ${pct(report.zeroShot.balancedAccuracy)}, near chance: the class names mean nothing to CLIP. ` +
      `Label errors and rare-class warnings come from ${name} (balanced accuracy ${pct(judge.balancedAccuracy)}); add prompts in .clip-lens.json to evaluate zero-shot.`,
    numbers: {
      zeroShotBalancedAccuracy: report.zeroShot.balancedAccuracy,
      [report.used === 'knn' ? 'knnBalancedAccuracy' : 'probeBalancedAccuracy']: judge.balancedAccuracy,
      chance: 1 / report.perClass.filter((c) => c.support > 0).length,
    },
  };
}

/**
 * Warnings a person acts on, from zero-shot next to the probe:
 * - `zero-shot-at-chance` (warning): the class names mean nothing to CLIP;
 * - `prompt-fails` (warning, per class): the probe separates the class, the prompt does not;
 * - `classes-do-not-separate` (warning, per class): neither does, the class is confused with another.
 */
export function predictorWarnings(report: PredictorReport, probeMetrics: Metrics, atChance: boolean): Warning[] {
  const t = PREDICTOR_WARNING_THRESHOLDS;
  const out: Warning[] = [];
  if (atChance) {
    out.push(atChanceWarning(report, probeMetrics));
    return out; // per-class prompt warnings would name every class
  }
  const cm = probeMetrics.confusionMatrix;
  report.perClass.forEach((c, j) => {
    if (c.probeRecall === null || c.support < t.minSupport) return;
    if (c.probeRecall >= t.probeGoodRecall && c.zeroShotRecall <= t.zeroShotBadRecall) {
      out.push({
        kind: 'prompt-fails',
        severity: 'warning',
        class: c.class,
        message: `CLIP separates '${c.class}' well (probe recall ${pct(c.probeRecall)}) but the prompt fails (zero-shot recall ${pct(c.zeroShotRecall)}): try another name or prompt.`,
        numbers: { probeRecall: c.probeRecall, zeroShotRecall: c.zeroShotRecall, support: c.support },
      });
    } else if (c.probeRecall < t.bothLowRecall && c.zeroShotRecall < t.bothLowRecall) {
      // the class its images are most often taken for by the probe
      let other = -1;
      for (let o = 0; o < cm[j].length; o++) if (o !== j && (other < 0 || cm[j][o] > cm[j][other])) other = o;
      const otherName = other >= 0 ? probeMetrics.classes[other] : '';
      out.push({
        kind: 'classes-do-not-separate',
        severity: 'warning',
        class: c.class,
        message: `The images of '${c.class}' and '${otherName}' do not separate (probe recall ${pct(c.probeRecall)}, zero-shot recall ${pct(c.zeroShotRecall)}): more data or a bigger model.`,
        numbers: { probeRecall: c.probeRecall, zeroShotRecall: c.zeroShotRecall, support: c.support, confusedWith: other >= 0 ? cm[j][other] : 0 },
      });
    }
  });
  return out;
}
