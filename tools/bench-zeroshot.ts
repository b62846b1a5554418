/**
 * Benchmark of the zero-shot judgement at scale (issue 15, item 6): n image embeddings x k classes at width dim,
 * the steps an evaluation runs once the embeddings are in, on the evaluation's own code:
 *   scoreAll        softmax(logitScale * image . class) of every row, blocks of 4,096 rows on ONNX Runtime
 *   toMatrix        the per-sample probabilities handed to the metrics (in place, no copy)
 *   computeMetrics  accuracy, top-K, per-class average precision, ...
 *   findLabelIssues cleanlab's confident joint, prune by noise rate, rank by self-confidence
 * and, for the ratio, the JavaScript row-by-row path (float64, what every row ran on before) on the first
 * `--js-rows` rows (default 20,000), scaled to n.
 *
 *   node --import tsx tools/bench-zeroshot.ts [n=1000000] [dim=512] [k=1000] [--js-rows N] [--streamed [--whole-rows]]
 *
 * --streamed: the streamed judgement instead (core/streamedJudgement.ts, what an evaluation runs when the N x K
 * probabilities would outgrow the embeddings): the embeddings are kept as float16 (as read from clip-retrieval
 * shards: 2 bytes a value), the probabilities are never held; three passes (each one product over every row): top-K
 * of every sample and the per-row metric values, then cleanlab's scan, then the prune and the APs (as eval runs them:
 * label issues next, and the CLI's scavenge after each block, memLog.ts releaseYoungGarbage). Run each path in its
 * own process (the peak RSS is the process's).
 *
 * Embeddings: unit vectors near one of k random class directions (cosine about 0.3 to it), so predictions, label
 * issues and metrics look like a real run's; kept in the evaluation's EmbeddingRows as float32 (n x dim x 4 bytes:
 * 2 GB at a million x 512, twice their float16 size on disk). Prints wall and CPU time per step and the peak
 * resident set (VmHWM), and one JSON line last.
 */
import * as fs from 'node:fs';
import { EmbeddingRows } from '../src/core/duplicates';
import { PerSampleStore, scoreAll } from '../src/core/evaluate';
import { computeMetrics } from '../src/core/metrics';
import { findLabelIssues } from '../src/core/labelIssues';
import { allowFullCollection } from '../src/core/memLog';
import { StreamedJudgement } from '../src/core/streamedJudgement';
import { topKIndices } from '../src/core/zeroShot';
import { floatToHalf as toHalf, halfValues } from '../src/core/probabilities';
import type { ClassEmbeddings } from '../src/core/zeroShot';
import { seededRandom } from './seededRandom';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]?.startsWith('--')));
const n = Number(positional[0] ?? 1_000_000);
const dim = Number(positional[1] ?? 512);
const k = Number(positional[2] ?? 1000);
const jsRows = Math.min(n, opt('--js-rows', 20_000));
const streamedPath = args.includes('--streamed');

/** float -> IEEE half bits, round to nearest even (normal and subnormal values; embeddings are well inside range). */
const halfTable = halfValues();
const { uniform, normal: gauss } = seededRandom(12345);

function peakMiB(): number {
  const m = /VmHWM:\s*(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

async function time<T>(label: string, fn: () => Promise<T> | T, out: Record<string, unknown>): Promise<T> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  console.log(`${label.padEnd(34)} ${wall.toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU, peak RSS ${peakMiB().toFixed(0)} MiB`);
  out[label] = { wallS: +wall.toFixed(3), cpuS: +cpu.toFixed(3) };
  return r;
}

function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < v.length; j++) v[j] *= inv;
  return v;
}

async function main(): Promise<void> {
  allowFullCollection(); // as the CLI does
  const out: Record<string, unknown> = { n, dim, k };
  const matrix = new Float32Array(k * dim);
  for (let c = 0; c < k; c++) matrix.set(unit(Float32Array.from({ length: dim }, gauss)), c * dim);
  const classes: ClassEmbeddings = { matrix, dim, computed: 0, ms: 0 };
  const rows = new EmbeddingRows(n);
  const labels: number[] = new Array(n);
  const half = { bits: new Uint16Array(dim), scale: 1 };
  await time(`generate ${n} x ${dim}`, () => {
    const v = new Float32Array(dim);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(uniform() * k);
      labels[i] = uniform() < 0.9 ? c : Math.floor(uniform() * k); // 10% of labels off
      for (let j = 0; j < dim; j++) v[j] = 0.3 * matrix[c * dim + j] + gauss() / Math.sqrt(dim);
      if (!streamedPath) {
        rows.set(i, unit(v));
        continue;
      }
      // As a float16 shard row is read (embeddingsDir.ts): half values, L2-normalised in float32.
      let sq = 0;
      for (let j = 0; j < dim; j++) {
        half.bits[j] = toHalf(v[j]);
        const x = halfTable[half.bits[j]] as number;
        v[j] = x;
        sq += x * x;
      }
      half.scale = 1 / Math.sqrt(sq);
      for (let j = 0; j < dim; j++) v[j] = v[j] * half.scale;
      rows.set(i, v, half);
    }
  }, out);
  const embeddingMiB = (rows.bytes) / 2 ** 20;
  const baseMiB = peakMiB();
  console.log(`embeddings (${rows.isHalf ? 'float16' : 'float32'}): ${embeddingMiB.toFixed(0)} MiB; peak RSS after generating: ${baseMiB.toFixed(0)} MiB`);
  if (streamedPath) return streamed(rows, classes, labels, out, embeddingMiB, baseMiB);

  const store = new PerSampleStore(n, k);
  await time('zero-shot (scoreAll, ONNX Runtime)', () => scoreAll(rows, classes, 100, store), out);
  const afterScore = peakMiB();

  // The JavaScript path on a prefix, for the ratio.
  const prefix = new EmbeddingRows(jsRows);
  const block = EmbeddingRows.blockRows;
  for (let b = 0; b * block < jsRows; b++) {
    const data = rows.block(b)!;
    for (let r = 0; r < block && b * block + r < jsRows; r++) prefix.set(b * block + r, data.subarray(r * dim, (r + 1) * dim));
  }
  const jsStore = new PerSampleStore(jsRows, k);
  const jsLabel = `zero-shot JavaScript, ${jsRows} rows`;
  await time(jsLabel, () => scoreAll(prefix, classes, 100, jsStore, undefined, 'js'), out);
  let worst = 0;
  for (let i = 0; i < jsRows; i++) {
    const a = jsStore.probabilities(i);
    const b = store.probabilities(i);
    for (let c = 0; c < k; c++) worst = Math.max(worst, Math.abs(a[c] - b[c]));
  }
  out.maxAbsDifferenceJsVsOnnx = worst;
  const jsPerRow = (out[jsLabel] as { cpuS: number }).cpuS / jsRows;
  console.log(`  JavaScript scaled to ${n} rows: ${(jsPerRow * n).toFixed(0)} s CPU; largest |difference| of a probability: ${worst.toExponential(2)}`);

  const evaluated = Array.from({ length: n }, (_, i) => i);
  const probs = await time('toMatrix (in place)', () => store.toMatrix(evaluated), out);
  const classNames = Array.from({ length: k }, (_, c) => `class_${c}`);
  const metrics = await time('computeMetrics', () => computeMetrics({ classes: classNames, labels, probs }, { ks: [1, 5] }), out);
  const issues = await time('findLabelIssues', () => findLabelIssues({ classes: classNames, labels, probs }), out);
  out.top1 = metrics.top1Accuracy;
  out.labelIssues = issues.length;
  out.embeddingMiB = +embeddingMiB.toFixed(0);
  out.probabilitiesMiB = +((n * k * 4) / 2 ** 20).toFixed(0);
  out.peakAfterGenerateMiB = +baseMiB.toFixed(0);
  out.peakAfterScoreMiB = +afterScore.toFixed(0);
  out.peakRssMiB = +peakMiB().toFixed(0);
  console.log(`top-1 ${metrics.top1Accuracy.toFixed(3)}, ${issues.length} label issues; probabilities ${out.probabilitiesMiB} MiB; peak RSS ${out.peakRssMiB} MiB`);
  console.log(JSON.stringify(out));
}

/** The streamed judgement's passes over the same data (two when pass 2 makes the prune, as here). */
async function streamed(rows: EmbeddingRows, classes: ClassEmbeddings, labels: number[], out: Record<string, unknown>, embeddingMiB: number, baseMiB: number): Promise<void> {
  const classNames = Array.from({ length: k }, (_, c) => `class_${c}`);
  const judge = new StreamedJudgement({ rows, classEmbeddings: classes, logitScale: 100, classes: classNames, rowOfSample: Int32Array.from({ length: n }, (_, i) => i), labels });
  let topSum = 0;
  // As eval does without --probabilities: the rows reduced inside ONNX Runtime; --whole-rows: each row read in JS.
  if (process.argv.includes('--whole-rows')) await time('pass 1: top-5 per sample, row values (whole rows)', () => judge.firstPass((_, p) => (topSum += topKIndices(p, 5)[0] as number)), out);
  else await time('pass 1: top-5 per sample, row values', () => judge.firstPass(() => undefined, { t: 5, set: (_, c) => (topSum += c[0] as number) }), out);
  const metrics = await time('metrics (no AP yet)', () => judge.metrics([1, 5]), out);
  // As eval does: label issues come next, so pass 2 makes the prune and counts the APs beside its cleanlab scan; a
  // third pass runs only for classes whose heaps turn out too small.
  await time('pass 2: cleanlab scan, prune, APs', () => judge.secondPass(true), out);
  const issues = await time('label issues (a pass 3 only when needed), rank', () => judge.labelIssues(), out);
  out.passes = judge.passes;
  out.top1 = metrics.top1Accuracy;
  out.meanAP = metrics.perClass.reduce((a, c) => a + (c.averagePrecision ?? 0), 0) / k;
  out.labelIssues = issues.length;
  out.embeddingMiB = +embeddingMiB.toFixed(0);
  out.peakAfterGenerateMiB = +baseMiB.toFixed(0);
  out.peakRssMiB = +peakMiB().toFixed(0);
  console.log(`top-1 ${metrics.top1Accuracy.toFixed(3)}, mean AP ${(out.meanAP as number).toFixed(4)}, ${issues.length} label issues; embeddings ${out.embeddingMiB} MiB; peak RSS ${out.peakRssMiB} MiB`);
  console.log(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
