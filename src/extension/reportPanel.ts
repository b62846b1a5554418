/**
 * The report panel's extension-host side: one WebviewPanel showing an EvalReport.
 *
 * - Strict CSP with a fresh nonce per page (see webview/panelHtml.ts); scripts enabled, nothing remote.
 * - `localResourceRoots`: the extension's dist/ and media/ folders and the dataset root, nothing else.
 * - The webview keeps its UI state with setState; the host keeps the report and sends it on every `ready`, so
 *   hide/show needs no retainContextWhenHidden, and the serializer restores the panel after a window reload
 *   through `ReportPanelActions.loadReport(reportRef)`.
 * - Everything the webview asks for is checked against the report (paths must be sample paths inside the dataset
 *   root, classes must exist) before the file system or the extension's callbacks are touched.
 * - Actions that change things (fixes, ignore, saving exports, opening editors) are delegated to the callbacks the
 *   extension supplies ({@link ReportPanelActions}).
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type {
  ExportFormat,
  ExportRequest,
  HostToPanel,
  PanelToHost,
  PanelSamples,
  PanelUiState,
  SearchHitItem,
  RevealTarget,
  SampleFix,
  BulkAction,
  ThumbnailItem,
} from '../core/panelProtocol';
import type { EvalReport, ReportSample } from '../core/report';
import type { GateResult } from '../core/gate';
import type { Comparison } from '../core/comparison';
import { htmlReport, jsonReport, perClassCsv } from '../core/reportExport';
import { ThumbnailCache, resolveInsideRoot } from '../core/thumbnails';
import { classPrCurve } from '../core/prCurve';
import { panelHtml } from './panelHtml';
import { datasetFormat } from '../core/datasetFormat';
import { samplesOf } from '../core/sampleTable';
import { panelSample, querySamples, referencedIndices, withSamples } from '../core/panelSamples';

export const REPORT_PANEL_VIEW_TYPE = 'clipLens.report';

/** Probability vectors are sent to the webview only up to this many numbers in total (samples × classes). */
export const MAX_PANEL_PROBABILITIES = 2_000_000;

/** An export ready to be written. */
export interface ExportFile {
  format: ExportFormat;
  /** Suggested file name, e.g. "shapes-report.html". */
  fileName: string;
  /** Text (json, csv, html) or bytes (png). */
  content: string | Uint8Array;
  /** Folder to propose in a save dialog: the dataset root. */
  defaultDir: vscode.Uri;
}

/** What the panel cannot do itself; supplied by the extension. Throw (or reject) to report a failure to the user. */
export interface ReportPanelActions {
  /** Open an image of the dataset (e.g. `vscode.commands.executeCommand('vscode.open', uri)`). */
  openImage(image: vscode.Uri): Thenable<unknown> | void;
  /** Open a label file at a 1-based line. */
  openLabelLine(file: vscode.Uri, line: number): Thenable<unknown> | void;
  /** Apply a fix of a likely label error; resolve with a short confirmation such as "Moved to circle_red/". */
  applyFix(fix: SampleFix, report: EvalReport): Promise<string | void>;
  /** Ignore a sample (dataset-relative path) from now on; resolve with a short confirmation. */
  ignoreSample(samplePath: string, report: EvalReport): Promise<string | void>;
  /** Save an export; resolve with where it went, or undefined when the user cancelled. See {@link saveExportWithDialog}. */
  saveExport(file: ExportFile): Promise<vscode.Uri | undefined>;
  /** Load the report named by a `reportRef` given to createOrShow, to restore the panel after a window reload. */
  loadReport?(reportRef: string): Promise<EvalReport | undefined>;
  /** Samples already ignored (dataset-relative paths), shown as resolved in the label-issue list. */
  ignoredPaths?(report: EvalReport): readonly string[];
  /** Samples fixed or ignored since the evaluation (and the config's ignore list), by path. */
  resolvedPaths?(report: EvalReport): Record<string, 'fixed' | 'ignored'>;
  /** Log a line (webview errors, refused requests), e.g. to an OutputChannel. */
  log?(message: string): void;
  /** The commit gate's result for the report, when its `.clip-lens.json` sets thresholds (shown at the top). */
  gateOf?(report: EvalReport): GateResult | null | undefined;
  /** Apply fixes to several samples as ONE undoable step (the image grid's bulk actions). */
  bulkAction?(action: BulkAction, report: EvalReport): Promise<string | void>;
  /**
   * "Compare with...": let the user pick an earlier run (baseline, previous run, a file) and compare `report` with it;
   * undefined when cancelled.
   */
  pickComparison?(report: EvalReport): Promise<{ comparison: Comparison } | { error: string } | undefined>;
}

export interface ShowReportOptions {
  /** Opaque reference (e.g. the report JSON path) saved with the panel state and passed to `loadReport` on restore. */
  reportRef?: string;
  viewColumn?: vscode.ViewColumn;
  preserveFocus?: boolean;
}

/**
 * The report as sent to the webview: without its samples (at any size; the panel asks for pages of them, see
 * core/panelSamples.ts), with the samples its lists name; those without content hashes, and without probability
 * vectors when the report's would be too large.
 */
export function toPanelReport(report: EvalReport, maxProbabilities = MAX_PANEL_PROBABILITIES): { report: EvalReport; samples: PanelSamples; probabilitiesStripped: boolean } {
  const table = samplesOf(report);
  const classes = report.dataset.classes.length;
  const f = table.field;
  let any = false;
  for (let i = 0; i < table.length && !any; i++) any = f.probabilities(i) > 0;
  const strip = any && table.length * classes > maxProbabilities;
  let full = any && !strip;
  for (let i = 0; i < table.length && full; i++) if (f.top1(i) !== undefined && f.probabilities(i) !== classes) full = false;
  const known = referencedIndices(report).map((index) => ({ index, sample: panelSample(table.at(index) as ReportSample, strip) }));
  const { samples: _samples, ...rest } = report;
  return { report: rest, samples: { count: table.length, known, hasProbabilities: full }, probabilitiesStripped: strip };
}

/** The model a search's scores came from: a report of another model gets no stale search. */
function searchModel(report: EvalReport): string {
  return `${report.model.id}\u0000${report.model.quantized}`;
}

/** Builds the fix for a sample in the dataset's own terms; null when the dataset cannot be fixed that way. */
export function buildFix(report: EvalReport, sample: ReportSample, toClass: string): SampleFix | null {
  if (datasetFormat(report.dataset.format).fix === 'change-label') {
    if (!sample.source) return null;
    return { kind: 'change-label', path: sample.path, file: sample.source.file, line: sample.source.line, fromClass: sample.label, toClass };
  }
  return { kind: 'move-to-folder', path: sample.path, fromClass: sample.label, toClass };
}

/** A file named by the report (label file, problem file): inside the dataset root, or the report's own label file. */
export function resolveReportFile(report: EvalReport, file: string): string | null {
  if (path.isAbsolute(file)) {
    return report.dataset.labelFile && path.resolve(file) === path.resolve(report.dataset.labelFile) ? path.resolve(file) : null;
  }
  return resolveInsideRoot(report.dataset.root, file);
}

/** Suggested export file names: "<dataset>-report.json", "-per-class.csv", "-report.html", "-confusion-matrix.png". */
export function exportFileName(report: EvalReport, format: ExportFormat): string {
  const base = (path.basename(report.dataset.root) || 'dataset').replace(/[^\w.-]+/g, '_');
  return { json: `${base}-report.json`, csv: `${base}-per-class.csv`, html: `${base}-report.html`, png: `${base}-confusion-matrix.png` }[format];
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Decodes a `data:image/png;base64,` URL; throws unless it is a PNG. */
export function decodePngDataUrl(url: string): Uint8Array {
  const m = /^data:image\/png;base64,([A-Za-z0-9+/=]+)$/.exec(url);
  if (!m) throw new Error('not a PNG data URL');
  const bytes = Buffer.from(m[1], 'base64');
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG image');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Content of an export request, built from the report the host owns. */
export function buildExport(report: EvalReport, request: ExportRequest): Pick<ExportFile, 'format' | 'fileName' | 'content'> {
  const fileName = exportFileName(report, request.format);
  switch (request.format) {
    case 'json':
      return { format: 'json', fileName, content: jsonReport(report) };
    case 'csv':
      return { format: 'csv', fileName, content: perClassCsv(report) };
    case 'html': {
      // The matrix image is optional: an unusable one is left out rather than failing the export.
      let matrixPng: string | undefined;
      try {
        if (request.matrixPng) decodePngDataUrl(request.matrixPng);
        matrixPng = request.matrixPng;
      } catch {
        matrixPng = undefined;
      }
      return { format: 'html', fileName, content: htmlReport(report, { matrixPng }) };
    }
    case 'png':
      return { format: 'png', fileName, content: decodePngDataUrl(request.png) };
  }
}

/** A `saveExport` implementation: a save dialog in the dataset folder, then `workspace.fs.writeFile`. */
export async function saveExportWithDialog(file: ExportFile): Promise<vscode.Uri | undefined> {
  const filters: Record<ExportFormat, Record<string, string[]>> = {
    json: { 'JSON report': ['json'] },
    csv: { CSV: ['csv'] },
    html: { 'HTML report': ['html'] },
    png: { 'PNG image': ['png'] },
  };
  const target = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.joinPath(file.defaultDir, file.fileName),
    filters: filters[file.format],
    saveLabel: 'Export',
  });
  if (!target) return undefined;
  const bytes = typeof file.content === 'string' ? new TextEncoder().encode(file.content) : file.content;
  await vscode.workspace.fs.writeFile(target, bytes);
  return target;
}

function nonce(): string {
  return crypto.randomBytes(18).toString('base64url');
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Shape check of a message from the webview (it is not trusted to be well-formed). */
export function parsePanelMessage(v: unknown): PanelToHost | null {
  if (!isObj(v) || typeof v.type !== 'string') return null;
  const id = typeof v.requestId === 'number' && Number.isSafeInteger(v.requestId);
  const str = (x: unknown) => typeof x === 'string' && x.length > 0 && x.length < 4096;
  switch (v.type) {
    case 'ready':
      return { type: 'ready' };
    case 'requestThumbnails':
      return id && Array.isArray(v.paths) && v.paths.every(str) ? (v as PanelToHost) : null;
    case 'requestPrCurve':
      return id && str(v.class) && (v.split === null || str(v.split)) ? (v as PanelToHost) : null;
    case 'requestSamples': {
      const q = v.query;
      const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
      if (!id || !isObj(q) || !int(v.start) || !int(v.end) || !(q.split === null || str(q.split))) return null;
      if (q.sort !== 'labelScore' && q.sort !== 'topScore' && q.sort !== 'path' && q.sort !== 'report') return null;
      const s = q.source;
      const ok = isObj(s) && (s.kind === 'issues' || (s.kind === 'class' && str(s.class)) || (s.kind === 'cell' && isObj(s.cell) && str(s.cell.trueClass) && str(s.cell.predictedClass)));
      return ok ? (v as PanelToHost) : null;
    }
    case 'openImage':
    case 'openLabelLine':
      return str(v.path) ? (v as PanelToHost) : null;
    case 'openProblem':
      return typeof v.index === 'number' && Number.isSafeInteger(v.index) ? (v as PanelToHost) : null;
    case 'applyFix':
      return id && str(v.path) && str(v.toClass) ? (v as PanelToHost) : null;
    case 'ignoreSample':
      return id && str(v.path) ? (v as PanelToHost) : null;
    case 'bulkAction': {
      const a = v.action;
      if (!id || !isObj(a) || !Array.isArray(a.paths) || a.paths.length === 0 || a.paths.length > 10_000 || !a.paths.every(str)) return null;
      if (a.kind === 'fix') return str(a.toClass) ? { type: 'bulkAction', requestId: v.requestId as number, action: { kind: 'fix', paths: a.paths as string[], toClass: a.toClass as string } } : null;
      if (a.kind === 'ignore') return { type: 'bulkAction', requestId: v.requestId as number, action: { kind: 'ignore', paths: a.paths as string[] } };
      return null;
    }
    case 'export': {
      const r = v.request;
      if (!id || !isObj(r)) return null;
      if (r.format === 'json' || r.format === 'csv') return v as PanelToHost;
      if (r.format === 'html') return r.matrixPng === undefined || typeof r.matrixPng === 'string' ? (v as PanelToHost) : null;
      if (r.format === 'png') return typeof r.png === 'string' ? (v as PanelToHost) : null;
      return null;
    }
    case 'pickComparison':
      return id ? { type: 'pickComparison', requestId: v.requestId as number } : null;
    case 'error':
      return typeof v.message === 'string' ? { type: 'error', message: v.message.slice(0, 2000), stack: typeof v.stack === 'string' ? v.stack.slice(0, 8000) : undefined } : null;
    default:
      return null;
  }
}

/** Most thumbnails answered per request (the webview sends 24). */
const MAX_THUMBNAILS_PER_REQUEST = 64;

export class ReportPanel implements vscode.Disposable {
  /** One panel per dataset root (evaluating a second dataset opens a second panel instead of replacing the first). */
  private static readonly panels = new Set<ReportPanel>();
  private static lastActive: ReportPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly thumbnails = new ThumbnailCache({ size: 128, format: 'webp' });
  private report: EvalReport | undefined;
  private reportRef: string | undefined;
  private probabilitiesStripped = false;
  private emptyMessage = 'No report to show yet. Run "CLIP Lens: Evaluate Dataset" first.';
  private disposed = false;
  /** The webview said `ready` and has not been unloaded since (hidden panels lose their content). */
  private webviewReady = false;
  private pendingReveal: RevealTarget | undefined;
  /** The last search shown, sent again with each new report of the same dataset and model (see RevealTarget). */
  private search: { query: string; hits: SearchHitItem[]; root: string; model: string } | undefined;

  /** The panel used last (the active one, else the newest), if any. */
  static get current(): ReportPanel | undefined {
    if (ReportPanel.lastActive && ReportPanel.panels.has(ReportPanel.lastActive)) return ReportPanel.lastActive;
    return [...ReportPanel.panels].pop();
  }

  /** Every open report panel. */
  static get all(): ReportPanel[] {
    return [...ReportPanel.panels];
  }

  /** The panel showing the report of a dataset root, if any. */
  static forRoot(root: string): ReportPanel | undefined {
    const key = (p: string) => (process.platform === 'win32' || process.platform === 'darwin' ? path.resolve(p).toLowerCase() : path.resolve(p));
    return [...ReportPanel.panels].find((p) => p.report && key(p.report.dataset.root) === key(root));
  }

  /** Dataset root of the report shown. */
  get root(): string | undefined {
    return this.report?.dataset.root;
  }

  /** Shows `report` in its dataset's panel, creating it or revealing and updating the existing one. */
  static createOrShow(extensionUri: vscode.Uri, actions: ReportPanelActions, report: EvalReport, options: ShowReportOptions = {}): ReportPanel {
    const existing = ReportPanel.forRoot(report.dataset.root);
    if (existing) {
      existing.panel.reveal(options.viewColumn, options.preserveFocus);
      existing.update(report, options);
      ReportPanel.lastActive = existing;
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(
      REPORT_PANEL_VIEW_TYPE,
      ReportPanel.title(report),
      { viewColumn: options.viewColumn ?? vscode.ViewColumn.Active, preserveFocus: options.preserveFocus },
      { ...ReportPanel.webviewOptions(extensionUri, report), enableFindWidget: true },
    );
    const p = new ReportPanel(panel, extensionUri, actions);
    p.update(report, options);
    return p;
  }

  /**
   * Registers the serializer that restores the panel after a window reload (call during activation; the extension
   * also needs `"onWebviewPanel:clipLens.report"` in activationEvents).
   */
  static registerSerializer(extensionUri: vscode.Uri, actions: ReportPanelActions): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(REPORT_PANEL_VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown) {
        const saved = isObj(state) ? (state as Partial<PanelUiState>) : {};
        const ref = typeof saved.reportRef === 'string' ? saved.reportRef : undefined;
        const p = new ReportPanel(panel, extensionUri, actions);
        let report: EvalReport | undefined;
        if (ref && actions.loadReport) {
          try {
            report = await actions.loadReport(ref);
          } catch (e) {
            actions.log?.(`CLIP Lens: could not reload the report ${ref}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
        if (report) p.update(report, { reportRef: ref });
        else p.showEmpty(ref ? `The report ${ref} is no longer available. Evaluate the dataset again to see it.` : p.emptyMessage);
      },
    });
  }

  private static title(report: EvalReport): string {
    return `CLIP Lens: ${path.basename(report.dataset.root) || report.dataset.root}`;
  }

  private static webviewOptions(extensionUri: vscode.Uri, report: EvalReport | undefined): vscode.WebviewOptions {
    const roots = [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')];
    if (report) roots.push(vscode.Uri.file(report.dataset.root));
    return { enableScripts: true, enableCommandUris: false, localResourceRoots: roots };
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly actions: ReportPanelActions,
  ) {
    ReportPanel.panels.add(this);
    ReportPanel.lastActive = this;
    panel.webview.options = ReportPanel.webviewOptions(extensionUri, undefined);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'panel-icon.svg');
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.onDidChangeViewState(() => {
        // Without retainContextWhenHidden a hidden webview is unloaded; it says `ready` again when shown.
        if (!panel.visible) this.webviewReady = false;
        if (panel.active) ReportPanel.lastActive = this;
      }),
      panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
    );
  }

  /**
   * Replaces the report shown. The webview keeps its view settings (tab, sorting, zoom) and, for the same report
   * (same dataset root and creation time), its selections.
   */
  update(report: EvalReport, options: Pick<ShowReportOptions, 'reportRef'> = {}): void {
    const rootChanged = this.report?.dataset.root !== report.dataset.root;
    this.report = report;
    this.reportRef = options.reportRef;
    this.panel.title = ReportPanel.title(report);
    if (rootChanged) {
      this.thumbnails.clear();
      this.panel.webview.options = ReportPanel.webviewOptions(this.extensionUri, report);
    }
    this.sendReport();
    // A re-run (say, after the config was saved) keeps the search on screen: its scores are the same model's on the
    // same images; the samples are looked up again (an image moved since drops out).
    const search = this.search;
    if (search && (search.root !== report.dataset.root || search.model !== searchModel(report))) this.search = undefined;
    else if (search && this.webviewReady) this.post({ type: 'reveal', target: { kind: 'search', query: search.query, hits: withSamples(report, search.hits), refresh: true } });
  }

  /** Brings a class, a matrix cell or a label issue into view. */
  reveal(target: RevealTarget): void {
    this.panel.reveal(undefined, true);
    if (target.kind === 'search' && this.report) {
      this.search = { query: target.query, hits: target.hits.map((x) => ({ path: x.path, score: x.score })), root: this.report.dataset.root, model: searchModel(this.report) };
      target = { ...target, hits: withSamples(this.report, target.hits) };
    }
    if (this.webviewReady) this.post({ type: 'reveal', target });
    else this.pendingReveal = target;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    ReportPanel.panels.delete(this);
    if (ReportPanel.lastActive === this) ReportPanel.lastActive = undefined;
    this.thumbnails.clear();
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }

  private showEmpty(message: string): void {
    this.report = undefined;
    this.emptyMessage = message;
    this.sendReport();
  }

  private html(): string {
    const webview = this.panel.webview;
    return panelHtml({
      cspSource: webview.cspSource,
      nonce: nonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'panel.css')).toString(),
    });
  }

  private post(message: HostToPanel): void {
    if (!this.disposed) void this.panel.webview.postMessage(message);
  }

  /** Sends the report once the webview is listening (it asks with `ready`). */
  private sendReport(): void {
    if (!this.webviewReady) return;
    if (!this.report) {
      this.post({ type: 'empty', message: this.emptyMessage });
      return;
    }
    const { report, samples, probabilitiesStripped } = toPanelReport(this.report);
    this.probabilitiesStripped = probabilitiesStripped;
    this.post({
      type: 'report',
      report,
      samples,
      reportRef: this.reportRef,
      ignoredPaths: this.actions.ignoredPaths ? [...this.actions.ignoredPaths(this.report)] : undefined,
      resolvedPaths: this.actions.resolvedPaths?.(this.report),
      probabilitiesStripped,
      gate: this.actions.gateOf?.(this.report) ?? null,
    });
    if (this.pendingReveal) {
      this.post({ type: 'reveal', target: this.pendingReveal });
      this.pendingReveal = undefined;
    }
  }

  private refuse(what: string): void {
    this.actions.log?.(`CLIP Lens report panel: refused ${what}`);
  }

  /** A sample of the current report by path, with its absolute file; null (and logged) otherwise. */
  private sampleFile(samplePath: string): { sample: ReportSample; file: string } | null {
    const sample = this.report ? samplesOf(this.report).byPath(samplePath) : undefined;
    const file = sample && this.report ? resolveInsideRoot(this.report.dataset.root, sample.path) : null;
    if (!sample || !file) {
      this.refuse(`a path that is not a sample of the report: ${samplePath}`);
      return null;
    }
    return { sample, file };
  }

  private async onMessage(raw: unknown): Promise<void> {
    const m = parsePanelMessage(raw);
    if (!m) {
      this.refuse(`a malformed message: ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    if (m.type === 'ready') {
      this.webviewReady = true;
      return this.sendReport();
    }
    if (m.type === 'error') {
      this.actions.log?.(`CLIP Lens report panel error: ${m.message}${m.stack ? `\n${m.stack}` : ''}`);
      return;
    }
    const report = this.report;
    if (!report) return;
    switch (m.type) {
      case 'requestThumbnails': {
        const paths = m.paths.slice(0, MAX_THUMBNAILS_PER_REQUEST);
        const files = paths.map((p) => this.sampleFile(p)?.file ?? null);
        const results = await this.thumbnails.getMany(files.map((f) => f ?? ''));
        const items: ThumbnailItem[] = paths.map((p, i) => {
          const r = results[i];
          if (!files[i]) return { path: p, error: 'not a sample of this report' };
          return r instanceof Error ? { path: p, error: r.message } : { path: p, dataUri: r.dataUri, width: r.width, height: r.height };
        });
        this.post({ type: 'thumbnails', requestId: m.requestId, items });
        return;
      }
      case 'requestSamples': {
        try {
          const { total, rows } = querySamples(report, m.query, m.start, m.end, this.probabilitiesStripped);
          this.post({ type: 'samples', requestId: m.requestId, total, start: m.start, rows });
        } catch (e) {
          this.post({ type: 'samples', requestId: m.requestId, total: 0, start: m.start, rows: [], error: e instanceof Error ? e.message : String(e) });
        }
        return;
      }
      case 'requestPrCurve': {
        try {
          const curve = classPrCurve(m.class, report.dataset.classes, samplesOf(report).toArray(), m.split);
          this.post({ type: 'prCurve', requestId: m.requestId, class: m.class, curve });
        } catch (e) {
          this.post({ type: 'prCurve', requestId: m.requestId, class: m.class, curve: null, error: e instanceof Error ? e.message : String(e) });
        }
        return;
      }
      case 'openImage': {
        const s = this.sampleFile(m.path);
        if (s) await this.actions.openImage(vscode.Uri.file(s.file));
        return;
      }
      case 'openLabelLine': {
        const s = this.sampleFile(m.path);
        const file = s?.sample.source ? resolveReportFile(report, s.sample.source.file) : null;
        if (s && s.sample.source && file) await this.actions.openLabelLine(vscode.Uri.file(file), s.sample.source.line);
        else if (s) this.refuse(`opening the label line of ${m.path}: it has none`);
        return;
      }
      case 'openProblem': {
        const problem = report.errors[m.index];
        if (!problem) return this.refuse(`problem #${m.index}`);
        if (problem.file) {
          const file = resolveReportFile(report, problem.file);
          if (file) await this.actions.openLabelLine(vscode.Uri.file(file), problem.line ?? 1);
          else this.refuse(`a problem file outside the dataset: ${problem.file}`);
        } else if (problem.path) {
          const file = resolveInsideRoot(report.dataset.root, problem.path);
          if (file) await this.actions.openImage(vscode.Uri.file(file));
        }
        return;
      }
      case 'applyFix':
      case 'ignoreSample': {
        const s = this.sampleFile(m.path);
        if (!s) return this.post({ type: 'actionResult', requestId: m.requestId, ok: false, message: `${m.path} is not a sample of this report.` });
        try {
          let message: string | void;
          if (m.type === 'applyFix') {
            if (!report.dataset.classes.includes(m.toClass)) throw new Error(`'${m.toClass}' is not a class of this dataset.`);
            const fix = buildFix(report, s.sample, m.toClass);
            if (!fix) throw new Error(`${m.path} has no label-file line to change.`);
            message = await this.actions.applyFix(fix, report);
          } else {
            message = await this.actions.ignoreSample(m.path, report);
          }
          this.post({ type: 'actionResult', requestId: m.requestId, ok: true, message: message || undefined });
        } catch (e) {
          this.post({ type: 'actionResult', requestId: m.requestId, ok: false, message: e instanceof Error ? e.message : String(e) });
        }
        return;
      }
      case 'bulkAction': {
        const a = m.action;
        try {
          for (const p of a.paths) if (!this.sampleFile(p)) throw new Error(`${p} is not a sample of this report.`);
          if (a.kind === 'fix' && !report.dataset.classes.includes(a.toClass)) throw new Error(`'${a.toClass}' is not a class of this dataset.`);
          if (!this.actions.bulkAction) throw new Error('bulk fixes are not available here.');
          const message = await this.actions.bulkAction(a, report);
          this.post({ type: 'actionResult', requestId: m.requestId, ok: true, message: message || undefined });
        } catch (e) {
          this.post({ type: 'actionResult', requestId: m.requestId, ok: false, message: e instanceof Error ? e.message : String(e) });
        }
        return;
      }
      case 'export': {
        try {
          const built = buildExport(report, m.request);
          const saved = await this.actions.saveExport({ ...built, defaultDir: vscode.Uri.file(report.dataset.root) });
          this.post({ type: 'actionResult', requestId: m.requestId, ok: true, message: saved ? `Saved ${path.basename(saved.fsPath)}` : undefined });
        } catch (e) {
          this.post({ type: 'actionResult', requestId: m.requestId, ok: false, message: `Export failed: ${e instanceof Error ? e.message : String(e)}` });
        }
        return;
      }
      case 'pickComparison': {
        try {
          const picked = this.actions.pickComparison ? await this.actions.pickComparison(report) : { error: 'comparing is not available here' };
          this.post({ type: 'comparison', requestId: m.requestId, ...(picked ?? {}) });
        } catch (e) {
          this.post({ type: 'comparison', requestId: m.requestId, error: e instanceof Error ? e.message : String(e) });
        }
        return;
      }
    }
  }
}
