import { readFileSync } from 'node:fs';
import { crossValidatedProbeFast } from '../src/core/linearProbe';
const cases = JSON.parse(readFileSync('/work/shared/probe-reference/cases.json', 'utf8')).cases.filter((c: any) => c.kind === 'probe');
(async () => {
  for (const c of cases) {
    const dim = c.features[0].length, k = c.classes.length, x = Float32Array.from(c.features.flat());
    const worst = (p: Float64Array) => { let w = 0; c.expected.pred_probs.forEach((row: number[], i: number) => row.forEach((v, j) => (w = Math.max(w, Math.abs(v - p[i * k + j]))))); return w; };
    for (const engine of ['js', 'onnx'] as const) for (const warmStart of [false, true]) {
      const b = await crossValidatedProbeFast(x, dim, c.labels, k, { folds: c.folds, c: c.c, engine, warmStart });
      console.log(`${c.name} ${engine} warm ${warmStart}: ${worst(b.probs).toExponential(2)}, evals ${b.fits.map((f) => f.evaluations).join(' ')}`);
    }
  }
})();
