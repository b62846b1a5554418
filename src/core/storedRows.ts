/**
 * The storage of EmbeddingRows (duplicates.ts) as plain data: chunks of rows, float16 patterns with a float64 scale
 * per row or float32 values. On shared memory (EmbeddingRows keeps its slabs there when it can) it can be posted to a
 * helper thread (parallel.ts), which then reads the rows where they are: nothing copied. Its own module, so that the
 * helper loads it without the rest of the duplicates.
 */
import { decodeHalfRows } from './probabilities';

export interface StoredRows {
  /** Row width. */
  dim: number;
  /** Rows per chunk (the last chunk may be partly used). */
  chunkRows: number;
  /** True: chunks hold float16 patterns and `scales` a scale per row (row = half(bits) x scale); false: float32. */
  half: boolean;
  /** Per chunk its values, chunkRows x dim (undefined: no row of the chunk has an embedding). */
  values: (Uint16Array | Float32Array | undefined)[];
  /** Per chunk its rows' scales (float16 chunks only). */
  scales: (Float64Array | undefined)[];
}

/**
 * Rows start .. end - 1 as float32 into `out` from `at` (floats), row-major; rows of a chunk without values are
 * zeros. EmbeddingRows.copyRows reads through here, so every thread decodes the same floats.
 */
export function copyStoredRows(s: StoredRows, start: number, end: number, out: Float32Array, at = 0): void {
  const { dim, chunkRows: per } = s;
  for (let i = start; i < end; ) {
    const c = Math.floor(i / per);
    const r0 = i - c * per;
    const r1 = Math.min(per, end - c * per);
    const to = at + (i - start) * dim;
    const chunk = s.values[c];
    if (!chunk) out.fill(0, to, to + (r1 - r0) * dim);
    else if (s.half) {
      const scales = s.scales[c];
      if (scales) decodeHalfRows(chunk as Uint16Array, scales, r0, r1, dim, out, to);
      else out.fill(0, to, to + (r1 - r0) * dim);
    } else out.set((chunk as Float32Array).subarray(r0 * dim, r1 * dim), to);
    i = c * per + r1;
  }
}

/**
 * Rows reps[j0] .. reps[j1 - 1] (increasing row numbers; reps null: rows j0 .. j1 - 1) packed into `out`, each run of
 * consecutive rows one copy.
 */
export function copyStoredRowsOf(s: StoredRows, reps: ArrayLike<number> | null, j0: number, j1: number, out: Float32Array): void {
  if (j1 <= j0) return;
  if (!reps) return copyStoredRows(s, j0, j1, out);
  for (let j = j0; j < j1; ) {
    let e = j + 1;
    while (e < j1 && (reps[e] as number) === (reps[e - 1] as number) + 1) e++;
    copyStoredRows(s, reps[j] as number, (reps[e - 1] as number) + 1, out, (j - j0) * s.dim);
    j = e;
  }
}

/** Whether every chunk (and scale chunk) lies on a SharedArrayBuffer: then the rows can be posted to a helper. */
export function storedRowsShared(s: StoredRows): boolean {
  const shared = (a: { buffer: ArrayBufferLike } | undefined) => a === undefined || a.buffer instanceof SharedArrayBuffer;
  return typeof SharedArrayBuffer === 'function' && s.values.every(shared) && (!s.half || s.scales.every(shared));
}
