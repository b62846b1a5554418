/**
 * Image preprocessing faithful to OpenAI CLIP (`clip.load(...)[1]`, i.e. torchvision Resize(bicubic) +
 * CenterCrop + ToTensor + Normalize on a Pillow image) and to Hugging Face's CLIPImageProcessor, driven by a
 * `preprocessor_config.json`.
 *
 * Pipeline per image (see docs/preprocessing.md for the measured fidelity and the choices per image kind):
 *  1. decode with sharp (libvips) on libuv threads; refuse more than `maxPixels` pixels from the header alone;
 *  2. apply the EXIF orientation; ignore embedded ICC profiles (as Pillow does);
 *  3. make it 8-bit RGB *before* resizing: alpha dropped (stored RGB kept), grey replicated, palette expanded,
 *     16-bit reduced by `>> 8`, CMYK converted with Pillow's naive formula;
 *  4. resize the shortest side to `size` (long side `int(size * long / short)`) with an antialiased kernel:
 *     downscaling by libvips' `cubic` (Catmull-Rom, a = -0.5, as Pillow's BICUBIC) in steps of less than 4x
 *     (libvips would otherwise box-filter first), very large JPEGs with a DCT scale-down on load;
 *     upscaling by an exact port of Pillow's resampling (libvips' upsampler is not centre-aligned);
 *  5. centre crop at `round((L - crop) / 2)` (Python's round, half to even), zero padding when smaller;
 *  6. `(u8 * rescale - mean) / std` in float32 exactly as torch computes it, written CHW into the caller's array.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { ClipLensError } from './errors';
import { isPositiveInt, type PreprocessorConfig, type ResampleFilter } from './preprocessorConfig';
import { FILE_LIMITS, FileRefusedError, readRegularFile } from './fileSystem';

// Every image is decoded once per run: libvips' operation cache (50 MB by default) only holds memory that grows
// with the dataset. Thumbnails keep their own small LRU (thumbnails.ts).
sharp.cache(false);

export interface PreprocessOptions {
  /** Refuse images with more pixels than this (decompression bombs), checked from the header. Default 100 MP. */
  maxPixels?: number;
  /**
   * Let libjpeg scale very large JPEGs down by 2, 4 or 8 while decoding (only when the image is at least
   * 8x larger than the resized size, always leaving at least 2x for the bicubic kernel). About twice as fast
   * on camera photos, slightly different pixels (see docs/preprocessing.md). Default true.
   */
  jpegShrinkOnLoad?: boolean;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * A counting seam for tests: called once per image decoded by any ImagePreprocessor (preprocess or decodeWhole),
 * with the image's name. The evaluation decodes each image once per cold run (its perceptual hash comes from the
 * same decode); test/unit/duplicates.test.ts counts.
 */
export const decodeObserver: { onDecode: ((name: string) => void) | null } = { onDecode: null };

/** Bump whenever a change in this file can change an output tensor (it is part of the fingerprint). */
const ALGORITHM_VERSION = 1;
/** libvips' resize box-filters first when reducing by 4x or more; every kernel step stays below this. */
const MAX_KERNEL_STEP = 3.9;
/** JPEG shrink-on-load is used only when the total reduction is at least this. */
const SHRINK_ON_LOAD_MIN_FACTOR = 8;

// ---------------------------------------------------------------------------------------------------------------
// Geometry (torchvision's conventions, which OpenAI CLIP uses)

export interface Size {
  width: number;
  height: number;
}

/** Python's round(): nearest integer, halves to even (2.5 -> 2, 3.5 -> 4, -1.5 -> -2). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff < 0.5) return f;
  if (diff > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Size after resizing the shortest side to `shortest`: the long side is `int(shortest * long / short)`. */
export function shortestEdgeSize(width: number, height: number, shortest: number): Size {
  if (width <= height) return { width: shortest, height: Math.trunc((shortest * height) / width) };
  return { width: Math.trunc((shortest * width) / height), height: shortest };
}

/**
 * Centre crop of `crop` pixels along an axis of `length` pixels: copy `len` pixels from `src` to `dst`.
 * When the axis is shorter than the crop, torchvision pads `(crop - length) // 2` zeros before it.
 */
export interface AxisCrop {
  src: number;
  dst: number;
  len: number;
}

export function centreCropAxis(length: number, crop: number): AxisCrop {
  if (length >= crop) return { src: roundHalfEven((length - crop) / 2), dst: 0, len: crop };
  return { src: 0, dst: Math.floor((crop - length) / 2), len: length };
}

/**
 * The sizes of the successive libvips resize passes from (width, height) to `target`: each pass reduces by
 * less than 4x (so libvips never box-filters), except a first pass that may use JPEG shrink-on-load, which
 * libjpeg performs by 2, 4 or 8 in the DCT and leaves 2x..3.5x for the kernel. Empty when no resize is needed.
 */
export function planResizeSteps(width: number, height: number, target: Size, shrinkOnLoad: boolean): Size[] {
  if (width === target.width && height === target.height) return [];
  const steps: Size[] = [];
  let w = width;
  let h = height;
  const fx = width / target.width;
  const fy = height / target.height;
  if (shrinkOnLoad && Math.min(fx, fy) >= SHRINK_ON_LOAD_MIN_FACTOR) {
    // sharp (fastShrinkOnLoad: false) picks the DCT scale from the smaller factor and leaves at least 2x.
    // Reduce this pass to at most 3.5x the DCT scale so that the kernel's share stays below 4x.
    const dct = Math.min(fx, fy) >= 16 ? 8 : 4;
    const fraction = (dct * 3.5) / Math.max(fx, fy);
    if (fraction >= 1) return [{ ...target }];
    w = Math.round(width / (fx * fraction));
    h = Math.round(height / (fy * fraction));
    steps.push({ width: w, height: h });
  }
  const rest = Math.max(w / target.width, h / target.height);
  const n = rest < 4 ? 1 : Math.ceil(Math.log(rest) / Math.log(MAX_KERNEL_STEP));
  for (let i = 1; i < n; i++) {
    steps.push({
      width: Math.round(w / Math.pow(w / target.width, i / n)),
      height: Math.round(h / Math.pow(h / target.height, i / n)),
    });
  }
  steps.push({ ...target });
  return steps;
}

// ---------------------------------------------------------------------------------------------------------------
// Pillow's resampling (libImaging/Resample.c, 8 bits per channel), for the pixels of a crop region only.
// Used for upscaling, where libvips has no antialiased, centre-aligned, edge-renormalised equivalent.

interface KernelFilter {
  support: number;
  fn: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const PILLOW_FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, KernelFilter> = {
  bilinear: { support: 1, fn: (x) => { const a = Math.abs(x); return a < 1 ? 1 - a : 0; } },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 22; // 32 - 8 - 2, as Pillow
const PRECISION_ONE = 1 << PRECISION_BITS;

interface Coefficients {
  /** Per output sample: first input index and number of taps. */
  bounds: Int32Array;
  /** Per output sample, `ksize` fixed-point weights. */
  weights: Int32Array;
  ksize: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for output samples first .. first+count-1. */
function precomputeCoefficients(inSize: number, outSize: number, first: number, count: number, filter: KernelFilter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(count * 2);
  const weights = new Int32Array(count * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let i = 0; i < count; i++) {
    const center = (first + i + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[i * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * PRECISION_ONE) : Math.trunc(0.5 + w * PRECISION_ONE);
    }
    bounds[i * 2] = xmin;
    bounds[i * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

function clip8(ss: number): number {
  const v = Math.floor(ss / PRECISION_ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Pillow's nearest resize (an affine transform sampling at accumulated `(x + 0.5) * scale`). */
function nearestIndices(inSize: number, outSize: number, first: number, count: number): Int32Array {
  const scale = inSize / outSize;
  const out = new Int32Array(count);
  let xo = scale * 0.5;
  for (let x = 0; x < first + count; x++) {
    if (x >= first) out[x - first] = Math.min(inSize - 1, Math.max(0, Math.trunc(xo)));
    xo += scale;
  }
  return out;
}

/**
 * Resize an RGB image (3 bytes per pixel) to outW x outH as Pillow's `Image.resize` does, computing only the
 * region [x0, x0 + cw) x [y0, y0 + ch) of the result (each output pixel depends only on its own input window,
 * so the region equals the same region of Pillow's full result). Returns cw x ch x 3 bytes.
 */
export function pillowResizeRegion(
  src: Uint8Array, width: number, height: number, outW: number, outH: number,
  region: { x0: number; y0: number; width: number; height: number }, filter: ResampleFilter,
): Uint8Array {
  const { x0, y0, width: cw, height: ch } = region;
  const out = new Uint8Array(cw * ch * 3);
  if (filter === 'nearest') {
    const xs = nearestIndices(width, outW, x0, cw);
    const ys = nearestIndices(height, outH, y0, ch);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const s = (ys[y] * width + xs[x]) * 3;
        const d = (y * cw + x) * 3;
        out[d] = src[s]; out[d + 1] = src[s + 1]; out[d + 2] = src[s + 2];
      }
    }
    return out;
  }
  const kernel = PILLOW_FILTERS[filter];
  const needH = outW !== width;
  const needV = outH !== height;
  const vert = needV ? precomputeCoefficients(height, outH, y0, ch, kernel) : null;
  // Input rows the vertical pass reads.
  let rowFirst = y0;
  let rowEnd = y0 + ch;
  if (vert) {
    rowFirst = Infinity;
    rowEnd = 0;
    for (let i = 0; i < ch; i++) {
      rowFirst = Math.min(rowFirst, vert.bounds[i * 2]);
      rowEnd = Math.max(rowEnd, vert.bounds[i * 2] + vert.bounds[i * 2 + 1]);
    }
  }
  const rows = rowEnd - rowFirst;
  // Horizontal pass (or a plain copy of the region's columns) into temp: rows x cw x 3.
  const temp = new Uint8Array(rows * cw * 3);
  if (needH) {
    const hor = precomputeCoefficients(width, outW, x0, cw, kernel);
    const half = PRECISION_ONE / 2;
    for (let r = 0; r < rows; r++) {
      const rowBase = (rowFirst + r) * width;
      for (let i = 0; i < cw; i++) {
        const xmin = hor.bounds[i * 2];
        const taps = hor.bounds[i * 2 + 1];
        const kb = i * hor.ksize;
        let s0 = half, s1 = half, s2 = half;
        for (let x = 0; x < taps; x++) {
          const w = hor.weights[kb + x];
          const p = (rowBase + xmin + x) * 3;
          s0 += src[p] * w; s1 += src[p + 1] * w; s2 += src[p + 2] * w;
        }
        const d = (r * cw + i) * 3;
        temp[d] = clip8(s0); temp[d + 1] = clip8(s1); temp[d + 2] = clip8(s2);
      }
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const s = ((rowFirst + r) * width + x0) * 3;
      temp.set(src.subarray(s, s + cw * 3), r * cw * 3);
    }
  }
  if (!vert) return temp; // rows === ch, already the region
  const half = PRECISION_ONE / 2;
  for (let j = 0; j < ch; j++) {
    const ymin = vert.bounds[j * 2] - rowFirst;
    const taps = vert.bounds[j * 2 + 1];
    const kb = j * vert.ksize;
    for (let i = 0; i < cw; i++) {
      let s0 = half, s1 = half, s2 = half;
      for (let y = 0; y < taps; y++) {
        const w = vert.weights[kb + y];
        const p = ((ymin + y) * cw + i) * 3;
        s0 += temp[p] * w; s1 += temp[p + 1] * w; s2 += temp[p + 2] * w;
      }
      const d = (j * cw + i) * 3;
      out[d] = clip8(s0); out[d + 1] = clip8(s1); out[d + 2] = clip8(s2);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Colour conversion and normalisation

/** Pillow's `cmyk2rgb` as a table: CMYK_TABLE[K << 8 | C] = (255 - K) - round(C * (255 - K) / 255). */
let cmykTable: Uint8Array | undefined;
function cmykLookup(): Uint8Array {
  if (!cmykTable) {
    cmykTable = new Uint8Array(65536);
    for (let k = 0; k < 256; k++) {
      const nk = 255 - k;
      for (let c = 0; c < 256; c++) {
        const t = c * nk + 128; // MULDIV255
        cmykTable[(k << 8) | c] = nk - (((t >> 8) + t) >> 8);
      }
    }
  }
  return cmykTable;
}

/** Pixels converted per synchronous slice; the event loop runs between slices (a few ms each). */
const CMYK_SLICE = 1 << 20;

/** Pillow's CMYK -> RGB on the first 4 of `channels` interleaved channels. */
async function cmykToRgb(src: Uint8Array, pixels: number, channels: number): Promise<Buffer> {
  const table = cmykLookup();
  const out = Buffer.allocUnsafe(pixels * 3);
  for (let start = 0; start < pixels; start += CMYK_SLICE) {
    if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const end = Math.min(pixels, start + CMYK_SLICE);
    for (let i = start, s = start * channels, d = start * 3; i < end; i++, s += channels, d += 3) {
      const k = src[s + 3] << 8;
      out[d] = table[k | src[s]];
      out[d + 1] = table[k | src[s + 1]];
      out[d + 2] = table[k | src[s + 2]];
    }
  }
  return out;
}

/** Per channel, the float32 value of each uint8 level: `(u / 255 - mean) / std` with torch's float32 rounding. */
function buildLevelTables(config: PreprocessorConfig): Float32Array[] {
  const exactDivision = config.rescaleFactor === 1 / 255; // torchvision divides by 255; same bits as HF up to 1 ulp
  return [0, 1, 2].map((c) => {
    const table = new Float32Array(256);
    const mean = Math.fround(config.mean[c]);
    const std = Math.fround(config.std[c]);
    for (let u = 0; u < 256; u++) {
      let v = exactDivision ? Math.fround(u / 255) : Math.fround(u * config.rescaleFactor);
      if (config.doNormalize) v = Math.fround(Math.fround(v - mean) / std);
      table[u] = v;
    }
    return table;
  });
}

/** An 8-bit RGB image, 3 bytes per pixel, rows top to bottom. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The preprocessor

/** What to read pixels from: the encoded file (first pass) or an intermediate raw RGB image. */
type PassSource =
  | { kind: 'encoded'; bytes: Buffer; deep: boolean }
  | { kind: 'raw'; image: RgbImage };

const KERNELS: Record<ResampleFilter, keyof sharp.KernelEnum> = {
  bicubic: 'cubic',
  bilinear: 'linear',
  nearest: 'nearest',
  lanczos: 'lanczos3',
};

export class ImagePreprocessor {
  readonly outputHeight: number;
  readonly outputWidth: number;
  /** A stable string that changes whenever the output would change (config + algorithm version); used as a cache key part. */
  readonly fingerprint: string;

  private readonly config: PreprocessorConfig;
  private readonly crop: { height: number; width: number };
  private readonly maxPixels: number;
  private readonly shrinkOnLoad: boolean;
  private readonly tables: Float32Array[];
  private readonly inputOptions: sharp.SharpOptions;

  constructor(config: PreprocessorConfig, options: PreprocessOptions = {}) {
    const bad = (message: string) => new ClipLensError('preprocessor-config-invalid', message);
    if (!config.crop) {
      throw new ClipLensError('preprocessor-config-unsupported', 'a centre crop is required: without it every image gets its own tensor size');
    }
    if (!isPositiveInt(config.crop.height) || !isPositiveInt(config.crop.width)) throw bad('crop sizes must be positive integers');
    if (config.resizeShortestEdge !== null && !isPositiveInt(config.resizeShortestEdge)) throw bad('resizeShortestEdge must be a positive integer or null');
    if (!(config.rescaleFactor > 0) || !Number.isFinite(config.rescaleFactor)) throw bad('rescaleFactor must be a positive number');
    if (config.std.some((s) => s === 0 || !Number.isFinite(s)) || config.mean.some((m) => !Number.isFinite(m))) throw bad('mean/std must be finite, std non-zero');
    if (!(config.resample in KERNELS)) throw bad(`unknown resample filter ${String(config.resample)}`);
    const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
    if (!isPositiveInt(maxPixels)) throw new RangeError(`maxPixels must be a positive integer, got ${maxPixels}`);

    this.crop = { height: config.crop.height, width: config.crop.width };
    this.config = { ...config, crop: this.crop, mean: [...config.mean], std: [...config.std] };
    this.outputHeight = this.crop.height;
    this.outputWidth = this.crop.width;
    this.maxPixels = maxPixels;
    this.shrinkOnLoad = options.jpegShrinkOnLoad ?? true;
    this.tables = buildLevelTables(this.config);
    this.inputOptions = { limitInputPixels: maxPixels, failOn: 'error', autoOrient: true, ignoreIcc: true };
    const canonical = JSON.stringify({
      algorithm: ALGORITHM_VERSION,
      sharp: sharp.versions.sharp,
      vips: sharp.versions.vips,
      resizeShortestEdge: this.config.resizeShortestEdge,
      crop: [this.crop.height, this.crop.width],
      mean: this.config.mean,
      std: this.config.std,
      rescaleFactor: this.config.rescaleFactor,
      doNormalize: this.config.doNormalize,
      resample: this.config.resample,
      jpegShrinkOnLoad: this.shrinkOnLoad,
    });
    this.fingerprint = `clip-image-v${ALGORITHM_VERSION}-${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`;
  }

  /**
   * Decode, orient, resize, crop, normalise; writes 3*H*W floats (CHW) into `target` at `offset` (so batches
   * need no copies) or returns a new Float32Array. With a target, the returned array is a view of it.
   * Unreadable, corrupt or truncated images throw ClipLensError 'image-unreadable'; images over `maxPixels`
   * throw 'image-too-large'; both name the file (`name`, else the path, else `<buffer>`). On failure `target`
   * is left untouched. `onWhole` receives the whole decoded image before the centre crop (see decodeWhole), so
   * that a caller needing other pixels of it (the perceptual hash) does not decode the file again.
   */
  async preprocess(input: string | Buffer, target?: Float32Array, offset = 0, name?: string, onWhole?: (image: RgbImage) => void): Promise<Float32Array> {
    const n = 3 * this.outputHeight * this.outputWidth;
    if (target) {
      if (!Number.isInteger(offset) || offset < 0 || offset + n > target.length) {
        throw new RangeError(`target has ${target.length} floats; ${n} are needed at offset ${offset}`);
      }
    } else {
      target = new Float32Array(n);
      offset = 0;
    }
    const file = name ?? (typeof input === 'string' ? input : '<buffer>');
    let bytes: Buffer;
    if (typeof input === 'string') {
      try {
        bytes = await readRegularFile(input, { maxBytes: FILE_LIMITS.image, code: 'image-unreadable', what: 'the image' });
      } catch (err) {
        if (err instanceof FileRefusedError) throw new ClipLensError('image-unreadable', err.message.slice(err.message.indexOf(': ') + 2), { file });
        throw new ClipLensError('image-unreadable', `cannot read file: ${(err as Error).message}`, { file });
      }
    } else {
      bytes = input;
    }
    try {
      const { image, gx, gy, whole } = await this.decodeResizeCrop(bytes, file);
      this.writeTensor(image, gx, gy, target, offset);
      onWhole?.(whole);
    } catch (err) {
      throw this.toImageError(err, file);
    }
    return target.subarray(offset, offset + n);
  }

  /**
   * The whole image as preprocessing sees it before its centre crop: decoded, oriented, 8-bit RGB, its shortest side
   * resized to `resizeShortestEdge` when that shrinks it (an image that preprocessing enlarges is given at its own
   * size). The same pixels `preprocess` passes to `onWhole`; errors as `preprocess`.
   */
  async decodeWhole(bytes: Buffer, name = '<buffer>'): Promise<RgbImage> {
    try {
      return (await this.decodeResizeCrop(bytes, name)).whole;
    } catch (err) {
      throw this.toImageError(err, name);
    }
  }

  /**
   * The pixels of the crop (`image` at src offsets gx.src, gy.src, placed at the dst offsets) and the whole image
   * before the crop (`whole`; often the same object, at its crop offsets).
   */
  private async decodeResizeCrop(bytes: Buffer, file: string): Promise<{ image: RgbImage; gx: AxisCrop; gy: AxisCrop; whole: RgbImage }> {
    decodeObserver.onDecode?.(file);
    // Header only (no pixels are decoded), so the size check below can name the dimensions.
    const meta = await sharp(bytes, { ...this.inputOptions, limitInputPixels: false }).metadata();
    if (!meta.width || !meta.height) throw new ClipLensError('image-unreadable', 'image has no size', { file });
    const rotated = (meta.orientation ?? 1) >= 5;
    const width = rotated ? meta.height : meta.width;
    const height = rotated ? meta.width : meta.height;
    if (width * height > this.maxPixels) throw this.tooLarge(file, width, height);

    const s = this.config.resizeShortestEdge;
    const size = s === null ? { width, height } : shortestEdgeSize(width, height, s);
    const gx = centreCropAxis(size.width, this.crop.width);
    const gy = centreCropAxis(size.height, this.crop.height);
    // The resized image is kept whole (no extract in libvips: the crop is an offset in writeTensor).
    const whole = (image: RgbImage) => ({ image, gx, gy, whole: image });

    const cmyk = meta.space === 'cmyk';
    const deep = meta.depth !== undefined && meta.depth !== 'uchar';
    const upscale = size.width > width || size.height > height;
    if (cmyk && deep) throw new ClipLensError('image-unreadable', '16-bit CMYK images are not supported', { file });

    if (cmyk || meta.hasAlpha || upscale) {
      // Convert to RGB before resizing (alpha dropped keeping RGB, CMYK by Pillow's formula).
      const full = await this.decodeRgb(bytes, cmyk, deep);
      if (full.width !== width || full.height !== height) {
        throw new ClipLensError('image-unreadable', `decoded ${full.width}x${full.height}, header says ${width}x${height}`, { file });
      }
      if (upscale) {
        const region = { x0: gx.src, y0: gy.src, width: gx.len, height: gy.len };
        const data = pillowResizeRegion(full.data, width, height, size.width, size.height, region, this.config.resample);
        return { image: { data, width: gx.len, height: gy.len }, gx: { ...gx, src: 0 }, gy: { ...gy, src: 0 }, whole: full };
      }
      return whole(await this.resize({ kind: 'raw', image: full }, width, height, size, false));
    }
    const sol = this.shrinkOnLoad && meta.format === 'jpeg' && !deep;
    return whole(await this.resize({ kind: 'encoded', bytes, deep }, width, height, size, sol));
  }

  /** Full-size oriented 8-bit RGB. */
  private async decodeRgb(bytes: Buffer, cmyk: boolean, deep: boolean): Promise<RgbImage> {
    let p = sharp(bytes, this.inputOptions);
    if (cmyk) {
      p = p.pipelineColourspace('cmyk').toColourspace('cmyk');
    } else {
      if (deep) p = p.pipelineColourspace('srgb');
      p = p.removeAlpha().toColourspace('srgb');
    }
    const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
    if (cmyk) {
      if (info.channels < 4) throw new Error(`CMYK image decoded with ${info.channels} channels`);
      return { data: await cmykToRgb(data, info.width * info.height, info.channels), width: info.width, height: info.height };
    }
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, found ${info.channels}`);
    return { data, width: info.width, height: info.height };
  }

  private open(source: PassSource): sharp.Sharp {
    if (source.kind === 'raw') {
      const { data, width, height } = source.image;
      // Already checked against maxPixels when the file was decoded.
      return sharp(data, { raw: { width, height, channels: 3 }, limitInputPixels: false });
    }
    const p = sharp(source.bytes, this.inputOptions);
    // 16-bit: reduce to 8 bits (>> 8) before resizing, as Pillow does on load.
    return source.deep ? p.pipelineColourspace('srgb') : p;
  }

  /** Resize with libvips in steps of < 4x (see planResizeSteps) to `size`, whole (the crop is the caller's). */
  private async resize(source: PassSource, width: number, height: number, size: Size, shrinkOnLoad: boolean): Promise<RgbImage> {
    const kernel = KERNELS[this.config.resample];
    const steps = planResizeSteps(width, height, size, shrinkOnLoad);
    let current = source;
    for (const step of steps.slice(0, -1)) {
      const { data, info } = await this.open(current)
        .resize(step.width, step.height, { fit: 'fill', kernel, fastShrinkOnLoad: false })
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3 || info.width !== step.width || info.height !== step.height) {
        throw new Error(`resize produced ${info.width}x${info.height}x${info.channels}, expected ${step.width}x${step.height}x3`);
      }
      current = { kind: 'raw', image: { data, width: info.width, height: info.height } };
    }
    let p = this.open(current);
    const last = steps[steps.length - 1];
    if (last) p = p.resize(last.width, last.height, { fit: 'fill', kernel, fastShrinkOnLoad: false });
    const { data, info } = await p.toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== size.width || info.height !== size.height) {
      throw new Error(`resize produced ${info.width}x${info.height}x${info.channels}, expected ${size.width}x${size.height}x3`);
    }
    return { data, width: info.width, height: info.height };
  }

  /** Normalise `image` (the crop region) into target as CHW; pixels outside it (padding) are uint8 0. */
  private writeTensor(image: RgbImage, gx: AxisCrop, gy: AxisCrop, target: Float32Array, offset: number): void {
    const W = this.outputWidth;
    const plane = W * this.outputHeight;
    const padded = gx.len < W || gy.len < this.outputHeight;
    for (let c = 0; c < 3; c++) {
      const table = this.tables[c];
      const base = offset + c * plane;
      if (padded) target.fill(table[0], base, base + plane);
      for (let y = 0; y < gy.len; y++) {
        let s = ((gy.src + y) * image.width + gx.src) * 3 + c;
        let d = base + (gy.dst + y) * W + gx.dst;
        for (let x = 0; x < gx.len; x++, s += 3, d++) target[d] = table[image.data[s]];
      }
    }
  }

  private tooLarge(file: string, width: number, height: number): ClipLensError {
    return new ClipLensError(
      'image-too-large',
      `image is ${width}x${height} = ${width * height} pixels, over the limit of ${this.maxPixels}`,
      { file },
    );
  }

  private toImageError(err: unknown, file: string): ClipLensError {
    if (err instanceof ClipLensError) return err;
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();
    if (/pixel limit/i.test(message)) {
      return new ClipLensError('image-too-large', `image is over the limit of ${this.maxPixels} pixels`, { file });
    }
    return new ClipLensError('image-unreadable', `cannot decode image: ${message}`, { file });
  }
}
