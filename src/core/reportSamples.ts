/**
 * The per-sample part of a report and the one way to read it.
 *
 * A report's samples live either inline (`samples` in the JSON, as before) or in a columnar sidecar next to it
 * (`"samplesFile": "report.samples.parquet"`, relative to the report; Parquet through hyparquet / hyparquet-writer).
 * Everything that reads samples (compare, baselines, the trees, the panel host, hovers, fixes) goes through
 * {@link samplesOf}: a {@link SampleTable} over the inline array or over the sidecar's columns, one code path.
 *
 * With `--samples auto` (the default) samples stay inline up to {@link INLINE_SAMPLES_LIMIT} and the sidecar is written
 * in addition; above it they go only to the sidecar. `inline` keeps them inline at any size, `sidecar` never inline.
 *
 * The sidecar's columns: path, label, split, source_file, source_line, content_hash, error_code, error_message,
 * top_class_1..K (index into `dataset.classes`, -1 none), top_score_1..K, label_issue_rank (1 = most likely
 * mislabelled, 0 = not a label issue), label_issue_score (the issue's score, null when not one), label_issue_suggested
 * (index into `dataset.classes`, -1 none), probabilities (JSON, only with --probabilities). The label-issue columns
 * repeat the report's `labelIssues` per sample, so that a reader of the sidecar alone (pandas, DuckDB) can filter
 * and sort on them. Its key-value metadata `clip-lens.samples` holds {format, rows, classes, topK}; a sidecar whose
 * rows or classes do not match the report is refused, naming the file.
 *
 * In memory a sidecar table holds columns (typed arrays and interned strings), not a million objects: a sample is
 * made when asked for ({@link SampleTable.at}, {@link SampleTable.slice}).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from './errors';
import { makeDirectory } from './fileSystem';
import { memMark } from './memLog';
import { startWorkerScript } from './parallel';
import type { EvalReport, ReportSample } from './report';
import { attachSamples, newSampleColumns, SampleTable, samplesOf, type SampleColumns } from './sampleTable';

type ColumnSource = import('hyparquet-writer', { with: { 'resolution-mode': 'import' } }).ColumnSource;

export { attachSamples, SampleTable, samplesOf } from './sampleTable';

/** With `--samples auto`, reports of up to this many samples keep them inline (and get the sidecar as well). */
export const INLINE_SAMPLES_LIMIT = 50_000;
export type SamplesMode = 'inline' | 'sidecar' | 'auto';
export const SAMPLES_MODES: readonly SamplesMode[] = ['inline', 'sidecar', 'auto'];
/** Format tag in the sidecar's metadata. */
export const SAMPLES_FORMAT = 'clip-lens-samples/1';
const META_KEY = 'clip-lens.samples';

/** The sidecar of `reportFile`: `x.json` -> `x.samples.parquet`. */
export function sidecarFileOf(reportFile: string): string {
  const base = reportFile.endsWith('.json') ? reportFile.slice(0, -5) : reportFile;
  return `${base}.samples.parquet`;
}

/** Whether the samples of a report of `n` samples go inline under `mode`. */
export function samplesInline(mode: SamplesMode, n: number): boolean {
  return mode === 'inline' || (mode === 'auto' && n <= INLINE_SAMPLES_LIMIT);
}

// ---------------------------------------------------------------------------------------------------------------------
// Writing

/** Rows per row group of the sidecar (pages read by range touch one or two). */
const ROW_GROUP = 50_000;

/**
 * The UTF-8 bytes of each string (null stays null), as views of one buffer: one encoding pass for the column rather
 * than one TextEncoder call and one allocation of its own per value. Strings holding NUL (never a file path) are
 * encoded one by one.
 */
export function utf8Values(values: readonly (string | null)[]): (Uint8Array | null)[] {
  const present: string[] = [];
  for (const v of values) if (v !== null) present.push(v);
  const out: (Uint8Array | null)[] = new Array(values.length).fill(null);
  if (present.some((v) => v.includes('\0'))) {
    const encoder = new TextEncoder();
    values.forEach((v, i) => (out[i] = v === null ? null : encoder.encode(v)));
    return out;
  }
  const bytes = Buffer.from(present.join('\0'), 'utf8');
  let start = 0;
  for (let k = 0; k < values.length; k++) {
    if (values[k] === null) continue;
    let end = bytes.indexOf(0, start);
    if (end < 0) end = bytes.length;
    out[k] = bytes.subarray(start, end);
    start = end + 1;
  }
  return out;
}

/**
 * The sidecar's columns (structured-cloneable: {@link parquetOfColumns} may run on a worker thread). The samples are
 * either a sample table's own columns (a large evaluation's or a sidecar read: posted as they are, spread out into
 * the file's columns by {@link parquetOfColumns}) or those file columns already (from sample objects).
 */
export interface SidecarColumns {
  n: number;
  k: number;
  classes: number;
  samples: SampleColumns | SampleFileColumns;
  issueRank: Int32Array;
  issueScore: (number | null)[];
  issueSuggested: Int32Array;
  /** Set on some rows of a file (sidecarRows): whether the file has the probabilities column (else: whether a row has them). */
  probabilityColumn?: boolean;
}

/** Whether the file of these columns has the probabilities column. */
function probabilityColumn(columns: SidecarColumns): boolean {
  const c = columns.samples;
  return columns.probabilityColumn ?? ('labelNames' in c ? c.probabilities !== null && c.probabilities.size > 0 : c.probs !== null);
}

/** The per-sample columns of the file, one array each (a class column: indices into the report's classes). */
interface SampleFileColumns {
  paths: string[];
  labels: string[];
  splits: (string | null)[];
  srcFile: (string | null)[];
  srcLine: Int32Array;
  hashes: (string | null)[];
  errCode: (string | null)[];
  errMessage: (string | null)[];
  topClass: Int32Array[];
  topScore: Float64Array[];
  probs: (string | null)[] | null;
}

/** A sample table's columns spread out into the file's (see {@link SidecarColumns}). */
function fileColumnsOf(c: SampleColumns, n: number, k: number, withProbabilities: boolean): SampleFileColumns {
  const labels: string[] = new Array(n);
  const splits: (string | null)[] = new Array(n);
  const srcFile: (string | null)[] = new Array(n);
  const hashes: (string | null)[] = new Array(n);
  const errCode: (string | null)[] = new Array(n);
  const errMessage: (string | null)[] = new Array(n);
  const topClass = Array.from({ length: k }, () => new Int32Array(n).fill(-1));
  const topScore = Array.from({ length: k }, () => new Float64Array(n));
  let probs: (string | null)[] | null = null;
  for (let i = 0; i < n; i++) {
    labels[i] = c.labelNames[c.labels[i] as number] as string;
    const sp = c.splits[i] as number;
    splits[i] = sp >= 0 ? (c.splitNames[sp] as string) : null;
    const sf = c.sourceFile[i] as number;
    srcFile[i] = sf >= 0 ? (c.sourceFiles[sf] as string) : null;
    hashes[i] = c.hashes?.[i] ?? null;
    errCode[i] = null;
    errMessage[i] = null;
    for (let r = 0; r < k; r++) {
      (topClass[r] as Int32Array)[i] = c.topClass[i * k + r] as number;
      (topScore[r] as Float64Array)[i] = c.topScore[i * k + r] as number;
    }
  }
  for (const [i, e] of c.errors) {
    errCode[i] = e.code;
    errMessage[i] = e.message;
  }
  if (withProbabilities) {
    probs = new Array<string | null>(n).fill(null);
    for (const [i, json] of c.probabilities ?? []) probs[i] = json;
  }
  return { paths: c.paths, labels, splits, srcFile, srcLine: c.sourceLine, hashes, errCode, errMessage, topClass, topScore, probs };
}

/**
 * Rows r0 .. r1 - 1 of the sidecar's columns, copied (what a worker encoding them is posted: those rows only). Which
 * columns exist follows the whole (the probabilities' column, when any row has one), so that every part of one file
 * has the file's schema.
 */
export function sidecarRows(columns: SidecarColumns, r0: number, r1: number): SidecarColumns {
  const { k } = columns;
  const within = <V>(m: Map<number, V>) => new Map([...m].filter(([i]) => i >= r0 && i < r1).map(([i, v]) => [i - r0, v]));
  const c = columns.samples;
  let samples: SampleColumns | SampleFileColumns;
  if ('labelNames' in c) {
    samples = {
      ...c,
      n: r1 - r0,
      paths: c.paths.slice(r0, r1),
      labels: c.labels.slice(r0, r1),
      splits: c.splits.slice(r0, r1),
      sourceFile: c.sourceFile.slice(r0, r1),
      sourceLine: c.sourceLine.slice(r0, r1),
      hashes: c.hashes ? c.hashes.slice(r0, r1) : null,
      topClass: c.topClass.slice(r0 * k, r1 * k),
      topScore: c.topScore.slice(r0 * k, r1 * k),
      errors: within(c.errors),
      probabilities: c.probabilities ? within(c.probabilities) : null,
    };
  } else {
    const cut = <T>(a: T[]) => a.slice(r0, r1);
    samples = {
      paths: cut(c.paths),
      labels: cut(c.labels),
      splits: cut(c.splits),
      srcFile: cut(c.srcFile),
      srcLine: c.srcLine.slice(r0, r1),
      hashes: cut(c.hashes),
      errCode: cut(c.errCode),
      errMessage: cut(c.errMessage),
      topClass: c.topClass.map((a) => a.slice(r0, r1)),
      topScore: c.topScore.map((a) => a.slice(r0, r1)),
      probs: c.probs ? cut(c.probs) : null,
    };
  }
  return { ...columns, n: r1 - r0, samples, probabilityColumn: probabilityColumn(columns), issueRank: columns.issueRank.slice(r0, r1), issueScore: columns.issueScore.slice(r0, r1), issueSuggested: columns.issueSuggested.slice(r0, r1) };
}

/** Builds the sidecar of `report`'s samples (Parquet bytes). */
export async function samplesParquet(report: EvalReport): Promise<Uint8Array> {
  const columns = sidecarColumns(report);
  return columns.n >= SIDECAR_WORKER_MIN_ROWS ? parquetOnWorker(columns) : parquetOfColumns(columns);
}

/**
 * From this many samples on the sidecar is encoded on a worker thread (sidecarWorker.ts): at a million samples the
 * encoding takes about 3 s, which the extension host should not be blocked for, and which the CLI spends writing the
 * JSON meanwhile (cli/io.ts writeJsonReport).
 */
const SIDECAR_WORKER_MIN_ROWS = 100_000;

/** What a sidecar worker (sidecarWorker.ts) is posted: the columns to encode as a whole file, or as a part. */
export interface SidecarJob {
  columns: SidecarColumns;
  part?: boolean;
}

/**
 * {@link parquetOfColumns} on a worker thread of its own; on this thread when none can be started or it fails
 * (`fallback` false, for the tests: its error instead).
 */
export function parquetOnWorker(columns: SidecarColumns, fallback = true): Promise<Uint8Array> {
  return onSidecarWorker<Uint8Array>({ columns }, 'bytes', () => parquetOfColumns(columns), fallback);
}

/** {@link sidecarPart} on a worker thread of its own (as {@link parquetOnWorker}). */
export function partOnWorker(columns: SidecarColumns, fallback = true): Promise<SidecarPart> {
  return onSidecarWorker<SidecarPart>({ columns, part: true }, 'part', () => sidecarPart(columns), fallback);
}

/** `job` on a sidecar worker of its own, answered with `answer`; `here()` on this thread when the worker cannot help. */
async function onSidecarWorker<T>(job: SidecarJob, answer: 'bytes' | 'part', here: () => Promise<T>, fallback: boolean): Promise<T> {
  const w = startWorkerScript('sidecarWorker');
  if (!w) {
    if (!fallback) throw new Error('no sidecar worker script');
    return here();
  }
  try {
    return await new Promise<T>((resolve, reject) => {
      w.once('message', (m: { bytes?: Uint8Array; part?: SidecarPart; error?: string }) => (m[answer] ? resolve(m[answer] as T) : reject(new Error(m.error))));
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`the sidecar worker stopped (exit code ${code})`)));
      w.postMessage(job);
    });
  } catch (e) {
    if (!fallback) throw e;
    // The worker failed (it could not load, or ran out of memory): the same encoding here, whose error, if any, is
    // the one to report.
    return here();
  } finally {
    void w.terminate();
  }
}

/** The columns of `report`'s sidecar (see {@link SidecarColumns}); bad samples or label issues are errors. */
export function sidecarColumns(report: EvalReport): SidecarColumns {
  const table = samplesOf(report);
  const n = table.length;
  const classes = report.dataset.classes;
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const c = table.columns;
  // Columns already (a large evaluation's samples, or a sidecar read): handed on as they are, no object per row.
  const fromColumns = c !== undefined && c.classes.length === classes.length && c.classes.every((x, i) => x === classes[i]);
  const k = fromColumns ? c.k : Math.max(1, report.topK, ...[...Array(Math.min(n, 1000)).keys()].map((i) => table.at(i)?.predicted.length ?? 0));
  let samples: SampleColumns | SampleFileColumns;
  if (fromColumns) samples = c;
  else {
    const f: SampleFileColumns = {
      paths: new Array(n),
      labels: new Array(n),
      splits: new Array(n),
      srcFile: new Array(n),
      srcLine: new Int32Array(n),
      hashes: new Array(n),
      errCode: new Array(n),
      errMessage: new Array(n),
      topClass: Array.from({ length: k }, () => new Int32Array(n).fill(-1)),
      topScore: Array.from({ length: k }, () => new Float64Array(n)),
      probs: null,
    };
    for (let i = 0; i < n; i++) {
      const s = table.at(i) as ReportSample;
      f.paths[i] = s.path;
      f.labels[i] = s.label;
      f.splits[i] = s.split ?? null;
      f.srcFile[i] = s.source?.file ?? null;
      f.srcLine[i] = s.source?.line ?? 0;
      f.hashes[i] = s.contentHash ?? null;
      f.errCode[i] = s.error?.code ?? null;
      f.errMessage[i] = s.error?.message ?? null;
      if (s.predicted.length > k) throw new ClipLensError('report-samples-bad', `sample ${s.path} has ${s.predicted.length} predictions, more than topK ${k}`);
      s.predicted.forEach((p, r) => {
        const ci = classIndex.get(p.class);
        if (ci === undefined) throw new ClipLensError('report-samples-bad', `sample ${s.path} predicts '${p.class}', not a class of the report`);
        (f.topClass[r] as Int32Array)[i] = ci;
        (f.topScore[r] as Float64Array)[i] = p.score;
      });
      if (s.probabilities) (f.probs ??= new Array<string | null>(n).fill(null))[i] = JSON.stringify(s.probabilities);
    }
    samples = f;
  }
  const issueRank = new Int32Array(n);
  const issueScore: (number | null)[] = new Array(n).fill(null);
  const issueSuggested = new Int32Array(n).fill(-1);
  for (const li of report.labelIssues) {
    if (!(li.index >= 0 && li.index < n)) throw new ClipLensError('report-samples-bad', `label issue ${li.rank} names sample ${li.index}, not one of the ${n} samples`);
    issueRank[li.index] = li.rank;
    issueScore[li.index] = li.score;
    issueSuggested[li.index] = classIndex.get(li.suggested) ?? -1;
  }
  return { n, k, classes: classes.length, samples, issueRank, issueScore, issueSuggested };
}

type HyparquetWriter = typeof import('hyparquet-writer', { with: { 'resolution-mode': 'import' } });
type ParquetWriterOf = InstanceType<HyparquetWriter['ParquetWriter']>;

/** The file's schema and its columns' data for the rows of `columns` (see {@link parquetOfColumns}). */
function fileColumnData(w: HyparquetWriter, columns: SidecarColumns): { schema: ReturnType<HyparquetWriter['schemaFromColumnData']>; columnData: ColumnSource[] } {
  const { n, k, issueRank, issueScore, issueSuggested } = columns;
  const { paths, labels, splits, srcFile, srcLine, hashes, errCode, errMessage, topClass, topScore, probs } = 'labelNames' in columns.samples ? fileColumnsOf(columns.samples, n, k, probabilityColumn(columns)) : columns.samples;
  // Encodings chosen per column (no guessing over a million values): paths and hashes are unique (plain, their UTF-8
  // bytes made in one go); label, split and source file have few distinct values (dictionary); class indices repeat
  // (dictionary); scores are plain and not compressed (random doubles: Snappy only costs time). No statistics: nothing
  // filters on them, and they cost a pass and a comparison per value and column.
  const typed: ColumnSource[] = [
    { name: 'path', data: paths, type: 'STRING', nullable: false, encoding: 'PLAIN' },
    { name: 'label', data: labels, type: 'STRING', nullable: false, encoding: 'RLE_DICTIONARY' },
    { name: 'split', data: splits, type: 'STRING', encoding: 'RLE_DICTIONARY' },
    { name: 'source_file', data: srcFile, type: 'STRING', encoding: 'RLE_DICTIONARY' },
    { name: 'source_line', data: srcLine, type: 'INT32', nullable: false },
    { name: 'content_hash', data: hashes, type: 'STRING', encoding: 'PLAIN' },
    { name: 'error_code', data: errCode, type: 'STRING' },
    { name: 'error_message', data: errMessage, type: 'STRING' },
    ...topClass.map((data, r): ColumnSource => ({ name: `top_class_${r + 1}`, data, type: 'INT32', nullable: false, encoding: 'RLE_DICTIONARY' })),
    ...topScore.map((data, r): ColumnSource => ({ name: `top_score_${r + 1}`, data, type: 'DOUBLE', nullable: false, encoding: 'PLAIN', codec: 'UNCOMPRESSED' })),
    { name: 'label_issue_rank', data: issueRank, type: 'INT32', nullable: false },
    { name: 'label_issue_score', data: issueScore, type: 'DOUBLE', encoding: 'PLAIN', codec: 'UNCOMPRESSED' },
    { name: 'label_issue_suggested', data: issueSuggested, type: 'INT32', nullable: false, encoding: 'RLE_DICTIONARY' },
    ...(probs ? [{ name: 'probabilities', data: probs, type: 'JSON' as const }] : []),
  ];
  // The schema from the types (UTF-8 strings stay annotated as such), then the unique string columns handed over as
  // their bytes (a schema and column types cannot both be given).
  const schema = w.schemaFromColumnData({ columnData: typed });
  const columnData = typed.map(({ type: _t, nullable: _n, ...c }) => (c.name === 'path' || c.name === 'content_hash' ? { ...c, data: utf8Values(c.data as (string | null)[]) } : c));
  return { schema, columnData };
}

/** A writer of the sidecar file (`meta`: the whole file's; null for a part), its 4-byte head written. */
function sidecarWriter(w: HyparquetWriter, schema: ReturnType<HyparquetWriter['schemaFromColumnData']>, meta: { rows: number; classes: number; topK: number } | null, size?: number): { writer: InstanceType<HyparquetWriter['ByteWriter']>; pq: ParquetWriterOf } {
  const writer = new w.ByteWriter(size);
  const kvMetadata = meta ? [{ key: META_KEY, value: JSON.stringify({ format: SAMPLES_FORMAT, ...meta }) }] : undefined;
  return { writer, pq: new w.ParquetWriter({ writer, schema, statistics: false, ...(kvMetadata ? { kvMetadata } : {}), createdBy: 'clip-lens' }) };
}

/** The sidecar's Parquet bytes from its columns (no I/O: runs on any thread). */
export async function parquetOfColumns(columns: SidecarColumns): Promise<Uint8Array> {
  const w = await import('hyparquet-writer');
  const { schema, columnData } = fileColumnData(w, columns);
  const { writer, pq } = sidecarWriter(w, schema, { rows: columns.n, classes: columns.classes, topK: columns.k });
  pq.write({ columnData, rowGroupSize: ROW_GROUP });
  pq.finish();
  return new Uint8Array(writer.getBuffer());
}

/**
 * Some rows of a sidecar (sidecarRows from a multiple of ROW_GROUP) as the row groups of the file that come after
 * earlier ones: their bytes as written after a file's 4-byte head, and their metadata (offsets as if they followed
 * that head: {@link joinedParquet} moves them). Structured-cloneable (BigInt offsets; each index's chunk is the row
 * group's own, which one message keeps).
 */
export interface SidecarPart {
  bytes: Uint8Array;
  rowGroups: ParquetWriterOf['row_groups'];
  indexes: ParquetWriterOf['pendingIndexes'];
}

/** The row groups of these rows (see {@link SidecarPart}); no I/O, runs on any thread. */
export async function sidecarPart(columns: SidecarColumns): Promise<SidecarPart> {
  const w = await import('hyparquet-writer');
  const { schema, columnData } = fileColumnData(w, columns);
  const { writer, pq } = sidecarWriter(w, schema, null);
  pq.write({ columnData, rowGroupSize: ROW_GROUP });
  return { bytes: new Uint8Array(writer.getBuffer()).subarray(4), rowGroups: pq.row_groups, indexes: pq.pendingIndexes };
}

/**
 * The sidecar of `columns` from its first `split` rows (encoded here; a multiple of ROW_GROUP) and the part of the
 * rest (`rest`, made meanwhile elsewhere): the bytes {@link parquetOfColumns} makes, byte for byte.
 */
export async function joinedParquet(columns: SidecarColumns, split: number, rest: Promise<SidecarPart>): Promise<Uint8Array> {
  const w = await import('hyparquet-writer');
  const { schema, columnData } = fileColumnData(w, sidecarRows(columns, 0, split));
  const { writer, pq } = sidecarWriter(w, schema, { rows: columns.n, classes: columns.classes, topK: columns.k });
  pq.write({ columnData, rowGroupSize: ROW_GROUP });
  memMark(`sidecar: rows 0 .. ${split} encoded here`);
  const part = await rest;
  memMark('sidecar: the worker\'s rows joined');
  const shift = BigInt(writer.offset - 4);
  writer.appendBytes(part.bytes);
  for (const group of part.rowGroups) {
    for (const chunk of group.columns) {
      chunk.file_offset += shift;
      const m = chunk.meta_data;
      if (m) {
        m.data_page_offset += shift;
        if (m.dictionary_page_offset !== undefined) m.dictionary_page_offset += shift;
      }
    }
    pq.row_groups.push(group);
    pq.num_rows += group.num_rows;
  }
  for (const index of part.indexes) {
    for (const page of index.offsetIndex?.page_locations ?? []) page.offset += shift;
    pq.pendingIndexes.push(index);
  }
  pq.finish();
  return new Uint8Array(writer.getBuffer());
}

/** Writes the sidecar of `report` to `file` (a temporary file renamed into place). */
export async function writeSamplesSidecar(report: EvalReport, file: string): Promise<void> {
  await writeSidecarFile(file, await samplesParquet(report));
}

/**
 * The sidecar written as the CLI does, its encoding shared with a worker thread: from SIDECAR_WORKER_MIN_ROWS samples
 * the worker encodes the later row groups (all but {@link sidecarRowsHere} rows) from now on, while the caller
 * goes on (the CLI writes the JSON report) and then calls `written()`, which encodes the first ones on this thread,
 * joins both ({@link joinedParquet}: the file one encoding makes) and writes it. Smaller reports: all at `written()`.
 */
export function startSamplesSidecar(report: EvalReport, file: string): { written: () => Promise<void> } {
  const columns = sidecarColumns(report);
  const n = columns.n;
  const split = n >= SIDECAR_WORKER_MIN_ROWS ? Math.min(n, ROW_GROUP * Math.round(sidecarRowsHere(n, report.labelIssues.length) / ROW_GROUP)) : n;
  const rest = split < n ? partOnWorker(sidecarRows(columns, split, n)) : null;
  // A failure is written()'s (a caller that fails first leaves the worker to finish).
  rest?.catch(() => undefined);
  return { written: async () => writeSidecarFile(file, rest ? await joinedParquet(columns, split, rest) : await parquetOfColumns(columns)) };
}

/**
 * How many of a large sidecar's n rows {@link startSamplesSidecar} encodes on the caller's thread, so that both threads
 * finish together: the CLI writes the JSON report first, whose time goes with its label issues (measured at a million
 * samples: 0.3-0.6 s with 59,000 issues, 1.5-1.6 s with 548,000: about 0.4 s + 2.1 us an issue), then encodes about
 * 5 us a row; the worker starts at once and encodes about 4.5 us a row. Between 10% and 50% of the rows
 * (docs/benchmarks.md, session 11).
 */
export function sidecarRowsHere(n: number, labelIssues: number): number {
  const json = (0.4e6 + 2.1 * labelIssues) / 5; // the JSON's time in this thread's row encodings
  const here = (0.9 * n - json) / 1.9; // json + here = 0.9 (n - here)
  return Math.min(0.5 * n, Math.max(0.1 * n, here));
}

/** Writes sidecar bytes to `file` (a temporary file renamed into place). */
async function writeSidecarFile(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await makeDirectory(path.dirname(path.resolve(file)));
    await fs.promises.writeFile(tmp, bytes);
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new ClipLensError('output-unwritable', `cannot write the samples sidecar: ${err.message}`, { file });
  }
}

/**
 * The report as written to `reportFile` under `mode`: the JSON object (samples inline or replaced by `samplesFile`)
 * and whether the sidecar is written too (always, except with `inline`).
 */
export function reportForFile(report: EvalReport, reportFile: string, mode: SamplesMode): { json: EvalReport; sidecar: string | null } {
  const n = samplesOf(report).length;
  const sidecar = mode === 'inline' ? null : sidecarFileOf(reportFile);
  const rel = sidecar ? path.basename(sidecar) : undefined;
  if (samplesInline(mode, n)) {
    const { samplesFile: _f, ...rest } = report;
    return { json: { ...rest, samples: report.samples ?? samplesOf(report).toArray(), ...(rel ? { samplesFile: rel } : {}) }, sidecar };
  }
  const { samples: _s, samplesFile: _f, ...rest } = report;
  return { json: { ...rest, samplesFile: rel } as EvalReport, sidecar };
}

// ---------------------------------------------------------------------------------------------------------------------
// Reading

type Hyparquet = typeof import('hyparquet', { with: { 'resolution-mode': 'import' } });
let hyparquet: Promise<Hyparquet> | undefined;
function loadHyparquet(): Promise<Hyparquet> {
  return (hyparquet ??= import('hyparquet'));
}

function intern(names: string[], index: Map<string, number>, v: string): number {
  let i = index.get(v);
  if (i === undefined) {
    i = names.length;
    names.push(v);
    index.set(v, i);
  }
  return i;
}

/** Reads a sidecar into a table; `expect` is what the report says (rows, classes). Errors name `shown`. */
export async function readSamplesSidecar(file: string, classes: readonly string[], expectRows: number, shown = file): Promise<SampleTable> {
  const bad = (why: string): never => {
    throw new ClipLensError('report-sidecar-bad', why, { file: shown });
  };
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ClipLensError('report-sidecar-missing', `cannot read the report's samples file${err.code === 'ENOENT' ? ': it does not exist' : `: ${err.message}`}`, { file: shown });
  }
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const { parquetMetadata, parquetRead } = await loadHyparquet();
  let metadata: ReturnType<Hyparquet['parquetMetadata']>;
  try {
    metadata = parquetMetadata(buffer);
  } catch (e) {
    return bad(`not a Parquet samples file (${e instanceof Error ? e.message : String(e)})`);
  }
  const kv = metadata.key_value_metadata?.find((x) => x.key === META_KEY)?.value;
  let meta: { format?: unknown; rows?: unknown; classes?: unknown; topK?: unknown } = {};
  try {
    meta = kv ? (JSON.parse(kv) as typeof meta) : {};
  } catch {
    bad(`bad ${META_KEY} metadata`);
  }
  if (meta.format !== SAMPLES_FORMAT) bad(`not a clip-lens samples file (format ${JSON.stringify(meta.format ?? null)}, expected ${SAMPLES_FORMAT})`);
  const n = Number(metadata.num_rows);
  if (n !== expectRows || meta.rows !== n) bad(`has ${n} samples, the report ${expectRows}: it belongs to another report`);
  if (meta.classes !== classes.length) bad(`was written for ${String(meta.classes)} classes, the report has ${classes.length}: it belongs to another report`);
  const k = Number(meta.topK);
  if (!Number.isInteger(k) || k < 1) bad(`bad topK ${String(meta.topK)}`);
  const names = new Set(metadata.schema.slice(1).map((s) => s.name));
  const required = ['path', 'label', 'split', 'source_file', 'source_line', 'content_hash', 'error_code', 'error_message'];
  for (let r = 1; r <= k; r++) required.push(`top_class_${r}`, `top_score_${r}`);
  for (const c of required) if (!names.has(c)) bad(`has no column '${c}'`);

  const c = newSampleColumns(n, k, classes, {
    topClass: new Int32Array(n * k).fill(-1),
    topScore: new Float64Array(n * k),
    probabilities: names.has('probabilities') ? new Map() : null,
  });
  const labelIdx = new Map<string, number>();
  const splitIdx = new Map<string, number>();
  const fileIdx = new Map<string, number>();
  const errCodes = new Map<number, string>();
  const errMessages = new Map<number, string>();
  const onChunk = ({ columnName, columnData, rowStart }: { columnName: string; columnData: ArrayLike<unknown>; rowStart: number }) => {
    const len = columnData.length;
    const top = /^top_(class|score)_(\d+)$/.exec(columnName);
    for (let j = 0; j < len; j++) {
      const i = rowStart + j;
      if (i >= n) break;
      const v = columnData[j];
      if (top) {
        const r = Number(top[2]) - 1;
        if (r >= k) break;
        if (top[1] === 'class') {
          const ci = Number(v);
          if (!Number.isInteger(ci) || ci < -1 || ci >= classes.length) bad(`row ${i}: class index ${String(v)} is not a class of the report`);
          c.topClass[i * k + r] = ci;
        } else c.topScore[i * k + r] = Number(v);
        continue;
      }
      switch (columnName) {
        case 'path':
          if (typeof v !== 'string') bad(`row ${i}: no path`);
          c.paths[i] = v as string;
          break;
        case 'label':
          c.labels[i] = intern(c.labelNames, labelIdx, String(v ?? ''));
          break;
        case 'split':
          if (typeof v === 'string') c.splits[i] = intern(c.splitNames, splitIdx, v);
          break;
        case 'source_file':
          if (typeof v === 'string') c.sourceFile[i] = intern(c.sourceFiles, fileIdx, v);
          break;
        case 'source_line':
          c.sourceLine[i] = Number(v);
          break;
        case 'content_hash':
          if (typeof v === 'string') (c.hashes ??= new Array<string | undefined>(n))[i] = v;
          break;
        case 'error_code':
          if (typeof v === 'string') errCodes.set(i, v);
          break;
        case 'error_message':
          if (typeof v === 'string') errMessages.set(i, v);
          break;
        case 'probabilities':
          if (v !== null && v !== undefined) c.probabilities?.set(i, typeof v === 'string' ? v : JSON.stringify(v));
          break;
      }
    }
  };
  try {
    await parquetRead({ file: buffer, metadata, columns: [...names].filter((x) => required.includes(x) || x === 'probabilities'), onChunk: onChunk as never });
  } catch (e) {
    if (e instanceof ClipLensError) throw e;
    bad(`cannot be read (${e instanceof Error ? e.message : String(e)})`);
  }
  for (let i = 0; i < n; i++) if (typeof c.paths[i] !== 'string') bad(`row ${i}: no path`);
  for (const [i, code] of errCodes) c.errors.set(i, { code, message: errMessages.get(i) ?? '' });
  return SampleTable.fromColumns(c, file);
}

/**
 * Reads a report file: the JSON (errors name `shown`) and, when it names a `samplesFile` and has no inline samples,
 * its sidecar (resolved next to the report), attached to the returned report so that {@link samplesOf} finds it.
 */
export async function attachSidecar(report: EvalReport, reportFile: string, shown = reportFile): Promise<EvalReport> {
  if (Array.isArray(report.samples)) return report;
  if (typeof report.samplesFile !== 'string' || report.samplesFile === '') {
    throw new ClipLensError('report-bad', 'has neither "samples" nor "samplesFile"', { file: shown });
  }
  if (path.isAbsolute(report.samplesFile) || report.samplesFile.split(/[\\/]/).includes('..')) {
    throw new ClipLensError('report-bad', `"samplesFile" must name a file next to the report, not ${report.samplesFile}`, { file: shown });
  }
  const file = path.join(path.dirname(reportFile), report.samplesFile);
  const shownSidecar = path.join(path.dirname(shown), report.samplesFile);
  const table = await readSamplesSidecar(file, report.dataset.classes, report.dataset.counts.samples, shownSidecar);
  attachSamples(report, table);
  return report;
}

/** Reads a report file (`eval --json`, a saved report) with its sidecar when the samples are there. */
export async function readReportFile(file: string, shown = file): Promise<EvalReport> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    throw new ClipLensError('report-unreadable', `cannot read the report: ${(e as Error).message}`, { file: shown });
  }
  let report: EvalReport;
  try {
    report = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as EvalReport;
  } catch (e) {
    throw new ClipLensError('report-invalid', `not valid JSON: ${(e as Error).message}`, { file: shown });
  }
  if (!report || typeof report !== 'object' || typeof report.dataset !== 'object' || report.dataset === null) throw new ClipLensError('report-invalid', 'not a clip-lens report', { file: shown });
  return attachSidecar(report, file, shown);
}
