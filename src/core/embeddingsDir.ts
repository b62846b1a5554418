/**
 * Image embeddings computed elsewhere, in clip-retrieval's layout (`clip-retrieval inference`, e.g. on a Spark
 * cluster), read and written:
 *
 *   DIR/img_emb/img_emb_N.npy          float16 or float32, shape [rows, dim], N = 0, 1, ... (numeric order)
 *   DIR/metadata/metadata_N.parquet    one row per embedding row, by position: `image_path`, maybe `caption`, ...
 *
 * readEmbeddingsDir turns the metadata into a Dataset (labels from the class folder of image_path, or a metadata
 * column, or a label file joined on image_path; splits likewise) and an EmbeddingsInput from which the evaluation
 * reads the rows (L2-normalised on read). A broken layout (a missing shard, row counts that differ between a .npy and
 * its parquet, widths that differ) is a ClipLensError naming the file; a row whose path gives no class is a dataset
 * problem naming shard and row; a row with NaN/Inf or zero norm is a per-sample error naming shard and row.
 *
 * EmbeddingsWriter writes the same layout (clip-lens embed --out). Parquet through hyparquet / hyparquet-writer
 * (pure JS, ESM: imported dynamically).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError, throwIfAborted } from './errors';
import { compareCodePoints, SPLIT_FOLDER_NAMES } from './dataset';
import { labelFileKind } from './datasetFormat';
import { parseLabelFile } from './labelFile';
import { halfValues, NPY_ITEM_SIZE, parseNpyHeader } from './probabilities';
import type { HalfRow } from './duplicates';
import type { Dataset, DatasetProblem, Sample } from './types';
import type { ClipModel } from './runtime';
import { makeDirectory } from './fileSystem';

export const EMBEDDINGS_FOLDER = 'img_emb';
export const METADATA_FOLDER = 'metadata';
/** Rows per shard written by EmbeddingsWriter unless told otherwise (clip-retrieval's default is similar). */
export const DEFAULT_SHARD_ROWS = 1_000_000;

export interface EmbeddingShard {
  /** N of img_emb_N.npy. */
  index: number;
  /** Paths relative to the embeddings folder, '/' separators (for messages). */
  npy: string;
  metadata: string;
  rows: number;
  /** Global row of this shard's first row. */
  firstRow: number;
  dtype: 'f2' | 'f4';
  dataOffset: number;
}

export interface EmbeddingsInput {
  /** The embeddings folder (absolute). */
  dir: string;
  shards: EmbeddingShard[];
  rows: number;
  dim: number;
  dtype: 'float16' | 'float32' | 'mixed';
  /** Global row -> sample index, -1 for a row that is not a sample (its path gave no class). */
  sampleOfRow: Int32Array;
  /** Sample index -> global row. */
  rowOfSample: Int32Array;
}

export interface ReadEmbeddingsOptions {
  /** A metadata column holding the label (default: the class folder of image_path). */
  labelColumn?: string;
  /** A metadata column holding the split (default: a train/val/test folder above the class folder). */
  splitColumn?: string;
  /** A CSV/TSV/JSONL label file joined on image_path (its image, label and split columns). */
  labelFile?: string;
  imageColumn?: string;
  signal?: AbortSignal;
}

/** True when `dir` holds an `img_emb/` folder (clip-retrieval output). */
export function isEmbeddingsDir(dir: string): boolean {
  try {
    return fs.statSync(path.join(dir, EMBEDDINGS_FOLDER)).isDirectory();
  } catch {
    return false;
  }
}

type Hyparquet = typeof import('hyparquet', { with: { 'resolution-mode': 'import' } });
let hyparquet: Promise<Hyparquet> | undefined;
function loadHyparquet(): Promise<Hyparquet> {
  return (hyparquet ??= import('hyparquet'));
}

async function listNumbered(dir: string, re: RegExp, what: string, shown: string): Promise<Map<number, string>> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    throw new ClipLensError('embeddings-missing', `no ${what} folder (expected clip-retrieval output: img_emb/img_emb_N.npy and metadata/metadata_N.parquet)`, { file: shown });
  }
  const out = new Map<number, string>();
  for (const name of names) {
    const m = re.exec(name);
    if (m) out.set(Number(m[1]), name);
  }
  return out;
}

/** Reads the layout and the metadata of a clip-retrieval folder (the embeddings themselves are read later). */
export async function readEmbeddingsDir(dirGiven: string, options: ReadEmbeddingsOptions = {}): Promise<{ dataset: Dataset; input: EmbeddingsInput }> {
  const dir = path.resolve(dirGiven);
  const npys = await listNumbered(path.join(dir, EMBEDDINGS_FOLDER), /^img_emb_(\d+)\.npy$/, EMBEDDINGS_FOLDER, path.join(dir, EMBEDDINGS_FOLDER));
  const metas = await listNumbered(path.join(dir, METADATA_FOLDER), /^metadata_(\d+)\.parquet$/, METADATA_FOLDER, path.join(dir, METADATA_FOLDER));
  if (npys.size === 0) throw new ClipLensError('embeddings-missing', 'no img_emb_N.npy shard', { file: path.join(dir, EMBEDDINGS_FOLDER) });
  const last = Math.max(...npys.keys(), ...metas.keys());
  for (let n = 0; n <= last; n++) {
    if (!npys.has(n)) throw new ClipLensError('embeddings-missing-shard', `missing shard ${n}${metas.has(n) ? ` (metadata/metadata_${n}.parquet has no embeddings)` : ''}: shards must be numbered 0..${last} without gaps`, { file: path.join(dir, EMBEDDINGS_FOLDER, `img_emb_${n}.npy`) });
    if (!metas.has(n)) throw new ClipLensError('embeddings-missing-shard', `missing metadata of shard ${n} (img_emb/img_emb_${n}.npy has no metadata)`, { file: path.join(dir, METADATA_FOLDER, `metadata_${n}.parquet`) });
  }
  const { parquetMetadataAsync, parquetRead } = await loadHyparquet();
  const shards: EmbeddingShard[] = [];
  const wanted = [...new Set(['image_path', options.labelColumn, options.splitColumn].filter((c): c is string => c !== undefined))];
  // The metadata as columns (one array per wanted column, every shard's rows in order): no object per row.
  const columns = new Map<string, unknown[]>(wanted.map((c) => [c, []]));
  let dim = -1;
  let firstRow = 0;
  const dtypes = new Set<string>();
  for (let n = 0; n <= last; n++) {
    throwIfAborted(options.signal);
    const npyRel = `${EMBEDDINGS_FOLDER}/${npys.get(n)}`;
    const metaRel = `${METADATA_FOLDER}/${metas.get(n)}`;
    const npyAbs = path.join(dir, npyRel);
    const { header, size } = await readNpyHead(npyAbs);
    if ((header.dtype !== 'f2' && header.dtype !== 'f4') || header.shape.length !== 2) {
      throw new ClipLensError('embeddings-bad-shard', `expected a float16 or float32 array of shape (rows, dim), found ${header.dtype} of shape (${header.shape.join(', ')})`, { file: npyAbs });
    }
    const [rows, width] = header.shape as [number, number];
    if (size < header.dataOffset + rows * width * NPY_ITEM_SIZE[header.dtype]) throw new ClipLensError('embeddings-bad-shard', `truncated: expected ${rows} rows of ${width}`, { file: npyAbs });
    if (dim === -1) dim = width;
    else if (width !== dim) throw new ClipLensError('embeddings-width', `width ${width}, but ${shards[0]?.npy} has width ${dim}: every shard must come from the same model`, { file: npyAbs });
    const metaAbs = path.join(dir, metaRel);
    try {
      const buf = await fs.promises.readFile(metaAbs);
      const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
      const metadata = await parquetMetadataAsync(file);
      const names = metadata.schema.slice(1).map((s) => s.name);
      for (const c of wanted) if (!names.includes(c)) throw new ClipLensError('embeddings-bad-metadata', `no column '${c}' (columns: ${names.join(', ')})`, { file: metaAbs });
      const metaRows = Number(metadata.num_rows);
      if (metaRows !== rows) {
        throw new ClipLensError('embeddings-row-mismatch', `${metaRows} metadata rows, but ${npyRel} has ${rows} embedding rows: rows are matched by position`, { file: metaAbs });
      }
      const shardColumns = new Map<string, unknown[]>(wanted.map((c) => [c, new Array<unknown>(rows)]));
      await parquetRead({
        file,
        metadata,
        columns: wanted,
        onChunk: ({ columnName, columnData, rowStart }) => {
          const into = shardColumns.get(columnName);
          if (!into) return;
          const len = Math.min(columnData.length, rows - rowStart);
          for (let j = 0; j < len; j++) into[rowStart + j] = columnData[j];
        },
      });
      for (const [c, values] of shardColumns) {
        const all = columns.get(c) as unknown[];
        for (let j = 0; j < rows; j++) all.push(values[j] ?? null);
      }
    } catch (e) {
      if (e instanceof ClipLensError) throw e;
      throw new ClipLensError('embeddings-bad-metadata', `cannot read parquet: ${(e as Error).message}`, { file: metaAbs });
    }
    dtypes.add(header.dtype);
    shards.push({ index: n, npy: npyRel, metadata: metaRel, rows, firstRow, dtype: header.dtype, dataOffset: header.dataOffset });
    firstRow += rows;
  }
  const { dataset, sampleOfRow } = await datasetFromMetadata(dir, shards, columns, options);
  const rowOfSample = new Int32Array(dataset.samples.length);
  sampleOfRow.forEach((s, row) => {
    if (s >= 0) rowOfSample[s] = row;
  });
  const dtype = dtypes.size > 1 ? 'mixed' : dtypes.has('f2') ? 'float16' : 'float32';
  return { dataset, input: { dir, shards, rows: firstRow, dim, dtype, sampleOfRow, rowOfSample } };
}

async function readNpyHead(file: string): Promise<{ header: ReturnType<typeof parseNpyHeader>; size: number }> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (e) {
    throw new ClipLensError('embeddings-bad-shard', `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  try {
    const head = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const size = (await handle.stat()).size;
    try {
      return { header: parseNpyHeader(head.subarray(0, bytesRead), file), size };
    } catch (e) {
      throw new ClipLensError('embeddings-bad-shard', (e as ClipLensError).message.replace(/^.*?: /, ''), { file });
    }
  } finally {
    await handle.close();
  }
}

/** Shard and row of a global row, for messages: "img_emb/img_emb_1.npy row 7". */
export function rowLocation(shards: readonly EmbeddingShard[], row: number): { shard: EmbeddingShard; row: number } {
  let lo = 0;
  let hi = shards.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((shards[mid] as EmbeddingShard).firstRow <= row) lo = mid;
    else hi = mid - 1;
  }
  const shard = shards[lo] as EmbeddingShard;
  return { shard, row: row - shard.firstRow };
}

function toPosix(p: string): string {
  return p.replace(/\\/g, '/');
}

/** The longest common folder of absolute POSIX folders. */
function commonFolder(folders: Iterable<string>): string {
  let common: string[] | undefined;
  for (const f of folders) {
    const parts = f.split('/');
    if (!common) common = parts;
    else {
      let i = 0;
      while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
      common = common.slice(0, i);
    }
  }
  const joined = (common ?? ['']).join('/');
  return joined === '' ? '/' : joined;
}

/** An absolute POSIX path that path.posix.normalize would change (empty, '.' or '..' segments). */
const NOT_NORMAL = /\/\/|\/\.\.?(\/|$)|\/$/;

/** The metadata's columns (image_path, and the label and split columns when named), one value per row. */
type MetadataColumns = Map<string, unknown[]>;

async function datasetFromMetadata(
  dir: string,
  shards: EmbeddingShard[],
  columns: MetadataColumns,
  options: ReadEmbeddingsOptions,
): Promise<{ dataset: Dataset; sampleOfRow: Int32Array }> {
  const problems: DatasetProblem[] = [];
  const imagePaths = columns.get('image_path') as unknown[];
  const n = imagePaths.length;
  const column = (name: string | undefined) => (name === undefined ? undefined : columns.get(name));
  // Relative image paths are taken relative to the folder holding the embeddings folder (where clip-retrieval ran).
  const base = toPosix(path.dirname(dir));
  const rowProblem = (row: number, code: string, message: string) => {
    const loc = rowLocation(shards, row);
    problems.push({ code, message: `row ${loc.row}: ${message}`, file: `${path.basename(dir)}/${loc.shard.metadata}` });
  };
  /** Absolute POSIX path of each row (null: no image_path). */
  const abs: (string | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = imagePaths[i];
    const t = typeof v === 'string' ? v.trim() : '';
    if (t === '') {
      rowProblem(i, 'embeddings-no-path', 'no image_path');
      abs[i] = null;
      continue;
    }
    const p = t.includes('\\') ? toPosix(t) : t;
    const absolute = p.charCodeAt(0) === 47 /* / */ || /^[a-zA-Z]:\//.test(p);
    const joined = absolute ? p : `${base === '/' ? '' : base}/${p}`;
    abs[i] = NOT_NORMAL.test(joined) || (!absolute && p.startsWith('./')) ? (absolute ? path.posix.normalize(p) : path.posix.join(base, p)) : joined;
  }

  // Class and split names are interned: one string per name, not one per row.
  const names = new Map<string, string>();
  const intern = (s: string) => {
    const known = names.get(s);
    if (known !== undefined) return known;
    names.set(s, s);
    return s;
  };
  const labelOf: (string | null)[] = new Array(n).fill(null);
  const splitOf: (string | undefined)[] = new Array(n);
  /** Where each row's base folder (the folder above its class folder, or above its split folder) ends in abs. */
  const baseEnd = new Int32Array(n);
  const splitColumn = column(options.splitColumn);
  const splitFromColumn = (i: number): string | undefined => {
    const v = splitColumn?.[i];
    const s = v === null || v === undefined ? '' : String(v).trim();
    return s ? intern(s) : undefined;
  };

  let byFile: Map<string, { label: string; split?: string }> | undefined;
  let labelFileAbs: string | undefined;
  if (options.labelFile !== undefined) {
    labelFileAbs = path.resolve(options.labelFile);
    const kind = labelFileKind(labelFileAbs);
    if (!kind) throw new ClipLensError('label-file-unsupported', 'not a CSV, TSV or JSONL label file', { file: labelFileAbs });
    let text: string;
    try {
      text = await fs.promises.readFile(labelFileAbs, 'utf8');
    } catch (e) {
      throw new ClipLensError('label-file-unreadable', `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: labelFileAbs });
    }
    const parsed = parseLabelFile(text, kind, labelFileAbs, { imageColumn: options.imageColumn, labelColumn: options.labelColumn, splitColumn: options.splitColumn });
    problems.push(...parsed.problems);
    byFile = new Map();
    const fileBase = toPosix(path.dirname(labelFileAbs));
    for (const e of parsed.entries) {
      const entry = { label: intern(e.label), ...(e.split !== undefined ? { split: intern(e.split) } : {}) };
      const p = toPosix(e.image);
      byFile.set(p, entry);
      byFile.set(/^([a-zA-Z]:)?\//.test(p) ? path.posix.normalize(p) : path.posix.join(fileBase, p), entry);
    }
  }

  let format: Dataset['format'] = 'class-folders';
  if (byFile || options.labelColumn !== undefined) {
    format = 'label-file';
    const labelColumn = column(options.labelColumn);
    for (let i = 0; i < n; i++) {
      const a = abs[i];
      if (a === null || a === undefined) continue;
      let label: string | undefined;
      let split: string | undefined;
      if (byFile) {
        const written = toPosix(String(imagePaths[i]).trim());
        const hit = byFile.get(written) ?? byFile.get(a);
        if (!hit) {
          rowProblem(i, 'embeddings-no-label', `${written} is not in ${path.basename(labelFileAbs as string)}`);
          continue;
        }
        label = hit.label;
        split = hit.split;
      } else {
        const v = labelColumn?.[i];
        label = v === null || v === undefined ? undefined : String(v).trim();
        if (!label) {
          rowProblem(i, 'embeddings-no-label', `no label in column '${options.labelColumn}'`);
          continue;
        }
        label = intern(label);
        split = splitFromColumn(i);
      }
      labelOf[i] = label;
      splitOf[i] = split;
      const slash = a.lastIndexOf('/');
      baseEnd[i] = slash <= 0 ? -1 : slash;
    }
  } else {
    // The class folder of each path ('/' + class + '/' + file at least: a file directly in / or a relative path
    // without a folder gives no class), and a split level above it when every such folder is a split name.
    const classEnd = new Int32Array(n).fill(-1);
    const classStart = new Int32Array(n);
    const splitStart = new Int32Array(n).fill(-1);
    let parsedAny = false;
    let splitLevel = true;
    for (let i = 0; i < n; i++) {
      const a = abs[i];
      if (a === null || a === undefined) continue;
      const l = a.lastIndexOf('/');
      const l2 = l > 0 ? a.lastIndexOf('/', l - 1) : -1;
      if (l2 < 0 || l2 === l - 1) {
        rowProblem(i, 'embeddings-no-class', `${String(imagePaths[i])} has no class folder`);
        continue;
      }
      parsedAny = true;
      classEnd[i] = l;
      classStart[i] = l2 + 1;
      const l3 = l2 > 0 ? a.lastIndexOf('/', l2 - 1) : -1;
      splitStart[i] = l3 < 0 ? -1 : l3 + 1;
      if (splitLevel && (l3 < 0 || !SPLIT_FOLDER_NAMES.has(a.slice(l3 + 1, l2).toLowerCase()))) splitLevel = false;
    }
    splitLevel &&= parsedAny;
    if (splitLevel) format = 'class-folders-split';
    for (let i = 0; i < n; i++) {
      const end = classEnd[i] as number;
      if (end < 0) continue;
      const a = abs[i] as string;
      const start = classStart[i] as number;
      labelOf[i] = intern(a.slice(start, end));
      let split = splitLevel ? intern(a.slice(splitStart[i] as number, start - 1)) : undefined;
      if (splitColumn) split = splitFromColumn(i) ?? split;
      splitOf[i] = split;
      baseEnd[i] = splitLevel ? (splitStart[i] as number) - 1 : start - 1;
    }
  }

  // The dataset root: the longest common folder of the base folders (a few distinct ones, not one per row).
  const baseFolders = new Set<string>();
  for (let i = 0; i < n; i++) {
    if (labelOf[i] === null) continue;
    const end = baseEnd[i] as number;
    baseFolders.add(end <= 0 ? '/' : (abs[i] as string).slice(0, end));
  }
  const root = commonFolder(baseFolders);
  const prefix = root === '/' ? '/' : `${root}/`;
  const sampleOfRow = new Int32Array(n).fill(-1);
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const label = labelOf[i];
    if (label === null || label === undefined) continue;
    sampleOfRow[i] = samples.length;
    const a = abs[i] as string;
    const rel = ownCopy(a.startsWith(prefix) ? a.slice(prefix.length) : path.posix.relative(root, a));
    const split = splitOf[i];
    samples.push(split !== undefined ? { path: rel, label, split } : { path: rel, label });
  }
  const classes = [...new Set(labelOf.filter((l): l is string => l !== null))].sort(compareCodePoints);
  if (samples.length === 0) throw new ClipLensError('dataset-empty', `no row of the metadata gives a labelled image${problems[0] ? ` (${problems[0].file}: ${problems[0].message})` : ''}`, { file: dir });
  return {
    dataset: { root: path.resolve(root), format, ...(labelFileAbs ? { labelFile: labelFileAbs } : {}), classes, samples, problems },
    sampleOfRow,
  };
}

/** Rows read per chunk when streaming a shard (about 8 MB). */
const CHUNK_BYTES = 8 << 20;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Typed views of rows read into `buf` (byteOffset 0: Buffer.alloc of a whole buffer), in host order. .npy data is
 * little-endian: a big-endian host swaps the bytes first.
 */
function rowsView(buf: Buffer, bytes: number, dtype: 'f2' | 'f4'): Uint16Array | Float32Array {
  const used = buf.subarray(0, bytes);
  if (!LITTLE_ENDIAN) {
    if (dtype === 'f2') used.swap16();
    else used.swap32();
  }
  return dtype === 'f2' ? new Uint16Array(buf.buffer, buf.byteOffset, bytes >> 1) : new Float32Array(buf.buffer, buf.byteOffset, bytes >> 2);
}

/**
 * The float16 row starting at element `start` of `src` as `half`: its bit patterns and the scale that L2-normalises
 * it (the row is fround(half[j] * scale)), so that EmbeddingRows keeps it in 2 bytes a value without a float32 copy
 * ever being made; returns why it cannot be used, or null.
 */
function halfRowOf(src: Uint16Array, start: number, half: HalfRow): string | null {
  const table = halfValues();
  const bits = half.bits;
  const dim = bits.length;
  let sq = 0;
  for (let j = 0; j < dim; j++) {
    const h = src[start + j] as number;
    bits[j] = h;
    const v = table[h] as number;
    sq += v * v;
  }
  const why = normError(sq);
  if (why) return why;
  half.scale = halfRowScale(sq);
  half.exact = true;
  return null;
}

/**
 * Decodes the row starting at element `start` of `src` (float16 bits or float32 values) into `out` (float32) and
 * L2-normalises it (a float16 row: out[j] = fround(half[j] * scale), as {@link halfRowOf} gives it); returns why it
 * cannot be used, or null.
 */
function decodeRow(src: Uint16Array | Float32Array, start: number, out: Float32Array): string | null {
  const dim = out.length;
  let sq = 0;
  if (src instanceof Uint16Array) {
    const table = halfValues();
    for (let j = 0; j < dim; j++) {
      const v = table[src[start + j] as number] as number;
      out[j] = v;
      sq += v * v;
    }
  } else {
    for (let j = 0; j < dim; j++) {
      const v = src[start + j] as number;
      out[j] = v;
      sq += v * v;
    }
  }
  const why = normError(sq);
  if (why) return why;
  const inv = src instanceof Uint16Array ? halfRowScale(sq) : 1 / Math.sqrt(sq);
  for (let j = 0; j < dim; j++) out[j] = (out[j] as number) * inv;
  return null;
}

/**
 * The normalising scale of a float16 row of squared norm `sq`: 1 / sqrt(sq) rounded to float32, so that a value
 * fround(half * scale) is also the float32 product Cast(half) * scale, and ONNX Runtime can take the rows as float16
 * with their scales (EmbeddingRows.copyHalfRows) and give the same values as the rows decoded here.
 */
function halfRowScale(sq: number): number {
  return Math.fround(1 / Math.sqrt(sq));
}

/**
 * A string with characters of its own. V8 makes a slice of 13 or more characters a view of the whole string, so a
 * relative path sliced from a resolved one kept that one alive too: at a million samples about 60 MiB of heap. The
 * JSON round trip is exact for every string (lone surrogates included) and about 0.25 us a path.
 */
function ownCopy(s: string): string {
  return s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string);
}

/** Why a row of squared norm `sq` takes no part, or null. */
function normError(sq: number): string | null {
  if (!Number.isFinite(sq)) return 'the embedding holds NaN or infinite values';
  if (sq === 0) return 'the embedding is all zeros';
  return null;
}

function rowError(input: EmbeddingsInput, row: number, why: string): ClipLensError {
  const loc = rowLocation(input.shards, row);
  return new ClipLensError('embeddings-bad-row', `${loc.shard.npy} row ${loc.row}: ${why}; the row takes no part`);
}

/**
 * Streams every row that is a sample, in order: `onRow(sampleIndex, embedding, half)` (L2-normalised, valid during the
 * call: a float32 shard's row as `embedding`; a float16 shard's row as `half` alone, its float16 patterns and the scale
 * that normalises it, with `embedding` null: EmbeddingRows.set keeps it as it is, and decoding a million rows that
 * nobody reads as float32 cost the reader about 1.5 s) or `onBad(sampleIndex, error)` for a row with NaN/Inf or zero
 * norm.
 */
export async function forEachEmbedding(
  input: EmbeddingsInput,
  onRow: (sample: number, embedding: Float32Array | null, half?: HalfRow) => void,
  onBad: (sample: number, error: ClipLensError) => void,
  signal?: AbortSignal,
  onChunk?: () => void,
): Promise<void> {
  const out = new Float32Array(input.dim);
  const half: HalfRow = { bits: new Uint16Array(input.dim), scale: 1, exact: false };
  for (const shard of input.shards) {
    const rowBytes = input.dim * NPY_ITEM_SIZE[shard.dtype];
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    // Buffer.alloc of this size is never from the shared pool: byteOffset 0, so rows are aligned for typed views.
    const buf = Buffer.alloc(Math.min(perChunk, Math.max(1, shard.rows)) * rowBytes);
    const handle = await fs.promises.open(path.join(input.dir, shard.npy), 'r');
    try {
      for (let start = 0; start < shard.rows; start += perChunk) {
        throwIfAborted(signal);
        const n = Math.min(perChunk, shard.rows - start);
        const got = (await handle.read(buf, 0, n * rowBytes, shard.dataOffset + start * rowBytes)).bytesRead;
        if (got !== n * rowBytes) throw new ClipLensError('embeddings-bad-shard', `truncated: expected ${shard.rows} rows`, { file: path.join(input.dir, shard.npy) });
        const view = rowsView(buf, got, shard.dtype);
        for (let r = 0; r < n; r++) {
          const row = shard.firstRow + start + r;
          const sample = input.sampleOfRow[row] as number;
          if (sample < 0) continue;
          const why = view instanceof Uint16Array ? halfRowOf(view, r * input.dim, half) : decodeRow(view, r * input.dim, out);
          if (why) onBad(sample, rowError(input, row, why));
          else if (view instanceof Uint16Array) onRow(sample, null, half);
          else onRow(sample, out);
        }
        onChunk?.();
      }
    } finally {
      await handle.close();
    }
  }
}

/** The L2-normalised embeddings of some samples (null for a row with NaN/Inf or zero norm). */
export async function readSampleEmbeddings(input: EmbeddingsInput, samples: readonly number[]): Promise<(Float32Array | null)[]> {
  const out: (Float32Array | null)[] = [];
  for (const s of samples) {
    const row = input.rowOfSample[s] as number;
    const { shard, row: r } = rowLocation(input.shards, row);
    const rowBytes = input.dim * NPY_ITEM_SIZE[shard.dtype];
    const buf = Buffer.alloc(rowBytes);
    const handle = await fs.promises.open(path.join(input.dir, shard.npy), 'r');
    try {
      await handle.read(buf, 0, rowBytes, shard.dataOffset + r * rowBytes);
    } finally {
      await handle.close();
    }
    const e = new Float32Array(input.dim);
    out.push(decodeRow(rowsView(buf, rowBytes, shard.dtype), 0, e) ? null : e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing (clip-lens embed --out)

/** A .npy v1 header for float32 [rows, dim], padded to a fixed 128 bytes so that rows can be filled in afterwards. */
function npyHeader(rows: number, dim: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const total = 128;
  const pad = total - 10 - dict.length - 1;
  const buf = Buffer.alloc(total);
  buf.writeUInt8(0x93, 0);
  buf.write('NUMPY', 1, 'latin1');
  buf.writeUInt8(1, 6);
  buf.writeUInt8(0, 7);
  buf.writeUInt16LE(total - 10, 8);
  buf.write(dict + ' '.repeat(pad) + '\n', 10, 'latin1');
  return buf;
}

/**
 * Writes embeddings in clip-retrieval's layout: img_emb/img_emb_N.npy (float32) and metadata/metadata_N.parquet
 * (image_path), a new shard every `shardRows` rows. The folder must not already hold shards.
 */
export class EmbeddingsWriter {
  private shard = 0;
  private rows = 0;
  private paths: string[] = [];
  private handle: fs.promises.FileHandle | null = null;
  private dim = -1;
  private written = 0;

  private constructor(
    readonly dir: string,
    private readonly shardRows: number,
  ) {}

  static async create(dir: string, shardRows = DEFAULT_SHARD_ROWS): Promise<EmbeddingsWriter> {
    const abs = path.resolve(dir);
    for (const sub of [EMBEDDINGS_FOLDER, METADATA_FOLDER]) {
      const existing = await fs.promises.readdir(path.join(abs, sub)).catch(() => [] as string[]);
      if (existing.some((n) => /^(img_emb|metadata)_\d+\./.test(n))) throw new ClipLensError('embeddings-exists', `already holds ${sub}/ shards: write to a new folder`, { file: abs });
      await makeDirectory(path.join(abs, sub));
    }
    await loadHyparquet();
    return new EmbeddingsWriter(abs, Math.max(1, shardRows));
  }

  /** Total rows written so far. */
  get count(): number {
    return this.written;
  }

  async add(imagePath: string, embedding: Float32Array): Promise<void> {
    if (this.dim === -1) this.dim = embedding.length;
    if (!this.handle) {
      this.handle = await fs.promises.open(path.join(this.dir, EMBEDDINGS_FOLDER, `img_emb_${this.shard}.npy`), 'w');
      await this.handle.write(npyHeader(0, this.dim), 0, 128, 0);
    }
    const bytes = Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength);
    await this.handle.write(bytes, 0, bytes.length, 128 + this.rows * this.dim * 4);
    this.paths.push(imagePath);
    this.rows++;
    this.written++;
    if (this.rows >= this.shardRows) await this.closeShard();
  }

  private async closeShard(): Promise<void> {
    if (!this.handle) return;
    await this.handle.write(npyHeader(this.rows, this.dim), 0, 128, 0);
    await this.handle.close();
    this.handle = null;
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const buf = parquetWriteBuffer({ columnData: [{ name: 'image_path', data: this.paths, type: 'STRING' }] });
    await fs.promises.writeFile(path.join(this.dir, METADATA_FOLDER, `metadata_${this.shard}.parquet`), Buffer.from(buf));
    this.shard++;
    this.rows = 0;
    this.paths = [];
  }

  /** Finishes the last shard; returns the shard count. */
  async close(): Promise<number> {
    await this.closeShard();
    return this.shard;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Checking outside embeddings against the model

/** Below this mean or minimum cosine to the local embeddings, the given embeddings are refused. */
export const VERIFY_MIN_COSINE = 0.99;
/** Images embedded locally by default (--verify N). */
export const DEFAULT_VERIFY = 16;

export interface EmbeddingsVerification {
  n: number;
  meanCosine: number;
  minCosine: number;
  worstPath: string;
}

/** The model's embedding width (one prompt through the text tower) must be the shards'. */
export async function checkEmbeddingWidth(model: ClipModel, input: EmbeddingsInput, modelId: string): Promise<void> {
  const { dim } = await model.embedTexts(['a photo.']);
  if (dim !== input.dim) {
    const first = input.shards[0] as EmbeddingShard;
    throw new ClipLensError(
      'embeddings-width',
      `embeddings of width ${input.dim}, but model '${modelId}' embeds to ${dim}: these embeddings come from another model (pass it with --model)`,
      { file: path.join(input.dir, first.npy) },
    );
  }
}

/**
 * Embeds `n` of the dataset's images (spread over it) with the model's vision tower and compares them with the given
 * embeddings. Undefined (with why) when no chosen image is on disk. Throws 'embeddings-mismatch' below
 * VERIFY_MIN_COSINE.
 */
export async function verifyEmbeddings(
  model: ClipModel,
  dataset: Dataset,
  input: EmbeddingsInput,
  n: number,
  signal?: AbortSignal,
): Promise<{ verified: EmbeddingsVerification } | { skipped: string }> {
  const { sampleIndices } = await import('./precision.js');
  const chosen = sampleIndices(dataset.samples.length, n);
  const pre = model.preprocessor;
  const per = 3 * pre.outputHeight * pre.outputWidth;
  const given = await readSampleEmbeddings(input, chosen);
  const ok: number[] = [];
  const pixels = new Float32Array(chosen.length * per);
  let missing: string | undefined;
  for (let j = 0; j < chosen.length; j++) {
    throwIfAborted(signal);
    const s = dataset.samples[chosen[j] as number] as Sample;
    if (!given[j]) continue;
    const file = path.join(dataset.root, s.path);
    if (!fs.existsSync(file)) {
      missing ??= file;
      continue;
    }
    try {
      await pre.preprocess(file, pixels, ok.length * per);
      ok.push(j);
    } catch {
      // an unreadable image takes no part in the check
    }
  }
  if (ok.length === 0) return { skipped: missing ? `the images are not on disk (${missing})` : 'no image of the sample could be read' };
  const { embeddings, dim } = await model.embedImages(pixels.slice(0, ok.length * per), ok.length);
  let sum = 0;
  let min = Infinity;
  let worst = 0;
  ok.forEach((j, r) => {
    const g = given[j] as Float32Array;
    let c = 0;
    for (let d = 0; d < dim; d++) c += (g[d] as number) * (embeddings[r * dim + d] as number);
    sum += c;
    if (c < min) {
      min = c;
      worst = j;
    }
  });
  const verified = { n: ok.length, meanCosine: sum / ok.length, minCosine: min, worstPath: (dataset.samples[chosen[worst] as number] as Sample).path };
  if (verified.minCosine < VERIFY_MIN_COSINE) {
    const loc = rowLocation(input.shards, input.rowOfSample[chosen[worst] as number] as number);
    throw new ClipLensError(
      'embeddings-mismatch',
      `the given embeddings do not match the model's: cosine ${verified.minCosine.toFixed(4)} for ${verified.worstPath} (${loc.shard.npy} row ${loc.row}; mean ${verified.meanCosine.toFixed(4)} over ${verified.n} images, ${VERIFY_MIN_COSINE} needed). ` +
        'Likely another checkpoint (clip-retrieval --clip_model must be the same model as --model) or another preprocessing (resize/crop); --verify 0 skips this check',
      { file: input.dir },
    );
  }
  return { verified };
}
