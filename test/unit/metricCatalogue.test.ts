/**
 * One metric catalogue (core/metricCatalogue.ts): the bands follow the user's warning thresholds recorded in the
 * report, and the HTML export, the CLI summary and the status bar (and the panel, through the same functions) judge a
 * number the same way. The CLI summary used to hard-code 0.7/0.5 and Recall@5 whatever the thresholds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatSummary } from '../../src/cli/summary';
import {
  HEADLINE_METRICS,
  METRIC_BANDS,
  headlineMetrics,
  metricBand,
  metricBands,
  reportBands,
} from '../../src/core/metricCatalogue';
import type { EvalReport } from '../../src/core/report';
import { htmlReport } from '../../src/core/reportExport';
import { DEFAULT_WARNING_THRESHOLDS, effectiveWarningThresholds } from '../../src/core/warnings';
import { statusSummary, statusTooltipLines } from '../../src/extension/format';

const SHAPES = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/report/shapes-report.json'), 'utf8')) as EvalReport;

test('default bands are the warnings defaults: accuracy good from 70%, poor below 50%; Recall@K good from 90%, poor below 70%', () => {
  assert.deepEqual(METRIC_BANDS, { accuracy: { good: 0.7, poor: 0.5 }, recallAtK: { good: 0.9, poor: 0.7 } });
  assert.deepEqual(metricBands(DEFAULT_WARNING_THRESHOLDS), METRIC_BANDS);
  assert.deepEqual(reportBands({}), METRIC_BANDS, 'a report written before thresholds were recorded');
  assert.deepEqual(metricBands({ goodAccuracy: 0.9, lowAccuracy: 0.8, recallAtK: { k: 3, min: 0.95 } }), {
    accuracy: { good: 0.9, poor: 0.8 },
    recallAtK: { good: 0.95, poor: 0.7 },
  });
  // A Recall@K minimum below the usual poor line: nothing at or above the minimum is poor.
  assert.deepEqual(metricBands({ recallAtK: { k: 5, min: 0.6 } }).recallAtK, { good: 0.6, poor: 0.6 });
  assert.equal(metricBand('accuracy', 0.7), 'good');
  assert.equal(metricBand('accuracy', 0.69), 'fair');
  assert.equal(metricBand('accuracy', 0.49), 'poor');
});

test('the catalogue: key, label, help, value, band and format of each headline metric', () => {
  assert.deepEqual(HEADLINE_METRICS.map((d) => d.key), ['top1Accuracy', 'balancedAccuracy', 'recallAtK', 'macroF1']);
  const h = headlineMetrics(SHAPES, SHAPES.metrics!);
  assert.deepEqual(
    h.map((x) => [x.key, x.label, x.text, x.bandKind, x.band]),
    [
      ['top1Accuracy', 'Top-1 accuracy', '93.3%', 'accuracy', 'good'],
      ['balancedAccuracy', 'Balanced accuracy', '88.9%', 'accuracy', 'good'],
      ['recallAtK', 'Recall@5', '98.6%', 'recallAtK', 'good'],
      ['macroF1', 'Macro F1', '89.0%', 'accuracy', 'good'],
    ],
  );
  for (const x of h) assert.ok(x.help.length > 10, x.key);
  // Recall@1 is judged as an accuracy.
  const top1Only = headlineMetrics({ topK: 1 }, { ...SHAPES.metrics!, recallAtK: { 1: 0.8 } });
  assert.deepEqual(top1Only.find((x) => x.key === 'recallAtK')?.bandKind, 'accuracy');
  assert.equal(headlineMetrics(SHAPES, { ...SHAPES.metrics!, recallAtK: {} }).length, 3, 'no Recall@K measured');
});

test("every view judges with the report's thresholds: HTML export, CLI summary, status bar", () => {
  // 93.3% top-1 is good by default; with goodAccuracy 0.97 / lowAccuracy 0.95 it is poor, and Recall@3 (96.2%) is
  // below the user's minimum of 0.97 for K = 3.
  const strict: EvalReport = { ...SHAPES, thresholds: effectiveWarningThresholds({ goodAccuracy: 0.97, lowAccuracy: 0.95, recallAtK: { k: 3, min: 0.97 } }) };
  const bands = reportBands(strict);
  assert.equal(headlineMetrics(strict, strict.metrics!)[0]!.band, 'poor');

  const html = htmlReport(strict);
  const cards = [...html.matchAll(/<div class="card (good|fair|poor)"><div class="l">([^<]+)<\/div>/g)].map((m) => `${m[2]}:${m[1]}`);
  assert.deepEqual(cards, headlineMetrics(strict, strict.metrics!).map((x) => `${x.label}:${x.band}`));
  assert.deepEqual(cards.slice(0, 2), ['Top-1 accuracy:poor', 'Balanced accuracy:poor']);
  const defaultCards = [...htmlReport(SHAPES).matchAll(/<div class="card (good|fair|poor)">/g)].map((m) => m[1]);
  assert.deepEqual(defaultCards, ['good', 'good', 'good', 'good']);

  const cli = formatSummary(strict);
  assert.match(cli, /Top-1 accuracy\s+93\.3%\s+\(poor: < 95%\)/);
  assert.match(cli, /\(Recall@3 fair: should reach 97%\)/);
  const cliDefault = formatSummary(SHAPES);
  assert.match(cliDefault, /Top-1 accuracy\s+93\.3%\s+\(good: >= 70%\)/);
  assert.match(cliDefault, /\(Recall@5 good: >= 90%\)/);

  assert.equal(statusSummary(strict, null, false, 'shapes').top1Band, 'poor');
  assert.equal(statusSummary(SHAPES, null, false, 'shapes').top1Band, 'good');
  assert.match(statusTooltipLines(strict, null, { datasetName: 'shapes', stale: false }).join('\n'), /Top-1 accuracy \*\*93\.3%\*\* \(poor\)/);
  assert.equal(bands.accuracy.poor, 0.95);
});
