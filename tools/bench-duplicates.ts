/**
 * Benchmark of near-duplicate groups at scale on synthetic CLIP-like embeddings (docs/benchmarks.md).
 *
 *   node --import tsx tools/bench-duplicates.ts [n=100000] [dim=512] [seed=1] [--exact]
 *
 * Generates n unit vectors in n / 100 clusters (cosine to the cluster centre about 0.75, between two members of a
 * cluster about 0.55, as a CLIP model's same-class images) and plants near-duplicates: 2% of the rows are a copy of an
 * earlier row plus noise (cosine 0.96-0.99 to it). A pair is a near-duplicate at cosine >= 0.95 (the embeddings-only
 * rule, {@link nearDuplicatePairsFromEmbeddings}); the planted pairs are the true pairs, which a brute-force scan of
 * 200 random rows against all rows checks (no other pair of those rows reaches 0.95). Prints the time of the
 * approximate path (the kNN index of neighbours.ts with usearch's HNSW graph; build + 10 neighbours per row + pairs +
 * groups), its recall of the true pairs, and the peak resident set. `--exact` also times the exact path (quadratic:
 * only for small n).
 *
 * Outliers: 0.1% of the rows (none of them a copy or a copy's source) are replaced by random directions (far from
 * every cluster) and 0.1% by weak members of their cluster (noise norm 2.5: cosine to the centre about 0.37); every
 * row is labelled with its cluster. Then the whole embeddings-only analysis (analyseDuplicates: ONE kNN index and one
 * neighbour query per row for near-duplicates and outliers) is timed, with the planted far outliers it flags.
 * `--exact-outliers` also runs it on the exact path and prints the overlap of the two sets of flagged outliers.
 * `--check-outliers` (for sizes where the exact path is too slow): the exact neighbours (brute force, ONNX Runtime
 * Gemm) of 1,000 evenly spaced rows and of every flagged row; prints the exact sample's fence (Q3 + 3 IQR, an estimate
 * of the exact path's) and how many flagged rows are beyond it by their exact distance (the class test is exact on
 * both paths).
 */
import { analyseDuplicatesAsync, nearDuplicatePairsFromEmbeddingsAsync } from '../src/core/duplicates';
import { approximateAvailable, IVF_MIN_ROWS, NeighbourIndex } from '../src/core/neighbours';
import * as fs from 'node:fs';
import { seededRandom } from './seededRandom';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const n = Number(positional[0] ?? 100_000);
const dim = Number(positional[1] ?? 512);
const seed = Number(positional[2] ?? 1);
const withExact = process.argv.includes('--exact');
const withExactOutliers = process.argv.includes('--exact-outliers');
/** --ivf / --hnsw: force the approximate index's kind (default: by size, IVF from IVF_MIN_ROWS rows on). */
const ivfFlag: boolean | 'auto' = process.argv.includes('--ivf') ? true : process.argv.includes('--hnsw') ? false : 'auto';
if (!Number.isInteger(n) || n < 100 || !Number.isInteger(dim) || dim < 8) {
  console.error('usage: node --import tsx tools/bench-duplicates.ts [n >= 100] [dim >= 8] [seed] [--exact]');
  process.exit(2);
}
const MIN_COSINE = 0.95;

const { uniform, normal: gauss } = seededRandom(seed);
function normalise(v: Float32Array, at: number): void {
  let s = 0;
  for (let d = 0; d < dim; d++) s += v[at + d] * v[at + d];
  const inv = 1 / Math.sqrt(s);
  for (let d = 0; d < dim; d++) v[at + d] *= inv;
}

const t0 = performance.now();
const clusters = Math.max(2, Math.floor(n / 100));
const centres = new Float32Array(clusters * dim);
for (let i = 0; i < centres.length; i++) centres[i] = gauss();
for (let c = 0; c < clusters; c++) normalise(centres, c * dim);
const vectors = new Float32Array(n * dim);
/** Cluster of each row (a copy: its source's), its label in the analysis. */
const label = new Int32Array(n);
const truth = new Set<string>();
const spread = 0.88 / Math.sqrt(dim); // noise norm ~0.88: cosine to the centre ~0.75
for (let i = 0; i < n; i++) {
  const at = i * dim;
  if (i > 10 && uniform() < 0.02) {
    const src = Math.floor(uniform() * i);
    const eps = (0.1 + 0.15 * uniform()) / Math.sqrt(dim); // cosine 0.97-0.995 to the source
    for (let d = 0; d < dim; d++) vectors[at + d] = vectors[src * dim + d] + eps * gauss();
    normalise(vectors, at);
    label[i] = label[src];
    truth.add(`${src},${i}`);
    continue;
  }
  const c = Math.floor(uniform() * clusters);
  label[i] = c;
  for (let d = 0; d < dim; d++) vectors[at + d] = centres[c * dim + d] + spread * gauss();
  normalise(vectors, at);
}
// Planted outliers (a second random stream, so the rows above are those of earlier runs of this benchmark).
const plantedFar = new Set<number>();
const plantedWeak = new Set<number>();
{
  let st = (seed * 7919 + 17) >>> 0 || 1;
  const u2 = () => {
    st ^= st << 13;
    st ^= st >>> 17;
    st ^= st << 5;
    return ((st >>> 0) + 0.5) / 4294967296;
  };
  const g2 = () => Math.sqrt(-2 * Math.log(u2())) * Math.cos(2 * Math.PI * u2());
  const inPair = new Uint8Array(n);
  for (const key of truth) for (const x of key.split(',').map(Number)) inPair[x] = 1;
  const count = Math.max(1, Math.round(n / 1000));
  while (plantedFar.size < count || plantedWeak.size < count) {
    const i = Math.floor(u2() * n);
    if (inPair[i] || plantedFar.has(i) || plantedWeak.has(i)) continue;
    const far = plantedFar.size < count;
    const c = label[i];
    for (let d = 0; d < dim; d++) vectors[i * dim + d] = far ? g2() : centres[c * dim + d] + (2.5 / Math.sqrt(dim)) * g2();
    normalise(vectors, i * dim);
    (far ? plantedFar : plantedWeak).add(i);
  }
}
const genMs = performance.now() - t0;

const cos = (a: number, b: number) => {
  let s = 0;
  for (let d = 0; d < dim; d++) s += vectors[a * dim + d] * vectors[b * dim + d];
  return s;
};
// The true pairs: within each chain of planted copies (a copy of a copy included), every pair at >= MIN_COSINE.
const root = new Int32Array(n).map((_, i) => i);
const findRoot = (x: number): number => {
  while (root[x] !== x) x = root[x] = root[root[x]];
  return x;
};
for (const key of truth) {
  const [a, b] = key.split(',').map(Number);
  root[Math.max(findRoot(a), findRoot(b))] = Math.min(findRoot(a), findRoot(b));
}
const chains = new Map<number, number[]>();
for (const key of truth) for (const x of key.split(',').map(Number)) {
  const r = findRoot(x);
  const list = chains.get(r) ?? [];
  if (!list.includes(x)) list.push(x);
  chains.set(r, list);
}
const truePairs = new Set<string>();
for (const members of chains.values()) {
  for (let x = 0; x < members.length; x++) for (let y = x + 1; y < members.length; y++) {
    const a = Math.min(members[x], members[y]);
    const b = Math.max(members[x], members[y]);
    if (cos(a, b) >= MIN_COSINE) truePairs.add(`${a},${b}`);
  }
}

// Brute-force check on sampled rows: every pair of theirs at >= MIN_COSINE is a true pair.
let sampledPairs = 0;
let unplanted = 0;
// 200 rows at 100,000 (fewer above: the scan is n x 512 per row in JavaScript).
const checkRows = Math.max(10, Math.round(200 * Math.min(1, 100_000 / n)));
for (let q = 0; q < checkRows; q++) {
  const a = Math.floor(uniform() * n);
  for (let b = 0; b < n; b++) {
    if (b === a || cos(a, b) < MIN_COSINE) continue;
    sampledPairs++;
    if (!truePairs.has(`${Math.min(a, b)},${Math.max(a, b)}`)) unplanted++;
  }
}

async function timed(approximate: boolean) {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const pairs = await nearDuplicatePairsFromEmbeddingsAsync(vectors, dim, { minCosine: MIN_COSINE, neighbours: 10, approximate, ivf: ivfFlag });
  // Groups: union-find over the pairs.
  const parent = new Int32Array(n).map((_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (let p = 0; p < pairs.a.length; p++) {
    const ra = find(pairs.a[p]);
    const rb = find(pairs.b[p]);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
  const sizes = new Map<number, number>();
  for (let i = 0; i < n; i++) sizes.set(find(i), (sizes.get(find(i)) ?? 0) + 1);
  const groups = [...sizes.values()].filter((s) => s > 1).length;
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  let found = 0;
  for (let p = 0; p < pairs.a.length; p++) if (truePairs.has(`${pairs.a[p]},${pairs.b[p]}`)) found++;
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, pairs: pairs.a.length, groups, found, approximate: pairs.approximate, kind: pairs.kind };
}

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 1048576;
}

console.log(`${n} embeddings x ${dim} (generated in ${(genMs / 1000).toFixed(1)} s): ${truePairs.size} true near-duplicate pairs at cosine >= ${MIN_COSINE}`);
async function main() {
console.log(`brute-force check of ${checkRows} random rows: ${sampledPairs} pairs at >= ${MIN_COSINE}, ${unplanted} not planted`);
if (!approximateAvailable()) console.log('usearch is not available here: the approximate path falls back to exact search');
const approx = process.argv.includes('--analysis-only') ? { ms: NaN, cpuMs: NaN, pairs: 0, groups: 0, found: 0, approximate: true, kind: 'ivf' as const } : await timed(true);
console.log(
  `approximate (${approx.kind === 'exact' ? 'exact fallback' : approx.kind.toUpperCase()}): ${(approx.ms / 1000).toFixed(1)} s wall, ${(approx.cpuMs / 1000).toFixed(1)} s CPU; ` +
    `${approx.pairs} pairs, ${approx.groups} groups; recall of true pairs ${(approx.found / truePairs.size).toFixed(4)} (${approx.found} of ${truePairs.size}); ` +
    `precision ${(approx.found / Math.max(1, approx.pairs)).toFixed(4)}`,
);
if (withExact) {
  const exact = await timed(false);
  console.log(`exact: ${(exact.ms / 1000).toFixed(1)} s wall; ${exact.pairs} pairs; recall of true pairs ${(exact.found / truePairs.size).toFixed(4)}`);
}
async function timedAnalysis(approximate: boolean | 'auto') {
  const samples = Array.from({ length: n }, (_, i) => ({ path: `r${i}`, label: `c${label[i]}` }));
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const r = await analyseDuplicatesAsync({ samples, embeddings: vectors, dim, hasEmbedding: new Uint8Array(n).fill(1), pixelHashes: null, approximate, ivf: approximate === false ? false : ivfFlag }, { minCosine: MIN_COSINE });
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  const flagged = new Set(r.outliers.map((o) => Number(o.path.slice(1))));
  const far = [...plantedFar].filter((i) => flagged.has(i)).length;
  const weak = [...plantedWeak].filter((i) => flagged.has(i)).length;
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, groups: r.groups.length, flagged, far, weak };
}
const shared = await timedAnalysis('auto');
console.log(
  `analysis (one kNN index for near-duplicates and outliers, both results): ${(shared.ms / 1000).toFixed(1)} s wall, ${(shared.cpuMs / 1000).toFixed(1)} s CPU; ` +
    `${shared.groups} groups, ${shared.flagged.size} outliers flagged (planted: ${shared.far} of ${plantedFar.size} far, ${shared.weak} of ${plantedWeak.size} weak)`,
);
let outlierOverlap: number | undefined;
if (withExactOutliers) {
  const exact = await timedAnalysis(false);
  const both = [...shared.flagged].filter((i) => exact.flagged.has(i)).length;
  outlierOverlap = both / Math.max(1, new Set([...shared.flagged, ...exact.flagged]).size);
  console.log(
    `analysis, exact path: ${(exact.ms / 1000).toFixed(1)} s wall, ${(exact.cpuMs / 1000).toFixed(1)} s CPU; ${exact.groups} groups, ${exact.flagged.size} outliers flagged; ` +
      `outliers flagged by both ${both}, only approximate ${shared.flagged.size - both}, only exact ${exact.flagged.size - both}: overlap (Jaccard) ${outlierOverlap.toFixed(4)}`,
  );
}
if (process.argv.includes('--check-outliers')) {
  const k = 10;
  const start = performance.now();
  const even = Array.from({ length: Math.min(n, 1000) }, (_, i) => Math.floor((i * n) / Math.min(n, 1000)));
  const flaggedRows = [...shared.flagged];
  const rows = [...even, ...flaggedRows];
  const queries = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => queries.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim));
  const exactIndex = NeighbourIndex.build(vectors, dim, { approximate: false });
  const nb = await exactIndex.searchAsync(queries, k + 1);
  const exactD = rows.map((r, i) => {
    let s = 0;
    let c = 0;
    for (let x = 0; x < k + 1 && c < k; x++) {
      if (nb.indices[i * (k + 1) + x] === r) continue;
      s += 1 - nb.similarities[i * (k + 1) + x];
      c++;
    }
    return s / c;
  });
  const sorted = exactD.slice(0, even.length).sort((a, b) => a - b);
  const q = (p: number) => {
    const at = p * (sorted.length - 1);
    const lo = Math.floor(at);
    return sorted[lo] + (sorted[Math.min(sorted.length - 1, lo + 1)] - sorted[lo]) * (at - lo);
  };
  const fence = q(0.75) + 3 * (q(0.75) - q(0.25));
  const beyond = flaggedRows.filter((_, i) => exactD[even.length + i] > fence).length;
  console.log(
    `outlier check (exact neighbours of ${even.length} evenly spaced rows and the ${flaggedRows.length} flagged, ${((performance.now() - start) / 1000).toFixed(1)} s): ` +
      `exact median d ${q(0.5).toFixed(3)}, Q1 ${q(0.25).toFixed(3)}, Q3 ${q(0.75).toFixed(3)}, fence ${fence.toFixed(3)}; flagged beyond it by exact d: ${beyond} of ${flaggedRows.length}`,
  );
}
console.log(`peak RSS ${peakRssMiB().toFixed(0)} MiB (vectors ${((n * dim * 4) / 1048576).toFixed(0)} MiB)`);
console.log(JSON.stringify({ n, dim, index: approx.kind, ivfMinRows: IVF_MIN_ROWS, truePairs: truePairs.size, seconds: approx.ms / 1000, cpuSeconds: approx.cpuMs / 1000, recall: approx.found / truePairs.size, pairs: approx.pairs, groups: approx.groups, approximate: approx.approximate, analysisSeconds: shared.ms / 1000, analysisCpuSeconds: shared.cpuMs / 1000, outliers: shared.flagged.size, outlierOverlap, peakRssMiB: peakRssMiB() }));
}
void main();
