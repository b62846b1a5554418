/**
 * The commit gate with real git repositories in temporary folders:
 * - which dataset roots staged changes touch, and the staged content of a dataset (working tree or temporary checkout),
 *   with the working tree and the index (its bytes) unchanged;
 * - `hook install` / `uninstall`: chaining an existing hook, core.hooksPath, restoring exactly, the hook script's order,
 *   quoting and exit codes;
 * - end to end with the bundled CLI (dist/cli.js, or $CLIP_LENS_TEST_CLI) and the fixture model: a commit that moves
 *   images between class folders so a class's recall falls below its threshold is refused with the numbers, the fix
 *   passes, the previous hook still runs, nothing in the working tree or index changes, and a second commit only infers
 *   the changed image (timings printed as diagnostics).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// Isolate git from the user's configuration and from the environment of a surrounding hook, before anything runs git.
for (const k of Object.keys(process.env)) if (k.startsWith('GIT_')) delete process.env[k];
process.env.GIT_CONFIG_NOSYSTEM = '1';
process.env.GIT_CONFIG_GLOBAL = os.devNull;

import { datasetRootsTouched, stagedConfigRoots, stagedDataset, stagedDatasetRoots, stagedMatchesWorktree } from '../../src/core/gitStaged';
import { HOOK_MARKER, hookScript, hookStatus, installHook, uninstallHook } from '../../src/core/gitHook';
import { checkCommand, findDatasetRoots } from '../../src/cli/checkCommand';
import { UsageError, type CliIO } from '../../src/cli/io';
import { num, numPair } from '../../src/core/gate';

const ROOT = path.resolve(__dirname, '../..');
const CLI = process.env.CLIP_LENS_TEST_CLI ? path.resolve(process.env.CLIP_LENS_TEST_CLI) : path.join(ROOT, 'dist/cli.js');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = run(cwd, 'git', args, env);
  assert.equal(r.code, 0, `git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function newRepo(t: { after: (fn: () => void) => void }): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-git-')));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  git(dir, ['init', '-q', '-b', 'main']);
  git(dir, ['config', 'user.name', 'CLIP Lens Test']);
  git(dir, ['config', 'user.email', 'test@clip-lens.invalid']);
  git(dir, ['config', 'commit.gpgsign', 'false']);
  git(dir, ['config', 'core.autocrlf', 'false']);
  return dir;
}

function write(file: string, text: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Every file of the working tree (not .git) with its mode and content hash. */
function treeState(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.name === '.git' && d === dir) continue;
      if (e.isDirectory()) walk(p);
      else out.push(`${path.relative(dir, p)} ${fs.lstatSync(p).mode.toString(8)} ${sha(fs.readFileSync(p))}`);
    }
  };
  walk(dir);
  return out.sort();
}

/** What must not change: status, staged entries, the index file's bytes, the working tree. */
function snapshot(repo: string) {
  const indexFile = path.join(repo, '.git', 'index');
  return {
    status: git(repo, ['status', '--porcelain=v1', '--untracked-files=all', '--ignored'], { GIT_OPTIONAL_LOCKS: '0' }),
    staged: git(repo, ['ls-files', '-s']),
    index: fs.existsSync(indexFile) ? sha(fs.readFileSync(indexFile)) : null,
    tree: treeState(repo),
  };
}

/** Name, content hash, mode and mtime of every entry of a folder (what uninstall must restore). */
function dirState(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((n) => {
      const st = fs.lstatSync(path.join(dir, n));
      return `${n} ${st.mode.toString(8)} ${st.mtimeMs} ${st.isFile() ? sha(fs.readFileSync(path.join(dir, n))) : ''}`;
    });
}

// ---------------------------------------------------------------------------------------------------------------------
// Which datasets a commit touches

test('datasetRootsTouched: prefixes are folders, nested roots all count, the top folder contains everything', () => {
  assert.deepEqual(datasetRootsTouched(['data/a'], ['data/ab/x.png']), []);
  assert.deepEqual(datasetRootsTouched(['data/a'], ['data/a/x.png']), ['data/a']);
  assert.deepEqual(datasetRootsTouched(['data/a', 'data/a/n'], ['data/a/n/x.png']), ['data/a', 'data/a/n']);
  assert.deepEqual(datasetRootsTouched(['', 'data/a'], ['README.md']), ['']);
  assert.deepEqual(datasetRootsTouched(['data/a'], []), []);
});

test('stagedDatasetRoots follows the index: first commit, moves, changes outside, nested roots, deleted configs', (t) => {
  const repo = newRepo(t);
  write(path.join(repo, 'data/a/.clip-lens.json'), '{}\n');
  write(path.join(repo, 'data/a/cat/1.png'), 'cat 1');
  write(path.join(repo, 'data/a/dog/2.png'), 'dog 2');
  write(path.join(repo, 'data/a/nested/.clip-lens.json'), '{}\n');
  write(path.join(repo, 'data/a/nested/x/3.png'), 'x 3');
  write(path.join(repo, 'data/ü b/.clip-lens.json'), '{}\n');
  write(path.join(repo, 'data/ü b/k/4.png'), 'k 4');
  write(path.join(repo, 'other/readme.txt'), 'hello');
  // Not staged yet: nothing.
  return (async () => {
    assert.deepEqual(await stagedDatasetRoots(repo), []);
    git(repo, ['add', '-A']);
    // Before the first commit (no HEAD): everything staged is new.
    assert.deepEqual(await stagedConfigRoots(repo), ['data/a', 'data/a/nested', 'data/ü b']);
    assert.deepEqual(await stagedDatasetRoots(repo), ['data/a', 'data/a/nested', 'data/ü b']);
    git(repo, ['commit', '-q', '-m', 'initial']);
    assert.deepEqual(await stagedDatasetRoots(repo), []);

    git(repo, ['mv', 'data/a/cat/1.png', 'data/a/dog/1.png']);
    assert.deepEqual(await stagedDatasetRoots(repo), ['data/a'], 'a move between class folders');
    git(repo, ['reset', '-q', '--hard']);

    write(path.join(repo, 'other/readme.txt'), 'changed');
    git(repo, ['add', 'other/readme.txt']);
    assert.deepEqual(await stagedDatasetRoots(repo), [], 'a change outside every dataset');
    write(path.join(repo, 'data/a/nested/x/3.png'), 'x 3 changed');
    assert.deepEqual(await stagedDatasetRoots(repo), [], 'an unstaged change does not count');
    git(repo, ['add', 'data/a/nested/x/3.png']);
    assert.deepEqual(await stagedDatasetRoots(repo), ['data/a', 'data/a/nested']);
    git(repo, ['reset', '-q', '--hard']);

    write(path.join(repo, 'data/ü b/k/5.png'), 'k 5');
    git(repo, ['add', '-A']);
    assert.deepEqual(await stagedDatasetRoots(repo), ['data/ü b'], 'non-ASCII and spaces in paths');
    git(repo, ['reset', '-q', '--hard']);

    git(repo, ['rm', '-q', 'data/ü b/.clip-lens.json']);
    assert.deepEqual(await stagedDatasetRoots(repo), [], 'a dataset whose config is being deleted is no longer gated');
  })();
});

test('stagedDataset: the working tree when it equals the index, else a temporary checkout; nothing changes', async (t) => {
  const repo = newRepo(t);
  write(path.join(repo, 'data/a/.clip-lens.json'), '{}\n');
  write(path.join(repo, 'data/a/cat/1.png'), 'v1');
  write(path.join(repo, 'data/a/dog/2.png'), 'dog');
  write(path.join(repo, 'data/b/3.png'), 'other dataset');
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-q', '-m', 'initial']);

  write(path.join(repo, 'data/a/cat/1.png'), 'v2');
  git(repo, ['add', '-A']);
  assert.equal(await stagedMatchesWorktree(repo, 'data/a'), true);
  // A file touched without a content change (stat data differs from the index) still matches.
  const future = new Date(Date.now() + 3600_000);
  fs.utimesSync(path.join(repo, 'data/a/dog/2.png'), future, future);
  assert.equal(await stagedMatchesWorktree(repo, 'data/a'), true, 'stat-only change');
  const direct = await stagedDataset(repo, 'data/a');
  assert.equal(direct.materialized, false);
  assert.equal(direct.dir, path.join(repo, 'data/a'));

  // An unstaged edit: the staged content must come from the index.
  write(path.join(repo, 'data/a/cat/1.png'), 'v3 (not staged)');
  write(path.join(repo, 'data/a/untracked.png'), 'untracked');
  const before = snapshot(repo);
  assert.equal(await stagedMatchesWorktree(repo, 'data/a'), false);
  const staged = await stagedDataset(repo, 'data/a');
  assert.equal(staged.materialized, true);
  assert.equal(staged.files, 3);
  assert.equal(fs.readFileSync(path.join(staged.dir, 'cat/1.png'), 'utf8'), 'v2');
  assert.equal(fs.readFileSync(path.join(staged.dir, '.clip-lens.json'), 'utf8'), '{}\n');
  assert.equal(fs.existsSync(path.join(staged.dir, 'untracked.png')), false, 'untracked files are not part of the commit');
  assert.equal(fs.existsSync(path.join(staged.dir, '../b/3.png')), false, 'only the dataset is checked out');
  assert.ok(!staged.dir.startsWith(repo), 'the checkout is outside the repository');
  assert.deepEqual(snapshot(repo), before, 'status, index bytes and working tree unchanged');
  await staged.dispose();
  assert.equal(fs.existsSync(staged.dir), false);

  // Only an untracked file differs.
  write(path.join(repo, 'data/a/cat/1.png'), 'v2');
  assert.equal(await stagedMatchesWorktree(repo, 'data/a'), false);
  fs.rmSync(path.join(repo, 'data/a/untracked.png'));
  assert.equal(await stagedMatchesWorktree(repo, 'data/a'), true);
  // A deleted, still staged file differs.
  fs.rmSync(path.join(repo, 'data/a/dog/2.png'));
  assert.equal(await stagedMatchesWorktree(repo, 'data/a'), false);
});

// ---------------------------------------------------------------------------------------------------------------------
// The check command before any model is loaded

function captureIO(): CliIO & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', isTTY: false, out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

test('check: dataset discovery skips node_modules and .git; usage errors; config problems in gate are exit 2', async (t) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-check-')));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  write(path.join(dir, 'a/.clip-lens.json'), '{ "gate": {} }\n');
  write(path.join(dir, 'a/inner/.clip-lens.json'), '{}\n');
  write(path.join(dir, 'node_modules/pkg/.clip-lens.json'), '{}\n');
  write(path.join(dir, '.git/x/.clip-lens.json'), '{}\n');
  write(path.join(dir, 'b/c/.clip-lens.json'), '{\n  "gate": {\n    "minRecal": 0.5\n  }\n}\n');
  assert.deepEqual(await findDatasetRoots(dir), [path.join(dir, 'a'), path.join(dir, 'a/inner'), path.join(dir, 'b/c')]);

  const signal = new AbortController().signal;
  await assert.rejects(checkCommand(['--format', 'xml'], captureIO(), signal), UsageError);
  await assert.rejects(checkCommand(['--format', 'json', '--format', 'sarif'], captureIO(), signal), /one --output each/);
  await assert.rejects(checkCommand(['--format', 'json', '--output', 'a', '--output', 'b'], captureIO(), signal), /one --output per --format/);

  // A typo in the gate section must not silently drop a threshold: exit 2, naming file, line, column and key.
  let io = captureIO();
  assert.equal(await checkCommand([path.join(dir, 'b/c')], io, signal), 2);
  assert.match(io.stdout, /could not be checked.*\.clip-lens\.json:3:5: gate\.minRecal: unknown key \(did you mean minRecall\?\)/);

  // No thresholds: passes without loading a model, and says so.
  io = captureIO();
  assert.equal(await checkCommand([path.join(dir, 'a'), '--model', path.join(dir, 'no-such-model')], io, signal), 0);
  assert.match(io.stdout, /passed, 0 thresholds met/);
  assert.match(io.stdout, /no thresholds in the "gate" section/);

  // A folder without a config cannot be checked; a file is not a dataset.
  io = captureIO();
  assert.equal(await checkCommand([path.join(dir, 'node_modules')], io, signal), 2);
  assert.match(io.stdout, /no \.clip-lens\.json in this dataset folder/);
  await assert.rejects(checkCommand([path.join(dir, 'a/.clip-lens.json')], captureIO(), signal), /expects a dataset folder/);

  // An empty dataset is exit 2 before the model is looked at.
  write(path.join(dir, 'd/.clip-lens.json'), JSON.stringify({ model: './models/missing', gate: { minTop1Accuracy: 0.5 } }));
  io = captureIO();
  assert.equal(await checkCommand([path.join(dir, 'd'), '--format', 'json'], io, signal), 2);
  assert.match(JSON.parse(io.stdout).datasets[0].error.message, /d: no class folders found/);

  // A missing model is exit 2 naming the config's model key.
  write(path.join(dir, 'd/cat/1.png'), 'not decoded before the model loads');
  write(path.join(dir, 'd/dog/1.png'), 'not decoded before the model loads');
  io = captureIO();
  assert.equal(await checkCommand([path.join(dir, 'd'), '--format', 'json'], io, signal), 2);
  const out = JSON.parse(io.stdout);
  assert.equal(out.exitCode, 2);
  assert.match(out.datasets[0].error.message, /cannot load the model \(model "\.\/models\/missing" of .*d\/\.clip-lens\.json\)/);
});

// ---------------------------------------------------------------------------------------------------------------------
// Hook install / uninstall

const PREVIOUS_HOOK = '#!/bin/sh\necho "previous hook ran" >> "$(git rev-parse --git-dir)/previous-ran"\nexit 0\n';

test('install keeps an existing hook (chained), re-install updates, uninstall restores it exactly', async (t) => {
  const repo = newRepo(t);
  const hooks = path.join(repo, '.git/hooks');
  write(path.join(hooks, 'pre-commit'), PREVIOUS_HOOK);
  fs.chmodSync(path.join(hooks, 'pre-commit'), 0o750);
  const old = new Date('2020-01-02T03:04:05Z');
  fs.utimesSync(path.join(hooks, 'pre-commit'), old, old);
  const before = dirState(hooks);
  const treeBefore = treeState(repo);

  const weird = "/tmp/it's a \"dir\" $HOME/node";
  const r = await installHook(repo, { nodePath: weird, cliScript: '/opt/clip lens/dist/cli.js', extraArgs: ['--cache', "a b'c"] });
  assert.equal(r.updated, false);
  assert.equal(r.previous, path.join(hooks, 'pre-commit.clip-lens-previous'));
  const previousState = fs.lstatSync(path.join(hooks, 'pre-commit.clip-lens-previous'));
  assert.equal(fs.readFileSync(path.join(hooks, 'pre-commit.clip-lens-previous'), 'utf8'), PREVIOUS_HOOK);
  assert.equal(previousState.mode & 0o777, 0o750);
  assert.equal(previousState.mtimeMs, old.getTime());
  const script = fs.readFileSync(path.join(hooks, 'pre-commit'), 'utf8');
  assert.ok(script.startsWith(`#!/bin/sh\n${HOOK_MARKER}\n`));
  assert.equal(fs.statSync(path.join(hooks, 'pre-commit')).mode & 0o111, 0o111, 'executable');
  assert.equal(run(repo, 'sh', ['-n', path.join(hooks, 'pre-commit')]).code, 0, 'valid sh syntax');
  const status = await hookStatus(repo);
  assert.deepEqual(status, { installed: true, hook: path.join(hooks, 'pre-commit'), chained: true, nodePath: weird, cliScript: '/opt/clip lens/dist/cli.js' });

  const again = await installHook(repo, { nodePath: process.execPath, cliScript: CLI });
  assert.equal(again.updated, true);
  assert.equal(fs.readFileSync(path.join(hooks, 'pre-commit.clip-lens-previous'), 'utf8'), PREVIOUS_HOOK, 'not moved twice');
  assert.equal((await hookStatus(repo)).nodePath, process.execPath);

  const u = await uninstallHook(repo);
  assert.deepEqual(u, { hook: path.join(hooks, 'pre-commit'), removed: true, restored: path.join(hooks, 'pre-commit') });
  assert.deepEqual(dirState(hooks), before, 'content, mode and mtime of every hook as before');
  assert.deepEqual(treeState(repo), treeBefore);
  assert.deepEqual(await uninstallHook(repo), { hook: path.join(hooks, 'pre-commit'), removed: false }, 'uninstall twice: nothing to do');
  assert.equal((await hookStatus(repo)).installed, false);
});

test('core.hooksPath is honoured; a hooks folder created by install is removed by uninstall', async (t) => {
  const repo = newRepo(t);
  git(repo, ['config', 'core.hooksPath', 'ci/git-hooks']);
  const before = treeState(repo);
  const r = await installHook(repo, { nodePath: process.execPath, cliScript: CLI });
  assert.equal(r.hook, path.join(repo, 'ci/git-hooks/pre-commit'));
  assert.equal(r.previous, undefined);
  assert.ok(fs.existsSync(r.hook));
  assert.ok(!fs.existsSync(path.join(repo, '.git/hooks/pre-commit')), 'not in .git/hooks');
  await uninstallHook(repo);
  assert.equal(fs.existsSync(path.join(repo, 'ci')), false, 'created folders removed');
  assert.deepEqual(treeState(repo), before);

  // An existing folder with other files stays.
  write(path.join(repo, 'ci/git-hooks/commit-msg'), '#!/bin/sh\nexit 0\n');
  await installHook(repo, { nodePath: process.execPath, cliScript: CLI });
  await uninstallHook(repo);
  assert.deepEqual(fs.readdirSync(path.join(repo, 'ci/git-hooks')), ['commit-msg']);
});

test('install refuses to overwrite a stale pre-commit.clip-lens-previous next to a foreign hook', async (t) => {
  const repo = newRepo(t);
  const hooks = path.join(repo, '.git/hooks');
  write(path.join(hooks, 'pre-commit'), '#!/bin/sh\nexit 0\n');
  write(path.join(hooks, 'pre-commit.clip-lens-previous'), '#!/bin/sh\nexit 0\n');
  const before = dirState(hooks);
  await assert.rejects(installHook(repo, { nodePath: process.execPath, cliScript: CLI }), /pre-commit\.clip-lens-previous already exists/);
  await assert.rejects(uninstallHook(repo), /is not the clip-lens hook/);
  assert.deepEqual(dirState(hooks), before);
});

test('a symlinked pre-commit hook is kept as the link it is: install chains it, uninstall puts the same link back', async (t) => {
  const repo = newRepo(t);
  const hooks = path.join(repo, '.git/hooks');
  const hook = path.join(hooks, 'pre-commit');
  /** Name, lstat mode, mtime and, for links, the target; for files, the content hash. */
  const linkState = () =>
    fs.readdirSync(hooks).sort().map((n) => {
      const st = fs.lstatSync(path.join(hooks, n));
      return `${n} ${st.mode.toString(8)} ${st.mtimeMs} ${st.isSymbolicLink() ? `-> ${fs.readlinkSync(path.join(hooks, n))}` : sha(fs.readFileSync(path.join(hooks, n)))}`;
    });
  const cases: [string, () => void][] = [
    ['a link to a foreign hook', () => {
      write(path.join(repo, 'scripts/pre-commit'), PREVIOUS_HOOK);
      fs.chmodSync(path.join(repo, 'scripts/pre-commit'), 0o755);
      fs.symlinkSync('../../scripts/pre-commit', hook);
    }],
    ['a dangling link', () => fs.symlinkSync('../../scripts/gone', hook)],
    // A shared clip-lens hook committed in the repository: the link is still the user's, not the file to rewrite.
    ['a link to a clip-lens hook script', () => {
      write(path.join(repo, 'shared/pre-commit'), hookScript({ nodePath: process.execPath, cliScript: CLI }));
      fs.symlinkSync('../../shared/pre-commit', hook);
    }],
  ];
  for (const [name, make] of cases) {
    for (const f of fs.readdirSync(hooks)) if (f.startsWith('pre-commit') && !f.endsWith('.sample')) fs.rmSync(path.join(hooks, f));
    fs.rmSync(path.join(repo, 'scripts'), { recursive: true, force: true });
    fs.rmSync(path.join(repo, 'shared'), { recursive: true, force: true });
    make();
    const before = linkState();
    const targets = treeState(repo);
    const r = await installHook(repo, { nodePath: process.execPath, cliScript: CLI });
    assert.equal(r.previous, hook + '.clip-lens-previous', name);
    assert.ok(fs.lstatSync(hook).isFile(), `${name}: the clip-lens hook is a file`);
    assert.ok(fs.lstatSync(r.previous!).isSymbolicLink(), `${name}: the link moved aside as a link`);
    assert.deepEqual(treeState(repo), targets, `${name}: nothing written through the link`);
    // Re-install updates our file and leaves the link alone.
    assert.equal((await installHook(repo, { nodePath: process.execPath, cliScript: CLI })).updated, true, name);
    const u = await uninstallHook(repo);
    assert.deepEqual(u, { hook, removed: true, restored: hook }, name);
    assert.deepEqual(linkState(), before, `${name}: the same link, target and times as before`);
    assert.deepEqual(treeState(repo), targets, name);
    // Uninstall without our hook: the link is not ours and stays (it used to be deleted when it led to a clip-lens script).
    assert.deepEqual(await uninstallHook(repo), { hook, removed: false }, name);
    assert.deepEqual(linkState(), before, `${name}: a second uninstall leaves the link`);
  }
});

test('the hook script: previous hook first (its failure stops the commit), then check --staged with quoted arguments', (t) => {
  const repo = newRepo(t);
  const dir = path.join(repo, '.git/hooks');
  const log = path.join(repo, '.git/calls.log');
  // A stand-in for the node binary that records how it was called and exits with $FAKE_EXIT.
  const fakeNode = path.join(repo, ".git/fake node's");
  write(fakeNode, `#!/bin/sh\nfor a in "$@"; do printf '[%s]' "$a" >> ${JSON.stringify(log)}; done\necho >> ${JSON.stringify(log)}\nexit "\${FAKE_EXIT:-0}"\n`);
  fs.chmodSync(fakeNode, 0o755);
  const cli = path.join(repo, '.git/cli "x".js');
  write(cli, '// never run: the fake node only records its arguments\n');
  write(path.join(dir, 'pre-commit.clip-lens-previous'), `#!/bin/sh\necho previous >> ${JSON.stringify(log)}\nexit "\${PREV_EXIT:-0}"\n`);
  fs.chmodSync(path.join(dir, 'pre-commit.clip-lens-previous'), 0o755);
  write(path.join(dir, 'pre-commit'), hookScript({ nodePath: fakeNode, cliScript: cli, extraArgs: ['--cache', "it's here"] }));
  fs.chmodSync(path.join(dir, 'pre-commit'), 0o755);
  const hook = '.git/hooks/pre-commit';

  let r = run(repo, hook, []);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(log, 'utf8'), `previous\n[${cli}][check][--staged][--cache][it's here]\n`);

  fs.rmSync(log);
  r = run(repo, hook, [], { FAKE_EXIT: '1' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /commit refused: a dataset quality threshold is not met/);
  assert.match(r.stderr, /--no-verify/);

  r = run(repo, hook, [], { FAKE_EXIT: '2' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /could not run \(exit 2/);

  fs.rmSync(log);
  r = run(repo, hook, [], { PREV_EXIT: '7' });
  assert.equal(r.code, 7, 'the previous hook decides first');
  assert.equal(fs.readFileSync(log, 'utf8'), 'previous\n', 'check not run after the previous hook failed');

  // A non-executable previous hook is ignored, as git ignores it.
  fs.chmodSync(path.join(dir, 'pre-commit.clip-lens-previous'), 0o644);
  fs.rmSync(log);
  r = run(repo, hook, [], { PREV_EXIT: '7' });
  assert.equal(r.code, 0);
  assert.equal(fs.readFileSync(log, 'utf8'), `[${cli}][check][--staged][--cache][it's here]\n`);

  // Recorded paths gone and no clip-lens/npx on PATH: refuses with a way out.
  fs.rmSync(fakeNode);
  r = run(repo, hook, [], { PATH: '/nonexistent' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot find clip-lens/);
});

// ---------------------------------------------------------------------------------------------------------------------
// End to end: the bundled CLI, the fixture model, the example dataset

interface CheckJson {
  exitCode: number;
  datasets: {
    status: string;
    error?: { message: string };
    checks: { id: string; kind: string; class?: string; actual: number; counts: { hits: number; total: number }; samples?: { path: string; predicted?: string }[] }[];
  }[];
}

function copyDir(from: string, to: string): number {
  let n = 0;
  fs.mkdirSync(to, { recursive: true });
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) n += copyDir(a, b);
    else if (e.isFile()) {
      fs.copyFileSync(a, b);
      n++;
    }
  }
  return n;
}

function inferred(output: string): { evaluated: number; inferred: number; cached: number } | undefined {
  const m = /(\d+) images evaluated, (\d+) inferred and (\d+) from the cache/.exec(output);
  return m ? { evaluated: Number(m[1]), inferred: Number(m[2]), cached: Number(m[3]) } : undefined;
}

test('end to end: a relabelling commit is refused with the numbers, the fix passes, the cache keeps hooks fast', async (t) => {
  assert.ok(fs.existsSync(CLI), `${CLI} missing: run \`npm run build\``);
  assert.ok(fs.existsSync(MODEL), `fixture model missing: ${MODEL}`);
  assert.ok(fs.existsSync(EXAMPLE), `example dataset missing: ${EXAMPLE}`);
  const help = run(ROOT, process.execPath, [CLI, 'check', '--help']);
  assert.equal(help.code, 0, `${CLI} does not dispatch 'check' (add the check and hook lines to src/cli/main.ts, then npm run build): ${help.stderr}`);

  const repo = newRepo(t);
  const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-gate-')));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const cache = path.join(work, 'cache');
  const env = { CLIP_LENS_CACHE: cache };
  const ds = path.join(repo, 'data/shapes');
  const total = copyDir(EXAMPLE, ds);
  const config = path.join(ds, '.clip-lens.json');

  // Baseline (own cache, so the first hook run below starts cold): every class at minRecall 1, so each class's check
  // lists its misclassified images.
  write(config, JSON.stringify({ model: MODEL, gate: { minRecall: 1 } }, null, 2) + '\n');
  const base = run(repo, process.execPath, [CLI, 'check', 'data/shapes', '--format', 'json', '--cache', path.join(work, 'baseline-cache')]);
  assert.ok(base.code === 0 || base.code === 1, base.stderr);
  const baseline = JSON.parse(base.stdout) as CheckJson;
  const perClass = baseline.datasets[0].checks.filter((c) => c.kind === 'classRecall' && c.counts);
  assert.ok(perClass.length >= 2, base.stdout.slice(0, 2000));
  const wrong = new Set(perClass.flatMap((c) => (c.samples ?? []).map((s) => s.path)));
  const images = new Map<string, string[]>();
  for (const c of perClass) images.set(c.class as string, []);
  // The images of each class the model gets right: class folders hold them (a split level may sit above).
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(png|jpe?g|webp|gif|bmp|tiff?)$/i.test(e.name)) {
        const rel = path.relative(ds, p).split(path.sep).join('/');
        const cls = path.basename(path.dirname(p));
        if (images.has(cls) && !wrong.has(rel)) images.get(cls)!.push(rel);
      }
    }
  };
  walk(ds);
  // A: the class with the best recall; B: another class with the most correctly predicted images.
  const byRecall = [...perClass].sort((x, y) => y.actual - x.actual || y.counts.total - x.counts.total);
  const A = byRecall[0];
  assert.ok(A.actual > 0.3, `no class the fixture model recognises: ${perClass.map((c) => `${c.class} ${c.actual}`).join(', ')}`);
  const B = [...perClass].filter((c) => c.class !== A.class).sort((x, y) => images.get(y.class!)!.length - images.get(x.class!)!.length)[0];
  const movable = images.get(B.class!)!;
  const nA = A.counts.total;
  const hitsA = A.counts.hits;
  let k = Math.max(2, Math.ceil(nA * 0.3));
  k = Math.min(k, movable.length);
  assert.ok(k >= 1, `class ${B.class} has no correctly predicted image to move`);
  const recallA = hitsA / nA;
  const newRecallA = hitsA / (nA + k);
  const threshold = Math.floor(((recallA + newRecallA) / 2) * 1000) / 1000;
  assert.ok(newRecallA < threshold && threshold <= recallA, `threshold ${threshold} does not separate ${recallA} and ${newRecallA}`);
  write(config, JSON.stringify({ model: MODEL, gate: { classes: { [A.class!]: { minRecall: threshold } } } }, null, 2) + '\n');
  t.diagnostic(`dataset: ${total} files; class ${A.class}: recall ${num(recallA)} (${hitsA}/${nA}), threshold ${threshold}; moving ${k} images of ${B.class} into it gives ${num(newRecallA)}`);

  // An existing hook, then the clip-lens hook (installed by the bundled CLI, recording node and the CLI paths).
  const hooks = path.join(repo, '.git/hooks');
  write(path.join(hooks, 'pre-commit'), PREVIOUS_HOOK);
  fs.chmodSync(path.join(hooks, 'pre-commit'), 0o755);
  const hooksBefore = dirState(hooks);
  const inst = run(repo, process.execPath, [CLI, 'hook', 'install']);
  assert.equal(inst.code, 0, inst.stderr);
  assert.match(inst.stdout, /existing hook was kept/);
  const previousRan = () => (fs.existsSync(path.join(repo, '.git/previous-ran')) ? fs.readFileSync(path.join(repo, '.git/previous-ran'), 'utf8').split('\n').filter(Boolean).length : 0);

  // 1. The initial commit: every image inferred (cold cache); passes.
  git(repo, ['add', '-A']);
  const c1 = run(repo, 'git', ['commit', '-q', '-m', 'initial dataset'], env);
  assert.equal(c1.code, 0, c1.stderr);
  const s1 = inferred(c1.stderr + c1.stdout);
  assert.ok(s1, c1.stderr);
  // Cold cache: every distinct image inferred (a byte-identical duplicate may hit the cache within the run).
  assert.equal(s1.inferred + s1.cached, s1.evaluated, 'cold cache: every image evaluated');
  assert.ok(s1.cached <= 1, `cold cache: at most the one duplicate from the cache, got ${s1.cached}`);
  assert.match(c1.stderr, new RegExp(`data/shapes: passed, 1 threshold met`));
  assert.equal(previousRan(), 1, 'the previous hook ran');

  // 2. Relabel: move k images of B into A's folder (+ an untracked file, so the staged content is checked out).
  const moved: [string, string][] = movable.slice(0, k).map((rel) => {
    const parts = rel.split('/');
    parts[parts.length - 2] = A.class!;
    parts[parts.length - 1] = `moved-${parts[parts.length - 1]}`;
    return [rel, parts.join('/')];
  });
  for (const [from, to] of moved) {
    fs.mkdirSync(path.dirname(path.join(ds, to)), { recursive: true });
    git(repo, ['mv', `data/shapes/${from}`, `data/shapes/${to}`]);
  }
  write(path.join(ds, 'scratch-notes.txt'), 'not staged');
  const head = git(repo, ['rev-parse', 'HEAD']);
  const before = snapshot(repo);
  const c2 = run(repo, 'git', ['commit', '-q', '-m', 'relabel'], env);
  assert.notEqual(c2.code, 0, 'the relabelling commit must be refused');
  // git commit itself refreshes the stat data in the index file before running hooks (it does so with any hook), so
  // across `git commit` compare what the index holds, not its bytes; the bytes are compared around the hook alone below.
  const after = snapshot(repo);
  assert.deepEqual({ ...after, index: null }, { ...before, index: null }, 'working tree, staged entries and status unchanged');
  const out2 = c2.stderr + c2.stdout;
  assert.match(out2, /data\/shapes: FAILED, 1 of 1 thresholds not met/);
  const numbers = `recall of ${A.class} +${numPair(newRecallA, threshold)[0].replace('.', '\\.')} \\(${hitsA}/${nA + k}\\) +>= ${String(threshold).replace('.', '\\.')} +gate\\.classes\\.${A.class}\\.minRecall`;
  assert.match(out2, new RegExp(numbers), out2);
  assert.match(out2, /commit refused: a dataset quality threshold is not met/);
  assert.match(out2, /temporary folder/, 'the untracked file forced a checkout of the staged content');
  const s2 = inferred(out2);
  assert.equal(s2?.inferred, 0, 'moved images keep their content: all from the cache');
  assert.equal(git(repo, ['rev-parse', 'HEAD']), head, 'nothing committed');
  assert.equal(previousRan(), 2);
  // The hook alone, run as git runs it: not even the bytes of the index change.
  const hookRun = run(repo, '.git/hooks/pre-commit', [], env);
  assert.equal(hookRun.code, 1, hookRun.stderr);
  assert.match(hookRun.stderr + hookRun.stdout, new RegExp(numbers));
  assert.deepEqual(snapshot(repo), after, 'index bytes, staged entries, status and working tree unchanged by the hook');
  assert.equal(previousRan(), 3);

  // 3. The fix: move them back, and add one new image (a mirrored, darker copy) so the commit has content. Passes; only the
  // new image is inferred.
  for (const [from, to] of moved) git(repo, ['mv', `data/shapes/${to}`, `data/shapes/${from}`]);
  fs.rmSync(path.join(ds, 'scratch-notes.txt'));
  const sharp = (await import('sharp')).default;
  const src = path.join(ds, movable[movable.length - 1]);
  const added = path.join(path.dirname(src), `mirrored-${path.basename(src, path.extname(src))}.png`);
  await sharp(fs.readFileSync(src)).flop().modulate({ brightness: 0.93 }).png().toFile(added);
  git(repo, ['add', '-A']);
  const c3 = run(repo, 'git', ['commit', '-q', '-m', 'fix labels, add one image'], env);
  assert.equal(c3.code, 0, c3.stderr);
  const s3 = inferred(c3.stderr + c3.stdout);
  assert.equal(s3?.inferred, 1, 'only the new image is inferred');
  assert.equal(s3?.evaluated, s1.evaluated + 1);

  // 4. A commit outside the dataset: the hook does not evaluate anything.
  write(path.join(repo, 'README.md'), '# data\n');
  git(repo, ['add', 'README.md']);
  const c4 = run(repo, 'git', ['commit', '-q', '-m', 'readme'], env);
  assert.equal(c4.code, 0, c4.stderr);
  assert.match(c4.stderr, /no staged change touches a dataset/);

  t.diagnostic(
    `hook timings (whole git commit): initial ${Math.round(c1.ms)} ms for ${s1.inferred} inferred images; ` +
      `refused relabel ${Math.round(c2.ms)} ms (0 inferred, staged checkout); fix ${Math.round(c3.ms)} ms (1 inferred of ${s3?.evaluated}); ` +
      `commit outside the dataset ${Math.round(c4.ms)} ms`,
  );
  assert.ok(c3.ms < c1.ms, `the second evaluation (${Math.round(c3.ms)} ms) should be faster than the cold one (${Math.round(c1.ms)} ms)`);

  // 5. Uninstall: the previous hook is back exactly.
  const un = run(repo, process.execPath, [CLI, 'hook', 'uninstall']);
  assert.equal(un.code, 0, un.stderr);
  assert.deepEqual(dirState(hooks), hooksBefore);
});

test('end to end: the ratchet refuses a recall regression that the absolute thresholds let through; committing a new baseline accepts it', async (t) => {
  assert.ok(fs.existsSync(CLI), `${CLI} missing: run \`npm run build\``);
  const help = run(ROOT, process.execPath, [CLI, 'baseline', '--help']);
  assert.equal(help.code, 0, `${CLI} does not dispatch 'baseline' (npm run build): ${help.stderr}`);
  const repo = newRepo(t);
  const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-ratchet-')));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const env = { CLIP_LENS_CACHE: path.join(work, 'cache') };
  const ds = path.join(repo, 'data/shapes');
  // A small copy of the example: 4 classes the fixture model knows, 8 images each.
  const CLASSES = ['blue_star', 'red_circle', 'red_triangle', 'yellow_square'];
  for (const cls of CLASSES) {
    const files = fs.readdirSync(path.join(EXAMPLE, cls)).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().slice(0, 8);
    for (const f of files) {
      fs.mkdirSync(path.join(ds, cls), { recursive: true });
      fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(ds, cls, f));
    }
  }
  const config = path.join(ds, '.clip-lens.json');
  write(config, JSON.stringify({ model: MODEL, gate: { maxDrop: { recall: 0.05 } } }, null, 2) + '\n');

  // The baseline, as `clip-lens baseline` writes it (in the dataset: the default .clip-lens-baseline.json).
  const made = run(repo, process.execPath, [CLI, 'baseline', 'data/shapes'], env);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stdout, /Baseline written: data\/shapes\/\.clip-lens-baseline\.json/);
  const baselineFile = path.join(ds, '.clip-lens-baseline.json');
  const baseline = JSON.parse(fs.readFileSync(baselineFile, 'utf8')) as {
    classes: Record<string, { support: number; correct: number; recall: number }>;
    samples: Record<string, { path: string; label: string; predicted: string }>;
  };
  assert.deepEqual(Object.keys(baseline.classes), CLASSES);
  // A: the class with the best recall; B: another class with the most correctly predicted images. Moving k of B's
  // correct images into A's folder lowers both recalls.
  const correct = (cls: string) => Object.values(baseline.samples).filter((s) => s.label === cls && s.predicted === cls).map((s) => s.path);
  const A = [...CLASSES].sort((x, y) => baseline.classes[y].recall - baseline.classes[x].recall)[0];
  const B = CLASSES.filter((c) => c !== A).sort((x, y) => correct(y).length - correct(x).length)[0];
  const a = baseline.classes[A];
  const b = baseline.classes[B];
  const k = 2;
  assert.ok(a.recall > 0.5 && correct(B).length > k, `the fixture model must know ${A} and ${B}: ${JSON.stringify(baseline.classes)}`);
  const after: Record<string, number> = {};
  for (const c of CLASSES) after[c] = baseline.classes[c].recall;
  after[A] = a.correct / (a.support + k);
  after[B] = (b.correct - k) / (b.support - k);
  // Absolute thresholds every class meets before and after the move: they let the regression through.
  const minRecall = Math.floor(Math.min(...Object.values(after)) * 100) / 100;
  assert.ok(minRecall > 0.3, `an absolute threshold that means something: ${minRecall}`);
  assert.ok(a.recall - after[A] > 0.05, `the move is a regression beyond maxDrop: ${a.recall} -> ${after[A]}`);
  write(config, JSON.stringify({ model: MODEL, gate: { minRecall, minTop1Accuracy: minRecall, maxDrop: { recall: 0.05 } } }, null, 2) + '\n');
  t.diagnostic(`class ${A}: recall ${num(a.recall)} (${a.correct}/${a.support}) -> ${num(after[A])} after moving ${k} images of ${B} (${num(b.recall)} -> ${num(after[B])}); gate.minRecall ${minRecall}, maxDrop.recall 0.05`);

  const inst = run(repo, process.execPath, [CLI, 'hook', 'install']);
  assert.equal(inst.code, 0, inst.stderr);
  git(repo, ['add', '-A']);
  const c1 = run(repo, 'git', ['commit', '-q', '-m', 'dataset and its baseline'], env);
  assert.equal(c1.code, 0, c1.stderr + c1.stdout);
  assert.match(c1.stderr, /data\/shapes: passed/);

  // The relabelling commit.
  const moved = correct(B).slice(0, k);
  for (const rel of moved) git(repo, ['mv', `data/shapes/${rel}`, `data/shapes/${A}/moved-${path.posix.basename(rel)}`]);
  const head = git(repo, ['rev-parse', 'HEAD']);
  const c2 = run(repo, 'git', ['commit', '-q', '-m', 'relabel'], env);
  const out2 = c2.stderr + c2.stdout;
  assert.notEqual(c2.code, 0, `the regression must be refused: ${out2}`);
  assert.equal(git(repo, ['rev-parse', 'HEAD']), head, 'nothing committed');
  assert.match(out2, /commit refused/);
  const fell = (cls: string, from: number, to: string) =>
    new RegExp(`recall of ${cls} fell from ${num(from).replace('.', '\\.')} in the baseline data/shapes/\\.clip-lens-baseline\\.json to ${to.replace('.', '\\.')} \\(\\d+/\\d+\\): a drop of [0-9.]+, more than the 0\\.05 allowed \\(gate\\.maxDrop\\.recall\\)`);
  assert.match(out2, fell(A, a.recall, numPair(after[A], a.recall)[0]), out2);
  // The absolute thresholds alone pass: only ratchet checks failed.
  const json = run(repo, process.execPath, [CLI, 'check', '--staged', '--format', 'json'], env);
  assert.equal(json.code, 1, json.stderr);
  const checks = (JSON.parse(json.stdout) as CheckJson).datasets[0].checks as (CheckJson['datasets'][0]['checks'][0] & { passed: boolean; configKey: string })[];
  const failed = checks.filter((c) => !c.passed);
  assert.ok(failed.length >= 1 && failed.every((c) => c.kind === 'classRecallDrop'), JSON.stringify(failed, null, 1));
  assert.ok(failed.some((c) => c.class === A));
  const absolute = checks.filter((c) => c.configKey === 'gate.minRecall' || c.configKey === 'gate.minTop1Accuracy');
  assert.equal(absolute.length, CLASSES.length + 1);
  assert.ok(absolute.every((c) => c.passed), 'the absolute thresholds let the regression through');
  // The images behind the refusal: the moved ones.
  const listed = failed.find((c) => c.class === A)!.samples!.map((s) => s.path).sort();
  assert.deepEqual(listed, moved.map((rel) => `${A}/moved-${path.posix.basename(rel)}`).sort());

  // Accepting the change on purpose: re-make the baseline and commit it with the change.
  const remade = run(repo, process.execPath, [CLI, 'baseline', 'data/shapes'], env);
  assert.equal(remade.code, 0, remade.stderr);
  assert.match(remade.stdout, /Baseline updated/);
  git(repo, ['add', 'data/shapes/.clip-lens-baseline.json']);
  const c3 = run(repo, 'git', ['commit', '-q', '-m', 'relabel, new baseline'], env);
  assert.equal(c3.code, 0, c3.stderr + c3.stdout);
  // The baseline diff names exactly the moved images (one line each) and the two classes.
  const diff = git(repo, ['diff', 'HEAD~1', 'HEAD', '--unified=0', '--', 'data/shapes/.clip-lens-baseline.json']);
  const changedSamples = diff.split('\n').filter((l) => /^\+ {2}"[0-9a-f]{16}": /.test(l));
  assert.equal(changedSamples.length, k, diff);
  assert.ok(diff.split('\n').some((l) => l.startsWith(`+  "${A}": `)) && diff.split('\n').some((l) => l.startsWith(`+  "${B}": `)), diff);
  // An unchanged dataset re-makes the same bytes.
  const again = run(repo, process.execPath, [CLI, 'baseline', 'data/shapes'], env);
  assert.match(again.stdout, /Baseline unchanged/);
});
