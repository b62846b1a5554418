/**
 * The report panel in headless Chromium (playwright-core + Debian's /usr/bin/chromium): the bundle built with
 * webview/build.mjs, served with the extension's HTML and CSP, driven by a fake extension host.
 *
 * Without Chromium the suite is skipped with a message, or fails when CI=true.
 * Screenshots go to out/screenshots/, or to docs/images/ with UPDATE_SCREENSHOTS=1.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { Browser, Page } from 'playwright-core';
import type { EvalReport } from '../../src/core/report';
import { headlineMetrics } from '../../src/core/metricCatalogue';
import { effectiveWarningThresholds } from '../../src/core/warnings';
import type { PanelToHost } from '../../src/core/panelProtocol';
import { largeReport, shapesReport } from '../fixtures/report/generate';
import { makeBaseline } from '../../src/core/baseline';
import { compareRuns } from '../../src/core/compare';
import { CHROMIUM, FakeHost, ROOT, applyTheme, buildWebview, launchChromium, screenshotPath, tmpDir, type ThemeName } from './harness';
import { toPanelReport } from '../../src/extension/reportPanel';
import { withSamples } from '../../src/core/panelSamples';

const FIXTURE = path.join(ROOT, 'test/fixtures/report/shapes-report.json');
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

interface Watched {
  page: Page;
  errors: string[];
}

/** A page that records console errors and uncaught exceptions. */
async function newPage(browser: Browser, width = 1280, height = 1000): Promise<Watched> {
  const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return { page, errors };
}

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
}

async function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);
}

/** Clicks the centre of a matrix cell (by class index in report order, the default "By class" order). */
async function clickCell(page: Page, row: number, col: number): Promise<void> {
  const canvas = page.locator('canvas.matrix-canvas');
  await canvas.scrollIntoViewIfNeeded();
  const g = await canvas.evaluate((el) => ({ ...(el as HTMLCanvasElement).dataset }));
  const box = (await canvas.boundingBox())!;
  const cell = Number(g.cell);
  const x = box.x + Number(g.left) + (col - Number(g.offsetX) + 0.5) * cell;
  const y = box.y + Number(g.top) + (row - Number(g.offsetY) + 0.5) * cell;
  await page.mouse.move(x, y);
  await page.mouse.click(x, y);
}

async function selectTab(page: Page, tab: 'matrix' | 'classes' | 'issues'): Promise<void> {
  await page.click(`vscode-tab-header[data-tab="${tab}"]`);
  await page.waitForFunction((t) => {
    const panel = document.querySelector(`vscode-tab-panel[data-tab="${t}"]`);
    return panel !== null && !panel.hasAttribute('hidden');
  }, tab);
}

async function visibleClasses(page: Page): Promise<string[]> {
  return page.$$eval('.vspacer .vrow', (rows) => rows.map((r) => (r as HTMLElement).dataset.class!));
}

function sortedClasses(report: EvalReport, key: 'support' | 'recall' | 'class', descending: boolean): string[] {
  const rows = [...report.metrics!.perClass];
  rows.sort((a, b) => {
    const cmp = key === 'class' ? a.class.localeCompare(b.class) : a[key] - b[key];
    return (descending ? -cmp : cmp) || a.class.localeCompare(b.class);
  });
  return rows.map((r) => r.class);
}

const chromiumMissing = !fs.existsSync(CHROMIUM);

if (chromiumMissing && process.env.CI === 'true') {
  test('headless Chromium is available for the report panel tests', () => {
    assert.fail(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium fonts-liberation (or set CHROMIUM_PATH)`);
  });
}

describe('report panel in headless Chromium', { skip: chromiumMissing && `Chromium not found at ${CHROMIUM} (apt-get install -y chromium fonts-liberation); set CI=true to make this a failure` }, () => {
  let browser: Browser;
  let bundleBytes = 0;
  let imageRoot: string;
  const fixture = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as EvalReport;
  const { shows } = shapesReport();
  let host: FakeHost;
  let watched: Watched;

  before(async () => {
    bundleBytes = await buildWebview();
    browser = await launchChromium();
    imageRoot = tmpDir('clip-lens-panel-');
    host = new FakeHost(fixture, { imageRoot, shows, reportRef: 'shapes-report.json' });
    watched = await newPage(browser);
    await host.open(watched.page, 'light');
    await ready(watched.page);
  });

  after(async () => {
    await browser?.close();
    if (imageRoot) fs.rmSync(imageRoot, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });

  test('the bundle is one minified file of reasonable size', (t) => {
    t.diagnostic(`dist/webview.js: ${(bundleBytes / 1024).toFixed(1)} KiB`);
    assert.ok(bundleBytes > 50_000 && bundleBytes < 400_000, `unexpected bundle size ${bundleBytes}`);
  });

  test('renders the header with banded metrics and puts warnings first', async () => {
    const { page } = watched;
    const m = fixture.metrics!;
    assert.match(await page.textContent('.report-header h1') ?? '', /shapes/);
    const card = (name: string) => page.locator(`.card[data-metric="${name}"]`);
    assert.equal(await card('Top-1 accuracy').locator('.card-value').textContent(), pct(m.top1Accuracy));
    assert.equal(await card('Balanced accuracy').locator('.card-value').textContent(), pct(m.balancedAccuracy));
    assert.equal(await card('Recall@5').locator('.card-value').textContent(), pct(m.recallAtK['5']));
    assert.match((await card('Top-1 accuracy').getAttribute('class')) ?? '', /\bgood\b/);

    // The rare class with low recall is the first thing after the header, above the tabs.
    const first = page.locator('.warning-list > li').first();
    assert.equal(await first.getAttribute('data-kind'), 'rare-class-low-recall');
    const text = (await first.textContent()) ?? '';
    assert.match(text, /yellow_star/);
    assert.match(text, /11%/);
    const warnY = (await first.boundingBox())!.y;
    const tabsY = (await page.locator('vscode-tabs').boundingBox())!.y;
    assert.ok(warnY < tabsY, 'warnings come before the tabs');

    // A duplicate warning shows both files.
    const dup = fixture.warnings.find((w) => w.kind === 'duplicate')!;
    await page.click('li[data-kind="duplicate"] button:has-text("Show 2 images")');
    await page.waitForSelector('li[data-kind="duplicate"] .tile');
    assert.deepEqual(await page.$$eval('li[data-kind="duplicate"] .tile', (t) => t.map((el) => (el as HTMLElement).dataset.path)), dup.paths);

    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(host.remoteRequests, []);
    assert.deepEqual(watched.errors, []);
  });

  test('the header says which predictor found the label errors, and why', async () => {
    const report = {
      ...fixture,
      predictor: { requested: 'auto', used: 'linear-probe', reason: 'zero-shot balanced accuracy 0.6% is near chance (6.3%)', zeroShot: { top1Accuracy: 0.04, balancedAccuracy: 0.006 }, perClass: [] },
    } as EvalReport;
    const other = new FakeHost(report, { imageRoot, shows, reportRef: 'shapes-report.json' });
    const w = await newPage(browser);
    try {
      await other.open(w.page, 'light');
      await ready(w.page);
      const el = w.page.locator('.meta .predictor');
      assert.equal(await el.getAttribute('data-predictor'), 'linear-probe');
      assert.match((await el.textContent()) ?? '', /label errors from the linear probe/);
      assert.match((await el.getAttribute('title')) ?? '', /near chance/);
      // the fixture without a predictor section shows none
      assert.equal(await watched.page.locator('.meta .predictor').count(), 0);
      assert.deepEqual(w.errors, []);
    } finally {
      await w.page.close();
    }
  });

  test('a provisional report shows its badge ("provisional: N of M images", or cancelled); a final one none', async () => {
    for (const [provisional, text] of [
      [{ done: 1234, total: 10000 }, 'provisional: 1,234 of 10,000 images'],
      [{ done: 40, total: 354, cancelled: true }, 'cancelled at 40 of 354 images'],
    ] as const) {
      const h = new FakeHost({ ...fixture, provisional } as EvalReport, { imageRoot, shows, reportRef: 'provisional' });
      const w = await newPage(browser);
      try {
        await h.open(w.page, 'light');
        await ready(w.page);
        const badge = w.page.locator('.report-header .provisional-badge');
        assert.equal(await badge.textContent(), text);
        assert.equal(await badge.getAttribute('role'), 'status');
        assert.equal(await badge.evaluate((el) => el.classList.contains('cancelled')), 'cancelled' in provisional);
        assert.deepEqual(w.errors, []);
      } finally {
        await w.page.close();
      }
    }
    assert.equal(await watched.page.locator('.provisional-badge').count(), 0);
  });

  test('the class table shows the probe recall next to zero-shot recall when the report has it, and sorts by it', async () => {
    const classes = fixture.metrics!.perClass.map((c) => c.class);
    // probe recall: a distinct value per class, in reverse name order, so the sort is checkable
    const probeOf = (name: string) => 0.5 + (classes.length - [...classes].sort().indexOf(name)) / 100;
    const report = {
      ...fixture,
      predictor: {
        requested: 'auto',
        used: 'zero-shot',
        reason: 'zero-shot balanced accuracy 93% is close to the linear probe\'s 95%',
        zeroShot: { top1Accuracy: fixture.metrics!.top1Accuracy, balancedAccuracy: fixture.metrics!.balancedAccuracy },
        linearProbe: { folds: 5, c: 10, top1Accuracy: 0.95, balancedAccuracy: 0.95, singletonClasses: [] },
        perClass: fixture.metrics!.perClass.map((c) => ({ class: c.class, support: c.support, zeroShotRecall: c.recall, probeRecall: probeOf(c.class) })),
      },
      // a rare-class warning that follows the linear probe (zero-shot near chance) says so on its figure
      warnings: fixture.warnings.map((x) => (x.kind === 'rare-class-low-recall' && x.class === 'yellow_star' ? { ...x, predictor: 'linear-probe' as const } : x)),
    } as EvalReport;
    const other = new FakeHost(report, { imageRoot, shows, reportRef: 'shapes-report.json' });
    const w = await newPage(browser);
    try {
      await other.open(w.page, 'light');
      await ready(w.page);
      const figure = await w.page.locator('li[data-kind="rare-class-low-recall"] .callout-figure').first().innerText();
      assert.match(figure, /linear probe recall on yellow_star/);
      assert.doesNotMatch(await watched.page.locator('li[data-kind="rare-class-low-recall"] .callout-figure').first().innerText(), /probe/);
      await selectTab(w.page, 'classes');
      await w.page.waitForSelector('.vspacer .vrow');
      const heads = await w.page.$$eval('.vhead .th', (els) => els.map((e) => `${e.getAttribute('data-key')}:${e.textContent}`));
      const at = heads.findIndex((x) => x.startsWith('recall:'));
      assert.match(heads[at], /Zero-shot recall/);
      assert.match(heads[at + 1], /^probeRecall:Probe recall/);
      // the cell of a class shows its probe recall, next to its zero-shot recall
      const cells = await w.page.$$eval('.vrow[data-class="yellow_star"] .td', (els) => els.map((e) => e.textContent));
      const star = fixture.metrics!.perClass.find((c) => c.class === 'yellow_star')!;
      assert.equal(cells[at], pct(star.recall));
      assert.equal(cells[at + 1], pct(probeOf('yellow_star')));
      await w.page.click('.vhead [data-key="probeRecall"]');
      assert.equal(await w.page.getAttribute('.vhead [data-key="probeRecall"]', 'aria-sort'), 'ascending');
      assert.deepEqual(await visibleClasses(w.page), [...classes].sort((a, b) => probeOf(a) - probeOf(b)));
      // the fixture without a predictor section has no probe column, and its recall column is plain "Recall"
      assert.equal(await watched.page.locator('.vhead [data-key="probeRecall"]').count(), 0);
      assert.deepEqual(w.errors, []);
    } finally {
      await w.page.close();
    }
  });

  test('the split selector switches every number to that split', async () => {
    const { page } = watched;
    const val = fixture.metricsBySplit!.val;
    const pick = async (label: string) => {
      await page.click('vscode-single-select.split');
      await page.locator('vscode-single-select.split li[role="option"]', { hasText: label }).click();
    };
    await pick('Split: val');
    await page.waitForFunction((v) => document.querySelector('.card[data-metric="Top-1 accuracy"] .card-value')?.textContent === v, pct(val.top1Accuracy));
    assert.equal(await page.textContent('.card[data-metric="Balanced accuracy"] .card-value'), pct(val.balancedAccuracy));
    assert.match((await page.textContent('.matrix-view .caption')) ?? '', new RegExp(`${val.n} images in 'val'`));
    await pick('All splits');
    await page.waitForFunction((v) => document.querySelector('.card[data-metric="Top-1 accuracy"] .card-value')?.textContent === v, pct(fixture.metrics!.top1Accuracy));
  });

  test('clicking a confusion cell lists exactly its images, with lazy thumbnails', async () => {
    const { page } = watched;
    const classes = fixture.dataset.classes;
    const t = classes.indexOf('yellow_star');
    const p = classes.indexOf('yellow_circle');
    const expected = fixture.samples!
      .filter((s) => s.label === 'yellow_star' && s.predicted[0]?.class === 'yellow_circle')
      .map((s) => s.path)
      .sort();
    assert.equal(expected.length, fixture.metrics!.confusionMatrix[t][p], 'fixture is consistent');
    assert.ok(expected.length > 0);

    const sentBefore = host.received.length;
    await clickCell(page, t, p);
    const tooltip = page.locator('.tooltip');
    assert.match((await tooltip.textContent()) ?? '', new RegExp(`yellow_star → yellow_circle${expected.length} images`));
    await page.waitForFunction((n) => document.querySelectorAll('.cell-drawer .tile').length === n, expected.length);
    const listed = await page.$$eval('.cell-drawer .tile', (tiles) => tiles.map((el) => (el as HTMLElement).dataset.path!));
    assert.deepEqual([...listed].sort(), expected);

    // Thumbnails arrive from the host as small WebP data URIs.
    await page.waitForFunction((n) => document.querySelectorAll('.cell-drawer .thumb.loaded').length === n, expected.length, { timeout: 30_000 });
    const srcs = await page.$$eval('.cell-drawer .thumb img', (imgs) => imgs.map((i) => (i as HTMLImageElement).src));
    for (const src of srcs) assert.match(src, /^data:image\/webp;base64,/);
    const requested = host.received.slice(sentBefore).filter((m): m is Extract<PanelToHost, { type: 'requestThumbnails' }> => m.type === 'requestThumbnails').flatMap((m) => m.paths);
    assert.deepEqual([...new Set(requested)].sort(), expected, 'only the visible thumbnails were requested');

    // Clicking a thumbnail opens the image.
    const opened = host.next((m) => m.type === 'openImage');
    await page.click(`.cell-drawer .tile[data-path="${listed[0]}"] .thumb`);
    assert.deepEqual(await opened, { type: 'openImage', path: listed[0] });

    // From the keyboard: arrows move a cursor from the selected cell, Enter lists the cell under it.
    await page.focus('.matrix-scroll');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    const diagonal = fixture.metrics!.confusionMatrix[t][p + 2];
    assert.equal(classes[p + 2], 'yellow_star');
    await page.waitForFunction((n) => document.querySelectorAll('.cell-drawer .tile').length === n, diagonal);
    assert.match((await page.textContent('.cell-drawer h3')) ?? '', /yellow_star predicted correctly/);
    // Back to the cell of the test, by keyboard too.
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('Enter');
    await page.waitForFunction((n) => document.querySelectorAll('.cell-drawer .tile').length === n, expected.length);
  });

  test('the matrix switches to row-normalised colours and confusion order', async () => {
    const { page } = watched;
    await page.click('.matrix-view vscode-button[data-value="recall"]');
    assert.equal(await page.getAttribute('.matrix-view vscode-button[data-value="recall"]', 'aria-pressed'), 'true');
    await page.click('.matrix-view vscode-button[data-value="confusion"]');
    assert.equal(await page.getAttribute('canvas.matrix-canvas', 'data-order'), 'confusion');
    // The selection survives the re-ordering: the drawer still lists the same cell.
    assert.match((await page.textContent('.cell-drawer h3')) ?? '', /yellow_star → yellow_circle/);
    await page.click('.matrix-view vscode-button[data-value="class"]');
    await page.click('.matrix-view vscode-button[data-value="counts"]');
  });

  test('the per-class table sorts by any column and filters', async () => {
    const { page } = watched;
    await selectTab(page, 'classes');
    await page.waitForSelector('.vspacer .vrow');
    // Default: recall ascending, worst first.
    assert.deepEqual(await visibleClasses(page), sortedClasses(fixture, 'recall', false));
    assert.equal((await visibleClasses(page))[0], 'yellow_star');

    await page.click('.vhead [data-key="support"]');
    assert.deepEqual(await visibleClasses(page), sortedClasses(fixture, 'support', true));
    assert.equal(await page.getAttribute('.vhead [data-key="support"]', 'aria-sort'), 'descending');
    await page.click('.vhead [data-key="support"]');
    assert.deepEqual(await visibleClasses(page), sortedClasses(fixture, 'support', false));
    assert.equal(await page.getAttribute('.vhead [data-key="support"]', 'aria-sort'), 'ascending');
    await page.click('.vhead [data-key="class"]');
    assert.deepEqual(await visibleClasses(page), sortedClasses(fixture, 'class', false));

    await page.fill('.classes-view vscode-textfield input', 'yellow');
    await page.waitForFunction(() => document.querySelectorAll('.vspacer .vrow').length === 4);
    assert.deepEqual(await visibleClasses(page), ['yellow_circle', 'yellow_square', 'yellow_star', 'yellow_triangle']);
    assert.equal(await page.textContent('.classes-view .count'), '4 of 16 classes');
    await page.fill('.classes-view vscode-textfield input', '');
    await page.waitForFunction(() => document.querySelectorAll('.vspacer .vrow').length === 16);
    // "Only weak classes": named by a warning or recall below 50%.
    await page.click('.classes-view vscode-checkbox');
    await page.waitForFunction(() => document.querySelectorAll('.vspacer .vrow').length < 16);
    assert.deepEqual(await visibleClasses(page), ['yellow_star']);
    await page.click('.classes-view vscode-checkbox');
    await page.waitForFunction(() => document.querySelectorAll('.vspacer .vrow').length === 16);

    // The detail pane: precision-recall curve computed from the samples' probabilities, same AP as the report.
    await page.click('.vrow[data-class="yellow_star"]');
    await page.waitForFunction(() => /^AP /.test(document.querySelector('.pr-note')?.textContent ?? ''));
    const ap = fixture.metrics!.perClass.find((c) => c.class === 'yellow_star')!.averagePrecision!;
    assert.match((await page.textContent('.pr-note')) ?? '', new RegExp(`^AP ${ap.toFixed(3)} over`));
  });

  test('label issues: fixes, ignore and open go to the host', async () => {
    const { page } = watched;
    await selectTab(page, 'issues');
    const issues = [...fixture.labelIssues].sort((a, b) => a.rank - b.rank);
    await page.waitForSelector('.issues li');
    assert.equal(await page.locator('.issues li').count(), issues.length);
    const first = page.locator('.issues li').first();
    assert.equal(await first.getAttribute('data-path'), issues[0].path);
    assert.equal((await first.locator('vscode-button.fix').textContent())?.trim(), `Move to folder '${issues[0].suggested}'`);

    const fixMsg = host.next((m) => m.type === 'applyFix');
    await first.locator('vscode-button.fix').click();
    const fix = (await fixMsg) as Extract<PanelToHost, { type: 'applyFix' }>;
    assert.equal(fix.path, issues[0].path);
    assert.equal(fix.toClass, issues[0].suggested);
    await page.waitForFunction(() => document.querySelector('.issues li')?.classList.contains('resolved'));
    assert.match((await first.locator('.resolved-note').textContent()) ?? '', /Moved/);

    const second = page.locator('.issues li').nth(1);
    const ignoreMsg = host.next((m) => m.type === 'ignoreSample');
    await second.locator('vscode-button', { hasText: 'Ignore' }).click();
    assert.equal(((await ignoreMsg) as Extract<PanelToHost, { type: 'ignoreSample' }>).path, issues[1].path);

    const third = page.locator('.issues li').nth(2);
    const openMsg = host.next((m) => m.type === 'openImage');
    await third.locator('vscode-button', { hasText: 'Open image' }).click();
    assert.deepEqual(await openMsg, { type: 'openImage', path: issues[2].path });
    assert.equal(await page.textContent('vscode-tab-header[data-tab="issues"] vscode-badge'), String(issues.length - 2));
  });

  test('exports: PNG of the matrix, CSV of per-class metrics, HTML and JSON from the host', async () => {
    const { page } = watched;
    const count = host.exports.length;
    for (const format of ['png', 'csv', 'html', 'json']) {
      const done = host.next((m) => m.type === 'export');
      await page.click(`.export vscode-button[data-export="${format}"]`);
      await done;
    }
    await page.waitForFunction(() => document.querySelectorAll('.toast').length > 0);
    const [png, csv, html, json] = host.exports.slice(count);
    assert.equal(png.format, 'png');
    const meta = await sharp(Buffer.from(png.content as Uint8Array)).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.width! > 600 && meta.height! > 600, `matrix PNG is ${meta.width}×${meta.height}`);
    assert.equal(png.fileName, 'shapes-confusion-matrix.png');
    assert.match(csv.content as string, /^class,support,predicted,precision,recall,f1,recall@1,recall@3,recall@5,average_precision\r\n/);
    assert.equal((csv.content as string).trim().split('\r\n').length, 17);
    assert.match(html.content as string, /<img class="matrix" alt="Confusion matrix" src="data:image\/png;base64,/);
    assert.deepEqual(JSON.parse(json.content as string), fixture);
  });

  test('search results stay through a re-run (sent again after the new report); a closed search does not come back', async () => {
    const { page } = watched;
    const query = 'a photo of a red circle.';
    const hits = withSamples(fixture, fixture.samples!.slice(0, 4).map((x, i) => ({ path: x.path, score: 0.3 - i * 0.01 })));
    const tiles = () => page.locator('.search-results .search-tiles [data-rank]');
    await host.send({ type: 'reveal', target: { kind: 'search', query, hits } });
    await page.waitForSelector('.search-results');
    assert.equal(await tiles().count(), 4);
    const reRun = async () => {
      const { report, samples } = toPanelReport(fixture);
      await host.send({ type: 'report', report, samples, reportRef: 'shapes-report.json', gate: null });
      await page.waitForFunction(() => document.querySelector('.search-results') === null);
    };
    // The new report clears the results; the host sends the search again (one image gone), and it is shown.
    await reRun();
    await host.send({ type: 'reveal', target: { kind: 'search', query, hits: hits.slice(1), refresh: true } });
    await page.waitForSelector('.search-results');
    assert.equal(await tiles().count(), 3);
    // Closed by the user: a later re-run does not bring it back.
    await page.click('.search-results vscode-button:has-text("Close")');
    await reRun();
    await host.send({ type: 'reveal', target: { kind: 'search', query, hits, refresh: true } });
    await host.send({ type: 'reveal', target: { kind: 'class', class: fixture.dataset.classes[0]! } }); // after the refresh
    await page.waitForTimeout(200);
    assert.equal(await page.locator('.search-results').count(), 0);
    assert.deepEqual(watched.errors, []);
  });

  test('UI state survives the webview being unloaded and reloaded (hide/show, window reload)', async () => {
    const { page } = watched;
    await selectTab(page, 'classes');
    await page.click('.vrow[data-class="red_star"]');
    await page.waitForTimeout(300); // state saves are coalesced (200 ms)
    await page.reload();
    await ready(page);
    assert.equal(await page.getAttribute('vscode-tabs', 'selected-index'), '1');
    assert.equal(await page.getAttribute('.vhead [data-key="class"]', 'aria-sort'), 'ascending');
    assert.equal(await page.getAttribute('.vrow.selected', 'data-class'), 'red_star');
    await selectTab(page, 'issues');
    assert.equal(await page.locator('.issues li.resolved').count(), 2, 'fixed and ignored issues stay resolved');
    await selectTab(page, 'matrix');
    await page.waitForSelector('.cell-drawer .tile');
    assert.match((await page.textContent('.cell-drawer h3')) ?? '', /yellow_star → yellow_circle/);
  });

  test('screenshots in light, dark and high-contrast themes (live theme switches redraw the canvas)', async (t) => {
    const { page } = watched;
    await selectTab(page, 'matrix');
    await page.waitForFunction(() => document.querySelectorAll('.cell-drawer .thumb.loaded').length > 0);
    const themes: Array<[ThemeName, [number, number, number]]> = [
      ['light', [255, 255, 255]],
      ['dark', [31, 31, 31]],
      ['high-contrast', [0, 0, 0]],
    ];
    for (const [theme, background] of themes) {
      await applyTheme(page, theme);
      await page.waitForTimeout(150);
      const pixel = await page.evaluate(() => Array.from((document.querySelector('canvas.matrix-canvas') as HTMLCanvasElement).getContext('2d')!.getImageData(2, 2, 1, 1).data.slice(0, 3)));
      assert.deepEqual(pixel, background, `canvas background follows the ${theme} theme`);
      await page.mouse.move(0, 0);
      await page.evaluate(() => window.scrollTo(0, 0));
      const file = screenshotPath(`panel-${theme}.png`);
      await page.screenshot({ path: file, fullPage: true });
      t.diagnostic(`screenshot: ${path.relative(ROOT, file)}`);
    }
    await applyTheme(page, 'dark');
    await selectTab(page, 'classes');
    await page.click('.vrow[data-class="yellow_star"]');
    await page.waitForFunction(() => /^AP /.test(document.querySelector('.pr-note')?.textContent ?? ''));
    await page.locator('vscode-tabs').evaluate((el) => el.scrollIntoView());
    await page.screenshot({ path: screenshotPath('panel-classes-dark.png') });
    await applyTheme(page, 'light');
    await selectTab(page, 'issues');
    await page.locator('vscode-tabs').evaluate((el) => el.scrollIntoView());
    await page.waitForFunction(() => document.querySelectorAll('.issues .thumb.loaded').length >= 8, undefined, { timeout: 30_000 });
    await page.waitForTimeout(300); // thumbnails fade in
    await page.screenshot({ path: screenshotPath('panel-issues-light.png') });
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(watched.errors, []);
  });

  test('PR curves come from the host when the report is too big to send probabilities', async () => {
    const w = await newPage(browser);
    const h = new FakeHost(fixture, { imageRoot, shows, reportRef: 'stripped', maxProbabilities: 1000 });
    await h.open(w.page, 'dark');
    await ready(w.page);
    await selectTab(w.page, 'classes');
    const asked = h.next((m) => m.type === 'requestPrCurve');
    await w.page.click('.vrow[data-class="green_star"]');
    assert.deepEqual(await asked, { type: 'requestPrCurve', requestId: (await asked as { requestId: number }).requestId, class: 'green_star', split: null });
    await w.page.waitForFunction(() => /^AP /.test(document.querySelector('.pr-note')?.textContent ?? ''));
    const ap = fixture.metrics!.perClass.find((c) => c.class === 'green_star')!.averagePrecision!;
    assert.match((await w.page.textContent('.pr-note')) ?? '', new RegExp(`^AP ${ap.toFixed(3)} `));
    // When the host has nothing to show (a restored panel whose report is gone), the panel says so.
    await h.send({ type: 'empty', message: 'The report shapes.json is no longer available.' });
    await w.page.waitForSelector('body[data-state="empty"]');
    assert.equal(await w.page.textContent('.empty-state p'), 'The report shapes.json is no longer available.');
    assert.deepEqual(w.errors, []);
    await w.page.close();
  });

  test('"Compare with...": deltas on the cards, a per-class delta column, the difference matrix, images broken; clear', async () => {
    // A: the same run with other figures (as a baseline made before a change would have), B: the fixture.
    const hashed: EvalReport = { ...fixture, samples: fixture.samples!.map((s) => ({ ...s, contentHash: createHash('sha256').update(s.path).digest('hex') })) };
    const a = makeBaseline(hashed);
    const b = makeBaseline(hashed);
    const [c0, c1] = fixture.dataset.classes;
    a.metrics!.top1Accuracy -= 0.05;
    a.classes[c0] = { ...a.classes[c0], recall: a.classes[c0].recall - 0.2 };
    a.confusionMatrix![0][0] -= 2;
    a.confusionMatrix![0][1] += 2;
    const key = Object.keys(a.samples).find((k) => a.samples[k].label === c0 && a.samples[k].predicted === c0)!;
    a.samples[key] = { ...a.samples[key], predicted: c1 };
    const comparison = compareRuns(a, b, ['baseline.json', 'this run']);
    const w = await newPage(browser);
    const h = new FakeHost(fixture, { imageRoot, shows, comparison });
    await h.open(w.page, 'light');
    await ready(w.page);
    const asked = h.next((m) => m.type === 'pickComparison');
    await w.page.click('vscode-button.compare-with');
    await asked;
    await w.page.waitForSelector('section.comparison');
    assert.equal(await w.page.textContent('.card[data-metric="Top-1 accuracy"] .card-delta'), '+5.0 pts vs baseline.json');
    assert.match((await w.page.getAttribute('.card[data-metric="Top-1 accuracy"] .card-delta', 'class')) ?? '', /\bup\b/);
    assert.equal(await w.page.textContent('.comparison h2'), 'Compared with baseline.json');
    // The per-class delta column: the changed class first.
    assert.equal(await w.page.getAttribute('.compare-classes tbody tr:first-child', 'data-class'), c0);
    assert.equal(await w.page.textContent(`.compare-classes tr[data-class="${c0}"] td[data-delta="recall"]`), '+20.0 pts');
    // The difference matrix B - A: the diagonal gained 2, the confusion lost 2.
    await w.page.click('.delta-matrix-block summary');
    assert.equal(await w.page.textContent(`.delta-matrix td[data-cell="${c0}|${c0}"]`), '+2');
    assert.equal(await w.page.textContent(`.delta-matrix td[data-cell="${c0}|${c1}"]`), '-2');
    assert.match((await w.page.textContent('.compare-summary')) ?? '', new RegExp(`^${Object.keys(b.samples).length} images in both · 1 fixed · 0 broken`));
    assert.match((await w.page.textContent('.compare-facts')) ?? '', /^A: baseline\.json \(model .*\) · B: this run/);
    await w.page.screenshot({ path: screenshotPath('panel-compare-light.png'), fullPage: true });
    await w.page.click('vscode-button.compare-clear');
    await w.page.waitForSelector('section.comparison', { state: 'detached' });
    assert.equal(await w.page.locator('.card-delta').count(), 0);
    assert.deepEqual(await cspViolations(w.page), []);
    assert.deepEqual(w.errors, []);
    await w.page.close();
  });

  test('a report that carries a comparison (two models, eval --baseline) opens with it', async () => {
    const hashed: EvalReport = { ...fixture, samples: fixture.samples!.map((s) => ({ ...s, contentHash: createHash('sha256').update(s.path).digest('hex') })) };
    const a = makeBaseline(hashed);
    a.metrics!.top1Accuracy -= 0.1;
    const withComparison: EvalReport = { ...fixture, comparison: compareRuns(a, makeBaseline(hashed), ['other-model', 'this-model']) };
    const w = await newPage(browser);
    const h = new FakeHost(withComparison, { imageRoot, shows });
    await h.open(w.page, 'light');
    await ready(w.page);
    await w.page.waitForSelector('section.comparison');
    assert.equal(await w.page.textContent('.comparison h2'), 'Compared with other-model');
    assert.equal(await w.page.textContent('.card[data-metric="Top-1 accuracy"] .card-delta'), '+10.0 pts vs other-model');
    await w.page.click('vscode-button.compare-clear');
    await w.page.waitForSelector('section.comparison', { state: 'detached' });
    assert.deepEqual(w.errors, []);
    await w.page.close();
  });

  test('the header bands follow the thresholds the report was evaluated with (metric catalogue)', async () => {
    const w = await newPage(browser);
    const strict: EvalReport = { ...fixture, thresholds: effectiveWarningThresholds({ goodAccuracy: 0.97, lowAccuracy: 0.95, recallAtK: { k: 5, min: 0.99 } }) };
    const h = new FakeHost(strict, { imageRoot, shows, reportRef: 'strict' });
    await h.open(w.page, 'light');
    await ready(w.page);
    const card = (name: string) => w.page.locator(`.card[data-metric="${name}"]`);
    // 93.3% top-1 is poor below 95%; Recall@5 98.6% is fair below the minimum of 99%.
    assert.match((await card('Top-1 accuracy').getAttribute('class')) ?? '', /\bpoor\b/);
    assert.match((await card('Top-1 accuracy').getAttribute('title')) ?? '', /Good ≥ 97%, poor < 95%/);
    assert.match((await card('Recall@5').getAttribute('class')) ?? '', /\bfair\b/);
    const expected = headlineMetrics(strict, strict.metrics!).map((x) => `${x.label}:${x.band}`);
    const shown = await w.page.$$eval('.card', (els) => els.map((e) => `${e.getAttribute('data-metric')}:${['good', 'fair', 'poor'].find((b) => e.classList.contains(b))}`));
    assert.deepEqual(shown, expected);
    assert.deepEqual(w.errors, []);
    await w.page.close();
  });

  test('1,000 classes / 100,000 samples: renders fast, table virtualised, matrix zooms', async (t) => {
    const g0 = performance.now();
    const { report } = largeReport(1000, 100_000);
    const genMs = performance.now() - g0;
    const w = await newPage(browser, 1400, 1000);
    const h = new FakeHost(report, { reportRef: 'large' });
    const t0 = performance.now();
    await h.open(w.page, 'dark');
    await ready(w.page);
    const wallMs = performance.now() - t0;
    const { renderMs, sinceSentMs } = await w.page.evaluate(() => ({
      renderMs: Number(document.body.dataset.renderMs),
      sinceSentMs: performance.now() - (window as unknown as { __lastSentAt: number }).__lastSentAt,
    }));
    t.diagnostic(`generated in ${genMs.toFixed(0)} ms; page load to ready ${wallMs.toFixed(0)} ms (incl. transfer); render after receipt ${renderMs.toFixed(0)} ms; JSON.parse+render ${sinceSentMs.toFixed(0)} ms`);
    assert.ok(renderMs < 5000, `render took ${renderMs} ms`);
    assert.equal(await w.page.getAttribute('canvas.matrix-canvas', 'data-classes'), '1000');
    const canvas = w.page.locator('canvas.matrix-canvas');
    await w.page.locator('vscode-tabs').evaluate((el) => el.scrollIntoView());
    await w.page.screenshot({ path: screenshotPath('panel-1000-classes.png') });

    // Ctrl+wheel zooms around the pointer; labels appear once cells are big enough.
    const box = (await canvas.boundingBox())!;
    const before = Number(await canvas.getAttribute('data-cell'));
    await w.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await w.page.keyboard.down('Control');
    for (let i = 0; i < 4; i++) await w.page.mouse.wheel(0, -300);
    await w.page.keyboard.up('Control');
    await w.page.waitForFunction((b) => Number(document.querySelector('canvas.matrix-canvas')!.getAttribute('data-cell')) > b * 4, before);
    await w.page.mouse.move(box.x + box.width / 2 + 3, box.y + box.height / 2 + 3);
    await w.page.waitForSelector('.tooltip:not([hidden])');
    await w.page.screenshot({ path: screenshotPath('panel-1000-classes-zoomed.png') });

    const s0 = performance.now();
    await w.page.click('.matrix-view vscode-button[data-value="confusion"]');
    await w.page.waitForFunction(() => document.querySelector('canvas.matrix-canvas')!.getAttribute('data-order') === 'confusion');
    t.diagnostic(`confusion ordering of 1,000 classes: ${(performance.now() - s0).toFixed(0)} ms`);

    await selectTab(w.page, 'classes');
    await w.page.waitForSelector('.vspacer .vrow');
    const rendered = await w.page.locator('.vspacer .vrow').count();
    assert.ok(rendered < 80, `only visible rows are in the DOM (${rendered})`);
    const worst = [...report.metrics!.perClass].sort((a, b) => a.recall - b.recall || a.class.localeCompare(b.class))[0];
    assert.equal((await visibleClasses(w.page))[0], worst.class);
    // Scroll to the end: the last rows render.
    await w.page.evaluate(() => {
      const s = document.querySelector('.vscroll')!;
      s.scrollTop = s.scrollHeight;
    });
    const last = [...report.metrics!.perClass].sort((a, b) => a.recall - b.recall || a.class.localeCompare(b.class)).at(-1)!;
    await w.page.waitForSelector(`.vrow[data-class="${last.class}"]`);
    assert.deepEqual(w.errors, []);
    assert.deepEqual(await cspViolations(w.page), []);
    await w.page.close();
  });
});
