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
import { chooseModelSpec, isModelFolder, type ModelChoice, type ModelSource } from '../core/run';

export { isModelFolder, type ModelChoice, type ModelSource };

/** Environment variable overriding the model everywhere in the extension. */
export const MODEL_ENV = 'CLIP_LENS_MODEL';

/** Settings whose workspace values are ignored in untrusted workspaces (package.json restrictedConfigurations). */
export const RESTRICTED_SETTINGS = ['clipLens.model', 'clipLens.cacheDirectory', 'clipLens.templates', 'clipLens.autoRerun', 'clipLens.executionProvider'] as const;

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

/** The editor's model choice: core's rule (core/run.ts chooseModelSpec) with CLIP_LENS_MODEL and the setting. */
export function chooseModel(input: ModelChoiceInput): ModelChoice {
  return chooseModelSpec({
    environment: input.env[MODEL_ENV],
    projectModel: input.projectModel,
    projectDir: input.projectDir,
    setting: input.settingModel,
    settingBaseDir: input.settingBaseDir,
    trusted: input.trusted,
  });
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
    case 'option':
      return 'the --model option';
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
