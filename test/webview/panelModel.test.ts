/** DOM-free parts of the panel: saved-state restore, the page's HTML/CSP, and the report fixture's consistency. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EvalReport } from '../../src/core/report';
import { contentSecurityPolicy, panelHtml } from '../../src/extension/panelHtml';
import { defaultState, restoreState } from '../../webview/state';
import { computeMetrics, shapesReport } from '../fixtures/report/generate';

test('restoreState keeps valid fields and replaces anything malformed with defaults', () => {
  assert.deepEqual(restoreState(undefined), defaultState());
  assert.deepEqual(restoreState({ version: 2, tab: 'issues' }), defaultState(), 'unknown versions start fresh');
  const saved = {
    ...defaultState(),
    reportRef: 'r.json',
    reportId: '/data/x@2025-01-01T00:00:00Z',
    tab: 'issues',
    split: 'val',
    matrix: { mode: 'recall', order: 'confusion', cellSize: 24, scrollX: 3, scrollY: 4, selected: { trueClass: 'a', predictedClass: 'b' } },
    table: { sortKey: 'f1', descending: true, filter: 'red', warningsOnly: true, selectedClass: 'red_star', scrollTop: 120 },
    resolved: { 'x.png': { action: 'fixed', message: 'Moved' } },
  };
  assert.deepEqual(restoreState(JSON.parse(JSON.stringify(saved))), saved);
  const bad = restoreState({
    version: 1,
    tab: 'settings',
    matrix: { mode: 'log', cellSize: -5, scrollX: 'x', selected: { trueClass: 1 } },
    table: { sortKey: 'magic', filter: 42 },
    resolved: { 'a.png': { action: 'deleted', message: 'x' }, 'b.png': { action: 'ignored', message: 'Ignored' } },
  });
  assert.equal(bad.tab, 'matrix');
  assert.deepEqual(bad.matrix, defaultState().matrix);
  assert.equal(bad.table.sortKey, 'recall');
  assert.equal(bad.table.filter, '');
  assert.deepEqual(bad.resolved, { 'b.png': { action: 'ignored', message: 'Ignored' } });
});

test('panelHtml: one nonce-tagged script, a stylesheet, a CSP without inline code or remote sources', () => {
  const html = panelHtml({ cspSource: 'vscode-webview://abc', nonce: 'bm9uY2Utbm9uY2Utbm9uY2U', scriptUri: 'vscode-webview://abc/dist/webview.js', styleUri: 'vscode-webview://abc/media/panel.css' });
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  assert.match(html, /<script nonce="bm9uY2Utbm9uY2Utbm9uY2U" src="vscode-webview:\/\/abc\/dist\/webview.js"><\/script>/);
  assert.doesNotMatch(html, /style="/);
  assert.equal(
    contentSecurityPolicy('vscode-webview://abc', 'n0nce'),
    "default-src 'none'; img-src vscode-webview://abc data:; style-src vscode-webview://abc; script-src 'nonce-n0nce'; base-uri 'none'; form-action 'none'",
  );
  assert.throws(() => panelHtml({ cspSource: 'x', nonce: 'short', scriptUri: 'a', styleUri: 'b' }), /nonce/);
  assert.match(panelHtml({ cspSource: 'x', nonce: 'bm9uY2Utbm9uY2Utbm9uY2U', scriptUri: 'a"><script>', styleUri: 'b' }), /a&#34;&#62;&#60;script&#62;/);
});

test('the committed shapes fixture is what the generator makes, and its metrics agree with its samples', () => {
  const file = path.join(__dirname, '../fixtures/report/shapes-report.json');
  const committed = JSON.parse(fs.readFileSync(file, 'utf8')) as EvalReport;
  assert.deepEqual(committed, JSON.parse(JSON.stringify(shapesReport().report)), 'regenerate with: node --import tsx test/fixtures/report/generate.ts');
  assert.deepEqual(computeMetrics(committed.dataset.classes, committed.samples!, null).confusionMatrix, committed.metrics!.confusionMatrix);
  const m = committed.metrics!;
  let n = 0;
  for (const row of m.confusionMatrix) for (const v of row) n += v;
  assert.equal(n, m.n);
  assert.equal(m.n, committed.dataset.counts.evaluated);
  // What the fixture is for: a rare class with low recall, label issues, a duplicate, splits.
  const rare = committed.warnings.find((w) => w.kind === 'rare-class-low-recall')!;
  assert.equal(rare.class, 'yellow_star');
  assert.ok(m.perClass.find((c) => c.class === 'yellow_star')!.recall < 0.2 && m.top1Accuracy > 0.9);
  assert.ok(committed.warnings.some((w) => w.kind === 'duplicate' && w.paths?.length === 2));
  assert.ok(committed.labelIssues.length >= 10);
  assert.deepEqual(Object.keys(committed.metricsBySplit!), ['train', 'val']);
  assert.equal(m.classes.length, 16);
  assert.equal(new Set(committed.samples!.map((s) => s.path)).size, committed.samples!.length, 'sample paths are unique');
  for (const s of committed.samples!) if (committed.dataset.format !== 'label-file') assert.equal(s.path.split('/').at(-2), s.label, s.path);
});
