/**
 * Where the image path and the label of a label-file line are, as offsets into the file's text, and the minimal
 * edit that changes one label. Pure text functions (no 'vscode', no file system), unit-tested.
 *
 * They read label files with core/labelFile.ts's own record reader, delimiter detection and column choice (JSONL
 * lines split on LF), so the field found here is the field the evaluation read:
 * - CSV/TSV: the record starting on the 1-based physical line (CRLF, LF or a lone CR end a line; a quoted field may
 *   span lines). A replacement keeps the field's quoting: a quoted field stays quoted; an unquoted one is quoted only
 *   when the new label needs it (delimiter, quote or line break; quotes are doubled). Whitespace around an unquoted
 *   value is kept.
 * - JSONL: the value of the label key on that line (the last one, when a key repeats, as JSON.parse does), replaced by
 *   a JSON string literal (JSON.stringify escaping); a numeric label stays a number when the new label is one.
 *
 * Texts are expected without a byte-order mark (VS Code documents never have one; use `stripBom` on file content).
 */
import {
  delimiterOf,
  findColumn,
  IMAGE_COLUMN_NAMES,
  isBlankRecord,
  LABEL_COLUMN_NAMES,
  readDelimitedRecord,
  type DelimitedField,
  type LabelColumnOptions,
} from '../core/labelFile';
import type { LabelFileKind } from '../core/datasetFormat';
import { parseJsonTreeOrNull, type JsonNode } from '../core/jsonWithPositions';
import type { TextEdit } from '../core/textEdit';

/** A field of a line: the raw token [start, end) (quotes included, surrounding blanks excluded) and its value. */
export interface FieldSpan {
  start: number;
  end: number;
  /** The value as the label-file reader sees it (unquoted, unescaped, trimmed). */
  value: string;
  /** CSV: the field was quoted. JSONL: the value was a JSON string. */
  quoted: boolean;
  /** JSONL: the JSON type of the value. */
  jsonType?: JsonNode['type'];
}

export interface LabelFileLayout {
  kind: LabelFileKind;
  /** CSV/TSV delimiter ('' for JSONL). */
  delimiter: string;
  imageColumn: string;
  labelColumn: string;
  /** CSV/TSV: index of the columns in the header (-1 for JSONL). */
  imageIndex: number;
  labelIndex: number;
  /** CSV/TSV: number of header fields (a record with another count is skipped by the reader). */
  fieldCount: number;
}

export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Offsets where each 1-based line starts (index 0 = line 1), as the label-file reader counts lines: CSV/TSV end lines
 * at CRLF, LF and lone CR; JSONL at LF only.
 */
export function lineStarts(text: string, kind: LabelFileKind): number[] {
  const starts = [0];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13 && kind !== 'jsonl') {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    }
  }
  return starts;
}

/** Editor line starts: VS Code ends lines at CRLF, LF and lone CR. */
export function editorLineStarts(text: string): number[] {
  return lineStarts(text, 'csv');
}

/** 0-based editor line and UTF-16 character of an offset, given editorLineStarts(text). */
export function positionAt(starts: readonly number[], offset: number): { line: number; character: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo, character: offset - starts[lo] };
}

/** How a label file is laid out (columns as the reader detects them); null when the image or label column is not found. */
export function labelFileLayout(text: string, kind: LabelFileKind, options: LabelColumnOptions = {}): LabelFileLayout | null {
  if (kind === 'jsonl') {
    let start = 0;
    while (start <= text.length) {
      const nl = text.indexOf('\n', start);
      const end = nl < 0 ? text.length : nl;
      const raw = text.slice(start, end).trim();
      if (raw !== '') {
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch {
          value = undefined;
        }
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          const keys = Object.keys(value);
          const image = findColumn(keys, options.imageColumn, IMAGE_COLUMN_NAMES);
          const label = findColumn(keys, options.labelColumn, LABEL_COLUMN_NAMES);
          if (image === undefined || label === undefined || image === label) return null;
          return { kind, delimiter: '', imageColumn: image, labelColumn: label, imageIndex: -1, labelIndex: -1, fieldCount: 0 };
        }
      }
      if (nl < 0) break;
      start = nl + 1;
    }
    return null;
  }
  const delimiter = delimiterOf(text, kind);
  let offset = 0;
  while (offset < text.length) {
    const rec = readDelimitedRecord(text, offset, delimiter);
    if ('unterminatedQuoteAt' in rec) return null;
    if (!isBlankRecord(rec.fields)) {
      const names = rec.fields.map((f) => f.value.trim());
      const image = findColumn(names, options.imageColumn, IMAGE_COLUMN_NAMES);
      const label = findColumn(names, options.labelColumn, LABEL_COLUMN_NAMES);
      if (image === undefined || label === undefined || image === label) return null;
      return { kind, delimiter, imageColumn: image, labelColumn: label, imageIndex: names.indexOf(image), labelIndex: names.indexOf(label), fieldCount: names.length };
    }
    offset = rec.next;
  }
  return null;
}

/**
 * The image and label fields of the record on a 1-based line (`starts` from lineStarts(text, kind) may be passed to
 * avoid recounting); null when the line holds no such record.
 */
export function fieldsOnLine(text: string, layout: LabelFileLayout, line: number, starts?: readonly number[]): { image: FieldSpan; label: FieldSpan } | null {
  const ls = starts ?? lineStarts(text, layout.kind);
  if (line < 1 || line > ls.length) return null;
  const begin = ls[line - 1];
  if (layout.kind === 'jsonl') {
    const nl = text.indexOf('\n', begin);
    const raw = text.slice(begin, nl < 0 ? text.length : nl);
    const lead = raw.length - raw.trimStart().length;
    const body = raw.trim();
    if (body === '') return null;
    const tree = parseJsonTreeOrNull(body);
    if (tree?.type !== 'object') return null;
    const find = (key: string): FieldSpan | null => {
      const prop = tree.type === 'object' ? tree.properties.filter((p) => p.key === key).pop() : undefined;
      if (!prop) return null;
      const v = prop.value;
      const start = begin + lead + v.offset;
      const value = v.type === 'string' || v.type === 'number' || v.type === 'boolean' ? String(v.value).trim() : '';
      return { start, end: start + v.length, value, quoted: v.type === 'string', jsonType: v.type };
    };
    const image = find(layout.imageColumn);
    const label = find(layout.labelColumn);
    return image && label ? { image, label } : null;
  }
  const rec = readDelimitedRecord(text, begin, layout.delimiter);
  if ('unterminatedQuoteAt' in rec || isBlankRecord(rec.fields) || rec.fields.length !== layout.fieldCount) return null;
  const toSpan = (f: DelimitedField): FieldSpan => ({ start: f.start, end: f.end, value: f.value.trim(), quoted: f.quoted });
  return { image: toSpan(rec.fields[layout.imageIndex]), label: toSpan(rec.fields[layout.labelIndex]) };
}

/** A CSV/TSV field for `value`: quoted when it was, or when the value needs it (delimiter, quote, line break, edge blanks). */
export function encodeCsvField(value: string, delimiter: string, keepQuoted: boolean): string {
  const needs = keepQuoted || value.includes(delimiter) || /["\r\n]/.test(value) || value !== value.trim();
  return needs ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A JSON literal for a new label replacing a value of type `previous`: a number stays a number when the label is one. */
export function encodeJsonLabel(value: string, previous: JsonNode['type'] | undefined): string {
  if (previous === 'number' && /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(value) && String(Number(value)) === value) return value;
  return JSON.stringify(value);
}

/** Why a label could not be changed; the message is meant for the user. */
export class LabelEditError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabelEditError';
  }
}

/**
 * The edit that changes the label on a 1-based line from `expected` to `newLabel`, touching nothing else. Throws
 * LabelEditError when the columns cannot be found, the line holds no record, or its label is no longer `expected`
 * (the file changed since the evaluation).
 */
export function changeLabelEdit(
  text: string,
  kind: LabelFileKind,
  line: number,
  expected: string,
  newLabel: string,
  options: LabelColumnOptions = {},
): TextEdit {
  if (newLabel.trim() === '' || newLabel !== newLabel.trim()) throw new LabelEditError(`'${newLabel}' is not a usable label (empty, or blanks at its ends)`);
  // The reader refuses a line break in the label column (a quoted field spans lines only in other columns).
  if (/[\r\n]/.test(newLabel)) throw new LabelEditError('a label cannot contain a line break');
  const layout = labelFileLayout(text, kind, options);
  if (!layout) throw new LabelEditError('cannot find the image and label columns of this label file');
  const fields = fieldsOnLine(text, layout, line);
  if (!fields) throw new LabelEditError(`line ${line} holds no label record any more; evaluate the dataset again`);
  if (fields.label.value !== expected) {
    throw new LabelEditError(`the label on line ${line} is now '${fields.label.value}', not '${expected}'; evaluate the dataset again`);
  }
  const replacement = kind === 'jsonl' ? encodeJsonLabel(newLabel, fields.label.jsonType) : encodeCsvField(newLabel, layout.delimiter, fields.label.quoted);
  return { offset: fields.label.start, length: fields.label.end - fields.label.start, text: replacement };
}


/**
 * The edit that deletes the whole record on a 1-based line (its line break included; a quoted CSV field spanning
 * lines takes its record's lines with it), touching nothing else. Throws LabelEditError when the columns cannot be
 * found, the line holds no record, or its label is no longer `expectedLabel` (the file changed since the evaluation).
 */
export function dropRecordEdit(text: string, kind: LabelFileKind, line: number, expectedLabel: string, options: LabelColumnOptions = {}): TextEdit {
  const layout = labelFileLayout(text, kind, options);
  if (!layout) throw new LabelEditError('cannot find the image and label columns of this label file');
  const starts = lineStarts(text, kind);
  const fields = fieldsOnLine(text, layout, line, starts);
  if (!fields) throw new LabelEditError(`line ${line} holds no label record any more; evaluate the dataset again`);
  if (fields.label.value !== expectedLabel) {
    throw new LabelEditError(`the label on line ${line} is now '${fields.label.value}', not '${expectedLabel}'; evaluate the dataset again`);
  }
  const begin = starts[line - 1];
  let end: number;
  if (kind === 'jsonl') {
    const nl = text.indexOf('\n', begin);
    end = nl < 0 ? text.length : nl + 1;
  } else {
    const rec = readDelimitedRecord(text, begin, layout.delimiter);
    end = 'next' in rec ? rec.next : text.length;
  }
  return { offset: begin, length: end - begin, text: '' };
}
