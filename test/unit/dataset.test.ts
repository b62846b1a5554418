import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, symlink, readdir, lstat, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CancelledError, ClipLensError } from '../../src/core/errors';
import { compareCodePoints, readDataset, resolveEntryPath } from '../../src/core/dataset';

const created: string[] = [];
after(() => Promise.all(created.map((d) => rm(d, { recursive: true, force: true }))));

/** A fresh temp folder with the given files ('' content unless given); folders end with '/'. Removed after the tests. */
async function tree(files: Record<string, string> | string[]): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'clip-lens-ds-'));
  created.push(root);
  const entries = Array.isArray(files) ? files.map((f) => [f, ''] as const) : Object.entries(files);
  for (const [rel, content] of entries) {
    const abs = path.join(root, rel);
    if (rel.endsWith('/')) {
      await mkdir(abs, { recursive: true });
    } else {
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, content);
    }
  }
  return root;
}

/** Every entry under root with its size and mtime (to prove nothing was written). */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name);
      const st = await lstat(abs);
      out.push(`${path.relative(root, abs)} ${st.size} ${st.mtimeMs}`);
      if (e.isDirectory()) await walk(abs);
    }
  };
  await walk(root);
  return out.sort();
}

const codes = (problems: { code: string }[]) => problems.map((p) => p.code).sort();

test('class folders: recursive class folders, extensions case-insensitive, hidden/system entries skipped, nothing written', async () => {
  const root = await tree([
    'cat/a.jpg',
    'cat/sub/deeper/b.PNG',
    'cat/.DS_Store',
    'cat/Thumbs.db',
    'dog/c.jpeg',
    'dog/d.WebP',
    'dog/notes.txt',
    'dog/.hidden/x.jpg',
    '.git/objects/y.jpg',
    '__MACOSX/cat/._a.jpg',
    'README.md',
    'desktop.ini',
    'stray.jpg',
    'empty/',
  ]);
  const before = await snapshot(root);
  const ds = await readDataset(root);
  assert.deepEqual(await snapshot(root), before);
  assert.equal(ds.root, root);
  assert.equal(ds.format, 'class-folders');
  assert.deepEqual(ds.classes, ['cat', 'dog', 'empty']);
  assert.deepEqual(ds.samples, [
    { path: 'cat/a.jpg', label: 'cat' },
    { path: 'cat/sub/deeper/b.PNG', label: 'cat' },
    { path: 'dog/c.jpeg', label: 'dog' },
    { path: 'dog/d.WebP', label: 'dog' },
  ]);
  assert.deepEqual(codes(ds.problems), ['empty-class', 'non-image-skipped', 'unlabeled-image']);
  const byCode = Object.fromEntries(ds.problems.map((p) => [p.code, p]));
  assert.equal(byCode['unlabeled-image']!.path, 'stray.jpg');
  assert.equal(byCode['non-image-skipped']!.path, 'dog/notes.txt');
  assert.equal(byCode['empty-class']!.file, 'empty');
});

test('class folders: classes and samples sorted by code point, not by locale or UTF-16 unit', async () => {
  const names = ['b', 'B', 'a', 'é', 'z', '\uFF5E', '😀'];
  const root = await tree(names.flatMap((n) => [`${n}/${n}2.jpg`, `${n}/${n}1.jpg`]));
  const ds = await readDataset(root);
  const utf8Order = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual(ds.classes, utf8Order);
  assert.deepEqual(ds.classes, ['B', 'a', 'b', 'z', 'é', '\uFF5E', '😀']);
  assert.deepEqual(
    ds.samples.map((s) => s.path),
    utf8Order.flatMap((n) => [`${n}/${n}1.jpg`, `${n}/${n}2.jpg`]),
  );
  assert.ok(compareCodePoints('\uFF5E', '😀') < 0 && '\uFF5E' > '😀', 'UTF-16 order differs; code point order is used');
});

test('split level: detected when every top-level folder is a split name; split set on samples', async () => {
  const root = await tree(['train/cat/1.jpg', 'train/dog/2.jpg', 'Valid/cat/3.jpg', 'test/dog/sub/4.jpg', 'test/stray.jpg', 'test/bird/']);
  const ds = await readDataset(root);
  assert.equal(ds.format, 'class-folders-split');
  assert.deepEqual(ds.classes, ['bird', 'cat', 'dog']);
  assert.deepEqual(ds.samples, [
    { path: 'Valid/cat/3.jpg', label: 'cat', split: 'Valid' },
    { path: 'test/dog/sub/4.jpg', label: 'dog', split: 'test' },
    { path: 'train/cat/1.jpg', label: 'cat', split: 'train' },
    { path: 'train/dog/2.jpg', label: 'dog', split: 'train' },
  ]);
  assert.deepEqual(codes(ds.problems), ['empty-class', 'unlabeled-image']);
  assert.equal(ds.problems.find((p) => p.code === 'empty-class')!.file, 'test/bird');
});

test('split level: not used when only some top-level folders are split names (reported)', async () => {
  const root = await tree(['train/1.jpg', 'cat/2.jpg']);
  const ds = await readDataset(root);
  assert.equal(ds.format, 'class-folders');
  assert.deepEqual(ds.classes, ['cat', 'train']);
  assert.ok(ds.samples.every((s) => s.split === undefined));
  assert.deepEqual(codes(ds.problems), ['mixed-split-folders']);
});

test('symlink loops do not hang; linked folders are read once; links outside the root are not followed (one problem each)', async () => {
  const outside = await tree(['x.jpg', 'inner/y.jpg']);
  const root = await tree(['cat/a.jpg', 'dog/b.jpg']);
  await symlink(root, path.join(root, 'cat', 'loop-to-root'));
  await symlink('.', path.join(root, 'dog', 'self'));
  await symlink('../cat', path.join(root, 'dog', 'to-cat'));
  await symlink(outside, path.join(root, 'dog', 'outside'));
  await symlink(path.join(root, 'dog'), path.join(root, 'alias'));
  await symlink(path.join(root, 'nowhere'), path.join(root, 'cat', 'broken.jpg'));
  await symlink(path.join(outside, 'x.jpg'), path.join(root, 'cat', 'linked.jpg'));
  const ds = await readDataset(root);
  assert.deepEqual(ds.classes, ['cat', 'dog'], 'alias -> dog is a second path to a folder already read');
  assert.deepEqual(ds.samples, [
    { path: 'cat/a.jpg', label: 'cat' },
    { path: 'dog/b.jpg', label: 'dog' },
  ]);
  assert.deepEqual(codes(ds.problems), [
    'broken-link', 'link-outside-root', 'link-outside-root', 'symlink-skipped', 'symlink-skipped', 'symlink-skipped', 'symlink-skipped',
  ]);
  assert.deepEqual(
    ds.problems.filter((p) => p.code === 'link-outside-root').map((p) => p.path).sort(),
    ['cat/linked.jpg', 'dog/outside'],
  );
  assert.deepEqual(
    ds.problems.filter((p) => p.code === 'symlink-skipped').map((p) => p.path).sort(),
    ['alias', 'cat/loop-to-root', 'dog/self', 'dog/to-cat'],
  );
});

test('label file: auto-detected in the root; file order kept; every bad line is a problem naming file and line', async () => {
  const csv = [
    'image,label,split',
    'img/3.jpg,dog,train',
    '"img/1.jpg","cat',
    'with newline",val',
    'img/missing.jpg,cat,train',
    '/etc/passwd.jpg,cat,train',
    'C:\\data\\x.jpg,cat,train',
    '../outside.jpg,cat,train',
    'img/../../escape.jpg,cat,train',
    'https://example.com/a.jpg,cat,train',
    'img/3.jpg,dog,train',
    './img/3.jpg,cat,train',
    'img\\2.png,cat,test',
    'notes.txt,cat,train',
    'img,cat,train',
  ].join('\n');
  const root = await tree({ 'labels.csv': csv, 'img/1.jpg': '', 'img/2.png': '', 'img/3.jpg': '', 'notes.txt': '', 'cat/zzz.jpg': '' });
  const before = await snapshot(root);
  const ds = await readDataset(root);
  assert.deepEqual(await snapshot(root), before);
  assert.equal(ds.format, 'label-file');
  assert.equal(ds.labelFile, path.join(root, 'labels.csv'));
  // A line break inside the label column is not plausible (a stray quote): lines 3 and 4 are problems.
  assert.deepEqual(ds.classes, ['cat', 'dog']);
  assert.deepEqual(ds.samples, [
    { path: 'img/3.jpg', label: 'dog', split: 'train', source: { file: 'labels.csv', line: 2 } },
    { path: 'img/2.png', label: 'cat', split: 'test', source: { file: 'labels.csv', line: 13 } },
  ]);
  assert.deepEqual(
    ds.problems.map((p) => [p.line, p.code]),
    [
      [3, 'label-file-bad-line'],
      [4, 'label-file-bad-line'],
      [5, 'image-missing'],
      [6, 'path-refused'],
      [7, 'path-refused'],
      [8, 'path-refused'],
      [9, 'path-refused'],
      [10, 'path-refused'],
      [11, 'duplicate-line'],
      [12, 'conflicting-label'],
      [14, 'not-an-image'],
      [15, 'not-an-image'],
    ],
  );
  assert.ok(ds.problems.every((p) => p.file === 'labels.csv'));
  assert.match(ds.problems.find((p) => p.line === 12)!.message, /line 2/);
});

test('label file: readDataset(file) uses its folder as the root; JSONL paths are relative to the label file folder', async () => {
  const root = await tree({
    'meta/metadata.jsonl': '{"file_name": "../images/a.jpg", "label": 1}\n{"file_name": "b.jpg", "label": 0}\n',
    'images/a.jpg': '',
    'meta/b.jpg': '',
  });
  const ds = await readDataset(path.join(root, 'meta', 'metadata.jsonl'));
  assert.equal(ds.root, path.join(root, 'meta'));
  assert.deepEqual(ds.samples, [{ path: 'b.jpg', label: '0', source: { file: 'metadata.jsonl', line: 2 } }]);
  assert.deepEqual(ds.problems.map((p) => [p.code, p.line]), [['path-refused', 1]]);

  const ds2 = await readDataset(root, { labelFile: 'meta/metadata.jsonl' });
  assert.equal(ds2.root, root);
  assert.deepEqual(ds2.classes, ['0', '1']);
  assert.deepEqual(ds2.samples, [
    { path: 'images/a.jpg', label: '1', source: { file: 'meta/metadata.jsonl', line: 1 } },
    { path: 'meta/b.jpg', label: '0', source: { file: 'meta/metadata.jsonl', line: 2 } },
  ]);
});

test('label file outside the root: paths are relative to the root; columns can be named', async () => {
  const elsewhere = await tree({ 'my.tsv': 'pic\tkind\tset\ncat/a.jpg\tcat\tval\n' });
  const root = await tree(['cat/a.jpg']);
  const ds = await readDataset(root, { labelFile: path.join(elsewhere, 'my.tsv'), imageColumn: 'pic', labelColumn: 'kind', splitColumn: 'set' });
  assert.deepEqual(ds.samples, [{ path: 'cat/a.jpg', label: 'cat', split: 'val', source: { file: path.join(elsewhere, 'my.tsv'), line: 2 } }]);
});

test('several label files in the root are ambiguous; bad targets are ClipLensErrors naming the file', async () => {
  const root = await tree({ 'labels.csv': 'image,label\n', 'Metadata.jsonl': '', 'cat/a.jpg': '' });
  await assert.rejects(readDataset(root), (e: unknown) => e instanceof ClipLensError && e.code === 'label-file-ambiguous' && e.file === root);
  await assert.rejects(readDataset(path.join(root, 'nope')), (e: unknown) => e instanceof ClipLensError && e.code === 'dataset-not-found' && e.file === path.join(root, 'nope'));
  await assert.rejects(readDataset(path.join(root, 'cat', 'a.jpg')), (e: unknown) => e instanceof ClipLensError && e.code === 'dataset-unsupported');
  await assert.rejects(readDataset(root, { labelFile: 'missing.csv' }), (e: unknown) => e instanceof ClipLensError && e.code === 'label-file-not-found');
  const headerOnly = await tree({ 'annotations.tsv': 'image\tlabel\n' });
  await assert.rejects(readDataset(headerOnly), (e: unknown) => e instanceof ClipLensError && e.code === 'dataset-empty' && e.file === path.join(headerOnly, 'annotations.tsv'));
  const empty = await tree(['README.md', 'cat/']);
  await assert.rejects(readDataset(empty), (e: unknown) => e instanceof ClipLensError && e.code === 'dataset-empty' && e.file === empty);
});

test('an aborted signal stops the read', async () => {
  const root = await tree(['cat/a.jpg']);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(readDataset(root, { signal: ac.signal }), CancelledError);
});

test('resolveEntryPath normalises and refuses escapes', () => {
  assert.deepEqual(resolveEntryPath('', './a//b.jpg'), { rel: 'a/b.jpg' });
  assert.deepEqual(resolveEntryPath('meta', '../img/a.jpg'), { rel: 'img/a.jpg' });
  assert.deepEqual(resolveEntryPath('meta', 'sub\\a.jpg'), { rel: 'meta/sub/a.jpg' });
  assert.ok('refused' in resolveEntryPath('meta', '../../a.jpg'));
  assert.ok('refused' in resolveEntryPath('', '..'));
  assert.ok('refused' in resolveEntryPath('', '\\\\server\\share\\a.jpg'));
  assert.ok('refused' in resolveEntryPath('', 'file:///a.jpg'));
});

test('many files: 5,000 images in 50 classes are all read, in order', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'clip-lens-many-'));
  try {
    for (let c = 0; c < 50; c++) {
      const dir = path.join(root, `c${String(c).padStart(2, '0')}`);
      await mkdir(dir);
      await Promise.all(Array.from({ length: 100 }, (_, i) => writeFile(path.join(dir, `${String(i).padStart(3, '0')}.jpg`), '')));
    }
    const ds = await readDataset(root);
    assert.equal(ds.samples.length, 5000);
    assert.equal(ds.classes.length, 50);
    assert.equal(ds.samples[0]!.path, 'c00/000.jpg');
    assert.equal(ds.samples[4999]!.path, 'c49/099.jpg');
    for (let i = 1; i < ds.samples.length; i++) assert.ok(compareCodePoints(ds.samples[i - 1]!.path, ds.samples[i]!.path) < 0);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
