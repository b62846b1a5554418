/**
 * test/e2e/setup.sh takes a lock on its folder: a second run waits for the first instead of replacing node24 and
 * code-server under it. Run against a folder where everything already looks installed (a fake node 24 and
 * code-server), so that setup.sh only checks and writes env.sh.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const SETUP = path.join(__dirname, '../e2e/setup.sh');
const NODE24 = '24.22.3';
const CODE_SERVER = '4.139.1';

/** The Debian packages setup.sh would otherwise install (it must not run apt-get here). */
function aptReady(): boolean {
  if (spawnSync('sh', ['-c', 'command -v chromium && command -v flock && command -v dpkg'], { stdio: 'ignore' }).status !== 0) return false;
  return spawnSync('dpkg', ['-s', 'fonts-liberation', 'libkrb5-dev', 'build-essential', 'pkg-config', 'python3'], { stdio: 'ignore' }).status === 0;
}

function fakeInstall(dir: string): void {
  const script = (file: string, body: string) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  };
  script(path.join(dir, 'node24/bin/node'), `[ "$1" = -v ] && echo v${NODE24} || exit 0`);
  script(path.join(dir, 'cs-prefix/bin/code-server'), 'exit 0');
  const pkg = path.join(dir, 'cs-prefix/lib/node_modules/code-server/package.json');
  fs.mkdirSync(path.dirname(pkg), { recursive: true });
  fs.writeFileSync(pkg, `{\n  "name": "code-server",\n  "version": "${CODE_SERVER}"\n}\n`);
}

/** Resolves with the child's output so far once `pattern` shows up, or rejects when it exits first. */
function waitFor(child: ChildProcess, pattern: RegExp, output: { text: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => pattern.test(output.text) && (cleanup(), resolve());
    const onExit = (code: number | null) => (cleanup(), reject(new Error(`exited (${code}) before ${pattern}: ${output.text}`)));
    const cleanup = () => {
      child.stdout!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.on('exit', onExit);
    check();
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: { text: string } } {
  const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const output = { text: '' };
  child.stdout!.on('data', (b: Buffer) => (output.text += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output.text += b.toString()));
  return { child, output };
}

test('setup.sh waits while another run holds its folder, then finishes', { skip: !aptReady() && 'needs flock and the Debian packages setup.sh checks for' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-e2e-lock-'));
  const started: ChildProcess[] = [];
  t.after(() => {
    for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  fakeInstall(dir);
  const env = { ...process.env, CLIP_LENS_E2E_DIR: dir, NODE24_VERSION: NODE24, CODE_SERVER_VERSION: CODE_SERVER };

  // Unlocked: it checks, writes env.sh and is done.
  const free = spawnSync('bash', [SETUP], { env, encoding: 'utf8' });
  assert.equal(free.status, 0, free.stdout + free.stderr);
  assert.match(free.stdout, /e2e setup ready under/);
  fs.rmSync(path.join(dir, 'env.sh'));

  // Another run holds the lock (flock on the same file, until its stdin closes).
  const holder = run('flock', [path.join(dir, '.setup.lock'), 'sh', '-c', 'echo held; cat'], env);
  started.push(holder.child);
  await waitFor(holder.child, /held/, holder.output);

  const second = run('bash', [SETUP], env);
  started.push(second.child);
  await waitFor(second.child, /waiting for another test\/e2e\/setup\.sh/, second.output);
  assert.equal(second.child.exitCode, null, 'still waiting');
  assert.ok(!fs.existsSync(path.join(dir, 'env.sh')), 'nothing written while the other run holds the lock');

  const exited = new Promise<number | null>((resolve) => second.child.on('exit', (code) => resolve(code)));
  holder.child.stdin!.end(); // the other run finishes
  assert.equal(await exited, 0, second.output.text);
  assert.match(second.output.text, /e2e setup ready under/);
  assert.ok(fs.existsSync(path.join(dir, 'env.sh')));
});
