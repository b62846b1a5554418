import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPredictors } from '../../src/core/predictors';
import { computeMetrics } from '../../src/core/metrics';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import { rng } from '../fixtures/rng';

/**
 * n samples per class; class c's embeddings sit around centre `centreOf(c)` (classes sharing a centre do not
 * separate); zero-shot puts `zsConfidence` on `zsGuess(c, i)`.
 */
function scenario(opts: {
  classes: number;
  perClass: number;
  centreOf?: (c: number) => number;
  zsGuess: (c: number, i: number) => number;
}) {
  const r = rng(21);
  const dim = 16;
  const k = opts.classes;
  const labels: number[] = [];
  const emb: number[] = [];
  const zs = new ProbabilityMatrix(k);
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < opts.perClass; i++) {
      labels.push(c);
      const centre = (opts.centreOf ?? ((x) => x))(c);
      for (let d = 0; d < dim; d++) emb.push((d === centre ? 3 : 0) + (r() - 0.5));
      const row = new Array(k).fill(0.2 / (k - 1));
      row[opts.zsGuess(c, i)] = 0.8;
      zs.push(row);
    }
  }
  const classes = Array.from({ length: k }, (_, c) => `class_${c}`);
  const zeroShotMetrics = computeMetrics({ classes, labels, probs: zs });
  return { classes, labels, embeddings: Float32Array.from(emb), dim, zeroShot: zs, zeroShotMetrics };
}

test('auto: zero-shot at chance -> the linear probe finds the label issues, with the at-chance warning', async () => {
  const s = scenario({ classes: 4, perClass: 12, zsGuess: (_c, i) => i % 4 === 0 ? 1 : (i * 7) % 4 });
  // a wrong label: row 3 (class 0) is moved into class 2's cluster
  for (let d = 0; d < s.dim; d++) s.embeddings[3 * s.dim + d] = s.embeddings[2 * 12 * s.dim + d];
  const out = await runPredictors(s);
  assert.equal(out.report.used, 'linear-probe');
  assert.match(out.report.reason, /near chance/);
  assert.deepEqual(out.labelIssues.map((x) => x.index), [3]);
  assert.equal(out.labelIssues[0].suggested, 'class_2');
  assert.deepEqual(out.warnings.map((w) => w.kind), ['zero-shot-at-chance']);
  assert.match(out.warnings[0].message, /the class names mean nothing to CLIP: label errors come from the linear probe|the class names mean nothing to CLIP/);
  assert.equal(out.report.perClass.length, 4);
  assert.ok(out.report.perClass.every((c) => c.probeRecall !== null));
});

test('zero-shot at chance: the judging predictor (probe or kNN) is handed back for the rare-class warnings, with the at-chance warning', async () => {
  const s = scenario({ classes: 4, perClass: 12, zsGuess: (_c, i) => i % 4 === 0 ? 1 : (i * 7) % 4 });
  const auto = await runPredictors(s);
  assert.equal(auto.judge?.predictor, 'linear-probe');
  assert.equal(auto.judge.probs.length, 48);
  assert.equal(auto.judge.metrics.balancedAccuracy, auto.report.linearProbe!.balancedAccuracy);
  const knn = await runPredictors({ ...s, requested: 'knn', k: 5 });
  assert.equal(knn.judge?.predictor, 'knn');
  assert.equal(knn.judge.metrics.balancedAccuracy, knn.report.knn!.balancedAccuracy);
  assert.deepEqual(knn.warnings.map((w) => w.kind), ['zero-shot-at-chance']);
  assert.match(knn.warnings[0].message, /the class names mean nothing to CLIP\. Label errors and rare-class warnings come from kNN \(balanced accuracy/);
  assert.equal(knn.warnings[0].numbers.knnBalancedAccuracy, knn.report.knn!.balancedAccuracy);
  // zero-shot not at chance: no judge, zero-shot's metrics give the rare-class warnings
  const good = scenario({ classes: 4, perClass: 12, zsGuess: (c) => c });
  assert.equal((await runPredictors(good)).judge, undefined);
  assert.equal((await runPredictors({ ...good, requested: 'knn', k: 5 })).judge, undefined);
  assert.equal((await runPredictors({ ...good, requested: 'linear-probe' })).judge, undefined);
});

test('auto: zero-shot good -> zero-shot decides; a class whose prompt fails gets prompt-fails', async () => {
  // class 3 is always taken for class 0 by zero-shot, the others are right
  const s = scenario({ classes: 4, perClass: 12, zsGuess: (c) => (c === 3 ? 0 : c) });
  const out = await runPredictors(s);
  assert.equal(out.report.used, 'zero-shot');
  assert.ok(out.report.linearProbe && out.report.linearProbe.balancedAccuracy > 0.95);
  const w = out.warnings.filter((x) => x.kind === 'prompt-fails');
  assert.deepEqual(w.map((x) => x.class), ['class_3']);
  assert.match(w[0].message, /^CLIP separates 'class_3' well \(probe recall 100%\) but the prompt fails \(zero-shot recall 0%\): try another name or prompt\.$/);
});

test('classes whose images do not separate, for zero-shot nor the probe, get classes-do-not-separate naming the other class', async () => {
  // classes 1, 2 and 3 share one cluster; zero-shot mixes them too (recall 1/3 each)
  const s = scenario({ classes: 5, perClass: 12, centreOf: (c) => (c >= 1 && c <= 3 ? 1 : c), zsGuess: (c, i) => (c >= 1 && c <= 3 ? 1 + ((c + i) % 3) : c) });
  const out = await runPredictors(s);
  assert.equal(out.report.used, 'zero-shot');
  const w = out.warnings.filter((x) => x.kind === 'classes-do-not-separate');
  assert.deepEqual(w.map((x) => x.class), ['class_1', 'class_2', 'class_3']);
  assert.match(w[0].message, /^The images of 'class_1' and 'class_[23]' do not separate \(probe recall .*\): more data or a bigger model\.$/);
  assert.ok(!out.warnings.some((x) => x.class === 'class_0' || x.class === 'class_4'));
});

test('explicit choices: zero-shot runs no probe; knn reports k; linear-probe is used even when zero-shot is good', async () => {
  const s = scenario({ classes: 3, perClass: 8, zsGuess: (c) => c });
  const zs = await runPredictors({ ...s, requested: 'zero-shot' });
  assert.equal(zs.report.used, 'zero-shot');
  assert.equal(zs.report.linearProbe, undefined);
  assert.ok(zs.report.perClass.every((c) => c.probeRecall === null));
  const knn = await runPredictors({ ...s, requested: 'knn', k: 5 });
  assert.equal(knn.report.used, 'knn');
  assert.equal(knn.report.knn?.k, 5);
  const lp = await runPredictors({ ...s, requested: 'linear-probe' });
  assert.equal(lp.report.used, 'linear-probe');
  assert.equal(lp.report.reason, 'requested');
});

test('few samples: folds shrink to the largest class; no class with 2 samples falls back to zero-shot', async () => {
  const s = scenario({ classes: 3, perClass: 3, zsGuess: (c) => c });
  const out = await runPredictors(s);
  assert.equal(out.report.linearProbe?.folds, 3);
  const one = scenario({ classes: 3, perClass: 1, zsGuess: (c) => c });
  const fallback = await runPredictors(one);
  assert.equal(fallback.report.used, 'zero-shot');
  assert.match(fallback.report.reason, /cannot be cross-validated/);
});

test('auto above AUTO_PROBE_MAX_SAMPLES keeps zero-shot and says why; the evaluation then keeps no embeddings', async () => {
  const { AUTO_PROBE_MAX_SAMPLES, predictorNeedsEmbeddings } = await import('../../src/core/predictors.js');
  const n = AUTO_PROBE_MAX_SAMPLES + 1;
  const zs = new ProbabilityMatrix(2);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(i % 2);
    zs.push(i % 2 ? [0.1, 0.9] : [0.9, 0.1]);
  }
  const classes = ['a', 'b'];
  const out = await runPredictors({ classes, labels, embeddings: new Float32Array(n), dim: 1, zeroShot: zs, zeroShotMetrics: computeMetrics({ classes, labels, probs: zs }) });
  assert.equal(out.report.used, 'zero-shot');
  assert.match(out.report.reason, /auto does not run the linear probe/);
  assert.equal(predictorNeedsEmbeddings('auto', n), false);
  assert.equal(predictorNeedsEmbeddings('auto', n - 1), true);
  assert.equal(predictorNeedsEmbeddings('knn', 10 * n), true);
  assert.equal(predictorNeedsEmbeddings('zero-shot', 10), false);
});
