import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MALLOC_TUNABLES, relaunch, relaunchTunables } from '../../src/cli/relaunch';

test('relaunchTunables: the heavy commands start again with the malloc tunables, once, on glibc only', () => {
  const glibc = () => true;
  for (const command of ['eval', 'embed', 'probe', 'hook']) assert.equal(relaunchTunables({}, command, glibc), MALLOC_TUNABLES, command);
  for (const command of [undefined, '--help', '--version', 'tokenize', 'metrics', 'label-issues', 'help']) assert.equal(relaunchTunables({}, command, glibc), null, String(command));
  // The relaunched process (or a user's own settings), an opt-out, another C library: no relaunch.
  assert.equal(relaunchTunables({ GLIBC_TUNABLES: MALLOC_TUNABLES }, 'eval', glibc), null);
  assert.equal(relaunchTunables({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=1048576' }, 'eval', glibc), null);
  assert.equal(relaunchTunables({ CLIP_LENS_RELAUNCH: '0' }, 'eval', glibc), null);
  assert.equal(relaunchTunables({}, 'eval', () => false), null);
});

test('relaunch: the child runs with the tunables and the same arguments; its exit code, or 128 + its signal, is returned', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-relaunch-'));
  const out = path.join(dir, 'seen.json');
  const script = path.join(dir, 'child.js');
  fs.writeFileSync(script, `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ tunables: process.env.GLIBC_TUNABLES, args: process.argv.slice(2) }));
if (process.argv[2] === 'term') process.kill(process.pid, 'SIGTERM'); else process.exit(7);`);
  assert.equal(await relaunch('glibc.malloc.arena_max=2', [process.execPath, script, 'eval', 'x y', '--json', 'r.json']), 7);
  assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), { tunables: 'glibc.malloc.arena_max=2', args: ['eval', 'x y', '--json', 'r.json'] });
  assert.equal(await relaunch('glibc.malloc.arena_max=2', [process.execPath, script, 'term']), 128 + os.constants.signals.SIGTERM);
  fs.rmSync(dir, { recursive: true, force: true });
});
