/**
 * Re-runs after changes (setting `clipLens.autoRerun`), for datasets evaluated in this window:
 * - `onSave` (default): saving the label file or `.clip-lens.json` of a dataset re-runs it (debounced); when images
 *   are added, removed, moved or changed on disk, a notification offers a re-run;
 * - `onChange`: any of those changes re-runs the dataset, debounced (a burst such as a `git checkout` gives one run);
 * - `off`: nothing runs by itself.
 * In every mode a changed dataset is marked out of date (status bar, Datasets view). Re-runs are incremental (cached
 * embeddings), queue behind a run in progress and never run in untrusted workspaces. Changes made by CLIP Lens's own
 * fixes do not prompt.
 */
import * as vscode from 'vscode';
import { CONFIG_FILE_NAME, readProjectConfig } from '../core/projectConfig';
import { classifyChange, type ChangeKind } from './datasetFiles';
import type { Settings } from './config';
import { Debouncer } from './enginePool';
import type { Engine } from './engine';
import type { Fixes } from './fixes';
import { datasetName } from './format';
import type { ReportStore } from './store';
import { allowsAutoRerun } from './trust';

/** Quiet time before a re-run after a save / after file events. */
export const SAVE_DEBOUNCE_MS = 800;
export const CHANGE_DEBOUNCE_MS = 2000;

async function configHasProblems(root: string): Promise<boolean> {
  return readProjectConfig(root).then((r) => r.problems.length > 0, () => true);
}

export class Watcher implements vscode.Disposable {
  private readonly watchers = new Map<string, vscode.FileSystemWatcher>();
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly debouncer = new Debouncer();
  /** Datasets with a re-run offer on screen (one at a time each). */
  private readonly offering = new Set<string>();

  constructor(
    private readonly store: ReportStore,
    private readonly engine: Engine,
    private readonly fixes: Fixes,
    private readonly settings: () => Settings,
  ) {
    this.subscriptions.push(
      store.onDidChange(() => this.syncWatchers()),
      vscode.workspace.onDidSaveTextDocument((doc) => this.onSaved(doc)),
    );
    this.syncWatchers();
  }

  /** One file watcher per evaluated dataset. */
  private syncWatchers(): void {
    const roots = new Set(this.store.all().map((r) => r.root));
    for (const [root, w] of this.watchers) {
      if (!roots.has(root)) {
        w.dispose();
        this.watchers.delete(root);
        this.debouncer.cancel(root);
      }
    }
    for (const root of roots) {
      if (this.watchers.has(root)) continue;
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '**/*'));
      const handler = (uri: vscode.Uri) => this.onFileEvent(root, uri);
      w.onDidCreate(handler);
      w.onDidDelete(handler);
      w.onDidChange(handler);
      this.watchers.set(root, w);
    }
  }

  private onSaved(doc: vscode.TextDocument): void {
    if (doc.uri.scheme !== 'file') return;
    for (const result of this.store.all()) {
      const kind = classifyChange(result, doc.uri.fsPath);
      if (kind !== 'labels' && kind !== 'config') continue;
      this.store.markStale(result.root);
      if (this.settings().autoRerun !== 'off' && allowsAutoRerun(vscode.workspace.isTrusted)) this.schedule(result.root, SAVE_DEBOUNCE_MS);
    }
  }

  private onFileEvent(root: string, uri: vscode.Uri): void {
    const result = this.store.get(root);
    if (!result) return;
    const kind = classifyChange(result, uri.fsPath);
    if (!kind) return;
    // Saves from the editor are handled by onSaved; the watcher sees them too.
    const savedInEditor = kind !== 'images' && vscode.workspace.textDocuments.some((d) => d.uri.fsPath === uri.fsPath && !d.isDirty);
    this.store.markStale(root);
    const mode = this.settings().autoRerun;
    if (mode === 'off' || !allowsAutoRerun(vscode.workspace.isTrusted)) return;
    if (mode === 'onChange') {
      this.schedule(root, CHANGE_DEBOUNCE_MS);
      return;
    }
    if (savedInEditor || this.fixes.isOwnChange(uri.fsPath)) return;
    this.debouncer.trigger(`offer:${root}`, CHANGE_DEBOUNCE_MS, () => void this.offer(root, kind));
  }

  private schedule(root: string, ms: number): void {
    this.debouncer.trigger(root, ms, () => {
      const result = this.store.get(root);
      if (result) void this.engine.evaluate(result.target, 'auto');
    });
  }

  private async offer(root: string, kind: ChangeKind): Promise<void> {
    const result = this.store.get(root);
    if (!result || !result.stale || this.offering.has(root) || this.engine.isRunning(root) || this.debouncer.isPending(root)) return;
    // An invalid config is not offered for a re-run: its diagnostic says what to fix, and runs wait until it is valid.
    if (kind === 'config' && (await configHasProblems(root))) return;
    this.offering.add(root);
    try {
      const what = kind === 'images' ? 'Images were added, removed or changed' : kind === 'labels' ? 'The label file changed' : `${CONFIG_FILE_NAME} changed`;
      const choice = await vscode.window.showInformationMessage(`${what} in '${datasetName(root)}'. Evaluate it again?`, 'Re-run', 'Always Re-run on Change');
      if (choice === 'Always Re-run on Change') {
        await vscode.workspace.getConfiguration('clipLens').update('autoRerun', 'onChange', vscode.ConfigurationTarget.Global);
      }
      if (choice && this.store.get(root)?.stale) void this.engine.evaluate(result.target, 'user');
    } finally {
      this.offering.delete(root);
    }
  }

  dispose(): void {
    this.debouncer.dispose();
    for (const w of this.watchers.values()) w.dispose();
    this.watchers.clear();
    for (const s of this.subscriptions) s.dispose();
  }
}
