/**
 * "CLIP Lens: Select Model": a quick pick of the registry models (size, whether downloaded, description, license)
 * and "Browse for a local folder…" (checked with validateModelDir before it is saved). The choice goes to the
 * `clipLens.model` setting (where it is set now: workspace or user). Nothing is downloaded here: that happens, after
 * asking, on the next evaluation.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import * as vscode from 'vscode';
import { MODEL_REGISTRY, type RegistryEntry } from '../core/modelRegistry';
import { checkCachedModel, defaultCacheDir } from '../core/modelDownload';
import { validateModelDir } from '../core/modelDir';
import type { Settings } from './config';
import { resolveCacheSetting } from './engine';
import { formatBytes } from './format';
import type { ReportStore } from './store';
import { MODEL_ENV } from './trust';
import { topLevelKeyLine } from './runChecksModel';

interface ModelItem extends vscode.QuickPickItem {
  entry?: RegistryEntry;
  browse?: true;
  /** A `.clip-lens.json` whose "model" decides for its dataset (the setting does not): open it at that key. */
  configFile?: string;
}

export async function selectModel(settings: Settings, store: ReportStore): Promise<string | undefined> {
  const cacheDir = resolveCacheSetting(vscode.workspace.isTrusted ? settings.cacheDirectory : '') ?? defaultCacheDir();
  const cached = await Promise.all(MODEL_REGISTRY.map(async (e) => (await checkCachedModel(e, cacheDir).catch(() => 'no')) === null));
  const current = settings.model;
  // The current dataset's .clip-lens.json may name the model (it wins over the setting): show its value first.
  const result = store.currentResult;
  const projectModel = result?.config.model;
  const items: ModelItem[] = [
    ...(projectModel && result
      ? [
          { label: `.clip-lens.json of '${path.basename(result.root)}'`, kind: vscode.QuickPickItemKind.Separator },
          {
            label: `$(json) "model": "${projectModel}"`,
            description: 'set in .clip-lens.json, used instead of the setting',
            detail: 'Open .clip-lens.json at "model" to change or remove it',
            configFile: result.configFile,
          } satisfies ModelItem,
        ]
      : []),
    { label: 'Registry models', kind: vscode.QuickPickItemKind.Separator },
    ...MODEL_REGISTRY.map((entry, i): ModelItem => ({
      label: `${entry.id === current ? '$(check) ' : ''}${entry.id}`,
      description: `${cached[i] ? 'downloaded' : `≈${formatBytes(entry.approxBytes)} download`}${entry.isDefault ? ' · default' : ''}`,
      detail: `${entry.description}. License: ${entry.license}`,
      entry,
    })),
    { label: 'Local model', kind: vscode.QuickPickItemKind.Separator },
    {
      label: '$(folder-opened) Browse for a local folder…',
      description: MODEL_REGISTRY.some((e) => e.id === current) ? '' : `now: ${current}`,
      detail: 'A folder with onnx/vision_model.onnx, onnx/text_model.onnx, tokenizer.json and preprocessor_config.json (transformers.js layout)',
      browse: true,
    },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: 'CLIP Lens: Select Model', placeHolder: `Model used to evaluate datasets (now ${current})`, matchOnDescription: true, matchOnDetail: true });
  if (!picked) return undefined;
  if (picked.configFile) {
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(picked.configFile));
    const line = Math.max(0, (topLevelKeyLine(doc.getText(), 'model') ?? 1) - 1);
    await vscode.window.showTextDocument(doc, { selection: new vscode.Range(line, 0, line, 0) });
    return undefined;
  }
  let value: string;
  if (picked.entry) value = picked.entry.id;
  else {
    const folder = await vscode.window.showOpenDialog({
      canSelectFiles: false,
      canSelectFolders: true,
      canSelectMany: false,
      title: 'Select a CLIP model folder',
      openLabel: 'Use This Model',
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(os.homedir()),
    });
    if (!folder?.[0]) return undefined;
    const dir = folder[0].fsPath;
    const check = await validateModelDir(dir, { quantized: settings.quantized ? true : undefined });
    if (!check.ok) {
      const list = check.problems.slice(0, 4).map((p) => `${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}`).join('\n');
      const more = check.problems.length > 4 ? `\n…and ${check.problems.length - 4} more` : '';
      void vscode.window.showErrorMessage(`CLIP Lens: ${path.basename(dir)} is not a usable model folder.`, { modal: true, detail: `${list}${more}` });
      return undefined;
    }
    value = dir;
  }
  const config = vscode.workspace.getConfiguration('clipLens');
  const inspected = config.inspect<string>('model');
  const target = inspected?.workspaceFolderValue !== undefined ? vscode.ConfigurationTarget.WorkspaceFolder : inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await config.update('model', value, target);

  const notes: string[] = [];
  if (process.env[MODEL_ENV]) notes.push(`The ${MODEL_ENV} environment variable (${process.env[MODEL_ENV]}) overrides this setting in this window.`);
  const overridden = store.all().filter((r) => r.config.model !== undefined);
  if (overridden.length > 0) notes.push(`${overridden.map((r) => `'${path.basename(r.root)}'`).join(', ')} name${overridden.length === 1 ? 's' : ''} a model in .clip-lens.json, which takes precedence there.`);
  const current2 = store.currentResult;
  const actions = current2 ? ['Re-run Now'] : [];
  const answer = await vscode.window.showInformationMessage(`CLIP Lens will use ${path.isAbsolute(value) ? value : `'${value}'`}.${notes.length ? ` ${notes.join(' ')}` : ''}`, ...actions);
  return answer === 'Re-run Now' && current2 ? current2.target : undefined;
}
