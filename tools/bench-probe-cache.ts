/**
 * The linear probe's share of a re-run under `--predictor auto` (docs/benchmarks.md): runPredictors on N x dim
 * clustered features (default 1,024 x 512, 16 classes; zero-shot at chance so auto uses the probe), first with an
 * empty probe cache (the probe is fitted), then again on the same rows (its probabilities come from the cache), then
 * with `--predictor zero-shot` (no probe at all). Each timed `rounds` times (default 3).
 *
 *   node --import tsx tools/bench-probe-cache.ts [n=1024] [dim=512] [classes=16] [rounds=3]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runPredictors } from '../src/core/predictors';
import { computeMetrics } from '../src/core/metrics';
import { ProbabilityMatrix } from '../src/core/probabilities';
import { seededRandom } from './seededRandom';

const [n, dim, classes, rounds] = [1024, 512, 16, 3].map((d, i) => Number(process.argv[2 + i] ?? d));
const { normal } = seededRandom(7);

async function main(): Promise<void> {
  const centres = Float32Array.from({ length: classes * dim }, normal);
  const embeddings = new Float32Array(n * dim);
  const labels: number[] = [];
  const zeroShot = new ProbabilityMatrix(classes);
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    labels.push(c);
    for (let d = 0; d < dim; d++) embeddings[i * dim + d] = centres[c * dim + d] + 2 * normal();
    zeroShot.push(new Float64Array(classes).fill(1 / classes));
  }
  const names = Array.from({ length: classes }, (_, j) => `c${j}`);
  const input = { classes: names, labels, embeddings, dim, zeroShot, zeroShotMetrics: computeMetrics({ classes: names, labels, probs: zeroShot }) };
  console.log(`${n} x ${dim}, ${classes} classes; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (let r = 1; r <= rounds; r++) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-probe-cache-bench-'));
    try {
      const time = async (extra: object) => {
        const t = performance.now();
        const out = await runPredictors({ ...input, cacheRoot: root, ...extra });
        return { ms: performance.now() - t, fromCache: out.report.linearProbe?.fromCache };
      };
      const fit = await time({});
      const cached = await time({});
      const zs = await time({ requested: 'zero-shot' });
      console.log(`round ${r}: auto, probe fitted ${fit.ms.toFixed(0)} ms; auto, probe from the cache ${cached.ms.toFixed(0)} ms (fromCache ${cached.fromCache}); zero-shot ${zs.ms.toFixed(0)} ms`);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
