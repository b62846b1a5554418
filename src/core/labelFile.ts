/**
 * Label files: CSV, TSV and JSONL files that map image paths to labels.
 *
 * This module only parses text; it never touches the file system (dataset.ts resolves and checks the paths).
 *
 * CSV/TSV rules (RFC 4180, plus what real exports contain):
 * - The first non-empty line is a header naming the columns. A leading UTF-8 BOM is dropped; CRLF and LF both end lines.
 * - Fields may be quoted with `"`; inside quotes `""` is a quote, and delimiters and line breaks are literal. A record that
 *   spans lines is reported at the line where it starts, and later records keep their true line numbers.
 * - A quote inside an unquoted field is kept literally; text after a closing quote is appended (as Python's csv does).
 * - `.tsv` uses tab. `.csv` uses comma, unless the header has no comma but has a tab or a semicolon (spreadsheet exports
 *   in some locales), which is then used.
 * - Blank lines are skipped. Values are trimmed of surrounding whitespace.
 *
 * JSONL rules: one JSON object per non-empty line (Hugging Face imagefolder `metadata.jsonl`: `{"file_name": ..., "label": ...}`).
 * Numeric and boolean labels become strings (`3` -> `"3"`).
 *
 * Columns are detected from the header (CSV/TSV) or the keys of the first object (JSONL) by name, ignoring case, spaces,
 * `_` and `-` (see IMAGE_COLUMN_NAMES, LABEL_COLUMN_NAMES, SPLIT_COLUMN_NAMES, earlier names win), unless given explicitly.
 * A missing column is a ClipLensError naming the file and the header line; a bad record is a DatasetProblem with its line.
 */
import type { LabelFileKind } from './datasetFormat';
import { ClipLensError } from './errors';
import type { DatasetProblem } from './types';


/** Header names recognised as the image path column, in order of preference (normalised: lower case, no ` _-`). */
export const IMAGE_COLUMN_NAMES = [
  'filename', 'image', 'imagepath', 'imagefile', 'imagename', 'imagefilename', 'img', 'imgpath', 'imgname',
  'file', 'filepath', 'path', 'relativepath', 'relpath', 'imageid',
] as const;
/** Header names recognised as the label column, in order of preference (normalised). */
export const LABEL_COLUMN_NAMES = [
  'label', 'class', 'classname', 'labelname', 'classlabel', 'category', 'categoryname', 'target', 'y', 'tag',
] as const;
/** Header names recognised as the split column, in order of preference (normalised). */
export const SPLIT_COLUMN_NAMES = ['split', 'subset', 'fold', 'partition'] as const;

/** Which columns to read; any left out are detected from the header. */
export interface LabelColumnOptions {
  imageColumn?: string;
  labelColumn?: string;
  splitColumn?: string;
}

/** One usable line of a label file. `image` is the path exactly as written (trimmed); `line` is 1-based. */
export interface LabelEntry {
  line: number;
  image: string;
  label: string;
  split?: string;
}

export interface ParsedLabelFile {
  kind: LabelFileKind;
  /** The column (or JSON key) names actually used. */
  columns: { image: string; label: string; split?: string };
  entries: LabelEntry[];
  /** Lines that could not be used, each with `file` and `line`. */
  problems: DatasetProblem[];
}

/** A CSV/TSV record: its raw field values and the 1-based line it starts on. */
export interface DelimitedRecord {
  line: number;
  fields: string[];
}

/** Lower case and drop spaces, `_`, `-` and `.`, so `File Name`, `file_name` and `fileName` compare equal. */
export function normalizeColumnName(name: string): string {
  return name.toLowerCase().replace(/[\s_.-]+/g, '');
}

/** The first of `candidates` (normalised names, in preference order) found among `names`; undefined if none. */
export function detectColumn(names: readonly string[], candidates: readonly string[]): string | undefined {
  const byNorm = new Map<string, string>();
  for (const n of names) {
    const k = normalizeColumnName(n);
    if (!byNorm.has(k)) byNorm.set(k, n);
  }
  for (const c of candidates) {
    const hit = byNorm.get(c);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** A CSV/TSV field: its raw token [start, end) in the text (quotes included, blanks around it excluded) and value. */
export interface DelimitedField {
  start: number;
  end: number;
  /** The value as read: unquoted and unescaped, blanks kept (callers trim). */
  value: string;
  quoted: boolean;
}

/** The delimiter of a CSV/TSV text: tab for .tsv; for .csv a comma, unless the first line has none but a tab or a semicolon. */
export function delimiterOf(text: string, kind: 'csv' | 'tsv'): string {
  if (kind === 'tsv') return '\t';
  const firstLine = text.split(/\r?\n|\r/, 1)[0] ?? '';
  if (!firstLine.includes(',')) {
    if (firstLine.includes('\t')) return '\t';
    if (firstLine.includes(';')) return ';';
  }
  return ',';
}

/**
 * Reads the CSV/TSV record starting at `offset` (RFC 4180 quoting: a quoted field may hold delimiters, doubled quotes
 * and line breaks; blanks before an opening quote are dropped; text after a closing quote is appended as is; CRLF,
 * LF or a lone CR end the record). Returns its fields and the offset after its line break, or, when a quote is
 * never closed, where that quote opened.
 */
export function readDelimitedRecord(
  text: string,
  offset: number,
  delimiter: string,
): { fields: DelimitedField[]; next: number } | { unterminatedQuoteAt: number } {
  const n = text.length;
  const d = delimiter.charCodeAt(0);
  const fields: DelimitedField[] = [];
  let i = offset;
  for (;;) {
    let k = i;
    while (k < n && text.charCodeAt(k) === 32 && d !== 32) k++;
    let value = '';
    let tokenStart = -1;
    if (k < n && text.charCodeAt(k) === 34 /* " */) {
      tokenStart = k;
      i = k + 1;
      for (;;) {
        if (i >= n) return { unterminatedQuoteAt: k };
        const c = text.charCodeAt(i);
        if (c === 34) {
          if (text.charCodeAt(i + 1) === 34) {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i];
        i++;
      }
    }
    let j = i;
    while (j < n) {
      const c = text.charCodeAt(j);
      if (c === d || c === 10 || c === 13) break;
      j++;
    }
    value += text.slice(i, j);
    // The token: from the opening quote (or the first non-blank character) to the last non-blank character.
    let end = j;
    while (end > i && /\s/.test(text[end - 1])) end--;
    let start = tokenStart;
    if (start < 0) {
      start = i;
      while (start < end && /\s/.test(text[start])) start++;
    }
    if (end < start) end = start;
    fields.push({ start, end, value, quoted: tokenStart >= 0 });
    i = j;
    if (i >= n) return { fields, next: n };
    const c = text.charCodeAt(i);
    if (c === d) {
      i++;
      continue;
    }
    if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
    return { fields, next: i + 1 };
  }
}

/** Line breaks (CRLF, LF, lone CR) in text[from, to). */
function countLineBreaks(text: string, from: number, to: number): number {
  let lines = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) lines++;
  }
  return lines;
}

/** A record with nothing but blanks in its only field (a blank line). */
export function isBlankRecord(fields: readonly { value: string }[]): boolean {
  return fields.length === 1 && fields[0]!.value.trim() === '';
}

/**
 * Split CSV/TSV text into records (see readDelimitedRecord). Blank lines are dropped. An unterminated quote ends the
 * text and is returned as `unterminatedQuoteLine` (the line where the quoted field opened); the record it was in is
 * dropped.
 */
export function parseDelimited(
  text: string,
  delimiter: string,
): { records: DelimitedRecord[]; unterminatedQuoteLine?: number } {
  const records: DelimitedRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (i < text.length) {
    const rec = readDelimitedRecord(text, i, delimiter);
    if ('unterminatedQuoteAt' in rec) return { records, unterminatedQuoteLine: line + countLineBreaks(text, i, rec.unterminatedQuoteAt) };
    if (!isBlankRecord(rec.fields)) records.push({ line, fields: rec.fields.map((f) => f.value) });
    line += countLineBreaks(text, i, rec.next);
    i = rec.next;
  }
  return { records };
}

/**
 * Parse a label file's text. `file` names it in problems and errors (relative to the dataset root, for display).
 * Throws ClipLensError('label-file-columns') when the image or label column cannot be found, and
 * ClipLensError('label-file-empty') when there is no header / no object at all.
 */
export function parseLabelFile(
  text: string,
  kind: LabelFileKind,
  file: string,
  options: LabelColumnOptions = {},
): ParsedLabelFile {
  return kind === 'jsonl' ? parseJsonl(text, file, options) : parseCsv(text, kind, file, options);
}

interface ColumnChoice {
  image: string;
  label: string;
  split?: string;
}

/**
 * The column a reader uses: an explicit name (exactly, then ignoring case), else the first of `candidates` found in
 * `names` (see detectColumn); undefined when there is none.
 */
export function findColumn(names: readonly string[], explicit: string | undefined, candidates: readonly string[]): string | undefined {
  if (explicit === undefined) return detectColumn(names, candidates);
  if (names.includes(explicit)) return explicit;
  return names.find((n) => n.toLowerCase() === explicit.toLowerCase());
}

function chooseColumns(names: string[], options: LabelColumnOptions, file: string, line: number, what: string): ColumnChoice {
  const pick = (explicit: string | undefined, candidates: readonly string[], role: string, optName: string): string | undefined => {
    const found = findColumn(names, explicit, candidates);
    if (found !== undefined || explicit === undefined) return found;
    throw new ClipLensError(
      'label-file-columns',
      `${optName} "${explicit}" (the ${role} column) is not among the ${what}: ${listNames(names)}`,
      { file, line },
    );
  };
  const image = pick(options.imageColumn, IMAGE_COLUMN_NAMES, 'image', 'imageColumn');
  const label = pick(options.labelColumn, LABEL_COLUMN_NAMES, 'label', 'labelColumn');
  const split = pick(options.splitColumn, SPLIT_COLUMN_NAMES, 'split', 'splitColumn');
  if (image === undefined || label === undefined) {
    const missing = image === undefined ? 'image' : 'label';
    const known = missing === 'image' ? 'file_name, image, filename, path, ...' : 'label, class, category, target, ...';
    throw new ClipLensError(
      'label-file-columns',
      `no ${missing} column among the ${what} ${listNames(names)}; name it one of ${known} or set ${missing}Column`,
      { file, line },
    );
  }
  if (image === label) {
    throw new ClipLensError('label-file-columns', `the image and label columns are the same ("${image}")`, { file, line });
  }
  return split !== undefined && split !== image && split !== label ? { image, label, split } : { image, label };
}

function listNames(names: string[]): string {
  return names.length === 0 ? '(none)' : names.map((n) => JSON.stringify(n)).join(', ');
}

const IMAGE_LIKE = /\.(jpe?g|png|webp|gif|tiff?|bmp|avif|heic|heif)$/i;

function parseCsv(text: string, kind: 'csv' | 'tsv', file: string, options: LabelColumnOptions): ParsedLabelFile {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const delimiter = delimiterOf(body, kind);
  const { records, unterminatedQuoteLine } = parseDelimited(body, delimiter);
  const problems: DatasetProblem[] = [];
  const header = records[0];
  if (!header) {
    if (unterminatedQuoteLine !== undefined) {
      throw new ClipLensError('label-file-bad-line', 'unterminated quoted field in the header', { file, line: unterminatedQuoteLine });
    }
    throw new ClipLensError('label-file-empty', 'the label file is empty (expected a header line such as image,label)', { file });
  }
  const names = header.fields.map((f) => f.trim());
  if (names.some((n) => IMAGE_LIKE.test(n)) && options.imageColumn === undefined) {
    throw new ClipLensError(
      'label-file-columns',
      `the first line looks like data, not a header (${listNames(names)}); add a header line such as image,label`,
      { file, line: header.line },
    );
  }
  const columns = chooseColumns(names, options, file, header.line, 'header columns');
  const idx = (name: string) => names.indexOf(name);
  const ii = idx(columns.image);
  const li = idx(columns.label);
  const si = columns.split !== undefined ? idx(columns.split) : -1;
  const entries: LabelEntry[] = [];
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]!;
    if (rec.fields.length !== names.length) {
      problems.push({
        code: 'label-file-bad-line',
        message: `expected ${names.length} fields (${names.join(delimiter === '\t' ? ', ' : delimiter)}), found ${rec.fields.length}`,
        file,
        line: rec.line,
      });
      continue;
    }
    const image = rec.fields[ii]!.trim();
    const label = rec.fields[li]!.trim();
    const split = si >= 0 ? rec.fields[si]!.trim() : '';
    const entry = makeEntry(rec.line, image, label, split, columns, file, problems);
    if (entry) entries.push(entry);
  }
  if (unterminatedQuoteLine !== undefined) {
    problems.push({
      code: 'label-file-bad-line',
      message: 'unterminated quoted field: no closing " before the end of the file (this record and anything after it are skipped)',
      file,
      line: unterminatedQuoteLine,
    });
  }
  return { kind, columns, entries, problems };
}

function makeEntry(
  line: number,
  image: string,
  label: string,
  split: string,
  columns: ColumnChoice,
  file: string,
  problems: DatasetProblem[],
): LabelEntry | undefined {
  if (image === '') {
    problems.push({ code: 'label-file-missing-field', message: `empty image path (column "${columns.image}")`, file, line });
    return undefined;
  }
  if (label === '') {
    problems.push({ code: 'label-file-missing-field', message: `empty label (column "${columns.label}") for ${image}`, file, line });
    return undefined;
  }
  return split !== '' ? { line, image, label, split } : { line, image, label };
}

function parseJsonl(text: string, file: string, options: LabelColumnOptions): ParsedLabelFile {
  const problems: DatasetProblem[] = [];
  const entries: LabelEntry[] = [];
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = body.split('\n');
  let columns: ColumnChoice | undefined;
  for (let k = 0; k < lines.length; k++) {
    const lineNo = k + 1;
    const raw = lines[k]!.trim();
    if (raw === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      problems.push({ code: 'label-file-bad-line', message: `not valid JSON: ${(e as Error).message}`, file, line: lineNo });
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push({ code: 'label-file-bad-line', message: 'expected a JSON object on each line', file, line: lineNo });
      continue;
    }
    const obj = value as Record<string, unknown>;
    columns ??= chooseColumns(Object.keys(obj), options, file, lineNo, 'keys of the first object');
    const image = jsonString(obj[columns.image], columns.image, 'image path', file, lineNo, problems);
    if (image === undefined) continue;
    const label = jsonString(obj[columns.label], columns.label, 'label', file, lineNo, problems);
    if (label === undefined) continue;
    let split = '';
    if (columns.split !== undefined && obj[columns.split] !== undefined && obj[columns.split] !== null) {
      const s = jsonString(obj[columns.split], columns.split, 'split', file, lineNo, problems);
      if (s === undefined) continue;
      split = s;
    }
    const entry = makeEntry(lineNo, image.trim(), label.trim(), split.trim(), columns, file, problems);
    if (entry) entries.push(entry);
  }
  if (!columns) {
    if (problems.length > 0) return { kind: 'jsonl', columns: { image: '', label: '' }, entries, problems };
    throw new ClipLensError('label-file-empty', 'the label file is empty (expected one JSON object per line)', { file });
  }
  return { kind: 'jsonl', columns, entries, problems };
}

function jsonString(
  v: unknown,
  key: string,
  what: string,
  file: string,
  line: number,
  problems: DatasetProblem[],
): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const found = v === undefined ? 'it is missing' : v === null ? 'found null' : Array.isArray(v) ? 'found an array' : 'found an object';
  problems.push({
    code: v === undefined || v === null ? 'label-file-missing-field' : 'label-file-bad-line',
    message: `"${key}" (${what}) must be a string or number; ${found}`,
    file,
    line,
  });
  return undefined;
}
