/**
 * The commands (ids in commandIds.ts, titles and menus in package.json). Commands accept the arguments VS Code
 * passes from each place they appear (Explorer: the resource and the selection; views: the tree node; code actions
 * and tests: a dataset root and a sample path) and return something useful to callers: the evaluate commands return
 * the report (or undefined), the fix commands a confirmation message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { datasetFormat, labelFileExtensions, labelFileExtensionsText, labelFileKind } from '../core/datasetFormat';
import type { RevealTarget } from '../core/panelProtocol';
import type { EvalReport } from '../core/report';
import { COMMANDS } from './commandIds';
import type { Settings } from './config';
import { formatScore, sampleFile } from './diagnosticsModel';
import type { Engine } from './engine';
import type { Fixes } from './fixes';
import { datasetName } from './format';
import { installCommitGate, uninstallCommitGate } from './gateHook';
import { updateBaseline } from './updateBaseline';
import type { PanelHost } from './panel';
import { selectModel } from './selectModel';
import { warningRows } from './trees/model';
import { removalCandidates, removalTitle } from './removalModel';
import type { DatasetResult, ReportStore } from './store';
import { samplesOf } from '../core/sampleTable';

export interface CommandServices {
  extensionUri: vscode.Uri;
  store: ReportStore;
  engine: Engine;
  fixes: Fixes;
  panel: PanelHost;
  settings: () => Settings;
  log: vscode.LogOutputChannel;
  /** The Datasets view ("Show more" under a class pages its images). */
  datasetsTree?: { showMore(root: string, cls: string): void };
}

type NodeLike = { root?: unknown; samplePath?: unknown; index?: unknown; kind?: unknown };

function isUri(x: unknown): x is vscode.Uri {
  return x instanceof vscode.Uri;
}

/** The dataset a command is about: a tree node, a root path, a Uri inside a dataset, or the current one. */
function resultFrom(store: ReportStore, arg: unknown): DatasetResult | undefined {
  if (typeof arg === 'string') return store.get(arg) ?? store.findContaining(arg);
  if (isUri(arg)) return store.get(arg.fsPath) ?? store.findContaining(arg.fsPath);
  if (arg && typeof arg === 'object' && typeof (arg as NodeLike).root === 'string') return store.get((arg as NodeLike).root as string);
  return store.currentResult;
}

/** The sample a command is about: (root, samplePath), an issue node, an image node (of a class, Duplicates or Outliers), or an image Uri. */
export function sampleFrom(store: ReportStore, a: unknown, b: unknown): { result: DatasetResult; samplePath: string } | undefined {
  if (typeof a === 'string' && typeof b === 'string') {
    const result = store.get(a);
    return result ? { result, samplePath: b } : undefined;
  }
  if (isUri(a)) {
    const result = store.findContaining(a.fsPath);
    if (!result) return undefined;
    return { result, samplePath: path.relative(result.root, a.fsPath).split(path.sep).join('/') };
  }
  if (a && typeof a === 'object') {
    const n = a as NodeLike;
    const result = typeof n.root === 'string' ? store.get(n.root) : undefined;
    if (!result) return undefined;
    if (typeof n.samplePath === 'string') return { result, samplePath: n.samplePath };
    if (typeof n.index === 'number' && (n.kind === 'image' || n.kind === 'dupImage' || n.kind === 'outlierImage')) {
      const s = samplesOf(result.report).at(n.index);
      return s ? { result, samplePath: s.path } : undefined;
    }
  }
  return undefined;
}

async function isDirectory(p: string): Promise<boolean> {
  return fs.promises.stat(p).then((s) => s.isDirectory(), () => false);
}

export function registerCommands(s: CommandServices): vscode.Disposable[] {
  const { store, engine, fixes, panel, log } = s;

  /**
   * Evaluates, then shows the report (user-triggered runs open the panel; it follows re-runs by itself). On a long run
   * the panel opens with the first provisional result and fills in as batches finish.
   */
  const evaluateAndShow = async (target: string): Promise<EvalReport | undefined> => {
    let opened = false;
    const live = store.onDidChange((root) => {
      const r = root === undefined || opened ? undefined : store.get(root);
      if (!r?.report.provisional || r.report.provisional.cancelled || path.resolve(r.target) !== path.resolve(target)) return;
      opened = true;
      void panel.show(r).catch((e: unknown) => log.error(`could not open the report panel: ${(e as Error).message}`));
    });
    let report: EvalReport | undefined;
    try {
      report = await engine.evaluate(target, 'user');
    } finally {
      live.dispose();
    }
    const result = report ? store.get(report.dataset.root) : undefined;
    if (result) await panel.show(result).catch((e: unknown) => log.error(`could not open the report panel: ${(e as Error).message}`));
    return report;
  };

  const pickDatasetFolder = async (): Promise<string | undefined> => {
    const configs = await vscode.workspace.findFiles('**/.clip-lens.json', '**/node_modules/**', 50);
    const candidates = new Map<string, string>();
    for (const r of store.all()) candidates.set(r.root, 'evaluated before');
    for (const u of configs) if (!candidates.has(path.dirname(u.fsPath))) candidates.set(path.dirname(u.fsPath), 'has a .clip-lens.json');
    const browse = async () => {
      const picked = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        canSelectMany: false,
        openLabel: 'Evaluate',
        title: 'CLIP Lens: choose a dataset folder (class folders, or a folder with a label file)',
        defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
      });
      return picked?.[0]?.fsPath;
    };
    if (candidates.size === 0) return browse();
    const items: (vscode.QuickPickItem & { root?: string })[] = [
      ...[...candidates].map(([root, why]) => ({ label: `$(folder-library) ${datasetName(root)}`, description: vscode.workspace.asRelativePath(root), detail: why, root })),
      { label: '$(folder-opened) Browse for a folder…' },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'CLIP Lens: Evaluate Dataset', placeHolder: 'Dataset folder to evaluate' });
    if (!picked) return undefined;
    return picked.root ?? browse();
  };

  const handlers: Record<string, (...args: any[]) => unknown> = {
    [COMMANDS.evaluateDataset]: async (uri?: unknown, uris?: unknown): Promise<EvalReport | undefined> => {
      const selected = Array.isArray(uris) && uris.every(isUri) && uris.length > 0 ? (uris as vscode.Uri[]) : isUri(uri) ? [uri] : [];
      const targets = selected.map((u) => u.fsPath);
      if (targets.length === 0) {
        const t = typeof uri === 'string' ? uri : await pickDatasetFolder();
        if (!t) return undefined;
        targets.push(t);
      }
      let last: EvalReport | undefined;
      for (const t of targets) {
        if (!(await isDirectory(t)) && !labelFileKind(t)) {
          void vscode.window.showErrorMessage(`CLIP Lens: ${path.basename(t)} is not a dataset folder or a CSV/TSV/JSONL label file.`);
          continue;
        }
        last = (await evaluateAndShow(t)) ?? last;
      }
      return last;
    },

    [COMMANDS.evaluateLabelFile]: async (uri?: unknown): Promise<EvalReport | undefined> => {
      let file = isUri(uri) ? uri.fsPath : typeof uri === 'string' ? uri : undefined;
      if (!file) {
        const active = vscode.window.activeTextEditor?.document.uri;
        if (active?.scheme === 'file' && labelFileKind(active.fsPath)) file = active.fsPath;
      }
      if (!file) {
        const picked = await vscode.window.showOpenDialog({
          canSelectFiles: true,
          canSelectFolders: false,
          canSelectMany: false,
          openLabel: 'Evaluate',
          title: 'CLIP Lens: choose a label file',
          filters: { 'Label files': labelFileExtensions() },
          defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
        });
        file = picked?.[0]?.fsPath;
      }
      if (!file) return undefined;
      if (!labelFileKind(file)) {
        void vscode.window.showErrorMessage(`CLIP Lens: ${path.basename(file)} is not a label file (${labelFileExtensionsText()}).`);
        return undefined;
      }
      return evaluateAndShow(file);
    },

    [COMMANDS.rerun]: async (arg?: unknown): Promise<EvalReport | undefined> => {
      const result = resultFrom(store, arg);
      if (!result) return vscode.commands.executeCommand(COMMANDS.evaluateDataset);
      return engine.evaluate(result.target, 'user');
    },

    [COMMANDS.cancelEvaluation]: (arg?: unknown) => {
      const root = typeof arg === 'string' ? arg : resultFrom(store, arg)?.root ?? engine.anyRunning?.root;
      if (root) engine.cancel(root);
    },

    [COMMANDS.openReport]: async (arg?: unknown, reveal?: RevealTarget) => {
      const result = resultFrom(store, arg);
      if (!result) {
        const a = await vscode.window.showInformationMessage('CLIP Lens: no report yet. Evaluate a dataset first.', 'Evaluate a Dataset');
        if (a) void vscode.commands.executeCommand(COMMANDS.evaluateDataset);
        return;
      }
      store.setCurrent(result.root);
      await panel.show(result, reveal);
    },

    [COMMANDS.revealInExplorer]: async (arg?: unknown) => {
      const sample = sampleFrom(store, arg, undefined);
      if (sample) return vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(sampleFile(sample.result.report, sample.samplePath)));
      const result = resultFrom(store, arg);
      if (result) return vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(result.target));
    },

    [COMMANDS.clearResult]: (arg?: unknown) => {
      if (arg !== undefined) {
        const result = resultFrom(store, arg);
        if (result) store.remove(result.root);
        return;
      }
      for (const r of store.all()) store.remove(r.root);
    },

    [COMMANDS.openImage]: async (a?: unknown, b?: unknown) => {
      if (isUri(a)) return vscode.commands.executeCommand('vscode.open', a);
      const sample = sampleFrom(store, a, b);
      if (sample) return vscode.commands.executeCommand('vscode.open', vscode.Uri.file(sampleFile(sample.result.report, sample.samplePath)));
    },

    [COMMANDS.openLabelLine]: async (a?: unknown, b?: unknown) => {
      const sample = sampleFrom(store, a, b);
      const s = sample ? samplesOf(sample.result.report).byPath(sample.samplePath) : undefined;
      const file = sample?.result.report.dataset.labelFile;
      if (!s?.source || !file) return;
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
      const line = Math.max(0, Math.min(doc.lineCount - 1, s.source.line - 1));
      await vscode.window.showTextDocument(doc, { selection: new vscode.Range(line, 0, line, 0) });
    },

    [COMMANDS.applyFix]: async (a?: unknown, b?: unknown): Promise<string | undefined> => {
      const sample = sampleFrom(store, a, b);
      if (!sample) return undefined;
      const issue = fixes.issueOf(sample.result, sample.samplePath);
      if (!issue) {
        void vscode.window.showInformationMessage(`CLIP Lens has no suggested class for ${sample.samplePath}.`);
        return undefined;
      }
      return runFix(() => fixes.apply(sample.result, sample.samplePath, issue.suggested, { reveal: true }));
    },

    [COMMANDS.applyFixChooseClass]: async (a?: unknown, b?: unknown): Promise<string | undefined> => {
      const sample = sampleFrom(store, a, b);
      if (!sample) return undefined;
      const { report } = sample.result;
      const s = samplesOf(report).byPath(sample.samplePath);
      if (!s) return undefined;
      const scores = new Map(s.predicted.map((p) => [p.class, p.score]));
      const classes = report.dataset.classes.filter((c) => c !== s.label).sort((x, y) => (scores.get(y) ?? -1) - (scores.get(x) ?? -1));
      const changeLabel = datasetFormat(report.dataset.format).fix === 'change-label';
      const verb = changeLabel ? 'Change the label of' : 'Move';
      const picked = await vscode.window.showQuickPick(
        classes.map((c) => ({ label: c, description: scores.has(c) ? `CLIP ${formatScore(scores.get(c) as number)}` : undefined })),
        { title: `${verb} ${path.posix.basename(s.path)} (now '${s.label}')`, placeHolder: changeLabel ? 'New label' : 'Class folder to move the image to' },
      );
      if (!picked) return undefined;
      return runFix(() => fixes.apply(sample.result, sample.samplePath, picked.label, { reveal: true }));
    },

    [COMMANDS.ignoreSample]: async (a?: unknown, b?: unknown): Promise<string | undefined> => {
      const sample = sampleFrom(store, a, b);
      if (!sample) return undefined;
      return runFix(() => fixes.ignore(sample.result, sample.samplePath));
    },

    [COMMANDS.addPrompt]: async (root?: unknown, className?: unknown): Promise<string | undefined> => {
      // From the Warnings view the argument is the tree node {root, index}; from code actions (root, class).
      let r = typeof root === 'string' ? root : undefined;
      let c = typeof className === 'string' ? className : undefined;
      if (root && typeof root === 'object' && 'root' in root && 'index' in root) {
        const node = root as { root: string; index: number };
        r = node.root;
        c = store.get(node.root) ? warningRows(store.get(node.root)!.report)[node.index]?.class : undefined;
      }
      const result = r ? store.get(r) : undefined;
      if (!result || !c) return undefined;
      return runFix(() => fixes.addPrompt(result, c as string));
    },

    [COMMANDS.moveToSuggestedClass]: async (uri?: unknown, uris?: unknown): Promise<string | undefined> => {
      const selected = Array.isArray(uris) && uris.length > 0 && uris.every(isUri) ? (uris as vscode.Uri[]) : isUri(uri) ? [uri] : [];
      // One undo step per dataset: all selected images of a dataset move in one WorkspaceEdit.
      const byRoot = new Map<string, { result: DatasetResult; items: { samplePath: string; toClass: string }[] }>();
      for (const u of selected) {
        const sample = sampleFrom(store, u, undefined);
        const issue = sample ? fixes.issueOf(sample.result, sample.samplePath) : undefined;
        if (!sample || !issue || datasetFormat(sample.result.report.dataset.format).fix !== 'move-to-folder') {
          void vscode.window.showInformationMessage(`CLIP Lens has no suggested class folder for ${path.basename(u.fsPath)}.`);
          continue;
        }
        const entry = byRoot.get(sample.result.root) ?? { result: sample.result, items: [] };
        entry.items.push({ samplePath: sample.samplePath, toClass: issue.suggested });
        byRoot.set(sample.result.root, entry);
      }
      let last: string | undefined;
      for (const { result, items } of byRoot.values()) {
        last = (await runFix(async () => (await fixes.moveMany(result, items)).message)) ?? last;
      }
      return last;
    },

    [COMMANDS.removeFromSplit]: async (a?: unknown, b?: unknown): Promise<string | undefined> => {
      // From a code action (root, samplePath), the Explorer (the image's Uri), or the palette (pick a leaked or
      // duplicated image of the evaluated datasets).
      let sample = a === undefined ? undefined : sampleFrom(store, a, b);
      if (a === undefined) {
        const items = store.all().flatMap((result) =>
          removalCandidates(result.report)
            .filter((c) => !result.resolved.has(c.samplePath))
            .map((c) => ({
              label: removalTitle(c.samplePath, c.split),
              description: c.samplePath,
              detail: c.reason === 'leaked' ? `leaked: a copy of ${c.copy} (earlier split)` : `duplicate of ${c.copy}`,
              result,
              samplePath: c.samplePath,
            })),
        );
        if (items.length === 0) {
          void vscode.window.showInformationMessage('CLIP Lens: no leaked or duplicated images in the evaluated datasets.');
          return undefined;
        }
        const picked = await vscode.window.showQuickPick(items, { title: 'Remove an image from its split', placeHolder: 'Leaked and duplicated images', matchOnDescription: true });
        if (!picked) return undefined;
        sample = { result: picked.result, samplePath: picked.samplePath };
      }
      if (!sample) return undefined;
      const { result, samplePath } = sample;
      // A modal confirmation names the file and what will happen; "Cancel" (or Escape) changes nothing.
      return runFix(() => fixes.removeFromSplit(result, samplePath, async (q) => (await vscode.window.showWarningMessage(q.message, { modal: true, detail: q.detail }, q.button)) === q.button));
    },

    [COMMANDS.undoLastFix]: async (): Promise<string | undefined> => {
      try {
        const message = await fixes.undoLast();
        vscode.window.setStatusBarMessage(`$(discard) CLIP Lens: ${message}`, 5000);
        return message;
      } catch (e) {
        void vscode.window.showInformationMessage(`CLIP Lens: ${(e as Error).message}`);
        return undefined;
      }
    },

    [COMMANDS.selectModel]: async () => {
      const target = await selectModel(s.settings(), store);
      if (target) return engine.evaluate(target, 'user');
    },

    [COMMANDS.installCommitGate]: () => installCommitGate(s.extensionUri, s.settings(), log),
    [COMMANDS.uninstallCommitGate]: () => uninstallCommitGate(log),
    [COMMANDS.updateBaseline]: (arg?: unknown) => updateBaseline(store, engine, resultFrom(store, arg), log),
    [COMMANDS.showLog]: () => log.show(),

    [COMMANDS.showMoreImages]: (root?: unknown, cls?: unknown) => {
      if (typeof root === 'string' && typeof cls === 'string') s.datasetsTree?.showMore(root, cls);
    },
    [COMMANDS.searchImages]: async (arg?: unknown, text?: unknown): Promise<number | undefined> => {
      // The dataset: the folder or tree item the command was called on, else the current one, else ask. Search ranks
      // the evaluated samples with the embeddings their evaluation cached, so a dataset not evaluated yet is first.
      let result = resultFrom(store, arg);
      if (!result) {
        const target = isUri(arg) ? arg.fsPath : typeof arg === 'string' ? arg : await pickDatasetFolder();
        if (!target) return undefined;
        const report = await engine.evaluate(target, 'user');
        result = report ? store.get(report.dataset.root) : undefined;
        if (!result) return undefined;
      }
      const query =
        typeof text === 'string'
          ? text
          : await vscode.window.showInputBox({
              title: `CLIP Lens: Search Images in ${datasetName(result.root)}`,
              prompt: 'Describe what to find, e.g. "a photo of a dog on a beach"; images are ranked by CLIP similarity',
              validateInput: (v) => (v.trim() ? undefined : 'Type a text to search for'),
            });
      if (!query?.trim()) return undefined;
      const found = await engine.search(result, query, Math.min(500, samplesOf(result.report).length)).catch((e: unknown) => {
        log.error(`search failed: ${(e as Error).message}`);
        void vscode.window.showErrorMessage(`CLIP Lens: search failed: ${(e as Error).message}`);
        return undefined;
      });
      if (!found) return undefined;
      store.setCurrent(result.root);
      await panel
        .show(result, { kind: 'search', query, hits: found.hits.map((h) => ({ path: h.path, score: h.score })) })
        .catch((e: unknown) => log.error(`could not open the report panel: ${(e as Error).message}`));
      return found.hits.length;
    },
  };

  /** Runs a fix, confirming it with an Undo button (or explaining a refusal). */
  /** Runs a fix and announces it (with Undo); a fix resolving undefined was declined by the user: nothing to say. */
  async function runFix(fix: () => Promise<string | undefined>): Promise<string | undefined> {
    try {
      const before = fixes.history.last?.id;
      const message = await fix();
      if (message === undefined) return undefined;
      const step = fixes.history.last;
      fixes.announce(message, step && step.id !== before ? step : undefined);
      return message;
    } catch (e) {
      log.warn(`fix refused: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(`CLIP Lens: ${(e as Error).message}`);
      return undefined;
    }
  }

  const missing = Object.values(COMMANDS).filter((id) => !(id in handlers));
  if (missing.length > 0) throw new Error(`commands without a handler: ${missing.join(', ')}`);
  return Object.entries(handlers).map(([id, fn]) => vscode.commands.registerCommand(id, fn));
}
