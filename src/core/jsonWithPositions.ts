/**
 * A strict JSON parser (RFC 8259; a leading BOM is allowed) that keeps positions: every node carries its UTF-16 offset
 * and length, every property the offset of its key, so callers can report problems at a line and column and make
 * minimal text edits. Used for `.clip-lens.json`, template files, gate reports and label files edited in place.
 *
 * Nesting is limited to MAX_JSON_DEPTH levels: deeper text is refused with a JsonSyntaxError at the bracket that goes
 * too deep (the parser recurses, and so do the consumers of the tree), never a stack overflow.
 */

/** Objects and arrays nested deeper than this are refused (JsonSyntaxError). */
export const MAX_JSON_DEPTH = 512;


export type JsonNode =
  | { type: 'object'; offset: number; length: number; properties: JsonProperty[] }
  | { type: 'array'; offset: number; length: number; items: JsonNode[] }
  | { type: 'string'; offset: number; length: number; value: string }
  | { type: 'number'; offset: number; length: number; value: number }
  | { type: 'boolean'; offset: number; length: number; value: boolean }
  | { type: 'null'; offset: number; length: number; value: null };

export interface JsonProperty {
  key: string;
  keyOffset: number;
  keyLength: number;
  value: JsonNode;
}

/** A JSON syntax error at `offset` (UTF-16 index into the text). */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** {@link parseJsonTree}, or null when the text is not valid JSON. */
export function parseJsonTreeOrNull(text: string): JsonNode | null {
  try {
    return parseJsonTree(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) return null;
    throw e;
  }
}

/** Parse strict JSON (RFC 8259; a leading BOM is allowed) into a tree with offsets. Throws JsonSyntaxError. */
export function parseJsonTree(text: string): JsonNode {
  const p = new JsonTreeParser(text);
  return p.parseDocument();
}

class JsonTreeParser {
  private i = 0;
  private depth = 0;
  constructor(private readonly s: string) {
    if (s.charCodeAt(0) === 0xfeff) this.i = 1;
  }

  parseDocument(): JsonNode {
    this.ws();
    if (this.i >= this.s.length) throw new JsonSyntaxError('empty document: expected a JSON value', this.i);
    const v = this.value();
    this.ws();
    if (this.i < this.s.length) throw new JsonSyntaxError('unexpected text after the JSON value', this.i);
    return v;
  }

  private fail(message: string, at = this.i): never {
    throw new JsonSyntaxError(message, at);
  }

  private ws(): void {
    const s = this.s;
    for (;;) {
      const c = s.charCodeAt(this.i);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.i++;
      else if (c === 47 /* / */ && (s[this.i + 1] === '/' || s[this.i + 1] === '*')) this.fail('comments are not allowed in JSON');
      else return;
    }
  }

  private value(): JsonNode {
    const s = this.s;
    const start = this.i;
    const c = s[this.i];
    if (c === '{' || c === '[') {
      if (++this.depth > MAX_JSON_DEPTH) this.fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
      const node = c === '{' ? this.object() : this.array();
      this.depth--;
      return node;
    }
    if (c === '"') {
      const value = this.string();
      return { type: 'string', offset: start, length: this.i - start, value };
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, type, value] of [
      ['true', 'boolean', true],
      ['false', 'boolean', false],
      ['null', 'null', null],
    ] as const) {
      if (s.startsWith(word, this.i)) {
        this.i += word.length;
        return { type, offset: start, length: word.length, value } as JsonNode;
      }
    }
    if (c === undefined) this.fail('unexpected end of text: expected a value');
    if (c === "'") this.fail('strings must use double quotes');
    this.fail(`unexpected character ${JSON.stringify(c)}: expected a value`);
  }

  private object(): JsonNode {
    const start = this.i++;
    const properties: JsonProperty[] = [];
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return { type: 'object', offset: start, length: this.i - start, properties };
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') {
        if (this.s[this.i] === '}' && properties.length > 0) this.fail('trailing comma before }');
        this.fail(this.i >= this.s.length ? 'unexpected end of text: expected a property name' : 'expected a property name in double quotes');
      }
      const keyOffset = this.i;
      const key = this.string();
      const keyLength = this.i - keyOffset;
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected : after the property name');
      this.i++;
      this.ws();
      const value = this.value();
      properties.push({ key, keyOffset, keyLength, value });
      this.ws();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === '}') {
        this.i++;
        return { type: 'object', offset: start, length: this.i - start, properties };
      }
      this.fail(c === undefined ? 'unexpected end of text: expected , or }' : 'expected , or }');
    }
  }

  private array(): JsonNode {
    const start = this.i++;
    const items: JsonNode[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return { type: 'array', offset: start, length: this.i - start, items };
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] === ']' && items.length > 0) this.fail('trailing comma before ]');
      items.push(this.value());
      this.ws();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === ']') {
        this.i++;
        return { type: 'array', offset: start, length: this.i - start, items };
      }
      this.fail(c === undefined ? 'unexpected end of text: expected , or ]' : 'expected , or ]');
    }
  }

  private string(): string {
    const s = this.s;
    const open = this.i++;
    let out = '';
    let runStart = this.i;
    for (;;) {
      if (this.i >= s.length) this.fail('unterminated string', open);
      const c = s.charCodeAt(this.i);
      if (c === 34) {
        out += s.slice(runStart, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail('control character (such as a line break) in a string; escape it');
      if (c === 92) {
        out += s.slice(runStart, this.i);
        const e = s[this.i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && simple[e] !== undefined) {
          out += simple[e];
          this.i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(this.i + 2, this.i + 6))) {
          out += String.fromCharCode(parseInt(s.slice(this.i + 2, this.i + 6), 16));
          this.i += 6;
        } else {
          this.fail('invalid escape in a string');
        }
        runStart = this.i;
        continue;
      }
      this.i++;
    }
  }

  private number(): JsonNode {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m) this.fail('invalid number');
    const start = this.i;
    this.i += m[0].length;
    const next = this.s[this.i];
    if (next !== undefined && /[0-9A-Za-z_.]/.test(next)) this.fail('invalid number', start);
    return { type: 'number', offset: start, length: m[0].length, value: Number(m[0]) };
  }
}

/** Returns a function mapping a UTF-16 offset in `text` to a 1-based line and column. */
export function lineColumnFinder(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (offset: number) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  };
}
