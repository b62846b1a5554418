/**
 * Predicted class probabilities: the N x K container every metric and the label-issue finder read, plus the
 * readers of the "bring your own model's outputs" input (`clip-lens metrics --input FILE`).
 *
 * Storage: rows are kept in row-major Float32Array chunks of at most {@link DEFAULT_CHUNK_FLOATS} floats (64 MB),
 * so 1,000,000 x 1,000 probabilities (4 GB) never need one ArrayBuffer. float32 is what CLIP produces; values read
 * from float64 sources are rounded to float32 once, on `push`, and every computation afterwards sees the same values
 * (metrics equal scikit-learn / cleanlab run on the float32-rounded matrix). Chunks live in SharedArrayBuffers, so
 * the metric and label-issue computations can hand the matrix to helper worker threads without copying it
 * (see parallel.ts).
 *
 * Input formats of {@link readPredictionsFile} (chosen by the path):
 * - `*.json`: `{"classes": [...], "labels": [...], "pred_probs": [[...], ...]}`; a label is a class index or a class
 *   name; an optional `"splits": ["train", "test", ...]` gives each row's split. Parsed in one piece, so it is for files up to a few hundred MB (V8's string limit is about 512 MB).
 * - `*.csv`: header `label,<class 1>,<class 2>,...`, then one row per sample: its label (class name, or class index
 *   when no class has that name) and K probabilities; a column named `split` (anywhere after `label`) gives each
 *   row's split. Read line by line: any size.
 * - a directory holding `pred_probs.npy` (float32 or float64, shape (N, K), C order), `labels.npy` (integers,
 *   shape (N,)) and `classes.json` (array of names) or `classes.txt` (one name a line), as written by `np.save`.
 *   Read in chunks: any size.
 * Every row is validated; a bad one is an error (not a warning) naming the file and the row (CSV: the 1-based line):
 * a wrong number of values, a value that is not finite or is below 0 or above 1 + {@link PROBABILITY_TOLERANCE},
 * a row whose sum is farther than {@link ROW_SUM_TOLERANCE} from 1 (logits or unnormalised scores: apply a softmax
 * first), or a label out of range.
 */
import { promises as fs, createReadStream } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { constants as bufferConstants } from 'node:buffer';
import { ClipLensError } from './errors';
import { assertRegularFile, FileRefusedError, readRegularFile } from './fileSystem';

/** A JSON predictions file is parsed whole; larger inputs belong in CSV or .npy (streamed). */
const MAX_PREDICTIONS_JSON_BYTES = 512 * 1024 * 1024;

/** Floats per storage chunk: 2^24 float32 = 64 MB. */
export const DEFAULT_CHUNK_FLOATS = 1 << 24;
/** A row's probabilities must sum to 1 within this (covers float32 and 6-decimal rounding of 1000 classes). */
export const ROW_SUM_TOLERANCE = 1e-2;
/** A probability may exceed 1 by this much (rounding). */
export const PROBABILITY_TOLERANCE = 1e-4;

const INITIAL_ROWS = 64;

/** A float32 array in shared memory when the runtime has SharedArrayBuffer, else in ordinary memory. */
export function allocateFloats(length: number): Float32Array {
  return typeof SharedArrayBuffer === 'function' ? new Float32Array(new SharedArrayBuffer(4 * length)) : new Float32Array(length);
}

/** What a worker thread needs to rebuild a {@link ProbabilityMatrix} on the same (shared) storage. */
export interface SharedProbabilityMatrix {
  numClasses: number;
  rowsPerChunk: number;
  length: number;
  chunks: Float32Array[];
}

/**
 * An append-only N x K matrix of non-negative probabilities, stored as float32 in row-major chunks.
 * Rows are immutable once pushed, so views returned by {@link row} stay valid.
 */
export class ProbabilityMatrix {
  readonly numClasses: number;
  /** Rows per chunk: every chunk but the last holds exactly this many rows. */
  readonly rowsPerChunk: number;
  private readonly chunks: Float32Array[] = [];
  private count = 0;

  /** @param options.chunkFloats floats per chunk (default 2^24); tests use small values to exercise chunking. */
  constructor(numClasses: number, options: { chunkFloats?: number } = {}) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
    }
    this.numClasses = numClasses;
    const chunkFloats = options.chunkFloats ?? DEFAULT_CHUNK_FLOATS;
    this.rowsPerChunk = Math.max(1, Math.floor(chunkFloats / numClasses));
  }

  /** Builds a matrix from rows (numClasses defaults to the first row's length). */
  static fromRows(rows: ArrayLike<number>[], numClasses?: number): ProbabilityMatrix {
    const k = numClasses ?? (rows.length > 0 ? rows[0].length : undefined);
    if (k === undefined) throw new RangeError('fromRows: no rows and no numClasses');
    const m = new ProbabilityMatrix(k);
    for (const r of rows) m.push(r);
    return m;
  }

  /** Number of rows. */
  get length(): number {
    return this.count;
  }

  /**
   * Appends one row (copied, rounded to float32). Throws ClipLensError 'probabilities-invalid' when the row has the
   * wrong length or a value that is NaN, infinite or negative; -0 is stored as 0.
   */
  push(row: ArrayLike<number>): void {
    const k = this.numClasses;
    if (row.length !== k) {
      throw new ClipLensError('probabilities-invalid', `row ${this.count}: expected ${k} probabilities, found ${row.length}`);
    }
    const chunkIndex = Math.floor(this.count / this.rowsPerChunk);
    const r = this.count - chunkIndex * this.rowsPerChunk;
    let chunk = this.chunks[chunkIndex];
    if (chunk === undefined) {
      // The first chunk starts small and doubles (small matrices stay small); once a matrix fills one, the next
      // chunks are allocated whole, so large matrices are not copied while they grow.
      chunk = allocateFloats((chunkIndex === 0 ? Math.min(this.rowsPerChunk, INITIAL_ROWS) : this.rowsPerChunk) * k);
      this.chunks.push(chunk);
    } else if ((r + 1) * k > chunk.length) {
      const grown = allocateFloats(Math.min(this.rowsPerChunk, 2 * r) * k);
      grown.set(chunk);
      chunk = grown;
      this.chunks[chunkIndex] = grown;
    }
    const off = r * k;
    for (let j = 0; j < k; j++) {
      const v = row[j];
      if (!(v >= 0) || v === Infinity) {
        throw new ClipLensError('probabilities-invalid', `row ${this.count}, class ${j}: ${v} is not a probability (finite and >= 0)`);
      }
      chunk[off + j] = v + 0; // -0 + 0 === +0: keeps float bit patterns monotone in value
    }
    this.count++;
  }

  /** Row i as a read-only view (no copy) of length numClasses. */
  row(i: number): Float32Array {
    this.check(i);
    const off = this.offsetOf(i);
    return this.chunkOf(i).subarray(off, off + this.numClasses);
  }

  /** Index of row i's largest probability, the lowest index on ties (like numpy's argmax). */
  argmax(i: number): number {
    const d = this.chunkOf(i);
    const o = this.offsetOf(i);
    let best = d[o];
    let arg = 0;
    for (let j = 1; j < this.numClasses; j++) {
      if (d[o + j] > best) {
        best = d[o + j];
        arg = j;
      }
    }
    return arg;
  }

  /** The chunk holding row i; with {@link offsetOf}, hot loops read `chunkOf(i)[offsetOf(i) + j]` without a view. */
  chunkOf(i: number): Float32Array {
    return this.chunks[Math.floor(i / this.rowsPerChunk)];
  }

  /** Offset of row i's first value inside {@link chunkOf}(i). */
  offsetOf(i: number): number {
    return (i % this.rowsPerChunk) * this.numClasses;
  }

  /**
   * The storage chunks in row order: chunk c holds rows c * rowsPerChunk onwards, row-major. For hot loops that
   * read many rows; do not keep the array across pushes (the first chunk is replaced by larger copies as it grows).
   */
  storage(): readonly Float32Array[] {
    return this.chunks;
  }

  /**
   * The matrix as a structured-cloneable description: its chunks are shared with a worker it is posted to, not
   * copied, when {@link inSharedMemory}. Rebuild it with {@link ProbabilityMatrix.fromShared}.
   */
  shared(): SharedProbabilityMatrix {
    return { numClasses: this.numClasses, rowsPerChunk: this.rowsPerChunk, length: this.count, chunks: this.chunks.slice() };
  }

  /** True when every chunk is in a SharedArrayBuffer (always, where the runtime has SharedArrayBuffer). */
  get inSharedMemory(): boolean {
    return typeof SharedArrayBuffer === 'function' && this.chunks.every((c) => c.buffer instanceof SharedArrayBuffer);
  }

  /** A read-only view of a matrix described by {@link shared} (in another thread): same storage, no copy. */
  static fromShared(desc: SharedProbabilityMatrix): ProbabilityMatrix {
    const m = new ProbabilityMatrix(desc.numClasses, { chunkFloats: desc.rowsPerChunk * desc.numClasses });
    if (m.rowsPerChunk !== desc.rowsPerChunk) throw new RangeError('fromShared: inconsistent rowsPerChunk');
    m.chunks.push(...desc.chunks);
    m.count = desc.length;
    return m;
  }

  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`row ${i} out of range [0, ${this.count})`);
  }
}

/**
 * Rows grouped by label with a counting sort: the rows labelled c are `rows[start[c] .. start[c + 1])`, in row order.
 * With `indices`, only those rows are grouped. Labels must be valid class indices.
 */
export function groupRowsByLabel(
  labels: ArrayLike<number>,
  numClasses: number,
  indices?: ArrayLike<number>,
): { start: Int32Array; rows: Int32Array } {
  const n = indices ? indices.length : labels.length;
  const start = new Int32Array(numClasses + 1);
  for (let s = 0; s < n; s++) start[labels[indices ? indices[s] : s] + 1]++;
  for (let c = 0; c < numClasses; c++) start[c + 1] += start[c];
  const fill = start.slice(0, numClasses);
  const rows = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    const i = indices ? indices[s] : s;
    rows[fill[labels[i]]++] = i;
  }
  return { start, rows };
}

/** Predictions read from a file: class names, label indices, probabilities (rows in file order). */
export interface Predictions {
  classes: string[];
  labels: number[];
  probs: ProbabilityMatrix;
  /** Split of each row ('train', 'test', ...), when the file gives one (JSON "splits", CSV column "split"). */
  splits?: string[];
}

/** Reads a predictions file (JSON, CSV or a directory of .npy files; see the module comment). */
export async function readPredictionsFile(file: string): Promise<Predictions> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (e) {
    throw new ClipLensError('predictions-read-failed', `cannot read predictions: ${(e as Error).message}`, { file });
  }
  if (stat.isDirectory()) return readNpyDirectory(file);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.json') return readPredictionsJson(file);
  if (ext === '.csv') return readPredictionsCsv(file);
  throw new ClipLensError(
    'predictions-unknown-format',
    `unknown predictions format '${ext || '(no extension)'}': use .json, .csv or a directory with pred_probs.npy, labels.npy and classes.json`,
    { file },
  );
}

/** Checks a row of probabilities; returns an error message or undefined. */
export function checkProbabilityRow(values: ArrayLike<number>, numClasses: number): string | undefined {
  if (values.length !== numClasses) return `expected ${numClasses} probabilities, found ${values.length}`;
  let sum = 0;
  for (let j = 0; j < numClasses; j++) {
    const v = values[j];
    if (typeof v !== 'number' || !Number.isFinite(v)) return `probability of class ${j} is ${String(v)}, not a finite number`;
    if (v < 0 || v > 1 + PROBABILITY_TOLERANCE) return `probability of class ${j} is ${v}, outside [0, 1]`;
    sum += v;
  }
  if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) {
    return `probabilities sum to ${sum}, not 1 (within ${ROW_SUM_TOLERANCE}): give softmax probabilities, not logits or scores`;
  }
  return undefined;
}

function checkClasses(classes: unknown, where: { file: string; line?: number }): string[] {
  if (!Array.isArray(classes) || classes.length === 0) {
    throw new ClipLensError('predictions-bad-field', 'classes must be a non-empty array of class names', where);
  }
  const seen = new Set<string>();
  classes.forEach((c, i) => {
    if (typeof c !== 'string' || c.length === 0) {
      throw new ClipLensError('predictions-bad-field', `class ${i} must be a non-empty string`, where);
    }
    if (seen.has(c)) throw new ClipLensError('predictions-bad-field', `class ${i} '${c}' is a duplicate`, where);
    seen.add(c);
  });
  return classes as string[];
}

/** Resolves a label given as a class index or a class name; undefined when it is neither. */
function resolveLabel(value: unknown, classes: string[], byName: Map<string, number>): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value < classes.length ? value : undefined;
  if (typeof value === 'string') {
    const named = byName.get(value);
    if (named !== undefined) return named;
    if (/^\d+$/.test(value.trim())) return resolveLabel(Number(value.trim()), classes, byName);
  }
  return undefined;
}

function labelError(value: unknown, classes: string[]): string {
  return `label ${JSON.stringify(value)} is neither a class index in [0, ${classes.length - 1}] nor a class name`;
}

/**
 * The JSON inputs `{"classes", "labels", <rowsKey>}` (predictions and features): parsed, the classes checked, labels
 * and rows arrays of one length. Errors name the file (and the line for bad JSON).
 */
function parseLabelledRows(text: string, file: string, rowsKey: 'pred_probs' | 'features', rowsAre: string): { obj: Record<string, unknown>; classes: string[]; rawLabels: unknown[]; rows: unknown[] } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const at = /position (\d+)/.exec(msg);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : undefined;
    throw new ClipLensError('predictions-bad-json', `not valid JSON: ${msg}`, { file, line });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ClipLensError('predictions-bad-field', `expected an object {"classes", "labels", "${rowsKey}"}`, { file });
  }
  const obj = data as Record<string, unknown>;
  const classes = checkClasses(obj.classes, { file });
  const rawLabels = obj.labels;
  const rows = obj[rowsKey];
  if (!Array.isArray(rawLabels)) throw new ClipLensError('predictions-bad-field', '"labels" must be an array', { file });
  if (!Array.isArray(rows)) throw new ClipLensError('predictions-bad-field', `"${rowsKey}" must be ${rowsAre}`, { file });
  if (rows.length !== rawLabels.length) {
    throw new ClipLensError('predictions-bad-field', `"labels" has ${rawLabels.length} entries but "${rowsKey}" has ${rows.length} rows`, { file });
  }
  return { obj, classes, rawLabels, rows };
}

async function readPredictionsJson(file: string): Promise<Predictions> {
  let text: string;
  try {
    text = (await readRegularFile(file, { maxBytes: MAX_PREDICTIONS_JSON_BYTES, code: 'predictions-read-failed', what: 'the predictions file' })).toString('utf8');
  } catch (e) {
    if (e instanceof FileRefusedError) throw e;
    throw new ClipLensError('predictions-read-failed', `cannot read predictions: ${(e as Error).message}`, { file });
  }
  const { obj, classes, rawLabels, rows } = parseLabelledRows(text, file, 'pred_probs', 'an array of rows');
  const splits = obj.splits;
  if (splits !== undefined) {
    if (!Array.isArray(splits) || splits.length !== rows.length) {
      throw new ClipLensError('predictions-bad-field', `"splits" must be an array of ${rows.length} split names, one per row`, { file });
    }
    const bad = splits.findIndex((x) => typeof x !== 'string' || x.trim() === '');
    if (bad >= 0) throw new ClipLensError('predictions-bad-field', `splits[${bad}]: expected a split name such as "train" or "test"`, { file });
  }
  const byName = new Map(classes.map((c, i) => [c, i]));
  const probs = new ProbabilityMatrix(classes.length);
  const labels: number[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const label = resolveLabel(rawLabels[i], classes, byName);
    if (label === undefined) throw new ClipLensError('predictions-bad-label', `labels[${i}]: ${labelError(rawLabels[i], classes)}`, { file });
    labels[i] = label;
    const row = rows[i];
    const problem = Array.isArray(row) ? checkProbabilityRow(row, classes.length) : 'not an array';
    if (problem) throw new ClipLensError('predictions-bad-row', `pred_probs[${i}]: ${problem}`, { file });
    probs.push(row as number[]);
  }
  return { classes, labels, probs, ...(splits !== undefined ? { splits: (splits as string[]).map((x) => x.trim()) } : {}) };
}

/** Splits one CSV line (RFC 4180 quoting: "a,b" and "" inside quotes). */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field.length === 0) quoted = true;
    else if (ch === ',') {
      out.push(field);
      field = '';
    } else field += ch;
  }
  out.push(field);
  return out;
}

async function readPredictionsCsv(file: string): Promise<Predictions> {
  await assertRegularFile(file, { maxBytes: Number.MAX_SAFE_INTEGER, code: 'predictions-read-failed', what: 'the predictions file' });
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let classes: string[] | undefined;
  let byName = new Map<string, number>();
  let probs: ProbabilityMatrix | undefined;
  const labels: number[] = [];
  let lineNo = 0;
  const values: number[] = [];
  let splitColumn = -1;
  const splits: string[] = [];
  try {
    for await (const raw of lines) {
      lineNo++;
      const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (line.trim() === '') continue;
      const fields = splitCsvLine(line);
      if (classes === undefined) {
        if (fields[0].trim().toLowerCase() !== 'label' || fields.length < 2) {
          throw new ClipLensError('predictions-bad-header', 'the header must be label,<class 1>,<class 2>,...', { file, line: lineNo });
        }
        // A column named "split" holds each row's split, not a class.
        const header = fields.map((f) => f.trim());
        const at = header.findIndex((f, i) => i > 0 && f.toLowerCase() === 'split');
        if (at > 0) splitColumn = at;
        classes = checkClasses(header.filter((_, i) => i > 0 && i !== splitColumn), { file, line: lineNo });
        byName = new Map(classes.map((c, i) => [c, i]));
        probs = new ProbabilityMatrix(classes.length);
        continue;
      }
      const k = classes.length;
      const extra = splitColumn > 0 ? 1 : 0;
      if (fields.length !== k + 1 + extra) {
        throw new ClipLensError('predictions-bad-row', `expected ${k + 1 + extra} fields (label, ${extra ? 'split, ' : ''}${k} probabilities), found ${fields.length}`, { file, line: lineNo });
      }
      const label = resolveLabel(fields[0].trim(), classes, byName);
      if (label === undefined) throw new ClipLensError('predictions-bad-label', labelError(fields[0], classes), { file, line: lineNo });
      if (extra) {
        const split = fields[splitColumn].trim();
        if (split === '') throw new ClipLensError('predictions-bad-row', 'empty split: expected a split name such as train or test', { file, line: lineNo });
        splits.push(split);
      }
      values.length = 0;
      for (let j = 1; j < fields.length; j++) {
        if (j === splitColumn) continue;
        const f = fields[j].trim();
        values.push(f === '' ? NaN : Number(f));
      }
      const problem = checkProbabilityRow(values, k);
      if (problem) throw new ClipLensError('predictions-bad-row', problem, { file, line: lineNo });
      labels.push(label);
      probs!.push(values);
    }
  } catch (e) {
    if (e instanceof ClipLensError) throw e;
    throw new ClipLensError('predictions-read-failed', `cannot read predictions: ${(e as Error).message}`, { file });
  } finally {
    lines.close();
    stream.destroy();
  }
  if (classes === undefined || probs === undefined) {
    throw new ClipLensError('predictions-bad-header', 'empty file: expected a header label,<class 1>,<class 2>,...', { file });
  }
  return { classes, labels, probs, ...(splitColumn > 0 ? { splits } : {}) };
}

/** A parsed .npy header. */
export interface NpyHeader {
  dtype: 'f2' | 'f4' | 'f8' | 'i1' | 'i2' | 'i4' | 'i8' | 'u1' | 'u2' | 'u4' | 'u8';
  shape: number[];
  dataOffset: number;
}

export const NPY_ITEM_SIZE: Record<NpyHeader['dtype'], number> = { f2: 2, f4: 4, f8: 8, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8 };

/** Parses the header of a .npy file (format versions 1-3, little-endian numeric arrays in C order). */
export function parseNpyHeader(buf: Buffer, file: string): NpyHeader {
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new ClipLensError('predictions-bad-npy', 'not a .npy file (bad magic)', { file });
  }
  const major = buf.readUInt8(6);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (buf.length < start + headerLen) throw new ClipLensError('predictions-bad-npy', 'truncated .npy header', { file });
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new ClipLensError('predictions-bad-npy', `unreadable .npy header ${header.trim()}`, { file });
  const dtype = `${descr[2]}${descr[3]}` as NpyHeader['dtype'];
  if (!(dtype in NPY_ITEM_SIZE) || descr[1] === '>' || (descr[1] === '|' && NPY_ITEM_SIZE[dtype] > 1)) {
    throw new ClipLensError('predictions-bad-npy', `unsupported dtype '${descr[1]}${dtype}' (use little-endian float16/float32/float64 or integers)`, { file });
  }
  if (fortran[1] === 'True') throw new ClipLensError('predictions-bad-npy', 'Fortran-order arrays are not supported: save with np.ascontiguousarray', { file });
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  return { dtype, shape: dims, dataOffset: start + headerLen };
}

/** IEEE 754 half-precision bits -> number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

let halfValueTable: Float32Array | undefined;
/** Every float16 bit pattern's value (256 KB, made on first use): decoding float16 rows by table lookup. */
export function halfValues(): Float32Array {
  if (!halfValueTable) {
    halfValueTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfValueTable[h] = halfToFloat(h);
  }
  return halfValueTable;
}

/**
 * Rows r0 .. r1 - 1 of float16 rows with a scale each (bits: rows x dim patterns, row r scaled by scales[r]) as
 * float32 into `out` from `at`: value fround(half * scale), what ONNX Runtime's Cast(half) * scale gives when the
 * scale is a float32 value. Four values a step (about twice as fast as one on V8: every zero-shot pass once ran this).
 */
export function decodeHalfRows(bits: Uint16Array, scales: ArrayLike<number>, r0: number, r1: number, dim: number, out: Float32Array, at = 0): void {
  const table = halfValues();
  const head = dim - (dim % 4);
  for (let r = r0; r < r1; r++) {
    const s = scales[r] as number;
    let src = r * dim;
    let dst = at + (r - r0) * dim;
    const stop = src + head;
    for (; src < stop; src += 4, dst += 4) {
      out[dst] = (table[bits[src] as number] as number) * s;
      out[dst + 1] = (table[bits[src + 1] as number] as number) * s;
      out[dst + 2] = (table[bits[src + 2] as number] as number) * s;
      out[dst + 3] = (table[bits[src + 3] as number] as number) * s;
    }
    for (const end = r * dim + dim; src < end; src++, dst++) out[dst] = (table[bits[src] as number] as number) * s;
  }
}

const halfScratch = new Float32Array(1);
const halfScratchBits = new Uint32Array(halfScratch.buffer);
/** number -> IEEE 754 half-precision bits (through float32, rounded to nearest even; NaN -> 0x7e00). */
export function floatToHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  halfScratch[0] = v;
  const x = halfScratchBits[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m = (m | 0x800000) >> (1 - e);
    return sign | ((m + 0x1000) >> 13);
  }
  const h = sign | (e << 10) | (m >> 13);
  return (m & 0x1fff) > 0x1000 || ((m & 0x1fff) === 0x1000 && h & 1) ? h + 1 : h;
}

function readNpyValue(buf: Buffer, offset: number, dtype: NpyHeader['dtype']): number {
  switch (dtype) {
    case 'f2': return halfToFloat(buf.readUInt16LE(offset));
    case 'f4': return buf.readFloatLE(offset);
    case 'f8': return buf.readDoubleLE(offset);
    case 'i1': return buf.readInt8(offset);
    case 'i2': return buf.readInt16LE(offset);
    case 'i4': return buf.readInt32LE(offset);
    case 'i8': return Number(buf.readBigInt64LE(offset));
    case 'u1': return buf.readUInt8(offset);
    case 'u2': return buf.readUInt16LE(offset);
    case 'u4': return buf.readUInt32LE(offset);
    case 'u8': return Number(buf.readBigUInt64LE(offset));
  }
}

async function readFileOrFail(file: string): Promise<Buffer> {
  return readRegularFile(file, { maxBytes: bufferConstants.MAX_LENGTH, code: 'predictions-read-failed' });
}

async function readNpyClasses(dir: string): Promise<string[]> {
  const jsonFile = path.join(dir, 'classes.json');
  const txtFile = path.join(dir, 'classes.txt');
  const exists = async (f: string) => fs.stat(f).then(() => true, () => false);
  if (await exists(jsonFile)) {
    const text = (await readFileOrFail(jsonFile)).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new ClipLensError('predictions-bad-json', `not valid JSON: ${(e as Error).message}`, { file: jsonFile });
    }
    return checkClasses(parsed, { file: jsonFile });
  }
  if (await exists(txtFile)) {
    const names = (await readFileOrFail(txtFile)).toString('utf8').split(/\r?\n/).map((s) => s.trim());
    while (names.length > 0 && names[names.length - 1] === '') names.pop();
    return checkClasses(names, { file: txtFile });
  }
  throw new ClipLensError('predictions-read-failed', 'the directory needs classes.json (a JSON array) or classes.txt (one class a line) next to pred_probs.npy and labels.npy', { file: dir });
}

/** classes.json/classes.txt and labels.npy (1-D integers, each a class index) of a predictions or features folder. */
async function readNpyLabels(dir: string): Promise<{ classes: string[]; labels: number[] }> {
  const classes = await readNpyClasses(dir);
  const labelsFile = path.join(dir, 'labels.npy');
  const labelsBuf = await readFileOrFail(labelsFile);
  const lh = parseNpyHeader(labelsBuf, labelsFile);
  if (lh.dtype[0] === 'f' || lh.shape.length !== 1) {
    throw new ClipLensError('predictions-bad-npy', `labels must be a 1-D integer array, found ${lh.dtype} of shape (${lh.shape.join(', ')})`, { file: labelsFile });
  }
  const labels: number[] = new Array(lh.shape[0]);
  const lsize = NPY_ITEM_SIZE[lh.dtype];
  for (let i = 0; i < labels.length; i++) {
    const v = readNpyValue(labelsBuf, lh.dataOffset + i * lsize, lh.dtype);
    if (v < 0 || v >= classes.length) throw new ClipLensError('predictions-bad-label', `labels[${i}]: ${labelError(v, classes)}`, { file: labelsFile });
    labels[i] = v;
  }
  return { classes, labels };
}

/** Reads pred_probs.npy (streamed in chunks of rows), labels.npy and classes.json/classes.txt from a directory. */
async function readNpyDirectory(dir: string): Promise<Predictions> {
  const { classes, labels } = await readNpyLabels(dir);
  const k = classes.length;
  const n = labels.length;

  const probsFile = path.join(dir, 'pred_probs.npy');
  await assertRegularFile(probsFile, { maxBytes: Number.MAX_SAFE_INTEGER, code: 'predictions-read-failed', what: 'pred_probs.npy' });
  let handle;
  try {
    handle = await fs.open(probsFile, 'r');
  } catch (e) {
    throw new ClipLensError('predictions-read-failed', `cannot read: ${(e as Error).message}`, { file: probsFile });
  }
  try {
    const head = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const ph = parseNpyHeader(head.subarray(0, bytesRead), probsFile);
    if (ph.dtype[0] !== 'f' || ph.shape.length !== 2 || ph.shape[0] !== n || ph.shape[1] !== k) {
      throw new ClipLensError(
        'predictions-bad-npy',
        `pred_probs must be float32/float64 of shape (${n}, ${k}) (labels x classes), found ${ph.dtype} of shape (${ph.shape.join(', ')})`,
        { file: probsFile },
      );
    }
    const size = NPY_ITEM_SIZE[ph.dtype];
    const rowBytes = k * size;
    const rowsPerRead = Math.max(1, Math.floor((8 << 20) / rowBytes));
    const buf = Buffer.alloc(rowsPerRead * rowBytes);
    const probs = new ProbabilityMatrix(k);
    const row = new Float64Array(k);
    for (let start = 0; start < n; start += rowsPerRead) {
      const rows = Math.min(rowsPerRead, n - start);
      const want = rows * rowBytes;
      const got = (await handle.read(buf, 0, want, ph.dataOffset + start * rowBytes)).bytesRead;
      if (got !== want) throw new ClipLensError('predictions-bad-npy', `truncated data: expected ${n} rows`, { file: probsFile });
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < k; j++) row[j] = readNpyValue(buf, r * rowBytes + j * size, ph.dtype);
        const problem = checkProbabilityRow(row, k);
        if (problem) throw new ClipLensError('predictions-bad-row', `row ${start + r}: ${problem}`, { file: probsFile });
        probs.push(row);
      }
    }
    return { classes, labels, probs };
  } finally {
    await handle.close();
  }
}

/** Image features read from a file, for the embedding predictors (`clip-lens probe`, `label-issues --knn`). */
export interface FeaturesInput {
  classes: string[];
  labels: number[];
  /** N x dim row-major. */
  features: Float32Array;
  dim: number;
}

/**
 * Reads `{"classes", "labels", "features"}` JSON (features: N rows of equal width) or a directory holding
 * `features.npy` (float32/float64, shape (N, D)), `labels.npy` and `classes.json`/`classes.txt`. Every value must be
 * finite and every row of the same width; errors name the file and the row.
 */
export async function readFeaturesFile(file: string): Promise<FeaturesInput> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (e) {
    throw new ClipLensError('predictions-read-failed', `cannot read features: ${(e as Error).message}`, { file });
  }
  if (stat.isDirectory()) return readFeaturesDirectory(file);
  if (path.extname(file).toLowerCase() !== '.json') {
    throw new ClipLensError('predictions-unknown-format', 'features must be a .json file or a directory with features.npy, labels.npy and classes.json', { file });
  }
  const text = (await readFileOrFail(file)).toString('utf8');
  const { classes, rawLabels, rows } = parseLabelledRows(text, file, 'features', 'an array of rows (one feature vector per sample)');
  const byName = new Map(classes.map((c, i) => [c, i]));
  const labels: number[] = new Array(rows.length);
  const dim = rows.length > 0 && Array.isArray(rows[0]) ? (rows[0] as unknown[]).length : 0;
  if (rows.length > 0 && dim === 0) throw new ClipLensError('features-bad-shape', 'features[0] must be a non-empty array of numbers', { file });
  const features = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) {
    const label = resolveLabel(rawLabels[i], classes, byName);
    if (label === undefined) throw new ClipLensError('predictions-bad-label', `labels[${i}]: ${labelError(rawLabels[i], classes)}`, { file });
    labels[i] = label;
    const row = rows[i];
    if (!Array.isArray(row) || row.length !== dim) {
      throw new ClipLensError('features-bad-shape', `features[${i}] has ${Array.isArray(row) ? row.length : 'no'} values, expected ${dim} (the width of features[0])`, { file });
    }
    for (let d = 0; d < dim; d++) {
      const v = row[d];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ClipLensError('features-not-finite', `features[${i}][${d}] is ${JSON.stringify(v)}, not a finite number`, { file });
      }
      features[i * dim + d] = v;
    }
  }
  return { classes, labels, features, dim };
}

async function readFeaturesDirectory(dir: string): Promise<FeaturesInput> {
  const { classes, labels } = await readNpyLabels(dir);
  const n = labels.length;
  const featuresFile = path.join(dir, 'features.npy');
  const buf = await readFileOrFail(featuresFile);
  const fh = parseNpyHeader(buf, featuresFile);
  if (fh.dtype[0] !== 'f' || fh.shape.length !== 2 || fh.shape[0] !== n || fh.shape[1] < 1) {
    throw new ClipLensError('features-bad-shape', `features must be float32/float64 of shape (${n}, D) (one row per label), found ${fh.dtype} of shape (${fh.shape.join(', ')})`, { file: featuresFile });
  }
  const dim = fh.shape[1];
  const size = NPY_ITEM_SIZE[fh.dtype];
  if (buf.length < fh.dataOffset + n * dim * size) throw new ClipLensError('predictions-bad-npy', `truncated data: expected ${n} rows`, { file: featuresFile });
  const features = new Float32Array(n * dim);
  for (let i = 0; i < n * dim; i++) {
    const v = readNpyValue(buf, fh.dataOffset + i * size, fh.dtype);
    if (!Number.isFinite(v)) {
      throw new ClipLensError('features-not-finite', `row ${Math.floor(i / dim)}, column ${i % dim}: ${v} is not a finite number`, { file: featuresFile });
    }
    features[i] = v;
  }
  return { classes, labels, features, dim };
}
