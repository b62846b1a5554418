/**
 * Where one block's time goes inside ONNX Runtime, node by node, for the zero-shot graphs of the streamed judgement
 * (core/onnxMatMul.ts): the summary of pass 1, the scan of pass 2, the head of pass 3. One block of 4,096 float16 rows
 * of width 512 against 1,000 classes (random values: the kernels' time does not depend on them), two intra-op
 * threads, no spinning (as the evaluation's sessions); 5 runs to warm up, 30 timed with ONNX Runtime's profiler on.
 *
 *   node --import tsx tools/profile-zeroshot-graph.ts [summary|scan|head]
 *
 * Prints the wall time per run and each node's kernel time per run (ms), largest first. docs/benchmarks.md, session 9.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { zeroShotModelBytes, zeroShotScanModelBytes, zeroShotSummaryModelBytes } from '../src/core/onnxMatMul';

const which = process.argv[2] ?? 'summary';
const M = 4096;
const D = 512;
const N = 1000;
const WARM = 5;
const TIMED = 30;

async function main(): Promise<void> {
  const bytes = which === 'summary' ? zeroShotSummaryModelBytes(true) : which === 'scan' ? zeroShotScanModelBytes(true) : which === 'head' ? zeroShotModelBytes(true) : null;
  if (!bytes) throw new Error(`unknown graph '${which}': summary, scan or head`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-ortprof-'));
  const options = { executionProviders: ['cpu'], intraOpNumThreads: 2, enableProfiling: true, profileFilePrefix: path.join(dir, which), extra: { session: { intra_op: { allow_spinning: '0' } } } };
  const session = await ort.InferenceSession.create(bytes, options as ort.InferenceSession.SessionOptions);
  // float16 patterns of magnitude 2^-7 .. 2^-6 with random signs, scale 0.05: rows of about unit norm.
  const bits = Uint16Array.from({ length: M * D }, () => (0x2000 + Math.floor(Math.random() * 0x1000)) | (Math.random() < 0.5 ? 0x8000 : 0));
  const all: Record<string, ort.Tensor> = {
    A16: new ort.Tensor('float16', bits, [M, D]),
    SC: new ort.Tensor('float32', new Float32Array(M).fill(0.05), [M, 1]),
    B: new ort.Tensor('float32', Float32Array.from({ length: D * N }, () => (Math.random() - 0.5) * 0.1), [D, N]),
    S: new ort.Tensor('float32', Float32Array.of(100), [1]),
    T: new ort.Tensor('int64', BigInt64Array.of(5n), [1]),
    L: new ort.Tensor('int64', BigInt64Array.from({ length: M }, (_, i) => BigInt(i % N)), [M, 1]),
    J: new ort.Tensor('int64', BigInt64Array.from({ length: N }, (_, j) => BigInt(j)), [1, N]),
    AX: new ort.Tensor('int64', BigInt64Array.of(1n), [1]),
    CUT: new ort.Tensor('float32', new Float32Array(N).fill(0.002), [1, N]),
    W: new ort.Tensor('float32', Float32Array.from({ length: 2 * N }, (_, i) => (i % 2 === 0 ? 1 : i >> 1)), [N, 2]),
  };
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) feeds[name] = all[name] as ort.Tensor;
  for (let i = 0; i < WARM; i++) await session.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < TIMED; i++) await session.run(feeds);
  console.log(`${which}: ${((performance.now() - t0) / TIMED).toFixed(1)} ms per run (${M} x ${D} float16 rows, ${N} classes)`);
  await session.release(); // writes the profile
  const file = fs.readdirSync(dir).map((f) => path.join(dir, f))[0];
  if (!file) throw new Error('ONNX Runtime wrote no profile');
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string; dur: number; cat: string }[];
  fs.rmSync(dir, { recursive: true, force: true });
  const byNode = new Map<string, number>();
  for (const e of events) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) byNode.set(e.name.replace(/_kernel_time$/, ''), (byNode.get(e.name.replace(/_kernel_time$/, '')) ?? 0) + e.dur);
  for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1])) console.log(`${(us / (WARM + TIMED) / 1000).toFixed(2).padStart(7)} ms  ${node}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
