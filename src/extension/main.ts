/**
 * Entry point of the VS Code extension: wires the parts together and nothing else. Activation is cheap: no model,
 * no sharp, no onnxruntime is loaded here (engine.ts, hover.ts and panel.ts import them on first use), and saved
 * results are restored in the background.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EvalReport } from '../core/report';
import { LabelIssueCodeActions, CONFIG_SELECTOR, LABEL_FILE_SELECTOR } from './codeActions';
import { VIEWS } from './commandIds';
import { registerCommands } from './commands';
import { readSettings, SECTION, type Settings } from './config';
import { ContextKeys } from './context';
import { DiagnosticsManager } from './diagnostics';
import { Engine } from './engine';
import { Fixes } from './fixes';
import { LabelFileHover, Thumbnails } from './hover';
import { PanelHost } from './panel';
import { StatusBar } from './statusBar';
import { RunHistory } from './runHistory';
import { ReportStore } from './store';
import { DatasetsTree } from './trees/datasets';
import { LabelIssuesTree } from './trees/labelIssues';
import { WarningsTree } from './trees/warnings';
import { Watcher } from './watcher';

/** What the extension returns from activate (used by the integration tests). */
export interface ClipLensApi {
  readonly apiVersion: 1;
  /** The latest report of every evaluated dataset. */
  reports(): EvalReport[];
  /** Evaluates a dataset folder or label file without opening the panel; undefined when refused or failed. */
  evaluate(target: string): Promise<EvalReport | undefined>;
  /** Model folders loaded now. */
  loadedModels(): string[];
}

let shutdown: (() => Promise<void>) | undefined;

/** Settings that change which model (or how it is run) is loaded. */
const MODEL_SETTINGS = ['model', 'quantized', 'threads', 'executionProvider', 'cacheDirectory'].map((k) => `${SECTION}.${k}`);

export function activate(context: vscode.ExtensionContext): ClipLensApi {
  const log = vscode.window.createOutputChannel('CLIP Lens', { log: true });
  const loadSettings = (): Settings => {
    const { settings, problems } = readSettings(vscode.workspace.getConfiguration(SECTION));
    for (const p of problems) log.warn(p);
    return settings;
  };
  let settings = loadSettings();
  const getSettings = () => settings;

  const storage = context.storageUri ?? context.globalStorageUri;
  const store = new ReportStore(path.join(storage.fsPath, 'reports'), log, new RunHistory(path.join(storage.fsPath, 'history'), log));
  const engine = new Engine({ store, log, settings: getSettings });
  const fixes = new Fixes(store, log);
  const thumbnails = new Thumbnails();
  const diagnostics = new DiagnosticsManager(store, getSettings, context.extensionUri);
  const panel = new PanelHost(context.extensionUri, store, fixes, log);
  const contextKeys = new ContextKeys(store);
  const datasetsTree = new DatasetsTree(store, engine, thumbnails);
  const issuesTree = new LabelIssuesTree(store, getSettings, thumbnails);
  const warningsTree = new WarningsTree(store);
  const issuesView = vscode.window.createTreeView(VIEWS.labelIssues, { treeDataProvider: issuesTree, showCollapseAll: true });
  issuesTree.attach(issuesView);

  context.subscriptions.push(
    log,
    store,
    engine,
    diagnostics,
    fixes,
    panel,
    contextKeys,
    datasetsTree,
    issuesTree,
    warningsTree,
    issuesView,
    vscode.window.createTreeView(VIEWS.datasets, { treeDataProvider: datasetsTree, showCollapseAll: true }),
    vscode.window.createTreeView(VIEWS.warnings, { treeDataProvider: warningsTree }),
    new StatusBar(store, engine),
    new Watcher(store, engine, fixes, getSettings),
    engine.onDidChangeRunning(() => contextKeys.setRunning(engine.anyRunning !== undefined)),
    vscode.languages.registerCodeActionsProvider([...(LABEL_FILE_SELECTOR as vscode.DocumentFilter[]), ...(CONFIG_SELECTOR as vscode.DocumentFilter[])], new LabelIssueCodeActions(store, diagnostics, fixes), LabelIssueCodeActions.metadata),
    vscode.languages.registerHoverProvider(LABEL_FILE_SELECTOR, new LabelFileHover(store, thumbnails)),
    ...registerCommands({ extensionUri: context.extensionUri, store, engine, fixes, panel, settings: getSettings, log, datasetsTree }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      settings = loadSettings();
      if (MODEL_SETTINGS.some((k) => e.affectsConfiguration(k))) void engine.releaseIdleModels();
      store.notify();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      settings = loadSettings();
      store.notify();
    }),
  );

  panel.restoreIfNeeded();
  void store.restore();
  shutdown = async () => {
    await engine.shutdown();
    await store.flush();
  };
  log.info(`activated (workspace ${vscode.workspace.isTrusted ? 'trusted' : 'in Restricted Mode'}; auto re-run ${settings.autoRerun})`);

  return {
    apiVersion: 1,
    reports: () => store.all().map((r) => r.report),
    evaluate: (target) => engine.evaluate(target, 'user'),
    loadedModels: () => engine.loadedModels,
  };
}

export async function deactivate(): Promise<void> {
  await shutdown?.();
  shutdown = undefined;
}
