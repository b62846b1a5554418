/**
 * float32 matrix products on ONNX Runtime's CPU kernels (MLAS: SIMD, multi-threaded), for the large products of
 * the exact kNN, the linear probe's fused loss-and-gradient step (logisticStepModelBytes), and the zero-shot head
 * (MatMul, logit scale, Softmax) of large evaluations.
 * onnxruntime-node is already how CLIP runs; the graphs (symbolic shapes) are written here as ONNX protobuf bytes,
 * so there is no model file. Loaded on first use; null when it cannot load.
 */
import type * as Ort from 'onnxruntime-node';

/**
 * Intra-op threads of the shared sessions below (the `--threads` option, the `clipLens.threads` setting; undefined:
 * ONNX Runtime's default, one per physical core). Set by run.ts loadModel with the model's thread count; a session is
 * created again on its next use when the count changes.
 */
let onnxThreads: number | undefined;

/** Sets the intra-op thread count of the shared MatMul, zero-shot head and logistic-step sessions (undefined: default). */
export function setOnnxThreads(threads: number | undefined): void {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  onnxThreads = threads;
}

/** The thread count the shared sessions are created with (undefined: ONNX Runtime's default). */
export function sharedSessionThreads(): number | undefined {
  return onnxThreads;
}

/** The shared session of one kind, made again when the thread count changed since it was made. */
function sharedSession<T>(make: (threads: number | undefined) => Promise<T | null>): () => Promise<T | null> {
  let made: { threads: number | undefined; session: Promise<T | null> } | undefined;
  return () => {
    if (!made || made.threads !== onnxThreads) made = { threads: onnxThreads, session: make(onnxThreads).catch(() => null) };
    return made.session;
  };
}

/**
 * A shared session of one kind that is released (its memory arena freed) once the passes using it are over, and made
 * again on its next use: the zero-shot graphs' arenas hold a block's intermediate tensors (~100 MiB at 4,096 x 1,000),
 * which a session kept for the whole run would add to the peak of the phases after its pass.
 * Two evaluations may run at once (two models): a pass `hold`s the session, and it is released only when no pass
 * holds it and no run is in flight; a head object kept across a release makes a new session on its next run.
 */
function releasableSession<T extends { run(...args: never[]): Promise<unknown>; release(): Promise<void> }>(make: (threads: number | undefined) => Promise<T | null>): { get: () => Promise<T | null>; hold: () => () => Promise<void>; release: () => Promise<void> } {
  interface Made {
    threads: number | undefined;
    session: Promise<T | null>;
    inflight: number;
    releasing: boolean;
    released: boolean;
  }
  let made: Made | undefined;
  let holders = 0;
  const free = async (rec: Made) => {
    const head = await rec.session;
    if (rec.released || rec.inflight > 0) return;
    rec.released = true;
    await (head as T | null)?.release();
  };
  const get = (): Promise<T | null> => {
    if (made && made.threads === onnxThreads) return made.session;
    const rec: Made = { threads: onnxThreads, session: Promise.resolve(null), inflight: 0, releasing: false, released: false };
    rec.session = make(onnxThreads)
      .then((inner) => {
        if (!inner) return null;
        const wrapped = Object.create(inner) as T;
        (wrapped as unknown as { run: (...args: unknown[]) => Promise<unknown> }).run = async (...args: unknown[]) => {
          // Released meanwhile: a new session for this run.
          if (rec.released) return ((await get()) as unknown as { run: (...a: unknown[]) => Promise<unknown> }).run(...args);
          rec.inflight++;
          try {
            return await (inner.run as (...a: unknown[]) => Promise<unknown>).apply(inner, args);
          } finally {
            rec.inflight--;
            if (rec.releasing && rec.inflight === 0) await free(rec);
          }
        };
        return wrapped;
      })
      .catch(() => null);
    made = rec;
    return rec.session;
  };
  const release = async (): Promise<void> => {
    if (holders > 0 || !made) return;
    const rec = made;
    made = undefined;
    rec.releasing = true;
    await free(rec);
  };
  return {
    get,
    hold: () => {
      holders++;
      let held = true;
      return async () => {
        if (!held) return;
        held = false;
        holders--;
        await release();
      };
    },
    release,
  };
}

/** Session options: the CPU provider and the shared thread count, then `extra`. */
function sessionOptions(threads: number | undefined, extra: Ort.InferenceSession.SessionOptions = {}): Ort.InferenceSession.SessionOptions {
  return { executionProviders: ['cpu'], ...(threads !== undefined ? { intraOpNumThreads: threads } : {}), ...extra };
}

/** Protobuf writer: just what a ModelProto with one MatMul node needs. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const key = (field: number, wire: number) => varint(field * 8 + wire);
const int = (field: number, v: number) => [...key(field, 0), ...varint(v)];
const bytes = (field: number, b: number[]) => [...key(field, 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);

/** ValueInfoProto of a float tensor with symbolic dims. */
function valueInfo(name: string, dims: string[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, str(2, d)));
  const tensor = [...int(1, 1 /* FLOAT */), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensor))];
}

/** AttributeProto of one int (type INT) or a list of ints (type INTS). */
function attr(name: string, v: number | number[]): number[] {
  return Array.isArray(v) ? [...str(1, name), ...v.flatMap((x) => int(8, x)), ...int(20, 7)] : [...str(1, name), ...int(3, v), ...int(20, 2)];
}

/** NodeProto: inputs, outputs, op type, attributes. */
function nodeProto(inputs: string[], outputs: string[], op: string, attrs: number[][] = []): number[] {
  return [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(3, `${op}_${outputs[0]}`), ...str(4, op), ...attrs.flatMap((a) => bytes(5, a))];
}

/**
 * ONNX model bytes of one evaluation of the multinomial logistic loss (opset 11), everything a step of L-BFGS needs
 * from the data in one session run:
 *   Z = X W^T + b;  L = LogSoftmax(Z);  R = exp(L) - Y
 *   rowLoss = -sum_j L * Y (per row);  gradW = R^T X;  gradB = sum_i R
 * X [M, D], W [K, D], b [K], Y one-hot [M, K]; the penalty is added by the caller.
 */
export function logisticStepModelBytes(): Uint8Array {
  const nodes = [
    nodeProto(['X', 'W', 'b'], ['Z'], 'Gemm', [attr('transB', 1)]),
    nodeProto(['Z'], ['L'], 'LogSoftmax', [attr('axis', 1)]),
    nodeProto(['L'], ['P'], 'Exp'),
    nodeProto(['P', 'Y'], ['R'], 'Sub'),
    nodeProto(['L', 'Y'], ['LY'], 'Mul'),
    nodeProto(['LY'], ['negRowLoss'], 'ReduceSum', [attr('axes', [1]), attr('keepdims', 0)]),
    nodeProto(['negRowLoss'], ['rowLoss'], 'Neg'),
    nodeProto(['R', 'X'], ['gradW'], 'Gemm', [attr('transA', 1)]),
    nodeProto(['R'], ['gradB'], 'ReduceSum', [attr('axes', [0]), attr('keepdims', 0)]),
  ];
  const graph = [
    ...nodes.flatMap((n) => bytes(1, n)),
    ...str(2, 'clip-lens-logistic-step'),
    ...bytes(11, valueInfo('X', ['M', 'D'])),
    ...bytes(11, valueInfo('W', ['K', 'D'])),
    ...bytes(11, valueInfo('b', ['K'])),
    ...bytes(11, valueInfo('Y', ['M', 'K'])),
    ...bytes(12, valueInfo('rowLoss', ['M'])),
    ...bytes(12, valueInfo('gradW', ['K', 'D'])),
    ...bytes(12, valueInfo('gradB', ['K'])),
  ];
  const opset = [...str(1, ''), ...int(2, 11)];
  return Uint8Array.from([...int(1, 6 /* ir_version */), ...str(2, 'clip-lens'), ...bytes(7, graph), ...bytes(8, opset)]);
}

export interface LogisticStep {
  /**
   * One loss-and-gradient evaluation on x (m x d), weights w (k x d), intercepts b (k) and one-hot labels y (m x k),
   * all float32 row-major: per-row cross-entropy (m), weight gradient (k x d) and intercept gradient (k).
   */
  run(x: Float32Array, m: number, d: number, w: Float32Array, b: Float32Array, y: Float32Array, k: number): Promise<{ rowLoss: Float32Array; gradW: Float32Array; gradB: Float32Array }>;
}

/** The shared logistic-step session, or null when onnxruntime-node cannot be loaded here. */
export const onnxLogisticStep: () => Promise<LogisticStep | null> = sharedSession(async (threads) => {
  let ort: typeof Ort;
  try {
    ort = require('onnxruntime-node') as typeof Ort;
  } catch {
    return null;
  }
  const session = await ort.InferenceSession.create(logisticStepModelBytes(), sessionOptions(threads, { graphOptimizationLevel: 'all' }));
  const step: LogisticStep = {
    async run(x, m, d, w, b, y, k) {
      const out = await session.run({
        X: new ort.Tensor('float32', x, [m, d]),
        W: new ort.Tensor('float32', w, [k, d]),
        b: new ort.Tensor('float32', b, [k]),
        Y: new ort.Tensor('float32', y, [m, k]),
      });
      return { rowLoss: out.rowLoss.data as Float32Array, gradW: out.gradW.data as Float32Array, gradB: out.gradB.data as Float32Array };
    },
  };
  return step;
});

/**
 * ONNX model bytes of the zero-shot head: P[M, N] = Softmax(S * MatMul(A[M, K], B[K, N])) over N (opset 13's
 * Softmax works on the last axis), S of shape [1] (the logit scale).
 */
export function zeroShotModelBytes(half = false): Uint8Array {
  return modelOf(
    'clip-lens-zero-shot',
    zeroShotHeadNodes(half),
    [...imageRowInputs(half), typedValueInfo('B', ['D', 'N'], 1), typedValueInfo('S', [1], 1)],
    [typedValueInfo('P', ['M', 'N'], 1)],
  );
}

/**
 * The zero-shot head's nodes, P = Softmax(S * MatMul(A, B)): one definition for the head and the graphs that reduce
 * its rows inside ONNX Runtime, so that they all give the same probabilities bit for bit.
 */
function zeroShotHeadNodes(half: boolean): number[][] {
  const rows = half ? [nodeProto(['A16'], ['AF'], 'Cast', [attr('to', 1)]), nodeProto(['AF', 'SC'], ['A'], 'Mul')] : [];
  return [...rows, nodeProto(['A', 'B'], ['L0'], 'MatMul'), nodeProto(['L0', 'S'], ['Z'], 'Mul'), nodeProto(['Z'], ['P'], 'Softmax')];
}

/**
 * A block of image rows as float16 patterns and a float32 scale per row: row r is Cast(bits[r]) * scales[r] (float32
 * products), EmbeddingRows.copyHalfRows. Half the bytes of float32 rows, and no decoding in JavaScript: the zero-shot
 * graphs take them as A16[M, D] (float16) and SC[M, 1] and make A = Cast(A16) * SC first (the same float32 rows).
 */
export interface HalfBlock {
  bits: Uint16Array;
  scales: Float32Array;
}

/** Image rows of a zero-shot graph: float32 rows, or float16 rows with their scales. */
export type ImageRows = Float32Array | HalfBlock;

/** The graph inputs of the image rows: A[M, D] (float32), or A16[M, D] (float16) and SC[M, 1]. */
function imageRowInputs(half: boolean): number[][] {
  return half ? [typedValueInfo('A16', ['M', 'D'], 10), typedValueInfo('SC', ['M', 1], 1)] : [typedValueInfo('A', ['M', 'D'], 1)];
}

/** The feeds of m image rows of width k (see {@link imageRowInputs}). */
function imageRowFeeds(ort: typeof Ort, a: ImageRows, m: number, k: number): Record<string, Ort.Tensor> {
  if (a instanceof Float32Array) return { A: new ort.Tensor('float32', a, [m, k]) };
  return { A16: new ort.Tensor('float16', a.bits.subarray(0, m * k), [m, k]), SC: new ort.Tensor('float32', a.scales.subarray(0, m), [m, 1]) };
}

/**
 * The sessions of one zero-shot graph for both forms of image rows (`bytes(half)`): the float32 one made now, the
 * float16 one on its first use; released together.
 */
async function imageRowSessions(ort: typeof Ort, bytes: (half: boolean) => Uint8Array, options: Ort.InferenceSession.SessionOptions): Promise<{ of: (a: ImageRows) => Promise<Ort.InferenceSession>; release: () => Promise<void> }> {
  const float = await ort.InferenceSession.create(bytes(false), options);
  let half: Promise<Ort.InferenceSession> | undefined;
  return {
    of: (a) => (a instanceof Float32Array ? Promise.resolve(float) : (half ??= ort.InferenceSession.create(bytes(true), options))),
    release: async () => {
      await float.release();
      if (half) await (await half).release();
    },
  };
}

/**
 * ONNX model bytes of the zero-shot head's row summary (opset 13): the probabilities P = Softmax(S * MatMul(A, B)) of
 * {@link zeroShotModelBytes} (the same nodes, so the same values bit for bit), reduced per row to what a first pass
 * over a large evaluation keeps, so that the M x N matrix never leaves ONNX Runtime:
 *   V[M, T], I[M, T] = TopK(P, T[1]) (largest first; equal values: the lower column first), I as int32, so that
 *   I[m, 0] is the argmax (the first maximum; an ArgMax node cost 2.3 of the block's 31 ms);
 *   SELF[M, 1] = P[m, L[m]] (L[M, 1] int64 labels);
 *   RANK[M] = #{j < L: P[m, j] > SELF} + #{j > L: P[m, j] >= SELF} (metrics.ts' per-row rank of the label),
 * with J[1, N] = 0 .. N-1 (int64) and AX = [1] (ReduceSum's axes).
 */
export function zeroShotSummaryModelBytes(half = false): Uint8Array {
  return modelOf(
    'clip-lens-zero-shot-summary',
    [
      ...zeroShotHeadNodes(half),
      nodeProto(['P', 'T'], ['V', 'I64'], 'TopK', [attr('axis', 1)]),
      nodeProto(['I64'], ['I'], 'Cast', [attr('to', 6)]),
      nodeProto(['P', 'L'], ['SELF'], 'GatherElements', [attr('axis', 1)]),
      nodeProto(['P', 'SELF'], ['GT'], 'Greater'),
      nodeProto(['P', 'SELF'], ['EQ'], 'Equal'),
      nodeProto(['J', 'L'], ['AFTER'], 'Greater'),
      nodeProto(['EQ', 'AFTER'], ['TIE'], 'And'),
      nodeProto(['GT', 'TIE'], ['AHEAD'], 'Or'),
      nodeProto(['AHEAD'], ['AHEADF'], 'Cast', [attr('to', 1)]),
      nodeProto(['AHEADF', 'AX'], ['RANK'], 'ReduceSum', [attr('keepdims', 0)]),
    ],
    [
      ...imageRowInputs(half),
      typedValueInfo('B', ['D', 'N'], 1),
      typedValueInfo('S', [1], 1),
      typedValueInfo('T', [1], 7),
      typedValueInfo('L', ['M', 1], 7),
      typedValueInfo('J', [1, 'N'], 7),
      typedValueInfo('AX', [1], 7),
    ],
    [typedValueInfo('V', ['M', 'K'], 1), typedValueInfo('I', ['M', 'K'], 6), typedValueInfo('SELF', ['M', 1], 1), typedValueInfo('RANK', ['M'], 1)],
  );
}

/** Per row of a block: what {@link zeroShotSummaryModelBytes} gives. */
export interface ZeroShotSummary {
  /** m x t: the t largest probabilities of each row, largest first, and their classes. */
  topScores: Float32Array;
  topClasses: Int32Array;
  t: number;
  argmax: Int32Array;
  /** The probability of each row's label. */
  self: Float32Array;
  /** How many classes rank ahead of the label (metrics.ts' per-row pass). */
  rank: Float32Array;
}

export interface ZeroShotSummaryHead {
  /** a (m x k) image rows, b (k x n) the class embeddings transposed, labels (m, each in 0 .. n-1), t <= n. */
  run(a: ImageRows, m: number, k: number, b: Float32Array, n: number, scale: number, labels: BigInt64Array, t: number): Promise<ZeroShotSummary>;
  release(): Promise<void>;
}

const summarySessions = releasableSession<ZeroShotSummaryHead>(async (threads) => {
  const ort = loadOrt();
  if (!ort) return null;
  const sessions = await imageRowSessions(ort, zeroShotSummaryModelBytes, sessionOptions(threads, { extra: { session: { intra_op: { allow_spinning: '0' } } } }));
  const columns = new Map<number, Ort.Tensor>();
  const axis = new ort.Tensor('int64', BigInt64Array.of(1n), [1]);
  const head: ZeroShotSummaryHead = {
    release: sessions.release,
    async run(a, m, k, b, n, scale, labels, t) {
      let j = columns.get(n);
      if (!j) columns.set(n, (j = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, c) => BigInt(c)), [1, n])));
      const out = await (await sessions.of(a)).run({
        ...imageRowFeeds(ort, a, m, k),
        B: new ort.Tensor('float32', b, [k, n]),
        S: new ort.Tensor('float32', Float32Array.of(scale), [1]),
        T: new ort.Tensor('int64', BigInt64Array.of(BigInt(t)), [1]),
        L: new ort.Tensor('int64', labels, [m, 1]),
        J: j,
        AX: axis,
      });
      const topClasses = out.I.data as Int32Array;
      // The argmax (the first maximum) is each row's first top class: TopK breaks ties by the lower index (ONNX).
      const argmax = new Int32Array(m);
      for (let r = 0; r < m; r++) argmax[r] = topClasses[r * t] as number;
      return { topScores: out.V.data as Float32Array, topClasses, t, argmax, self: out.SELF.data as Float32Array, rank: out.RANK.data as Float32Array };
    },
  };
  return head;
});

/** The zero-shot summary session (options as the zero-shot head's; see {@link releasableSession}), or null without ONNX Runtime. */
export const onnxZeroShotSummary = summarySessions.get;
/** Releases the zero-shot summary session and its memory once no pass holds it (the next use makes it again). */
export const releaseZeroShotSummary = summarySessions.release;
/** A pass holds the summary session until the returned function is called (which releases it when none holds it). */
export const holdZeroShotSummary = summarySessions.hold;

/**
 * ONNX model bytes of the zero-shot head with cleanlab's per-row confident count (opset 13): the probabilities
 * P = Softmax(S * MatMul(A, B)) of {@link zeroShotModelBytes} (the same nodes, so the same values bit for bit), and
 * per row, with CUT[1, N] each class's confidence cut (a class is confident when P >= its cut) and W[N, 2] = columns
 * (1, j):  CW[M, 2] = MatMul(Cast(P >= CUT), W) = (how many classes are confident, the sum of their indices): the
 * one confident class when there is exactly one (integer sums below 2^24: exact in float32 in any order).
 */
export function zeroShotScanModelBytes(half = false): Uint8Array {
  return modelOf(
    'clip-lens-zero-shot-scan',
    [
      ...zeroShotHeadNodes(half),
      nodeProto(['P', 'CUT'], ['CONF'], 'GreaterOrEqual'),
      nodeProto(['CONF'], ['CONFF'], 'Cast', [attr('to', 1)]),
      nodeProto(['CONFF', 'W'], ['CW'], 'MatMul'),
    ],
    [...imageRowInputs(half), typedValueInfo('B', ['D', 'N'], 1), typedValueInfo('S', [1], 1), typedValueInfo('CUT', [1, 'N'], 1), typedValueInfo('W', ['N', 2], 1)],
    [typedValueInfo('P', ['M', 'N'], 1), typedValueInfo('CW', ['M', 2], 1)],
  );
}

/** Per row of a block: what {@link zeroShotScanModelBytes} gives. */
export interface ZeroShotScan {
  /** m x n probabilities (null when not asked for). */
  probs: Float32Array | null;
  /** m x 2: per row, how many classes are confident and the sum of their indices. */
  confident: Float32Array;
}

export interface ZeroShotScanHead {
  /** a (m x k) image rows, b (k x n) the class embeddings transposed, cut (n) per class; `probs`: also return P. */
  run(a: ImageRows, m: number, k: number, b: Float32Array, n: number, scale: number, cut: Float32Array, probs: boolean): Promise<ZeroShotScan>;
  release(): Promise<void>;
}

const scanSessions = releasableSession(makeZeroShotScan);

/** The zero-shot scan session (options as the zero-shot head's; see {@link releasableSession}), or null without ONNX Runtime. */
export const onnxZeroShotScan = scanSessions.get;
/** Releases the zero-shot scan session and its memory once no pass holds it (the next use makes it again). */
export const releaseZeroShotScan = scanSessions.release;
/** A pass holds the scan session until the returned function is called (which releases it when none holds it). */
export const holdZeroShotScan = scanSessions.hold;

async function makeZeroShotScan(threads: number | undefined): Promise<ZeroShotScanHead | null> {
  const ort = loadOrt();
  if (!ort) return null;
  const sessions = await imageRowSessions(ort, zeroShotScanModelBytes, sessionOptions(threads, { extra: { session: { intra_op: { allow_spinning: '0' } } } }));
  const columns = new Map<number, Ort.Tensor>();
  const head: ZeroShotScanHead = {
    release: sessions.release,
    async run(a, m, k, b, n, scale, cut, probs) {
      let w = columns.get(n);
      if (!w) {
        const data = new Float32Array(2 * n);
        for (let c = 0; c < n; c++) {
          data[2 * c] = 1;
          data[2 * c + 1] = c;
        }
        columns.set(n, (w = new ort.Tensor('float32', data, [n, 2])));
      }
      const feeds = {
        ...imageRowFeeds(ort, a, m, k),
        B: new ort.Tensor('float32', b, [k, n]),
        S: new ort.Tensor('float32', Float32Array.of(scale), [1]),
        CUT: new ort.Tensor('float32', cut, [1, n]),
        W: w,
      };
      const out = await (await sessions.of(a)).run(feeds, probs ? ['P', 'CW'] : ['CW']);
      return { probs: probs ? (out.P as Ort.Tensor).data as Float32Array : null, confident: (out.CW as Ort.Tensor).data as Float32Array };
    },
  };
  return head;
}

/** ONNX model bytes: C[M, N] = MatMul(A[M, K], B[K, N]). */
export function matMulModelBytes(): Uint8Array {
  const node = [...str(1, 'A'), ...str(1, 'B'), ...str(2, 'C'), ...str(3, 'matmul'), ...str(4, 'MatMul')];
  const graph = [...bytes(1, node), ...str(2, 'clip-lens-matmul'), ...bytes(11, valueInfo('A', ['M', 'K'])), ...bytes(11, valueInfo('B', ['K', 'N'])), ...bytes(12, valueInfo('C', ['M', 'N']))];
  const opset = [...str(1, ''), ...int(2, 13)];
  const model = [...int(1, 7 /* ir_version */), ...str(2, 'clip-lens'), ...bytes(7, graph), ...bytes(8, opset)];
  return Uint8Array.from(model);
}

export interface MatMul {
  /** a (m x k) times b (k x n), row-major float32. */
  run(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Promise<Float32Array>;
}


export interface ZeroShotHead {
  /**
   * softmax(scale * a . b) row by row: a (m x k) image embeddings, b (k x n) the class embeddings transposed;
   * returns m x n probabilities, row-major float32.
   */
  run(a: ImageRows, m: number, k: number, b: Float32Array, n: number, scale: number): Promise<Float32Array>;
  release(): Promise<void>;
}

function loadOrt(): typeof Ort | null {
  try {
    return require('onnxruntime-node') as typeof Ort;
  } catch {
    return null;
  }
}

/** The shared zero-shot head session (MatMul, scale, Softmax on ONNX Runtime's CPU kernels), or null without ORT. */
const headSessions = releasableSession<ZeroShotHead>(async (threads) => {
  const ort = loadOrt();
  if (!ort) return null;
  const sessions = await imageRowSessions(ort, zeroShotModelBytes, sessionOptions(threads, { extra: { session: { intra_op: { allow_spinning: '0' } } } }));
  const head: ZeroShotHead = {
    release: sessions.release,
    async run(a, m, k, b, n, scale) {
      const out = await (await sessions.of(a)).run({ ...imageRowFeeds(ort, a, m, k), B: new ort.Tensor('float32', b, [k, n]), S: new ort.Tensor('float32', Float32Array.of(scale), [1]) });
      return out.P.data as Float32Array;
    },
  };
  return head;
});
export const onnxZeroShot = headSessions.get;
/** Releases the zero-shot head's session and its memory once no pass holds it (the next use makes it again). */
export const releaseZeroShotHead = headSessions.release;
/** A pass holds the head's session until the returned function is called (which releases it when none holds it). */
export const holdZeroShotHead = headSessions.hold;

/** ValueInfoProto of a tensor of element type `type` (1 FLOAT, 6 INT32, 7 INT64) and symbolic or fixed dims. */
function typedValueInfo(name: string, dims: (string | number)[], type: number): number[] {
  const shape = dims.flatMap((d) => bytes(1, typeof d === 'string' ? str(2, d) : int(1, d)));
  const tensor = [...int(1, type), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensor))];
}

function modelOf(graphName: string, nodes: number[][], inputs: number[][], outputs: number[][]): Uint8Array {
  const graph = [...nodes.flatMap((n) => bytes(1, n)), ...str(2, graphName), ...inputs.flatMap((i) => bytes(11, i)), ...outputs.flatMap((o) => bytes(12, o))];
  const opset = [...str(1, ''), ...int(2, 13)];
  return Uint8Array.from([...int(1, 7 /* ir_version */), ...str(2, 'clip-lens'), ...bytes(7, graph), ...bytes(8, opset)]);
}

/**
 * ONNX model bytes of the kNN index's projection (opset 13): for raw rows A[M, D] (any norm) and a basis R[D, W],
 * Y[M, W] = normalise(A R) (rows of norm 1; a zero row stays zero: the norm is at least E[1]) and SS[M] = the squared
 * norm of each row of A (for the full-width inverse norms of re-scoring).
 */
export function projectionModelBytes(): Uint8Array {
  return modelOf(
    'clip-lens-projection',
    [
      nodeProto(['A', 'R'], ['Y0'], 'MatMul'),
      nodeProto(['Y0'], ['YS'], 'ReduceSumSquare', [attr('axes', [1]), attr('keepdims', 1)]),
      nodeProto(['YS'], ['YN'], 'Sqrt'),
      nodeProto(['YN', 'E'], ['YD'], 'Max'),
      nodeProto(['Y0', 'YD'], ['Y'], 'Div'),
      nodeProto(['A'], ['SS'], 'ReduceSumSquare', [attr('axes', [1]), attr('keepdims', 0)]),
    ],
    [typedValueInfo('A', ['M', 'D'], 1), typedValueInfo('R', ['D', 'W'], 1), typedValueInfo('E', [1], 1)],
    [typedValueInfo('Y', ['M', 'W'], 1), typedValueInfo('SS', ['M'], 1)],
  );
}

/**
 * ONNX model bytes of a blocked top-k by inner product (opset 13): S = A[M, W] B[N, W]^T, then TopK(S, K[1]) along
 * each row (largest first; equal values: the lower column first), V[M, T] the scores and I[M, T] their columns as
 * int32 (no BigInt per result in JavaScript).
 */
export function topKModelBytes(): Uint8Array {
  return modelOf(
    'clip-lens-topk',
    [nodeProto(['A', 'B'], ['S'], 'Gemm', [attr('transB', 1)]), nodeProto(['S', 'K'], ['V', 'I64'], 'TopK', [attr('axis', 1)]), nodeProto(['I64'], ['I'], 'Cast', [attr('to', 6)])],
    [typedValueInfo('A', ['M', 'W'], 1), typedValueInfo('B', ['N', 'W'], 1), typedValueInfo('K', [1], 7)],
    [typedValueInfo('V', ['M', 'T'], 1), typedValueInfo('I', ['M', 'T'], 6)],
  );
}

export interface Projection {
  /** rows: m x d raw rows; basis: d x w. Returns the normalised projected rows (m x w) and the rows' squared norms. */
  run(rows: Float32Array, m: number, d: number, basis: Float32Array, w: number): Promise<{ projected: Float32Array; squaredNorms: Float32Array }>;
}

export interface TopK {
  /** For each row of a (m x w): the t best rows of b (n x w) by inner product, best first (scores, row indices). */
  run(a: Float32Array, m: number, w: number, b: Float32Array, n: number, t: number): Promise<{ scores: Float32Array; indices: Int32Array }>;
}

let sharedProjection: Promise<Projection | null> | undefined;
let sharedTopK: Promise<TopK | null> | undefined;

const noSpin = { executionProviders: ['cpu'], extra: { session: { intra_op: { allow_spinning: '0' } } } };

/** The shared projection session (MatMul + row normalisation + squared norms), or null without ONNX Runtime. */
export function onnxProjection(): Promise<Projection | null> {
  return (sharedProjection ??= (async () => {
    const ort = loadOrt();
    if (!ort) return null;
    const session = await ort.InferenceSession.create(projectionModelBytes(), noSpin);
    const eps = new ort.Tensor('float32', Float32Array.of(1e-30), [1]);
    const p: Projection = {
      async run(rows, m, d, basis, w) {
        const out = await session.run({ A: new ort.Tensor('float32', rows, [m, d]), R: new ort.Tensor('float32', basis, [d, w]), E: eps });
        return { projected: out.Y.data as Float32Array, squaredNorms: out.SS.data as Float32Array };
      },
    };
    return p;
  })().catch(() => null));
}

/** The shared top-k session (Gemm + TopK), or null without ONNX Runtime. */
export function onnxTopK(): Promise<TopK | null> {
  return (sharedTopK ??= (async () => {
    const ort = loadOrt();
    if (!ort) return null;
    const session = await ort.InferenceSession.create(topKModelBytes(), noSpin);
    const t: TopK = {
      async run(a, m, w, b, n, k) {
        const out = await session.run({ A: new ort.Tensor('float32', a, [m, w]), B: new ort.Tensor('float32', b, [n, w]), K: new ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]) });
        return { scores: out.V.data as Float32Array, indices: out.I.data as Int32Array };
      },
    };
    return t;
  })().catch(() => null));
}

/** The shared MatMul session, or null when onnxruntime-node cannot be loaded here. */
export const onnxMatMul: () => Promise<MatMul | null> = sharedSession(async (threads) => {
  const ort = loadOrt();
  if (!ort) return null;
  // No spinning: between two products JavaScript runs (softmax, L-BFGS), and spinning threads would take its core.
  const session = await ort.InferenceSession.create(matMulModelBytes(), sessionOptions(threads, { extra: { session: { intra_op: { allow_spinning: '0' } } } }));
  const matMul: MatMul = {
    async run(a, m, k, b, n) {
      const out = await session.run({ A: new ort.Tensor('float32', a, [m, k]), B: new ort.Tensor('float32', b, [k, n]) });
      return out.C.data as Float32Array;
    },
  };
  return matMul;
});
