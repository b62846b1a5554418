import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLabelFile } from '../../src/core/labelFile';
import type { LabelFileKind } from '../../src/core/datasetFormat';
import { applyEdits } from '../../src/core/textEdit';
import {
  changeLabelEdit,
  editorLineStarts,
  encodeCsvField,
  encodeJsonLabel,
  fieldsOnLine,
  LabelEditError,
  labelFileLayout,
  lineStarts,
  positionAt,
} from '../../src/extension/labelEdits';

/**
 * The property every label edit must have: the edited file, read by core's own reader, has exactly the same entries
 * except that the one on `line` now has `newLabel`; and the edit touched nothing outside that field.
 */
function checkChange(text: string, kind: LabelFileKind, line: number, expected: string, newLabel: string, options = {}): string {
  const before = parseLabelFile(text, kind, 'labels', options);
  const edit = changeLabelEdit(text, kind, line, expected, newLabel, options);
  const out = applyEdits(text, [edit]);
  const after = parseLabelFile(out, kind, 'labels', options);
  assert.deepEqual(after.problems, before.problems, 'no new problems');
  assert.equal(after.entries.length, before.entries.length);
  for (let i = 0; i < before.entries.length; i++) {
    const b = before.entries[i];
    const a = after.entries[i];
    assert.equal(a.line, b.line);
    assert.equal(a.image, b.image);
    assert.equal(a.split, b.split);
    assert.equal(a.label, b.line === line ? newLabel : b.label, `label on line ${b.line}`);
  }
  assert.equal(out.slice(0, edit.offset), text.slice(0, edit.offset));
  assert.equal(out.slice(edit.offset + edit.text.length), text.slice(edit.offset + edit.length));
  return out;
}

test('CSV: plain fields, the label column found by name wherever it is', () => {
  const text = 'label,file_name,split\ncat,a.jpg,train\ndog,b.jpg,val\n';
  assert.equal(checkChange(text, 'csv', 3, 'dog', 'cat'), 'label,file_name,split\ncat,a.jpg,train\ncat,b.jpg,val\n');
});

test('CSV: quoted fields keep their quotes, commas and quotes in labels are quoted and doubled', () => {
  const text = 'image,label\n"a.jpg","cat"\nb.jpg,dog\n';
  assert.equal(checkChange(text, 'csv', 2, 'cat', 'big dog'), 'image,label\n"a.jpg","big dog"\nb.jpg,dog\n');
  assert.equal(checkChange(text, 'csv', 3, 'dog', 'dog, "small"'), 'image,label\n"a.jpg","cat"\nb.jpg,"dog, ""small"""\n');
  // A line break in a label is refused: the reader would not read it back (docs/robustness.md).
  assert.throws(() => changeLabelEdit(text, 'csv', 3, 'dog', 'multi\nline'), LabelEditError);
});

test('CSV: a record spanning lines before the target keeps line numbers right; CRLF and lone CR', () => {
  const text = 'image,note,label\r\na.jpg,"two\r\nlines",cat\r\nb.jpg,x,dog\r\n';
  const out = checkChange(text, 'csv', 4, 'dog', 'fox');
  assert.ok(out.endsWith('b.jpg,x,fox\r\n'));
  checkChange(text, 'csv', 2, 'cat', 'fox');
  checkChange('image,label\ra.jpg,cat\rb.jpg,dog', 'csv', 3, 'dog', 'emu');
});

test('CSV: whitespace around unquoted values is kept; semicolon and tab delimiters are detected like the reader', () => {
  assert.equal(checkChange('image , label\na.jpg ,  cat  \n', 'csv', 2, 'cat', 'dog'), 'image , label\na.jpg ,  dog  \n');
  assert.equal(checkChange('image;label\na.jpg;cat\n', 'csv', 2, 'cat', 'a,b'), 'image;label\na.jpg;a,b\n');
  assert.equal(checkChange('image;label\na.jpg;cat\n', 'csv', 2, 'cat', 'a;b'), 'image;label\na.jpg;"a;b"\n');
  assert.equal(checkChange('image\tlabel\na.jpg\tcat\n', 'tsv', 2, 'cat', 'x y'), 'image\tlabel\na.jpg\tx y\n');
});

test('CSV: leading blank lines, explicit columns (case-insensitive), text after a closing quote', () => {
  checkChange('\n\npath,Kind,label\na.jpg,cat,unused\n', 'csv', 4, 'cat', 'dog', { imageColumn: 'path', labelColumn: 'kind' });
  checkChange('image,label\na.jpg,"c"at\n', 'csv', 2, 'cat', 'dog');
});

test('JSONL: string values are JSON-escaped, other keys and spacing untouched, the last duplicate key is the one changed', () => {
  const text = '{"file_name": "a.jpg", "label": "cat", "extra": {"label": "keep"}}\n{"file_name":"b.jpg","label":"dog","label":"cow"}\n';
  const out = checkChange(text, 'jsonl', 1, 'cat', 'say "hi"\\ \u2028 é');
  assert.equal(out.split('\n')[0], '{"file_name": "a.jpg", "label": "say \\"hi\\"\\\\ \u2028 é", "extra": {"label": "keep"}}');
  assert.equal(checkChange(text, 'jsonl', 2, 'cow', 'emu').split('\n')[1], '{"file_name":"b.jpg","label":"dog","label":"emu"}');
});

test('JSONL: numeric labels stay numbers when the new label is a number; CRLF lines; blank and broken lines before', () => {
  const text = '\r\nnot json\r\n{"image": "a.jpg", "label": 3}\r\n{"image": "b.jpg", "label": 4}\r\n';
  assert.equal(checkChange(text, 'jsonl', 3, '3', '7').split('\r\n')[2], '{"image": "a.jpg", "label": 7}');
  assert.equal(checkChange(text, 'jsonl', 4, '4', 'seven').split('\r\n')[3], '{"image": "b.jpg", "label": "seven"}');
  assert.equal(encodeJsonLabel('007', 'number'), '"007"');
  assert.equal(encodeJsonLabel('1e3', 'number'), '"1e3"');
  assert.equal(encodeJsonLabel('2.5', 'number'), '2.5');
  assert.equal(encodeJsonLabel('2', 'string'), '"2"');
});

test('a line whose label changed since the evaluation, or that holds no record, is refused with a reason', () => {
  const text = 'image,label\na.jpg,cat\nb.jpg\n';
  assert.throws(() => changeLabelEdit(text, 'csv', 2, 'dog', 'cow'), (e: unknown) => e instanceof LabelEditError && /now 'cat', not 'dog'/.test(e.message));
  assert.throws(() => changeLabelEdit(text, 'csv', 3, 'dog', 'cow'), /holds no label record/);
  assert.throws(() => changeLabelEdit(text, 'csv', 9, 'dog', 'cow'), /holds no label record/);
  assert.throws(() => changeLabelEdit('x,y\n1,2\n', 'csv', 2, '2', 'cow'), /cannot find the image and label columns/);
  assert.throws(() => changeLabelEdit(text, 'csv', 2, 'cat', ' cow'), /not a usable label/);
  assert.throws(() => changeLabelEdit('{"image":"a.jpg","label":"cat"}\n', 'jsonl', 1, 'cat', ''), /not a usable label/);
});

test('fieldsOnLine gives the image and label token ranges', () => {
  const text = 'image,label\n "a b.jpg" , cat \n';
  const layout = labelFileLayout(text, 'csv');
  assert.ok(layout);
  const f = fieldsOnLine(text, layout, 2);
  assert.ok(f);
  assert.equal(text.slice(f.image.start, f.image.end), '"a b.jpg"');
  assert.equal(f.image.value, 'a b.jpg');
  assert.equal(text.slice(f.label.start, f.label.end), 'cat');
  const j = '{"image":"x.png","label":"dog"}';
  const jl = labelFileLayout(j, 'jsonl');
  assert.ok(jl);
  const g = fieldsOnLine(j, jl, 1);
  assert.ok(g);
  assert.equal(j.slice(g.label.start, g.label.end), '"dog"');
  assert.equal(g.image.value, 'x.png');
});

test('line starts: CSV counts CR, LF and CRLF; JSONL only LF; positionAt maps offsets to 0-based editor positions', () => {
  const text = 'a\r\nb\rc\nd';
  assert.deepEqual(lineStarts(text, 'csv'), [0, 3, 5, 7]);
  assert.deepEqual(lineStarts(text, 'jsonl'), [0, 3, 7]);
  const starts = editorLineStarts(text);
  assert.deepEqual(positionAt(starts, 0), { line: 0, character: 0 });
  assert.deepEqual(positionAt(starts, 4), { line: 1, character: 1 });
  assert.deepEqual(positionAt(starts, 8), { line: 3, character: 1 });
});

test('encodeCsvField quotes only when needed (or when the field was quoted)', () => {
  assert.equal(encodeCsvField('dog', ',', false), 'dog');
  assert.equal(encodeCsvField('dog', ',', true), '"dog"');
  assert.equal(encodeCsvField('a,b', ',', false), '"a,b"');
  assert.equal(encodeCsvField('a,b', '\t', false), 'a,b');
  assert.equal(encodeCsvField('say "x"', ',', false), '"say ""x"""');
});
