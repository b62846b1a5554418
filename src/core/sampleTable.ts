/**
 * The one accessor of a report's samples ({@link samplesOf}): a {@link SampleTable} over the inline `samples` array or
 * over the columns of the report's sidecar (read by core/reportSamples.ts). Pure: no Node imports, so core modules the
 * webview bundles may use it.
 */
import { ClipLensError } from './errors';
import type { EvalReport, ReportSample } from './report';
import type { ScoredClass } from './types';

/** Single fields of a sample, read without making the sample object. */
export interface SampleFields {
  path(i: number): string;
  label(i: number): string;
  split(i: number): string | undefined;
  /** Top-1 class, undefined without a prediction. */
  top1(i: number): string | undefined;
  /** Top-1 score, 0 without a prediction. */
  topScore(i: number): number;
  failed(i: number): boolean;
  /** Length of the probability vector (0 when none). */
  probabilities(i: number): number;
}

/** The decoded columns of a sidecar (core/reportSamples.ts fills them). */
export interface SampleColumns {
  n: number;
  k: number;
  classes: readonly string[];
  paths: string[];
  labelNames: string[];
  labels: Int32Array;
  splitNames: string[];
  /** -1: no split. */
  splits: Int32Array;
  sourceFiles: string[];
  /** -1: no source. */
  sourceFile: Int32Array;
  sourceLine: Int32Array;
  hashes: (string | undefined)[] | null;
  /** 16-bit when an evaluation fills it for fewer than 32,768 classes (half the memory at a million samples). */
  topClass: Int16Array | Int32Array;
  /** float32 when an evaluation fills it (its probabilities are float32: half the memory at a million samples). */
  topScore: Float32Array | Float64Array;
  errors: Map<number, { code: string; message: string }>;
  probabilities: Map<number, string> | null;
}

/**
 * Columns for n samples with nothing filled in yet (no label, split or source; -1 where "none" exists), around the
 * given top-K columns; the makers (an evaluation, the sidecar reader) fill them row by row.
 */
export function newSampleColumns(
  n: number,
  k: number,
  classes: readonly string[],
  top: { topClass: Int16Array | Int32Array; topScore: Float32Array | Float64Array; probabilities: Map<number, string> | null },
): SampleColumns {
  return {
    n, k, classes,
    paths: new Array<string>(n),
    labelNames: [],
    labels: new Int32Array(n),
    splitNames: [],
    splits: new Int32Array(n).fill(-1),
    sourceFiles: [],
    sourceFile: new Int32Array(n).fill(-1),
    sourceLine: new Int32Array(n),
    hashes: null,
    topClass: top.topClass,
    topScore: top.topScore,
    errors: new Map(),
    probabilities: top.probabilities,
  };
}

/** A read-only, indexable view of a report's samples (inline array or sidecar columns). */
export class SampleTable implements Iterable<ReportSample> {
  private pathIndex: Map<string, number> | undefined;

  private constructor(
    readonly length: number,
    private readonly row: (i: number) => ReportSample,
    /** Single fields of sample i without making the sample (scans over a million rows). */
    readonly field: SampleFields,
    /** The sidecar it was read from, if any. */
    readonly file?: string,
    /** The inline array it views, if any. */
    readonly array?: readonly ReportSample[],
    /** The columns it views, if any (a sidecar read, or a large evaluation's samples): read-only. */
    readonly columns?: Readonly<SampleColumns>,
  ) {}

  static fromArray(samples: readonly ReportSample[]): SampleTable {
    const at = (i: number) => samples[i] as ReportSample;
    const field: SampleFields = {
      path: (i) => at(i).path,
      label: (i) => at(i).label,
      split: (i) => at(i).split,
      top1: (i) => at(i).predicted[0]?.class,
      topScore: (i) => at(i).predicted[0]?.score ?? 0,
      failed: (i) => at(i).error !== undefined,
      probabilities: (i) => at(i).probabilities?.length ?? 0,
    };
    return new SampleTable(samples.length, at, field, undefined, samples);
  }

  static fromColumns(c: SampleColumns, file?: string): SampleTable {
    const field: SampleFields = {
      path: (i) => c.paths[i] as string,
      label: (i) => c.labelNames[c.labels[i] as number] as string,
      split: (i) => {
        const sp = c.splits[i] as number;
        return sp >= 0 ? c.splitNames[sp] : undefined;
      },
      top1: (i) => {
        const ci = c.topClass[i * c.k] as number;
        return ci >= 0 ? c.classes[ci] : undefined;
      },
      topScore: (i) => ((c.topClass[i * c.k] as number) >= 0 ? (c.topScore[i * c.k] as number) : 0),
      failed: (i) => c.errors.has(i),
      probabilities: (i) => (c.probabilities?.has(i) ? (JSON.parse(c.probabilities.get(i) as string) as number[]).length : 0),
    };
    return new SampleTable(
      c.n,
      (i) => {
        const s: ReportSample = { path: c.paths[i] as string, label: c.labelNames[c.labels[i] as number] as string, predicted: [] };
        const sp = c.splits[i] as number;
        if (sp >= 0) s.split = c.splitNames[sp];
        const sf = c.sourceFile[i] as number;
        if (sf >= 0) s.source = { file: c.sourceFiles[sf] as string, line: c.sourceLine[i] as number };
        const predicted: ScoredClass[] = [];
        for (let r = 0; r < c.k; r++) {
          const ci = c.topClass[i * c.k + r] as number;
          if (ci < 0) break;
          predicted.push({ class: c.classes[ci] as string, score: c.topScore[i * c.k + r] as number });
        }
        s.predicted = predicted;
        const p = c.probabilities?.get(i);
        if (p !== undefined) s.probabilities = JSON.parse(p) as number[];
        const h = c.hashes?.[i];
        if (h) s.contentHash = h;
        const e = c.errors.get(i);
        if (e) s.error = { ...e };
        return s;
      },
      field,
      file,
      undefined,
      c,
    );
  }

  /** Sample `i`, or undefined outside 0..length-1. */
  at(i: number): ReportSample | undefined {
    return Number.isInteger(i) && i >= 0 && i < this.length ? this.row(i) : undefined;
  }

  slice(start = 0, end = this.length): ReportSample[] {
    const out: ReportSample[] = [];
    const a = Math.max(0, start);
    const b = Math.min(this.length, end);
    for (let i = a; i < b; i++) out.push(this.row(i));
    return out;
  }

  *[Symbol.iterator](): Iterator<ReportSample> {
    for (let i = 0; i < this.length; i++) yield this.row(i);
  }

  forEach(fn: (s: ReportSample, i: number) => void): void {
    for (let i = 0; i < this.length; i++) fn(this.row(i), i);
  }

  findIndex(pred: (s: ReportSample, i: number) => boolean): number {
    for (let i = 0; i < this.length; i++) if (pred(this.row(i), i)) return i;
    return -1;
  }

  some(pred: (s: ReportSample, i: number) => boolean): boolean {
    return this.findIndex(pred) >= 0;
  }

  /** Index of the sample with this path (-1 when none); the map is built on first use. */
  indexOfPath(p: string): number {
    if (!this.pathIndex) {
      this.pathIndex = new Map();
      for (let i = 0; i < this.length; i++) this.pathIndex.set(this.field.path(i), i);
    }
    return this.pathIndex.get(p) ?? -1;
  }

  /** The sample with this path, if any. */
  byPath(p: string): ReportSample | undefined {
    return this.at(this.indexOfPath(p));
  }

  toArray(): ReportSample[] {
    return this.slice(0, this.length);
  }
}

const tables = new WeakMap<object, SampleTable>();

/**
 * The samples of a report: the table attached by {@link readReportFile} / {@link attachSamples}, else the inline array.
 * A report whose samples are in a sidecar that was not read is an error naming the sidecar.
 */
export function samplesOf(report: EvalReport): SampleTable {
  let t = tables.get(report);
  // A table over an inline array follows the array (a report whose samples were replaced gets a new table).
  if (t && (t.array === undefined || t.array === report.samples)) return t;
  if (!Array.isArray(report.samples)) {
    throw new ClipLensError('report-samples-not-loaded', `the report's samples are in ${report.samplesFile ?? 'a sidecar file'}, which was not read`, { file: report.samplesFile });
  }
  t = SampleTable.fromArray(report.samples);
  tables.set(report, t);
  return t;
}

/** Attaches samples read from a sidecar to a report object (and to nothing else). */
export function attachSamples(report: EvalReport, table: SampleTable): void {
  tables.set(report, table);
}


/** A Map-like path -> index lookup over a table (the table's own index, built once). */
export function pathIndex(table: SampleTable): { get(p: string): number | undefined; has(p: string): boolean } {
  return {
    get: (p) => {
      const i = table.indexOfPath(p);
      return i < 0 ? undefined : i;
    },
    has: (p) => table.indexOfPath(p) >= 0,
  };
}
