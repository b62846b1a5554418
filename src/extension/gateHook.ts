/**
 * "CLIP Lens: Install Commit Gate" / "Uninstall Commit Gate": the git pre-commit hook of src/core/gitHook.ts,
 * which runs `clip-lens check --staged` with the CLI bundled in this extension. The hook needs a Node.js binary: the
 * extension host's own when it is plain Node (code-server), else `node` from PATH (VS Code's host is Electron).
 * Installing needs a trusted workspace (the hook runs on every commit).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Settings } from './config';
import { resolveCacheSetting } from './engine';
import { allowsHookInstall } from './trust';
import { findOnPath } from './platform';

/** A Node.js binary for the hook: this process when it is Node itself, else `node` on PATH. */
export function nodeBinary(): string | undefined {
  if (!process.versions.electron) return process.execPath;
  return findOnPath('node', process.env.PATH, process.platform, (p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

async function pickFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 0) {
    void vscode.window.showErrorMessage('CLIP Lens: open the folder of a git repository first.');
    return undefined;
  }
  if (folders.length === 1) return folders[0];
  return vscode.window.showWorkspaceFolderPick({ placeHolder: 'Repository to install the CLIP Lens commit gate in' });
}

export async function installCommitGate(extensionUri: vscode.Uri, settings: Settings, log: vscode.LogOutputChannel): Promise<boolean> {
  if (!allowsHookInstall(vscode.workspace.isTrusted)) {
    const a = await vscode.window.showWarningMessage('CLIP Lens installs a git hook only in a trusted workspace (the hook runs on every commit).', 'Manage Workspace Trust');
    if (a) void vscode.commands.executeCommand('workbench.trust.manage');
    return false;
  }
  const folder = await pickFolder();
  if (!folder) return false;
  const cliScript = vscode.Uri.joinPath(extensionUri, 'dist', 'cli.js').fsPath;
  if (!fs.existsSync(cliScript)) {
    void vscode.window.showErrorMessage(`CLIP Lens: the bundled command line (${cliScript}) is missing; reinstall the extension.`);
    return false;
  }
  const nodePath = nodeBinary();
  if (!nodePath) {
    void vscode.window.showErrorMessage('CLIP Lens: the commit gate needs Node.js 20 or newer on PATH (git runs the hook outside VS Code). Install Node.js and try again.');
    return false;
  }
  const cache = resolveCacheSetting(settings.cacheDirectory);
  const extraArgs = cache ? ['--cache', cache] : [];
  const { installHook, hookStatus } = await import('../core/gitHook.js');
  try {
    const r = await installHook(folder.uri.fsPath, { nodePath, cliScript, extraArgs });
    const s = await hookStatus(folder.uri.fsPath);
    log.info(`${r.updated ? 'updated' : 'installed'} the pre-commit hook ${r.hook}: ${s.nodePath} ${s.cliScript} check --staged ${extraArgs.join(' ')}`);
    const configs = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, '**/.clip-lens.json'), '**/node_modules/**', 50);
    const withGate = (await Promise.all(configs.map(async (u) => /"gate"\s*:/.test(Buffer.from(await vscode.workspace.fs.readFile(u)).toString('utf8'))))).filter(Boolean).length;
    const hint = withGate === 0 ? ' No .clip-lens.json in this folder has a "gate" section yet: add thresholds there for the hook to check.' : ` It checks ${withGate} dataset${withGate === 1 ? '' : 's'} with a "gate" section when a commit touches them.`;
    const chained = r.previous ? ' Your existing pre-commit hook is kept and runs first.' : '';
    const a = await vscode.window.showInformationMessage(`CLIP Lens: ${r.updated ? 'updated' : 'installed'} the commit gate in ${path.basename(folder.uri.fsPath)}.${hint}${chained} Skip it once with git commit --no-verify.`, 'Open Hook');
    if (a) await vscode.window.showTextDocument(vscode.Uri.file(r.hook));
    return true;
  } catch (e) {
    log.error(`installing the commit gate failed: ${(e as Error).message}`);
    void vscode.window.showErrorMessage(`CLIP Lens: could not install the commit gate: ${(e as Error).message}`);
    return false;
  }
}

export async function uninstallCommitGate(log: vscode.LogOutputChannel): Promise<boolean> {
  const folder = await pickFolder();
  if (!folder) return false;
  const { uninstallHook } = await import('../core/gitHook.js');
  try {
    const r = await uninstallHook(folder.uri.fsPath);
    if (!r.removed) {
      void vscode.window.showInformationMessage(`CLIP Lens: no commit gate is installed in ${path.basename(folder.uri.fsPath)}.`);
      return false;
    }
    log.info(`removed the pre-commit hook ${r.hook}${r.restored ? ` and restored the previous hook` : ''}`);
    void vscode.window.showInformationMessage(`CLIP Lens: removed the commit gate${r.restored ? '; your previous pre-commit hook is back' : ''}.`);
    return true;
  } catch (e) {
    log.error(`removing the commit gate failed: ${(e as Error).message}`);
    void vscode.window.showErrorMessage(`CLIP Lens: could not remove the commit gate: ${(e as Error).message}`);
    return false;
  }
}
