/**
 * The commit gate's git pre-commit hook (plain git and file-system logic, no terminal I/O): a hook that runs
 * `clip-lens check --staged`, so a commit whose datasets (folders with a `.clip-lens.json`) miss a gate threshold is
 * refused with the numbers. `clip-lens hook install|uninstall|status` (src/cli/hookCommand.ts) and the extension's
 * Install Commit Gate command (src/extension/gateHook.ts) call it.
 *
 * - The hooks folder is git's (`git rev-parse --git-path hooks`), so core.hooksPath is honoured.
 * - An existing pre-commit hook is kept: it is renamed to `pre-commit.clip-lens-previous` and the clip-lens hook runs
 *   it first (with the same arguments; a failure stops the commit as before). Uninstall removes the clip-lens hook and
 *   renames the previous one back, so its content, mode and modification time are as they were; a hooks folder the
 *   install had to create is removed again when it is left empty.
 * - Only a regular file carrying the marker is the clip-lens hook. A symbolic link is always someone else's hook, even
 *   when it points to a clip-lens script: it is moved aside and put back as the link it was (never written through,
 *   replaced by a file or deleted).
 * - The hook records the absolute paths of the node binary and of the clip-lens script at install time; when they are
 *   gone it falls back to `clip-lens` on PATH, then to `npx --no-install clip-lens`.
 * - Arguments after `--` are passed on to `clip-lens check --staged` (e.g. `-- --model ./models/clip --cache .cache`).
 *
 * The VS Code extension must pass the node binary, since its own process is the editor's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from './errors';
import { makeDirectory, pathExists } from './fileSystem';
import { gitTopLevel, runGit } from './gitStaged';

export const HOOK_NAME = 'pre-commit';
export const PREVIOUS_SUFFIX = '.clip-lens-previous';
/** First-line marker of the hook script written by clip-lens. */
export const HOOK_MARKER = '# clip-lens-hook: v1';
const CREATED_DIR_PREFIX = '# clip-lens-created-dir: ';

export interface HookPaths {
  repoRoot: string;
  hooksDir: string;
  hook: string;
  previous: string;
}

/** Where the pre-commit hook of the repository holding `cwd` lives (core.hooksPath honoured). */
export async function hookPaths(cwd: string): Promise<HookPaths> {
  const repoRoot = await gitTopLevel(cwd);
  const r = await runGit(['rev-parse', '--git-path', 'hooks'], { cwd: repoRoot });
  const hooksDir = path.resolve(repoRoot, r.stdout.toString('utf8').trim());
  const hook = path.join(hooksDir, HOOK_NAME);
  return { repoRoot, hooksDir, hook, previous: hook + PREVIOUS_SUFFIX };
}

/** Single-quotes a string for POSIX sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The hook script: runs the previous hook, then clip-lens check --staged with the recorded node and script. */
export function hookScript(options: { nodePath: string; cliScript: string; extraArgs?: string[]; createdDir?: string }): string {
  const args = ['check', '--staged', ...(options.extraArgs ?? [])].map(shellQuote).join(' ');
  const toPosix = (p: string) => p.split(path.sep).join('/');
  return `#!/bin/sh
${HOOK_MARKER}
# CLIP Lens dataset quality gate: runs \`clip-lens check --staged\` on the datasets (folders with a .clip-lens.json)
# this commit touches, and refuses the commit when a threshold of their "gate" section is not met.
# Installed by \`clip-lens hook install\`; \`clip-lens hook uninstall\` removes it and restores the previous hook.
# Skip it for one commit with \`git commit --no-verify\`.
${options.createdDir ? `${CREATED_DIR_PREFIX}${JSON.stringify(toPosix(options.createdDir))}\n` : ''}
case "$0" in */*) hook_dir=\${0%/*} ;; *) hook_dir=. ;; esac
previous="$hook_dir/${HOOK_NAME}${PREVIOUS_SUFFIX}"
if [ -f "$previous" ] && [ -x "$previous" ]; then
  "$previous" "$@" || exit $?
fi

clip_lens_node=${shellQuote(toPosix(options.nodePath))}
clip_lens_cli=${shellQuote(toPosix(options.cliScript))}
if [ -x "$clip_lens_node" ] && [ -f "$clip_lens_cli" ]; then
  "$clip_lens_node" "$clip_lens_cli" ${args}
elif command -v clip-lens >/dev/null 2>&1; then
  clip-lens ${args}
elif command -v npx >/dev/null 2>&1; then
  npx --no-install clip-lens ${args}
else
  echo "clip-lens pre-commit hook: cannot find clip-lens ($clip_lens_cli is gone and neither clip-lens nor npx is on PATH); reinstall with \\\`clip-lens hook install\\\` or commit with --no-verify" >&2
  exit 2
fi
status=$?
if [ "$status" -eq 1 ]; then
  echo "clip-lens: commit refused: a dataset quality threshold is not met (see above). Fix the dataset or the thresholds in .clip-lens.json, or skip this check with git commit --no-verify." >&2
elif [ "$status" -ne 0 ]; then
  echo "clip-lens: commit refused: the dataset quality gate could not run (exit $status, see above). Skip it with git commit --no-verify." >&2
fi
exit $status
`;
}

/**
 * The text of the hook at `file` when it is a regular file; undefined when there is none or it is anything else. A
 * symbolic link is never read through: whatever it points to, it is the user's hook, to be kept as a link.
 */
async function readHookFile(file: string): Promise<string | undefined> {
  try {
    const st = await fs.promises.lstat(file);
    if (!st.isFile()) return undefined;
    return await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ClipLensError('hook-unreadable', `cannot read: ${(e as Error).message}`, { file });
  }
}

function isOurs(text: string | undefined): boolean {
  return text !== undefined && text.split('\n', 3).some((l) => l.trim() === HOOK_MARKER);
}

export interface InstallOptions {
  /** Absolute node binary recorded in the hook (default: this process's). */
  nodePath?: string;
  /** Absolute clip-lens script recorded in the hook (default: the script this process runs, e.g. dist/cli.js). */
  cliScript?: string;
  /** Extra arguments for `clip-lens check --staged`. */
  extraArgs?: string[];
}

export interface InstallResult {
  hook: string;
  /** The existing hook, moved aside and chained (when there was one). */
  previous?: string;
  /** True when an earlier clip-lens hook was rewritten. */
  updated: boolean;
}

/** The script this process runs (dist/cli.js when run as the bundled CLI). */
export function currentCliScript(): string {
  const main = require.main?.filename ?? process.argv[1];
  if (!main) throw new ClipLensError('hook-no-cli', 'cannot tell which clip-lens script is running; pass its path');
  try {
    return fs.realpathSync(main);
  } catch {
    return path.resolve(main);
  }
}

/** Installs (or updates) the clip-lens pre-commit hook of the repository holding `cwd`. */
export async function installHook(cwd: string, options: InstallOptions = {}): Promise<InstallResult> {
  const p = await hookPaths(cwd);
  const nodePath = path.resolve(options.nodePath ?? process.execPath);
  const cliScript = path.resolve(options.cliScript ?? currentCliScript());
  const current = await readHookFile(p.hook);
  if (isOurs(current)) {
    // Update in place (new paths or arguments); keep what the first install recorded.
    const created = /^# clip-lens-created-dir: (.*)$/m.exec(current as string)?.[1];
    const createdDir = created ? (JSON.parse(created) as string) : undefined;
    await writeExecutable(p.hook, hookScript({ nodePath, cliScript, extraArgs: options.extraArgs, createdDir }));
    return { hook: p.hook, updated: true, ...((await pathExists(p.previous)) ? { previous: p.previous } : {}) };
  }
  if (await pathExists(p.previous)) {
    throw new ClipLensError('hook-previous-exists', `${p.previous} already exists, and ${p.hook} is not a clip-lens hook; move one of them away first`, { file: p.previous });
  }
  const createdDir = await makeDirectory(p.hooksDir);
  const hadHook = await pathExists(p.hook);
  if (hadHook) await fs.promises.rename(p.hook, p.previous);
  try {
    await writeExecutable(p.hook, hookScript({ nodePath, cliScript, extraArgs: options.extraArgs, createdDir }));
  } catch (e) {
    if (hadHook) await fs.promises.rename(p.previous, p.hook).catch(() => undefined);
    throw e;
  }
  return { hook: p.hook, updated: false, ...(hadHook ? { previous: p.previous } : {}) };
}

async function writeExecutable(file: string, text: string): Promise<void> {
  const tmp = `${file}.clip-lens-tmp-${process.pid}`;
  await fs.promises.writeFile(tmp, text, { mode: 0o755 });
  await fs.promises.chmod(tmp, 0o755);
  await fs.promises.rename(tmp, file);
}

export interface UninstallResult {
  hook: string;
  /** False when no clip-lens hook was installed (nothing changed). */
  removed: boolean;
  /** The previous hook put back, when there was one. */
  restored?: string;
}

/** Removes the clip-lens hook and restores the previous one (or the missing hooks folder) exactly. */
export async function uninstallHook(cwd: string): Promise<UninstallResult> {
  const p = await hookPaths(cwd);
  const current = await readHookFile(p.hook);
  if (!isOurs(current)) {
    if (await pathExists(p.previous)) {
      throw new ClipLensError('hook-not-ours', `${p.hook} is not the clip-lens hook but ${p.previous} exists; restore it by hand`, { file: p.hook });
    }
    return { hook: p.hook, removed: false };
  }
  const created = /^# clip-lens-created-dir: (.*)$/m.exec(current as string)?.[1];
  await fs.promises.rm(p.hook);
  if (await pathExists(p.previous)) {
    await fs.promises.rename(p.previous, p.hook);
    return { hook: p.hook, removed: true, restored: p.hook };
  }
  if (created) {
    // Remove the folders the install created, innermost first, while they are empty.
    const top = path.resolve(JSON.parse(created) as string);
    let dir = p.hooksDir;
    while (dir.length >= top.length && (dir === top || dir.startsWith(top + path.sep))) {
      try {
        await fs.promises.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }
  return { hook: p.hook, removed: true };
}

export interface HookStatus {
  installed: boolean;
  hook: string;
  /** A chained previous hook exists. */
  chained: boolean;
  /** The recorded node binary and script, when installed. */
  nodePath?: string;
  cliScript?: string;
}

export async function hookStatus(cwd: string): Promise<HookStatus> {
  const p = await hookPaths(cwd);
  const current = await readHookFile(p.hook);
  const installed = isOurs(current);
  const unquote = (s: string | undefined) => (s === undefined ? undefined : s.slice(1, -1).replace(/'\\''/g, "'"));
  return {
    installed,
    hook: p.hook,
    chained: installed && (await pathExists(p.previous)),
    ...(installed
      ? {
          nodePath: unquote(/^clip_lens_node=('.*')$/m.exec(current as string)?.[1]),
          cliScript: unquote(/^clip_lens_cli=('.*')$/m.exec(current as string)?.[1]),
        }
      : {}),
  };
}
