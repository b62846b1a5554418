/**
 * The outliers' class statistics on helper threads (parallel.ts): the class sums while the IVF build reads the rows,
 * then each row's distance to its class while the caller runs the IVF self-search. Their own module so that the
 * helper thread loads them without the rest of the duplicates.
 *
 * The class sums (duplicates.ts ClassSums) of one block of rows as a deferred job (parallel.ts): a helper
 * thread adds the block while the caller reads and projects the next one (the IVF build: NeighbourIndexOptions.onRows).
 * One unit per block, and a block's job is finished before the next one starts, so the sums are added in the same
 * order, in float64, as on one thread: the same sums bit for bit.
 */
import { defineDeferredJob } from './parallel';
import { copyStoredRowsOf, type StoredRows } from './storedRows';

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

/**
 * The class distances' inputs and output (duplicates.ts classDistancesOfRows): per representative j (row reps[j] of
 * the stored rows; reps null: row j), 1 - cosine of its row with the mean of the rest of its class, from the class
 * sums of normalised rows.
 */
export interface ClassDistanceRows {
  dim: number;
  classOf: Int32Array;
  /** classes x dim sums of normalised rows, and each class's squared norm of its sum. */
  sums: Float64Array;
  sumSq: Float64Array;
  /** Output, one per representative. */
  classDist: Float64Array;
}

/**
 * The class distances of representatives j0 .. j1 - 1 from their raw rows (buf, packed from j0): with v = row / |row|
 * and S its class's sum, rest = S - v, rest . v = S . v - 1 and |rest|^2 = |S|^2 - 2 S . v + 1 (v = 0 for a zero row),
 * so a row costs one fused loop (its dot with S and its squared norm, float64) and no normalised copy.
 */
export function classDistancesOf(d: ClassDistanceRows, j0: number, j1: number, buf: Float32Array): void {
  const { dim, classOf, sums, sumSq, classDist } = d;
  for (let j = j0; j < j1; j++) {
    const o = (j - j0) * dim;
    const so = (classOf[j] as number) * dim;
    let dotp = 0;
    let ss = 0;
    for (let k = 0; k < dim; k++) {
      const x = buf[o + k] as number;
      dotp += x * (sums[so + k] as number);
      ss += x * x;
    }
    const sv = ss > 0 ? dotp / Math.sqrt(ss) : 0;
    const vv = ss > 0 ? 1 : 0;
    const norm = (sumSq[classOf[j] as number] as number) - 2 * sv + vv;
    classDist[j] = norm > 0 ? 1 - (sv - vv) / Math.sqrt(norm) : 1;
  }
}

/** {@link classDistancesOf} as a job: rows read from shared storage, unitRows representatives a unit. */
export interface ClassDistancesJob extends ClassDistanceRows {
  rows: StoredRows;
  reps: Int32Array | null;
  unitRows: number;
}

let unitBuffer: Float32Array | null = null;

/** One unit of a {@link ClassDistancesJob}: writes its representatives' distances only (idempotent). */
export function classDistancesUnit(job: ClassDistancesJob, u: number): void {
  const m = job.classOf.length;
  const j0 = u * job.unitRows;
  const j1 = Math.min(m, j0 + job.unitRows);
  const values = (j1 - j0) * job.dim;
  if (!unitBuffer || unitBuffer.length < values) unitBuffer = new Float32Array(values);
  copyStoredRowsOf(job.rows, job.reps, j0, j1, unitBuffer);
  classDistancesOf(job, j0, j1, unitBuffer);
}

/**
 * Starts a {@link ClassDistancesJob} on a helper thread while the caller does other work (the IVF self-search);
 * returns the function that finishes it (the caller runs the units left).
 */
export const startClassDistances = defineDeferredJob<ClassDistancesJob>('classDistances', classDistancesUnit);
