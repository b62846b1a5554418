import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { padTextBatch, planTextBatches, usedLength } from '../../src/core/textBatches';
import { CONTEXT_LENGTH, ClipTokenizer, type EncodedText } from '../../src/core/tokenizer';

const END = 9;
/** A prompt of `n` tokens (start, n - 2 BPE ids, end), padded to 77 with the end id like the tokenizer. */
function encoded(n: number, seed: number): EncodedText {
  const ids = [8, ...Array.from({ length: n - 2 }, (_, i) => 10 + ((seed * 7 + i) % 50)), END];
  const attentionMask = [...new Array(n).fill(1), ...new Array(CONTEXT_LENGTH - n).fill(0)];
  while (ids.length < CONTEXT_LENGTH) ids.push(END);
  return { ids, attentionMask, truncated: false };
}

const row = (a: BigInt64Array, j: number, len: number) => Array.from(a.subarray(j * len, (j + 1) * len), Number);

test('dynamic axis: rows sorted by length (stable), batches cut to their longest row, every row once', () => {
  const lengths = [12, 5, 30, 5, 7, 12, 77, 3, 9];
  const enc = lengths.map((n, i) => encoded(n, i));
  const batches = planTextBatches(enc, 4, 'dynamic');
  assert.deepEqual(batches.map((b) => b.rows), [[7, 1, 3, 4], [8, 0, 5, 2], [6]]);
  assert.deepEqual(batches.map((b) => b.length), [7, 30, 77]);
  for (const b of batches) {
    assert.equal(b.ids.length, b.rows.length * b.length);
    assert.equal(b.attentionMask.length, b.rows.length * b.length);
    b.rows.forEach((r, j) => {
      assert.deepEqual(row(b.ids, j, b.length), enc[r]!.ids.slice(0, b.length), `ids of row ${r}`);
      assert.deepEqual(row(b.attentionMask, j, b.length), enc[r]!.attentionMask.slice(0, b.length), `mask of row ${r}`);
      // nothing a prompt uses is cut: its end token is inside the batch
      assert.ok(usedLength(enc[r]!) <= b.length);
      assert.equal(row(b.ids, j, b.length)[usedLength(enc[r]!) - 1], END);
    });
  }
  assert.deepEqual(batches.flatMap((b) => b.rows).sort((a, b) => a - b), lengths.map((_, i) => i));
});

test('fixed axis: input order, 77 tokens, as before', () => {
  const enc = [12, 5, 30].map((n, i) => encoded(n, i));
  const batches = planTextBatches(enc, 2, 77);
  assert.deepEqual(batches.map((b) => b.rows), [[0, 1], [2]]);
  assert.deepEqual(batches.map((b) => b.length), [77, 77]);
  assert.deepEqual(row(batches[0]!.ids, 1, 77), enc[1]!.ids);
  assert.deepEqual(row(batches[1]!.attentionMask, 0, 77), enc[2]!.attentionMask);
});

test('empty input and bad batch sizes', () => {
  assert.deepEqual(planTextBatches([], 64, 'dynamic'), []);
  assert.throws(() => planTextBatches([encoded(3, 0)], 0, 'dynamic'), RangeError);
});

test('padTextBatch restores the 77-token rows the tokenizer made', () => {
  const enc = [4, 11, 6].map((n, i) => encoded(n, i));
  const [b] = planTextBatches(enc, 8, 'dynamic');
  assert.equal(b!.length, 11);
  const full = padTextBatch(b!, CONTEXT_LENGTH, END);
  assert.deepEqual(full.rows, b!.rows);
  full.rows.forEach((r, j) => {
    assert.deepEqual(row(full.ids, j, CONTEXT_LENGTH), enc[r]!.ids);
    assert.deepEqual(row(full.attentionMask, j, CONTEXT_LENGTH), enc[r]!.attentionMask);
  });
  assert.throws(() => padTextBatch(b!, 5, END), RangeError);
});

test('a prompt over 77 tokens is truncated as before: its batch runs at 77 and it ends with the end token', async () => {
  const tok = await ClipTokenizer.fromModelDir(join(__dirname, '..', 'fixtures', 'tiny-clip'));
  const long = Array(30).fill('a photo of a blue square').join(' ');
  const texts = ['red circle', long, 'a photo of a green star.'];
  const enc = texts.map((t) => tok.encode(t));
  assert.ok(enc[1]!.truncated);
  const batches = planTextBatches(enc, 2, 'dynamic');
  const withLong = batches.find((b) => b.rows.includes(1))!;
  assert.equal(withLong.length, CONTEXT_LENGTH);
  const j = withLong.rows.indexOf(1);
  const ids = row(withLong.ids, j, CONTEXT_LENGTH);
  assert.deepEqual(ids, enc[1]!.ids);
  assert.equal(ids[CONTEXT_LENGTH - 1], tok.endId);
  // the short prompts share the other batch, cut to the longer of them
  const short = batches.find((b) => !b.rows.includes(1))!;
  assert.equal(short.length, Math.max(usedLength(enc[0]!), usedLength(enc[2]!)));
});
