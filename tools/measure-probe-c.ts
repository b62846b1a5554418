/**
 * Does choosing the probe's C by an inner validation change what the probe finds? (issue 12: "C chosen by you, e.g.
 * by an inner validation".) Compares, on the same features:
 * - C fixed at each value of a grid (default 0.1, 1, 10, 100);
 * - C chosen per outer fold by an inner StratifiedKFold(5) on that fold's training samples, minimising the inner
 *   out-of-sample log-loss over the grid (what LogisticRegressionCV(Cs, scoring='neg_log_loss') would choose).
 * For each: top-1 and balanced accuracy of the out-of-sample probabilities against the given labels, the label
 * issues (confident learning), and, when known wrong labels are given, precision and recall against them.
 *
 *   node --import tsx tools/measure-probe-c.ts --jsonl EMBED.jsonl [--known known-label-errors.txt]
 *   node --import tsx tools/measure-probe-c.ts --cases cases.json        (the shared probe-reference cases)
 *
 * EMBED.jsonl is the output of `clip-lens embed` on a class-per-folder dataset (the folder is the label; the
 * probe never sees class names, so a copy with folders renamed c00..c15 gives the same answers).
 */
import * as fs from 'node:fs';
import { fitLogistic, predictInto, stratifiedFolds } from '../src/core/linearProbe';
import { findLabelIssuesFloat64 } from '../src/core/labelIssues';
import { computeMetrics } from '../src/core/metrics';
import { ProbabilityMatrix } from '../src/core/probabilities';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const GRID = (opt('--grid') ?? '0.1,1,10,100').split(',').map(Number);
const FOLDS = 5;

interface Problem {
  name: string;
  x: Float32Array;
  dim: number;
  labels: number[];
  classes: string[];
  paths?: string[];
  known?: Set<string>;
  givenC?: number;
  folds: number;
}

function indices(n: number, keep: (i: number) => boolean): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (keep(i)) out.push(i);
  return Int32Array.from(out);
}

/** Out-of-sample probabilities of `rows` by StratifiedKFold(folds) over them, with C fixed. */
function crossValidate(p: Problem, rows: Int32Array, c: number, folds: number, out: Float64Array): void {
  const sub = Array.from(rows, (r) => p.labels[r]);
  const fold = stratifiedFolds(sub, folds);
  for (let f = 0; f < folds; f++) {
    const train = Int32Array.from(Array.from(rows).filter((_, i) => fold[i] !== f));
    const test = Int32Array.from(Array.from(rows).filter((_, i) => fold[i] === f));
    predictInto(fitLogistic(p.x, p.dim, p.labels, train, { c }), p.x, test, out, p.classes.length);
  }
}

function logLoss(probs: Float64Array, rows: Int32Array, labels: number[], k: number): number {
  let s = 0;
  for (const r of rows) s -= Math.log(Math.max(probs[r * k + labels[r]], 1e-15));
  return s / rows.length;
}

/** Outer StratifiedKFold(folds); C per outer fold by inner CV log-loss over GRID. */
function nestedProbe(p: Problem): { probs: Float64Array; chosen: number[] } {
  const n = p.labels.length;
  const k = p.classes.length;
  const probs = new Float64Array(n * k);
  const outer = stratifiedFolds(p.labels, p.folds);
  const chosen: number[] = [];
  for (let f = 0; f < p.folds; f++) {
    const train = indices(n, (i) => outer[i] !== f);
    const test = indices(n, (i) => outer[i] === f);
    const counts = new Map<number, number>();
    for (const r of train) counts.set(p.labels[r], (counts.get(p.labels[r]) ?? 0) + 1);
    const innerFolds = Math.min(FOLDS, Math.max(...counts.values()));
    let best = GRID[0];
    let bestLoss = Infinity;
    for (const c of GRID) {
      const inner = new Float64Array(n * k);
      crossValidate(p, train, c, innerFolds, inner);
      const loss = logLoss(inner, train, p.labels, k);
      if (loss < bestLoss) {
        bestLoss = loss;
        best = c;
      }
    }
    chosen.push(best);
    predictInto(fitLogistic(p.x, p.dim, p.labels, train, { c: best }), p.x, test, probs, k);
  }
  return { probs, chosen };
}

function describe(p: Problem, what: string, probs: Float64Array): string {
  const k = p.classes.length;
  const matrix = new ProbabilityMatrix(k);
  for (let i = 0; i < p.labels.length; i++) matrix.push(probs.subarray(i * k, (i + 1) * k));
  const m = computeMetrics({ classes: p.classes, labels: p.labels, probs: matrix });
  const issues = findLabelIssuesFloat64(p.classes, p.labels, probs);
  let tail = '';
  if (p.known && p.paths) {
    const flagged = new Set(issues.map((i) => p.paths![i.index]));
    const hits = [...p.known].filter((x) => flagged.has(x)).length;
    tail = ` | known found ${hits}/${p.known.size}, precision ${(flagged.size ? hits / flagged.size : 0).toFixed(3)}, recall ${(hits / p.known.size).toFixed(3)}`;
  }
  const all = indices(p.labels.length, () => true);
  return `${p.name} | ${what} | top-1 ${m.top1Accuracy.toFixed(3)} | balanced ${m.balancedAccuracy.toFixed(3)} | log-loss ${logLoss(probs, all, p.labels, k).toFixed(4)} | flagged ${issues.length}${tail}`;
}

function problems(): Problem[] {
  const jsonl = opt('--jsonl');
  if (jsonl) {
    const rows = fs.readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { path: string; embedding: number[] });
    const rel = rows.map((r) => r.path.split(/[\\/]/).slice(-2).join('/'));
    const classes = [...new Set(rel.map((r) => r.split('/')[0]))].sort();
    const labels = rel.map((r) => classes.indexOf(r.split('/')[0]));
    const known = opt('--known')
      ? new Set(fs.readFileSync(opt('--known')!, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.split('\t')[0].trim()))
      : undefined;
    return [{ name: jsonl, x: Float32Array.from(rows.flatMap((r) => r.embedding)), dim: rows[0].embedding.length, labels, classes, paths: rel, known, folds: FOLDS }];
  }
  const cases = JSON.parse(fs.readFileSync(opt('--cases')!, 'utf8')).cases.filter((c: { kind: string }) => c.kind === 'probe');
  return cases.map((c: { name: string; features: number[][]; labels: number[]; classes: string[]; c: number; folds: number }) => ({
    name: c.name,
    x: Float32Array.from(c.features.flat()),
    dim: c.features[0].length,
    labels: c.labels,
    classes: c.classes,
    givenC: c.c,
    folds: c.folds,
  }));
}

for (const p of problems()) {
  const n = p.labels.length;
  const all = indices(n, () => true);
  for (const c of GRID) {
    const probs = new Float64Array(n * p.classes.length);
    crossValidate(p, all, c, p.folds, probs);
    console.log(describe(p, `C = ${c}${c === p.givenC ? ' (the case\'s C)' : ''}`, probs));
  }
  const t = performance.now();
  const nested = nestedProbe(p);
  console.log(describe(p, `C by inner CV log-loss, chosen per fold ${nested.chosen.join(', ')} (${((performance.now() - t) / 1000).toFixed(1)} s)`, nested.probs));
}
