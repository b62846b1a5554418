/**
 * The machine's speed right now, as one fixed piece of the evaluation's own work: the zero-shot head (float16 rows
 * cast, MatMul with 1,000 class embeddings, scale, softmax: onnxMatMul.ts zeroShotModelBytes) on blocks of 4,096 x 512
 * rows, on two threads as the streamed judgement runs it. Prints one JSON line: the median milliseconds of wall time
 * and of CPU time per block over `rounds` rounds of 10 blocks (after 3 blocks of warm-up).
 *
 *   node --import tsx tools/machine-speed.ts [rounds=5]
 *
 * The head is onnxMatMul.ts's own session (its options, graph and feeds). The end-to-end benchmark (tools/bench.mjs,
 * zero-shot at scale) runs it before each timed evaluation: this VM's speed drifts by 10-20% within an hour (other
 * tenants), and a run's seconds mean little without the speed it ran at (docs/benchmarks.md). Each pass of the
 * judgement over a million rows is 245 such blocks.
 */
import { onnxZeroShot, setOnnxThreads } from '../src/core/onnxMatMul';
import { seededRandom } from './seededRandom';

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('usage: node --import tsx tools/machine-speed.ts [rounds >= 1]');
  const M = 4096;
  const D = 512;
  const N = 1000;
  const { uniform } = seededRandom(7);
  // Random float16 patterns of magnitude 2^-8 .. 2^-4 (a unit row's values), either sign; scales as a unit norm's.
  const rows = {
    bits: Uint16Array.from({ length: M * D }, () => 0x1c00 + Math.floor(uniform() * 0x1000) + (uniform() < 0.5 ? 0x8000 : 0)),
    scales: new Float32Array(M).fill(1),
  };
  const classes = Float32Array.from({ length: D * N }, () => (uniform() - 0.5) * 0.09);
  // The evaluation's own head session (onnxMatMul.ts: its options, its float16 graph and feeds), on two threads.
  setOnnxThreads(2);
  const head = await onnxZeroShot();
  if (!head) throw new Error('ONNX Runtime could not be loaded');
  const block = () => head.run(rows, M, D, classes, N, 100);
  for (let i = 0; i < 3; i++) await block();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) await block();
    const used = process.cpuUsage(c0);
    wall.push((performance.now() - t0) / 10);
    cpu.push((used.user + used.system) / 1000 / 10);
  }
  await head.release();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;
  console.log(JSON.stringify({ block: [M, D, N], threads: 2, rounds, msPerBlock: Number(median(wall).toFixed(2)), cpuMsPerBlock: Number(median(cpu).toFixed(2)) }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
