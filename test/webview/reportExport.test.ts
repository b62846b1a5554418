import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EvalReport } from '../../src/core/report';
import { csvText, escapeHtml, htmlReport, jsonReport, jsonReportChunks, perClassCsv, topConfusions } from '../../src/core/reportExport';
import { headlineK, metricBand } from '../../src/core/metricCatalogue';
import { sortWarnings } from '../../src/core/warnings';

const fixture = (): EvalReport => JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/report/shapes-report.json'), 'utf8'));

test('metric bands: top-1 >= 70% good, < 50% poor; Recall@K >= 90% good', () => {
  assert.equal(metricBand('accuracy', 0.7), 'good');
  assert.equal(metricBand('accuracy', 0.6999), 'fair');
  assert.equal(metricBand('accuracy', 0.5), 'fair');
  assert.equal(metricBand('accuracy', 0.4999), 'poor');
  assert.equal(metricBand('recallAtK', 0.9), 'good');
  assert.equal(metricBand('recallAtK', 0.85), 'fair');
  assert.equal(metricBand('recallAtK', 0.5), 'poor');
});

test('headlineK prefers the report top-K, else the largest K measured', () => {
  assert.equal(headlineK({ topK: 5 }, { recallAtK: { '1': 1, '3': 1, '5': 1 } }), '5');
  assert.equal(headlineK({ topK: 10 }, { recallAtK: { '1': 1, '3': 1 } }), '3');
  assert.equal(headlineK({ topK: 5 }, { recallAtK: {} }), null);
});

test('JSON export is the report, pretty-printed', () => {
  const r = fixture();
  const text = jsonReport(r);
  assert.deepEqual(JSON.parse(text), r);
  assert.ok(text.endsWith('}\n'));
  assert.match(text, /^\{\n  "schemaVersion": 2,/);
});

test('CSV export: header, one row per class, numbers, RFC 4180 quoting, formula guard', () => {
  const r = fixture();
  const lines = perClassCsv(r).split('\r\n');
  assert.equal(lines[0], 'class,support,predicted,precision,recall,f1,recall@1,recall@3,recall@5,average_precision');
  assert.equal(lines.length, r.metrics!.perClass.length + 2); // + header + trailing empty
  const star = r.metrics!.perClass.find((c) => c.class === 'yellow_star')!;
  const row = lines.find((l) => l.startsWith('yellow_star,'))!.split(',');
  assert.deepEqual(row.slice(0, 3), ['yellow_star', String(star.support), String(star.predicted)]);
  assert.equal(Number(row[4]), star.recall);
  assert.equal(Number(row[9]), star.averagePrecision);

  assert.equal(csvText('plain'), 'plain');
  assert.equal(csvText('a,b'), '"a,b"');
  assert.equal(csvText('say "hi"'), '"say ""hi"""');
  assert.equal(csvText('two\nlines'), '"two\nlines"');
  assert.equal(csvText('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  assert.equal(csvText('@cmd'), "'@cmd");
  assert.equal(csvText('-1'), '-1');
  assert.equal(csvText('-x'), "'-x");

  const val = perClassCsv(r, 'val').split('\r\n');
  assert.equal(Number(val.find((l) => l.startsWith('yellow_star,'))!.split(',')[1]), r.metricsBySplit!.val.perClass.find((c) => c.class === 'yellow_star')!.support);
  assert.throws(() => perClassCsv(r, 'nope'), /No metrics for split 'nope'/);
});

test('CSV and HTML exports carry the probe recall the class table shows, when the linear probe ran', () => {
  const r = fixture();
  const probeOf = (name: string) => (name === 'yellow_star' ? 0.25 : 0.875);
  r.predictor = {
    requested: 'auto',
    used: 'linear-probe',
    reason: 'test',
    zeroShot: { top1Accuracy: r.metrics!.top1Accuracy, balancedAccuracy: r.metrics!.balancedAccuracy },
    perClass: r.metrics!.perClass.map((c) => ({ class: c.class, support: c.support, zeroShotRecall: c.recall, probeRecall: probeOf(c.class) })),
  };
  const lines = perClassCsv(r).split('\r\n');
  assert.equal(lines[0], 'class,support,predicted,precision,recall,probe_recall,f1,recall@1,recall@3,recall@5,average_precision');
  const star = r.metrics!.perClass.find((c) => c.class === 'yellow_star')!;
  const row = lines.find((l) => l.startsWith('yellow_star,'))!.split(',');
  assert.equal(Number(row[4]), star.recall);
  assert.equal(Number(row[5]), 0.25);
  assert.equal(Number(row[6]), star.f1);
  assert.equal(Number(row[10]), star.averagePrecision);
  // A split's table shows the same probe recall (the probe is cross-validated over all evaluated images).
  const val = perClassCsv(r, 'val').split('\r\n');
  assert.equal(val[0], lines[0]);
  assert.equal(Number(val.find((l) => l.startsWith('yellow_star,'))!.split(',')[5]), 0.25);
  const html = htmlReport(r);
  assert.match(html, /<th>Precision<\/th><th>Zero-shot recall<\/th><th>Probe recall<\/th><th>F1<\/th>/);
  assert.match(html, /<td class="text">yellow_star<\/td>(<td[^>]*>[^<]*<\/td>){4}<td class="poor">25\.0%<\/td>/);
  // Zero-shot only: no probe column.
  r.predictor.perClass = r.predictor.perClass.map((c) => ({ ...c, probeRecall: null }));
  assert.doesNotMatch(perClassCsv(r), /probe_recall/);
  assert.doesNotMatch(htmlReport(r), /Probe recall/);
});

test('HTML export is self-contained, escaped and complete', () => {
  const r = fixture();
  r.metrics!.classes[0] = r.metrics!.perClass[0].class = '<b>bad</b>';
  const png = 'data:image/png;base64,iVBORw0KGgo=';
  const html = htmlReport(r, { matrixPng: png });
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">/);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, 'no remote resources');
  assert.doesNotMatch(html, /<b>bad<\/b>/);
  assert.match(html, /&lt;b&gt;bad&lt;\/b&gt;/);
  assert.ok(html.includes(`<img class="matrix" alt="Confusion matrix" src="${png}">`));
  assert.match(html, /Top-1 accuracy<\/div><div class="v">93\.3%<\/div><div class="band good">good/);
  // Warnings: errors first (the rare class), every warning present.
  const firstWarning = html.indexOf('<li class="error">');
  assert.ok(firstWarning > 0 && firstWarning < html.indexOf('<li class="warning">'));
  assert.match(html.slice(firstWarning), /^<li class="error"><span class="sev">error<\/span>Rare class &#39;yellow_star&#39;/);
  for (const issue of r.labelIssues) assert.ok(html.includes(escapeHtml(issue.path!)), issue.path);
  assert.equal((html.match(/<table class="matrix">/g) ?? []).length, 1, '16 classes: the matrix is also a table');
  assert.equal((htmlReport(r, { maxTableMatrixClasses: 10 }).match(/<table class="matrix">/g) ?? []).length, 0);
  assert.doesNotMatch(htmlReport(r, { matrixPng: 'javascript:alert(1)' }), /javascript:/, 'only PNG data URLs are embedded');
});

test('HTML export of a report without metrics', () => {
  const r = fixture();
  r.metrics = null;
  const html = htmlReport(r);
  assert.match(html, /No sample could be evaluated/);
});

test('topConfusions and sortWarnings', () => {
  const r = fixture();
  const top = topConfusions(r.metrics!, 3);
  assert.equal(top.length, 3);
  const cm = r.metrics!.confusionMatrix;
  const classes = r.metrics!.classes;
  const all = cm.flatMap((row, i) => row.map((v, j) => (i === j ? 0 : v))).sort((a, b) => b - a);
  assert.deepEqual(top.map((c) => c.count), all.slice(0, 3));
  for (const c of top) assert.equal(cm[classes.indexOf(c.trueClass)][classes.indexOf(c.predictedClass)], c.count);
  const sorted = sortWarnings([
    { kind: 'duplicate', severity: 'warning', message: 'd', numbers: {} },
    { kind: 'good-accuracy', severity: 'info', message: 'i', numbers: {} },
    { kind: 'class-imbalance', severity: 'error', message: 'x', numbers: {} },
    { kind: 'rare-class-low-recall', severity: 'error', message: 'r', numbers: {} },
  ]);
  assert.deepEqual(sorted.map((w) => w.message), ['r', 'x', 'd', 'i']);
});

test('jsonReportChunks joins to exactly JSON.stringify(report, null, indent), big arrays streamed a block at a time', () => {
  const report = fixture();
  const base = report.samples!;
  const big = { ...report, samples: Array.from({ length: 5000 }, (_, i) => ({ ...base[i % base.length], path: `x/${i}.png` })) } as EvalReport;
  for (const r of [report, big]) {
    for (const indent of [1, 2]) {
      const chunks = [...jsonReportChunks(r, indent)];
      assert.equal(chunks.join(''), JSON.stringify(r, null, indent));
    }
  }
  // Blocks of 1,024 samples: no piece holds the whole samples array.
  const chunks = [...jsonReportChunks(big, 1)];
  assert.ok(chunks.length >= 5, `${chunks.length} chunks`);
  assert.ok(Math.max(...chunks.map((c) => c.length)) < JSON.stringify(big.samples!, null, 1).length / 4);
  // Empty arrays, undefined members and strings holding line breaks.
  const odd = { ...report, samples: [], labelIssues: [], errors: [{ code: 'x', message: 'two\nlines', file: 'a\nb.csv' }, undefined], metricsBySplit: undefined } as unknown as EvalReport;
  assert.equal([...jsonReportChunks(odd, 1)].join(''), JSON.stringify(odd, null, 1));
  assert.equal([...jsonReportChunks({} as EvalReport, 1)].join(''), JSON.stringify({}, null, 1));
});
