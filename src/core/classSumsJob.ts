/**
 * The outliers' class sums (duplicates.ts ClassSums) of one block of rows as a deferred job (parallel.ts): a helper
 * thread adds the block while the caller reads and projects the next one (the IVF build: NeighbourIndexOptions.onRows).
 * One unit per block, and a block's job is finished before the next one starts, so the sums are added in the same
 * order, in float64, as on one thread: the same sums bit for bit. Its own module so that the helper thread loads it
 * without the rest of the duplicates.
 */
import { defineDeferredJob } from './parallel';

export interface ClassSumsBlock {
  /** count x dim raw rows (any norm). */
  rows: Float32Array;
  count: number;
  dim: number;
  /** The class of each of the block's rows. */
  classOf: Int32Array;
  /** classes x dim sums of normalised rows. */
  sums: Float64Array;
}

/** Adds the block's rows, each normalised (float64), to its class's sum (a zero row adds nothing). */
export function addClassRows(b: ClassSumsBlock): void {
  const { rows, count, dim, classOf, sums } = b;
  for (let i = 0; i < count; i++) {
    const o = i * dim;
    let s = 0;
    for (let d = 0; d < dim; d++) s += (rows[o + d] as number) * (rows[o + d] as number);
    if (!(s > 0)) continue;
    const inv = 1 / Math.sqrt(s);
    const so = (classOf[i] as number) * dim;
    for (let d = 0; d < dim; d++) sums[so + d] += (rows[o + d] as number) * inv;
  }
}

/** Starts {@link addClassRows} of a block on a helper thread; returns the function that finishes it. */
export const startClassSums = defineDeferredJob<ClassSumsBlock>('classSums', (data) => addClassRows(data));
