/**
 * Workspace Trust and the choice of model. Pure (the caller passes `vscode.workspace.isTrusted`).
 *
 * In Restricted Mode (an untrusted workspace) CLIP Lens never loads a model folder or runs anything the workspace
 * configured:
 * - VS Code itself ignores workspace values of the settings in RESTRICTED_SETTINGS (declared in package.json under
 *   `capabilities.untrustedWorkspaces.restrictedConfigurations`), so only user settings apply;
 * - a model *folder* named by `.clip-lens.json` is not used (a registry id is: registry models are downloaded from a
 *   fixed repository, checked against pinned SHA-256 sums, and only after the user agreed to the download);
 * - automatic re-runs on file changes and the commit-gate installer are off (see `allowsAutoRerun`, `allowsHookInstall`).
 *
 * Which model evaluates a dataset (first match wins):
 *   1. the `CLIP_LENS_MODEL` environment variable (registry id or absolute folder; for tests and CI),
 *   2. `"model"` in the dataset's `.clip-lens.json` (a folder relative to that file), except a folder in Restricted Mode,
 *   3. the `clipLens.model` setting,
 *   4. the default model (clip-vit-base-patch32).
 */
import * as path from 'node:path';
import { defaultModelEntry, resolveModelSpec } from '../core/modelRegistry';

/** Environment variable overriding the model everywhere in the extension. */
export const MODEL_ENV = 'CLIP_LENS_MODEL';

/** Settings whose workspace values are ignored in untrusted workspaces (package.json restrictedConfigurations). */
export const RESTRICTED_SETTINGS = ['clipLens.model', 'clipLens.cacheDirectory', 'clipLens.templates', 'clipLens.autoRerun', 'clipLens.executionProvider'] as const;

export type ModelSource = 'environment' | 'project' | 'settings' | 'default';

export interface ModelChoice {
  /** Registry id or folder, as given. */
  spec: string;
  /** Folder a relative `spec` is resolved against. */
  baseDir: string;
  source: ModelSource;
  /** Why a higher-precedence choice was skipped (shown in the log and the status-bar tooltip). */
  note?: string;
}

export interface ModelChoiceInput {
  env: NodeJS.ProcessEnv;
  /** `model` of the dataset's `.clip-lens.json`, when set. */
  projectModel?: string;
  /** Folder of that `.clip-lens.json` (the dataset root). */
  projectDir: string;
  /** The `clipLens.model` setting (already validated; the default id when unset). */
  settingModel: string;
  /** Folder a relative `clipLens.model` is resolved against (the first workspace folder, else the home folder). */
  settingBaseDir: string;
  trusted: boolean;
}

/** True when `spec` names a model folder rather than a registry id (same rules as resolveModelSpec). */
export function isModelFolder(spec: string, baseDir: string): boolean {
  try {
    return resolveModelSpec(spec, baseDir).kind === 'path';
  } catch {
    // An unknown id: not a folder (loading it fails later with the did-you-mean message).
    return false;
  }
}

export function chooseModel(input: ModelChoiceInput): ModelChoice {
  const fromEnv = input.env[MODEL_ENV]?.trim();
  if (fromEnv) return { spec: fromEnv, baseDir: input.settingBaseDir, source: 'environment' };
  let note: string | undefined;
  const project = input.projectModel?.trim();
  if (project) {
    if (input.trusted || !isModelFolder(project, input.projectDir)) {
      return { spec: project, baseDir: input.projectDir, source: 'project' };
    }
    note = `the model folder "${project}" named by ${path.join(input.projectDir, '.clip-lens.json')} is not used in Restricted Mode (trust the workspace to use it)`;
  }
  const setting = input.settingModel.trim();
  const fallback = defaultModelEntry().id;
  if (setting && setting !== fallback) return { spec: setting, baseDir: input.settingBaseDir, source: 'settings', ...(note ? { note } : {}) };
  return { spec: fallback, baseDir: input.settingBaseDir, source: 'default', ...(note ? { note } : {}) };
}

/** Re-runs triggered by file changes only happen in trusted workspaces. */
export function allowsAutoRerun(trusted: boolean): boolean {
  return trusted;
}

/** Installing a git hook (a script git runs on every commit) needs a trusted workspace. */
export function allowsHookInstall(trusted: boolean): boolean {
  return trusted;
}

/** Words for where the model came from, e.g. in the status-bar tooltip. */
export function describeModelSource(source: ModelSource): string {
  switch (source) {
    case 'environment':
      return `the ${MODEL_ENV} environment variable`;
    case 'project':
      return '.clip-lens.json';
    case 'settings':
      return 'the clipLens.model setting';
    case 'default':
      return 'the default';
  }
}
