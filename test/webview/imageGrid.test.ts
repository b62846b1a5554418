/**
 * The commit-gate section and the image grid (webview/gate.ts, webview/imageGrid.ts) in headless Chromium, and the
 * grid's pure logic (webview/gridModel.ts): sources, order, virtualisation, selection by mouse and keyboard, and
 * bulk actions sent as one message. Screenshots: out/screenshots/ (docs/images/ with UPDATE_SCREENSHOTS=1).
 */
import './fakeVscode'; // first: lets src/extension/reportPanel.ts load outside VS Code
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { evaluateGate } from '../../src/core/gate';
import { toPanelReport } from '../../src/extension/reportPanel';
import type { PanelToHost } from '../../src/core/panelProtocol';
import type { EvalReport } from '../../src/core/report';
import { clickSelect, emptySelection, keySelect, sourceOptions, visibleRows, labelScore } from '../../webview/gridModel';
import { sortIndices, sourceIndices } from '../../src/core/panelSamples';
import { ReportModel } from '../../webview/model';
import { shapesReport } from '../fixtures/report/generate';
import { CHROMIUM, FakeHost, ROOT, buildWebview, launchChromium, screenshotPath, tmpDir } from './harness';

const FIXTURE = path.join(ROOT, 'test/fixtures/report/shapes-report.json');
const fixture = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as EvalReport;
const fixtureSamples = fixture.samples!;
const panelModel = (split: string | null = null) => {
  const p = toPanelReport(fixture);
  return new ReportModel(p.report, split, p.samples);
};

test('gridModel: sources list the label issues, each class and the confusions (largest first), with their images', () => {
  const model = panelModel();
  const opts = sourceOptions(model);
  assert.equal(opts[0]!.value, 'issues');
  assert.equal(opts[0]!.count, fixture.labelIssues.length);
  const star = opts.find((o) => o.value === 'class:yellow_star')!;
  assert.equal(star.count, fixtureSamples.filter((s) => s.label === 'yellow_star' && !s.error).length);
  const cells = opts.filter((o) => o.source.kind === 'cell');
  assert.ok(cells.length > 0);
  for (let i = 1; i < cells.length; i++) assert.ok(cells[i - 1]!.count >= cells[i]!.count, 'largest confusions first');
  const top = cells[0]!;
  const src = top.source as { kind: 'cell'; cell: { trueClass: string; predictedClass: string } };
  const expected = fixtureSamples.filter((s) => s.label === src.cell.trueClass && s.predicted[0]?.class === src.cell.predictedClass).map((s) => s.path).sort();
  assert.deepEqual(sourceIndices(fixture, top.source, null).map((i: number) => fixtureSamples[i]!.path).sort(), expected);
});

test('gridModel: order by label score (lowest first), top score (highest first) or path; stable', () => {
  const model = panelModel();
  const idx = sourceIndices(fixture, { kind: 'class', class: 'yellow_star' }, null);
  const byLabel = sortIndices(fixture, idx, 'labelScore').map((i) => labelScore(fixtureSamples[i]!, model.classes));
  assert.deepEqual(byLabel, [...byLabel].sort((a, b) => a - b));
  const byTop = sortIndices(fixture, idx, 'topScore').map((i: number) => fixtureSamples[i]!.predicted[0]?.score ?? 0);
  assert.deepEqual(byTop, [...byTop].sort((a, b) => b - a));
  const byPath = sortIndices(fixture, idx, 'path').map((i: number) => fixtureSamples[i]!.path);
  assert.deepEqual(byPath, [...byPath].sort());
});

test('gridModel: virtual rows and selection by click and key', () => {
  assert.deepEqual(visibleRows(0, 600, 184, 100), { first: 0, end: 6 });
  assert.deepEqual(visibleRows(1840, 600, 184, 100), { first: 8, end: 16 });
  assert.deepEqual(visibleRows(0, 600, 184, 0), { first: 0, end: 0 });
  let sel = clickSelect(emptySelection(), 3, { toggle: false, range: false });
  assert.deepEqual([...sel.selected], [3]);
  sel = clickSelect(sel, 6, { toggle: false, range: true });
  assert.deepEqual([...sel.selected].sort((a, b) => a - b), [3, 4, 5, 6]);
  sel = clickSelect(sel, 4, { toggle: true, range: false });
  assert.deepEqual([...sel.selected].sort((a, b) => a - b), [3, 5, 6]);
  // keyboard: 5 columns, 20 tiles
  let k = keySelect(emptySelection(), 'ArrowDown', { shift: false, ctrl: false }, 20, 5, 3)!;
  assert.equal(k.focus, 5);
  k = keySelect(k, 'ArrowRight', { shift: true, ctrl: false }, 20, 5, 3)!;
  assert.deepEqual([...k.selected].sort((a, b) => a - b), [5, 6]);
  k = keySelect(k, 'End', { shift: false, ctrl: false }, 20, 5, 3)!;
  assert.equal(k.focus, 19);
  k = keySelect(k, 'a', { shift: false, ctrl: true }, 20, 5, 3)!;
  assert.equal(k.selected.size, 20);
  k = keySelect(k, 'Escape', { shift: false, ctrl: false }, 20, 5, 3)!;
  assert.equal(k.selected.size, 0);
  assert.equal(keySelect(k, 'x', { shift: false, ctrl: false }, 20, 5, 3), null);
});

const chromiumMissing = !fs.existsSync(CHROMIUM);

describe('gate section and image grid in headless Chromium', { skip: chromiumMissing && `Chromium not found at ${CHROMIUM}` }, () => {
  let browser: Browser;
  let imageRoot: string;
  let host: FakeHost;
  let page: Page;
  const gate = evaluateGate(fixture, { minTop1Accuracy: 0.5, minRecall: 0.5, classes: { yellow_star: { minRecall: 0.6 } }, maxLabelIssues: 100 });

  before(async () => {
    await buildWebview();
    browser = await launchChromium();
    imageRoot = tmpDir('clip-lens-grid-');
    host = new FakeHost(fixture, { imageRoot, shows: shapesReport().shows, reportRef: 'shapes-report.json', gate });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
    await host.open(page, 'dark');
    await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
  });

  after(async () => {
    await browser?.close();
    // the fake host may still be writing a thumbnail it was asked for before the browser closed: retry ENOTEMPTY
    if (imageRoot) fs.rmSync(imageRoot, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });

  test('the gate section comes first, with pass/fail per threshold (failed ones shown)', async () => {
    const section = page.locator('section.gate');
    await section.waitFor();
    assert.equal(await section.getAttribute('data-gate'), gate.passed ? 'passed' : 'failed');
    const heading = (await section.locator('.gate-heading').textContent()) ?? '';
    assert.match(heading, gate.passed ? /passed/ : new RegExp(`failed: ${gate.summary.failed} of ${gate.summary.total}`));
    const failedRows = await section.locator('tr.fail').count();
    assert.equal(failedRows, gate.summary.failed);
    assert.ok(await section.locator('tr.fail[data-check="minRecall.yellow_star"]').isVisible(), 'the failed class threshold is listed');
    const gateY = (await section.boundingBox())!.y;
    const tabsY = (await page.locator('vscode-tabs').boundingBox())!.y;
    assert.ok(gateY < tabsY);
    await page.screenshot({ path: screenshotPath('panel-gate.png'), clip: { x: 0, y: 0, width: 1280, height: Math.min(1000, (await section.boundingBox())!.y + (await section.boundingBox())!.height + 20) } });
    // "Show yellow_star images" opens the grid on that class.
    await section.locator('tr.fail[data-check="minRecall.yellow_star"] button').click();
    await page.waitForFunction(() => document.querySelector('.image-grid')?.getAttribute('data-source') === 'class:yellow_star');
    const n = fixtureSamples.filter((s) => s.label === 'yellow_star' && !s.error).length;
    // The count arrives with the first page from the host.
    await page.waitForFunction((c) => document.querySelector('.image-grid')?.getAttribute('data-count') === String(c), n);
  });

  test('the grid shows a confusion cell\'s images, virtualised, and a bulk action is one message', async () => {
    const model = panelModel();
    const cell = sourceOptions(model).find((o) => o.source.kind === 'cell')!;
    await page.selectOption('select.grid-source', cell.value);
    const expected = sourceIndices(fixture, cell.source, null).map((i: number) => fixtureSamples[i]!.path).sort();
    await page.waitForFunction((n) => document.querySelectorAll('.grid-tile').length === n, expected.length);
    const shown = await page.$$eval('.grid-tile', (els) => els.map((e) => (e as HTMLElement).dataset.path!));
    assert.deepEqual([...shown].sort(), expected);
    await page.waitForFunction(() => document.querySelectorAll('.grid-tile .thumb.loaded').length > 0, undefined, { timeout: 30_000 });

    // The biggest source (a class with many images) keeps only the visible rows in the DOM.
    const big = sourceOptions(model).filter((o) => o.source.kind === 'class').sort((a, b) => b.count - a.count)[0]!;
    await page.selectOption('select.grid-source', big.value);
    await page.waitForFunction((n) => document.querySelector('.image-grid')?.getAttribute('data-count') === String(n), big.count);
    const inDom = await page.locator('.grid-tile').count();
    assert.ok(inDom > 0 && inDom < big.count, `virtualised: ${inDom} of ${big.count} tiles in the DOM`);

    // Click, Shift+click: 3 selected; then keyboard Shift+ArrowRight adds one.
    const tiles = page.locator('.grid-tile');
    await tiles.nth(0).click();
    await tiles.nth(2).click({ modifiers: ['Shift'] });
    await page.keyboard.press('Shift+ArrowRight');
    await page.waitForFunction(() => document.querySelector('.image-grid')?.getAttribute('data-selected') === '4');
    const selected = await page.$$eval('.grid-tile.selected', (els) => els.map((e) => (e as HTMLElement).dataset.path!));
    assert.equal(selected.length, 4);
    await page.screenshot({ path: screenshotPath('panel-image-grid.png') });
    await page.selectOption('select.grid-target', 'yellow_star');
    const sent = host.next((m) => m.type === 'bulkAction');
    await page.click('button.grid-fix');
    const m = (await sent) as Extract<PanelToHost, { type: 'bulkAction' }>;
    assert.deepEqual(m.action.kind, 'fix');
    assert.equal((m.action as { toClass: string }).toClass, 'yellow_star');
    assert.deepEqual([...m.action.paths].sort(), [...selected].sort());
    await page.waitForFunction(() => document.querySelectorAll('.grid-tile.done').length === 4);
    assert.match((await page.locator('.toast').last().textContent()) ?? '', /Moved 4 images to 'yellow_star'/);
  });

  test('the host\'s resolved set is authoritative: fixes made elsewhere show, an undone fix is open again', async () => {
    const { report, samples } = toPanelReport(fixture);
    const first = await page.locator('.grid-tile').first().getAttribute('data-path');
    assert.ok(first);
    await host.send({ type: 'report', report, samples, gate, resolvedPaths: { [first]: 'fixed' } });
    await page.waitForFunction((p) => document.querySelector(`.grid-tile[data-path="${p}"]`)?.classList.contains('done'), first);
    assert.equal(await page.locator('.grid-tile.done').count(), 1, 'only what the host says is resolved');
    // Undo Last Fix in the host: the next report message no longer lists it.
    await host.send({ type: 'report', report, samples, gate, resolvedPaths: {} });
    await page.waitForFunction(() => document.querySelectorAll('.grid-tile.done').length === 0);
  });
});
