/**
 * How prompts are laid out for the text tower: which rows go into which batch, and at what sequence length.
 *
 * CLIP's text transformer is causal and pools at the first end-of-text token, so the tokens after a prompt's end
 * token never reach its embedding. A graph whose sequence axis is dynamic (optimum's `sequence_length`, as in the
 * Xenova/* exports) can therefore run a batch at the length of its longest prompt (ids and attention mask cut to it)
 * and give the same embeddings as at 77 tokens (up to float rounding): "a photo of a {class}." is about 10 tokens,
 * so a batch of such prompts costs about a seventh of the 77-token run. Prompts are sorted by length first, so that
 * one long prompt does not stretch a batch of short ones; the caller puts the results back in the input order.
 * A graph with a fixed sequence axis gets 77 tokens, in input order, as before.
 */
import { CONTEXT_LENGTH, type EncodedText } from './tokenizer';

/** The text graph's sequence axis: a fixed length, or 'dynamic' (any length up to the context). */
export type TextSequenceAxis = number | 'dynamic';

export interface TextBatch {
  /** Input rows (indices into the encoded list) in this batch, in the order of `ids`. */
  rows: number[];
  /** Sequence length every row of this batch is cut or padded to. */
  length: number;
  /** rows.length x length int64 ids, row-major (padding: the end id, as the tokenizer pads). */
  ids: BigInt64Array;
  /** rows.length x length int64 attention mask (1 on the real tokens, 0 on the padding). */
  attentionMask: BigInt64Array;
}

/** Tokens a prompt really uses: start, BPE tokens, end (the attention mask's ones; at most 77). */
export function usedLength(encoded: EncodedText): number {
  let n = 0;
  for (const m of encoded.attentionMask) n += m;
  return n;
}

/**
 * Splits encoded prompts into batches of at most `batchSize` rows. With a dynamic axis, rows are sorted by
 * {@link usedLength} (stable: equal lengths keep their input order) and each batch is cut to its longest row;
 * with a fixed axis, rows stay in input order at {@link CONTEXT_LENGTH} tokens (the tokenizer's length; a graph
 * fixed at another length is refused when the model folder is checked).
 */
export function planTextBatches(encoded: readonly EncodedText[], batchSize: number, axis: TextSequenceAxis): TextBatch[] {
  if (!(batchSize >= 1)) throw new RangeError(`batch size must be at least 1, got ${batchSize}`);
  const lengths = encoded.map(usedLength);
  const order = encoded.map((_, i) => i);
  const dynamic = axis === 'dynamic';
  if (dynamic) order.sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const batches: TextBatch[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    let length = CONTEXT_LENGTH;
    if (dynamic) {
      length = 1;
      for (const r of rows) length = Math.max(length, lengths[r]!);
    }
    const ids = new BigInt64Array(rows.length * length);
    const attentionMask = new BigInt64Array(rows.length * length);
    rows.forEach((r, j) => {
      const e = encoded[r]!;
      const off = j * length;
      for (let i = 0; i < length; i++) {
        ids[off + i] = BigInt(e.ids[i]!);
        attentionMask[off + i] = BigInt(e.attentionMask[i]!);
      }
    });
    batches.push({ rows, length, ids, attentionMask });
  }
  return batches;
}

/** The batch at a longer `length`: ids padded with `padId` (the end id, as the tokenizer pads), mask with 0. */
export function padTextBatch(batch: TextBatch, length: number, padId: number): TextBatch {
  if (length < batch.length) throw new RangeError(`cannot pad a batch of length ${batch.length} to ${length}`);
  const n = batch.rows.length;
  const ids = new BigInt64Array(n * length).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(n * length);
  for (let j = 0; j < n; j++) {
    ids.set(batch.ids.subarray(j * batch.length, (j + 1) * batch.length), j * length);
    attentionMask.set(batch.attentionMask.subarray(j * batch.length, (j + 1) * batch.length), j * length);
  }
  return { rows: [...batch.rows], length, ids, attentionMask };
}
