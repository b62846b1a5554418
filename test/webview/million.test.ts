/**
 * A million-sample report in the panel (headless Chromium): written with its samples in the sidecar only, read back
 * through the host's one accessor, and shown by a panel that holds a few pages of samples. The grid of the biggest
 * class (600,000 images) scrolls to its end and shows the right rows, with a bounded number of rows in the DOM and
 * of page requests. Load time and memory are printed as diagnostics (docs/benchmarks.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { writeJsonReport } from '../../src/cli/io';
import type { ClassMetrics, EvalReport, LabelIssue, Metrics, ReportSample } from '../../src/core/report';
import { readReportFile, samplesOf } from '../../src/core/reportSamples';
import { CHROMIUM, FakeHost, buildWebview, launchChromium, tmpDir } from './harness';

const N = 1_000_000;
const BIG = 600_000;
const CLASSES = Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(3, '0')}`);

/** Sample i: class c000 for the first BIG, then round robin; top-1 right 9 times in 10. */
function million(): EvalReport {
  const k = CLASSES.length;
  const samples: ReportSample[] = new Array(N);
  const cm = CLASSES.map(() => new Array<number>(k).fill(0));
  const issues: LabelIssue[] = [];
  for (let i = 0; i < N; i++) {
    const t = i < BIG ? 0 : 1 + (i % (k - 1));
    const p = i % 10 === 3 ? (t + 1) % k : t;
    const label = CLASSES[t]!;
    const path = `${label}/img_${String(i).padStart(7, '0')}.jpg`;
    const score = 0.5 + ((i * 7919) % 1000) / 2001;
    samples[i] = { path, label, split: i % 5 === 0 ? 'val' : 'train', predicted: [{ class: CLASSES[p]!, score }, { class: CLASSES[(p + 2) % k]!, score: (1 - score) / 2 }] };
    cm[t]![p]!++;
    if (p !== t && issues.length < 500) issues.push({ index: i, given: label, suggested: CLASSES[p]!, score: 1 - score, rank: issues.length + 1, path });
  }
  const perClass: ClassMetrics[] = CLASSES.map((c, t) => {
    const support = cm[t]!.reduce((a, b) => a + b, 0);
    const predicted = cm.reduce((a, row) => a + row[t]!, 0);
    const right = cm[t]![t]!;
    const precision = predicted ? right / predicted : 0;
    const recall = support ? right / support : 0;
    return { class: c, support, predicted, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, recallAtK: { '2': recall }, averagePrecision: null };
  });
  const right = CLASSES.reduce((a, _, t) => a + cm[t]![t]!, 0);
  const macro = (key: 'precision' | 'recall' | 'f1') => perClass.reduce((a, c) => a + c[key], 0) / k;
  const metrics: Metrics = {
    classes: CLASSES,
    n: N,
    top1Accuracy: right / N,
    balancedAccuracy: macro('recall'),
    recallAtK: { '1': right / N, '2': right / N },
    macro: { precision: macro('precision'), recall: macro('recall'), f1: macro('f1') },
    weighted: { precision: macro('precision'), recall: macro('recall'), f1: macro('f1') },
    perClass,
    confusionMatrix: cm,
  };
  return {
    schemaVersion: 2,
    tool: { name: 'clip-lens', version: '0.0.0' },
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { id: 'clip-vit-base-patch32', dir: '/m', quantized: false, embeddingDim: 512, logitScale: 100, imageSize: 224 },
    templates: { name: 'simple', count: 1 },
    topK: 2,
    dataset: { root: '/data/million', format: 'class-folders', classes: CLASSES, splits: ['train', 'val'], counts: { samples: N, evaluated: N, failed: 0, perClass: Object.fromEntries(perClass.map((c) => [c.class, c.support])) } },
    samples,
    errors: [],
    metrics,
    warnings: [],
    labelIssues: issues,
    timing: { totalMs: 0, textMs: 0, imageMs: 0, imagesComputed: 0, imagesFromCache: 0, imagesPerSecond: 0 },
  };
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

describe('a million-sample report in the panel', { skip: !fs.existsSync(CHROMIUM) && `Chromium not found at ${CHROMIUM}` }, () => {
  let browser: Browser;
  let page: Page;
  let host: FakeHost;
  let dir: string;

  before(async () => {
    await buildWebview();
    browser = await launchChromium();
    dir = tmpDir('clip-lens-million-');
  });

  after(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('loads from the sidecar, renders, and the grid scrolls to the end of 600,000 images with bounded rows and requests', async (t) => {
    const g0 = performance.now();
    let report: EvalReport | null = million();
    const genMs = performance.now() - g0;
    const file = path.join(dir, 'million.json');
    const w0 = performance.now();
    await writeJsonReport(report, file);
    const writeMs = performance.now() - w0;
    report = null;
    const jsonBytes = fs.statSync(file).size;
    const sidecarBytes = fs.statSync(path.join(dir, 'million.samples.parquet')).size;
    assert.ok(jsonBytes < 1_000_000, `report JSON ${jsonBytes} bytes`);
    (globalThis as { gc?: () => void }).gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const r0 = performance.now();
    const loaded = await readReportFile(file);
    const readMs = performance.now() - r0;
    const hostHeap = process.memoryUsage().heapUsed - heap0;
    assert.equal(loaded.samples, undefined);
    assert.equal(samplesOf(loaded).length, N);

    host = new FakeHost(loaded, { reportRef: 'million' });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
    // Generous waits: the machine running the suite may be loaded; the figures are printed, not asserted.
    page.setDefaultTimeout(120_000);
    page.setDefaultNavigationTimeout(120_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const p0 = performance.now();
    await host.open(page, 'dark');
    await page.waitForSelector('body[data-state="ready"]', { timeout: 120_000 });
    const readyMs = performance.now() - p0;

    await page.click('vscode-tab-header[data-tab="images"]');
    await page.selectOption('select.grid-sort', 'path');
    const g1 = performance.now();
    await page.selectOption('select.grid-source', 'class:c000');
    await page.waitForFunction((n) => document.querySelector('.image-grid')?.getAttribute('data-count') === String(n), BIG, { timeout: 120_000 });
    await page.waitForSelector('.grid-tile[data-path]');
    const gridMs = performance.now() - g1;
    const first = await page.locator('.grid-tile[data-path]').first().getAttribute('data-path');
    assert.equal(first, 'c000/img_0000000.jpg');

    const s0 = performance.now();
    await page.locator('.grid-viewport').evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    const last = `c000/img_${String(BIG - 1).padStart(7, '0')}.jpg`;
    await page.waitForSelector(`.grid-tile[data-path="${last}"]`, { timeout: 60_000 });
    const scrollMs = performance.now() - s0;
    const tiles = await page.$$eval('.grid-tile[data-path]', (els) => els.map((e) => Number((e as HTMLElement).dataset.at)));
    assert.ok(tiles.length > 0 && tiles.length < 200, `${tiles.length} tiles in the DOM`);
    assert.equal(Math.max(...tiles), BIG - 1, 'the last row shows the last image');
    // Every tile shows the image at its position: path order = sample order here.
    const shown = await page.$$eval('.grid-tile[data-path]', (els) => els.map((e) => [Number((e as HTMLElement).dataset.at), (e as HTMLElement).dataset.path!] as [number, string]));
    for (const [at, p] of shown) assert.equal(p, `c000/img_${String(at).padStart(7, '0')}.jpg`);
    const requests = host.received.filter((m) => m.type === 'requestSamples').length;
    assert.ok(requests <= 8, `${requests} page requests`);
    const pageHeap = await page.evaluate(() => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0);
    assert.deepEqual(errors, []);
    t.diagnostic(
      `N=${N}: generated ${genMs.toFixed(0)} ms; written ${writeMs.toFixed(0)} ms (JSON ${jsonBytes} B, sidecar ${mb(sidecarBytes)}); ` +
        `sidecar read ${readMs.toFixed(0)} ms, host heap +${mb(hostHeap)}; panel ready ${readyMs.toFixed(0)} ms; ` +
        `grid of ${BIG} images (host query + sort by path + first page) ${gridMs.toFixed(0)} ms; scroll to end ${scrollMs.toFixed(0)} ms; ${requests} page requests; ${tiles.length} tiles in the DOM; page JS heap ${mb(pageHeap)}`,
    );
  });
});
