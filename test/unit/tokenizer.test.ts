import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipLensError } from '../../src/core/errors';
import { CONTEXT_LENGTH, ClipTokenizer, type EncodedText } from '../../src/core/tokenizer';

const FIXTURES = join(__dirname, '../fixtures/clip-reference');
const TOKENIZER_DIR = join(FIXTURES, 'tokenizer');
const TOKENIZER_JSON = join(TOKENIZER_DIR, 'tokenizer.json');
const VOCAB_JSON = join(TOKENIZER_DIR, 'vocab.json');
const MERGES_TXT = join(TOKENIZER_DIR, 'merges.txt');

interface Reference {
  text: string;
  ids: number[];
  truncated?: boolean;
  ftfy_sensitive?: boolean;
  html_sensitive?: boolean;
}
const readJson = (file: string): any => JSON.parse(readFileSync(file, 'utf8'));
/** OpenAI's clip.tokenize answers (padded with 0). */
const TOKENS: Reference[] = readJson(join(FIXTURES, 'tokens.json')).strings;
/** The ids listed with the tiny random CLIP's text embeddings (also clip.tokenize, padded with 0). */
const TINY_CLIP: Reference[] = readJson(join(TOKENIZER_DIR, 'tiny-clip-text-ids.json')).strings;
/** OpenAI SimpleTokenizer.encode answers (no start/end) for strings that stress the text cleaning. */
const FTFY_CASES: { text: string; ids: number[] }[] = readJson(join(TOKENIZER_DIR, 'ftfy-cases.json')).cases;

let cached: Promise<ClipTokenizer> | undefined;
const tokenizer = (): Promise<ClipTokenizer> => (cached ??= ClipTokenizer.fromModelDir(TOKENIZER_DIR));

/**
 * Our ids must equal the reference up to and including its end token (the last 49407 before the zero padding;
 * a text may contain '<|endoftext|>' itself), then be padded with the end id; the mask covers exactly that prefix.
 */
function assertMatchesReference(got: EncodedText, ref: Reference, endId: number): void {
  const used = ref.ids.lastIndexOf(endId) + 1;
  assert.ok(used >= 2, `reference for ${JSON.stringify(ref.text)} has an end token`);
  assert.deepEqual(ref.ids.slice(used), new Array(CONTEXT_LENGTH - used).fill(0), 'reference pads with 0');
  assert.equal(got.ids.length, CONTEXT_LENGTH);
  assert.deepEqual(got.ids.slice(0, used), ref.ids.slice(0, used), `ids of ${JSON.stringify(ref.text)}`);
  assert.deepEqual(got.ids.slice(used), new Array(CONTEXT_LENGTH - used).fill(endId), 'padded with the end id');
  assert.deepEqual(got.attentionMask, [...new Array(used).fill(1), ...new Array(CONTEXT_LENGTH - used).fill(0)]);
  if (ref.truncated !== undefined) assert.equal(got.truncated, ref.truncated);
}

test("CLIP's special ids and vocabulary size come from the tokenizer file", async () => {
  const tok = await tokenizer();
  assert.equal(tok.startId, 49406);
  assert.equal(tok.endId, 49407);
  assert.equal(tok.vocabSize, 49408);
});

test('every string of OpenAI reference tokens.json gets the same ids (ftfy- and html-sensitive ones too)', async () => {
  const tok = await tokenizer();
  assert.equal(TOKENS.length, 65);
  assert.ok(TOKENS.some((r) => r.ftfy_sensitive));
  for (const ref of TOKENS) assertMatchesReference(tok.encode(ref.text), ref, tok.endId);
});

test("the tiny random CLIP's listed ids (30 strings, incl. truncated ones) are reproduced", async () => {
  const tok = await tokenizer();
  assert.equal(TINY_CLIP.length, 30);
  for (const ref of TINY_CLIP) assertMatchesReference(tok.encode(ref.text), ref, tok.endId);
  assert.ok(TINY_CLIP.some((ref) => tok.encode(ref.text).truncated), 'some of them are over 77 tokens');
});

test("OpenAI's BPE ids for ~1000 strings that exercise ftfy, html.unescape, special tokens and the regex", async () => {
  const tok = await tokenizer();
  const wrong = FTFY_CASES.filter((c) => JSON.stringify(tok.tokenize(c.text)) !== JSON.stringify(c.ids));
  assert.deepEqual(
    wrong.slice(0, 3).map((c) => ({ text: c.text, want: c.ids, got: tok.tokenize(c.text) })),
    [],
    `${wrong.length} of ${FTFY_CASES.length} differ`,
  );
});

test("pre-tokenization follows OpenAI's regex, not the HF pipeline", async () => {
  const tok = await tokenizer();
  const ids = (text: string) => FTFY_CASES.find((c) => c.text === text)?.ids;
  // A special token in the text is only special where OpenAI's regex starts a piece at it.
  for (const text of ['x<|endoftext|>y', '!<|endoftext|>', "it'ſ", '<|ſtartoftext|>', 'a\u0345b']) {
    const want = ids(text);
    assert.ok(want, `fixture has ${JSON.stringify(text)}`);
    assert.deepEqual(tok.tokenize(text), want, JSON.stringify(text));
  }
  assert.ok(tok.tokenize('x<|endoftext|>y').includes(tok.endId));
  assert.ok(!tok.tokenize('!<|endoftext|>').includes(tok.endId));
});

test('long text: 77 ids, the first 75 BPE tokens, end token last, no padding', async () => {
  const tok = await tokenizer();
  const words = Array.from({ length: 120 }, (_, i) => `w${i}`).join(' ');
  const all = tok.tokenize(words);
  assert.ok(all.length > 200);
  const e = tok.encode(words);
  assert.equal(e.truncated, true);
  assert.equal(e.ids.length, CONTEXT_LENGTH);
  assert.deepEqual(e.ids, [tok.startId, ...all.slice(0, CONTEXT_LENGTH - 2), tok.endId]);
  assert.deepEqual(e.attentionMask, new Array(CONTEXT_LENGTH).fill(1));
  // Exactly 75 BPE tokens still fit; 76 do not.
  const a75 = tok.encode(Array(75).fill('a').join(' '));
  assert.equal(a75.truncated, false);
  assert.equal(a75.ids[CONTEXT_LENGTH - 1], tok.endId);
  assert.equal(a75.ids[CONTEXT_LENGTH - 2], 320);
  const a76 = tok.encode(Array(76).fill('a').join(' '));
  assert.equal(a76.truncated, true);
  assert.deepEqual(a76.ids, a75.ids);
});

test('encodeBatch gives row-major int64 ids and masks equal to encode()', async () => {
  const tok = await tokenizer();
  const texts = ['a photo of a cat.', '', 'cafÃ© &amp; “bar”', Array(100).fill('dog').join(' ')];
  const batch = tok.encodeBatch(texts);
  assert.ok(batch.ids instanceof BigInt64Array && batch.attentionMask instanceof BigInt64Array);
  assert.equal(batch.ids.length, texts.length * CONTEXT_LENGTH);
  assert.equal(batch.attentionMask.length, texts.length * CONTEXT_LENGTH);
  texts.forEach((text, row) => {
    const one = tok.encode(text);
    const slice = (a: BigInt64Array) => Array.from(a.subarray(row * CONTEXT_LENGTH, (row + 1) * CONTEXT_LENGTH), Number);
    assert.deepEqual(slice(batch.ids), one.ids);
    assert.deepEqual(slice(batch.attentionMask), one.attentionMask);
  });
  assert.deepEqual(batch.truncated, [false, false, false, true]);
  assert.equal(tok.encodeBatch([]).ids.length, 0);
});

test('vocab.json + merges.txt gives the same tokenizer as tokenizer.json', async () => {
  const fromJson = await tokenizer();
  const fromPair = await ClipTokenizer.fromFiles({ vocabJson: VOCAB_JSON, mergesTxt: MERGES_TXT });
  assert.deepEqual([fromPair.startId, fromPair.endId, fromPair.vocabSize], [49406, 49407, 49408]);
  for (const text of [...TOKENS, ...FTFY_CASES].map((c) => c.text)) {
    assert.deepEqual(fromPair.encode(text), fromJson.encode(text), JSON.stringify(text));
  }
  // fromModelDir falls back to the pair when there is no tokenizer.json.
  const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
  try {
    copyFileSync(VOCAB_JSON, join(dir, 'vocab.json'));
    copyFileSync(MERGES_TXT, join(dir, 'merges.txt'));
    const fromDir = await ClipTokenizer.fromModelDir(dir);
    assert.deepEqual(fromDir.encode('a photo of a cat.'), fromJson.encode('a photo of a cat.'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('special ids come from the file: a small vocabulary in the same format', async () => {
  // A few byte-level symbols, one merge, and the specials at ids of their own (not 49406/49407).
  const vocab: Record<string, number> = { h: 0, i: 1, 'i</w>': 2, a: 3, 'a</w>': 4, 'hi</w>': 5 };
  vocab['<|startoftext|>'] = 100;
  vocab['<|endoftext|>'] = 101;
  const json = {
    added_tokens: [
      { id: 100, content: '<|startoftext|>', special: true },
      { id: 101, content: '<|endoftext|>', special: true },
    ],
    model: { type: 'BPE', vocab, merges: ['h i</w>'], end_of_word_suffix: '</w>', unk_token: '<|endoftext|>' },
  };
  const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
  try {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    const tok = await ClipTokenizer.fromModelDir(dir);
    assert.deepEqual([tok.startId, tok.endId, tok.vocabSize], [100, 101, 102]);
    const e = tok.encode('Hi ha');
    // 'hi' merges; 'ha' has no merge: 'h' + 'a</w>'.
    assert.deepEqual(e.ids.slice(0, 6), [100, vocab['hi</w>'], vocab.h, vocab['a</w>'], 101, 101]);
    assert.equal(e.ids[CONTEXT_LENGTH - 1], 101);
    assert.equal(e.attentionMask.indexOf(0), 5);
    // A byte the vocabulary lacks becomes the unk token.
    assert.deepEqual(tok.tokenize('z'), [101]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs `load` and checks it rejects with a ClipLensError of `code` naming `file` (and `line` when given). */
async function assertClipLensError(
  load: () => Promise<unknown>,
  code: string,
  file: string,
  line?: number,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(load, (err: unknown) => {
    assert.ok(err instanceof ClipLensError, `ClipLensError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.file, file);
    assert.equal(err.line, line);
    assert.ok(err.message.startsWith(line === undefined ? `${file}: ` : `${file}:${line}: `), err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('missing files -> ClipLensError naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
  try {
    await assertClipLensError(
      () => ClipTokenizer.fromModelDir(dir),
      'tokenizer-missing-file',
      join(dir, 'tokenizer.json'),
      undefined,
      /vocab\.json and merges\.txt/,
    );
    writeFileSync(join(dir, 'vocab.json'), '{}');
    await assertClipLensError(
      () => ClipTokenizer.fromModelDir(dir),
      'tokenizer-missing-file',
      join(dir, 'tokenizer.json'),
      undefined,
      /no merges\.txt/,
    );
    await assertClipLensError(
      () => ClipTokenizer.fromFiles({ tokenizerJson: join(dir, 'nope.json') }),
      'tokenizer-missing-file',
      join(dir, 'nope.json'),
    );
    await assertClipLensError(
      () => ClipTokenizer.fromFiles({ vocabJson: join(dir, 'vocab.json'), mergesTxt: join(dir, 'merges.txt') }),
      'tokenizer-missing-file',
      join(dir, 'merges.txt'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed tokenizer.json -> ClipLensError naming the file (and line for bad JSON)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
  const file = join(dir, 'tokenizer.json');
  const load = () => ClipTokenizer.fromFiles({ tokenizerJson: file });
  const good = readJson(TOKENIZER_JSON);
  const variant = (edit: (j: any) => void): string => {
    const j = structuredClone(good);
    edit(j);
    return JSON.stringify(j);
  };
  try {
    writeFileSync(file, '{\n  "model": {\n    "vocab": {"a": 1,}\n  }\n}\n');
    await assertClipLensError(load, 'tokenizer-bad-file', file, 3, /not valid JSON/);
    writeFileSync(file, '{\n  "model": {\n');
    await assertClipLensError(load, 'tokenizer-bad-file', file, 3, /not valid JSON/);
    writeFileSync(file, '[1, 2]');
    await assertClipLensError(load, 'tokenizer-bad-file', file, undefined, /no "model"/);
    writeFileSync(file, variant((j) => (j.model.type = 'WordPiece')));
    await assertClipLensError(load, 'tokenizer-bad-file', file, undefined, /WordPiece/);
    writeFileSync(file, variant((j) => delete j.model.end_of_word_suffix));
    await assertClipLensError(load, 'tokenizer-bad-file', file, undefined, /end_of_word_suffix/);
    writeFileSync(file, variant((j) => (j.model.vocab.dog = 'seven')));
    await assertClipLensError(load, 'tokenizer-bad-file', file, undefined, /"dog" has id "seven"/);
    writeFileSync(file, variant((j) => (j.model.merges[5] = 'a b c')));
    await assertClipLensError(load, 'tokenizer-bad-file', file, undefined, /model\.merges\[5\]/);
    writeFileSync(file, variant((j) => (j.model.merges[7] = 'notatoken h')));
    await assertClipLensError(load, 'tokenizer-bad-file', file, undefined, /merges\[7\].*"notatoken".*not in the vocabulary/);
    writeFileSync(
      file,
      variant((j) => {
        j.added_tokens = [];
        delete j.model.vocab['<|startoftext|>'];
      }),
    );
    await assertClipLensError(load, 'tokenizer-bad-file', file, undefined, /<\|startoftext\|>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed vocab.json / merges.txt -> ClipLensError naming the file and the merges line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
  const vocabJson = join(dir, 'vocab.json');
  const mergesTxt = join(dir, 'merges.txt');
  const load = () => ClipTokenizer.fromFiles({ vocabJson, mergesTxt });
  const vocab = { h: 0, i: 1, 'i</w>': 2, 'hi</w>': 3, '<|startoftext|>': 4, '<|endoftext|>': 5 };
  try {
    writeFileSync(vocabJson, JSON.stringify(vocab));
    writeFileSync(mergesTxt, '#version: 0.2\nh i</w>\n');
    const tok = await load();
    assert.deepEqual(tok.encode('hi').ids.slice(0, 3), [4, 3, 5]);

    writeFileSync(mergesTxt, '#version: 0.2\nh i</w>\nh  i\n');
    await assertClipLensError(load, 'tokenizer-bad-file', mergesTxt, 3, /two tokens/);
    writeFileSync(mergesTxt, '#version: 0.2\nh x\n');
    await assertClipLensError(load, 'tokenizer-bad-file', mergesTxt, 2, /"x".*not in the vocabulary/);
    writeFileSync(mergesTxt, '#version: 0.2\n');
    await assertClipLensError(load, 'tokenizer-bad-file', mergesTxt, undefined, /no merges/);

    writeFileSync(mergesTxt, 'h i</w>\n');
    writeFileSync(vocabJson, '{"h": 0,\n "i": }');
    await assertClipLensError(load, 'tokenizer-bad-file', vocabJson, undefined, /not valid JSON/);
    writeFileSync(vocabJson, '["h", "i"]');
    await assertClipLensError(load, 'tokenizer-bad-file', vocabJson, undefined, /object of token -> id/);
    writeFileSync(vocabJson, JSON.stringify({ ...vocab, '<|endoftext|>': undefined }));
    await assertClipLensError(load, 'tokenizer-bad-file', vocabJson, undefined, /<\|endoftext\|>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
