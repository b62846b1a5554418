/**
 * `preprocessor_config.json` (Hugging Face CLIPImageProcessor format): the one parser and the one set of rules, used
 * both when a model is loaded (runtime.ts -> ImagePreprocessor) and by `clip-lens model verify`, Select Model and the
 * download check (modelDir.ts). Missing keys take CLIPImageProcessor's defaults (size 224, crop 224, OpenAI's mean
 * and std, bicubic). Refused: `size` as {height, width} (a resize that ignores the aspect ratio), `longest_edge`,
 * `do_center_crop: false`, and the box (4) and hamming (5) resampling filters.
 * No sharp and no native code here, so the extension can check a folder without loading the image pipeline.
 */
import { ClipLensError } from './errors';
import { FILE_LIMITS, FileRefusedError, readRegularFile } from './fileSystem';
import { JsonSyntaxError, lineColumnFinder, parseJsonTree } from './jsonWithPositions';

/** Resampling filters of Hugging Face configs (`resample`: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic). */
export type ResampleFilter = 'bicubic' | 'bilinear' | 'nearest' | 'lanczos';

/** The parts of a Hugging Face `preprocessor_config.json` that determine the pixel tensor. */
export interface PreprocessorConfig {
  /** Resize so that the shortest side has this many pixels; null when `do_resize` is false. */
  resizeShortestEdge: number | null;
  /** Centre crop size; null only for configs without a centre crop (rejected by ImagePreprocessor). */
  crop: { height: number; width: number } | null;
  mean: [number, number, number];
  std: [number, number, number];
  /** Multiplies the uint8 values (`rescale_factor`, 1/255); 1 when `do_rescale` is false. */
  rescaleFactor: number;
  doNormalize: boolean;
  resample: ResampleFilter;
}

/** HF CLIPImageProcessor / OpenAI CLIP defaults. */
const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
const RESAMPLE_CODES: Record<number, ResampleFilter> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/**
 * Validate a parsed `preprocessor_config.json` (HF format). Missing keys take CLIPImageProcessor's defaults.
 * Errors are ClipLensErrors naming `file` and the offending key ('preprocessor-config-invalid', or
 * 'preprocessor-config-unsupported' for valid configs CLIP Lens cannot honour).
 */
export function parsePreprocessorConfig(json: unknown, file: string): PreprocessorConfig {
  const invalid = (key: string, message: string) =>
    new ClipLensError('preprocessor-config-invalid', `"${key}" ${message}`, { file });
  const unsupported = (key: string, message: string) =>
    new ClipLensError('preprocessor-config-unsupported', `"${key}" ${message}`, { file });
  if (!isObject(json)) {
    throw new ClipLensError('preprocessor-config-invalid', 'expected a JSON object', { file });
  }
  const bool = (key: string, fallback: boolean): boolean => {
    const v = json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw invalid(key, `must be true or false, found ${JSON.stringify(v)}`);
    return v;
  };
  const triple = (key: string, fallback: [number, number, number], nonZero: boolean): [number, number, number] => {
    const v = json[key];
    if (v === undefined || v === null) return [...fallback];
    const values = typeof v === 'number' ? [v, v, v] : v;
    if (!Array.isArray(values) || values.length !== 3 || !values.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw invalid(key, `must be a number or a list of 3 numbers (R, G, B), found ${JSON.stringify(v)}`);
    }
    if (nonZero && values.some((x) => x === 0)) throw invalid(key, 'must not contain 0');
    return [values[0], values[1], values[2]];
  };

  let resizeShortestEdge: number | null = null;
  if (bool('do_resize', true)) {
    const size = json.size;
    if (size === undefined || size === null) {
      resizeShortestEdge = 224;
    } else if (isPositiveInt(size)) {
      resizeShortestEdge = size;
    } else if (isObject(size) && size.shortest_edge !== undefined) {
      if (!isPositiveInt(size.shortest_edge)) throw invalid('size', 'shortest_edge must be a positive integer');
      if (size.longest_edge !== undefined) throw unsupported('size', 'with longest_edge is not supported');
      resizeShortestEdge = size.shortest_edge;
    } else if (isObject(size) && (size.height !== undefined || size.width !== undefined)) {
      throw unsupported('size', 'as {height, width} (resizing without keeping the aspect ratio) is not supported; CLIP uses {"shortest_edge": N}');
    } else {
      throw invalid('size', `must be a positive integer or {"shortest_edge": N}, found ${JSON.stringify(size)}`);
    }
  }

  if (!bool('do_center_crop', true)) {
    throw unsupported('do_center_crop', 'is false: every image would get its own tensor size; CLIP Lens needs a centre crop');
  }
  let crop: { height: number; width: number };
  const cropSize = json.crop_size;
  if (cropSize === undefined || cropSize === null) {
    crop = { height: 224, width: 224 };
  } else if (isPositiveInt(cropSize)) {
    crop = { height: cropSize, width: cropSize };
  } else if (isObject(cropSize) && isPositiveInt(cropSize.height) && isPositiveInt(cropSize.width)) {
    crop = { height: cropSize.height, width: cropSize.width };
  } else {
    throw invalid('crop_size', `must be a positive integer or {"height": H, "width": W}, found ${JSON.stringify(cropSize)}`);
  }

  const code = json.resample;
  let resample: ResampleFilter = 'bicubic';
  if (code !== undefined && code !== null) {
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 5) {
      throw invalid('resample', `must be a Pillow filter number 0..5, found ${JSON.stringify(code)}`);
    }
    const filter = RESAMPLE_CODES[code];
    if (!filter) throw unsupported('resample', `${code} (${code === 4 ? 'box' : 'hamming'}) is not supported`);
    resample = filter;
  }

  let rescaleFactor = 1;
  if (bool('do_rescale', true)) {
    const f = json.rescale_factor;
    if (f === undefined || f === null) rescaleFactor = 1 / 255;
    else if (typeof f === 'number' && Number.isFinite(f) && f > 0) rescaleFactor = f;
    else throw invalid('rescale_factor', `must be a positive number, found ${JSON.stringify(f)}`);
  }

  // do_convert_rgb is not read: the model takes 3 channels, so every image is converted to RGB.
  return {
    resizeShortestEdge,
    crop,
    mean: triple('image_mean', OPENAI_CLIP_MEAN, false),
    std: triple('image_std', OPENAI_CLIP_STD, true),
    rescaleFactor,
    doNormalize: bool('do_normalize', true),
    resample,
  };
}

/**
 * Read and validate a `preprocessor_config.json`; errors name the file (and the line for JSON syntax errors). A
 * leading BOM is allowed. Used when loading a model and by the model-folder check, so both accept the same files.
 */
export async function readPreprocessorConfig(file: string): Promise<PreprocessorConfig> {
  let text: string;
  try {
    text = (await readRegularFile(file, { maxBytes: FILE_LIMITS.modelText, code: 'preprocessor-config-unreadable', what: 'the preprocessor config' })).toString('utf8');
  } catch (err) {
    if (err instanceof FileRefusedError && err.reason === 'missing') throw new ClipLensError('preprocessor-config-missing', 'file not found', { file });
    throw err;
  }
  return parsePreprocessorConfigText(text, file);
}

/** {@link parsePreprocessorConfig} of a file's text; a JSON syntax error names the line. */
export function parsePreprocessorConfigText(text: string, file: string): PreprocessorConfig {
  let json: unknown;
  try {
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    // JSON.parse's messages do not always carry a position: the positional parser names the place.
    let message = (err as Error).message;
    let line: number | undefined;
    try {
      parseJsonTree(text);
    } catch (e) {
      if (!(e instanceof JsonSyntaxError)) throw e;
      message = e.message;
      line = lineColumnFinder(text)(e.offset).line;
    }
    throw new ClipLensError('preprocessor-config-invalid', `invalid JSON: ${message}`, { file, line });
  }
  return parsePreprocessorConfig(json, file);
}
