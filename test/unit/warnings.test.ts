import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import { computeMetrics } from '../../src/core/metrics';
import { computeWarnings, DEFAULT_WARNING_THRESHOLDS } from '../../src/core/warnings';
import { ClipLensError } from '../../src/core/errors';
import type { Metrics } from '../../src/core/report';

/**
 * Metrics of a synthetic model: `counts[c]` images of class c, of which `correct[c]` are predicted right; the others
 * are predicted as class (c + 1) % K. The true class always ranks second on a miss, so Recall@2 covers every image.
 */
function metricsOf(classes: string[], counts: number[], correct: number[], ks?: number[]): Metrics {
  const k = classes.length;
  const probs = new ProbabilityMatrix(k);
  const labels: number[] = [];
  counts.forEach((count, c) => {
    for (let i = 0; i < count; i++) {
      const winner = i < correct[c] ? c : (c + 1) % k;
      const second = winner === c ? (c + 1) % k : c;
      const row = new Array(k).fill(k > 2 ? 0.1 / (k - 2) : 0);
      row[winner] = k > 2 ? 0.6 : 0.7;
      row[second] = 0.3;
      probs.push(row);
      labels.push(c);
    }
  });
  return computeMetrics({ classes, labels, probs }, { ks });
}

test('the accuracy paradox: 98% top-1 accuracy, but the rare class fails', () => {
  const m = metricsOf(['car', 'fire truck'], [392, 8], [392, 1]);
  const w = computeWarnings({ metrics: m });
  const rare = w.find((x) => x.kind === 'rare-class-low-recall');
  assert.ok(rare);
  assert.equal(rare.message, "Top-1 accuracy is 98.3%, but 'fire truck' has recall 12.5% (1 of 8 images): not production-ready.");
  assert.equal(rare.class, 'fire truck');
  assert.equal(rare.severity, 'warning');
  assert.deepEqual(rare.numbers, { recall: 0.125, support: 8, correct: 1, supportFraction: 0.02, top1Accuracy: 0.9825, threshold: 0.5 });

  const imbalance = w.find((x) => x.kind === 'class-imbalance');
  assert.ok(imbalance);
  assert.equal(imbalance.numbers.ratio, 49);
  assert.equal(imbalance.numbers.balancedAccuracy, 0.5625);
  assert.match(imbalance.message, /'car' has 392 images, 'fire truck' 8 \(49x\)\. Top-1 accuracy 98\.3% vs balanced accuracy 56\.3%/);

  assert.deepEqual(w.map((x) => x.kind), ['rare-class-low-recall', 'class-imbalance', 'good-accuracy']);
});

test('zero-shot at chance with a judging predictor: the rare-class warnings follow its metrics, the paradox reads its accuracy', () => {
  const classes = ['a', 'b', 'c', 'rare1', 'rare2'];
  const counts = [300, 300, 300, 10, 10];
  // zero-shot: every class missed (the names mean nothing): both rare classes would be flagged
  const zs = metricsOf(classes, counts, [20, 20, 20, 0, 1]);
  const zsRare = computeWarnings({ metrics: zs }).filter((x) => x.kind === 'rare-class-low-recall');
  assert.deepEqual(zsRare.map((x) => x.class), ['rare1', 'rare2']);
  // the linear probe separates everything but rare2
  const probe = metricsOf(classes, counts, [300, 300, 300, 9, 2]);
  const w = computeWarnings({ metrics: zs, judge: { predictor: 'linear-probe', metrics: probe } });
  const rare = w.filter((x) => x.kind === 'rare-class-low-recall');
  assert.deepEqual(rare.map((x) => x.class), ['rare2']);
  assert.equal(rare[0].predictor, 'linear-probe');
  assert.equal(rare[0].message, "The linear probe's top-1 accuracy is 99%, but 'rare2' has linear probe recall 20% (2 of 10 images): not production-ready.");
  assert.equal(rare[0].numbers.top1Accuracy, probe.top1Accuracy);
  assert.equal(rare[0].numbers.recall, 0.2);
  // the other rules stay on the headline (zero-shot) metrics
  const low = w.find((x) => x.kind === 'low-accuracy');
  assert.ok(low && low.severity === 'error' && low.numbers.top1Accuracy === zs.top1Accuracy);
  // a judge that also fails overall: the class is named on its own (no false "but")
  const weak = metricsOf(classes, counts, [100, 100, 100, 1, 0]);
  const own = computeWarnings({ metrics: zs, judge: { predictor: 'knn', metrics: weak } }).filter((x) => x.kind === 'rare-class-low-recall');
  assert.deepEqual(own.map((x) => x.class), ['rare1', 'rare2']);
  assert.equal(own[0].message, "'rare1' is a rare class (10 of 920 images) with kNN recall 10% (1 of 10): not production-ready.");
  assert.equal(own[0].predictor, 'knn');
  // splits: each split's rare-class warnings follow the judge's metrics of that split; none without them
  const perSplit = computeWarnings({ metrics: zs, metricsBySplit: { val: zs, test: zs }, judge: { predictor: 'linear-probe', metrics: probe, metricsBySplit: { val: probe } } });
  assert.deepEqual(perSplit.filter((x) => x.kind === 'rare-class-low-recall').map((x) => `${x.split ?? ''}:${x.class}`), [':rare2', 'val:rare2']);
});

test('rare means <= 20 images or <= 2% of the dataset; thresholds can be changed', () => {
  // 'bike' has 30 of 1000 images (3%, > 20): not rare, even with recall 0.
  const m = metricsOf(['car', 'bus', 'bike'], [500, 470, 30], [500, 470, 0]);
  assert.equal(computeWarnings({ metrics: m }).filter((x) => x.kind === 'rare-class-low-recall').length, 0);
  const strict = computeWarnings({ metrics: m }, { rareClassMaxFraction: 0.05 });
  assert.deepEqual(strict.filter((x) => x.kind === 'rare-class-low-recall').map((x) => x.class), ['bike']);
  // recall exactly at the threshold is not flagged
  const half = metricsOf(['a', 'b'], [100, 10], [100, 5]);
  assert.equal(computeWarnings({ metrics: half }).filter((x) => x.kind === 'rare-class-low-recall').length, 0);
});

test('accuracy bands: error below 50%, fair warning below 70%, info from 70%', () => {
  const kinds = (correct: number) => {
    const w = computeWarnings({ metrics: metricsOf(['a', 'b', 'c', 'd'], [25, 25, 25, 25], [correct, correct, correct, correct]) });
    return w.filter((x) => x.kind === 'low-accuracy' || x.kind === 'good-accuracy').map((x) => `${x.kind}/${x.severity}`);
  };
  assert.deepEqual(kinds(12), ['low-accuracy/error']); // 48%
  assert.deepEqual(kinds(13), ['low-accuracy/warning']); // 52%
  assert.deepEqual(kinds(17), ['low-accuracy/warning']); // 68%
  assert.deepEqual(kinds(18), ['good-accuracy/info']); // 72%
  const low = computeWarnings({ metrics: metricsOf(['a', 'b', 'c', 'd'], [25, 25, 25, 25], [12, 12, 12, 12]) })[0];
  assert.equal(low.message, 'Top-1 accuracy is 48% (48 of 100 images): below 50%, the model gets most images wrong.');
});

test('low Recall@5 is flagged only when the metrics have K = 5', () => {
  const classes = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const counts = new Array(7).fill(10);
  // misses rank the true class second, so Recall@5 = 1: no warning; Recall@1 = 0.3 < 0.9 with k = 1
  const m = metricsOf(classes, counts, new Array(7).fill(3));
  assert.equal(m.recallAtK['5'], 1);
  assert.equal(computeWarnings({ metrics: m }).filter((x) => x.kind === 'low-recall-at-k').length, 0);
  const at1 = computeWarnings({ metrics: m }, { recallAtK: { k: 1, min: 0.9 } }).find((x) => x.kind === 'low-recall-at-k');
  assert.ok(at1);
  assert.equal(at1.message, "Recall@1 is 30%: for 70% of images the right class is not even among the model's 1 best guesses.");
  const few = metricsOf(['a', 'b', 'c'], [10, 10, 10], [3, 3, 3]);
  assert.equal(few.recallAtK['5'], undefined);
  assert.equal(computeWarnings({ metrics: few }).filter((x) => x.kind === 'low-recall-at-k').length, 0);
});

test('per-split metrics produce warnings tagged with the split; order is error, warning, info', () => {
  const overall = metricsOf(['a', 'b'], [100, 100], [90, 90]);
  const test = metricsOf(['a', 'b'], [20, 20], [8, 8]);
  const w = computeWarnings({ metrics: overall, metricsBySplit: { test } });
  assert.deepEqual(w.map((x) => [x.kind, x.severity, x.split]), [
    ['low-accuracy', 'error', 'test'],
    ['rare-class-low-recall', 'warning', 'test'],
    ['rare-class-low-recall', 'warning', 'test'],
    ['good-accuracy', 'info', undefined],
  ]);
  assert.match(w[0].message, /^In split 'test': Top-1 accuracy is 40% \(16 of 40 images\)/);
  const rank = { error: 0, warning: 1, info: 2 };
  for (let i = 1; i < w.length; i++) assert.ok(rank[w[i - 1].severity] <= rank[w[i].severity]);
});

test('invalid thresholds are a ClipLensError; defaults are the documented ones', () => {
  const m = metricsOf(['a', 'b'], [10, 10], [10, 10]);
  assert.throws(() => computeWarnings({ metrics: m }, { lowAccuracy: NaN }), ClipLensError);
  assert.throws(() => computeWarnings({ metrics: m }, { lowAccuracy: 0.9, goodAccuracy: 0.8 }), ClipLensError);
  assert.deepEqual(DEFAULT_WARNING_THRESHOLDS, {
    rareClassMaxFraction: 0.02,
    rareClassMaxSupport: 20,
    rareClassMinRecall: 0.5,
    imbalanceRatio: 10,
    lowAccuracy: 0.5,
    goodAccuracy: 0.7,
    recallAtK: { k: 5, min: 0.9 },
  });
});

test('a rare class on a model that fails everywhere: no "accuracy is high, but" sentence', () => {
  // 2 of 100 right overall, and the rare class gets 1 of 4: its recall (25%) is above the accuracy (2%).
  const m = metricsOf(['a', 'b', 'rare'], [48, 48, 4], [1, 0, 1]);
  const rare = computeWarnings({ metrics: m }).find((x) => x.kind === 'rare-class-low-recall');
  assert.ok(rare);
  assert.equal(rare.message, "'rare' is a rare class (4 of 100 images) with recall 25% (1 of 4): not production-ready.");
  assert.equal(rare.numbers.top1Accuracy, 0.02);
});
