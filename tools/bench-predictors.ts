/**
 * Benchmark of the embedding predictors (issue 12), side by side with scikit-learn on the same machine and data.
 *
 *   node --import tsx tools/bench-predictors.ts [n=20000] [dim=512] [classes=100] [--no-sklearn] [--ann N]
 *                                               [--rounds R] [--probe-only] [--warm-start]
 *
 * Data: `classes` Gaussian clusters in `dim` dimensions (centres N(0,1), noise N(0, 1.5^2) per coordinate), rows
 * L2-normalised like CLIP embeddings, 5% of labels flipped to another class. Timed:
 * - linear probe: 5-fold cross-validated logistic regression, C = 10, at most 100 L-BFGS iterations per fold (the
 *   default max_iter of scikit-learn), vs `cross_val_predict(LogisticRegression(C=10, max_iter=100),
 *   cv=StratifiedKFold(5), method='predict_proba')`;
 * - kNN: k = 10 neighbours of every row (self excluded) and the vote probabilities, vs
 *   `KNeighborsClassifier(n_neighbors=11, metric='cosine').fit(X, y).predict_proba(X)`;
 * - with `--ann N` (e.g. 100000): the approximate index at N x dim: build + self search time, and recall@10
 *   against exact search for 1,000 sampled rows.
 * scikit-learn runs through /usr/bin/python3 (Debian's python3-sklearn) when present; its figures include no data
 * loading. The machine may be shared: wall times of both sides are from the same run, and with `--rounds R` the
 * probe is timed R times interleaved (clip-lens, scikit-learn, clip-lens, ...) and the ratio taken per round.
 * `--probe-only` leaves out kNN; `--warm-start` starts each fold's fit from the previous fold's model.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crossValidatedProbeFast } from '../src/core/linearProbe';
import { knnProbabilitiesAsync } from '../src/core/knnPredictor';
import { NeighbourIndex } from '../src/core/neighbours';
import { seededRandom } from './seededRandom';

const args = process.argv.slice(2);
const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && (args[i - 1] === '--ann' || args[i - 1] === '--rounds')));
const n = Number(positional[0] ?? 20000);
const dim = Number(positional[1] ?? 512);
const classes = Number(positional[2] ?? 100);
const annAt = args.includes('--ann') ? Number(args[args.indexOf('--ann') + 1]) : 0;
const rounds = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : 1;
const probeOnly = args.includes('--probe-only');
const warmStart = args.includes('--warm-start');
const withSklearn = !args.includes('--no-sklearn') && fs.existsSync('/usr/bin/python3');

const { uniform, normal } = seededRandom(12345);

function makeData(rows: number): { x: Float32Array; labels: Int32Array } {
  const centres = Float32Array.from({ length: classes * dim }, normal);
  const x = new Float32Array(rows * dim);
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const c = i % classes;
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const v = centres[c * dim + d] + 1.5 * normal();
      x[i * dim + d] = v;
      s += v * v;
    }
    s = Math.sqrt(s);
    for (let d = 0; d < dim; d++) x[i * dim + d] /= s;
    labels[i] = uniform() < 0.05 ? (c + 1 + Math.floor(uniform() * (classes - 1))) % classes : c;
  }
  return { x, labels };
}

function npy(file: string, dtype: '<f4' | '<i4', shape: number[], data: Float32Array | Int32Array): void {
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function accuracy(probs: Float64Array, labels: Int32Array, k: number): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
    if (best === labels[i]) ok++;
  }
  return ok / labels.length;
}

const SKLEARN = `
import sys, time, json, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
import warnings; warnings.filterwarnings('ignore')
d = sys.argv[1]
X = np.load(d + '/features.npy'); y = np.load(d + '/labels.npy')
out = {}
if sys.argv[2] in ('probe', 'both'):
    t = time.perf_counter()
    p = cross_val_predict(LogisticRegression(C=10, max_iter=100), X, y, cv=StratifiedKFold(5), method='predict_proba')
    out['probeSeconds'] = time.perf_counter() - t
    out['probeAccuracy'] = float((p.argmax(1) == y).mean())
    np.save(d + '/sklearn_probs.npy', p)
if sys.argv[2] in ('knn', 'both'):
    t = time.perf_counter()
    q = KNeighborsClassifier(n_neighbors=11, metric='cosine').fit(X, y).predict_proba(X)
    out['knnSeconds'] = time.perf_counter() - t
print(json.dumps(out))
`;

/** Runs the scikit-learn side (`what`: probe, knn or both) on the data written to `dir`; null when it cannot run. */
function sklearn(dir: string, what: 'probe' | 'knn' | 'both'): { probeSeconds?: number; probeAccuracy?: number; knnSeconds?: number } | null {
  const r = spawnSync('/usr/bin/python3', ['-c', SKLEARN, dir, what], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status === 0) return JSON.parse(r.stdout.trim().split('\n').pop()!);
  console.log(`scikit-learn: not run (${(r.stderr || '').trim().split('\n').pop()})`);
  return null;
}

/** Largest |difference| between our probabilities and scikit-learn's (float64 npy written by numpy). */
function maxDifference(probs: Float64Array, file: string): number {
  const buf = fs.readFileSync(file);
  const headerLength = buf.readUInt16LE(8);
  const data = new Float64Array(buf.buffer.slice(buf.byteOffset + 10 + headerLength, buf.byteOffset + buf.length));
  let worst = 0;
  for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(data[i] - probs[i]));
  return worst;
}

const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');

async function main(): Promise<void> {
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${load()}`);
  console.log(`data: ${n} x ${dim}, ${classes} classes, 5% labels flipped`);
  const { x, labels } = makeData(n);
  const labelArray = Array.from(labels);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-bench-predictors-'));
  try {
    if (withSklearn) {
      npy(path.join(dir, 'features.npy'), '<f4', [n, dim], x);
      npy(path.join(dir, 'labels.npy'), '<i4', [n], labels);
    }
    const ratios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const loadBefore = load();
      const t = performance.now();
      const probe = await crossValidatedProbeFast(x, dim, labelArray, classes, { folds: 5, c: 10, maxIterations: 100, warmStart });
      const probeSeconds = (performance.now() - t) / 1000;
      const fits = probe.fits.map((f) => `${f.iterations}/${f.evaluations}`).join(' ');
      console.log(`round ${round}: clip-lens linear probe: ${probeSeconds.toFixed(1)} s (load before ${loadBefore}; 5 folds, accuracy vs given labels ${accuracy(probe.probs, labels, classes).toFixed(3)}, ${probe.unconverged} folds at the iteration limit, iterations/evaluations per fold ${fits})`);
      if (!withSklearn) continue;
      const loadSk = load();
      const s = sklearn(dir, 'probe');
      if (!s) break;
      const ratio = probeSeconds / s.probeSeconds!;
      ratios.push(ratio);
      const diff = maxDifference(probe.probs, path.join(dir, 'sklearn_probs.npy'));
      console.log(`round ${round}: scikit-learn cross_val_predict(LogisticRegression): ${s.probeSeconds!.toFixed(1)} s (load before ${loadSk}; accuracy ${s.probeAccuracy!.toFixed(3)}); clip-lens / scikit-learn = ${ratio.toFixed(2)}; max |probability difference| ${diff.toExponential(2)}`);
    }
    if (ratios.length > 1) console.log(`probe time ratio clip-lens / scikit-learn per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}`);
    if (!probeOnly) {
      const t = performance.now();
      const knn = await knnProbabilitiesAsync(x, dim, labelArray, classes, { k: 10, normalised: true, index: { approximate: false } });
      const knnSeconds = (performance.now() - t) / 1000;
      console.log(`clip-lens kNN (k=10, ${knn.approximate ? 'approximate' : 'exact, similarities as ONNX Runtime matrix products'}): ${knnSeconds.toFixed(1)} s`);
      const s = withSklearn ? sklearn(dir, 'knn') : null;
      if (s) console.log(`scikit-learn KNeighborsClassifier(11, cosine).predict_proba: ${s.knnSeconds!.toFixed(1)} s`);
    }
    if (!withSklearn) console.log('scikit-learn: not run (no /usr/bin/python3 with python3-sklearn, or --no-sklearn)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  if (annAt > 0) {
    const big = makeData(annAt).x;
    t = performance.now();
    const index = NeighbourIndex.build(big, dim, { approximate: true });
    const nb = index.selfNeighbours(10);
    const annSeconds = (performance.now() - t) / 1000;
    const sample = Int32Array.from({ length: 1000 }, (_, i) => Math.floor((i * annAt) / 1000));
    const queries = new Float32Array(sample.length * dim);
    sample.forEach((r, i) => queries.set(big.subarray(r * dim, (r + 1) * dim), i * dim));
    const exact = NeighbourIndex.build(big, dim, { approximate: false }).search(queries, 11);
    let hit = 0;
    sample.forEach((r, i) => {
      const truth = new Set(Array.from(exact.indices.subarray(i * 11, i * 11 + 11)).filter((j) => j !== r).slice(0, 10));
      for (let q = 0; q < 10; q++) if (truth.has(nb.indices[r * 10 + q])) hit++;
    });
    console.log(`approximate index at ${annAt} x ${dim}: build + self search ${annSeconds.toFixed(1)} s (${index.approximate ? 'usearch HNSW' : 'usearch unavailable: exact'}), recall@10 ${(hit / (sample.length * 10)).toFixed(3)} (1,000 rows vs exact)`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
