/** A tiny ONNX writer (protobuf by hand) so tests build real graphs onnxruntime can load. */

export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}
const key = (field: number, wire: number) => varint(field * 8 + wire);
export const int = (field: number, v: number) => Buffer.concat([key(field, 0), varint(v)]);
export const bytes = (field: number, b: Buffer) => Buffer.concat([key(field, 2), varint(b.length), b]);
export const str = (field: number, s: string) => bytes(field, Buffer.from(s, 'utf8'));

export const FLOAT = 1;
export const INT32 = 6;
export const INT64 = 7;
export type Dim = number | string;

export function valueInfo(name: string, elemType: number, dims: Dim[]): Buffer {
  const shape = Buffer.concat(dims.map((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d))));
  const tensorType = Buffer.concat([int(1, elemType), bytes(2, shape)]);
  return Buffer.concat([str(1, name), bytes(2, bytes(1, tensorType))]);
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  intAttrs?: Record<string, number>;
  /** Attributes holding a list of ints (e.g. the reduce ops' `axes` up to opset 17). */
  intsAttrs?: Record<string, number[]>;
}

function node(n: NodeSpec): Buffer {
  const attrs = Object.entries(n.intAttrs ?? {}).map(([name, v]) => bytes(5, Buffer.concat([str(1, name), int(3, v), int(20, 2)])));
  for (const [name, vs] of Object.entries(n.intsAttrs ?? {})) attrs.push(bytes(5, Buffer.concat([str(1, name), ...vs.map((v) => int(8, v)), int(20, 7)])));
  return Buffer.concat([...n.inputs.map((i) => str(1, i)), ...n.outputs.map((o) => str(2, o)), str(4, n.op), ...attrs]);
}

export function onnxModel(nodes: NodeSpec[], inputs: Buffer[], outputs: Buffer[]): Buffer {
  const graph = Buffer.concat([...nodes.map((n) => bytes(1, node(n))), str(2, 'g'), ...inputs.map((i) => bytes(11, i)), ...outputs.map((o) => bytes(12, o))]);
  const opset = Buffer.concat([str(1, ''), int(2, 13)]);
  return Buffer.concat([int(1, 8), str(2, 'clip-lens-test'), bytes(7, graph), bytes(8, opset)]);
}
