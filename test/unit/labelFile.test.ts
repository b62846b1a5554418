import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipLensError } from '../../src/core/errors';
import { delimiterOf, detectColumn, findColumn, IMAGE_COLUMN_NAMES, LABEL_COLUMN_NAMES, parseDelimited, parseLabelFile, readDelimitedRecord } from '../../src/core/labelFile';
import { labelFileKind } from '../../src/core/datasetFormat';

test('parseDelimited: RFC 4180 quotes, escaped quotes and line breaks inside quotes keep later line numbers right', () => {
  const text = ['a,b', '"x, y","he said ""hi"""', '"multi', 'line', 'value",z', '', 'last,row'].join('\n');
  const { records, problems } = parseDelimited(text, ',');
  assert.deepEqual(problems, []);
  assert.deepEqual(records, [
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['x, y', 'he said "hi"'] },
    { line: 3, fields: ['multi\nline\nvalue', 'z'] },
    { line: 7, fields: ['last', 'row'] },
  ]);
});

test('parseDelimited: BOM, CRLF, CRLF inside quotes, lone CR, empty fields and a missing final newline', () => {
  const text = '\uFEFFa,b\r\n"p\r\nq",\r\n,\rend,1';
  const { records } = parseDelimited(text, ',');
  assert.deepEqual(records, [
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['p\r\nq', ''] },
    { line: 4, fields: ['', ''] },
    { line: 5, fields: ['end', '1'] },
  ]);
});

test('parseDelimited: text after a closing quote is appended, a quote inside an unquoted field is literal', () => {
  const { records } = parseDelimited('"a"b,c"d\n  "sp",x', ',');
  assert.deepEqual(records, [
    { line: 1, fields: ['ab', 'c"d'] },
    { line: 2, fields: ['sp', 'x'] },
  ]);
});

test('parseDelimited: an unterminated quote is a problem on the line where it opened; the next lines are still read', () => {
  const { records, problems } = parseDelimited('a,b\nc,d\n"e,f\ng,h\n', ',');
  assert.deepEqual(problems.map((p) => p.line), [3]);
  assert.match(problems[0]!.message, /unbalanced quote/);
  assert.deepEqual(records.map((r) => r.line), [1, 2, 4]);
});

test('readDelimitedRecord: field spans cover the raw token (quotes included, blanks excluded) and next skips CRLF', () => {
  const text = '  a.jpg , "x, ""y""" ,z\r\nnext';
  const rec = readDelimitedRecord(text, 0, ',');
  assert.ok(!('unterminatedQuoteAt' in rec));
  assert.deepEqual(
    rec.fields.map((f) => ({ token: text.slice(f.start, f.end), value: f.value, quoted: f.quoted })),
    [
      { token: 'a.jpg', value: '  a.jpg ', quoted: false },
      { token: '"x, ""y"""', value: 'x, "y" ', quoted: true },
      { token: 'z', value: 'z', quoted: false },
    ],
  );
  assert.equal(text.slice(rec.next), 'next');
  assert.deepEqual(readDelimitedRecord('a,"open\nmore', 0, ','), { unterminatedQuoteAt: 2 });
  // An empty field at the end of a line is an empty token where the line ends.
  const empty = readDelimitedRecord('a,\n', 0, ',');
  assert.ok(!('unterminatedQuoteAt' in empty));
  assert.deepEqual(empty.fields.map((f) => [f.start, f.end, f.value]), [[0, 1, 'a'], [2, 2, '']]);
});

test("delimiterOf and findColumn: the reader's sniffing and column choice", () => {
  assert.equal(delimiterOf('a;b\n1,2', 'csv'), ';');
  assert.equal(delimiterOf('a\tb', 'csv'), '\t');
  assert.equal(delimiterOf('a,b;c', 'csv'), ',');
  assert.equal(delimiterOf('a,b', 'tsv'), '\t');
  assert.equal(findColumn(['File', 'Label'], 'file', IMAGE_COLUMN_NAMES), 'File');
  assert.equal(findColumn(['file_name', 'label'], undefined, IMAGE_COLUMN_NAMES), 'file_name');
  assert.equal(findColumn(['a', 'b'], 'c', IMAGE_COLUMN_NAMES), undefined);
});

test('labelFileKind by extension, case-insensitive', () => {
  assert.equal(labelFileKind('x/LABELS.CSV'), 'csv');
  assert.equal(labelFileKind('a.tsv'), 'tsv');
  assert.equal(labelFileKind('metadata.jsonl'), 'jsonl');
  assert.equal(labelFileKind('a.ndjson'), 'jsonl');
  assert.equal(labelFileKind('a.json'), undefined);
  assert.equal(labelFileKind('csv'), undefined);
});

test('detectColumn ignores case, spaces, _ and -, and prefers earlier candidates', () => {
  assert.equal(detectColumn(['ID', 'File_Name', 'CLASS'], IMAGE_COLUMN_NAMES), 'File_Name');
  assert.equal(detectColumn(['ID', 'File_Name', 'CLASS'], LABEL_COLUMN_NAMES), 'CLASS');
  assert.equal(detectColumn(['Image Path', 'path'], IMAGE_COLUMN_NAMES), 'Image Path');
  assert.equal(detectColumn(['category', 'label'], LABEL_COLUMN_NAMES), 'label');
  assert.equal(detectColumn(['y'], LABEL_COLUMN_NAMES), 'y');
  assert.equal(detectColumn(['foo', 'bar'], LABEL_COLUMN_NAMES), undefined);
});

test('CSV: columns detected, split column read, values trimmed, bad lines reported with their line', () => {
  const text = [
    'id,Filepath,Category,Subset',
    '1,cat/a.jpg, cat ,train',
    '2,dog/b.jpg,dog', // too few fields
    '3,"dog/c,1.jpg",dog,',
    '4,,dog,val', // empty image
    '5,dog/d.jpg,,val', // empty label
    '6,"dog/e.jpg","big\ndog",test', // a line break in the label column: not plausible, both lines are problems
    '7,dog/f.jpg,dog,val',
    '8,dog/g.jpg,dog,"multi\nline split"', // the split column cannot span lines either
    '9,dog/h.jpg,dog,val',
  ].join('\r\n');
  const r = parseLabelFile(text, 'csv', 'labels.csv');
  assert.deepEqual(r.columns, { image: 'Filepath', label: 'Category', split: 'Subset' });
  assert.deepEqual(r.entries, [
    { line: 2, image: 'cat/a.jpg', label: 'cat', split: 'train' },
    { line: 4, image: 'dog/c,1.jpg', label: 'dog' },
    { line: 9, image: 'dog/f.jpg', label: 'dog', split: 'val' },
    { line: 12, image: 'dog/h.jpg', label: 'dog', split: 'val' },
  ]);
  assert.deepEqual(
    r.problems.map((p) => [p.code, p.file, p.line]),
    [
      ['label-file-bad-line', 'labels.csv', 3],
      ['label-file-missing-field', 'labels.csv', 5],
      ['label-file-missing-field', 'labels.csv', 6],
      ['label-file-bad-line', 'labels.csv', 7],
      ['label-file-bad-line', 'labels.csv', 8],
      ['label-file-bad-line', 'labels.csv', 10],
      ['label-file-bad-line', 'labels.csv', 11],
    ],
  );
  assert.match(r.problems[0]!.message, /expected 4 fields .* found 3/);
});

test('CSV: explicit column options win over detection and match case-insensitively', () => {
  const text = 'image,label,species\na.jpg,x,tabby\n';
  const r = parseLabelFile(text, 'csv', 'l.csv', { labelColumn: 'SPECIES' });
  assert.deepEqual(r.entries, [{ line: 2, image: 'a.jpg', label: 'tabby' }]);
  assert.equal(r.columns.label, 'species');
});

test('CSV: a missing column is a ClipLensError naming the file and header line', () => {
  assert.throws(
    () => parseLabelFile('\n\nname,kind\na.jpg,cat\n', 'csv', 'sub/l.csv'),
    (e: unknown) => e instanceof ClipLensError && e.code === 'label-file-columns' && e.file === 'sub/l.csv' && e.line === 3 && /no image column/.test(e.message),
  );
  assert.throws(
    () => parseLabelFile('image,label\n', 'csv', 'l.csv', { splitColumn: 'fold' }),
    (e: unknown) => e instanceof ClipLensError && e.line === 1 && /splitColumn "fold"/.test(e.message),
  );
});

test('CSV: a header-less file is refused with a hint; an empty file is refused', () => {
  assert.throws(
    () => parseLabelFile('cat/a.jpg,cat\n', 'csv', 'l.csv'),
    (e: unknown) => e instanceof ClipLensError && e.line === 1 && /looks like data/.test(e.message),
  );
  assert.throws(() => parseLabelFile('\uFEFF\r\n', 'csv', 'l.csv'), (e: unknown) => e instanceof ClipLensError && e.code === 'label-file-empty');
});

test('CSV: semicolon- and tab-separated .csv files are sniffed from the header; TSV uses tabs', () => {
  assert.deepEqual(parseLabelFile('file;label\na.jpg;cat\n', 'csv', 'l.csv').entries, [{ line: 2, image: 'a.jpg', label: 'cat' }]);
  assert.deepEqual(parseLabelFile('file\tlabel\na.jpg\tcat\n', 'csv', 'l.csv').entries, [{ line: 2, image: 'a.jpg', label: 'cat' }]);
  assert.deepEqual(parseLabelFile('file\tlabel\na,b.jpg\tcat\n', 'tsv', 'l.tsv').entries, [{ line: 2, image: 'a,b.jpg', label: 'cat' }]);
});

test('CSV: an unterminated quote is a problem at the line where it opened, and the lines after it are read', () => {
  const r = parseLabelFile('image,label\na.jpg,cat\n"b.jpg,dog\nc.jpg,dog\n', 'csv', 'l.csv');
  assert.deepEqual(r.entries, [{ line: 2, image: 'a.jpg', label: 'cat' }, { line: 4, image: 'c.jpg', label: 'dog' }]);
  assert.deepEqual(r.problems.map((p) => [p.code, p.line]), [['label-file-bad-line', 3]]);
});

test('CSV: a quoted field may span lines in another column (a caption), not when a line inside it reads as a row', () => {
  const ok = parseLabelFile('image,label,caption\na.jpg,cat,"two\nlines"\nb.jpg,dog,x\n', 'csv', 'l.csv');
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.entries.map((e) => e.line), [2, 4]);
  const stray = parseLabelFile('image,label,caption\na.jpg,cat,"oops\nb.jpg,dog,fine\nc.jpg,cat,"x"\nd.jpg,dog,y\n', 'csv', 'l.csv');
  assert.deepEqual(stray.entries.map((e) => [e.line, e.image]), [[3, 'b.jpg'], [4, 'c.jpg'], [5, 'd.jpg']]);
  assert.deepEqual(stray.problems.map((p) => p.line), [2]);
  assert.match(stray.problems[0]!.message, /closes only on line 4 /);
});

test('JSONL: HF metadata.jsonl keys, numeric labels, bad lines reported with their line, BOM and CRLF', () => {
  const text = [
    '\uFEFF{"file_name": "train/a.png", "label": "cat", "split": "train"}',
    '',
    '{"file_name": "b.png", "label": 3}',
    '{not json}',
    '[1,2]',
    '{"file_name": "c.png"}',
    '{"file_name": "d.png", "label": ["a", "b"]}',
    '{"file_name": "e.png", "label": "dog", "split": null}',
  ].join('\r\n');
  const r = parseLabelFile(text, 'jsonl', 'metadata.jsonl');
  assert.deepEqual(r.columns, { image: 'file_name', label: 'label', split: 'split' });
  assert.deepEqual(r.entries, [
    { line: 1, image: 'train/a.png', label: 'cat', split: 'train' },
    { line: 3, image: 'b.png', label: '3' },
    { line: 8, image: 'e.png', label: 'dog' },
  ]);
  assert.deepEqual(
    r.problems.map((p) => [p.code, p.line]),
    [
      ['label-file-bad-line', 4],
      ['label-file-bad-line', 5],
      ['label-file-missing-field', 6],
      ['label-file-bad-line', 7],
    ],
  );
  assert.ok(r.problems.every((p) => p.file === 'metadata.jsonl'));
});

test('JSONL: other key names are detected; explicit keys are honoured; missing keys name the line', () => {
  const r = parseLabelFile('{"path": "x.jpg", "target": "a", "cls": "b"}\n', 'jsonl', 'm.jsonl');
  assert.deepEqual(r.entries, [{ line: 1, image: 'x.jpg', label: 'a' }]);
  const r2 = parseLabelFile('{"path": "x.jpg", "target": "a", "cls": "b"}\n', 'jsonl', 'm.jsonl', { labelColumn: 'cls' });
  assert.deepEqual(r2.entries, [{ line: 1, image: 'x.jpg', label: 'b' }]);
  assert.throws(
    () => parseLabelFile('\n{"file_name": "x.jpg"}\n', 'jsonl', 'm.jsonl'),
    (e: unknown) => e instanceof ClipLensError && e.line === 2 && /no label column/.test(e.message) && /labelColumn/.test(e.message),
  );
});
