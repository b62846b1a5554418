/**
 * Label files: CSV, TSV and JSONL files that map image paths to labels.
 *
 * This module only parses text; it never touches the file system (dataset.ts resolves and checks the paths).
 *
 * CSV/TSV rules (RFC 4180, plus what real exports contain):
 * - The first non-empty line is a header naming the columns. A leading UTF-8 BOM is dropped; CRLF and LF both end lines.
 * - Fields may be quoted with `"`; inside quotes `""` is a quote, and delimiters and line breaks are literal. A record that
 *   spans lines is reported at the line where it starts, and later records keep their true line numbers.
 * - No row is lost silently. A quoted field may span line breaks only where that is plausible: outside the image, label
 *   and split columns, within MAX_RECORD_LINES lines and MAX_RECORD_CHARS characters, in a record with the header's
 *   number of fields, and with no continuation line that reads as a row of its own. Otherwise (a stray `"`, a quote
 *   never closed) the line where the quote opened is a problem and the next lines are read on their own.
 * - A quote inside an unquoted field is kept literally in other columns (as Python's csv does) but is a problem in the
 *   image, label and split columns (it is the other half of a stray quote, or needs quoting); text after a closing
 *   quote is appended.
 * - A line longer than MAX_RECORD_CHARS characters is a problem and skipped unread (bounded memory per line); invalid
 *   UTF-8 bytes make their line a problem (see invalidUtf8Lines), never a label with U+FFFD in it. Values quoted in
 *   messages are cut to a readable length (shorten).
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
import { isUtf8 } from 'node:buffer';
import type { LabelFileKind } from './datasetFormat';
import { ClipLensError } from './errors';
import type { DatasetProblem } from './types';

/** The longest line (or multi-line record) read, in characters; longer lines are a problem and skipped unread. */
export const MAX_RECORD_CHARS = 65_536;
/** The most lines a quoted field may span. */
export const MAX_RECORD_LINES = 20;
/** Values quoted in messages are cut to this many characters. */
export const MESSAGE_VALUE_CHARS = 120;

/** `text` cut to `max` characters with an ellipsis and the full length, for messages. */
export function shorten(text: string, max = MESSAGE_VALUE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length.toLocaleString('en-US')} characters)`;
}


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
 * not closed before `quoteLimit` (default: the end of the text), where that quote opened.
 */
export function readDelimitedRecord(
  text: string,
  offset: number,
  delimiter: string,
  quoteLimit = text.length,
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
        const q = text.indexOf('"', i);
        if (q < 0 || q >= quoteLimit) return { unterminatedQuoteAt: k };
        value += text.slice(i, q);
        if (text.charCodeAt(q + 1) === 34 && q + 1 < quoteLimit) {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
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

/** The offset of the line break (CR or LF) ending the line at `from`, or the text's length. */
function lineEndAt(text: string, from: number): number {
  const n = text.length;
  for (let i = from; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return n;
}

/** The offset after the line break at `end` (CRLF counts as one). */
function afterLineBreak(text: string, end: number): number {
  if (end >= text.length) return text.length;
  return text.charCodeAt(end) === 13 && text.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
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

/** A line the CSV/TSV reader could not use, and why. */
export interface DelimitedProblem {
  line: number;
  message: string;
}

/**
 * Whether a record spanning lines (a quoted field with line breaks) is plausible; `start`/`next` delimit its text.
 * The default accepts any record within MAX_RECORD_LINES / MAX_RECORD_CHARS.
 */
export type AcceptMultiLine = (record: DelimitedRecord, text: string, start: number, next: number) => boolean;

/**
 * The records of CSV/TSV text, in order, each a record or a problem on its line; blank lines are skipped. Every
 * line is accounted for: in a record, blank, or in a problem. Lines longer than MAX_RECORD_CHARS are problems, skipped
 * unread. A record whose quoted field spans lines is kept only when it closes within MAX_RECORD_LINES lines and
 * MAX_RECORD_CHARS characters and `accept` agrees; otherwise the line where the quote opened is a problem and
 * reading goes on at the next line.
 */
export function* delimitedRecords(
  text: string,
  delimiter: string,
  accept: AcceptMultiLine = () => true,
): Generator<QuotedRecord | DelimitedProblem> {
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  while (i < n) {
    const lineEnd = lineEndAt(text, i);
    const afterLine = afterLineBreak(text, lineEnd);
    if (lineEnd - i > MAX_RECORD_CHARS) {
      yield {
        line,
        message: `the line is ${(lineEnd - i).toLocaleString('en-US')} characters long, over the limit of ${MAX_RECORD_CHARS.toLocaleString('en-US')}; skipped`,
      };
      i = afterLine;
      line++;
      continue;
    }
    let rec = readDelimitedRecord(text, i, delimiter, lineEnd);
    if ('unterminatedQuoteAt' in rec && lineEnd < n) {
      // A quote open at the line break may stay open over at most MAX_RECORD_LINES lines and MAX_RECORD_CHARS characters.
      let limit = lineEnd;
      for (let l = 1; l < MAX_RECORD_LINES && limit < n; l++) limit = lineEndAt(text, afterLineBreak(text, limit));
      rec = readDelimitedRecord(text, i, delimiter, Math.min(limit, i + MAX_RECORD_CHARS));
    }
    if (!('unterminatedQuoteAt' in rec) && rec.next <= afterLine) {
      if (!isBlankRecord(rec.fields)) yield { line, fields: rec.fields.map((f) => f.value), quoted: rec.fields.map((f) => f.quoted) };
      i = rec.next;
      line++;
      continue;
    }
    if (!('unterminatedQuoteAt' in rec)) {
      const record = { line, fields: rec.fields.map((f) => f.value), quoted: rec.fields.map((f) => f.quoted) };
      const lines = countLineBreaks(text, i, rec.next);
      if (accept(record, text, i, rec.next)) {
        yield record;
        i = rec.next;
        line += lines;
        continue;
      }
      const endsWithBreak = rec.next > 0 && /[\r\n]/.test(text[rec.next - 1]!);
      const last = line + lines - (endsWithBreak ? 1 : 0);
      yield {
        line,
        message: `a stray "? A quoted field opens here and closes only on line ${last} (not plausible: see docs/robustness.md); this line is skipped, the next ones are read on their own`,
      };
    } else {
      const at = rec.unterminatedQuoteAt;
      const column = text.slice(i, at).split(delimiter).length;
      yield {
        line,
        message: `unbalanced quote: the quoted field in column ${column} is not closed within ${MAX_RECORD_LINES} lines; this line is skipped, the next ones are read on their own`,
      };
    }
    i = afterLine;
    line++;
  }
}

/** A record and, per field, whether it was quoted. */
export interface QuotedRecord extends DelimitedRecord {
  quoted: boolean[];
}

export function isDelimitedProblem(r: DelimitedRecord | DelimitedProblem): r is DelimitedProblem {
  return 'message' in r;
}

/** Split CSV/TSV text into records and problems (see delimitedRecords). */
export function parseDelimited(
  text: string,
  delimiter: string,
  accept?: AcceptMultiLine,
): { records: DelimitedRecord[]; problems: DelimitedProblem[] } {
  const records: DelimitedRecord[] = [];
  const problems: DelimitedProblem[] = [];
  for (const r of delimitedRecords(text, delimiter, accept)) {
    if (isDelimitedProblem(r)) problems.push(r);
    else records.push({ line: r.line, fields: r.fields });
  }
  return { records, problems };
}

/**
 * Parse a label file's text. `file` names it in problems and errors (relative to the dataset root, for display).
 * Throws ClipLensError('label-file-columns') when the image or label column cannot be found, and
 * ClipLensError('label-file-empty') when there is no header / no object at all.
 */
export interface ParseLabelFileOptions extends LabelColumnOptions {
  /** 1-based lines holding bytes that are not UTF-8 (see invalidUtf8Lines): each is a problem, never a value. */
  invalidUtf8Lines?: ReadonlySet<number>;
}

/**
 * The 1-based lines of `bytes` that are not valid UTF-8, counted as the reader counts them (CSV/TSV: CRLF, LF or a
 * lone CR end a line; JSONL: LF). Empty for valid UTF-8 (checked first, in one pass).
 */
export function invalidUtf8Lines(bytes: Uint8Array, kind: LabelFileKind): Set<number> {
  const out = new Set<number>();
  if (isUtf8(bytes)) return out;
  let line = 1;
  let start = 0;
  const n = bytes.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? bytes[i] : 10;
    const lf = c === 10;
    const cr = c === 13 && kind !== 'jsonl';
    if (!lf && !cr) continue;
    if (!isUtf8(bytes.subarray(start, i))) out.add(line);
    if (cr && bytes[i + 1] === 10) i++;
    start = i + 1;
    line++;
  }
  return out;
}

export function parseLabelFile(
  text: string,
  kind: LabelFileKind,
  file: string,
  options: ParseLabelFileOptions = {},
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
  return names.length === 0 ? '(none)' : shorten(names.map((n) => JSON.stringify(shorten(n, 40))).join(', '), 300);
}

const IMAGE_LIKE = /\.(jpe?g|png|webp|gif|tiff?|bmp|avif|heic|heif)$/i;

function parseCsv(text: string, kind: 'csv' | 'tsv', file: string, options: ParseLabelFileOptions): ParsedLabelFile {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const delimiter = delimiterOf(body, kind);
  const problems: DatasetProblem[] = [];
  const entries: LabelEntry[] = [];
  const badLine = (line: number, message: string) => problems.push({ code: 'label-file-bad-line', message, file, line });
  const invalid = options.invalidUtf8Lines;
  let names: string[] | undefined;
  let columns: ColumnChoice | undefined;
  let ii = -1;
  let li = -1;
  let si = -1;
  // A record spanning lines is plausible only with the header's field count, no line break in a key column, and no
  // continuation line that would be a row of its own.
  const accept: AcceptMultiLine = (rec, t, start, next) => {
    if (!names || rec.fields.length !== names.length) return false;
    if ([ii, li, si].some((k) => k >= 0 && /[\r\n]/.test(rec.fields[k]!))) return false;
    let at = afterLineBreak(t, lineEndAt(t, start));
    while (at < next) {
      const end = lineEndAt(t, at);
      const alone = readDelimitedRecord(t, at, delimiter, end);
      if (!('unterminatedQuoteAt' in alone) && alone.fields.length === names.length) return false;
      at = afterLineBreak(t, end);
    }
    return true;
  };
  for (const r of delimitedRecords(body, delimiter, accept)) {
    if (isDelimitedProblem(r)) {
      if (!names) throw new ClipLensError('label-file-bad-line', `the header cannot be read: ${r.message}`, { file, line: r.line });
      badLine(r.line, r.message);
      continue;
    }
    if (invalid && invalid.has(r.line)) {
      if (!names) throw new ClipLensError('label-file-encoding', 'the header has bytes that are not UTF-8; save the file as UTF-8', { file, line: r.line });
      badLine(r.line, 'invalid UTF-8 bytes on this line (is the file saved in another encoding? save it as UTF-8); skipped');
      continue;
    }
    if (!names) {
      names = r.fields.map((f) => f.trim());
      if (names.some((n) => IMAGE_LIKE.test(n)) && options.imageColumn === undefined) {
        throw new ClipLensError(
          'label-file-columns',
          `the first line looks like data, not a header (${shorten(listNames(names))}); add a header line such as image,label`,
          { file, line: r.line },
        );
      }
      columns = chooseColumns(names, options, file, r.line, 'header columns');
      ii = names.indexOf(columns.image);
      li = names.indexOf(columns.label);
      si = columns.split !== undefined ? names.indexOf(columns.split) : -1;
      continue;
    }
    if (r.fields.length !== names.length) {
      badLine(r.line, `expected ${names.length} fields (${shorten(names.join(delimiter === '\t' ? ', ' : delimiter))}), found ${r.fields.length}`);
      continue;
    }
    const strayAt = (k: number) => k >= 0 && !r.quoted[k] && r.fields[k]!.includes('"');
    const stray = strayAt(ii) ? ii : strayAt(li) ? li : strayAt(si) ? si : undefined;
    if (stray !== undefined) {
      badLine(r.line, `a stray " in the ${names[stray]} field (${JSON.stringify(shorten(r.fields[stray]!.trim()))}): quote the whole field and double the quote inside ("a ""b"""); skipped`);
      continue;
    }
    const image = r.fields[ii]!.trim();
    const label = r.fields[li]!.trim();
    const split = si >= 0 ? r.fields[si]!.trim() : '';
    const entry = makeEntry(r.line, image, label, split, columns!, file, problems);
    if (entry) entries.push(entry);
  }
  if (!names || !columns) {
    throw new ClipLensError('label-file-empty', 'the label file is empty (expected a header line such as image,label)', { file });
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
    problems.push({ code: 'label-file-missing-field', message: `empty image path (column "${shorten(columns.image)}")`, file, line });
    return undefined;
  }
  if (label === '') {
    problems.push({ code: 'label-file-missing-field', message: `empty label (column "${shorten(columns.label)}") for ${shorten(image)}`, file, line });
    return undefined;
  }
  return split !== '' ? { line, image, label, split } : { line, image, label };
}

function parseJsonl(text: string, file: string, options: ParseLabelFileOptions): ParsedLabelFile {
  const problems: DatasetProblem[] = [];
  const entries: LabelEntry[] = [];
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = body.split('\n');
  let columns: ColumnChoice | undefined;
  for (let k = 0; k < lines.length; k++) {
    const lineNo = k + 1;
    if (lines[k]!.length > MAX_RECORD_CHARS) {
      problems.push({
        code: 'label-file-bad-line',
        message: `the line is ${lines[k]!.length.toLocaleString('en-US')} characters long, over the limit of ${MAX_RECORD_CHARS.toLocaleString('en-US')}; skipped`,
        file,
        line: lineNo,
      });
      continue;
    }
    const raw = lines[k]!.trim();
    if (raw === '') continue;
    if (options.invalidUtf8Lines?.has(lineNo)) {
      problems.push({ code: 'label-file-bad-line', message: 'invalid UTF-8 bytes on this line (is the file saved in another encoding? save it as UTF-8); skipped', file, line: lineNo });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      problems.push({ code: 'label-file-bad-line', message: `not valid JSON: ${shorten((e as Error).message)}`, file, line: lineNo });
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
    message: `"${shorten(key)}" (${what}) must be a string or number; ${found}`,
    file,
    line,
  });
  return undefined;
}
