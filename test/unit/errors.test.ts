import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipLensError } from '../../src/core/errors';

test('ClipLensError names the file and line', () => {
  const e = new ClipLensError('bad-line', 'expected 2 fields, found 1', { file: 'labels.csv', line: 7 });
  assert.equal(e.message, 'labels.csv:7: expected 2 fields, found 1');
  assert.equal(e.code, 'bad-line');
  assert.equal(new ClipLensError('x', 'm', { file: 'a.json' }).message, 'a.json: m');
});
