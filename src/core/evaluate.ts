/**
 * The evaluation pipeline: dataset -> CLIP zero-shot predictions -> metrics, warnings, label issues -> EvalReport.
 *
 * Images are read and hashed on this thread, decoded and resized by sharp on libuv's threads, and inferred in the
 * model's worker thread; the next batch is prepared while the current one is inferred. Embeddings are cached by
 * content hash, so a re-run only infers new or changed images.
 */
import { memMark, releaseGarbage } from './memLog';
import * as path from 'node:path';
import { datasetFormat } from './datasetFormat';
import { CancelledError, ClipLensError, throwIfAborted } from './errors';
import { EmbeddingCache, defaultEmbeddingCacheDir, sha256 } from './embeddingCache';
import type { ClipModel } from './runtime';
import { embedClassPrompts, topKIndices, zeroShotProbabilities, type ClassEmbeddings } from './zeroShot';
import { readDataset, summarizeProblems } from './dataset';
import { readProjectConfig, type ProjectConfig } from './projectConfig';
import { classNameVariants, promptCollisions, promptsForClass, resolveTemplates, type PromptCollision } from './prompts';
import { allocateFloats, DEFAULT_CHUNK_FLOATS, ProbabilityMatrix } from './probabilities';
import { computeMetrics } from './metrics';
import { computeWarnings, effectiveWarningThresholds } from './warnings';
import { predictorNeedsEmbeddings, runPredictors, zeroShotFindsLabelIssues } from './predictors';
import { findLabelIssues } from './labelIssues';
import { forEachScoredBlock, StreamedJudgement } from './streamedJudgement';
import { EmbeddingRows, duplicatesOfRun, type DuplicateAnalysis, type HalfRow, type LeakageMetrics } from './duplicates';
import { PixelHashRows, hashCacheNamespace, perceptualHashes, perceptualHashesOfRgb, type ImagesNotOnDisk } from './perceptualHash';
import type { Dataset, DatasetProblem, Sample } from './types';
import { REPORT_SCHEMA_VERSION, type EvalReport, type LabelIssue, type Metrics, type PredictorName, type PredictorReport, type ProvisionalInfo, type ReportSample, type Warning } from './report';
import { TOOL_VERSION } from './version';
import { ownRecord, setOwn } from './ownKeys';
import { FILE_LIMITS, FileRefusedError, readRegularFile } from './fileSystem';
import { datasetRootOf } from './run';
import { attachSamples, newSampleColumns, SampleTable, type SampleColumns } from './sampleTable';
import { INLINE_SAMPLES_LIMIT } from './reportSamples';

export interface EvaluateProgress {
  phase: 'reading' | 'prompts' | 'images' | 'metrics';
  done: number;
  total: number;
  /** Images inferred per second in this run (cached images excluded). */
  rate: number;
  fromCache: number;
}

export interface EvaluateOptions {
  /** The loaded model. */
  model: ClipModel;
  /** How the model was named (registry id or directory), for the report. */
  modelId?: string;
  /** Label file (absolute or relative to cwd) and its columns. */
  labelFile?: string;
  imageColumn?: string;
  labelColumn?: string;
  splitColumn?: string;
  /** Top-K classes kept per sample (default: config `topK`, else 5). */
  topK?: number;
  /** 'simple' | 'imagenet80' | a file | a list (default: config `templates`, else 'simple'). */
  templates?: string | string[];
  /** Cache root; null disables the cache (default: the user's cache folder). */
  cacheDir?: string | null;
  /** Images per inference batch (default 32). */
  batchSize?: number;
  /** Keep the full probability vector of each sample in the report. */
  probabilities?: boolean;
  /** Extra K values for Recall@K (1, 3, 5 always, when below the class count). */
  ks?: number[];
  /** Which predictor finds label errors (default: config `predictor`, else 'auto'; see predictors.ts). */
  predictor?: PredictorName;
  /** The dataset's already-parsed project config (otherwise read from `.clip-lens.json` at the root). */
  projectConfig?: ProjectConfig;
  /** The dataset, already read by the caller (core/run.ts planRun) from `target`; otherwise read here. */
  dataset?: Dataset;
  signal?: AbortSignal;
  onProgress?: (p: EvaluateProgress) => void;
  /**
   * Release the model's text tower (ONNX session and worker) once the prompts are embedded, for a caller that does
   * not embed text with this model again before disposing it (core/run.ts runEvaluation): its weights and arena
   * are not held through the judgement. Default false (the editor keeps the model for search).
   */
  releaseTextTower?: boolean;
  /**
   * Image embeddings computed elsewhere (core/embeddingsDir.ts): when given, the images are not read; every sample's
   * embedding comes from here (counted in timing as imported).
   */
  imageEmbeddings?: ImageEmbeddingSource;
  /**
   * Results while running: called as batches finish with a report over the images done so far, marked
   * `provisional` with done/total counts (metrics, zero-shot label issues, warnings; no duplicates or outliers; the
   * linear probe and kNN need every sample, so a provisional report's label issues are zero-shot's and its
   * `predictor.reason` says so). The first comes once PROVISIONAL_RULES' first batch is scored, then at most one per
   * `everyMs`; the final report (the return value) replaces them. The report handed over is the caller's to keep.
   */
  onProvisional?: (report: EvalReport) => void;
  /** Overrides of PROVISIONAL_RULES (tests, benchmarks). */
  provisionalRules?: Partial<typeof PROVISIONAL_RULES>;
  /**
   * Above this many samples the report's samples are columns (a SampleTable attached to the report, read through
   * samplesOf; `samples` absent) rather than an object per sample (default INLINE_SAMPLES_LIMIT, the size above which
   * `eval --json` writes them to the sidecar only).
   */
  columnarSamplesAbove?: number;
  /**
   * What reads and embeds the images (default runImages). Two models in one go (core/run.ts executeRuns) give each
   * evaluation its participant of one shareImagePass, so that every image is read and decoded once for both.
   */
  runImages?: RunImagesFn;
  /**
   * Above this many bytes of N x K float32 probabilities the judgement streams (streamedJudgement.ts) instead of
   * holding them (default: see judgementStreams). Tests force either path with it.
   */
  judgementBudgetBytes?: number;
}

/**
 * When provisional reports are made: the first once `max(minSamples, samplesPerClass x classes)` samples are scored
 * (none in a dataset no larger than that), then at most one every `everyMs`, and never more often than keeps their cost
 * below `maxShare` of the run's time (a provisional report over n samples costs O(n x classes)).
 */
export const PROVISIONAL_RULES = { minSamples: 32, samplesPerClass: 2, everyMs: 1000, maxShare: 0.05 };

/** Streams one L2-normalised embedding (or a per-sample error) per sample of the dataset. */
export interface ImageEmbeddingSource {
  forEach(onRow: (sample: number, embedding: Float32Array | null, half?: HalfRow) => void, onBad: (sample: number, error: ClipLensError) => void, signal?: AbortSignal, onChunk?: () => void): Promise<void>;
  /** Told once, after the duplicates, how many images were left out of the perceptual hashes (folders not on disk). */
  onImagesNotOnDisk?(notOnDisk: ImagesNotOnDisk): void;
}

/** Decoding/resizing jobs allowed in flight at once (sharp runs them on libuv's thread pool). */
const DECODE_CONCURRENCY = 4;
/**
 * New cache entries are written to disk once this many are pending, or CACHE_FLUSH_MS after the last write, whichever
 * comes first: a killed run (or a closed editor) keeps all but the last few seconds of its work.
 */
const CACHE_FLUSH_EVERY = 512;
const CACHE_FLUSH_MS = 10_000;

/**
 * What the run learns per sample, in typed arrays rather than one small object per sample: the softmax
 * probabilities and the content hashes. Objects that live to the end of a run but are made one by one during it
 * survive every young-generation collection, and V8 answers that by growing the young generation, which is what made
 * peak memory grow with the dataset; the report's per-sample objects are made once, at the end.
 *
 * The probabilities are laid out as a {@link ProbabilityMatrix}'s storage (shared-memory chunks of
 * DEFAULT_CHUNK_FLOATS), so that {@link toMatrix} hands them to the metrics in place: at a million rows and a
 * thousand classes they are 4 GB, and a copy would be 4 GB more.
 */
export class PerSampleStore {
  readonly hasProbabilities: Uint8Array;
  private readonly chunks: Float32Array[] = [];
  private readonly rowsPerChunk: number;
  private readonly hashes: Uint8Array;
  private readonly hasHash: Uint8Array;

  /** @param chunkFloats floats per chunk (default DEFAULT_CHUNK_FLOATS); tests use small values to exercise chunking. */
  constructor(
    private readonly n: number,
    private readonly k: number,
    chunkFloats = DEFAULT_CHUNK_FLOATS,
  ) {
    this.hasProbabilities = new Uint8Array(n);
    this.rowsPerChunk = Math.max(1, Math.floor(chunkFloats / k));
    this.hashes = new Uint8Array(n * 32);
    this.hasHash = new Uint8Array(n);
  }

  /** Sample i's probability row (a view; allocated on first use). */
  probabilities(i: number): Float32Array {
    const c = Math.floor(i / this.rowsPerChunk);
    if (this.compacted) throw new Error('PerSampleStore: probabilities read after toMatrix');
    const chunk = (this.chunks[c] ??= allocateFloats(Math.min(this.rowsPerChunk, this.n - c * this.rowsPerChunk) * this.k));
    const r = (i - c * this.rowsPerChunk) * this.k;
    return chunk.subarray(r, r + this.k);
  }

  private compacted = false;

  /**
   * The probabilities of the `rows` (increasing sample indices, each with probabilities) as a matrix, row r being
   * sample rows[r]: the rows are moved down in place (rows[r] >= r, so no row is overwritten before it is read) and
   * the matrix shares the store's memory. The store's probabilities are not readable afterwards.
   */
  toMatrix(rows: readonly number[]): ProbabilityMatrix {
    for (let r = 0; r < rows.length; r++) {
      const i = rows[r] as number;
      if (i !== r) this.probabilities(r).set(this.probabilities(i));
    }
    if (rows.length === 0) return new ProbabilityMatrix(this.k);
    this.probabilities(rows.length - 1); // allocates the chunks up to the last row when none was written yet
    this.compacted = true;
    const used = Math.ceil(rows.length / this.rowsPerChunk);
    const chunks = this.chunks.slice(0, used);
    this.chunks.length = 0;
    return ProbabilityMatrix.fromShared({ numClasses: this.k, rowsPerChunk: this.rowsPerChunk, length: rows.length, chunks });
  }

  setHash(i: number, sha256: Uint8Array): void {
    this.hashes.set(sha256, i * 32);
    this.hasHash[i] = 1;
  }

  /** Sample i's content hash in hex, or null when the image was never read. */
  hash(i: number): string | null {
    return this.hasHash[i] ? Buffer.from(this.hashes.buffer, this.hashes.byteOffset + i * 32, 32).toString('hex') : null;
  }
}

/** The embeddings of the evaluated rows, in that order, when the predictor needs them (else none: dim 0). */
function evaluatedEmbeddings(rows: EmbeddingRows, evaluated: number[], requested: PredictorName): { embeddings: Float32Array; dim: number } {
  if (!predictorNeedsEmbeddings(requested, evaluated.length) || rows.dim === 0) return { embeddings: new Float32Array(0), dim: 0 };
  const all = rows.packed();
  const dim = rows.dim;
  const out = new Float32Array(evaluated.length * dim);
  evaluated.forEach((i, r) => out.set(all.subarray(i * dim, (i + 1) * dim), r * dim));
  return { embeddings: out, dim };
}

/**
 * Zero-shot probabilities of every sample with an embedding, into the store: SCORE_BLOCKS blocks of EmbeddingRows
 * (4,096 rows) per product, on ONNX Runtime for all but tiny products (zeroShotBlock; the blocks of
 * forEachScoredBlock, which the streamed judgement recomputes).
 */
export async function scoreAll(rows: EmbeddingRows, classEmbeddings: ClassEmbeddings, logitScale: number, store: PerSampleStore, signal?: AbortSignal, engine: 'auto' | 'js' | 'onnx' = 'auto'): Promise<void> {
  const k = classEmbeddings.matrix.length / Math.max(1, classEmbeddings.dim);
  await forEachScoredBlock(rows, classEmbeddings, logitScale, (index, probs) => {
    index.forEach((i, r) => {
      store.probabilities(i).set(probs.subarray(r * k, (r + 1) * k));
      store.hasProbabilities[i] = 1;
    });
  }, signal, engine);
}

/**
 * Whether the judgement streams (streamedJudgement.ts) instead of holding the N x K probabilities: when they would
 * take more than `budgetBytes` (default: the larger of the embeddings' own bytes and JUDGEMENT_MATRIX_MIN_BYTES).
 * Small and medium datasets keep the in-memory path (one product instead of three).
 */
export function judgementStreams(rows: number, classes: number, embeddingBytes: number, budgetBytes?: number): boolean {
  return rows * classes * 4 > (budgetBytes ?? Math.max(embeddingBytes, JUDGEMENT_MATRIX_MIN_BYTES));
}

/** Probability matrices up to this size are held whatever the embeddings' size (512 MiB). */
export const JUDGEMENT_MATRIX_MIN_BYTES = 512 * 1024 * 1024;

interface ImageJob {
  index: number;
  key: Buffer;
}

export async function evaluateDataset(target: string, options: EvaluateOptions): Promise<EvalReport> {
  const started = Date.now();
  const t0 = performance.now();
  const { model, signal } = options;
  const progress = options.onProgress ?? (() => undefined);

  progress({ phase: 'reading', done: 0, total: 0, rate: 0, fromCache: 0 });
  memMark('evaluate: start');
  // The project config sits at the dataset root: read it first, since it may name the label file and columns.
  const problems: DatasetProblem[] = [];
  let config = options.projectConfig;
  const configRoot = await datasetRootOf(target);
  if (!config) {
    const read = await readProjectConfig(configRoot);
    config = read.config;
    const file = read.file ? path.relative(configRoot, read.file) || read.file : '.clip-lens.json';
    for (const p of read.problems) problems.push({ code: 'config-invalid', message: `${p.key}: ${p.message}`, file, line: p.line });
  }
  const labelsConfig = config.labels ?? {};
  const read = options.dataset ?? await readDataset(target, {
    labelFile: options.labelFile ?? (labelsConfig.file && target === configRoot ? path.resolve(configRoot, labelsConfig.file) : undefined),
    imageColumn: options.imageColumn ?? labelsConfig.imageColumn,
    labelColumn: options.labelColumn ?? labelsConfig.labelColumn,
    splitColumn: options.splitColumn ?? labelsConfig.splitColumn,
    signal,
  });
  problems.push(...read.problems);
  const topK = Math.max(1, options.topK ?? config.topK ?? 5);
  const templates = await resolveTemplates(options.templates ?? config.templates, read.root);
  // Classes the model cannot tell apart (same prompt) are merged, each merge a problem and a warning: never a silent tie.
  const collisions = promptCollisions(read.classes, templates.templates, config.prompts, countLabels(read.samples));
  const dataset = mergeCollidingClasses(read, collisions, problems);
  for (const v of classNameVariants(dataset.classes)) {
    problems.push({
      code: 'class-name-variant',
      message: `classes ${v.map((c) => `"${c}"`).join(' and ')} differ only in case, spaces, "_" or "-"; they are evaluated as different classes: if they are the same, merge them`,
      ...(dataset.samples.find((s) => s.label === v[v.length - 1])?.source ?? { file: v[v.length - 1] }),
    });
  }
  const classes = dataset.classes;
  if (classes.length < 2) {
    // One line, but the problems that left too few classes are named: "found 0 classes" alone hides the cause.
    const found = `found ${classes.length} class${classes.length === 1 ? '' : 'es'}; zero-shot evaluation needs at least 2`;
    throw new ClipLensError('dataset-too-few-classes', `${found}${summarizeProblems(read.problems)}`, { file: dataset.labelFile ?? dataset.root });
  }

  // Caches: one namespace for images (vision graph + preprocessing), one for prompts (text graph + tokenizer).
  const cacheRoot = options.cacheDir === undefined ? defaultEmbeddingCacheDir() : options.cacheDir;
  // One 'cache-unavailable' problem at most, whichever namespace fails first.
  const cacheProblem = onceReporter(problems, cacheRoot ?? '');
  const imageCache = cacheRoot ? await openCache(cacheRoot, imageNamespace(model), problems, cacheProblem) : null;
  const textCache = cacheRoot && imageCache ? await openCache(cacheRoot, `text\0${model.textFingerprint}`, problems, cacheProblem) : null;
  // Perceptual hashes (duplicates.ts) of the pixels the image phase decodes; a cache that cannot open only costs time.
  const hashCache = cacheRoot && imageCache ? await EmbeddingCache.open(cacheRoot, hashCacheNamespace(model.preprocessor.fingerprint)).catch(() => null) : null;

  // Class embeddings and images at once: the prompts are embedded (text worker) while the first images are read,
  // hashed and preprocessed and the vision session is created (vision worker). The images are scored once all are
  // in (scoreAll).
  progress({ phase: 'prompts', done: 0, total: classes.length, rate: 0, fromCache: 0 });
  const prompts = classes.map((c) => promptsForClass(c, templates.templates, config?.prompts));
  /** The class embeddings once ready (provisional reports score with them while the images go on). */
  let liveClasses: ClassEmbeddings | null = null;
  const textDone = embedClassPrompts(model, prompts, textCache, signal).then(async (e) => {
    await textCache?.flush();
    liveClasses = e;
    memMark('text tower done (class embeddings)');
    if (options.releaseTextTower) {
      await model.releaseTower('text');
      memMark('text tower released');
    }
    return e;
  });
  // A failure stops the image work at once and is what the run reports.
  let textError: unknown = null;
  const stop = new AbortController();
  const forwardAbort = () => stop.abort();
  if (signal?.aborted) stop.abort();
  signal?.addEventListener('abort', forwardAbort, { once: true });
  textDone.catch((e) => {
    textError = e;
    stop.abort();
  });

  const samples = dataset.samples;
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  // Above columnarSamplesAbove samples (see `columnar` below) no sample gets predictions of its own: they all share
  // one frozen empty list (30 MB less at a million samples than an array each).
  const noPredictions = samples.length > (options.columnarSamplesAbove ?? INLINE_SAMPLES_LIMIT) ? (Object.freeze([]) as unknown as ReportSample['predicted']) : null;
  const recordOf = (s: Sample): ReportSample => ({ path: s.path, label: s.label, ...(s.split !== undefined ? { split: s.split } : {}), ...(s.source ? { source: s.source } : {}), predicted: noPredictions ?? [] });
  // Above that size the records are the dataset's own sample objects and list (what the columns and the duplicates
  // read of them: path, label, split, source): the list is copied, and a sample gets a record of its own, only when a
  // record is written to (an error, a content hash; see `own`). A million records were 60 MiB of heap.
  let results: ReportSample[] = noPredictions ? (samples as ReportSample[]) : samples.map(recordOf);
  /** Sample i's record, to be written to (its own object from the first write on). */
  const own = (i: number): ReportSample => {
    if (results === (samples as unknown)) results = samples.slice() as ReportSample[];
    let r = results[i] as ReportSample;
    if (r === (samples[i] as unknown)) results[i] = r = recordOf(samples[i] as Sample);
    return r;
  };
  const store = new PerSampleStore(samples.length, classes.length);
  const requestedPredictor = options.predictor ?? config.predictor ?? 'auto';
  const embeddingRows = new EmbeddingRows(samples.length);
  const pixelHashes = new PixelHashRows(samples.length, hashCache);
  const tImages = performance.now();
  // Session creation (lazy, only when some image is not cached) is start-up cost, not image throughput.
  const loadMsBefore = model.visionLoadMs;
  let computed = 0;
  let fromCache = 0;
  let done = 0;
  /** Samples with zero-shot probabilities so far (provisional reports), and those finished but not scored yet. */
  let scoredCount = 0;
  const unscored: number[] = [];
  const report = () => {
    const secs = (performance.now() - tImages) / 1000;
    progress({ phase: 'images', done, total: samples.length, rate: secs > 0 ? computed / secs : 0, fromCache });
    maybeProvisional();
  };

  // Every embedding is kept (EmbeddingRows, for the predictors and duplicates) and scored once all are in, in blocks
  // of rows (scoreAll): one matrix product and softmax per block rather than one per image.
  function finish(index: number, embedding: Float32Array | null, half?: HalfRow): void {
    done++;
    embeddingRows.set(index, embedding, half);
    // Provisional reports score the rows finished since the last one (the final report scores all in blocks).
    if (wantProvisional) unscored.push(index);
  }

  const fail = (index: number, e: unknown) => {
    if (e instanceof CancelledError) throw e;
    const err = e instanceof ClipLensError ? { code: e.code, message: stripLocation(e.message, samples[index].path) } : { code: 'image-unreadable', message: (e as Error).message };
    own(index).error = err;
    done++;
  };

  // The judgement, shared by the final report and the provisional ones shown while the run goes on.
  const ks = [...new Set([1, 3, 5, topK, ...(options.ks ?? [])])].filter((k) => k >= 1).sort((a, b) => a - b);
  const splits = [...new Set(samples.map((s) => s.split).filter((s): s is string => s !== undefined))].sort();
  const ignored = new Set(config.ignore ?? []);
  const perClassCounts = new Map<string, number>(classes.map((c) => [c, 0]));
  for (const s of samples) if (perClassCounts.has(s.label)) perClassCounts.set(s.label, perClassCounts.get(s.label)! + 1);
  const perClass = ownRecord(perClassCounts);

  /** The scored samples whose label is a class of the run (the rows metrics are computed over), in sample order. */
  const scoredRows = () => {
    const evaluated: number[] = [];
    for (let i = 0; i < samples.length; i++) if (store.hasProbabilities[i] && classIndex.has(samples[i].label)) evaluated.push(i);
    const matrix = new ProbabilityMatrix(classes.length);
    const labels: number[] = [];
    for (const i of evaluated) {
      matrix.push(store.probabilities(i));
      labels.push(classIndex.get(samples[i].label) as number);
    }
    return { evaluated, matrix, labels };
  };
  /** Metrics of the evaluated rows and of each split; `overall`: the overall metrics when already computed. */
  const metricsOf = (evaluated: number[], matrix: ProbabilityMatrix, labels: number[], overall?: Metrics) => {
    const input = { classes, labels, probs: matrix };
    const metrics = overall ?? computeMetrics(input, { ks });
    let metricsBySplit: Record<string, Metrics> | undefined;
    if (splits.length > 0) {
      metricsBySplit = {};
      for (const split of splits) {
        const idx: number[] = [];
        evaluated.forEach((sampleIndex, row) => {
          if (samples[sampleIndex].split === split) idx.push(row);
        });
        if (idx.length > 0) setOwn(metricsBySplit, split, computeMetrics(input, { ks, indices: idx }));
      }
    }
    return { metrics, metricsBySplit };
  };
  /** Label issues by evaluated row -> by sample, without the ignored samples, ranked. */
  const issuesOfSamples = (issues: LabelIssue[], evaluated: number[]): LabelIssue[] => {
    // One object per issue kept (a million rows can flag half a million: no intermediate arrays of copies).
    const out: LabelIssue[] = [];
    const ignoring = ignored.size > 0; // else no path is looked up (each one hashed for nothing)
    for (const issue of issues) {
      const index = evaluated[issue.index];
      const path = samples[index].path;
      // A literal of all six fields (the report's key order): compact objects, unlike spread copies with a key added.
      if (!ignoring || !ignored.has(path)) out.push({ index, given: issue.given, suggested: issue.suggested, score: issue.score, rank: out.length + 1, path });
    }
    return out;
  };
  /** Sample i's report fields from the store (content hash, top-K predictions, probabilities) set on `into`. */
  const fillSample = (i: number, into: ReportSample) => {
    const hash = store.hash(i);
    if (hash !== null) into.contentHash = hash;
    if (!store.hasProbabilities[i]) return;
    const p = store.probabilities(i);
    into.predicted = topKIndices(p, topK).map((c) => ({ class: classes[c], score: p[c] }));
    if (options.probabilities) into.probabilities = Array.from(p);
  };
  /** The warnings about the dataset itself (merged classes, failed images and problems), after the sorted ones. */
  const datasetWarnings = (failed: number): Warning[] => {
    const out = collisions.map((c) => collisionWarning(c, read.samples));
    if (failed > 0 || problems.length > 0) {
      out.push({
        kind: 'dataset-errors',
        severity: 'warning',
        message: `${failed} image${failed === 1 ? '' : 's'} could not be evaluated and ${problems.length} problem${problems.length === 1 ? '' : 's'} were found in the dataset; they are listed under errors.`,
        numbers: { failedImages: failed, problems: problems.length },
      });
    }
    return out;
  };
  const assemble = (r: {
    samples: ReportSample[] | undefined;
    evaluated: number;
    failed: number;
    metrics: Metrics | null;
    metricsBySplit: Record<string, Metrics> | undefined;
    warnings: Warning[];
    labelIssues: LabelIssue[];
    duplicates: EvalReport['duplicates'];
    leakage: NonNullable<EvalReport['leakage']>;
    outliers: EvalReport['outliers'];
    predictor: PredictorReport | undefined;
    embeddingDim: number;
    timing: EvalReport['timing'];
    provisional?: ProvisionalInfo;
  }): EvalReport => ({
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'clip-lens', version: TOOL_VERSION },
    createdAt: new Date(started).toISOString(),
    model: {
      id: options.modelId ?? model.files.dir,
      dir: model.files.dir,
      quantized: model.files.quantized,
      embeddingDim: r.embeddingDim,
      logitScale: model.logitScale,
      imageSize: model.preprocessor.outputHeight,
    },
    templates: { name: templates.name, count: templates.templates.length },
    topK,
    dataset: {
      root: dataset.root,
      format: dataset.format,
      ...(dataset.labelFile ? { labelFile: dataset.labelFile } : {}),
      classes,
      ...(splits.length > 0 ? { splits } : {}),
      counts: { samples: samples.length, evaluated: r.evaluated, failed: r.failed, perClass },
    },
    ...(r.samples ? { samples: r.samples } : {}),
    errors: r.provisional ? [...problems] : problems,
    metrics: r.metrics,
    ...(r.metricsBySplit ? { metricsBySplit: r.metricsBySplit } : {}),
    warnings: r.warnings,
    thresholds: effectiveWarningThresholds(config.warnings),
    labelIssues: r.labelIssues,
    duplicates: r.duplicates,
    ...(r.leakage.length > 0 ? { leakage: r.leakage } : {}),
    outliers: r.outliers,
    ...(r.predictor ? { predictor: r.predictor } : {}),
    ...(r.provisional ? { provisional: r.provisional } : {}),
    timing: r.timing,
  });

  // Results while running: a report over the images done so far, as batches finish (see PROVISIONAL_RULES).
  const onProvisional = options.onProvisional;
  const rules = { ...PROVISIONAL_RULES, ...options.provisionalRules };
  // A dataset no larger than the first batch gets no provisional report: the final one comes right after.
  const firstAt = Math.max(1, rules.minSamples, rules.samplesPerClass * classes.length);
  const wantProvisional = onProvisional !== undefined && samples.length > firstAt;
  let provisionalCount = 0;
  let provisionalScored = -1;
  let nextProvisionalAt = 0;
  /** The provisional report now (zero-shot label issues, no duplicates), handed to onProvisional. */
  const emitProvisional = () => {
    const cls = liveClasses as ClassEmbeddings | null;
    if (!onProvisional || !cls) return;
    const t = performance.now();
    for (const i of unscored.splice(0)) {
      if (!embeddingRows.has[i] || embeddingRows.dim !== cls.dim) continue;
      const per = EmbeddingRows.blockRows;
      const b = Math.floor(i / per);
      const e = (embeddingRows.block(b) as Float32Array).subarray((i - b * per) * cls.dim, (i - b * per + 1) * cls.dim);
      zeroShotProbabilities(e, cls, model.logitScale, store.probabilities(i));
      store.hasProbabilities[i] = 1;
      scoredCount++;
    }
    if (scoredCount === provisionalScored) return;
    const { evaluated, matrix, labels } = scoredRows();
    if (evaluated.length === 0) return;
    const { metrics, metricsBySplit } = metricsOf(evaluated, matrix, labels);
    const labelIssues = issuesOfSamples(findLabelIssues({ classes, labels, probs: matrix }), evaluated);
    const warnings = computeWarnings({ metrics, metricsBySplit }, config.warnings).sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
    const copies = results.map((s, i) => {
      const c: ReportSample = s === (samples[i] as unknown) ? recordOf(samples[i] as Sample) : { ...s };
      fillSample(i, c);
      return c;
    });
    const failed = copies.filter((s) => s.error).length;
    warnings.push(...datasetWarnings(failed));
    const secs = (performance.now() - tImages) / 1000;
    const provisionalReport = assemble({
      samples: copies,
      evaluated: evaluated.length,
      failed,
      metrics,
      metricsBySplit,
      warnings,
      labelIssues,
      duplicates: [],
      leakage: [],
      outliers: [],
      predictor: {
        requested: requestedPredictor,
        used: 'zero-shot',
        reason: requestedPredictor === 'zero-shot' ? 'requested' : `provisional: zero-shot until every image is done (${requestedPredictor} needs them all)`,
        zeroShot: { top1Accuracy: metrics.top1Accuracy, balancedAccuracy: metrics.balancedAccuracy },
        perClass: metrics.perClass.map((c) => ({ class: c.class, support: c.support, zeroShotRecall: c.recall, probeRecall: null })),
      },
      embeddingDim: cls.dim,
      timing: {
        totalMs: round(performance.now() - t0),
        textMs: round(cls.ms),
        imageMs: round(performance.now() - tImages),
        imagesComputed: computed,
        imagesFromCache: fromCache,
        ...(options.imageEmbeddings ? { imagesImported: imported } : {}),
        imagesPerSecond: secs > 0 ? round(computed / secs) : 0,
      },
      provisional: { done, total: samples.length },
    });
    provisionalScored = scoredCount;
    provisionalCount++;
    const cost = performance.now() - t;
    // Never more than a small share of the run: the next one waits at least `everyMs` and cost / maxShare.
    nextProvisionalAt = performance.now() + Math.max(rules.everyMs, cost / rules.maxShare);
    onProvisional(provisionalReport);
  };
  const maybeProvisional = () => {
    if (wantProvisional && scoredCount + unscored.length >= firstAt && performance.now() >= nextProvisionalAt) emitProvisional();
  };

  type Judged = {
    evaluated: number[];
    metrics: Metrics | null;
    metricsBySplit: Record<string, Metrics> | undefined;
    warnings: Warning[];
    labelIssues: LabelIssue[];
    predictor: PredictorReport | undefined;
    duplicates: DuplicateAnalysis;
    /** Zero-shot products run. */
    passes: number;
  };
  /**
   * Above columnarSamplesAbove samples the report's samples are columns: the top-K of each sample go here (as the
   * probabilities are read, by either judgement) instead of into per-sample objects.
   */
  const columnar = samples.length > (options.columnarSamplesAbove ?? INLINE_SAMPLES_LIMIT) ? topKColumns(samples.length, topK, options.probabilities === true, classes.length) : null;
  /** Duplicates and outliers (duplicates.ts) of either judgement; their leakage figures come with {@link leakageMetrics}. */
  const findRunDuplicates = () =>
    duplicatesOfRun({
      root: dataset.root,
      samples: results,
      embeddings: embeddingRows,
      pixelHashes,
      preprocessor: model.preprocessor,
      thresholds: config.duplicates,
      signal,
    });
  /**
   * The leakage figures' metrics: `rowOf` maps a sample to its evaluated row (-1: none), `metricsOfRows` gives the
   * metrics of some rows (the metrics without leaked samples).
   */
  const leakageMetrics = (
    metricsBySplit: Record<string, Metrics> | undefined,
    rowOf: (sample: number) => number,
    metricsOfRows: (rows: number[]) => Metrics,
  ): LeakageMetrics => ({
    metricsBySplit,
    metricsFor: (indices) => {
      const rows = indices.map(rowOf).filter((r) => r >= 0);
      return rows.length > 0 ? metricsOfRows(rows) : null;
    },
  });
  /** The judgement over the held N x K matrix. */
  const heldJudgement = async (classEmbeddings: ClassEmbeddings): Promise<Judged> => {
    memMark('judgement: held, before scoring');
    await scoreAll(embeddingRows, classEmbeddings, model.logitScale, store, signal);
    memMark('judgement: held, N x K scored');
    const evaluated: number[] = [];
    // Per-sample report fields from the store (objects made once, at the end: see PerSampleStore). A large dataset's
    // predictions stay columns (topKColumns): no top-K objects per sample; its content hashes are set for duplicates.
    for (let i = 0; i < samples.length; i++) {
      if (!columnar) fillSample(i, results[i]);
      else {
        const hash = store.hash(i);
        if (hash !== null) own(i).contentHash = hash;
        if (store.hasProbabilities[i]) columnar.set(i, store.probabilities(i));
      }
      if (store.hasProbabilities[i] && classIndex.has(samples[i].label)) evaluated.push(i);
    }
    const labels: number[] = evaluated.map((i) => classIndex.get(samples[i].label) as number);
    const matrix = store.toMatrix(evaluated);
    let metrics: Metrics | null = null;
    let metricsBySplit: Record<string, Metrics> | undefined;
    let warnings: Warning[] = [];
    let labelIssues: LabelIssue[] = [];
    let predictor: PredictorReport | undefined;
    if (evaluated.length > 0) {
      ({ metrics, metricsBySplit } = metricsOf(evaluated, matrix, labels));
      // Label issues from the chosen predictor over the embeddings already computed (predictors.ts).
      const outcome = await runPredictors({
        classes, labels, zeroShot: matrix, zeroShotMetrics: metrics, ...evaluatedEmbeddings(embeddingRows, evaluated, requestedPredictor),
        requested: requestedPredictor,
        cacheRoot: cacheRoot ?? null,
      });
      predictor = outcome.report;
      labelIssues = issuesOfSamples(outcome.labelIssues, evaluated);
      // Zero-shot near chance and another predictor judging: the rare-class warnings follow that predictor.
      const judge = outcome.judge && { predictor: outcome.judge.predictor, ...metricsOf(evaluated, outcome.judge.probs, labels, outcome.judge.metrics) };
      warnings = computeWarnings({ metrics, metricsBySplit, judge }, config.warnings);
      warnings.push(...outcome.warnings);
    }

    // Duplicates, leakage and outliers (duplicates.ts): exact and near copies, and the metrics without leaked samples.
    const rowOfSample = new Map(evaluated.map((sampleIndex, row) => [sampleIndex, row]));
    const duplicates = (await findRunDuplicates())(
      leakageMetrics(
        metricsBySplit,
        (i) => rowOfSample.get(i) ?? -1,
        (rows) => computeMetrics({ classes, labels, probs: matrix }, { ks, indices: rows }),
      ),
    );
    return { evaluated, metrics, metricsBySplit, warnings, labelIssues, predictor, duplicates, passes: 1 };
  };
  /**
   * The same judgement without the matrix (streamedJudgement.ts): the duplicates and outliers first (their kNN index,
   * the run's largest memory after the rows, is gone before any pass), pass 1 (top-K per sample, per-row metrics),
   * the metrics, the duplicates' leakage figures (the metrics without leaked samples: their APs wait for pass 2), pass
   * 2 (cleanlab's scan, the prune's candidates, the APs of all rows, splits and those subsets), then the predictor,
   * whose zero-shot label issues need a pass 3 only when the candidates do not decide the prune.
   */
  const streamedJudgementOf = async (classEmbeddings: ClassEmbeddings): Promise<Judged> => {
    const evaluated: number[] = [];
    const rowOfSample = new Int32Array(samples.length).fill(-1);
    for (let i = 0; i < samples.length; i++) {
      if (embeddingRows.has[i] && classIndex.has(samples[i].label)) {
        rowOfSample[i] = evaluated.length;
        evaluated.push(i);
      }
    }
    for (let i = 0; i < samples.length; i++) {
      const hash = store.hash(i);
      if (hash !== null) own(i).contentHash = hash;
    }
    memMark('judgement: streamed, before the duplicates');
    const foundDuplicates = await findRunDuplicates();
    memMark('judgement: duplicates/outliers found');
    releaseGarbage('the duplicates');
    const labels: number[] = evaluated.map((i) => classIndex.get(samples[i].label) as number);
    const judge = new StreamedJudgement({ rows: embeddingRows, classEmbeddings, logitScale: model.logitScale, classes, rowOfSample, labels, signal });
    memMark('judgement: streamed, before pass 1');
    // Without --probabilities no sample needs its whole row: pass 1 reduces the rows inside ONNX Runtime.
    const onRow = (i: number, p: Float32Array) => {
      if (columnar) columnar.set(i, p);
      else results[i].predicted = topKIndices(p, topK).map((c) => ({ class: classes[c], score: p[c] }));
    };
    const onTop = (i: number, cls: Int32Array, scores: Float32Array, at: number, count: number) => {
      if (columnar) columnar.setTop(i, cls, scores, at, count);
      else results[i].predicted = Array.from({ length: Math.min(count, topK) }, (_, q) => ({ class: classes[cls[at + q] as number] as string, score: scores[at + q] as number }));
    };
    await judge.firstPass(onRow, options.probabilities ? undefined : { t: Math.max(1, topK), set: onTop });
    memMark('judgement: pass 1 done (top-K, per-row metrics)');
    let metrics: Metrics | null = null;
    let metricsBySplit: Record<string, Metrics> | undefined;
    if (evaluated.length > 0) {
      metrics = judge.metrics(ks);
      if (splits.length > 0) {
        metricsBySplit = {};
        for (const split of splits) {
          const idx: number[] = [];
          evaluated.forEach((sampleIndex, row) => {
            if (samples[sampleIndex].split === split) idx.push(row);
          });
          if (idx.length > 0) setOwn(metricsBySplit, split, judge.metrics(ks, idx));
        }
      }
    }
    const duplicates = foundDuplicates(leakageMetrics(metricsBySplit, (i) => rowOfSample[i] as number, (rows) => judge.metrics(ks, rows)));
    // Pass 2, once the duplicates have asked for their subsets' metrics: their APs come with it.
    if (metrics) await judge.secondPass(zeroShotFindsLabelIssues(requestedPredictor, evaluated.length));
    memMark('judgement: pass 2 done (cleanlab scan, APs)');
    let warnings: Warning[] = [];
    let labelIssues: LabelIssue[] = [];
    let predictor: PredictorReport | undefined;
    if (metrics) {
      const outcome = await runPredictors({
        classes, labels, zeroShot: () => judge.labelIssues(), zeroShotMetrics: metrics, ...evaluatedEmbeddings(embeddingRows, evaluated, requestedPredictor),
        requested: requestedPredictor,
        cacheRoot: cacheRoot ?? null,
      });
      predictor = outcome.report;
      labelIssues = issuesOfSamples(outcome.labelIssues, evaluated);
      // Zero-shot near chance and another predictor judging: the rare-class warnings follow that predictor.
      const judging = outcome.judge && { predictor: outcome.judge.predictor, ...metricsOf(evaluated, outcome.judge.probs, labels, outcome.judge.metrics) };
      warnings = computeWarnings({ metrics, metricsBySplit, judge: judging }, config.warnings);
      warnings.push(...outcome.warnings);
    }
    memMark(`judgement: predictor done (label issues; passes so far ${judge.passes}; prune in pass 2: ${JSON.stringify(judge.prunedInPass2)})`);
    releaseGarbage('the label issues');
    // The APs of subsets asked for after pass 2 when the predictor did not run pass 3.
    await judge.finishAveragePrecision();
    memMark('judgement: APs finished');
    return { evaluated, metrics, metricsBySplit, warnings, labelIssues, predictor, duplicates, passes: judge.passes };
  };

  let imported = 0;
  try {
    if (options.imageEmbeddings) {
      await options.imageEmbeddings.forEach(
        (index, emb, half) => {
          imported++;
          finish(index, emb, half);
        },
        fail,
        stop.signal,
        report,
      );
    } else await (options.runImages ?? runImages)({
      dataset,
      model,
      imageCache,
      // With provisional reports, the classes in turn: the first batches cover every class, not the first folder.
      ...(wantProvisional ? { order: interleaveByLabel(samples) } : {}),
      pixelHashes,
      batchSize: Math.max(1, options.batchSize ?? 32),
      signal: stop.signal,
      onHash: (index, hash) => store.setHash(index, hash),
      onCached: (index, emb) => {
        fromCache++;
        finish(index, emb);
      },
      onComputed: (index, emb) => {
        computed++;
        finish(index, emb);
      },
      onFailed: fail,
      onBatchDone: report,
    });
  } catch (e) {
    // Cancelled: one last provisional view with everything embedded so far (all of it is in the cache).
    if (!textError && e instanceof CancelledError && provisionalCount > 0) emitProvisional();
    throw textError ?? e;
  } finally {
    signal?.removeEventListener('abort', forwardAbort);
    // Keep what was computed even when cancelled or failed: the next run resumes from there.
    await imageCache?.flush();
    await hashCache?.flush();
    for (const c of [imageCache, textCache]) if (c?.writeError) cacheProblem(`cache disabled: ${c.writeError}; this run goes on without saving embeddings`);
  }
  memMark(`images done (${options.imageEmbeddings ? 'shards read' : 'images embedded'})`);
  const classEmbeddings = await textDone;
  const { ms: textMs, dim: embeddingDim } = classEmbeddings;
  throwIfAborted(signal);
  const tDone = performance.now();
  const sessionMs = model.visionLoadMs - loadMsBefore;
  // The image rate counts from when the vision session was ready (its creation overlaps the first batch's decoding).
  const imageMs = tDone - Math.max(tImages, model.visionReadyAt);
  report();
  // A long run's last provisional view covers every image while the predictor and duplicates are computed.
  if (provisionalCount > 0) emitProvisional();

  // Judgement: the N x K probabilities held (one product), or, when they would outgrow the embeddings, streamed
  // (three products, never the whole matrix: streamedJudgement.ts). Both give the same report.
  progress({ phase: 'metrics', done: 0, total: 1, rate: 0, fromCache });
  let scored = 0;
  if (embeddingRows.dim === classEmbeddings.dim) for (let i = 0; i < samples.length; i++) if (embeddingRows.has[i] && classIndex.has(samples[i].label)) scored++;
  const streamed = !options.probabilities && judgementStreams(scored, classes.length, embeddingRows.bytes, options.judgementBudgetBytes);
  const tJudgement = performance.now();
  const judged = streamed ? await streamedJudgementOf(classEmbeddings) : await heldJudgement(classEmbeddings);
  const judgement = { ms: round(performance.now() - tJudgement), passes: judged.passes, streamed };
  memMark('judgement done');
  const { evaluated, metrics, metricsBySplit, labelIssues, predictor, duplicates } = judged;
  let warnings = judged.warnings;
  await hashCache?.flush();
  throwIfAborted(signal);
  if (pixelHashes.notOnDisk.images > 0) options.imageEmbeddings?.onImagesNotOnDisk?.({ ...pixelHashes.notOnDisk });
  warnings = [...warnings, ...duplicates.warnings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  const failed = results.filter((r) => r.error).length;
  warnings.push(...datasetWarnings(failed));

  const final = assemble({
    samples: columnar ? undefined : results,
    evaluated: evaluated.length,
    failed,
    metrics,
    metricsBySplit,
    warnings,
    labelIssues,
    duplicates: duplicates.groups,
    leakage: duplicates.leakage,
    outliers: duplicates.outliers,
    predictor,
    embeddingDim,
    timing: {
      totalMs: round(performance.now() - t0),
      textMs: round(textMs),
      imageMs: round(imageMs),
      sessionMs: round(sessionMs),
      imagesComputed: computed,
      imagesFromCache: fromCache,
      ...(options.imageEmbeddings ? { imagesImported: imported } : {}),
      imagesPerSecond: imageMs > 0 ? round((computed * 1000) / imageMs) : 0,
      judgement,
    },
  });
  memMark('report assembled');
  if (columnar) attachSamples(final, SampleTable.fromColumns(sampleColumnsOf(results, classes, columnar)));
  memMark('report: sample table attached');
  return final;
}

/**
 * Top-K class indices and scores per sample in typed arrays (-1: none), and probabilities as JSON when asked. The
 * scores are float32 probabilities, kept as such, and the classes 16-bit below 32,768 classes (both exact; 30 MB
 * fewer at a million samples x 5, resident through the duplicates, where a million-row run peaks).
 */
function topKColumns(n: number, topK: number, withProbabilities: boolean, classes: number) {
  const k = Math.max(1, topK);
  // Made when the first sample's top classes come (30 MB at a million samples, not held through what runs before).
  let columns: { topClass: Int16Array | Int32Array; topScore: Float32Array } | null = null;
  const made = () => (columns ??= { topClass: (classes < 0x8000 ? new Int16Array(n * k) : new Int32Array(n * k)).fill(-1), topScore: new Float32Array(n * k) });
  const probabilities = withProbabilities ? new Map<number, string>() : null;
  return {
    k,
    get topClass() {
      return made().topClass;
    },
    get topScore() {
      return made().topScore;
    },
    probabilities,
    set(i: number, p: Float32Array): void {
      const { topClass, topScore } = made();
      topKIndices(p, k).forEach((ci, rank) => {
        topClass[i * k + rank] = ci;
        topScore[i * k + rank] = p[ci] as number;
      });
      probabilities?.set(i, JSON.stringify(Array.from(p)));
    },
    /** The top classes and scores already known: cls[at ..], scores[at ..] (count, best first; at most k taken). */
    setTop(i: number, cls: Int32Array, scores: Float32Array, at: number, count: number): void {
      const { topClass, topScore } = made();
      const t = Math.min(k, count);
      for (let q = 0; q < t; q++) {
        topClass[i * k + q] = cls[at + q] as number;
        topScore[i * k + q] = scores[at + q] as number;
      }
    },
  };
}

/**
 * The report's samples as columns (SampleTable.fromColumns): paths and interned labels, splits and label-file sources
 * from `results`, errors by row, the top-K columns made while the probabilities were readable.
 */
function sampleColumnsOf(results: readonly ReportSample[], classes: readonly string[], top: ReturnType<typeof topKColumns>): SampleColumns {
  const n = results.length;
  const c = newSampleColumns(n, top.k, classes, top);
  const index = (names: string[], seen: Map<string, number>, v: string) => {
    let i = seen.get(v);
    if (i === undefined) {
      seen.set(v, (i = names.length));
      names.push(v);
    }
    return i;
  };
  const labelIdx = new Map<string, number>();
  const splitIdx = new Map<string, number>();
  const fileIdx = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = results[i] as ReportSample;
    c.paths[i] = r.path;
    c.labels[i] = index(c.labelNames, labelIdx, r.label);
    if (r.split !== undefined) c.splits[i] = index(c.splitNames, splitIdx, r.split);
    if (r.source) {
      c.sourceFile[i] = index(c.sourceFiles, fileIdx, r.source.file);
      c.sourceLine[i] = r.source.line;
    }
    if (r.contentHash) (c.hashes ??= new Array<string | undefined>(n))[i] = r.contentHash;
    if (r.error) c.errors.set(i, { code: r.error.code, message: r.error.message });
  }
  return c;
}

const SEVERITY_ORDER: Record<Warning['severity'], number> = { error: 0, warning: 1, info: 2 };

/**
 * Sample indices with the labels in turn (one of each label, then the next of each, ...), each label's samples in
 * their order: a class-folder dataset lists a whole class before the next, so the images done first would otherwise
 * all be of the first class.
 */
export function interleaveByLabel(samples: readonly Sample[]): number[] {
  const byLabel = new Map<string, number[]>();
  samples.forEach((s, i) => {
    let list = byLabel.get(s.label);
    if (!list) byLabel.set(s.label, (list = []));
    list.push(i);
  });
  const out: number[] = [];
  // Exhausted labels drop out, so a few large classes among many small ones cost O(samples), not O(largest x labels).
  let active = [...byLabel.values()];
  for (let k = 0; active.length > 0; k++) {
    const still: number[][] = [];
    for (const list of active) {
      out.push(list[k] as number);
      if (k + 1 < list.length) still.push(list);
    }
    active = still;
  }
  return out;
}

function countLabels(samples: readonly Sample[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of samples) counts.set(s.label, (counts.get(s.label) ?? 0) + 1);
  return counts;
}

/** Label-file lines reported per merged class, at most (then one line says how many more). */
const COLLISION_LINES_SHOWN = 20;

/**
 * The dataset with each colliding class merged into the class kept for it (see promptCollisions): samples relabelled,
 * merged classes dropped. Each merged class is a 'class-name-collision' problem on its folder(s) or, for label files,
 * on its lines.
 */
function mergeCollidingClasses(dataset: Dataset, collisions: PromptCollision[], problems: DatasetProblem[]): Dataset {
  if (collisions.length === 0) return dataset;
  const into = new Map<string, PromptCollision>();
  for (const c of collisions) for (const m of c.merged) into.set(m, c);
  const counts = countLabels(dataset.samples);
  const fix = 'merge or rename them, or give one its own text in "prompts" of .clip-lens.json';
  const describe = (m: string, c: PromptCollision) => {
    const n = counts.get(m) ?? 0;
    return `class "${m}" (${n} image${n === 1 ? '' : 's'}) gives the model the same prompt as "${c.kept}" (${JSON.stringify(c.prompt)}), so CLIP cannot tell them apart; its images are evaluated as "${c.kept}": ${fix}`;
  };
  const traits = datasetFormat(dataset.format);
  if (traits.samplesHaveLines) {
    const shown = new Map<string, number>();
    for (const s of dataset.samples) {
      const c = into.get(s.label);
      if (!c || !s.source) continue;
      const k = (shown.get(s.label) ?? 0) + 1;
      shown.set(s.label, k);
      if (k <= COLLISION_LINES_SHOWN) {
        problems.push({ code: 'class-name-collision', message: `label ${describe(s.label, c)}`, file: s.source.file, line: s.source.line, path: s.path });
      }
    }
    for (const [m, k] of shown) {
      if (k > COLLISION_LINES_SHOWN) {
        const c = into.get(m)!;
        problems.push({ code: 'class-name-collision', message: `label "${m}" is on ${k - COLLISION_LINES_SHOWN} more lines, also evaluated as "${c.kept}"`, file: dataset.samples.find((s) => s.label === m)?.source?.file });
      }
    }
  } else {
    for (const [m, c] of into) {
      // The class folder(s): `<class>` or `<split>/<class>`, taken from the sample paths.
      const depth = (traits.classFolderIndex ?? 0) + 1;
      const folders = [...new Set(dataset.samples.filter((s) => s.label === m).map((s) => s.path.split('/').slice(0, depth).join('/')))];
      if (folders.length === 0) folders.push(m);
      for (const f of folders) problems.push({ code: 'class-name-collision', message: describe(m, c), file: f });
    }
  }
  return {
    ...dataset,
    classes: dataset.classes.filter((c) => !into.has(c)),
    samples: dataset.samples.map((s) => (into.has(s.label) ? { ...s, label: into.get(s.label)!.kept } : s)),
  };
}

function collisionWarning(c: PromptCollision, samples: readonly Sample[]): Warning {
  const counts = countLabels(samples);
  const merged = c.merged.reduce((a, m) => a + (counts.get(m) ?? 0), 0);
  const names = c.merged.map((m) => `"${m}"`).join(', ');
  return {
    kind: 'class-collision',
    severity: 'warning',
    class: c.kept,
    message: `${names} and "${c.kept}" give the model the same prompt (${JSON.stringify(c.prompt)}); they are evaluated as one class "${c.kept}" (${merged} image${merged === 1 ? '' : 's'} merged). Merge or rename them, or give one its own text in "prompts".`,
    numbers: { classes: c.merged.length + 1, mergedImages: merged },
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Error messages of per-sample errors are shown next to the sample's path: drop a leading "path: ". */
function stripLocation(message: string, samplePath: string): string {
  const i = message.indexOf(': ');
  return i > 0 && message.slice(0, i).endsWith(samplePath) ? message.slice(i + 2) : message;
}

/** A reporter that adds one 'cache-unavailable' problem, the first time it is called. */
function onceReporter(problems: DatasetProblem[], root: string): (message: string) => void {
  let reported = false;
  return (message) => {
    if (reported) return;
    reported = true;
    problems.push({ code: 'cache-unavailable', message, file: root });
  };
}

async function openCache(
  root: string,
  namespace: string,
  problems: DatasetProblem[],
  unavailable: (message: string) => void,
): Promise<EmbeddingCache | null> {
  try {
    const cache = await EmbeddingCache.open(root, namespace);
    for (const d of cache.stats.discarded) problems.push({ code: 'cache-discarded', message: `discarded a cache segment (${d.reason}); its embeddings are recomputed`, file: d.file });
    return cache;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    unavailable(`cache disabled: ${err.message}; this run goes on without it`);
    return null;
  }
}

/** The cache namespace of a model's image embeddings (vision graph + preprocessing). */
function imageNamespace(model: ClipModel): string {
  return `image\0${model.imageFingerprint}`;
}

/**
 * The image-embedding cache of `model` under `root` (default: the user's cache folder), shared with evaluateDataset;
 * null when it cannot be opened (why goes to `problems`).
 */
export async function openImageCache(root: string | undefined, model: ClipModel, problems: DatasetProblem[] = []): Promise<EmbeddingCache | null> {
  const dir = root ?? defaultEmbeddingCacheDir();
  return openCache(dir, imageNamespace(model), problems, onceReporter(problems, dir));
}

export interface RunImagesArgs {
  dataset: Dataset;
  model: ClipModel;
  imageCache: EmbeddingCache | null;
  /**
   * When given, each image's perceptual hash is taken from the pixels decoded for its embedding (or, for an image
   * whose embedding is cached, from the hash cache, else from the bytes just read): no image is read or decoded again.
   */
  pixelHashes?: PixelHashRows;
  batchSize: number;
  signal?: AbortSignal;
  onHash: (index: number, hash: Buffer) => void;
  onCached: (index: number, embedding: Float32Array) => void;
  onComputed: (index: number, embedding: Float32Array) => void;
  onFailed: (index: number, error: unknown) => void;
  onBatchDone: () => void;
  /** The order the samples are processed in (a permutation of their indices; default: as listed). */
  order?: readonly number[];
  /** Called before each batch is filled; the batch waits for a returned promise. */
  beforeBatch?: () => Promise<void> | undefined;
}

/** The image phase of one evaluation: runImages, or a participant of a shared pass (shareImagePass). */
export type RunImagesFn = (a: RunImagesArgs) => Promise<void>;

/** Reads, hashes and (when not cached) preprocesses and infers every image, in batches, with one batch in flight. */
export async function runImages(a: RunImagesArgs): Promise<void> {
  const { dataset, model, imageCache, batchSize, signal } = a;
  const pre = model.preprocessor;
  const perImage = 3 * pre.outputHeight * pre.outputWidth;
  const n = dataset.samples.length;

  let visionRequested = false;
  /** Read + hash + (cache hit | preprocess into the batch). Resolves with the job or null (cached/failed). */
  const prepare = async (index: number, pixels: Float32Array, slot: number): Promise<ImageJob | null> => {
    const abs = path.join(dataset.root, dataset.samples[index].path);
    let bytes: Buffer;
    try {
      bytes = await readRegularFile(abs, { maxBytes: FILE_LIMITS.image, code: 'image-unreadable', what: 'the image' });
    } catch (e) {
      // A FIFO, a device or a file over the limit is named as such; a missing or unreadable file keeps its errno.
      const refused = e instanceof FileRefusedError && (e.reason === 'not-regular' || e.reason === 'too-large');
      const errno = e instanceof FileRefusedError ? e.errno : (e as NodeJS.ErrnoException).code;
      const message = refused ? e.message.slice(e.message.indexOf(': ') + 2) : `cannot read: ${errno ?? (e as Error).message}`;
      a.onFailed(index, new ClipLensError('image-unreadable', message, { file: dataset.samples[index].path }));
      return null;
    }
    const key = sha256(bytes);
    a.onHash(index, key);
    const hit = imageCache?.get(key);
    if (hit) {
      // A cached embedding without a cached hash (a cache from an older version): hash the bytes in hand.
      if (a.pixelHashes && !a.pixelHashes.fromCache(index, key)) {
        try {
          a.pixelHashes.set(index, key, await perceptualHashes(bytes, pre, dataset.samples[index].path));
        } catch {
          // Undecodable: the cached embedding stands; the image takes part in no near-duplicate pair.
        }
      }
      a.onCached(index, hit);
      return null;
    }
    // The first image to infer starts creating the vision session, overlapping this batch's decoding (errors
    // surface from embedImages).
    if (!visionRequested) {
      visionRequested = true;
      model.prepare({ vision: true }).catch(() => undefined);
    }
    try {
      const hashes = a.pixelHashes;
      await pre.preprocess(bytes, pixels, slot * perImage, dataset.samples[index].path, hashes && ((whole) => hashes.set(index, key, perceptualHashesOfRgb(whole))));
    } catch (e) {
      a.onFailed(index, e);
      return null;
    }
    return { index, key };
  };

  let next = 0;
  /** Fills one batch with up to batchSize uncached images, DECODE_CONCURRENCY at a time. */
  const fillBatch = async (): Promise<{ pixels: Float32Array; jobs: ImageJob[] } | null> => {
    if (next >= n) return null;
    const pixels = new Float32Array(batchSize * perImage);
    const jobs: (ImageJob & { slot: number })[] = [];
    // Slots of the batch buffer not taken; a cached or failed image gives its slot back.
    const free = Array.from({ length: batchSize }, (_, i) => batchSize - 1 - i);
    const worker = async () => {
      while (next < n && free.length > 0) {
        throwIfAborted(signal);
        const index = a.order ? (a.order[next++] as number) : next++;
        const slot = free.pop() as number;
        const job = await prepare(index, pixels, slot);
        if (job) jobs.push({ ...job, slot });
        else free.push(slot);
      }
    };
    await Promise.all(Array.from({ length: DECODE_CONCURRENCY }, worker));
    return packBatch(pixels, jobs, perImage);
  };

  let inflight: Promise<void> = Promise.resolve();
  let lastFlush = performance.now();
  const infer = async (pixels: Float32Array, jobs: ImageJob[]) => {
    const { embeddings, dim } = await model.embedImages(pixels, jobs.length);
    jobs.forEach((job, j) => {
      const e = embeddings.subarray(j * dim, (j + 1) * dim);
      imageCache?.put(job.key, e);
      a.onComputed(job.index, e);
    });
    a.onBatchDone();
    const pending = imageCache?.pendingCount ?? 0;
    if (pending >= CACHE_FLUSH_EVERY || (pending > 0 && performance.now() - lastFlush >= CACHE_FLUSH_MS)) {
      await imageCache!.flush();
      lastFlush = performance.now();
    }
  };

  try {
    for (;;) {
      await a.beforeBatch?.();
      const batch = await fillBatch();
      if (batch === null) break;
      if (batch.jobs.length === 0) {
        a.onBatchDone();
        continue;
      }
      await inflight;
      throwIfAborted(signal);
      inflight = infer(batch.pixels, batch.jobs);
      // Surface an inference failure at the next await without an unhandled rejection in between.
      inflight.catch(() => undefined);
    }
  } catch (e) {
    // Cancelled or failed: the batch in flight still finishes and is handed on (and put in the cache, which the
    // caller flushes), so a cancelled run keeps everything it embedded.
    await inflight.catch(() => undefined);
    throw e;
  }
  await inflight;
  a.onBatchDone();
}

/**
 * Orders the jobs by sample and lays their pixels out contiguously. A batch whose slots are exactly 0..m-1 in
 * order (the usual cold run) is passed on without a copy.
 */
function packBatch(pixels: Float32Array, jobs: (ImageJob & { slot: number })[], perImage: number): { pixels: Float32Array; jobs: ImageJob[] } {
  jobs.sort((x, y) => x.index - y.index);
  const plain = jobs.map(({ index, key }) => ({ index, key }));
  const contiguous = jobs.every((job, j) => job.slot === j);
  if (contiguous && jobs.length * perImage === pixels.length) return { pixels, jobs: plain };
  const out = new Float32Array(jobs.length * perImage);
  jobs.forEach((job, j) => out.set(pixels.subarray(job.slot * perImage, (job.slot + 1) * perImage), j * perImage));
  return { pixels: out, jobs: plain };
}

// ---------------------------------------------------------------------------------------------------------------------
// Two (or more) models over one read of the images

/** One image pass feeding several models' evaluations (eval --model A --model B). */
export interface SharedImagePass {
  /**
   * One runImages per model, in order. Each evaluation calls its own; the pass starts once every participant has
   * joined and settles them all together.
   */
  participants: RunImagesFn[];
  /** An evaluation ended without joining (it failed before its image phase): the others stop with `error`. */
  abandon(error: unknown): void;
  /** Files read and images decoded (preprocessed) by the pass: the counting seam of the tests. */
  readonly stats: { reads: number; decodes: number };
}

/**
 * A pass over the images for `count` models: each image is read and hashed once; each model's cache is asked; the
 * images some model lacks are decoded once per distinct preprocessing (models with the same preprocessor fingerprint
 * share the decoded tensor, copied into each model's batch) and inferred by each model that lacks them, every model
 * in its own worker, with the next batch prepared meanwhile. Models whose preprocessing differs decode separately:
 * a shared decode resized per model would give other pixels than the single-model run for large JPEGs (libjpeg's
 * shrink-on-load depends on the target size), and the embedding cache is shared with single-model runs.
 */
export function shareImagePass(count: number): SharedImagePass {
  const stats = { reads: 0, decodes: 0 };
  const joined: { args: RunImagesArgs; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let failure: { error: unknown } | undefined;
  const stop = new AbortController();
  const participants: RunImagesFn[] = Array.from({ length: count }, (_, i) => (args: RunImagesArgs) =>
    new Promise<void>((resolve, reject) => {
      if (failure) return reject(failure.error);
      joined[i] = { args, resolve, reject };
      if (joined.filter(Boolean).length < count) return;
      const signals = joined.map((j) => j.args.signal).filter((s): s is AbortSignal => s !== undefined);
      const onAbort = () => stop.abort();
      for (const s of signals) {
        if (s.aborted) stop.abort();
        s.addEventListener('abort', onAbort, { once: true });
      }
      runImagesShared(joined.map((j) => j.args), stop.signal, stats)
        .then(
          () => joined.forEach((j) => j.resolve()),
          (e) => joined.forEach((j) => j.reject(e)),
        )
        .finally(() => {
          for (const s of signals) s.removeEventListener('abort', onAbort);
        });
    }),
  );
  return {
    participants,
    stats,
    abandon(error) {
      if (failure) return;
      failure = { error };
      stop.abort();
      for (const j of joined) j?.reject(error);
    },
  };
}

async function runImagesShared(parts: RunImagesArgs[], signal: AbortSignal, stats: { reads: number; decodes: number }): Promise<void> {
  const { dataset, batchSize } = parts[0] as RunImagesArgs;
  const n = dataset.samples.length;
  const perImage = parts.map((p) => 3 * p.model.preprocessor.outputHeight * p.model.preprocessor.outputWidth);
  // Each model's decoding group: the first model with the same preprocessing.
  const group = parts.map((p) => parts.findIndex((q) => q.model.preprocessor.fingerprint === p.model.preprocessor.fingerprint));
  const visionRequested = parts.map(() => false);

  interface Batch {
    pixels: Float32Array[];
    free: number[][];
    jobs: (ImageJob & { slot: number })[][];
  }

  /** Read + hash once; per model a cache hit or a slot of its batch; decode once per preprocessing group. */
  const prepare = async (index: number, batch: Batch, slots: number[]): Promise<void> => {
    const sample = dataset.samples[index] as Sample;
    const giveBack = (m: number) => (batch.free[m] as number[]).push(slots[m] as number);
    let bytes: Buffer;
    try {
      stats.reads++;
      bytes = await readRegularFile(path.join(dataset.root, sample.path), { maxBytes: FILE_LIMITS.image, code: 'image-unreadable', what: 'the image' });
    } catch (e) {
      const refused = e instanceof FileRefusedError && (e.reason === 'not-regular' || e.reason === 'too-large');
      const errno = e instanceof FileRefusedError ? e.errno : (e as NodeJS.ErrnoException).code;
      const message = refused ? (e as Error).message.slice((e as Error).message.indexOf(': ') + 2) : `cannot read: ${errno ?? (e as Error).message}`;
      parts.forEach((p, m) => {
        giveBack(m);
        p.onFailed(index, new ClipLensError('image-unreadable', message, { file: sample.path }));
      });
      return;
    }
    const key = sha256(bytes);
    const missing: number[] = [];
    parts.forEach((p, m) => {
      p.onHash(index, key);
      const hit = p.imageCache?.get(key);
      if (hit) {
        giveBack(m);
        p.onCached(index, hit);
        return;
      }
      if (!visionRequested[m]) {
        visionRequested[m] = true;
        p.model.prepare({ vision: true }).catch(() => undefined);
      }
      missing.push(m);
    });
    for (const leader of [...new Set(missing.map((m) => group[m] as number))]) {
      const members = missing.filter((m) => group[m] === leader);
      const first = members[0] as number;
      const at = (m: number) => (slots[m] as number) * (perImage[m] as number);
      try {
        stats.decodes++;
        await (parts[first] as RunImagesArgs).model.preprocessor.preprocess(bytes, batch.pixels[first], at(first), sample.path);
      } catch (e) {
        for (const m of members) {
          giveBack(m);
          (parts[m] as RunImagesArgs).onFailed(index, e);
        }
        continue;
      }
      const decoded = (batch.pixels[first] as Float32Array).subarray(at(first), at(first) + (perImage[first] as number));
      for (const m of members) {
        if (m !== first) (batch.pixels[m] as Float32Array).set(decoded, at(m));
        (batch.jobs[m] as (ImageJob & { slot: number })[]).push({ index, key, slot: slots[m] as number });
      }
    }
  };

  let next = 0;
  /** Fills one batch: images until every model has batchSize to infer or the dataset ends, DECODE_CONCURRENCY at a time. */
  const fillBatch = async (): Promise<{ pixels: Float32Array; jobs: ImageJob[] }[] | null> => {
    if (next >= n) return null;
    const batch: Batch = {
      pixels: perImage.map((k) => new Float32Array(batchSize * k)),
      free: parts.map(() => Array.from({ length: batchSize }, (_, i) => batchSize - 1 - i)),
      jobs: parts.map(() => []),
    };
    const worker = async () => {
      while (next < n && batch.free.every((f) => f.length > 0)) {
        throwIfAborted(signal);
        const index = next++;
        // A slot per model, taken now (the other workers run while this one reads); unused slots are given back.
        const slots = batch.free.map((f) => f.pop() as number);
        await prepare(index, batch, slots);
      }
    };
    await Promise.all(Array.from({ length: DECODE_CONCURRENCY }, worker));
    return parts.map((_, m) => packBatch(batch.pixels[m] as Float32Array, batch.jobs[m] as (ImageJob & { slot: number })[], perImage[m] as number));
  };

  let inflight: Promise<unknown> = Promise.resolve();
  const lastFlush = parts.map(() => performance.now());
  const infer = async (m: number, pixels: Float32Array, jobs: ImageJob[]) => {
    const p = parts[m] as RunImagesArgs;
    if (jobs.length > 0) {
      const { embeddings, dim } = await p.model.embedImages(pixels, jobs.length);
      jobs.forEach((job, j) => {
        const e = embeddings.subarray(j * dim, (j + 1) * dim);
        p.imageCache?.put(job.key, e);
        p.onComputed(job.index, e);
      });
    }
    p.onBatchDone();
    const pending = p.imageCache?.pendingCount ?? 0;
    if (pending >= CACHE_FLUSH_EVERY || (pending > 0 && performance.now() - (lastFlush[m] as number) >= CACHE_FLUSH_MS)) {
      await p.imageCache!.flush();
      lastFlush[m] = performance.now();
    }
  };

  for (;;) {
    for (const p of parts) await p.beforeBatch?.();
    const batch = await fillBatch();
    if (batch === null) break;
    await inflight;
    throwIfAborted(signal);
    inflight = Promise.all(batch.map((b, m) => infer(m, b.pixels, b.jobs)));
    inflight.catch(() => undefined);
  }
  await inflight;
  for (const p of parts) p.onBatchDone();
}
