/**
 * float32 matrix products on ONNX Runtime's CPU kernels (MLAS: SIMD, multi-threaded), for the large products of
 * the linear probe. onnxruntime-node is already how CLIP runs; a one-node graph (MatMul with symbolic shapes) is
 * written here as ONNX protobuf bytes, so there is no model file. Loaded on first use; null when it cannot load.
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

/** The shared MatMul session, or null when onnxruntime-node cannot be loaded here. */
export function onnxMatMul(): Promise<MatMul | null> {
  return (shared ??= (async () => {
    let ort: typeof Ort;
    try {
      ort = require('onnxruntime-node') as typeof Ort;
    } catch {
      return null;
    }
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
