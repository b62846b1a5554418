/**
 * float32 matrix products on ONNX Runtime's CPU kernels (MLAS: SIMD, multi-threaded), for the large products of
 * the linear probe and the exact kNN, and the zero-shot head (MatMul, logit scale, Softmax) of large evaluations.
 * onnxruntime-node is already how CLIP runs; the graphs (symbolic shapes) are written here as ONNX protobuf bytes,
 * so there is no model file. Loaded on first use; null when it cannot load.
 */
import type * as Ort from 'onnxruntime-node';

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

/** A float tensor ValueInfoProto of fixed dims (a scalar-like [1]). */
function fixedValueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, int(1, d)));
  const tensor = [...int(1, 1 /* FLOAT */), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensor))];
}

/** NodeProto bytes. */
function node(inputs: string[], output: string, name: string, op: string): number[] {
  return [...inputs.flatMap((i) => str(1, i)), ...str(2, output), ...str(3, name), ...str(4, op)];
}

/**
 * ONNX model bytes of the zero-shot head: P[M, N] = Softmax(S * MatMul(A[M, K], B[K, N])) over N (opset 13's
 * Softmax works on the last axis), S of shape [1] (the logit scale).
 */
export function zeroShotModelBytes(): Uint8Array {
  const nodes = [node(['A', 'B'], 'L', 'matmul', 'MatMul'), node(['L', 'S'], 'Z', 'scale', 'Mul'), node(['Z'], 'P', 'softmax', 'Softmax')];
  const graph = [
    ...nodes.flatMap((n) => bytes(1, n)),
    ...str(2, 'clip-lens-zero-shot'),
    ...bytes(11, valueInfo('A', ['M', 'K'])),
    ...bytes(11, valueInfo('B', ['K', 'N'])),
    ...bytes(11, fixedValueInfo('S', [1])),
    ...bytes(12, valueInfo('P', ['M', 'N'])),
  ];
  const opset = [...str(1, ''), ...int(2, 13)];
  const model = [...int(1, 7 /* ir_version */), ...str(2, 'clip-lens'), ...bytes(7, graph), ...bytes(8, opset)];
  return Uint8Array.from(model);
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

let shared: Promise<MatMul | null> | undefined;
let sharedZeroShot: Promise<ZeroShotHead | null> | undefined;

export interface ZeroShotHead {
  /**
   * softmax(scale * a . b) row by row: a (m x k) image embeddings, b (k x n) the class embeddings transposed;
   * returns m x n probabilities, row-major float32.
   */
  run(a: Float32Array, m: number, k: number, b: Float32Array, n: number, scale: number): Promise<Float32Array>;
}

function loadOrt(): typeof Ort | null {
  try {
    return require('onnxruntime-node') as typeof Ort;
  } catch {
    return null;
  }
}

/** The shared zero-shot head session (MatMul, scale, Softmax on ONNX Runtime's CPU kernels), or null without ORT. */
export function onnxZeroShot(): Promise<ZeroShotHead | null> {
  return (sharedZeroShot ??= (async () => {
    const ort = loadOrt();
    if (!ort) return null;
    const session = await ort.InferenceSession.create(zeroShotModelBytes(), { executionProviders: ['cpu'], extra: { session: { intra_op: { allow_spinning: '0' } } } });
    const head: ZeroShotHead = {
      async run(a, m, k, b, n, scale) {
        const out = await session.run({ A: new ort.Tensor('float32', a, [m, k]), B: new ort.Tensor('float32', b, [k, n]), S: new ort.Tensor('float32', Float32Array.of(scale), [1]) });
        return out.P.data as Float32Array;
      },
    };
    return head;
  })().catch(() => null));
}

/** The shared MatMul session, or null when onnxruntime-node cannot be loaded here. */
export function onnxMatMul(): Promise<MatMul | null> {
  return (shared ??= (async () => {
    const ort = loadOrt();
    if (!ort) return null;
    // No spinning: between two products JavaScript runs (softmax, L-BFGS), and spinning threads would take its core.
    const session = await ort.InferenceSession.create(matMulModelBytes(), { executionProviders: ['cpu'], extra: { session: { intra_op: { allow_spinning: '0' } } } });
    const matMul: MatMul = {
      async run(a, m, k, b, n) {
        const out = await session.run({ A: new ort.Tensor('float32', a, [m, k]), B: new ort.Tensor('float32', b, [k, n]) });
        return out.C.data as Float32Array;
      },
    };
    return matMul;
  })().catch(() => null));
}
