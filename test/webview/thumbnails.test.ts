import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { LruCache, ThumbnailCache, makeThumbnail, resolveInsideRoot } from '../../src/core/thumbnails';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-thumbs-'));
const file = (name: string) => path.join(dir, name);

async function image(name: string, width: number, height: number, colour: string, orientation?: number): Promise<string> {
  let p = sharp({ create: { width, height, channels: 3, background: colour } });
  p = name.endsWith('.jpg') ? p.jpeg() : p.png();
  if (orientation) p = p.withMetadata({ orientation });
  await p.toFile(file(name));
  return file(name);
}

function decode(dataUri: string): Buffer {
  const m = /^data:image\/(webp|jpeg);base64,(.+)$/.exec(dataUri);
  assert.ok(m, `not a data URI: ${dataUri.slice(0, 40)}`);
  return Buffer.from(m[2], 'base64');
}

describe('thumbnails', () => {
  before(async () => {
    await image('wide.png', 640, 480, '#cc2222');
    await image('small.png', 40, 30, '#22cc22');
    await image('rotated.jpg', 640, 480, '#2222cc', 6);
    fs.writeFileSync(file('broken.png'), 'this is not an image');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('fits the image in a size×size box as WebP, never enlarging', async () => {
    const t = await makeThumbnail(file('wide.png'));
    assert.deepEqual([t.width, t.height], [128, 96]);
    const meta = await sharp(decode(t.dataUri)).metadata();
    assert.equal(meta.format, 'webp');
    assert.deepEqual([meta.width, meta.height], [128, 96]);
    assert.equal(t.bytes, decode(t.dataUri).length);
    assert.ok(t.bytes < 2000, `thumbnail is ${t.bytes} bytes`);
    const small = await makeThumbnail(file('small.png'), { size: 64 });
    assert.deepEqual([small.width, small.height], [40, 30]);
  });

  test('applies EXIF orientation and can encode JPEG', async () => {
    const t = await makeThumbnail(file('rotated.jpg'), { format: 'jpeg', size: 100 });
    assert.deepEqual([t.width, t.height], [75, 100]);
    assert.equal((await sharp(decode(t.dataUri)).metadata()).format, 'jpeg');
  });

  test('rejects unreadable files; getMany returns the error in place', async () => {
    await assert.rejects(makeThumbnail(file('broken.png')));
    const cache = new ThumbnailCache();
    const [ok, bad, missing] = await cache.getMany([file('wide.png'), file('broken.png'), file('nope.png')]);
    assert.ok(!(ok instanceof Error) && ok.width === 128);
    assert.ok(bad instanceof Error);
    assert.ok(missing instanceof Error && /ENOENT/.test(missing.message));
  });

  test('caches by file, shares concurrent requests, and notices changed files', async () => {
    const cache = new ThumbnailCache();
    const [a, b] = await Promise.all([cache.get(file('wide.png')), cache.get(file('wide.png'))]);
    assert.equal(a, b);
    assert.deepEqual(cache.stats(), { entries: 1, bytes: a.bytes, hits: 0, misses: 1 });
    assert.equal(await cache.get(file('wide.png')), a);
    assert.equal(cache.stats().hits, 1);
    // Replace the file: a new thumbnail (and a new size) is made.
    await image('wide.png', 300, 600, '#cc2222');
    const future = new Date(Date.now() + 5000);
    fs.utimesSync(file('wide.png'), future, future);
    const c = await cache.get(file('wide.png'));
    assert.deepEqual([c.width, c.height], [64, 128]);
    assert.equal(cache.stats().misses, 2);
  });

  test('LRU evicts the least recently used entries by count and by weight', () => {
    const lru = new LruCache<string, number>(3, 100, (v) => v);
    lru.set('a', 10);
    lru.set('b', 10);
    lru.set('c', 10);
    assert.equal(lru.get('a'), 10); // a is now the most recent
    lru.set('d', 10); // evicts b
    assert.deepEqual([...lru.keys()], ['c', 'a', 'd']);
    lru.set('e', 75); // weight 105 > 100: evicts c
    assert.deepEqual([...lru.keys()], ['a', 'd', 'e']);
    assert.equal(lru.weight, 95);
    lru.set('a', 1); // replacing updates the weight
    assert.equal(lru.weight, 86);
    lru.set('huge', 500); // a lone oversized value stays, everything else goes
    assert.deepEqual([...lru.keys()], ['huge']);
    assert.throws(() => new LruCache(0, 1, () => 1), RangeError);
  });

  test('resolveInsideRoot keeps requests inside the dataset root', () => {
    const root = path.join(dir, 'ds');
    assert.equal(resolveInsideRoot(root, 'train/cat/1.png'), path.join(root, 'train', 'cat', '1.png'));
    assert.equal(resolveInsideRoot(root, 'a/../b.png'), path.join(root, 'b.png'));
    for (const bad of ['../secret.png', 'a/../../x', '/etc/passwd', 'C:/Windows/win.ini', '', '.', 'a\0b']) {
      assert.equal(resolveInsideRoot(root, bad), null, bad);
    }
  });
});
