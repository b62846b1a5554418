/**
 * CLIP's text tokenizer, giving the ids OpenAI's `clip.tokenize(text, truncate=True)` gives (except for padding,
 * see below), from a model folder in the Hugging Face layout.
 *
 * Pipeline, as OpenAI's `SimpleTokenizer.encode`:
 *  1. {@link cleanText} (ftfy `fix_text`, `html.unescape` twice, whitespace collapse and strip), then lower-case;
 *  2. pre-tokenize with OpenAI's regex `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|
 *     [^\s\p{L}\p{N}]+` (with its IGNORECASE effects: 'ſ' matches 's', U+0345 matches nothing and is dropped);
 *     a piece that is exactly `<|startoftext|>` / `<|endoftext|>` becomes that special id;
 *  3. each other piece: UTF-8 bytes -> GPT-2 byte-to-unicode characters -> byte-level BPE with the `</w>`
 *     end-of-word suffix, by the BPE model of `@huggingface/tokenizers` built from the file's vocab and merges;
 *  4. `[start] + ids + [end]`; over 77, keep the first 76 and end with the end id; pad with the end id.
 *
 * Why not the library's whole `Tokenizer` on tokenizer.json: it loads CLIP's file as is and matches OpenAI on
 * plain text, but its normalizer (NFC, `\s+` -> ' ', lower-case) has no ftfy / html.unescape, and it splits
 * added tokens out before the regex runs (so `!<|endoftext|>` gives the special id, where OpenAI's regex reads
 * `!<|` as punctuation), and its case-sensitive split pattern differs from OpenAI's IGNORECASE one on 'ſ' and
 * U+0345. So the file's normalizer, pre_tokenizer and post_processor are not used; its model (vocab, merges,
 * end-of-word suffix, unk token) and special tokens are.
 *
 * Padding: OpenAI pads with 0, Hugging Face with the end id; we pad with the end id. CLIP's text tower pools at
 * the first end token (argmax of the ids, the end id being the largest), and the causal mask keeps padding from
 * affecting anything before it, so the pooled output is the same; `attentionMask` marks the real tokens.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipLensError } from './errors';
import { FILE_LIMITS, FileRefusedError, readRegularFile } from './fileSystem';
import { cleanText } from './textClean';
import { REGEX_SPACE_CLASS } from './textCleanData';

/** CLIP's text context: start token + up to 75 BPE tokens + end token. */
export const CONTEXT_LENGTH = 77;

export interface EncodedText {
  /** Token ids, length {@link CONTEXT_LENGTH}: start, BPE ids, end, then the end id as padding. */
  ids: number[];
  /** 1 up to and including the (last) end token, 0 on the padding. Length {@link CONTEXT_LENGTH}. */
  attentionMask: number[];
  /** True when the text had more than 75 BPE tokens and was cut (the end token is still last). */
  truncated: boolean;
}

/** Where a tokenizer comes from: HF's tokenizer.json, or the older vocab.json + merges.txt pair. */
export type TokenizerFiles = { tokenizerJson: string } | { vocabJson: string; mergesTxt: string };

const START_TOKEN = '<|startoftext|>';
const END_TOKEN = '<|endoftext|>';
const END_OF_WORD_SUFFIX = '</w>';

/**
 * OpenAI's pre-tokenizer pattern, compiled by the `regex` module with IGNORECASE and run on lower-cased text.
 * Spelt out for JS: the only lower-case character that IGNORECASE lets match a literal here is 'ſ' (U+017F, folds
 * to 's'); U+0345 (folds to 'ι') matches neither `\p{L}` nor the negated class there, so it is excluded; `\s` is
 * the `regex` module's White_Space set (JS's `\s` adds U+FEFF and drops U+0085).
 */
const PRE_TOKEN_RE = new RegExp(
  "<\\|[sſ]tartoftext\\|>|<\\|endoftext\\|>|'[sſ]|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|" +
    `[^${REGEX_SPACE_CLASS}\\p{L}\\p{N}\\u{345}]+`,
  'gu',
);

/** GPT-2's bytes_to_unicode(): printable stand-ins for the 256 byte values. */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const table = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return table;
})();

const UTF8 = new TextEncoder();

/**
 * The part of `@huggingface/tokenizers`' BPE model we use. Declared here because the package's own .d.ts files
 * use extension-less relative re-exports that TypeScript's node16 resolution does not follow (its `BPE` export
 * appears missing), though the runtime export is there.
 */
interface BpeModel {
  /** Pre-tokenized words (byte-level characters) -> BPE sub-word tokens (the unk token for unknown ones). */
  encode(words: string[]): string[];
}
interface BpeConfig {
  type: 'BPE';
  vocab: Record<string, number>;
  merges: [string, string][];
  end_of_word_suffix: string;
  unk_token: string;
  fuse_unk: boolean;
  byte_fallback: boolean;
  ignore_merges: boolean;
}
type BpeLibrary = { BPE: new (config: BpeConfig) => BpeModel };

/** What a tokenizer file yields after validation. */
interface TokenizerSpec {
  vocab: Record<string, number>;
  merges: [string, string][];
  /** Ids of the special tokens as the file declares them (added_tokens first, then the vocab). */
  startId: number;
  endId: number;
  /** Token the BPE model emits for a piece missing from the vocab. */
  unkToken: string;
  /** Largest id in the vocab or among the special tokens. */
  maxId: number;
}

export class ClipTokenizer {
  /** Id of `<|startoftext|>` (49406 for OpenAI's vocabulary). */
  readonly startId: number;
  /** Id of `<|endoftext|>` (49407 for OpenAI's vocabulary); also the padding id. */
  readonly endId: number;
  /** 1 + the largest token id (49408 for OpenAI's vocabulary): rows the embedding table needs. */
  readonly vocabSize: number;
  private readonly bpe: BpeModel;
  private readonly tokenIds: ReadonlyMap<string, number>;
  private readonly unkId: number;

  private constructor(bpe: BpeModel, spec: TokenizerSpec) {
    this.bpe = bpe;
    this.startId = spec.startId;
    this.endId = spec.endId;
    this.vocabSize = spec.maxId + 1;
    this.tokenIds = new Map(Object.entries(spec.vocab));
    this.unkId = this.tokenIds.get(spec.unkToken) ?? spec.endId;
  }

  /** Loads `dir/tokenizer.json`, or else `dir/vocab.json` + `dir/merges.txt`. */
  static async fromModelDir(dir: string): Promise<ClipTokenizer> {
    const tokenizerJson = join(dir, 'tokenizer.json');
    if (await readable(tokenizerJson)) return ClipTokenizer.fromFiles({ tokenizerJson });
    const vocabJson = join(dir, 'vocab.json');
    const mergesTxt = join(dir, 'merges.txt');
    const [hasVocab, hasMerges] = await Promise.all([readable(vocabJson), readable(mergesTxt)]);
    if (hasVocab && hasMerges) return ClipTokenizer.fromFiles({ vocabJson, mergesTxt });
    const missing = hasVocab ? 'merges.txt' : hasMerges ? 'vocab.json' : 'vocab.json and merges.txt';
    throw new ClipLensError(
      'tokenizer-missing-file',
      `model folder has no tokenizer.json, and no ${missing} to use instead`,
      { file: tokenizerJson },
    );
  }

  /** Loads a tokenizer from HF's tokenizer.json, or from vocab.json + merges.txt. Bad files -> ClipLensError. */
  static async fromFiles(files: TokenizerFiles): Promise<ClipTokenizer> {
    const spec =
      'tokenizerJson' in files
        ? parseTokenizerJson(files.tokenizerJson, await readText(files.tokenizerJson))
        : parseVocabAndMerges(
            files.vocabJson,
            await readText(files.vocabJson),
            files.mergesTxt,
            await readText(files.mergesTxt),
          );
    // The library is an ES module; a dynamic import loads it from this CommonJS build too.
    const { BPE } = (await import('@huggingface/tokenizers')) as unknown as BpeLibrary;
    if (typeof BPE !== 'function') throw new Error('@huggingface/tokenizers has no BPE model export');
    const bpe = new BPE({
      type: 'BPE',
      vocab: spec.vocab,
      merges: spec.merges,
      end_of_word_suffix: END_OF_WORD_SUFFIX,
      unk_token: spec.unkToken,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
    });
    return new ClipTokenizer(bpe, spec);
  }

  /**
   * The BPE token ids of a text, without start/end tokens and without truncation: OpenAI's
   * `SimpleTokenizer.encode(text)`.
   */
  tokenize(text: string): number[] {
    const ids: number[] = [];
    const lowered = cleanText(text).toLowerCase();
    for (const [piece] of lowered.matchAll(PRE_TOKEN_RE)) {
      if (piece === START_TOKEN) ids.push(this.startId);
      else if (piece === END_TOKEN) ids.push(this.endId);
      else {
        let word = '';
        for (const byte of UTF8.encode(piece)) word += BYTE_TO_CHAR[byte];
        for (const token of this.bpe.encode([word])) ids.push(this.tokenIds.get(token) ?? this.unkId);
      }
    }
    return ids;
  }

  /** One text -> {@link CONTEXT_LENGTH} ids (start, BPE, end, end-id padding), its attention mask and truncation. */
  encode(text: string): EncodedText {
    const bpeIds = this.tokenize(text);
    const room = CONTEXT_LENGTH - 2;
    const truncated = bpeIds.length > room;
    const ids = [this.startId, ...(truncated ? bpeIds.slice(0, room) : bpeIds), this.endId];
    const used = ids.length;
    const attentionMask = new Array<number>(CONTEXT_LENGTH).fill(0).fill(1, 0, used);
    while (ids.length < CONTEXT_LENGTH) ids.push(this.endId);
    return { ids, attentionMask, truncated };
  }

  /** N texts -> row-major int64 tensors data for onnxruntime: ids and attention mask, each N*77. */
  encodeBatch(texts: string[]): { ids: BigInt64Array; attentionMask: BigInt64Array; truncated: boolean[] } {
    const ids = new BigInt64Array(texts.length * CONTEXT_LENGTH);
    const attentionMask = new BigInt64Array(texts.length * CONTEXT_LENGTH);
    const truncated: boolean[] = [];
    texts.forEach((text, row) => {
      const encoded = this.encode(text);
      const offset = row * CONTEXT_LENGTH;
      for (let i = 0; i < CONTEXT_LENGTH; i++) {
        ids[offset + i] = BigInt(encoded.ids[i]);
        attentionMask[offset + i] = BigInt(encoded.attentionMask[i]);
      }
      truncated.push(encoded.truncated);
    });
    return { ids, attentionMask, truncated };
  }
}

// -----------------------------------------------------------------------------------------------------------
// Reading and validating tokenizer files

/** Whether `file` exists as a regular file (reading it may still fail; that is reported then). */
async function readable(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function readText(file: string): Promise<string> {
  try {
    return (await readRegularFile(file, { maxBytes: FILE_LIMITS.modelText, code: 'tokenizer-unreadable', what: 'the tokenizer file' })).toString('utf8');
  } catch (err) {
    if (err instanceof FileRefusedError && err.reason === 'missing') throw new ClipLensError('tokenizer-missing-file', 'tokenizer file not found', { file });
    throw err;
  }
}

function bad(file: string, message: string, line?: number): ClipLensError {
  return new ClipLensError('tokenizer-bad-file', message, { file, line });
}

/** JSON.parse with the error turned into a ClipLensError naming the file and, when V8 says where, the line. */
function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const position = /at position (\d+)/.exec(message);
    let line: number | undefined;
    if (position) line = text.slice(0, Number(position[1])).split('\n').length;
    else if (/end of JSON input/.test(message)) line = text.split('\n').length;
    throw bad(file, `not valid JSON (${message.length > 200 ? `${message.slice(0, 200)}...` : message})`, line);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkVocab(file: string, value: unknown, where: string): Record<string, number> {
  if (!isRecord(value)) throw bad(file, `${where} must be an object of token -> id`);
  for (const [token, id] of Object.entries(value)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw bad(file, `${where}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, not an integer >= 0`);
    }
  }
  return value as Record<string, number>;
}

/** Every merge must join two vocabulary tokens into a vocabulary token, as HF's BPE builder requires. */
function checkMerge(
  vocab: Record<string, number>,
  pair: [string, string],
  fail: (message: string) => ClipLensError,
): void {
  for (const token of [pair[0], pair[1], pair[0] + pair[1]]) {
    if (!Object.hasOwn(vocab, token)) throw fail(`merge "${pair[0]} ${pair[1]}" uses ${JSON.stringify(token)}, which is not in the vocabulary`);
  }
}

function finishSpec(
  file: string,
  vocab: Record<string, number>,
  merges: [string, string][],
  unkToken: string,
  added: Map<string, number>,
): TokenizerSpec {
  const idOf = (token: string): number => {
    const id = added.get(token) ?? (Object.hasOwn(vocab, token) ? vocab[token] : undefined);
    if (id === undefined) throw bad(file, `has no ${token} token: not a CLIP tokenizer`);
    return id;
  };
  const startId = idOf(START_TOKEN);
  const endId = idOf(END_TOKEN);
  let maxId = Math.max(startId, endId, ...added.values());
  for (const id of Object.values(vocab)) if (id > maxId) maxId = id;
  return { vocab, merges, startId, endId, unkToken, maxId };
}

/** Hugging Face tokenizer.json (model.type BPE with the `</w>` suffix, as CLIP's). */
function parseTokenizerJson(file: string, text: string): TokenizerSpec {
  const json = parseJson(file, text);
  if (!isRecord(json) || !isRecord(json.model)) throw bad(file, 'has no "model" object: not a tokenizer.json');
  const model = json.model;
  if (model.type !== undefined && model.type !== 'BPE') {
    throw bad(file, `model type is ${JSON.stringify(model.type)}, CLIP uses "BPE"`);
  }
  if (model.end_of_word_suffix !== END_OF_WORD_SUFFIX) {
    throw bad(file, `model.end_of_word_suffix is ${JSON.stringify(model.end_of_word_suffix)}, CLIP's BPE uses "</w>"`);
  }
  const vocab = checkVocab(file, model.vocab, 'model.vocab');
  if (!Array.isArray(model.merges)) throw bad(file, 'model.merges must be an array');
  const merges = model.merges.map((merge: unknown, i: number): [string, string] => {
    const pair =
      typeof merge === 'string' ? merge.split(' ') : Array.isArray(merge) ? (merge as unknown[]) : [];
    if (pair.length !== 2 || !pair.every((p) => typeof p === 'string' && p.length > 0)) {
      throw bad(file, `model.merges[${i}] is ${JSON.stringify(merge)}, not a pair of tokens`);
    }
    const typed: [string, string] = [pair[0] as string, pair[1] as string];
    checkMerge(vocab, typed, (m) => bad(file, `model.merges[${i}]: ${m}`));
    return typed;
  });
  const added = new Map<string, number>();
  if (json.added_tokens !== undefined) {
    if (!Array.isArray(json.added_tokens)) throw bad(file, 'added_tokens must be an array');
    json.added_tokens.forEach((token: unknown, i: number) => {
      if (!isRecord(token) || typeof token.content !== 'string' || !Number.isInteger(token.id) || (token.id as number) < 0) {
        throw bad(file, `added_tokens[${i}] needs a string "content" and an integer "id"`);
      }
      added.set(token.content, token.id as number);
    });
  }
  const unk = typeof model.unk_token === 'string' ? model.unk_token : END_TOKEN;
  return finishSpec(file, vocab, merges, unk, added);
}

/** vocab.json (token -> id) and merges.txt ('#version' header line, then one "left right" pair per line). */
function parseVocabAndMerges(vocabFile: string, vocabText: string, mergesFile: string, mergesText: string): TokenizerSpec {
  const vocab = checkVocab(vocabFile, parseJson(vocabFile, vocabText), 'vocab.json');
  const lines = mergesText.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const merges: [string, string][] = [];
  lines.forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (index === 0 && line.startsWith('#version')) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw bad(mergesFile, `expected two tokens separated by one space, got ${JSON.stringify(line)}`, index + 1);
    }
    const pair: [string, string] = [parts[0], parts[1]];
    checkMerge(vocab, pair, (m) => bad(mergesFile, m, index + 1));
    merges.push(pair);
  });
  if (merges.length === 0) throw bad(mergesFile, 'has no merges');
  return finishSpec(vocabFile, vocab, merges, END_TOKEN, new Map());
}
