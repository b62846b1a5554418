import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeDirectory } from '../../src/core/fileSystem';

test('makeDirectory creates the missing parents and returns the first folder it created', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-mkdir-'));
  try {
    const deep = path.join(root, 'a', 'b', 'c');
    assert.equal(await makeDirectory(deep), path.join(root, 'a'));
    assert.ok(fs.statSync(deep).isDirectory());
    assert.equal(await makeDirectory(deep), undefined, 'an existing folder: nothing created');
    fs.writeFileSync(path.join(root, 'file'), 'x');
    await assert.rejects(makeDirectory(path.join(root, 'file', 'sub')), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

// Node's own recursive mkdir never settles on this path (mkdir says ENOENT under an existing /proc, Node retries):
// `eval --cache /proc/nope` hung. The timeout turns a hang back into a failure.
test('makeDirectory fails with ENOENT under /proc instead of hanging', { skip: !fs.existsSync('/proc/self'), timeout: 10_000 }, async () => {
  await assert.rejects(makeDirectory('/proc/nope/deeper'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
});

test('no source file calls a recursive mkdir itself: folders are made through makeDirectory', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ts$/.test(e.name) && /mkdir(Sync)?\([^;]*recursive:\s*true/.test(fs.readFileSync(p, 'utf8'))) offenders.push(path.relative(process.cwd(), p));
    }
  };
  walk(path.join(__dirname, '..', '..', 'src'));
  assert.deepEqual(offenders, []);
});
