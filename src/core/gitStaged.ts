/**
 * What a commit is about to record, read from git without changing anything: which dataset roots (folders holding a
 * `.clip-lens.json`) the staged changes touch, and the staged content of such a dataset as a folder to evaluate.
 *
 * Read-only by construction: only plumbing commands that never write the index or the working tree (diff-index,
 * diff-files, ls-files, hash-object without -w, checkout-index without -u into a temporary prefix), run with
 * GIT_OPTIONAL_LOCKS=0. The index is whatever GIT_INDEX_FILE names, so inside a pre-commit hook of `git commit -a` or
 * `git commit <paths>` it is the index git is about to commit.
 *
 * When the staged content of a dataset equals its working tree (no unstaged change, no untracked file under it: the
 * usual `git add` then `git commit`), the working-tree folder itself is evaluated, so a hook costs reading the dataset
 * plus inferring the images the embedding cache does not know. Otherwise the staged files are checked out into a
 * temporary folder (`git checkout-index --prefix`, which runs smudge filters such as Git LFS), removed afterwards.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from './errors';
import { CONFIG_FILE_NAME } from './projectConfig';
import { makeDirectory } from './fileSystem';

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/**
 * The environment for git children: GIT_OPTIONAL_LOCKS=0, and GIT_INDEX_FILE / GIT_DIR / GIT_WORK_TREE made absolute
 * (git gives hooks a relative GIT_INDEX_FILE on the first commit, relative to the folder the hook started in).
 */
export function gitEnv(base: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, GIT_OPTIONAL_LOCKS: '0' };
  for (const key of ['GIT_INDEX_FILE', 'GIT_DIR', 'GIT_WORK_TREE'] as const) {
    const v = env[key];
    if (v && !path.isAbsolute(v)) env[key] = path.resolve(cwd, v);
  }
  return env;
}

let defaultEnv: NodeJS.ProcessEnv | undefined;

/** Runs git; rejects with ClipLensError('git-failed') on an exit code not in `okCodes` (default [0]). */
export function runGit(args: string[], options: { cwd: string; input?: string | Buffer; okCodes?: number[]; env?: NodeJS.ProcessEnv }): Promise<GitResult> {
  const env = options.env ?? (defaultEnv ??= gitEnv());
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(new ClipLensError('git-missing', e.code === 'ENOENT' ? 'git is not installed or not on PATH' : `cannot run git: ${e.message}`));
    });
    child.on('close', (code) => {
      const stderr = Buffer.concat(err).toString('utf8');
      const c = code ?? 128;
      if (!(options.okCodes ?? [0]).includes(c)) {
        const first = stderr.split('\n').find((l) => l.trim() !== '') ?? `exit code ${c}`;
        reject(new ClipLensError('git-failed', `git ${args[0]} failed: ${first.trim()}`, { file: options.cwd }));
        return;
      }
      resolve({ code: c, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function nulList(buf: Buffer): string[] {
  return buf
    .toString('utf8')
    .split('\0')
    .filter((s) => s !== '');
}

/** `:(literal)` pathspec of a repository-relative folder ('' = the whole repository: no pathspec). */
function pathspec(rel: string): string[] {
  return rel === '' ? [] : [`:(literal)${rel}`];
}

/** The top folder of the working tree holding `cwd`; ClipLensError('not-a-git-repository') outside one. */
export async function gitTopLevel(cwd: string): Promise<string> {
  const r = await runGit(['rev-parse', '--show-toplevel'], { cwd, okCodes: [0, 128] });
  const top = r.stdout.toString('utf8').trim();
  if (r.code !== 0 || top === '') {
    throw new ClipLensError('not-a-git-repository', 'not inside a git working tree (git rev-parse --show-toplevel failed)', { file: cwd });
  }
  return path.resolve(top);
}

/** The tree staged changes are measured against: HEAD, or the empty tree before the first commit. */
async function baseTree(repoRoot: string): Promise<string> {
  const head = await runGit(['rev-parse', '--verify', '-q', 'HEAD^{commit}'], { cwd: repoRoot, okCodes: [0, 1, 128] });
  if (head.code === 0) return head.stdout.toString('utf8').trim();
  const empty = await runGit(['hash-object', '-t', 'tree', '--stdin'], { cwd: repoRoot, input: '' });
  return empty.stdout.toString('utf8').trim();
}

/** Repository-relative POSIX paths the index changes against HEAD (both the old and the new path of a move). */
export async function stagedPaths(repoRoot: string): Promise<string[]> {
  const base = await baseTree(repoRoot);
  const r = await runGit(['diff-index', '--cached', '-z', '--name-only', '--no-renames', '--ignore-submodules=all', base, '--'], { cwd: repoRoot });
  return nulList(r.stdout);
}

/** Folders (repository-relative POSIX, '' for the top) whose `.clip-lens.json` is in the index. */
export async function stagedConfigRoots(repoRoot: string): Promise<string[]> {
  const r = await runGit(['ls-files', '-z', '--cached', '--', `:(glob)**/${CONFIG_FILE_NAME}`], { cwd: repoRoot });
  return nulList(r.stdout)
    .filter((p) => p === CONFIG_FILE_NAME || p.endsWith(`/${CONFIG_FILE_NAME}`))
    .map((p) => (p === CONFIG_FILE_NAME ? '' : p.slice(0, -CONFIG_FILE_NAME.length - 1)))
    .sort();
}

/** The roots (of `roots`) that contain at least one of `changed`; a change in a nested dataset touches every enclosing root. */
export function datasetRootsTouched(roots: readonly string[], changed: readonly string[]): string[] {
  const out = new Set<string>();
  for (const root of roots) {
    const prefix = root === '' ? '' : `${root}/`;
    if (changed.some((p) => prefix === '' || p.startsWith(prefix))) out.add(root);
  }
  return [...out].sort();
}

/** Dataset roots (repository-relative) the staged changes touch. */
export async function stagedDatasetRoots(repoRoot: string): Promise<string[]> {
  const [roots, changed] = await Promise.all([stagedConfigRoots(repoRoot), stagedPaths(repoRoot)]);
  if (changed.length === 0 || roots.length === 0) return [];
  return datasetRootsTouched(roots, changed);
}

const ZERO_OID = /^0+$/;

/**
 * True when the working-tree folder of a dataset holds exactly its staged content: every tracked file under it has its
 * staged content and mode, and there is no untracked file (ignored ones included) under it.
 */
export async function stagedMatchesWorktree(repoRoot: string, datasetRel: string): Promise<boolean> {
  const spec = pathspec(datasetRel);
  const untracked = await runGit(['ls-files', '-z', '--others', '--', ...spec], { cwd: repoRoot });
  if (nulList(untracked.stdout).length > 0) return false;
  const raw = await runGit(['diff-files', '-z', '--no-renames', '--ignore-submodules=all', '--', ...spec], { cwd: repoRoot });
  // Records: ":<mode> <mode> <oid> <oid> <status>" NUL "<path>" NUL
  const parts = raw.stdout.toString('utf8').split('\0');
  const statDirty: { path: string; oid: string }[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i];
    const file = parts[i + 1];
    if (!meta.startsWith(':')) break;
    const [srcMode, dstMode, srcOid, dstOid, status] = meta.slice(1).split(' ');
    if (status !== 'M' || srcMode !== dstMode || !ZERO_OID.test(dstOid)) return false;
    statDirty.push({ path: file, oid: srcOid });
  }
  if (statDirty.length === 0) return true;
  if (statDirty.some((f) => f.path.includes('\n'))) return false;
  // diff-files compares stat data only: files touched without a content change are listed too. Hash their content the
  // way `git add` would (clean filters, line endings) without writing objects, and compare.
  const hashed = await runGit(['hash-object', '--stdin-paths'], { cwd: repoRoot, input: statDirty.map((f) => f.path).join('\n') + '\n' });
  const oids = hashed.stdout.toString('utf8').trim().split('\n');
  return oids.length === statDirty.length && oids.every((oid, i) => oid.trim() === statDirty[i].oid);
}

export interface StagedDataset {
  /** Absolute folder holding the staged content of the dataset. */
  dir: string;
  /** True when `dir` is a temporary checkout; false when it is the working-tree folder itself. */
  materialized: boolean;
  /** Files written into the temporary checkout (0 when not materialized). */
  files: number;
  /** Removes the temporary checkout (no-op otherwise). */
  dispose(): Promise<void>;
}

/**
 * The staged content of `<repoRoot>/<datasetRel>` as a folder: the working-tree folder when it matches (see
 * stagedMatchesWorktree, skipped with `forceCheckout`), else a temporary checkout under `tmpRoot` (default: the OS temp
 * folder). Never writes the index or the working tree.
 */
export async function stagedDataset(repoRoot: string, datasetRel: string, options: { tmpRoot?: string; forceCheckout?: boolean } = {}): Promise<StagedDataset> {
  if (!options.forceCheckout && (await stagedMatchesWorktree(repoRoot, datasetRel))) {
    return { dir: path.join(repoRoot, datasetRel), materialized: false, files: 0, dispose: async () => undefined };
  }
  return materializeStaged(repoRoot, datasetRel, options.tmpRoot);
}

/** Checks out the staged files under `datasetRel` into a new temporary folder (git checkout-index --prefix). */
export async function materializeStaged(repoRoot: string, datasetRel: string, tmpRoot: string = os.tmpdir()): Promise<StagedDataset> {
  const listed = await runGit(['ls-files', '-z', '--cached', '--', ...pathspec(datasetRel)], { cwd: repoRoot });
  const files = [...new Set(nulList(listed.stdout))];
  await makeDirectory(tmpRoot);
  const prefix = await fs.promises.mkdtemp(path.join(tmpRoot, 'clip-lens-staged-'));
  const dispose = () => fs.promises.rm(prefix, { recursive: true, force: true });
  try {
    if (files.length > 0) {
      await runGit(['checkout-index', `--prefix=${prefix}${path.sep}`, '-z', '--stdin'], { cwd: repoRoot, input: files.join('\0') + '\0' });
    }
    const dir = path.join(prefix, datasetRel);
    await makeDirectory(dir);
    return { dir, materialized: true, files: files.length, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/** The staged text of a repository-relative file (`git cat-file blob :path`), or undefined when it is not staged. */
export async function stagedFileText(repoRoot: string, rel: string): Promise<string | undefined> {
  const r = await runGit(['cat-file', 'blob', `:${rel}`], { cwd: repoRoot, okCodes: [0, 128] });
  return r.code === 0 ? r.stdout.toString('utf8') : undefined;
}

/** POSIX path of `abs` relative to `root`, or undefined when it is outside. */
export function relativeInside(root: string, abs: string): string | undefined {
  const rel = path.relative(root, abs);
  if (rel === '') return '';
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return undefined;
  return rel.split(path.sep).join('/');
}
