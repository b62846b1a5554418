/**
 * The text clean-up OpenAI's CLIP applies before BPE (`clip/simple_tokenizer.py`):
 *
 *     basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
 *     whitespace_clean(t) = regex.sub(r'\s+', ' ', t).strip()
 *
 * Hugging Face's fast CLIP tokenizer skips ftfy and html.unescape, so text with mojibake, HTML entities, curly
 * quotes, fullwidth letters or ligatures gets different token ids there. This module reproduces the Python
 * functions, not an approximation of them:
 *
 * - {@link fixText}: ftfy 6.3.1 `fix_text` with its default TextFixerConfig, every step ftfy runs by default:
 *   per-line segments; `unescape_html` ("auto": off once a segment contains '<'; HTML5 entities that end in ';'
 *   plus ftfy's all-caps variants such as `&EACUTE;`); `fix_encoding` (mojibake: the `is_bad` heuristic, re-encoding
 *   as latin-1, sloppy-windows-1252/1251/1250/1253/1254/1257, iso-8859-2, macroman or cp437 and decoding as UTF-8
 *   or ftfy's utf-8-variants (CESU-8, Java NUL), with `restore_byte_a0`, `replace_lossy_sequences`,
 *   `decode_inconsistent_utf8`, the latin-1 -> windows-1252 fallback and `fix_c1_controls`);
 *   `fix_latin_ligatures`; `fix_character_width`; `uncurl_quotes`; `fix_line_breaks`; `fix_surrogates`;
 *   `remove_terminal_escapes`; `remove_control_chars`; NFC; repeated until the segment stops changing.
 *   ftfy's tables and its mojibake regexes are generated from ftfy itself into ./textCleanData.ts.
 *   Not implemented: ftfy's non-default options (e.g. NFKC, fix_encoding=False), explanations, and
 *   `max_decode_length` is counted in UTF-16 units rather than code points (only matters for lines over 1e6
 *   characters).
 * - {@link htmlUnescape}: Python 3.11 `html.unescape` (numeric references with HTML5's replacements, the
 *   HTML5 named references, legacy names without ';', longest-prefix matching).
 * - {@link cleanText}: `whitespace_clean(basic_clean(t))`. Lower-casing is NOT done here: the tokenizer does it.
 *
 * Python and JS differ in what `\s`, `\w`, `\d` and `.` mean; the translated patterns use Python's exact sets.
 * NFC, lower-casing and `\p{L}` come from the JS engine's Unicode tables, so results can differ from a Python
 * with another Unicode version, but only on characters assigned after Unicode 14 (Python 3.11's version).
 * Pure TS, no I/O.
 */
import {
  BADNESS_SOURCE,
  CHARMAP_ENCODINGS,
  HTML5_ENTITIES,
  HTML5_LEGACY_NAMES,
  PY_SPACE_CLASS,
  REGEX_SPACE_CLASS,
  UTF8_DETECTOR_SOURCE,
  WIDTH_MAP,
} from './textCleanData';

// ---------------------------------------------------------------------------------------------------------------
// Python's html.unescape

/** html.entities.html5: names with ';' and the legacy ones without. */
const HTML5: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(HTML5_ENTITIES)) map.set(`${name};`, value);
  for (const name of HTML5_LEGACY_NAMES) {
    const value = HTML5_ENTITIES[name];
    if (value === undefined) throw new Error(`textCleanData: legacy entity ${name} has no ';' form`);
    map.set(name, value);
  }
  return map;
})();

/** html._invalid_charrefs: numeric references HTML5 maps to other characters. */
const INVALID_CHARREFS: ReadonlyMap<number, string> = new Map<number, string>([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'], [0x83, '\u0192'],
  [0x84, '\u201e'], [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'], [0x88, '\u02c6'], [0x89, '\u2030'],
  [0x8a, '\u0160'], [0x8b, '\u2039'], [0x8c, '\u0152'], [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'],
  [0x90, '\x90'], [0x91, '\u2018'], [0x92, '\u2019'], [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'],
  [0x96, '\u2013'], [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'], [0x9a, '\u0161'], [0x9b, '\u203a'],
  [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

/** html._invalid_codepoints: numeric references that decode to nothing. */
function isInvalidCodepoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe // U+FFFE, U+FFFF, U+1FFFE, ... U+10FFFF (callers exclude cp > 0x10FFFF first)
  );
}

const CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function replaceCharref(match: string, ref: string): string {
  if (ref[0] === '#') {
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    // Beyond 2^53 parseInt loses precision, but such numbers are all > 0x10FFFF, which is all that matters.
    const num = parseInt(digits, hex ? 16 : 10);
    const replaced = INVALID_CHARREFS.get(num);
    if (replaced !== undefined) return replaced;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (isInvalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  }
  const whole = HTML5.get(ref);
  if (whole !== undefined) return whole;
  // Longest prefix that is a name (html5 names are ASCII, so UTF-16 and code point prefixes agree).
  for (let x = ref.length - 1; x > 1; x--) {
    const value = HTML5.get(ref.slice(0, x));
    if (value !== undefined) return value + ref.slice(x);
  }
  return match;
}

/** Python's `html.unescape`: replaces named and numeric character references the way HTML5 parsers do. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF_RE, replaceCharref);
}

// ---------------------------------------------------------------------------------------------------------------
// ftfy.fixes.unescape_html

/** ftfy.chardata.HTML_ENTITIES: '&name;' for html5 names with ';', plus all-caps variants of lower-case names. */
const FTFY_ENTITIES: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(HTML5_ENTITIES)) {
    map.set(`&${name};`, value);
    if (name === name.toLowerCase()) {
      const upper = `&${name.toUpperCase()};`;
      if (htmlUnescape(upper) === upper) map.set(upper, value.toUpperCase());
    }
  }
  return map;
})();

const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy's `unescape_html`: only unambiguous references ending in ';' (plus ftfy's all-caps ones). */
export function ftfyUnescapeHtml(text: string): string {
  return text.replace(FTFY_ENTITY_RE, (entity) => {
    const known = FTFY_ENTITIES.get(entity);
    if (known !== undefined) return known;
    if (entity.startsWith('&#')) {
      const unescaped = htmlUnescape(entity);
      // html.unescape decoded only part of it (e.g. '&#12a;'): keep the original.
      return unescaped.includes(';') ? entity : unescaped;
    }
    return entity;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Single-byte codecs and UTF-8. Bytes are carried as "binary strings": one char per byte, code 0..255.

interface Charmap {
  name: string;
  /** Char -> byte for everything this codec can encode (bytes 0x00..0x7F map to themselves). */
  encoder: ReadonlyMap<string, number>;
}

const CHARMAPS: readonly Charmap[] = CHARMAP_ENCODINGS.map(({ name, high }) => {
  const encoder = new Map<string, number>();
  const sloppy = name.startsWith('sloppy-');
  for (let b = 0; b < 0x80; b++) encoder.set(String.fromCharCode(b), b);
  if (sloppy) {
    // ftfy's sloppy codecs decode byte 0x1A as U+FFFD (and so cannot encode U+001A).
    encoder.delete('\x1a');
    encoder.set('\ufffd', 0x1a);
  }
  [...high].forEach((ch, i) => encoder.set(ch, 0x80 + i));
  return { name, encoder };
});

const SLOPPY_1252_HIGH = CHARMAP_ENCODINGS.find((c) => c.name === 'sloppy-windows-1252')?.high ?? '';
if ([...SLOPPY_1252_HIGH].length !== 128) throw new Error('textCleanData: sloppy-windows-1252 table missing');
/** Bytes windows-1252 leaves undefined (Python's cp1252 refuses them; ftfy's sloppy codec passes them through). */
const CP1252_UNDEFINED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** Encode with a single-byte codec; null when some character is not in it (Python would raise). */
function encodeCharmap(text: string, map: Charmap): string | null {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const b = map.encoder.get(text[i]);
    if (b === undefined) return null;
    out += String.fromCharCode(b);
  }
  return out;
}

function isAscii(text: string): boolean {
  return /^[\x00-\x7f]*$/.test(text);
}

/**
 * Strict UTF-8 decoding as Python does it (shortest forms only, no surrogates, at most U+10FFFF); with
 * `variants`, ftfy's "utf-8-variants" also accepts C0 80 as U+0000 and CESU-8 surrogate pairs. Null on error.
 */
function decodeUtf8(bytes: string, variants: boolean): string | null {
  const n = bytes.length;
  const at = (i: number): number => (i < n ? bytes.charCodeAt(i) : -1);
  const cont = (i: number, lo = 0x80, hi = 0xbf): boolean => at(i) >= lo && at(i) <= hi;
  const out: string[] = [];
  let i = 0;
  while (i < n) {
    const b = at(i);
    if (b < 0x80) {
      out.push(bytes[i]);
      i += 1;
    } else if (variants && b === 0xc0 && at(i + 1) === 0x80) {
      out.push('\u0000');
      i += 2;
    } else if (
      variants &&
      b === 0xed &&
      cont(i + 1, 0xa0, 0xaf) &&
      cont(i + 2) &&
      at(i + 3) === 0xed &&
      cont(i + 4, 0xb0, 0xbf) &&
      cont(i + 5)
    ) {
      const cp =
        ((at(i + 1) & 0x0f) << 16) + ((at(i + 2) & 0x3f) << 10) + ((at(i + 4) & 0x0f) << 6) + (at(i + 5) & 0x3f);
      out.push(String.fromCodePoint(cp + 0x10000));
      i += 6;
    } else if (b >= 0xc2 && b <= 0xdf && cont(i + 1)) {
      out.push(String.fromCharCode(((b & 0x1f) << 6) | (at(i + 1) & 0x3f)));
      i += 2;
    } else if (
      b >= 0xe0 &&
      b <= 0xef &&
      cont(i + 1, b === 0xe0 ? 0xa0 : 0x80, b === 0xed ? 0x9f : 0xbf) &&
      cont(i + 2)
    ) {
      out.push(String.fromCharCode(((b & 0x0f) << 12) | ((at(i + 1) & 0x3f) << 6) | (at(i + 2) & 0x3f)));
      i += 3;
    } else if (
      b >= 0xf0 &&
      b <= 0xf4 &&
      cont(i + 1, b === 0xf0 ? 0x90 : 0x80, b === 0xf4 ? 0x8f : 0xbf) &&
      cont(i + 2) &&
      cont(i + 3)
    ) {
      const cp = ((b & 0x07) << 18) | ((at(i + 1) & 0x3f) << 12) | ((at(i + 2) & 0x3f) << 6) | (at(i + 3) & 0x3f);
      out.push(String.fromCodePoint(cp));
      i += 4;
    } else {
      return null;
    }
  }
  return out.join('');
}

// ---------------------------------------------------------------------------------------------------------------
// ftfy's mojibake detection and repair (ftfy/__init__.py, fixes.py, chardata.py, badness.py)

const BADNESS_RE = new RegExp(BADNESS_SOURCE, 'u');
const UTF8_DETECTOR_RE = new RegExp(UTF8_DETECTOR_SOURCE, 'u');
const UTF8_DETECTOR_ALL_RE = new RegExp(UTF8_DETECTOR_SOURCE, 'gu');
const C1_CONTROL_RE = /[\x80-\x9f]/;
const C1_CONTROLS_RE = /[\x80-\x9f]/g;

/** ftfy.badness.is_bad: does the text contain a sequence that is much more likely mojibake than intended? */
export function isBad(text: string): boolean {
  return BADNESS_RE.test(text);
}

const ALTERED_UTF8_SOURCE =
  '[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9][ ]' +
  '|[\\xe2\\xe3][ ][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]' +
  '|[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf][ ]' +
  '|[\\xf0][ ][\\x80-\\xbf][\\x80-\\xbf]' +
  '|[\\xf0][\\x80-\\xbf][ ][\\x80-\\xbf]' +
  '|[\\xf0][\\x80-\\xbf][\\x80-\\xbf][ ]';
const ALTERED_UTF8_RE = new RegExp(ALTERED_UTF8_SOURCE);
const ALTERED_UTF8_ALL_RE = new RegExp(ALTERED_UTF8_SOURCE, 'g');
const A_GRAVE_WORD_RE = /\xc3 (?! |quele|quela|quilo|s )/g;
const LOSSY_UTF8_RE = new RegExp(
  '[\\xc2-\\xdf][\\x1a]' +
    '|[\\xc2-\\xc3][?]' +
    '|\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]' +
    '|\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]' +
    '|[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]' +
    '|[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]' +
    '|[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]' +
    '|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]' +
    '|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]' +
    '|\\x1a',
  'g',
);

/** ftfy.fixes.restore_byte_a0: put back byte A0 where a space broke an otherwise convincing UTF-8 sequence. */
function restoreByteA0(bytes: string): string {
  return bytes
    .replace(A_GRAVE_WORD_RE, '\xc3\xa0 ')
    .replace(ALTERED_UTF8_ALL_RE, (m) => m.replace(/ /g, '\xa0'));
}

/** ftfy.fixes.replace_lossy_sequences: UTF-8 sequences with lost bytes (0x1A, '?') become U+FFFD's bytes. */
function replaceLossySequences(bytes: string): string {
  return bytes.replace(LOSSY_UTF8_RE, '\xef\xbf\xbd');
}

/** ftfy.fixes.fix_c1_controls: C1 controls read as their windows-1252 characters. */
function fixC1Controls(text: string): string {
  return text.replace(C1_CONTROLS_RE, (c) => SLOPPY_1252_HIGH[c.charCodeAt(0) - 0x80]);
}

/** ftfy.fixes.decode_inconsistent_utf8: fix UTF-8 mojibake embedded in otherwise different text. */
function decodeInconsistentUtf8(text: string): string {
  return text.replace(UTF8_DETECTOR_ALL_RE, (substr) =>
    substr.length < text.length && isBad(substr) ? fixEncoding(substr) : substr,
  );
}

/** Python's strict `text.encode('latin-1').decode('windows-1252')`; null when it would raise. */
function latin1AsWindows1252(text: string): string | null {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return null;
    if (c < 0x80 || c >= 0xa0) out += text[i];
    else if (CP1252_UNDEFINED.has(c)) return null;
    else out += SLOPPY_1252_HIGH[c - 0x80];
  }
  return out;
}

/** ftfy's `_fix_encoding_one_step_and_explain`, without the explanation. */
function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || isAscii(text) || !isBad(text)) return text;
  const possible: string[] = [];
  for (const map of CHARMAPS) {
    let bytes = encodeCharmap(text, map);
    if (bytes === null) continue;
    possible.push(map.name);
    if (map.name !== 'macroman' && ALTERED_UTF8_RE.test(bytes)) bytes = restoreByteA0(bytes);
    if (map.name.startsWith('sloppy')) bytes = replaceLossySequences(bytes);
    const fixed = decodeUtf8(bytes, bytes.includes('\xed') || bytes.includes('\xc0'));
    if (fixed !== null) return fixed;
  }
  if (UTF8_DETECTOR_RE.test(text)) {
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }
  // ftfy checks for 'windows-1252' among the possible encodings, which only ever holds 'sloppy-windows-1252';
  // so text encodable as latin-1 always takes this branch. Reproduced as is.
  if (possible.includes('latin-1')) {
    const fixed = latin1AsWindows1252(text);
    if (fixed !== null && fixed !== text) return fixed;
  }
  if (C1_CONTROL_RE.test(text)) return fixC1Controls(text);
  return text;
}

/** ftfy.fix_encoding: repeat one repair step until the text stops changing. */
export function fixEncoding(text: string): string {
  for (;;) {
    const fixed = fixEncodingOneStep(text);
    if (fixed === text) return text;
    text = fixed;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ftfy's character-level fixers

const LIGATURES: ReadonlyMap<string, string> = new Map([
  ['Ĳ', 'IJ'], ['ĳ', 'ij'], ['ŉ', 'ʼn'], ['Ǳ', 'DZ'], ['ǲ', 'Dz'], ['ǳ', 'dz'], ['Ǆ', 'DŽ'], ['ǅ', 'Dž'],
  ['ǆ', 'dž'], ['Ǉ', 'LJ'], ['ǈ', 'Lj'], ['ǉ', 'lj'], ['Ǌ', 'NJ'], ['ǋ', 'Nj'], ['ǌ', 'nj'], ['ﬀ', 'ff'],
  ['ﬁ', 'fi'], ['ﬂ', 'fl'], ['ﬃ', 'ffi'], ['ﬄ', 'ffl'], ['ﬅ', 'ſt'], ['ﬆ', 'st'],
]);
const LIGATURE_RE = new RegExp(`[${[...LIGATURES.keys()].join('')}]`, 'g');

const WIDTH: ReadonlyMap<string, string> = new Map(WIDTH_MAP.map(([cp, s]) => [String.fromCharCode(cp), s]));
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;

/** ANSI terminal escapes; Python's \d is any Unicode decimal digit. */
const ANSI_RE = /\x1b\[((?:\p{Nd}|;)*)([a-zA-Z])/gu;
/** ftfy.chardata.CONTROL_CHARS. */
const CONTROL_CHARS_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function fixSegment(segment: string, unescapeHtml: boolean): string {
  let text = segment;
  for (;;) {
    const orig = text;
    if (unescapeHtml) text = ftfyUnescapeHtml(text);
    text = fixEncoding(text);
    text = fixC1Controls(text);
    text = text.replace(LIGATURE_RE, (c) => LIGATURES.get(c) ?? c);
    text = text.replace(WIDTH_RE, (c) => WIDTH.get(c) ?? c);
    text = text.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
    text = text
      .replace(/\r\n/g, '\n')
      .replace(/[\r\u2028\u2029\x85]/g, '\n');
    text = text.replace(LONE_SURROGATE_RE, '\ufffd');
    text = text.replace(ANSI_RE, '');
    text = text.replace(CONTROL_CHARS_RE, '');
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

const MAX_DECODE_LENGTH = 1_000_000;

/** ftfy 6.3.1 `fix_text(text)` with the default configuration (see the module comment for the steps). */
export function fixText(text: string): string {
  let unescapeHtml = true; // "auto" until a segment containing '<' is seen
  const out: string[] = [];
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    if (end - pos > MAX_DECODE_LENGTH) {
      end = pos + MAX_DECODE_LENGTH;
      if (/[\udc00-\udfff]/.test(text[end] ?? '')) end -= 1; // do not split a surrogate pair
    }
    const segment = text.slice(pos, end);
    if (unescapeHtml && segment.includes('<')) unescapeHtml = false;
    out.push(fixSegment(segment, unescapeHtml));
    pos = end;
  }
  return out.join('');
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI's basic_clean + whitespace_clean

const PY_STRIP_RE = new RegExp(`^[${PY_SPACE_CLASS}]+|[${PY_SPACE_CLASS}]+$`, 'gu');
const REGEX_SPACE_RUN_RE = new RegExp(`[${REGEX_SPACE_CLASS}]+`, 'gu');

/** Python's str.strip() with no argument. */
function pyStrip(text: string): string {
  return text.replace(PY_STRIP_RE, '');
}

/**
 * OpenAI CLIP's `whitespace_clean(basic_clean(text))`: ftfy `fix_text`, `html.unescape` twice, strip, collapse
 * whitespace runs to one space, strip. Does not lower-case (the tokenizer does, as OpenAI's `encode` does after).
 */
export function cleanText(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(fixText(text))));
  return pyStrip(basic.replace(REGEX_SPACE_RUN_RE, ' '));
}
