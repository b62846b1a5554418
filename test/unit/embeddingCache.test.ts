import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddingCache, sha256 } from '../../src/core/embeddingCache';

const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-cache-'));
  made.push(d);
  return d;
}

function vec(seed: number, dim = 8): Float32Array {
  return Float32Array.from({ length: dim }, (_, i) => Math.sin(seed * 7 + i));
}

test('entries survive a reopen, bit for bit', async () => {
  const root = tmpdir();
  const c = await EmbeddingCache.open(root, 'model-a');
  for (let i = 0; i < 50; i++) c.put(sha256(`img${i}`), vec(i));
  await c.flush();
  const again = await EmbeddingCache.open(root, 'model-a');
  assert.equal(again.size, 50);
  for (let i = 0; i < 50; i++) assert.deepEqual(again.get(sha256(`img${i}`)), vec(i));
  assert.equal(again.get(sha256('missing')), undefined);
  assert.deepEqual(again.stats.discarded, []);
});

test('namespaces are separate: another model sees nothing', async () => {
  const root = tmpdir();
  const a = await EmbeddingCache.open(root, 'model-a');
  a.put(sha256('x'), vec(1));
  await a.flush();
  const b = await EmbeddingCache.open(root, 'model-b');
  assert.equal(b.size, 0);
});

test('a corrupt segment is detected, removed and not trusted', async () => {
  const root = tmpdir();
  const a = await EmbeddingCache.open(root, 'm');
  a.put(sha256('x'), vec(1));
  await a.flush();
  a.put(sha256('y'), vec(2));
  await a.flush();
  const segs = fs.readdirSync(a.folder).filter((f) => f.endsWith('.bin')).sort();
  assert.equal(segs.length, 2);
  // Flip one float byte in the second segment: its checksum no longer matches.
  const victim = path.join(a.folder, segs[1]);
  const buf = fs.readFileSync(victim);
  buf[buf.length - 40] ^= 0xff;
  fs.writeFileSync(victim, buf);
  const b = await EmbeddingCache.open(root, 'm');
  assert.equal(b.stats.discarded.length, 1);
  assert.match(b.stats.discarded[0].reason, /checksum/);
  assert.equal(fs.existsSync(victim), false);
  assert.equal(b.size, 1);
});

test('truncated, foreign and stale files are rejected, never crash', async () => {
  const root = tmpdir();
  const a = await EmbeddingCache.open(root, 'm');
  a.put(sha256('x'), vec(1));
  await a.flush();
  const [seg] = fs.readdirSync(a.folder).filter((f) => f.endsWith('.bin'));
  const full = fs.readFileSync(path.join(a.folder, seg));
  fs.writeFileSync(path.join(a.folder, 'seg-trunc.bin'), full.subarray(0, full.length - 5));
  fs.writeFileSync(path.join(a.folder, 'seg-junk.bin'), 'hello world, not a cache');
  // A segment of another namespace copied into this folder is stale.
  const other = await EmbeddingCache.open(root, 'other');
  other.put(sha256('z'), vec(3));
  await other.flush();
  const [oseg] = fs.readdirSync(other.folder).filter((f) => f.endsWith('.bin'));
  fs.copyFileSync(path.join(other.folder, oseg), path.join(a.folder, 'seg-stale.bin'));
  const b = await EmbeddingCache.open(root, 'm');
  const reasons = b.stats.discarded.map((d) => `${path.basename(d.file)}: ${d.reason}`).sort();
  assert.equal(reasons.length, 3, reasons.join('\n'));
  assert.match(reasons.join('\n'), /seg-junk.bin: not a CLIP Lens cache segment/);
  assert.match(reasons.join('\n'), /seg-stale.bin: belongs to another model/);
  assert.match(reasons.join('\n'), /seg-trunc.bin: size/);
  assert.equal(b.size, 1);
  assert.deepEqual(b.get(sha256('x')), vec(1));
});

test('many flushes are compacted into one segment without losing entries', async () => {
  const root = tmpdir();
  const c = await EmbeddingCache.open(root, 'm');
  for (let i = 0; i < 20; i++) {
    c.put(sha256(`k${i}`), vec(i));
    await c.flush();
  }
  const segs = fs.readdirSync(c.folder).filter((f) => f.endsWith('.bin'));
  assert.ok(segs.length <= 9, `expected compaction, found ${segs.length} segments`);
  const again = await EmbeddingCache.open(root, 'm');
  assert.equal(again.size, 20);
  for (let i = 0; i < 20; i++) assert.deepEqual(again.get(sha256(`k${i}`)), vec(i));
});

test('no temporary files are left after a flush', async () => {
  const root = tmpdir();
  const c = await EmbeddingCache.open(root, 'm');
  c.put(sha256('a'), vec(1));
  await c.flush();
  assert.deepEqual(fs.readdirSync(c.folder).filter((f) => f.includes('.tmp')), []);
});

test('an embedding of another width is refused', async () => {
  const c = await EmbeddingCache.open(tmpdir(), 'm');
  c.put(sha256('a'), vec(1, 8));
  assert.throws(() => c.put(sha256('b'), vec(1, 4)), /width/);
});
