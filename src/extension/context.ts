/**
 * The extension's context keys (used by `when` clauses in package.json), kept in sync with the store and the engine.
 * Keys are only written when their value changes.
 */
import * as vscode from 'vscode';
import { CONTEXT_KEYS } from './commandIds';
import type { ReportStore } from './store';
import { sampleFile } from './diagnosticsModel';
import { datasetFormat } from '../core/datasetFormat';
import { removalCandidates } from './removalModel';

export class ContextKeys implements vscode.Disposable {
  private readonly values = new Map<string, string>();
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly store: ReportStore) {
    this.subscriptions.push(store.onDidChange(() => this.update()));
    this.update();
  }

  private set(key: string, value: unknown): void {
    const json = JSON.stringify(value);
    if (this.values.get(key) === json) return;
    this.values.set(key, json);
    void vscode.commands.executeCommand('setContext', key, value);
  }

  setRunning(running: boolean): void {
    this.set(CONTEXT_KEYS.running, running);
  }

  update(): void {
    const results = this.store.all();
    this.set(CONTEXT_KEYS.hasResults, results.length > 0);
    this.set(
      CONTEXT_KEYS.hasLabelIssues,
      results.some((r) => r.report.labelIssues.some((i) => !r.resolved.has(i.path ?? ''))),
    );
    this.set(CONTEXT_KEYS.hasWarnings, results.some((r) => r.report.warnings.length > 0));
    const movable: string[] = [];
    for (const r of results) {
      if (datasetFormat(r.report.dataset.format).fix !== 'move-to-folder') continue;
      for (const issue of r.report.labelIssues) {
        if (!issue.path || r.resolved.has(issue.path)) continue;
        // Matched against `resourcePath`: the file system path locally, the URI path in remote windows and
        // code-server (where the Explorer's URIs are vscode-remote:), so both forms are listed.
        const uri = vscode.Uri.file(sampleFile(r.report, issue.path));
        movable.push(uri.fsPath);
        if (uri.path !== uri.fsPath) movable.push(uri.path);
      }
    }
    this.set(CONTEXT_KEYS.movableImages, movable);
    const removable: string[] = [];
    for (const r of results) {
      if (datasetFormat(r.report.dataset.format).samplesHaveLines) continue;
      for (const c of removalCandidates(r.report)) {
        if (r.resolved.has(c.samplePath)) continue;
        const uri = vscode.Uri.file(sampleFile(r.report, c.samplePath));
        removable.push(uri.fsPath);
        if (uri.path !== uri.fsPath) removable.push(uri.path);
      }
    }
    this.set(CONTEXT_KEYS.removableImages, removable);
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}
