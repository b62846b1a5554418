/**
 * Benchmark of metrics and label issues at scale on random softmax-like predictions.
 *
 *   node --import tsx tools/bench-metrics.ts [n=1000000] [k=1000] [seed=1]
 *
 * Generates n rows x k classes (float32, 4 * n * k bytes): uniform labels; each row is u_j^8 for uniform u_j (most
 * classes near 0, a few larger), then one class gets (0.5 + u) times the rest of the row (a top-1 probability of
 * 1/3 to 3/5): the label in 70% of rows, a random other class otherwise (confusions, which become label issues);
 * rows are normalised to sum 1. Prints wall and CPU time of each step (the machine may be shared: CPU time is the
 * steadier figure; with helper threads it exceeds wall time) and the peak resident set size.
 *
 * The steps use helper threads (src/core/parallel.ts): one per core beyond the first, at most 4 threads in all;
 * `CLIP_LENS_THREADS=1` runs everything on one thread. From source (tsx), the first step includes starting the
 * helper, which loads tsx (a few hundred ms; dist/metricsWorker.js starts in tens of ms).
 */
import { ProbabilityMatrix } from '../src/core/probabilities';
import { computeMetrics } from '../src/core/metrics';
import { averagePrecisionByClass } from '../src/core/retrieval';
import { findLabelIssues } from '../src/core/labelIssues';
import { threadCount } from '../src/core/parallel';
import { seededRandom } from './seededRandom';

function positiveInt(arg: string | undefined, fallback: number, name: string): number {
  const v = arg === undefined ? fallback : Number(arg);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`usage: node --import tsx tools/bench-metrics.ts [n] [k] [seed]: ${name} must be a positive integer, got ${arg}`);
    process.exit(2);
  }
  return v;
}

const n = positiveInt(process.argv[2], 1_000_000, 'n');
const k = positiveInt(process.argv[3], 1000, 'k');
const seed = positiveInt(process.argv[4], 1, 'seed');
if (k < 2) {
  console.error('k must be at least 2');
  process.exit(2);
}

const { uniform } = seededRandom(seed);

function time<T>(label: string, fn: () => T): T {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const out = fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  console.log(`${label.padEnd(28)} ${wall.toFixed(2)} s wall, ${((c.user + c.system) / 1e6).toFixed(2)} s CPU`);
  return out;
}

const { probs, labels } = time(`generate ${n} x ${k}`, () => {
  const m = new ProbabilityMatrix(k);
  const y = new Int32Array(n);
  const row = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const label = Math.floor(uniform() * k);
    y[i] = label;
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const u = uniform();
      const u2 = u * u;
      const u4 = u2 * u2;
      row[j] = u4 * u4;
      sum += row[j];
    }
    const boosted = uniform() < 0.7 ? label : (label + 1 + Math.floor(uniform() * (k - 1))) % k;
    const top = (0.5 + uniform()) * (sum - row[boosted]);
    sum += top - row[boosted];
    row[boosted] = top;
    for (let j = 0; j < k; j++) row[j] /= sum;
    m.push(row);
  }
  return { probs: m, labels: y };
});
console.log(`threads: ${threadCount()} (set CLIP_LENS_THREADS to change)`);
const classes = Array.from({ length: k }, (_, c) => `class ${c}`);
const input = { classes, labels, probs };

time('averagePrecisionByClass', () => averagePrecisionByClass(probs, labels));
const metrics = time('computeMetrics (incl. AP)', () => computeMetrics(input));
const issues = time('findLabelIssues', () => findLabelIssues(input));

const rssMb = process.resourceUsage().maxRSS / 1024;
const dataMb = (4 * n * k) / 2 ** 20;
console.log(`top-1 accuracy ${metrics.top1Accuracy.toFixed(4)}, Recall@5 ${metrics.recallAtK['5']?.toFixed(4) ?? '-'}, label issues ${issues.length}`);
console.log(`peak RSS ${rssMb.toFixed(0)} MB (probabilities ${dataMb.toFixed(0)} MB)`);
