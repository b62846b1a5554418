/**
 * Headless-Chromium harness for the report panel: builds dist/webview.js with the panel's own esbuild options,
 * serves the page from a fake origin with the same HTML and CSP the extension uses (webview/panelHtml.ts), and
 * plays the extension host: `acquireVsCodeApi` posts to a Node-side {@link FakeHost} that answers with the real
 * host-side code paths (ThumbnailCache over sharp-rendered images, PR curves, exports from reportExport).
 */
import './fakeVscode'; // first: lets src/extension/reportPanel.ts load outside VS Code
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Comparison } from '../../src/core/comparison';
import type { Browser, Page } from 'playwright-core';
import type { HostToPanel, PanelGate, PanelToHost, ThumbnailItem } from '../../src/core/panelProtocol';
import type { EvalReport } from '../../src/core/report';
import { ThumbnailCache, resolveInsideRoot } from '../../src/core/thumbnails';
import { buildExport, parsePanelMessage, toPanelReport } from '../../src/extension/reportPanel';
import { classPrCurve } from '../../src/core/prCurve';
import { querySamples } from '../../src/core/panelSamples';
import { samplesOf } from '../../src/core/sampleTable';
import { panelHtml } from '../../src/extension/panelHtml';

export const ROOT = path.resolve(__dirname, '../..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ORIGIN = 'https://clip-lens.test';

/** Builds dist/webview.js with `webviewBuildOptions`; returns its size in bytes. */
export async function buildWebview(): Promise<number> {
  const esbuild = await import('esbuild');
  const { webviewBuildOptions } = (await import(path.join(ROOT, 'webview/build.mjs'))) as { webviewBuildOptions: import('esbuild').BuildOptions };
  await esbuild.build({ ...webviewBuildOptions, logLevel: 'error' });
  return fs.statSync(path.join(ROOT, 'dist/webview.js')).size;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Themes: the CSS variables VS Code injects into webviews (values of Light Modern, Dark Modern, High Contrast).

const FONT = '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", Ubuntu, "Liberation Sans", sans-serif';

export type ThemeName = 'light' | 'dark' | 'high-contrast';

const COMMON = {
  'font-family': FONT,
  'font-size': '13px',
  'font-weight': 'normal',
  'editor-font-family': '"Liberation Mono", "DejaVu Sans Mono", monospace',
};

export const THEMES: Record<ThemeName, { bodyClass: string; vars: Record<string, string> }> = {
  light: {
    bodyClass: 'vscode-light',
    vars: {
      ...COMMON,
      foreground: '#3b3b3b', 'editor-background': '#ffffff', 'editor-foreground': '#3b3b3b', descriptionForeground: '#6b6b6b',
      'widget-border': '#e5e5e5', 'panel-border': '#e5e5e5', focusBorder: '#005fb8', 'widget-shadow': '#00000029',
      'button-background': '#005fb8', 'button-foreground': '#ffffff', 'button-hoverBackground': '#0258a8', 'button-border': '#0000001a',
      'button-secondaryBackground': '#e5e5e5', 'button-secondaryForeground': '#3b3b3b', 'button-secondaryHoverBackground': '#cccccc',
      'badge-background': '#cccccc', 'badge-foreground': '#3b3b3b', 'activityBarBadge-background': '#005fb8', 'activityBarBadge-foreground': '#ffffff',
      'charts-blue': '#1a85ff', 'charts-green': '#388a34', 'charts-red': '#e51400', 'charts-yellow': '#bf8803', 'charts-orange': '#d18616',
      'checkbox-background': '#f8f8f8', 'checkbox-border': '#cecece', 'checkbox-foreground': '#3b3b3b',
      'settings-textInputBackground': '#ffffff', 'settings-textInputForeground': '#3b3b3b', 'settings-textInputBorder': '#cecece',
      'settings-dropdownBackground': '#ffffff', 'settings-dropdownBorder': '#cecece', 'settings-dropdownForeground': '#3b3b3b', 'settings-dropdownListBorder': '#c8c8c8',
      'settings-checkboxBackground': '#f8f8f8', 'settings-checkboxBorder': '#cecece', 'settings-checkboxForeground': '#3b3b3b', 'settings-headerBorder': '#e5e5e5',
      'input-placeholderForeground': '#767676', 'editorError-foreground': '#e51400', 'editorWarning-foreground': '#bf8803', 'editorInfo-foreground': '#1a85ff',
      'editorHoverWidget-background': '#f8f8f8', 'editorHoverWidget-border': '#c8c8c8', 'editorHoverWidget-foreground': '#3b3b3b',
      'list-activeSelectionBackground': '#e8e8e8', 'list-activeSelectionForeground': '#000000', 'list-hoverBackground': '#f2f2f2',
      'list-inactiveSelectionBackground': '#e4e6f1', 'list-focusOutline': '#005fb8',
      'notifications-background': '#ffffff', 'notifications-border': '#e5e5e5', 'notifications-foreground': '#3b3b3b',
      'panel-background': '#f8f8f8', 'panelTitle-activeBorder': '#005fb8', 'panelTitle-activeForeground': '#3b3b3b', 'panelTitle-inactiveForeground': '#3b3b3b',
      'progressBar-background': '#005fb8', 'textLink-foreground': '#005fb8', 'textLink-activeForeground': '#005fb8',
    },
  },
  dark: {
    bodyClass: 'vscode-dark',
    vars: {
      ...COMMON,
      foreground: '#cccccc', 'editor-background': '#1f1f1f', 'editor-foreground': '#cccccc', descriptionForeground: '#9d9d9d',
      'widget-border': '#313131', 'panel-border': '#2b2b2b', focusBorder: '#0078d4', 'widget-shadow': '#0000005c',
      'button-background': '#0078d4', 'button-foreground': '#ffffff', 'button-hoverBackground': '#026ec1', 'button-border': '#ffffff12',
      'button-secondaryBackground': '#313131', 'button-secondaryForeground': '#cccccc', 'button-secondaryHoverBackground': '#3c3c3c',
      'badge-background': '#616161', 'badge-foreground': '#f8f8f8', 'activityBarBadge-background': '#0078d4', 'activityBarBadge-foreground': '#ffffff',
      'charts-blue': '#3794ff', 'charts-green': '#89d185', 'charts-red': '#f14c4c', 'charts-yellow': '#cca700', 'charts-orange': '#d18616',
      'checkbox-background': '#313131', 'checkbox-border': '#3c3c3c', 'checkbox-foreground': '#cccccc',
      'settings-textInputBackground': '#313131', 'settings-textInputForeground': '#cccccc', 'settings-textInputBorder': '#3c3c3c',
      'settings-dropdownBackground': '#313131', 'settings-dropdownBorder': '#3c3c3c', 'settings-dropdownForeground': '#cccccc', 'settings-dropdownListBorder': '#454545',
      'settings-checkboxBackground': '#313131', 'settings-checkboxBorder': '#3c3c3c', 'settings-checkboxForeground': '#cccccc', 'settings-headerBorder': '#2b2b2b',
      'input-placeholderForeground': '#989898', 'editorError-foreground': '#f14c4c', 'editorWarning-foreground': '#cca700', 'editorInfo-foreground': '#3794ff',
      'editorHoverWidget-background': '#202020', 'editorHoverWidget-border': '#454545', 'editorHoverWidget-foreground': '#cccccc',
      'list-activeSelectionBackground': '#04395e', 'list-activeSelectionForeground': '#ffffff', 'list-hoverBackground': '#2a2d2e',
      'list-inactiveSelectionBackground': '#37373d', 'list-focusOutline': '#0078d4',
      'notifications-background': '#1f1f1f', 'notifications-border': '#2b2b2b', 'notifications-foreground': '#cccccc',
      'panel-background': '#181818', 'panelTitle-activeBorder': '#0078d4', 'panelTitle-activeForeground': '#cccccc', 'panelTitle-inactiveForeground': '#9d9d9d',
      'progressBar-background': '#0078d4', 'textLink-foreground': '#4daafc', 'textLink-activeForeground': '#4daafc',
    },
  },
  'high-contrast': {
    bodyClass: 'vscode-high-contrast',
    vars: {
      ...COMMON,
      foreground: '#ffffff', 'editor-background': '#000000', 'editor-foreground': '#ffffff', descriptionForeground: '#ffffffb3',
      'widget-border': '#6fc3df', 'panel-border': '#6fc3df', focusBorder: '#f38518', contrastBorder: '#6fc3df', contrastActiveBorder: '#f38518',
      'button-background': '#000000', 'button-foreground': '#ffffff', 'button-border': '#6fc3df',
      'button-secondaryBackground': '#000000', 'button-secondaryForeground': '#ffffff',
      'badge-background': '#000000', 'badge-foreground': '#ffffff', 'activityBarBadge-background': '#000000', 'activityBarBadge-foreground': '#ffffff',
      'charts-blue': '#3794ff', 'charts-green': '#89d185', 'charts-red': '#f14c4c', 'charts-yellow': '#ffff00', 'charts-orange': '#d18616',
      'checkbox-background': '#000000', 'checkbox-border': '#6fc3df', 'checkbox-foreground': '#ffffff',
      'settings-textInputBackground': '#000000', 'settings-textInputForeground': '#ffffff', 'settings-textInputBorder': '#6fc3df',
      'settings-dropdownBackground': '#000000', 'settings-dropdownBorder': '#6fc3df', 'settings-dropdownForeground': '#ffffff', 'settings-dropdownListBorder': '#6fc3df',
      'settings-checkboxBackground': '#000000', 'settings-checkboxBorder': '#6fc3df', 'settings-checkboxForeground': '#ffffff', 'settings-headerBorder': '#6fc3df',
      'input-placeholderForeground': '#ffffffb3', 'editorError-foreground': '#f48771', 'editorWarning-foreground': '#ffd370', 'editorInfo-foreground': '#3794ff',
      'editorHoverWidget-background': '#0c141f', 'editorHoverWidget-border': '#6fc3df', 'editorHoverWidget-foreground': '#ffffff',
      'list-activeSelectionBackground': '#000000', 'list-activeSelectionForeground': '#ffffff', 'list-hoverBackground': '#000000',
      'list-inactiveSelectionBackground': '#000000', 'list-focusOutline': '#f38518',
      'notifications-background': '#000000', 'notifications-border': '#6fc3df', 'notifications-foreground': '#ffffff',
      'panel-background': '#000000', 'panelTitle-activeBorder': '#6fc3df', 'panelTitle-activeForeground': '#ffffff', 'panelTitle-inactiveForeground': '#ffffff',
      'progressBar-background': '#6fc3df', 'textLink-foreground': '#21a6ff', 'textLink-activeForeground': '#21a6ff',
    },
  },
};

/** Applies a theme the way VS Code does: variables on <html>, a class on <body>. */
export async function applyTheme(page: Page, theme: ThemeName): Promise<void> {
  const t = THEMES[theme];
  await page.evaluate(({ vars, bodyClass }) => {
    const root = document.documentElement;
    for (let i = root.style.length - 1; i >= 0; i--) {
      const name = root.style.item(i);
      if (name.startsWith('--vscode-')) root.style.removeProperty(name);
    }
    for (const [k, v] of Object.entries(vars)) root.style.setProperty(`--vscode-${k}`, v);
    document.body.classList.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast', 'vscode-high-contrast-light');
    document.body.classList.add(bodyClass);
  }, t);
}

// ---------------------------------------------------------------------------------------------------------------
// Images: what each sample shows, rendered on demand with sharp so thumbnails go through the real ThumbnailCache.

const COLOURS: Record<string, string> = { red: '#d94a3d', green: '#3f9e4d', blue: '#3a6fd8', yellow: '#e8b923' };
const BACKGROUNDS = ['#f2efe9', '#e9eef2', '#eef2e9', '#f4f4f4', '#ece6f2', '#dfe3e6'];

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** An SVG of a coloured shape ("red_circle"), varied per path in size, position, rotation and background. */
export function shapeSvg(className: string, seedKey: string, size = 256): string {
  const [colour, shape] = className.split('_');
  const h = hash(seedKey);
  const fill = COLOURS[colour] ?? '#888888';
  const bg = BACKGROUNDS[h % BACKGROUNDS.length];
  const r = size * (0.22 + ((h >>> 4) % 100) / 100 * 0.14);
  const cx = size / 2 + (((h >>> 8) % 41) - 20) * size / 256;
  const cy = size / 2 + (((h >>> 14) % 41) - 20) * size / 256;
  const rot = (h >>> 20) % 90;
  let body: string;
  if (shape === 'circle') body = `<circle cx="${cx}" cy="${cy}" r="${r}"/>`;
  else if (shape === 'square') body = `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" rx="${r * 0.08}" transform="rotate(${rot % 30} ${cx} ${cy})"/>`;
  else if (shape === 'triangle') {
    const pts = [0, 1, 2].map((k) => {
      const a = -Math.PI / 2 + (k * 2 * Math.PI) / 3 + (rot % 20) * (Math.PI / 180);
      return `${cx + r * 1.15 * Math.cos(a)},${cy + r * 1.15 * Math.sin(a)}`;
    });
    body = `<polygon points="${pts.join(' ')}"/>`;
  } else {
    const pts = Array.from({ length: 10 }, (_, k) => {
      const a = -Math.PI / 2 + (k * Math.PI) / 5 + (rot % 36) * (Math.PI / 180);
      const rr = k % 2 ? r * 0.48 : r * 1.1;
      return `${cx + rr * Math.cos(a)},${cy + rr * Math.sin(a)}`;
    });
    body = `<polygon points="${pts.join(' ')}"/>`;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="${bg}"/><g fill="${fill}" stroke="#00000022" stroke-width="2">${body}</g></svg>`;
}

/** Writes (once) the image a sample path shows into `root`; unreadable samples get a corrupt file. */
export async function ensureImage(root: string, relPath: string, shows: string | undefined, corrupt: boolean, seedKey = relPath): Promise<string> {
  const file = resolveInsideRoot(root, relPath);
  if (!file) throw new Error(`bad path ${relPath}`);
  if (fs.existsSync(file)) return file;
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  if (corrupt || !shows) await fs.promises.writeFile(file, Buffer.from('not really a PNG file'));
  else await sharp(Buffer.from(shapeSvg(shows, seedKey))).png().toFile(file);
  return file;
}

// ---------------------------------------------------------------------------------------------------------------
// The fake extension host.

export interface FakeHostOptions {
  /** Where sample images are rendered (the dataset root on disk for this test). */
  imageRoot?: string;
  /** What each sample path shows, for rendering its image. */
  shows?: Map<string, string>;
  reportRef?: string;
  /** Passed to toPanelReport: above this many probabilities the webview must ask the host for PR curves. */
  maxProbabilities?: number;
  /** The commit gate sent with the report. */
  gate?: PanelGate | null;
  /** What "Compare with..." answers (the run the user picked, compared); nothing = the user cancelled. */
  comparison?: Comparison;
}

/**
 * The page side of the fake host: `acquireVsCodeApi` (once only, as in VS Code), state kept in sessionStorage so it
 * survives a reload like VS Code's webview state, messages forwarded to the Node side, CSP violations recorded.
 */
const FAKE_VSCODE_API = `
window.__name = (f) => f;
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ': ' + e.blockedURI));
let acquired = false;
window.acquireVsCodeApi = () => {
  if (acquired) throw new Error('acquireVsCodeApi may only be called once');
  acquired = true;
  return {
    postMessage: (m) => window.__clipLensPost(m),
    getState: () => JSON.parse(sessionStorage.getItem('vscode-state') || 'null'),
    setState: (s) => sessionStorage.setItem('vscode-state', JSON.stringify(s)),
  };
};
`;

export class FakeHost {
  /** Paths whose image is rendered like another path's (duplicates and leaked copies share their content). */
  private readonly sameAs = new Map<string, string>();
  /** Every message the webview sent, in order. */
  readonly received: PanelToHost[] = [];
  /** Export files built for the webview's export requests. */
  readonly exports: Array<ReturnType<typeof buildExport>> = [];
  private readonly thumbnails = new ThumbnailCache({ size: 128 });
  private page: Page | null = null;
  private readonly waiters: Array<{ test: (m: PanelToHost) => boolean; resolve: (m: PanelToHost) => void }> = [];

  constructor(
    public report: EvalReport,
    private readonly options: FakeHostOptions = {},
  ) {
    for (const w of report.warnings) {
      if ((w.kind === 'duplicate' || w.kind === 'possible-leakage') && w.paths?.length) {
        for (const p of w.paths.slice(1)) this.sameAs.set(p, w.paths[0]);
      }
    }
  }

  /** Opens the panel page in `page`, wired to this host. */
  async open(page: Page, theme: ThemeName): Promise<void> {
    this.page = page;
    await page.exposeBinding('__clipLensPost', (_source, message: unknown) => {
      // A reply that races the end of a test (the page or the browser closed meanwhile) goes nowhere; any other
      // failure stays an unhandled rejection, which fails the run.
      void this.receive(message).catch((e: unknown) => {
        if (page.isClosed() || /has been closed/.test(String(e))) return;
        throw e;
      });
    });
    // A string, not a function: tsx would compile a function with esbuild helpers (__name) the page lacks.
    await page.addInitScript({ content: FAKE_VSCODE_API });
    await page.route(`${ORIGIN}/**`, async (route) => {
      const url = new URL(route.request().url());
      if (url.pathname === '/' || url.pathname === '/index.html') {
        const html = panelHtml({
          cspSource: ORIGIN,
          nonce: 'dGVzdC1ub25jZS0xMjM0NTY3OA',
          scriptUri: `${ORIGIN}/dist/webview.js`,
          styleUri: `${ORIGIN}/media/panel.css`,
        });
        return route.fulfill({ status: 200, contentType: 'text/html', body: html });
      }
      const file = path.join(ROOT, url.pathname);
      if (!file.startsWith(ROOT) || !fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
      const type = file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'application/octet-stream';
      return route.fulfill({ status: 200, contentType: type, body: fs.readFileSync(file) });
    });
    // Any other request (remote content) is a failure of the no-remote-content rule: record and abort it.
    await page.route((url) => !url.href.startsWith(ORIGIN) && !url.href.startsWith('data:'), (route) => {
      this.remoteRequests.push(route.request().url());
      return route.abort();
    });
    await page.goto(`${ORIGIN}/`);
    await applyTheme(page, theme);
  }

  readonly remoteRequests: string[] = [];
  private probabilitiesStripped = false;

  /** Resolves with the next message (received from now on) that passes `test`. */
  next(test: (m: PanelToHost) => boolean, timeoutMs = 10_000): Promise<PanelToHost> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a message from the webview')), timeoutMs);
      this.waiters.push({
        test,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /**
   * Posts a message to the webview. It travels as a JSON string and is parsed in the page, as VS Code does; the
   * page records when parsing started (`__lastSentAt`) so load times can be measured from there.
   */
  async send(message: HostToPanel): Promise<void> {
    await this.page!.evaluate((json) => {
      (window as unknown as { __lastSentAt: number }).__lastSentAt = performance.now();
      window.postMessage(JSON.parse(json), '*');
    }, JSON.stringify(message));
  }

  private async receive(raw: unknown): Promise<void> {
    const m = parsePanelMessage(raw);
    if (!m) throw new Error(`malformed message from the webview: ${JSON.stringify(raw)}`);
    this.received.push(m);
    for (let i = 0; i < this.waiters.length; i++) {
      if (this.waiters[i].test(m)) {
        this.waiters.splice(i, 1)[0].resolve(m);
        break;
      }
    }
    switch (m.type) {
      case 'ready': {
        const { report, samples, probabilitiesStripped } = toPanelReport(this.report, this.options.maxProbabilities);
        this.probabilitiesStripped = probabilitiesStripped;
        return this.send({ type: 'report', report, samples, reportRef: this.options.reportRef, probabilitiesStripped, gate: this.options.gate ?? null });
      }
      case 'requestSamples': {
        const { total, rows } = querySamples(this.report, m.query, m.start, m.end, this.probabilitiesStripped);
        return this.send({ type: 'samples', requestId: m.requestId, total, start: m.start, rows });
      }
      case 'requestThumbnails': {
        const items: ThumbnailItem[] = [];
        for (const p of m.paths) {
          const sample = samplesOf(this.report).byPath(p);
          if (!sample || !this.options.imageRoot) {
            items.push({ path: p, error: 'no such sample' });
            continue;
          }
          try {
            const original = this.sameAs.get(p) ?? p;
            const file = await ensureImage(this.options.imageRoot, p, this.options.shows?.get(original), Boolean(sample.error), original);
            const t = await this.thumbnails.get(file);
            items.push({ path: p, dataUri: t.dataUri, width: t.width, height: t.height });
          } catch (e) {
            items.push({ path: p, error: e instanceof Error ? e.message : String(e) });
          }
        }
        return this.send({ type: 'thumbnails', requestId: m.requestId, items });
      }
      case 'requestPrCurve':
        return this.send({ type: 'prCurve', requestId: m.requestId, class: m.class, curve: classPrCurve(m.class, this.report.dataset.classes, samplesOf(this.report).toArray(), m.split) });
      case 'applyFix':
        return this.send({ type: 'actionResult', requestId: m.requestId, ok: true, message: `Moved ${path.posix.basename(m.path)} to ${m.toClass}/` });
      case 'ignoreSample':
        return this.send({ type: 'actionResult', requestId: m.requestId, ok: true, message: `Ignored ${path.posix.basename(m.path)}` });
      case 'bulkAction':
        return this.send({ type: 'actionResult', requestId: m.requestId, ok: true, message: m.action.kind === 'fix' ? `Moved ${m.action.paths.length} images to '${m.action.toClass}'` : `Ignored ${m.action.paths.length} samples` });
      case 'export': {
        const file = buildExport(this.report, m.request);
        this.exports.push(file);
        return this.send({ type: 'actionResult', requestId: m.requestId, ok: true, message: `Saved ${file.fileName}` });
      }
      case 'pickComparison':
        // The picker is the host's: the test decides what the user picked.
        return this.send({ type: 'comparison', requestId: m.requestId, ...(this.options.comparison ? { comparison: this.options.comparison } : {}) });
      default:
        return;
    }
  }
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Where screenshots go: docs/images when UPDATE_SCREENSHOTS=1, else out/screenshots. */
export function screenshotPath(name: string): string {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(ROOT, 'docs/images') : path.join(ROOT, 'out/screenshots');
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
