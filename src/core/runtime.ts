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
import { ClipLensError } from './errors';
import { FILE_LIMITS, readRegularFile } from './fileSystem';
import type { SessionSettings, TowerDescription, WorkerRequest, WorkerResponse } from './inferenceProtocol';
import { resolveModelDir, readLogitScale, type ModelFiles } from './modelDir';
import { ClipTokenizer, CONTEXT_LENGTH } from './tokenizer';
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
    return new ClipModel(files, preprocessor, logitScale, imageFingerprint, textFingerprint, settings);
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

  /** Embeds texts (tokenised here); returns count x D, L2-normalised rows. */
  async embedTexts(texts: string[]): Promise<{ embeddings: Float32Array; dim: number; runMs: number }> {
    const [tokenizer] = await Promise.all([this.tokenizer(), this.ensureText()]);
    const enc = tokenizer.encodeBatch(texts);
    const res = unwrap(
      await this.client('text').request(
        { type: 'embedTexts', ids: enc.ids, attentionMask: enc.attentionMask, count: texts.length, contextLength: CONTEXT_LENGTH },
        [enc.ids.buffer as ArrayBuffer, enc.attentionMask.buffer as ArrayBuffer],
      ),
    );
    if (res.type !== 'embeddings') throw new Error('unexpected worker reply');
    this.measuredDim = res.dim;
    return { embeddings: normalizeRows(res.embeddings, res.dim), dim: res.dim, runMs: res.runMs };
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
