/**
 * Hosts the report panel (reportPanel.ts, written separately) for the extension: shows and updates it after
 * evaluations, restores it after a window reload, and implements its ReportPanelActions with the same fixes as the
 * editor (fixes.ts). reportPanel.ts pulls in sharp for thumbnails, so it is imported on first use only.
 */
import * as vscode from 'vscode';
import type { BulkAction, RevealTarget, SampleFix } from '../core/panelProtocol';
import type { EvalReport } from '../core/report';
import type { ExportFile, ReportPanelActions } from './reportPanel';
import type { Fixes } from './fixes';
import { datasetFormat } from '../core/datasetFormat';
import { PANEL_VIEW_TYPE } from './commandIds';
import type { DatasetResult, ReportStore } from './store';
import { pickComparison } from './pickComparison';

type PanelModule = typeof import('./reportPanel.js');


export class PanelHost implements vscode.Disposable {
  private module: Promise<PanelModule> | undefined;
  private serializer: vscode.Disposable | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  readonly actions: ReportPanelActions;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly store: ReportStore,
    private readonly fixes: Fixes,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.actions = {
      openImage: (image) => vscode.commands.executeCommand('vscode.open', image, { preview: true, viewColumn: vscode.ViewColumn.Beside }),
      openLabelLine: async (file, line) => {
        const doc = await vscode.workspace.openTextDocument(file);
        const l = Math.max(0, Math.min(doc.lineCount - 1, line - 1));
        await vscode.window.showTextDocument(doc, { selection: new vscode.Range(l, 0, l, 0), viewColumn: vscode.ViewColumn.Beside, preview: true });
      },
      applyFix: (fix, report) => this.applyFix(fix, report),
      ignoreSample: async (samplePath, report) => this.announced(() => this.fixes.ignore(this.resultOf(report), samplePath)),
      saveExport: (file) => this.saveExport(file),
      loadReport: async (ref) => {
        const report = await this.store.loadReport(ref);
        return report;
      },
      ignoredPaths: (report) => {
        const result = this.store.get(report.dataset.root);
        if (!result) return [];
        return [...new Set([...(result.config.ignore ?? []), ...this.store.ignoredPaths(result)])];
      },
      log: (message) => this.log.info(message),
      gateOf: (report) => this.store.get(report.dataset.root)?.gate ?? null,
      resolvedPaths: (report) => {
        const result = this.store.get(report.dataset.root);
        const out: Record<string, 'fixed' | 'ignored'> = {};
        if (!result) return out;
        for (const p of result.config.ignore ?? []) out[p] = 'ignored';
        for (const [p, how] of result.resolved) out[p] = how === 'ignored' ? 'ignored' : 'fixed';
        return out;
      },
      bulkAction: (action, report) => this.bulkAction(action, report),
      pickComparison: (report) => pickComparison(this.store, report),
    };
    // The panel follows re-runs of the dataset it shows.
    this.subscriptions.push(store.onDidChange((root) => void this.updateIfShown(root)));
  }

  private load(): Promise<PanelModule> {
    this.module ??= import('./reportPanel.js').then((m) => {
      this.serializer ??= m.ReportPanel.registerSerializer(this.extensionUri, this.actions);
      return m;
    });
    return this.module;
  }

  /**
   * Registers the serializer now when a report panel from the last session waits to be restored (so restoring does
   * not wait for a command); otherwise it is registered on first use.
   */
  restoreIfNeeded(): void {
    const open = vscode.window.tabGroups.all.some((g) => g.tabs.some((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith(PANEL_VIEW_TYPE)));
    if (open) void this.load();
  }

  /** Opens (or reveals) the panel on a dataset's report. */
  async show(result: DatasetResult, reveal?: RevealTarget): Promise<void> {
    const m = await this.load();
    const panel = m.ReportPanel.createOrShow(this.extensionUri, this.actions, result.report, { reportRef: result.reportFile });
    if (reveal) panel.reveal(reveal);
  }

  private async updateIfShown(root: string | undefined): Promise<void> {
    if (!this.module || root === undefined) return;
    const m = await this.module;
    const result = this.store.get(root);
    const panel = m.ReportPanel.forRoot(root);
    if (!panel || !result) return;
    panel.update(result.report, { reportRef: result.reportFile });
  }

  private resultOf(report: EvalReport): DatasetResult {
    const result = this.store.get(report.dataset.root);
    if (!result) throw new Error('this report is no longer loaded; evaluate the dataset again');
    return result;
  }

  private async applyFix(fix: SampleFix, report: EvalReport): Promise<string> {
    const result = this.resultOf(report);
    if (result.report !== report && result.report.createdAt !== report.createdAt) {
      throw new Error('the dataset was evaluated again since; reload the report');
    }
    return this.announced(() => (fix.kind === 'move-to-folder' ? this.fixes.moveToFolder(result, fix.path, fix.toClass) : this.fixes.changeLabel(result, fix.path, fix.toClass, { reveal: false })));
  }

  /** The image grid's bulk fixes: one WorkspaceEdit, one undo step. */
  private async bulkAction(action: BulkAction, report: EvalReport): Promise<string> {
    const result = this.resultOf(report);
    if (result.report !== report && result.report.createdAt !== report.createdAt) throw new Error('the dataset was evaluated again since; reload the report');
    if (action.kind === 'ignore') return this.announced(() => this.fixes.ignoreMany(result, action.paths));
    const items = action.paths.map((samplePath) => ({ samplePath, toClass: action.toClass }));
    if (datasetFormat(report.dataset.format).fix === 'change-label') return this.announced(() => this.fixes.changeLabels(result, items));
    return this.announced(async () => (await this.fixes.moveMany(result, items)).message);
  }

  /** Runs a fix from the panel and confirms it with a "… — Undo" notification. */
  private async announced(fix: () => Promise<string>): Promise<string> {
    const before = this.fixes.history.last?.id;
    const message = await fix();
    const step = this.fixes.history.last;
    this.fixes.announce(message, step && step.id !== before ? step : undefined);
    return message;
  }

  private async saveExport(file: ExportFile): Promise<vscode.Uri | undefined> {
    const m = await this.load();
    const saved = await m.saveExportWithDialog(file);
    if (saved) this.log.info(`exported ${file.format} to ${saved.fsPath}`);
    return saved;
  }

  dispose(): void {
    this.serializer?.dispose();
    for (const s of this.subscriptions) s.dispose();
    void this.module?.then((m) => m.ReportPanel.all.forEach((p) => p.dispose()));
  }
}
