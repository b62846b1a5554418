/** Messages between the main thread (runtime.ts) and the inference worker (inferenceWorker.ts). */

export interface SessionSettings {
  /** ORT intra-op threads for each session. */
  threads: number;
  /** Execution providers in preference order, e.g. ['cpu'] or ['cuda', 'cpu']. */
  executionProviders: string[];
}

export interface TowerDescription {
  inputNames: string[];
  outputNames: string[];
  /** Embedding width D (from the output's static shape, or measured on the first run). */
  embeddingDim: number | null;
  /** Static [C,H,W] of pixel_values when the graph declares it. */
  imageShape?: [number, number, number] | null;
  /**
   * Text graphs: the sequence axis of input_ids, a fixed length (77 for CLIP) or 'dynamic' (a named or unnamed
   * symbolic dimension, optimum's `sequence_length`); null when the graph does not say (treated as fixed 77).
   */
  textLength?: number | 'dynamic' | null;
}

export type WorkerRequest =
  | { id: number; type: 'loadVision'; file: string; settings: SessionSettings }
  | { id: number; type: 'loadText'; file: string; settings: SessionSettings }
  | { id: number; type: 'embedImages'; pixels: Float32Array; count: number; shape: [number, number, number] }
  | { id: number; type: 'embedTexts'; ids: BigInt64Array; attentionMask: BigInt64Array; count: number; contextLength: number }
  | { id: number; type: 'dispose' };

export type WorkerResponse =
  | { id: number; ok: true; type: 'loaded'; tower: TowerDescription }
  | { id: number; ok: true; type: 'embeddings'; embeddings: Float32Array; dim: number; runMs: number }
  | { id: number; ok: true; type: 'disposed' }
  | { id: number; ok: false; error: { code: string; message: string; file?: string } };
