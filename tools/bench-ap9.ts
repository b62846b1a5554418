/**
 * Benchmark of the per-class average precision (core/retrieval.ts) on one thread: the held computation
 * (averagePrecisionByClass over an N x K matrix) and the streamed one (StreamingAveragePrecision fed blocks of 4,096
 * rows, as the streamed judgement does), on synthetic softmax rows.
 *
 *   node --import tsx tools/bench-ap.ts [n=100000] [k=1000] [--sigma S] [--boost B] [--module PATH] [--repeat R]
 *
 * Rows are softmax(S * gaussian + B * [class == label]), labels uniform. The default S = 1, B = 0 gives near-uniform
 * rows whose label score is no higher than the rest (what a random-weight model yields: every probability about
 * 0.00005 to 0.02), where a class's positives crowd few of the fixed 13-bit buckets; B = 8 gives confident
 * positives near 1. --module: the retrieval module to time (default ../src/core/retrieval; pass a copy of an older
 * version to compare, each in its own process). Prints wall and CPU seconds per computation (best of R), a digest of the APs'
 * bits (equal digests: bit-identical APs), and the share of samples whose bucket holds more than 3 distinct
 * positives under the fixed 13-bit buckets and under this branch's per-class buckets, over the first 100 classes.
 */
import * as path from 'node:path';
import { ProbabilityMatrix } from '../src/core/probabilities';
import { setParallelism, stopHelpers } from '../src/core/parallel';
import { bucketing } from '../src/core/retrieval';
import { seededRandom } from './seededRandom';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]?.startsWith('--')));
const n = Number(positional[0] ?? 100_000);
const k = Number(positional[1] ?? 1000);
const sigma = Number(opt('--sigma') ?? 1);
const boost = Number(opt('--boost') ?? 0);
const repeat = Number(opt('--repeat') ?? 3);
const modulePath = path.resolve(opt('--module') ?? path.join(__dirname, '../src/core/retrieval.ts'));
const BLOCK = Number(opt('--block') ?? 4096);
import * as fs from 'node:fs';
const CACHE = opt('--cache');

async function main(): Promise<void> {
  const retrieval = (await import(modulePath)) as typeof import('../src/core/retrieval');
  setParallelism({ threads: 1 });
  const { uniform, normal } = seededRandom(4242);
  const probs = new ProbabilityMatrix(k, { chunkFloats: BLOCK * k });
  const labels = new Int32Array(n);
  if (CACHE && fs.existsSync(CACHE)) {
    const fd = fs.openSync(CACHE, 'r');
    fs.readSync(fd, new Uint8Array(labels.buffer), 0, 4 * n, 0);
    const buf = new Float32Array(BLOCK * k);
    for (let first = 0; first < n; first += BLOCK) {
      const m = Math.min(BLOCK, n - first);
      fs.readSync(fd, new Uint8Array(buf.buffer, 0, 4 * m * k), 0, 4 * m * k, 4 * n + 4 * first * k);
      for (let r = 0; r < m; r++) probs.push(buf.subarray(r * k, (r + 1) * k));
    }
    fs.closeSync(fd);
  } else {
  const row = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const y = Math.floor(uniform() * k);
    labels[i] = y;
    let max = -Infinity;
    for (let j = 0; j < k; j++) {
      row[j] = sigma * normal() + (j === y ? boost : 0);
      if (row[j] > max) max = row[j];
    }
    let sum = 0;
    for (let j = 0; j < k; j++) sum += row[j] = Math.exp(row[j] - max);
    for (let j = 0; j < k; j++) row[j] /= sum;
    probs.push(row);
  }
  if (CACHE) {
    const fd = fs.openSync(CACHE, 'w');
    fs.writeSync(fd, new Uint8Array(labels.buffer));
    for (let i = 0; i < n; i++) { const r = probs.row(i); fs.writeSync(fd, new Uint8Array(r.buffer, r.byteOffset, 4 * k)); }
    fs.closeSync(fd);
  }
  }
  const self = retrieval.selfScorePatterns(probs, labels);

  const best = (fn: () => (number | null)[]): { seconds: number; cpu: number; ap: (number | null)[] } => {
    let seconds = Infinity;
    let cpu = Infinity;
    let ap: (number | null)[] = [];
    for (let r = 0; r < repeat; r++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      ap = fn();
      const c = process.cpuUsage(c0);
      seconds = Math.min(seconds, (performance.now() - t0) / 1000);
      cpu = Math.min(cpu, (c.user + c.system) / 1e6);
    }
    return { seconds, cpu, ap };
  };
  const held = args.includes('--no-held') ? null : best(() => retrieval.averagePrecisionByClass(probs, labels));
  const streamed = best(() => {
    const acc = new retrieval.StreamingAveragePrecision(k, labels, self, undefined, BLOCK);
    probs.storage().forEach((chunk, c) => {
      const first = c * BLOCK;
      acc.add(ProbabilityMatrix.fromShared({ numClasses: k, rowsPerChunk: BLOCK, length: Math.min(BLOCK, n - first), chunks: [chunk] }), first);
    });
    return acc.result();
  });
  const digest = (ap: (number | null)[]): string => {
    const f = new Float64Array(ap.map((x) => (x === null ? -1 : x)));
    let h = 0x811c9dc5;
    for (const b of new Uint8Array(f.buffer)) h = Math.imul(h ^ b, 16777619) >>> 0;
    return h.toString(16);
  };
  if (held && digest(held.ap) !== digest(streamed.ap)) throw new Error('held and streamed APs differ');
  const out = {
    n,
    k,
    sigma,
    boost,
    module: path.relative(process.cwd(), modulePath),
    heldSeconds: held?.seconds,
    streamedSeconds: +streamed.seconds.toFixed(3),
    streamedCpu: +streamed.cpu.toFixed(3),
    apDigest: digest(streamed.ap),
    meanAp: +(streamed.ap.reduce<number>((a, x) => a + (x ?? 0), 0) / k).toFixed(6),
  };
  console.log(JSON.stringify(out));
  stopHelpers();
}

/** Share of samples (first 100 classes) meeting a bucket with more than 3 distinct positives: fixed vs per-class buckets. */
function crowding(probs: ProbabilityMatrix, labels: Int32Array): { crowdedFixed: number; crowdedPerClass: number } {
  const bits = (x: number) => new Int32Array(new Float32Array([x]).buffer)[0];
  let fixed = 0;
  let perClass = 0;
  let total = 0;
  for (let c = 0; c < Math.min(100, k); c++) {
    const pos = new Set<number>();
    const all = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      all[i] = bits(probs.row(i)[c]);
      if (labels[i] === c) pos.add(all[i]);
    }
    if (pos.size === 0) continue;
    const sorted = [...pos].sort((a, b) => a - b);
    const lo = sorted[0];
    const hi = sorted[sorted.length - 1];
    const { shift } = bucketing(Int32Array.from(sorted).reverse());
    const count = (key: (v: number) => number) => {
      const per = new Map<number, number>();
      for (const v of sorted) per.set(key(v), (per.get(key(v)) ?? 0) + 1);
      let crowded = 0;
      for (const v of all) if ((per.get(key(v)) ?? 0) > 3) crowded++;
      return crowded;
    };
    fixed += count((v) => v >>> 18);
    perClass += count((v) => (v < lo ? -1 : v > hi ? -2 : v >>> shift));
    total += n;
  }
  return { crowdedFixed: +(fixed / total).toFixed(4), crowdedPerClass: +(perClass / total).toFixed(4) };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
