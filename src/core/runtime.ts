/**
 * The CLIP model as the rest of core sees it: tokenizer + preprocessor on this thread, each ONNX tower in its own
 * worker thread (see inferenceWorker.ts), so that creating the vision session (the slowest start-up step, and
 * blocking in onnxruntime) overlaps embedding the prompts. Embeddings come back L2-normalised.
 */
import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipLensError, throwIfAborted } from './errors';
import { FILE_LIMITS, readRegularFile } from './fileSystem';
import type { SessionSettings, TowerDescription, WorkerRequest, WorkerResponse } from './inferenceProtocol';
import { resolveModelDir, readLogitScale, type ModelFiles } from './modelDir';
import { ClipTokenizer, CONTEXT_LENGTH } from './tokenizer';
import { padTextBatch, planTextBatches, type TextBatch, type TextSequenceAxis } from './textBatches';
import { ImagePreprocessor } from './imagePreprocess';
import { readPreprocessorConfig } from './preprocessorConfig';

export interface ClipModelOptions {
  /** Use the `*_quantized.onnx` variants. */
  quantized?: boolean;
  /** ORT intra-op threads (default: the number of cores). */
  threads?: number;
  /** Execution providers in preference order (default ['cpu']). */
  executionProviders?: string[];
  /** Pixel limit per image, refused before decoding (decompression bombs). */
  maxPixels?: number;
  /**
   * Run prompts at their batch's longest length when the text graph allows it (default true; textBatches.ts).
   * false: always 77 tokens, as before (for comparisons and benchmarks).
   */
  trimText?: boolean;
}

/** Locates the worker script: next to the bundle (dist/) or, when running from source under tsx, the .ts file. */
function workerScript(): string {
  for (const name of ['inferenceWorker.js', 'inferenceWorker.ts']) {
    const candidate = path.join(__dirname, name);
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`inference worker script not found next to ${__dirname}`);
}

/** 64 MB of stack for the inference worker (see InferenceWorkerClient). */
const WORKER_LIMITS = { stackSizeMb: 64 };

/** A request without its id (distributes over the union). */
type WorkerRequestBody = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

/** A worker thread with request/response matching. */
class InferenceWorkerClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;

  constructor() {
    const script = workerScript();
    // From source (tests under tsx), the worker needs tsx's require hook to load TypeScript. The stack is set
    // explicitly: on Node's default worker stack (4 MB) onnxruntime's session creation overflowed it (SIGSEGV,
    // exit 139, a 43,000-frame recursion inside libonnxruntime seen in gdb) once the CLI had 352+ arguments.
    this.worker = script.endsWith('.ts')
      ? new Worker(`require('tsx/cjs/api').register(); require(${JSON.stringify(script)});`, { eval: true, resourceLimits: WORKER_LIMITS })
      : new Worker(script, { resourceLimits: WORKER_LIMITS });
    this.worker.unref();
    this.worker.on('message', (res: WorkerResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      p.resolve(res);
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`inference worker exited (code ${code})`)));
  }

  request(req: WorkerRequestBody, transfer: ArrayBuffer[] = []): Promise<WorkerResponse> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const full = { ...req, id } as WorkerRequest;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size > 0) this.worker.ref();
      this.worker.postMessage(full, transfer);
    }).then((res) => {
      if (this.pending.size === 0) this.worker.unref();
      return res as WorkerResponse;
    }, (e) => {
      if (this.pending.size === 0) this.worker.unref();
      throw e;
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

function unwrap(res: WorkerResponse): Exclude<WorkerResponse, { ok: false }> {
  if (!res.ok) {
    const code = res.error.code;
    const msg = res.error.message;
    throw new ClipLensError(code, msg, { file: res.error.file });
  }
  return res;
}

/** Prompts per text tower run (sorted by length first when the graph allows trimming). */
export const TEXT_BATCH = 64;

/**
 * The trimmed and the 77-token embedding of the same prompt must agree this well for trimming to stay on. float32
 * graphs: rounding only (ViT-B/32: cosine 1 - 1e-7, docs/benchmarks.md). int8 graphs (*_quantized.onnx, dynamic
 * quantisation) scale each activation tensor by the range of the whole batch, so a prompt's embedding moves with
 * whatever else is in its batch, trimmed or not: at 77 tokens alone vs in a batch, cosine 0.9992 worst (ViT-B/32,
 * 16 prompts); trimmed vs 77 tokens, 0.9990 worst, and trimmed is as close to the float32 graph as 77 tokens
 * (mean 0.99922 both). A graph that is not causal, or pools elsewhere, misses these by far more.
 */
export const TRIM_CHECK_MIN_COSINE = { float32: 0.99999, int8: 0.995 };

/** Cosine of two vectors (float64 sums); two zero vectors count as equal (1), one zero vector as unlike (0). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : aa === bb ? 1 : 0;
}

/** L2-normalises each row of an n x dim matrix in place. */
export function normalizeRows(data: Float32Array, dim: number): Float32Array {
  for (let off = 0; off < data.length; off += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[off + j] * data[off + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) data[off + j] *= inv;
  }
  return data;
}

/** Identity of a model file for cache keys: size, mtime and a hash of its first and last MiB (cheap, content-based). */
async function fileFingerprint(file: string): Promise<string> {
  const st = await fs.promises.stat(file);
  const fh = await fs.promises.open(file, 'r');
  try {
    const chunk = 1 << 20;
    const hash = createHash('sha256');
    hash.update(`${st.size}\0`);
    const head = Buffer.alloc(Math.min(chunk, st.size));
    await fh.read(head, 0, head.length, 0);
    hash.update(head);
    if (st.size > chunk) {
      const tail = Buffer.alloc(Math.min(chunk, st.size - chunk));
      await fh.read(tail, 0, tail.length, st.size - tail.length);
      hash.update(tail);
    }
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

export class ClipModel {
  /** One worker per tower: onnxruntime blocks its thread while it creates a session. */
  private workers: { vision: InferenceWorkerClient | null; text: InferenceWorkerClient | null } = { vision: null, text: null };
  private visionTower: TowerDescription | null = null;
  private textTower: TowerDescription | null = null;
  private loadingVision: Promise<TowerDescription> | null = null;
  private loadingText: Promise<TowerDescription> | null = null;
  private measuredDim: number | null = null;
  /** Milliseconds spent creating the vision session, cumulative (for timings). */
  visionLoadMs = 0;
  /** performance.now() when the vision session last became ready (0: never). */
  visionReadyAt = 0;

  private constructor(
    readonly files: ModelFiles,
    readonly preprocessor: ImagePreprocessor,
    readonly logitScale: number,
    /** Changes whenever image embeddings would change: vision graph + preprocessing. */
    readonly imageFingerprint: string,
    /** Changes whenever text embeddings would change: text graph + tokenizer. */
    readonly textFingerprint: string,
    private readonly settings: SessionSettings,
  ) {}

  /** Reads and validates the model directory; ONNX sessions are created lazily, on first use. */
  static async load(dir: string, options: ClipModelOptions = {}): Promise<ClipModel> {
    const files = await resolveModelDir(dir, { quantized: options.quantized });
    const preprocessor = new ImagePreprocessor(await readPreprocessorConfig(files.preprocessorConfig), { maxPixels: options.maxPixels });
    let logitScale = 100;
    if (files.config) {
      let json: unknown;
      const text = (await readRegularFile(files.config, { maxBytes: FILE_LIMITS.modelText, code: 'model-bad-config', what: 'the model config' })).toString('utf8');
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new ClipLensError('model-bad-config', `not valid JSON: ${(e as Error).message}`, { file: files.config });
      }
      logitScale = readLogitScale(json, files.config);
    }
    const tokFile = 'tokenizerJson' in files.tokenizer ? files.tokenizer.tokenizerJson : files.tokenizer.mergesTxt;
    const [vfp, tfp, tokfp] = await Promise.all([fileFingerprint(files.visionModel), fileFingerprint(files.textModel), fileFingerprint(tokFile)]);
    const imageFingerprint = createHash('sha256').update(`${vfp}\0${preprocessor.fingerprint}`).digest('hex');
    const textFingerprint = createHash('sha256').update(`${tfp}\0${tokfp}`).digest('hex');
    const threads = Math.max(1, options.threads ?? os.availableParallelism());
    const settings: SessionSettings = { threads, executionProviders: options.executionProviders ?? ['cpu'] };
    const model = new ClipModel(files, preprocessor, logitScale, imageFingerprint, textFingerprint, settings);
    if (options.trimText === false) model.textTrimming = 'off';
    return model;
  }

  private tokenizerLoading: Promise<ClipTokenizer> | null = null;

  /**
   * The tokenizer, read on first use: a run whose prompt embeddings all come from the cache never needs it (its
   * file's fingerprint is part of the cache key), and building the BPE tables costs a few hundred milliseconds.
   */
  tokenizer(): Promise<ClipTokenizer> {
    if (!this.tokenizerLoading) {
      this.tokenizerLoading = ClipTokenizer.fromModelDir(this.files.dir);
      // A failure is reported to this caller and retried by the next.
      this.tokenizerLoading.catch(() => (this.tokenizerLoading = null));
    }
    return this.tokenizerLoading;
  }

  private client(tower: 'vision' | 'text'): InferenceWorkerClient {
    return (this.workers[tower] ??= new InferenceWorkerClient());
  }

  private async ensureVision(): Promise<TowerDescription> {
    if (this.visionTower) return this.visionTower;
    const t0 = performance.now();
    this.loadingVision ??= this.client('vision')
      .request({ type: 'loadVision', file: this.files.visionModel, settings: this.settings })
      .then((r) => {
        const res = unwrap(r);
        if (res.type !== 'loaded') throw new Error('unexpected worker reply');
        const shape = res.tower.imageShape;
        const p = this.preprocessor;
        if (shape && (shape[0] !== 3 || shape[1] !== p.outputHeight || shape[2] !== p.outputWidth)) {
          throw new ClipLensError('model-mismatch', `the vision graph expects pixel_values [N,${shape.join(',')}] but preprocessor_config.json produces [N,3,${p.outputHeight},${p.outputWidth}]`, { file: this.files.visionModel });
        }
        this.visionTower = res.tower;
        this.visionReadyAt = performance.now();
        return res.tower;
      })
      .finally(() => {
        this.loadingVision = null;
        this.visionLoadMs += performance.now() - t0;
      });
    return this.loadingVision;
  }

  private async ensureText(): Promise<TowerDescription> {
    if (this.textTower) return this.textTower;
    this.loadingText ??= this.client('text')
      .request({ type: 'loadText', file: this.files.textModel, settings: this.settings })
      .then((r) => {
        const res = unwrap(r);
        if (res.type !== 'loaded') throw new Error('unexpected worker reply');
        this.textTower = res.tower;
        return res.tower;
      })
      .finally(() => (this.loadingText = null));
    return this.loadingText;
  }

  /** Creates the ONNX sessions now rather than on first use (e.g. to keep session creation out of timings). */
  async prepare(towers: { vision?: boolean; text?: boolean } = { vision: true, text: true }): Promise<void> {
    await Promise.all([towers.text ? this.ensureText() : null, towers.vision ? this.ensureVision() : null]);
  }

  /** Embedding width D, known from the graph or after the first run. */
  get embeddingDim(): number | null {
    return this.visionTower?.embeddingDim ?? this.textTower?.embeddingDim ?? this.measuredDim;
  }

  /**
   * Embeds `count` preprocessed images laid out CHW one after another in `pixels` (which is transferred to the
   * worker: do not use it afterwards). Returns count x D, L2-normalised rows.
   */
  async embedImages(pixels: Float32Array, count: number): Promise<{ embeddings: Float32Array; dim: number; runMs: number }> {
    await this.ensureVision();
    const shape: [number, number, number] = [3, this.preprocessor.outputHeight, this.preprocessor.outputWidth];
    if (pixels.length !== count * shape[0] * shape[1] * shape[2]) throw new Error(`pixel buffer holds ${pixels.length} floats, expected ${count} images`);
    const res = unwrap(await this.client('vision').request({ type: 'embedImages', pixels, count, shape }, [pixels.buffer as ArrayBuffer]));
    if (res.type !== 'embeddings') throw new Error('unexpected worker reply');
    this.measuredDim = res.dim;
    return { embeddings: normalizeRows(res.embeddings, res.dim), dim: res.dim, runMs: res.runMs };
  }

  /**
   * Embeds texts (tokenised here); returns count x D, L2-normalised rows, in the order of `texts`. They are run in
   * batches of `batchSize` ({@link TEXT_BATCH}); when the text graph's sequence axis is dynamic, sorted by token
   * count and each batch cut to its longest prompt (textBatches.ts: the same embeddings, a fraction of the work),
   * otherwise at 77 tokens. `signal` is checked between batches. `runMs` sums the graph runs.
   */
  async embedTexts(texts: string[], options: { batchSize?: number; signal?: AbortSignal } = {}): Promise<{ embeddings: Float32Array; dim: number; runMs: number }> {
    const [tokenizer, tower] = await Promise.all([this.tokenizer(), this.ensureText()]);
    const axis = this.textAxis(tower);
    const batches = planTextBatches(texts.map((t) => tokenizer.encode(t)), options.batchSize ?? TEXT_BATCH, axis);
    let out: Float32Array | null = null;
    let dim = this.measuredDim ?? 0;
    let runMs = 0;
    for (const batch of batches) {
      throwIfAborted(options.signal);
      const r = await this.runTextBatch(batch, tokenizer.endId);
      if (!out) {
        dim = r.dim;
        out = new Float32Array(texts.length * dim);
      } else if (r.dim !== dim) throw new ClipLensError('model-bad-output', `text_embeds width changed from ${dim} to ${r.dim} between batches`, { file: this.files.textModel });
      runMs += r.runMs;
      batch.rows.forEach((row, j) => out!.set(r.embeddings.subarray(j * dim, (j + 1) * dim), row * dim));
    }
    this.measuredDim = dim || this.measuredDim;
    return { embeddings: normalizeRows(out ?? new Float32Array(0), dim), dim, runMs };
  }

  /** Whether the text graph is run at trimmed lengths: its sequence axis, unless the first trimmed batch disagreed. */
  private textAxis(tower: TowerDescription): TextSequenceAxis {
    const declared = tower.textLength;
    if (typeof declared === 'number' && declared !== CONTEXT_LENGTH) {
      throw new ClipLensError('model-bad-graph', `the text graph's input 'input_ids' has a fixed length of ${declared} tokens; CLIP's context is ${CONTEXT_LENGTH} (or a dynamic sequence axis)`, { file: this.files.textModel });
    }
    return declared === 'dynamic' && this.textTrimming !== 'off' ? 'dynamic' : CONTEXT_LENGTH;
  }

  /**
   * 'unchecked' until the first trimmed batch has run: its shortest prompt is then also run at 77 tokens, and
   * trimming stays on only if both give the same embedding (a graph can declare a dynamic axis and still not be
   * causal-and-pooled-at-the-end-token like CLIP's; then every batch runs at 77, as for a fixed graph).
   */
  private textTrimming: 'unchecked' | 'on' | 'off' = 'unchecked';
  /** Cosine of the trimmed and the 77-token embedding of the checked prompt (null: not checked). */
  textTrimCheck: number | null = null;

  private async runTextBatch(batch: TextBatch, padId: number): Promise<{ embeddings: Float32Array; dim: number; runMs: number }> {
    const send = async (b: Pick<TextBatch, 'ids' | 'attentionMask' | 'length'>, count: number) => {
      const res = unwrap(
        await this.client('text').request(
          { type: 'embedTexts', ids: b.ids, attentionMask: b.attentionMask, count, contextLength: b.length },
          [b.ids.buffer as ArrayBuffer, b.attentionMask.buffer as ArrayBuffer],
        ),
      );
      if (res.type !== 'embeddings') throw new Error('unexpected worker reply');
      return res;
    };
    if (batch.length >= CONTEXT_LENGTH || this.textTrimming === 'on') return send(batch, batch.rows.length);
    if (this.textTrimming === 'off') return send(padTextBatch(batch, CONTEXT_LENGTH, padId), batch.rows.length);
    // First trimmed batch: check the shortest row against its 77-token run (one extra row, once per model).
    const full = padTextBatch(batch, CONTEXT_LENGTH, padId);
    const first = { ids: full.ids.slice(0, CONTEXT_LENGTH), attentionMask: full.attentionMask.slice(0, CONTEXT_LENGTH), length: CONTEXT_LENGTH };
    let trimmed: Awaited<ReturnType<typeof send>> | null = null;
    try {
      trimmed = await send(batch, batch.rows.length);
    } catch {
      // A graph that declares a dynamic axis but cannot run shorter inputs: fall back to 77 tokens.
    }
    const reference = await send(first, 1);
    const cos = trimmed && trimmed.dim === reference.dim ? cosine(trimmed.embeddings.subarray(0, trimmed.dim), reference.embeddings) : -1;
    this.textTrimCheck = cos;
    this.textTrimming = cos >= TRIM_CHECK_MIN_COSINE[this.files.quantized ? 'int8' : 'float32'] ? 'on' : 'off';
    if (trimmed && this.textTrimming === 'on') return trimmed;
    return send(full, batch.rows.length);
  }

  /**
   * Releases one tower's ONNX session and worker thread now (the other stays); it is recreated on next use. A run
   * that has embedded its prompts frees the text tower's weights and arena (~400 MB for ViT-B/32) this way before
   * the judgement, instead of holding them until dispose().
   */
  async releaseTower(tower: 'vision' | 'text'): Promise<void> {
    const loading = tower === 'vision' ? this.loadingVision : this.loadingText;
    if (loading) await loading.catch(() => undefined);
    const w = this.workers[tower];
    this.workers[tower] = null;
    if (tower === 'vision') this.visionTower = null;
    else {
      this.textTower = null;
      // The tokenizer too (its vocabulary and 49,000 merges: ~25 MiB of heap); read again on the next prompt.
      this.tokenizerLoading = null;
    }
    if (!w) return;
    try {
      await w.request({ type: 'dispose' });
    } finally {
      await w.terminate();
    }
  }

  /** Releases the ONNX sessions and the worker threads. The model can be used again (sessions are recreated). */
  async dispose(): Promise<void> {
    const workers = [this.workers.vision, this.workers.text];
    this.workers = { vision: null, text: null };
    this.visionTower = this.textTower = null;
    await Promise.all(
      workers.map(async (w) => {
        if (!w) return;
        try {
          await w.request({ type: 'dispose' });
        } finally {
          await w.terminate();
        }
      }),
    );
  }
}
