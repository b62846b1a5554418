/**
 * The evaluation pipeline: dataset -> CLIP zero-shot predictions -> metrics, warnings, label issues -> EvalReport.
 *
 * Images are read and hashed on this thread, decoded and resized by sharp on libuv's threads, and inferred in the
 * model's worker thread; the next batch is prepared while the current one is inferred. Embeddings are cached by
 * content hash, so a re-run only infers new or changed images.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, ClipLensError, throwIfAborted } from './errors';
import { EmbeddingCache, defaultEmbeddingCacheDir, sha256 } from './embeddingCache';
import type { ClipModel } from './runtime';
import { embedClassPrompts, topKIndices, zeroShotProbabilities, type ClassEmbeddings } from './zeroShot';
import { readDataset } from './dataset';
import { readProjectConfig, type ProjectConfig } from './projectConfig';
import { promptsForClass, resolveTemplates } from './prompts';
import { ProbabilityMatrix } from './probabilities';
import { computeMetrics } from './metrics';
import { computeWarnings, effectiveWarningThresholds } from './warnings';
import { findLabelIssues } from './labelIssues';
import type { Dataset, DatasetProblem } from './types';
import { REPORT_SCHEMA_VERSION, type EvalReport, type LabelIssue, type Metrics, type ReportSample, type Warning } from './report';
import { TOOL_VERSION } from './version';
import { datasetRootOf } from './run';

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
  /** The dataset's already-parsed project config (otherwise read from `.clip-lens.json` at the root). */
  projectConfig?: ProjectConfig;
  /** The dataset, already read by the caller (core/run.ts planRun) from `target`; otherwise read here. */
  dataset?: Dataset;
  signal?: AbortSignal;
  onProgress?: (p: EvaluateProgress) => void;
}

/** Decoding/resizing jobs allowed in flight at once (sharp runs them on libuv's thread pool). */
const DECODE_CONCURRENCY = 4;
/** Floats per chunk of the per-sample probability store (4 MB). */
const SAMPLE_CHUNK_FLOATS = 1 << 20;
/** Image embeddings held while the prompts are still being embedded, at most (then the images wait). */
const EARLY_LIMIT = 4096;
/** New cache entries written to disk once this many are pending (keeps memory bounded on huge datasets). */
const CACHE_FLUSH_EVERY = 4096;

/**
 * What the run learns per sample, in typed arrays rather than one small object per sample: the softmax
 * probabilities (chunks of SAMPLE_CHUNK_FLOATS) and the content hashes. Objects that live to the end of a run but are
 * made one by one during it survive every young-generation collection, and V8 answers that by growing the young
 * generation, which is what made peak memory grow with the dataset; the report's per-sample objects are made once,
 * at the end.
 */
class PerSampleStore {
  readonly hasProbabilities: Uint8Array;
  private readonly chunks: Float32Array[] = [];
  private readonly rowsPerChunk: number;
  private readonly hashes: Uint8Array;
  private readonly hasHash: Uint8Array;

  constructor(
    private readonly n: number,
    private readonly k: number,
  ) {
    this.hasProbabilities = new Uint8Array(n);
    this.rowsPerChunk = Math.max(1, Math.floor(SAMPLE_CHUNK_FLOATS / k));
    this.hashes = new Uint8Array(n * 32);
    this.hasHash = new Uint8Array(n);
  }

  /** Sample i's probability row (a view; allocated on first use). */
  probabilities(i: number): Float32Array {
    const c = Math.floor(i / this.rowsPerChunk);
    const chunk = (this.chunks[c] ??= new Float32Array(Math.min(this.rowsPerChunk, this.n - c * this.rowsPerChunk) * this.k));
    const r = (i - c * this.rowsPerChunk) * this.k;
    return chunk.subarray(r, r + this.k);
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
  const dataset = options.dataset ?? await readDataset(target, {
    labelFile: options.labelFile ?? (labelsConfig.file && target === configRoot ? path.resolve(configRoot, labelsConfig.file) : undefined),
    imageColumn: options.imageColumn ?? labelsConfig.imageColumn,
    labelColumn: options.labelColumn ?? labelsConfig.labelColumn,
    splitColumn: options.splitColumn ?? labelsConfig.splitColumn,
    signal,
  });
  problems.push(...dataset.problems);
  const topK = Math.max(1, options.topK ?? config.topK ?? 5);
  const templates = await resolveTemplates(options.templates ?? config.templates, dataset.root);
  const classes = dataset.classes;
  if (classes.length < 2) {
    throw new ClipLensError('dataset-too-few-classes', `found ${classes.length} class${classes.length === 1 ? '' : 'es'}; zero-shot evaluation needs at least 2`, { file: dataset.labelFile ?? dataset.root });
  }

  // Caches: one namespace for images (vision graph + preprocessing), one for prompts (text graph + tokenizer).
  const cacheRoot = options.cacheDir === undefined ? defaultEmbeddingCacheDir() : options.cacheDir;
  const imageCache = cacheRoot ? await openCache(cacheRoot, imageNamespace(model), problems) : null;
  const textCache = cacheRoot ? await openCache(cacheRoot, `text\0${model.textFingerprint}`, problems) : null;

  // Class embeddings and images at once: the prompts are embedded (text worker) while the first images are read,
  // hashed and preprocessed and the vision session is created (vision worker). An image finished before the class
  // embeddings are ready waits in `early`.
  progress({ phase: 'prompts', done: 0, total: classes.length, rate: 0, fromCache: 0 });
  const prompts = classes.map((c) => promptsForClass(c, templates.templates, config?.prompts));
  let classEmbeddings: ClassEmbeddings | null = null;
  const early: { index: number; embedding: Float32Array }[] = [];
  const textDone = embedClassPrompts(model, prompts, textCache, signal).then(async (e) => {
    await textCache?.flush();
    classEmbeddings = e;
    for (const { index, embedding } of early.splice(0)) score(index, embedding, e);
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
  const results: ReportSample[] = samples.map((s) => ({ path: s.path, label: s.label, ...(s.split !== undefined ? { split: s.split } : {}), ...(s.source ? { source: s.source } : {}), predicted: [] }));
  const store = new PerSampleStore(samples.length, classes.length);
  const tImages = performance.now();
  // Session creation (lazy, only when some image is not cached) is start-up cost, not image throughput.
  const loadMsBefore = model.visionLoadMs;
  let computed = 0;
  let fromCache = 0;
  let done = 0;
  const report = () => {
    const secs = (performance.now() - tImages) / 1000;
    progress({ phase: 'images', done, total: samples.length, rate: secs > 0 ? computed / secs : 0, fromCache });
  };

  function finish(index: number, embedding: Float32Array): void {
    done++;
    if (classEmbeddings) score(index, embedding, classEmbeddings);
    else early.push({ index, embedding });
  }

  function score(index: number, embedding: Float32Array, classEmbeddings: ClassEmbeddings): void {
    zeroShotProbabilities(embedding, classEmbeddings, model.logitScale, store.probabilities(index));
    store.hasProbabilities[index] = 1;
  }

  const fail = (index: number, e: unknown) => {
    if (e instanceof CancelledError) throw e;
    const err = e instanceof ClipLensError ? { code: e.code, message: stripLocation(e.message, samples[index].path) } : { code: 'image-unreadable', message: (e as Error).message };
    results[index].error = err;
    done++;
  };

  try {
    await runImages({
      dataset,
      model,
      imageCache,
      batchSize: Math.max(1, options.batchSize ?? 32),
      signal: stop.signal,
      // Bounded memory: images finished before the prompts wait in `early`; past a limit, wait for the prompts.
      beforeBatch: () => (early.length >= EARLY_LIMIT ? textDone.then(() => undefined) : undefined),
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
    throw textError ?? e;
  } finally {
    signal?.removeEventListener('abort', forwardAbort);
    // Keep what was computed even when cancelled or failed: the next run resumes from there.
    await imageCache?.flush().catch(() => undefined);
  }
  const { ms: textMs, dim: embeddingDim } = await textDone;
  throwIfAborted(signal);
  const tDone = performance.now();
  const sessionMs = model.visionLoadMs - loadMsBefore;
  // The image rate counts from when the vision session was ready (its creation overlaps the first batch's decoding).
  const imageMs = tDone - Math.max(tImages, model.visionReadyAt);
  report();

  // Judgement.
  progress({ phase: 'metrics', done: 0, total: 1, rate: 0, fromCache });
  const evaluated: number[] = [];
  // Per-sample report fields from the store (objects made once, at the end: see PerSampleStore).
  for (let i = 0; i < samples.length; i++) {
    const hash = store.hash(i);
    if (hash !== null) results[i].contentHash = hash;
    if (!store.hasProbabilities[i]) continue;
    const p = store.probabilities(i);
    results[i].predicted = topKIndices(p, topK).map((c) => ({ class: classes[c], score: p[c] }));
    if (options.probabilities) results[i].probabilities = Array.from(p);
    if (classIndex.has(samples[i].label)) evaluated.push(i);
  }
  const matrix = new ProbabilityMatrix(classes.length);
  const labels: number[] = [];
  for (const i of evaluated) {
    matrix.push(store.probabilities(i));
    labels.push(classIndex.get(samples[i].label) as number);
  }
  const ks = [...new Set([1, 3, 5, topK, ...(options.ks ?? [])])].filter((k) => k >= 1).sort((a, b) => a - b);
  let metrics: Metrics | null = null;
  let metricsBySplit: Record<string, Metrics> | undefined;
  let warnings: Warning[] = [];
  let labelIssues: LabelIssue[] = [];
  const splits = [...new Set(samples.map((s) => s.split).filter((s): s is string => s !== undefined))].sort();
  if (evaluated.length > 0) {
    const input = { classes, labels, probs: matrix };
    metrics = computeMetrics(input, { ks });
    if (splits.length > 0) {
      metricsBySplit = {};
      for (const split of splits) {
        const idx: number[] = [];
        evaluated.forEach((sampleIndex, row) => {
          if (samples[sampleIndex].split === split) idx.push(row);
        });
        if (idx.length > 0) metricsBySplit[split] = computeMetrics(input, { ks, indices: idx });
      }
    }
    const ignored = new Set(config.ignore ?? []);
    labelIssues = findLabelIssues(input)
      .map((issue) => ({ ...issue, index: evaluated[issue.index], path: samples[evaluated[issue.index]].path }))
      .filter((issue) => !ignored.has(issue.path))
      .map((issue, i) => ({ ...issue, rank: i + 1 }));
    warnings = computeWarnings({ metrics, samples: results, metricsBySplit }, config.warnings);
  }
  const failed = results.filter((r) => r.error).length;
  if (failed > 0 || problems.length > 0) {
    warnings.push({
      kind: 'dataset-errors',
      severity: 'warning',
      message: `${failed} image${failed === 1 ? '' : 's'} could not be evaluated and ${problems.length} problem${problems.length === 1 ? '' : 's'} were found in the dataset; they are listed under errors.`,
      numbers: { failedImages: failed, problems: problems.length },
    });
  }

  const perClass: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const s of samples) if (s.label in perClass) perClass[s.label]++;
  const totalMs = performance.now() - t0;
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'clip-lens', version: TOOL_VERSION },
    createdAt: new Date(started).toISOString(),
    model: {
      id: options.modelId ?? model.files.dir,
      dir: model.files.dir,
      quantized: model.files.quantized,
      embeddingDim,
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
      counts: { samples: samples.length, evaluated: evaluated.length, failed, perClass },
    },
    samples: results,
    errors: problems,
    metrics,
    ...(metricsBySplit ? { metricsBySplit } : {}),
    warnings,
    thresholds: effectiveWarningThresholds(config.warnings),
    labelIssues,
    timing: {
      totalMs: round(totalMs),
      textMs: round(textMs),
      imageMs: round(imageMs),
      sessionMs: round(sessionMs),
      imagesComputed: computed,
      imagesFromCache: fromCache,
      imagesPerSecond: imageMs > 0 ? round((computed * 1000) / imageMs) : 0,
    },
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

async function openCache(root: string, namespace: string, problems: DatasetProblem[]): Promise<EmbeddingCache | null> {
  try {
    const cache = await EmbeddingCache.open(root, namespace);
    for (const d of cache.stats.discarded) problems.push({ code: 'cache-discarded', message: `discarded a cache segment (${d.reason}); its embeddings are recomputed`, file: d.file });
    return cache;
  } catch (e) {
    problems.push({ code: 'cache-unavailable', message: `cache disabled: ${(e as Error).message}`, file: root });
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
  return openCache(root ?? defaultEmbeddingCacheDir(), imageNamespace(model), problems);
}

export interface RunImagesArgs {
  dataset: Dataset;
  model: ClipModel;
  imageCache: EmbeddingCache | null;
  batchSize: number;
  signal?: AbortSignal;
  onHash: (index: number, hash: Buffer) => void;
  onCached: (index: number, embedding: Float32Array) => void;
  onComputed: (index: number, embedding: Float32Array) => void;
  onFailed: (index: number, error: unknown) => void;
  onBatchDone: () => void;
  /** Called before each batch is filled; the batch waits for a returned promise. */
  beforeBatch?: () => Promise<void> | undefined;
}

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
      bytes = await fs.promises.readFile(abs);
    } catch (e) {
      a.onFailed(index, new ClipLensError('image-unreadable', `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: dataset.samples[index].path }));
      return null;
    }
    const key = sha256(bytes);
    a.onHash(index, key);
    const hit = imageCache?.get(key);
    if (hit) {
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
      await pre.preprocess(bytes, pixels, slot * perImage, dataset.samples[index].path);
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
        const index = next++;
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
  const infer = async (pixels: Float32Array, jobs: ImageJob[]) => {
    const { embeddings, dim } = await model.embedImages(pixels, jobs.length);
    jobs.forEach((job, j) => {
      const e = embeddings.subarray(j * dim, (j + 1) * dim);
      imageCache?.put(job.key, e);
      a.onComputed(job.index, e);
    });
    a.onBatchDone();
    if (imageCache && imageCache.pendingCount >= CACHE_FLUSH_EVERY) await imageCache.flush();
  };

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
