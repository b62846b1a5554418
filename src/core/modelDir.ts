/**
 * The on-disk layout of a CLIP model directory, as Hugging Face / transformers.js exports it, so real downloaded
 * models drop in unchanged:
 *
 *   onnx/vision_model.onnx      input `pixel_values` float32 [N,3,H,W]        -> output `image_embeds` [N,D]
 *   onnx/text_model.onnx        input `input_ids` int64 [N,77] (+ optional `attention_mask`) -> `text_embeds` [N,D];
 *                               the sequence axis may be dynamic ([N,sequence_length], as optimum exports it): then
 *                               prompts run at their batch's longest length instead of 77 (textBatches.ts)
 *   onnx/*_quantized.onnx       optional 8-bit variants of both graphs
 *   tokenizer.json              (or vocab.json + merges.txt)
 *   preprocessor_config.json    resize / crop / normalisation of images
 *   config.json                 optional; logit scale (`logit_scale`, else exp(`logit_scale_init_value`), else 100)
 *
 * `resolveModelDir` returns the file paths or throws a ClipLensError naming the first problem; `validateModelDir`
 * lists every problem (and, with `deep`, opens the graphs with onnxruntime to check input/output names and types).
 * Cheap checks never load a graph: an .onnx file is checked by walking the top-level protobuf fields of its
 * ModelProto (ir_version first, a graph present, no field running past the end of the file), which catches empty,
 * truncated, HTML and Git-LFS-pointer files in a few small reads.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from './errors';
import { FILE_LIMITS, FileRefusedError, pathExists, readRegularFile } from './fileSystem';
import { readPreprocessorConfig } from './preprocessorConfig';

/** Absolute paths of the files of a usable model directory. */
export interface ModelFiles {
  /** Absolute model directory. */
  dir: string;
  /** Absolute path of the image encoder graph. */
  visionModel: string;
  /** Absolute path of the text encoder graph. */
  textModel: string;
  tokenizer: { tokenizerJson: string } | { vocabJson: string; mergesTxt: string };
  preprocessorConfig: string;
  /** Absolute path of config.json, or null when the directory has none (logit scale then defaults to 100). */
  config: string | null;
  /** True when the *_quantized.onnx graphs were selected. */
  quantized: boolean;
}

export interface ModelDirOptions {
  /**
   * true: require onnx/*_quantized.onnx; false: require the full-precision graphs; undefined (default): use the
   * full-precision graphs, or the quantized ones when the directory only has those (e.g. a quantized download).
   */
  quantized?: boolean;
}

export interface ValidateOptions extends ModelDirOptions {
  /** Also open both graphs with onnxruntime-node and check their input/output names, types and ranks (slower). */
  deep?: boolean;
}

/** One problem of a model directory. `file` is relative to the model directory (POSIX separators). */
export interface ModelDirProblem {
  file: string;
  /** 1-based line in `file`, for syntax errors in JSON and text files. */
  line?: number;
  message: string;
}

export interface ValidationResult {
  ok: boolean;
  problems: ModelDirProblem[];
}

/** The logit scale CLIP uses when config.json says nothing (exp(4.6052) of the original OpenAI release, clamped). */
export const DEFAULT_LOGIT_SCALE = 100;

/**
 * The logit scale from a parsed config.json: `logit_scale` if present (already exponentiated, e.g. 100), else
 * exp(`logit_scale_init_value`), else 100. Throws a ClipLensError naming `file` when a present value has the wrong type.
 */
export function readLogitScale(configJson: unknown, file: string): number {
  if (typeof configJson !== 'object' || configJson === null || Array.isArray(configJson)) {
    throw new ClipLensError('model-bad-config', `expected a JSON object, got ${describeJson(configJson)}`, { file });
  }
  const config = configJson as Record<string, unknown>;
  if (config.logit_scale !== undefined) {
    const v = config.logit_scale;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ClipLensError(
        'model-bad-config',
        `'logit_scale' must be a positive number (the already exponentiated scale, e.g. 100), got ${describeJson(v)}`,
        { file },
      );
    }
    return v;
  }
  if (config.logit_scale_init_value !== undefined) {
    const v = config.logit_scale_init_value;
    if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isFinite(Math.exp(v))) {
      throw new ClipLensError(
        'model-bad-config',
        `'logit_scale_init_value' must be a number (the log of the scale, e.g. 2.6592), got ${describeJson(v)}`,
        { file },
      );
    }
    return Math.exp(v);
  }
  return DEFAULT_LOGIT_SCALE;
}

/**
 * Resolve the files of a model directory. Throws a ClipLensError (code 'model-dir-missing', 'model-missing-file' or
 * 'model-bad-file') naming the first missing or malformed file and what was expected.
 */
export async function resolveModelDir(dir: string, options: ModelDirOptions = {}): Promise<ModelFiles> {
  const abs = path.resolve(dir);
  const { problems, files } = await inspect(abs, options, false);
  if (problems.length > 0) {
    const first = problems[0];
    const code = first.file === '.' ? 'model-dir-missing' : first.message.startsWith('missing') ? 'model-missing-file' : 'model-bad-file';
    throw new ClipLensError(code, first.message, { file: first.file === '.' ? abs : path.join(abs, first.file), line: first.line });
  }
  return files as ModelFiles;
}

/** List every problem of a model directory (all missing/malformed files), optionally checking the graphs deeply. */
export async function validateModelDir(dir: string, options: ValidateOptions = {}): Promise<ValidationResult> {
  const { problems } = await inspect(path.resolve(dir), options, options.deep === true);
  return { ok: problems.length === 0, problems };
}

// ---------------------------------------------------------------------------------------------------------------------

interface GraphSpec {
  role: 'vision' | 'text';
  base: 'vision_model' | 'text_model';
  description: string;
}

const GRAPHS: GraphSpec[] = [
  {
    role: 'vision',
    base: 'vision_model',
    description: "the ONNX image encoder (input 'pixel_values' float32 [N,3,H,W] -> output 'image_embeds' [N,D])",
  },
  {
    role: 'text',
    base: 'text_model',
    description: "the ONNX text encoder (input 'input_ids' int64 [N,77] -> output 'text_embeds' [N,D])",
  },
];

async function inspect(
  dir: string,
  options: ModelDirOptions,
  deep: boolean,
): Promise<{ problems: ModelDirProblem[]; files: ModelFiles | null }> {
  const problems: ModelDirProblem[] = [];
  const st = await statOrNull(dir);
  if (!st) return { problems: [{ file: '.', message: 'model directory does not exist' }], files: null };
  if (!st.isDirectory()) {
    return { problems: [{ file: '.', message: 'expected a model directory, found a file' }], files: null };
  }

  const quantized = await chooseVariant(dir, options.quantized);
  const graphPaths: Record<'vision' | 'text', string> = { vision: '', text: '' };
  for (const g of GRAPHS) {
    const rel = `onnx/${g.base}${quantized ? '_quantized' : ''}.onnx`;
    graphPaths[g.role] = rel;
    const problem = await checkGraphFile(dir, rel, g, quantized);
    if (problem) problems.push({ file: rel, message: problem });
    else if (deep) for (const message of await checkGraphDeep(path.join(dir, rel), g.role)) problems.push({ file: rel, message });
  }

  const tokenizer = await checkTokenizer(dir, problems);
  await checkPreprocessorConfig(dir, problems);
  const hasConfig = await checkConfig(dir, problems);


  if (problems.length > 0 || !tokenizer) return { problems, files: null };
  return {
    problems,
    files: {
      dir,
      visionModel: path.join(dir, graphPaths.vision),
      textModel: path.join(dir, graphPaths.text),
      tokenizer,
      preprocessorConfig: path.join(dir, 'preprocessor_config.json'),
      config: hasConfig ? path.join(dir, 'config.json') : null,
      quantized,
    },
  };
}

/** Which graph variant to check: explicit choice, else full precision unless only the quantized pair exists. */
async function chooseVariant(dir: string, requested: boolean | undefined): Promise<boolean> {
  if (requested !== undefined) return requested;
  const full = (await isFile(path.join(dir, 'onnx/vision_model.onnx'))) || (await isFile(path.join(dir, 'onnx/text_model.onnx')));
  if (full) return false;
  return (await isFile(path.join(dir, 'onnx/vision_model_quantized.onnx'))) && (await isFile(path.join(dir, 'onnx/text_model_quantized.onnx')));
}

/** A problem message for one graph file, or null when it looks like an ONNX model. */
async function checkGraphFile(dir: string, rel: string, g: GraphSpec, quantized: boolean): Promise<string | null> {
  const abs = path.join(dir, rel);
  const st = await statOrNull(abs);
  if (!st) return missingGraphMessage(dir, g, quantized);
  if (!st.isFile()) return `expected a file, found a directory; expected ${g.description}`;
  return checkOnnxBytes(abs, st.size);
}

async function missingGraphMessage(dir: string, g: GraphSpec, quantized: boolean): Promise<string> {
  const other = `onnx/${g.base}${quantized ? '' : '_quantized'}.onnx`;
  if (await isFile(path.join(dir, other))) {
    return quantized
      ? `missing; this model has no quantized variant (found ${other})`
      : `missing; only the quantized variant is present (found ${other}): select it with the quantized option`;
  }
  if (await isFile(path.join(dir, `${g.base}.onnx`))) {
    return `missing; found ${g.base}.onnx at the top level: move it into onnx/ (expected ${g.description})`;
  }
  for (const combined of ['onnx/model.onnx', 'model.onnx']) {
    if (await isFile(path.join(dir, combined))) {
      return `missing; found ${combined}, a combined CLIP graph: CLIP Lens needs the separate vision_model.onnx and text_model.onnx exports (expected ${g.description})`;
    }
  }
  return `missing; expected ${g.description}`;
}

/**
 * Cheap structural check of an ONNX ModelProto without loading it: the first field must be ir_version (tag 0x08),
 * every top-level field must be well formed and end inside the file, and field 7 (graph) must be present.
 */
export async function checkOnnxBytes(file: string, size: number): Promise<string | null> {
  if (size === 0) return 'empty file (0 bytes); expected an ONNX model (an interrupted download?)';
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(Math.min(size, 64));
    await fh.read(head, 0, head.length, 0);
    const text = head.toString('latin1');
    if (text.startsWith('version https://git-lfs')) {
      return 'is a Git LFS pointer, not the model: fetch the real file (git lfs pull) or use `clip-lens model download`';
    }
    if (/^\s*</.test(text)) return 'looks like an HTML/XML page, not an ONNX model (an error page saved as the model?)';
    if (head[0] !== 0x08) {
      return `not an ONNX model: a ModelProto starts with byte 0x08 (field 1, ir_version), this file starts with ${hexBytes(head, 4)}`;
    }
    let pos = 0;
    let fields = 0;
    let sawGraph = false;
    const buf = Buffer.alloc(10);
    while (pos < size) {
      if (++fields > 100_000) return 'not an ONNX model: too many top-level fields';
      const { bytesRead } = await fh.read(buf, 0, Math.min(10, size - pos), pos);
      const tag = readVarint(buf, 0, bytesRead);
      if (!tag) return `not an ONNX model: malformed protobuf field at byte ${pos}`;
      const fieldNo = Math.floor(tag.value / 8);
      const wire = tag.value % 8;
      if (fieldNo === 0) return `not an ONNX model: invalid field number 0 at byte ${pos}`;
      if (pos === 0 && fieldNo !== 1) return 'not an ONNX model: the first field is not ir_version';
      let next = pos + tag.length;
      if (wire === 0) {
        const v = readVarint(buf, tag.length, bytesRead);
        if (!v) return `truncated or malformed: varint field ${fieldNo} at byte ${pos} runs past the end of the file`;
        if (fieldNo === 1 && (v.value < 1 || v.value > 100)) {
          return `not an ONNX model: ir_version ${v.value} is out of range (expected 1..100)`;
        }
        next += v.length;
      } else if (wire === 2) {
        const len = readVarint(buf, tag.length, bytesRead);
        if (!len) return `truncated or malformed: length of field ${fieldNo} at byte ${pos} runs past the end of the file`;
        next += len.length + len.value;
        if (fieldNo === 7) sawGraph = true;
      } else if (wire === 1) next += 8;
      else if (wire === 5) next += 4;
      else return `not an ONNX model: unsupported protobuf wire type ${wire} at byte ${pos}`;
      if (next > size) {
        return `truncated: field ${fieldNo} at byte ${pos} needs ${next} bytes but the file has ${size} (an interrupted download?)`;
      }
      pos = next;
    }
    if (!sawGraph) return 'not an ONNX model: no graph (ModelProto field 7) in the file';
    return null;
  } finally {
    await fh.close();
  }
}

function readVarint(buf: Buffer, start: number, end: number): { value: number; length: number } | null {
  let value = 0;
  let mul = 1;
  for (let i = start; i < end && i < start + 8; i++) {
    value += (buf[i] & 0x7f) * mul;
    if ((buf[i] & 0x80) === 0) return { value, length: i - start + 1 };
    mul *= 128;
  }
  return null;
}

function hexBytes(buf: Buffer, n: number): string {
  return Array.from(buf.subarray(0, n), (b) => '0x' + b.toString(16).padStart(2, '0')).join(' ');
}

type TokenizerFiles = ModelFiles['tokenizer'];

async function checkTokenizer(dir: string, problems: ModelDirProblem[]): Promise<TokenizerFiles | null> {
  const tokJson = path.join(dir, 'tokenizer.json');
  if (await pathExists(tokJson, { followSymlinks: true })) {
    const parsed = await readJsonFile(dir, 'tokenizer.json', problems);
    if (parsed === undefined) return null;
    const model = isObject(parsed) ? parsed.model : undefined;
    if (!isObject(model)) {
      problems.push({ file: 'tokenizer.json', message: "no 'model' object; expected a BPE tokenizer with model.vocab and model.merges" });
      return null;
    }
    const missing: string[] = [];
    if (!isObject(model.vocab) || Object.keys(model.vocab).length === 0) missing.push('model.vocab (a non-empty token -> id object)');
    if (!Array.isArray(model.merges) || model.merges.length === 0) missing.push('model.merges (a non-empty list of merges)');
    if (missing.length > 0) {
      problems.push({ file: 'tokenizer.json', message: `lacks ${missing.join(' and ')}; expected a CLIP BPE tokenizer` });
      return null;
    }
    return { tokenizerJson: tokJson };
  }
  const vocab = path.join(dir, 'vocab.json');
  const merges = path.join(dir, 'merges.txt');
  const hasVocab = await pathExists(vocab, { followSymlinks: true });
  const hasMerges = await pathExists(merges, { followSymlinks: true });
  if (!hasVocab && !hasMerges) {
    problems.push({ file: 'tokenizer.json', message: 'missing; expected tokenizer.json, or vocab.json + merges.txt' });
    return null;
  }
  if (!hasVocab) {
    problems.push({ file: 'vocab.json', message: 'missing; merges.txt needs vocab.json next to it (or provide tokenizer.json)' });
    return null;
  }
  if (!hasMerges) {
    problems.push({ file: 'merges.txt', message: 'missing; vocab.json needs merges.txt next to it (or provide tokenizer.json)' });
    return null;
  }
  let ok = true;
  const v = await readJsonFile(dir, 'vocab.json', problems);
  if (v === undefined) ok = false;
  else if (!isObject(v) || Object.keys(v).length === 0 || !Object.values(v).every((x) => Number.isInteger(x))) {
    problems.push({ file: 'vocab.json', message: 'expected a non-empty JSON object mapping tokens to integer ids' });
    ok = false;
  }
  let mergesText: string;
  try {
    mergesText = (await readRegularFile(merges, { maxBytes: FILE_LIMITS.modelText, what: 'merges.txt' })).toString('utf8');
  } catch (e) {
    problems.push({ file: 'merges.txt', message: e instanceof FileRefusedError ? e.message.slice(e.message.indexOf(': ') + 2) : `cannot read: ${(e as Error).message}` });
    return null;
  }
  const lines = mergesText.split(/\r?\n/);
  const firstBad = lines.findIndex((l, i) => l !== '' && !(i === 0 && l.startsWith('#')) && l.split(' ').length !== 2);
  const mergeCount = lines.filter((l, i) => l !== '' && !(i === 0 && l.startsWith('#'))).length;
  if (firstBad >= 0) {
    problems.push({ file: 'merges.txt', line: firstBad + 1, message: `expected a merge 'a b' (two space-separated symbols), got ${JSON.stringify(lines[firstBad].slice(0, 40))}` });
    ok = false;
  } else if (mergeCount === 0) {
    problems.push({ file: 'merges.txt', message: 'no merges; expected one "a b" merge per line' });
    ok = false;
  }
  return ok ? { vocabJson: vocab, mergesTxt: merges } : null;
}

/** The loader's own reader and rules (preprocessorConfig.ts), so verify and load accept and refuse the same files. */
async function checkPreprocessorConfig(dir: string, problems: ModelDirProblem[]): Promise<void> {
  const file = 'preprocessor_config.json';
  if (!(await pathExists(path.join(dir, file), { followSymlinks: true }))) {
    problems.push({ file, message: 'missing; expected the image preprocessing settings (size, crop_size, image_mean, image_std)' });
    return;
  }
  try {
    await readPreprocessorConfig(path.join(dir, file));
  } catch (e) {
    if (!(e instanceof ClipLensError)) throw e;
    problems.push({ file, line: e.line, message: e.message.slice(ClipLensError.format('', { file: e.file, line: e.line }).length) });
  }
}

/** Returns true when config.json exists (whether or not it is valid). */
async function checkConfig(dir: string, problems: ModelDirProblem[]): Promise<boolean> {
  const file = 'config.json';
  if (!(await pathExists(path.join(dir, file), { followSymlinks: true }))) return false;
  const cfg = await readJsonFile(dir, file, problems);
  if (cfg === undefined) return true;
  try {
    readLogitScale(cfg, file);
  } catch (e) {
    if (!(e instanceof ClipLensError)) throw e;
    problems.push({ file, message: e.message.slice(`${file}: `.length) });
  }
  return true;
}

/** Deep check: open the graph with onnxruntime and compare its inputs/outputs with what CLIP Lens feeds and reads. */
async function checkGraphDeep(file: string, role: 'vision' | 'text'): Promise<string[]> {
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
  } catch (e) {
    return [`onnxruntime cannot load this graph: ${(e as Error).message.split('\n')[0]}`];
  }
  try {
    return graphInterfaceProblems(role, session.inputMetadata, session.outputMetadata);
  } finally {
    await session.release();
  }
}

/** Metadata of one graph input or output as onnxruntime reports it (tensor values have type and shape). */
export interface GraphValueInfo {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

/** Compare a graph's inputs/outputs with the interface CLIP Lens uses; one message per mismatch. */
export function graphInterfaceProblems(
  role: 'vision' | 'text',
  inputs: readonly GraphValueInfo[],
  outputs: readonly GraphValueInfo[],
): string[] {
  const problems: string[] = [];
  const names = (vs: readonly GraphValueInfo[]) => vs.map((v) => v.name).join(', ') || '(none)';
  const expectInput = role === 'vision' ? 'pixel_values' : 'input_ids';
  const expectOutput = role === 'vision' ? 'image_embeds' : 'text_embeds';
  const input = inputs.find((v) => v.name === expectInput);
  if (!input) problems.push(`expected input '${expectInput}', the graph has: ${names(inputs)}`);
  else {
    const wantType = role === 'vision' ? 'float32' : 'int64';
    if (input.type !== undefined && input.type !== wantType) problems.push(`input '${expectInput}' must be ${wantType}, the graph has ${input.type}`);
    const shape = input.shape ?? [];
    if (shape.length > 0) {
      if (role === 'vision') {
        if (shape.length !== 4) problems.push(`input 'pixel_values' must have rank 4 [N,3,H,W], the graph has [${shape.join(',')}]`);
        else if (typeof shape[1] === 'number' && shape[1] !== 3) problems.push(`input 'pixel_values' must have 3 channels, the graph has [${shape.join(',')}]`);
      } else if (shape.length !== 2) problems.push(`input 'input_ids' must have rank 2 [N,77], the graph has [${shape.join(',')}]`);
      else if (typeof shape[1] === 'number' && shape[1] > 0 && shape[1] !== 77) {
        problems.push(`input 'input_ids' must take 77 tokens (CLIP's context) or have a dynamic sequence axis, the graph has [${shape.join(',')}]`);
      }
    }
  }
  const allowed = role === 'vision' ? ['pixel_values'] : ['input_ids', 'attention_mask'];
  const extra = inputs.filter((v) => !allowed.includes(v.name)).map((v) => `'${v.name}'`);
  if (extra.length > 0) {
    problems.push(`the graph also requires input ${extra.join(', ')}, which CLIP Lens does not provide (it feeds ${allowed.map((a) => `'${a}'`).join(' and ')})`);
  }
  const output = outputs.find((v) => v.name === expectOutput);
  if (!output) problems.push(`expected output '${expectOutput}', the graph has: ${names(outputs)}`);
  else {
    if (output.type !== undefined && output.type !== 'float32') problems.push(`output '${expectOutput}' must be float32, the graph has ${output.type}`);
    const shape = output.shape ?? [];
    if (shape.length > 0 && shape.length !== 2) problems.push(`output '${expectOutput}' must have rank 2 [N,D], the graph has [${shape.join(',')}]`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------------
// Small file and JSON helpers.

async function statOrNull(p: string) {
  try {
    return await fsp.stat(p);
  } catch {
    return null;
  }
}

async function isFile(p: string): Promise<boolean> {
  return (await statOrNull(p))?.isFile() ?? false;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeJson(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** Parse a JSON file of the model directory; on failure push a problem naming the line and return undefined. */
async function readJsonFile(dir: string, rel: string, problems: ModelDirProblem[]): Promise<unknown> {
  let text: string;
  try {
    text = (await readRegularFile(path.join(dir, rel), { maxBytes: FILE_LIMITS.modelText, what: rel })).toString('utf8');
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code ?? (e instanceof FileRefusedError ? e.errno : undefined);
    problems.push({ file: rel, message: e instanceof FileRefusedError && e.reason !== 'missing' && e.reason !== 'unreadable' ? e.message.slice(e.message.indexOf(': ') + 2) : `cannot read: ${errno ?? (e as Error).message}` });
    return undefined;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch (e) {
    const offset = jsonErrorOffset(text);
    const line = text.slice(0, offset).split('\n').length;
    const reason = (e as Error).message.replace(/,? ".*" is not valid JSON$/s, '').replace(/ in JSON at position \d+.*$/s, '');
    problems.push({ file: rel, line, message: `invalid JSON (${reason}); expected a JSON object` });
    return undefined;
  }
}

/**
 * Offset of the first JSON syntax error in `text` (V8's messages do not always carry a position). A small recursive
 * descent scanner that only needs to be right about where valid JSON stops being valid.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const string = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '' || m[0] === '-') fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else number();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return text.length;
  } catch (pos) {
    if (typeof pos === 'number') return Math.min(pos, text.length);
    throw pos;
  }
}
