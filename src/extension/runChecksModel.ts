/**
 * The editor's checks before an evaluation touches the model, beyond core/run.ts's (which stops an invalid config at
 * its line; unit-tested in test/unit/extension-runChecks.test.ts): a model folder named by `"model"` in the config
 * must exist. Each failure is a ClipLensError naming the config file and the line of the key
 * at fault, so the error's "Open File" goes there; the same problems are diagnostics on the config (diagnosticsModel.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from '../core/errors';
import { resolveModelSpec } from '../core/modelRegistry';
import { parseJsonTreeOrNull } from '../core/jsonWithPositions';

/** Error code of an evaluation held back because the config is invalid (core/run.ts configError; automatic re-runs wait quietly). */
export const CONFIG_INVALID = 'config-invalid';

/** 1-based line of a top-level key in a config text; undefined when the text has no such key. */
export function topLevelKeyLine(text: string, key: string): number | undefined {
  const tree = parseJsonTreeOrNull(text);
  if (tree?.type !== 'object') return undefined;
  const prop = tree.properties.filter((p) => p.key === key).pop();
  if (!prop) return undefined;
  let line = 1;
  for (let i = 0; i < prop.keyOffset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Why the `"model"` value of a config cannot be used (a folder that is not there, an unknown registry id), or
 * undefined when it can (a registry id may still need a download: that is offered, as for any valid run).
 */
export function projectModelProblem(model: string, configDir: string, exists: (p: string) => boolean = fs.existsSync): string | undefined {
  try {
    const r = resolveModelSpec(model, configDir);
    if (r.kind === 'path' && !exists(r.dir)) return `no model folder at ${r.dir}; fix the path, or remove "model" to use the clipLens.model setting`;
    return undefined;
  } catch (e) {
    if (e instanceof ClipLensError) return e.message;
    throw e;
  }
}

/** The error for an unusable `"model"` (or one of `"models"`, with key 'models') in the config, pointing at its line. */
export function projectModelError(configFile: string, text: string, model: string, key: 'model' | 'models' = 'model'): ClipLensError | undefined {
  const problem = projectModelProblem(model, path.dirname(configFile));
  if (!problem) return undefined;
  const line = topLevelKeyLine(text, key);
  return new ClipLensError('model-missing', `"${key}": ${problem}`, { file: configFile, line });
}
