/**
 * Worker thread that owns the onnxruntime sessions. onnxruntime-node's `session.run` is synchronous on the
 * calling thread, so running it here keeps the caller's event loop (the VS Code extension host, the CLI's
 * progress bar, the image decoder feeding the next batch) free while a batch is inferred.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { SessionSettings, TowerDescription, WorkerRequest, WorkerResponse } from './inferenceProtocol';

interface Tower {
  session: ort.InferenceSession;
  file: string;
  description: TowerDescription;
}

let vision: Tower | null = null;
let text: Tower | null = null;

class TowerError extends Error {
  constructor(readonly code: string, message: string, readonly file?: string) {
    super(message);
  }
}

function sessionOptions(settings: SessionSettings): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: settings.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    executionProviders: settings.executionProviders,
    logSeverityLevel: 3,
  };
}

function staticDim(meta: ort.InferenceSession.ValueMetadata | undefined, axis: number): number | null {
  if (!meta || !meta.isTensor) return null;
  const d = meta.shape[axis];
  return typeof d === 'number' && d > 0 ? d : null;
}

/** input_ids' axis 1: a fixed length, 'dynamic' (symbolic: a name, or a non-positive number), or null (unknown). */
function sequenceAxis(meta: ort.InferenceSession.ValueMetadata | undefined): number | 'dynamic' | null {
  if (!meta || !meta.isTensor || meta.shape.length !== 2) return null;
  const d = meta.shape[1];
  return typeof d === 'number' && d > 0 ? d : 'dynamic';
}

async function loadTower(file: string, settings: SessionSettings, kind: 'vision' | 'text'): Promise<Tower> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, sessionOptions(settings));
  } catch (e) {
    throw new TowerError('model-unloadable', `cannot load the ONNX graph: ${(e as Error).message}`, file);
  }
  const inputs = session.inputNames;
  const outputs = session.outputNames;
  const need = kind === 'vision' ? 'pixel_values' : 'input_ids';
  const out = kind === 'vision' ? 'image_embeds' : 'text_embeds';
  if (!inputs.includes(need)) {
    await session.release();
    throw new TowerError('model-bad-graph', `expected an input named '${need}', the graph has: ${inputs.join(', ') || '(none)'}`, file);
  }
  if (!outputs.includes(out)) {
    await session.release();
    throw new TowerError('model-bad-graph', `expected an output named '${out}', the graph has: ${outputs.join(', ') || '(none)'}`, file);
  }
  const allowed = kind === 'vision' ? ['pixel_values'] : ['input_ids', 'attention_mask', 'position_ids'];
  const extra = inputs.filter((n) => !allowed.includes(n));
  if (extra.length > 0) {
    await session.release();
    throw new TowerError('model-bad-graph', `unsupported input(s) ${extra.join(', ')}; expected ${allowed.join(' and optionally ')}`, file);
  }
  const outMeta = session.outputMetadata[outputs.indexOf(out)];
  const inMeta = session.inputMetadata[inputs.indexOf(need)];
  const description: TowerDescription = { inputNames: [...inputs], outputNames: [...outputs], embeddingDim: staticDim(outMeta, 1) };
  if (kind === 'vision') {
    const c = staticDim(inMeta, 1), h = staticDim(inMeta, 2), w = staticDim(inMeta, 3);
    description.imageShape = c && h && w ? [c, h, w] : null;
  } else {
    description.textLength = sequenceAxis(inMeta);
  }
  return { session, file, description };
}

async function run(tower: Tower, feeds: Record<string, ort.Tensor>, outputName: string, count: number) {
  const t0 = performance.now();
  const result = await tower.session.run(feeds);
  const runMs = performance.now() - t0;
  const tensor = result[outputName];
  const data = tensor.data as Float32Array;
  if (tensor.dims.length !== 2 || tensor.dims[0] !== count) {
    throw new TowerError('model-bad-output', `output '${outputName}' has shape [${tensor.dims.join(',')}], expected [${count}, D]`, tower.file);
  }
  // Copy out of ORT's buffer so the result can be transferred to the main thread.
  const embeddings = new Float32Array(data.length);
  embeddings.set(data);
  for (const t of Object.values(result)) t.dispose?.();
  return { embeddings, dim: tensor.dims[1] as number, runMs };
}

async function handle(req: WorkerRequest): Promise<WorkerResponse> {
  switch (req.type) {
    case 'loadVision':
      if (vision) await vision.session.release();
      vision = null;
      vision = await loadTower(req.file, req.settings, 'vision');
      return { id: req.id, ok: true, type: 'loaded', tower: vision.description };
    case 'loadText':
      if (text) await text.session.release();
      text = null;
      text = await loadTower(req.file, req.settings, 'text');
      return { id: req.id, ok: true, type: 'loaded', tower: text.description };
    case 'embedImages': {
      if (!vision) throw new TowerError('internal', 'vision model not loaded');
      const [c, h, w] = req.shape;
      const pixels = new ort.Tensor('float32', req.pixels, [req.count, c, h, w]);
      const r = await run(vision, { pixel_values: pixels }, 'image_embeds', req.count);
      return { id: req.id, ok: true, type: 'embeddings', ...r };
    }
    case 'embedTexts': {
      if (!text) throw new TowerError('internal', 'text model not loaded');
      const dims = [req.count, req.contextLength];
      const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', req.ids, dims) };
      const names = text.description.inputNames;
      if (names.includes('attention_mask')) feeds.attention_mask = new ort.Tensor('int64', req.attentionMask, dims);
      if (names.includes('position_ids')) {
        const pos = new BigInt64Array(req.count * req.contextLength);
        for (let i = 0; i < pos.length; i++) pos[i] = BigInt(i % req.contextLength);
        feeds.position_ids = new ort.Tensor('int64', pos, dims);
      }
      const r = await run(text, feeds, 'text_embeds', req.count);
      return { id: req.id, ok: true, type: 'embeddings', ...r };
    }
    case 'dispose':
      if (vision) await vision.session.release();
      if (text) await text.session.release();
      vision = text = null;
      return { id: req.id, ok: true, type: 'disposed' };
  }
}

const port = parentPort;
if (!port) throw new Error('inferenceWorker must run in a worker thread');
// Requests are handled strictly one at a time, in order: sessions are not re-entrant.
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: WorkerRequest) => {
  queue = queue.then(async () => {
    let res: WorkerResponse;
    try {
      res = await handle(req);
    } catch (e) {
      const err = e as TowerError;
      res = { id: req.id, ok: false, error: { code: err.code ?? 'inference-failed', message: err.message, file: err.file } };
    }
    const transfer = res.ok && res.type === 'embeddings' ? [res.embeddings.buffer as ArrayBuffer] : [];
    port.postMessage(res, transfer);
  });
});
