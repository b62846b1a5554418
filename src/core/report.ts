/**
 * The evaluation report: the one data model that the CLI writes (`eval --json`), the gate checks, the extension
 * turns into diagnostics and trees, and the webview panel draws. Plain JSON-safe data only.
 *
 * Shapes marked "keep" are consumed by CI dashboards and other tools: change them only with a schemaVersion bump.
 */
import type { DatasetFormat, DatasetProblem, ScoredClass } from './types';
import type { Comparison } from './comparison';
import type { WarningThresholds } from './warnings';


export const REPORT_SCHEMA_VERSION = 2;

/** Numeric precision of the model's graphs (core/precision.ts decides). */
export type Precision = 'auto' | 'fp32' | 'int8';

/** How fp32 and int8 compared on the sample. */
export interface PrecisionAgreement {
  sample: number;
  /** Share of the sample with the same zero-shot top-1 class. */
  top1Agreement: number;
  meanCosine: number;
  minCosine: number;
  /** The sample image with the lowest cosine (path as given). */
  worstImage?: string;
}

/** What a run used and why (in the report as `precision`). */
export interface PrecisionChoice {
  requested: Precision;
  used: 'fp32' | 'int8';
  reason: string;
  agreement?: PrecisionAgreement;
}

/** Averages over classes (keep). */
export interface AveragedScores {
  precision: number;
  recall: number;
  f1: number;
}

/** Per-class metrics (keep). Zero-division follows scikit-learn's default: 0 where a ratio is 0/0. */
export interface ClassMetrics {
  class: string;
  /** Number of samples whose true label is this class. */
  support: number;
  /** Number of samples predicted (top-1) as this class. */
  predicted: number;
  precision: number;
  recall: number;
  f1: number;
  /** Recall@K for this class, keyed by K as a string. */
  recallAtK: Record<string, number>;
  /** One-vs-rest average precision of this class's probability (sklearn average_precision_score); null with no support. */
  averagePrecision: number | null;
}

/** The `metrics` object (keep): rows of confusionMatrix are true classes, columns predicted, both in `classes` order. */
export interface Metrics {
  classes: string[];
  n: number;
  top1Accuracy: number;
  balancedAccuracy: number;
  recallAtK: Record<string, number>;
  macro: AveragedScores;
  weighted: AveragedScores;
  perClass: ClassMetrics[];
  confusionMatrix: number[][];
}

export type WarningKind =
  | 'rare-class-low-recall'
  | 'class-imbalance'
  | 'low-accuracy'
  | 'good-accuracy'
  | 'low-recall-at-k'
  | 'duplicate'
  | 'possible-leakage'
  | 'dataset-errors'
  | 'zero-shot-at-chance'
  | 'prompt-fails'
  | 'classes-do-not-separate'
  | 'leakage'
  | 'conflicting-labels'
  | 'class-outliers'
  | 'class-collision'
  | 'overfitting';

/** A judgement a person acts on: a stable kind, the numbers behind it and a sentence. */
export interface Warning {
  kind: WarningKind;
  severity: 'error' | 'warning' | 'info';
  message: string;
  /** The class concerned, when there is one. */
  class?: string;
  /** The split concerned, when the warning is about one split. */
  split?: string;
  /**
   * The predictor whose metrics the warning is computed from, when not zero-shot's: rare-class warnings follow the
   * linear probe or kNN when zero-shot is near chance (warnings.ts).
   */
  predictor?: 'linear-probe' | 'knn';
  /** Sample paths concerned (duplicates, leakage), relative to the dataset root. */
  paths?: string[];
  /** The numbers behind the message, e.g. { recall: 0.12, support: 8, threshold: 0.5 }. */
  numbers: Record<string, number>;
}

/** A likely label error (keep): `index` is the sample's row; `score` is its label quality (lower = more suspicious). */
export interface LabelIssue {
  index: number;
  given: string;
  suggested: string;
  score: number;
  /** 1-based rank, 1 = most likely wrong. */
  rank: number;
  /** Sample path relative to the dataset root (reports of datasets only). */
  path?: string;
}

/** Which predictor's probabilities find label errors (predictors.ts). */
export type PredictorName = 'auto' | 'zero-shot' | 'linear-probe' | 'knn';

/** What the report says about the predictors: which one found the label issues, and why. */
export interface PredictorReport {
  requested: PredictorName;
  used: Exclude<PredictorName, 'auto'>;
  /** One sentence: why this predictor. */
  reason: string;
  zeroShot: { top1Accuracy: number; balancedAccuracy: number };
  /** The cross-validated linear probe on the image embeddings, when it ran. */
  linearProbe?: {
    folds: number;
    c: number;
    top1Accuracy: number;
    balancedAccuracy: number;
    singletonClasses: string[];
    /** Whether the out-of-sample probabilities came from the probe cache (same embeddings, labels, folds and C). */
    fromCache?: boolean;
    /**
     * How C was chosen: 'default' (DEFAULT_PROBE_C = 10, fixed; an inner validation over C = 0.1..100 was measured
     * and changed nothing it finds, docs/predictors.md) or 'requested' (given by the caller).
     */
    cChosenBy?: 'default' | 'requested';
  };
  knn?: { k: number; top1Accuracy: number; balancedAccuracy: number; approximate: boolean };
  /** Per class (in `dataset.classes` order): zero-shot recall next to the probe's (null when the probe did not run). */
  perClass: { class: string; support: number; zeroShotRecall: number; probeRecall: number | null }[];
}

/** One group of the report's `duplicates` section (keep). `splits` and `labels` run parallel to `paths`. */
export interface DuplicateGroup {
  kind: 'exact' | 'near';
  paths: string[];
  /** Split of each path, in `paths` order; empty when the dataset has no split level. */
  splits: string[];
  /** Given label of each path, in `paths` order. */
  labels: string[];
  /** 1 for exact groups; for near groups the lowest cosine among the pairs that link the group. */
  similarity: number;
}

/** Samples of one split that have a copy or near-copy in an earlier split. */
export interface LeakedSplit {
  split: string;
  /** The earlier splits holding the copies. */
  earlier: string[];
  /** The leaked samples (later copies), as paths. */
  paths: string[];
  /** For each leaked path, the path of its copy in the earliest split (parallel to `paths`). */
  copies: string[];
  /** Metrics of the split without the leaked samples (null when none would be left or no metrics were given). */
  metricsWithoutLeaked: Metrics | null;
}

export interface Outlier {
  path: string;
  label: string;
  split?: string;
  /** median(d) / d, d = mean cosine distance to the nearest other images (at most 1): lower = more unusual. */
  score: number;
  /** Mean cosine distance to the nearest other images. */
  distance: number;
  /** Cosine distance to the mean embedding of the rest of its class. */
  classDistance: number;
}

export interface ReportSample {
  path: string;
  label: string;
  split?: string;
  /** Label file and 1-based line the label comes from. */
  source?: { file: string; line: number };
  /** Top-K classes with softmax probabilities, best first. Empty when the image could not be read. */
  predicted: ScoredClass[];
  /** Full probability vector in `dataset.classes` order (only with --probabilities). */
  probabilities?: number[];
  /** SHA-256 of the file content, hex (used for duplicate and leakage detection). */
  contentHash?: string;
  /** Why this sample has no prediction. */
  error?: { code: string; message: string };
}

/** What a provisional result covers (EvalReport.provisional). */
export interface ProvisionalInfo {
  /** Images finished (embedded, from the cache, or failed) so far, of `total`. */
  done: number;
  total: number;
  /** The run was cancelled here: this is all it computed (the embeddings are in the cache). */
  cancelled?: boolean;
}

/** One model of a two-model run (the report's `models`). */
export interface ModelRun {
  id: string;
  dir: string;
  quantized: boolean;
  imageSize: number;
  top1Accuracy: number | null;
  balancedAccuracy: number | null;
  macroF1: number | null;
  labelIssues: number;
  imagesComputed: number;
  imagesFromCache: number;
}

export interface EvalReport {
  schemaVersion: number;
  tool: { name: 'clip-lens'; version: string };
  createdAt: string;
  model: {
    /** Registry id or the model directory as given. */
    id: string;
    dir: string;
    quantized: boolean;
    embeddingDim: number;
    logitScale: number;
    imageSize: number;
  };
  /** Which numeric precision ran and why (with `auto`, the measured fp32/int8 agreement). */
  precision?: PrecisionChoice;
  /** Image embeddings read from a clip-retrieval folder (eval --embeddings) instead of computed. */
  embeddings?: {
    dir: string;
    shards: number;
    rows: number;
    dtype: 'float16' | 'float32' | 'mixed';
    /** Images embedded locally and compared (null: not checked, see verifySkipped). */
    verified: { n: number; meanCosine: number; minCosine: number; worstPath: string } | null;
    verifySkipped?: string;
    /**
     * Images whose folder is not on disk here (each folder checked once, no image tried): they have no perceptual
     * hash, so their duplicates come from the embeddings alone. Absent when every folder was found.
     */
    imagesNotOnDisk?: { images: number; folders: number; example: string };
  };
  templates: { name: string; count: number };
  topK: number;
  dataset: {
    root: string;
    format: DatasetFormat;
    labelFile?: string;
    classes: string[];
    splits?: string[];
    counts: { samples: number; evaluated: number; failed: number; perClass: Record<string, number> };
  };
  /**
   * Every sample, inline (keep): present for reports of up to 50,000 samples (eval --samples auto) or with
   * --samples inline. Read samples through samplesOf (core/reportSamples.ts), which also reads the sidecar.
   */
  samples?: ReportSample[];
  /** The columnar sidecar holding the samples (relative to the report file), when one was written. */
  samplesFile?: string;
  errors: DatasetProblem[];
  /** Metrics over all evaluated samples; null when nothing could be evaluated. */
  metrics: Metrics | null;
  /** Metrics per split when the dataset has splits. */
  metricsBySplit?: Record<string, Metrics>;
  warnings: Warning[];
  /**
   * The thresholds the warnings were computed with (the dataset's `.clip-lens.json`, then the editor's settings, then
   * the defaults). The good/fair/poor bands of the headline metrics follow them in every view (metricCatalogue.ts).
   * Absent in reports written by earlier versions: the defaults apply.
   */
  thresholds?: WarningThresholds;
  labelIssues: LabelIssue[];
  /** Which predictor found the label issues (absent in reports written before predictors existed). */
  predictor?: PredictorReport;
  /** Exact and near-duplicate groups (keep; docs/duplicates.md). Absent in reports written before it existed. */
  duplicates?: DuplicateGroup[];
  /** Per later split, the samples with a copy in an earlier split and the split's metrics without them. */
  leakage?: LeakedSplit[];
  /** Images unlike the rest of their class and of the dataset, most unusual first. */
  outliers?: Outlier[];
  /**
   * With `eval --baseline FILE`: the changes from that earlier run (A) to this one (B), see core/compare.ts. With two
   * models (eval --model A --model B): the changes from the second model (A) to this report's, the first (B).
   */
  comparison?: Comparison;
  /**
   * Present only on results shown while a run goes on (evaluate.ts onProvisional; never in a written report): the
   * metrics and label issues over the `done` of `total` images finished so far, label issues from zero-shot (the
   * linear probe and kNN need every sample), no duplicates or outliers yet. The final report replaces it.
   * `cancelled`: the run was cancelled at `done` (the editor keeps the last provisional view, marked so).
   */
  provisional?: ProvisionalInfo;
  /** With two models (eval --model A --model B, config "models"): both, this report's first, with their headlines. */
  models?: ModelRun[];
  timing: {
    totalMs: number;
    textMs: number;
    /** Image phase: reading, hashing, decoding and inference (session creation excluded). */
    imageMs: number;
    /** Creating the vision session in this run (0 when every image came from the cache). */
    sessionMs?: number;
    imagesComputed: number;
    imagesFromCache: number;
    /** Embeddings read from outside (eval --embeddings) instead of computed. */
    imagesImported?: number;
    imagesPerSecond: number;
    /**
     * The judgement (zero-shot product, metrics, predictor's label issues, duplicates): its wall time and how many
     * zero-shot products it ran: 1 with the probabilities held, 3 when streamed (their N x K matrix would outgrow
     * the embeddings: see core/streamedJudgement.ts).
     */
    judgement?: { ms: number; passes: number; streamed: boolean };
  };
}
