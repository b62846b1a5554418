/**
 * A 64-bit perceptual hash of an image's pixels (the DCT "pHash" of cleanvision and imagehash): the image as the
 * model's preprocessing decodes it before its centre crop (EXIF orientation applied, alpha dropped, 8-bit RGB, its
 * shortest side resized to the model's size when that shrinks it: ImagePreprocessor.decodeWhole), in greyscale
 * (ITU-R 601 luma, as Pillow's "L" that imagehash uses), averaged into 32x32 cells (aspect ignored), its 2-D DCT-II,
 * the 8x8 lowest frequencies, each bit "coefficient > median of those 64" (the DC term included, as imagehash does).
 * Resizing, recompression and moderate brightening barely change it (a few bits of 64); a different picture differs
 * in about half of them. Two hashes are compared by their Hamming distance.
 *
 * The evaluation hashes the pixels preprocessing has just decoded for the embedding (evaluate.ts runImages), so a cold
 * run decodes each image once; the hashes are cached by content hash under the preprocessing's fingerprint.
 *
 * A hash is two uint32 words (hi, lo). Each image gets one per centre crop of {@link HASH_SCALES}, so that small crops
 * still match (see {@link hashDistance}).
 */
import type { ImagePreprocessor, RgbImage } from './imagePreprocess';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FILE_LIMITS, readRegularFile } from './fileSystem';

const SIZE = 32;
const LOW = 8;

/** cos((2x+1) u pi / 64) for u < 8, x < 32: row u of the DCT-II basis restricted to the low frequencies. */
const BASIS = (() => {
  const b = new Float64Array(LOW * SIZE);
  for (let u = 0; u < LOW; u++) for (let x = 0; x < SIZE; x++) b[u * SIZE + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * SIZE));
  return b;
})();

/** The hash of 32x32 greyscale pixels (row-major, any numeric scale) as [hi, lo]. */
export function perceptualHashOfPixels(grey: ArrayLike<number>): [number, number] {
  if (grey.length !== SIZE * SIZE) throw new RangeError(`perceptualHashOfPixels expects ${SIZE * SIZE} pixels, got ${grey.length}`);
  // Separable DCT: rows first (32 rows x 8 frequencies), then columns (8 x 8).
  const rows = new Float64Array(SIZE * LOW);
  for (let y = 0; y < SIZE; y++) {
    for (let u = 0; u < LOW; u++) {
      let s = 0;
      for (let x = 0; x < SIZE; x++) s += grey[y * SIZE + x] * BASIS[u * SIZE + x];
      rows[y * LOW + u] = s;
    }
  }
  const coeffs = new Float64Array(LOW * LOW);
  for (let v = 0; v < LOW; v++) {
    for (let u = 0; u < LOW; u++) {
      let s = 0;
      for (let y = 0; y < SIZE; y++) s += rows[y * LOW + u] * BASIS[v * SIZE + y];
      coeffs[v * LOW + u] = s;
    }
  }
  const sorted = Float64Array.from(coeffs).sort();
  const median = (sorted[31] + sorted[32]) / 2;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 64; i++) {
    if (coeffs[i] > median) {
      if (i < 32) hi |= 1 << (31 - i);
      else lo |= 1 << (63 - i);
    }
  }
  return [hi >>> 0, lo >>> 0];
}

/** Centre crops hashed per image: the whole image, then its centre 92% and 84% (side lengths). */
export const HASH_SCALES = [1, 0.92, 0.84] as const;
/** Uint32 words per image in {@link perceptualHashes}' output: [hi, lo] per scale. */
export const HASH_WORDS = 2 * HASH_SCALES.length;

/**
 * The image's hash at each of {@link HASH_SCALES} (centre crops): [hi, lo] per scale. A copy cropped by a few
 * percent on each side matches the original's centre crop of about its size, which the full-image hash alone misses
 * (a 6% crop per side moves the full-image hash by 8-18 bits of 64 on the bundled example, the matching centre crop
 * by 2-6).
 */
export function perceptualHashesOfRgb(image: RgbImage): Uint32Array {
  const { data, width, height } = image;
  if (data.length !== width * height * 3) throw new RangeError(`expected ${width}x${height}x3 bytes, got ${data.length}`);
  // Pillow's convert('L'): L = (R * 299 + G * 587 + B * 114) / 1000, kept fractional (the cells average it anyway).
  const grey = new Float32Array(width * height);
  for (let i = 0, p = 0; i < grey.length; i++, p += 3) grey[i] = (data[p] * 299 + data[p + 1] * 587 + data[p + 2] * 114) / 1000;
  const out = new Uint32Array(HASH_WORDS);
  const cell = new Float64Array(SIZE * SIZE);
  HASH_SCALES.forEach((f, s) => {
    const [hi, lo] = perceptualHashOfPixels(boxResize(grey, width, height, f, cell));
    out[2 * s] = hi;
    out[2 * s + 1] = lo;
  });
  return out;
}

/** {@link perceptualHashesOfRgb} of encoded bytes, decoded by `preprocessor` (throws its error for undecodable bytes). */
export async function perceptualHashes(bytes: Buffer, preprocessor: ImagePreprocessor, name?: string): Promise<Uint32Array> {
  return perceptualHashesOfRgb(await preprocessor.decodeWhole(bytes, name));
}

/** The centre `f` (side fraction) of a greyscale image averaged into 32x32 cells (area-weighted). */
function boxResize(px: ArrayLike<number>, width: number, height: number, f: number, out: Float64Array): Float64Array {
  const w = width * f;
  const h = height * f;
  const X = axisWeights((width - w) / 2, w, width);
  const Y = axisWeights((height - h) / 2, h, height);
  out.fill(0);
  const row = new Float64Array(SIZE);
  for (let k = 0; k < Y.count; k++) {
    row.fill(0);
    const base = Y.pixel[k] * width;
    for (let j = 0; j < X.count; j++) row[X.cell[j]] += X.weight[j] * px[base + X.pixel[j]];
    const o = Y.cell[k] * SIZE;
    const wy = Y.weight[k];
    for (let c = 0; c < SIZE; c++) out[o + c] += wy * row[c];
  }
  return out;
}

/** (pixel, cell, weight) triples mapping pixels [start, start + length) onto SIZE cells by overlap. */
function axisWeights(start: number, length: number, limit: number): { pixel: Int32Array; cell: Int32Array; weight: Float64Array; count: number } {
  const step = length / SIZE;
  const cap = Math.ceil(length) + 2 * SIZE + 2;
  const pixel = new Int32Array(cap);
  const cell = new Int32Array(cap);
  const weight = new Float64Array(cap);
  let count = 0;
  for (let c = 0; c < SIZE; c++) {
    const a = start + c * step;
    const b = a + step;
    for (let p = Math.max(0, Math.floor(a)); p < Math.min(limit, Math.ceil(b)); p++) {
      const overlap = Math.min(b, p + 1) - Math.max(a, p);
      if (overlap > 0) {
        pixel[count] = p;
        cell[count] = c;
        weight[count++] = overlap / step;
      }
    }
  }
  return { pixel, cell, weight, count };
}

/** The smallest Hamming distance between image a's full hash and any of b's scales, or b's full hash and a's. */
export function hashDistance(hashes: Uint32Array, a: number, b: number): number {
  const A = a * HASH_WORDS;
  const B = b * HASH_WORDS;
  let best = 64;
  for (let s = 0; s < HASH_WORDS; s += 2) {
    best = Math.min(
      best,
      hammingDistance(hashes[A], hashes[A + 1], hashes[B + s], hashes[B + s + 1]),
      hammingDistance(hashes[B], hashes[B + 1], hashes[A + s], hashes[A + s + 1]),
    );
  }
  return best;
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Bits in which two hashes differ (0-64). */
export function hammingDistance(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return popcount32((aHi ^ bHi) >>> 0) + popcount32((aLo ^ bLo) >>> 0);
}

/** A hash as 16 hex digits (for reports and tests). */
export function hashHex(hi: number, lo: number): string {
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/**
 * Cache namespace of the hashes of images decoded by a preprocessor of this fingerprint (an EmbeddingCache of
 * HASH_WORDS * 2 16-bit halves stored as floats). v1 hashed its own decode (longer side 256, libvips' grey).
 */
export function hashCacheNamespace(preprocessorFingerprint: string): string {
  return `pixel-hash\0dct64-v2\0${HASH_SCALES.join(',')}\0${preprocessorFingerprint}`;
}

export interface PixelHashCache {
  get(key: Buffer): Float32Array | undefined;
  put(key: Buffer, v: Float32Array): void;
}

/**
 * The pixel hashes of a run, n rows of HASH_WORDS words: `ok[i]` = 1 once row i is known. Filled by the image phase
 * from the pixels it decodes (or from the cache), completed by {@link pixelHashesOf} for the rest.
 */
export class PixelHashRows {
  readonly hashes: Uint32Array;
  readonly ok: Uint8Array;
  /**
   * Images {@link pixelHashesOf} did not try because their folder is not on disk (checked once per folder: embeddings
   * imported from a machine whose images are elsewhere), with the folders and one of the images.
   */
  readonly notOnDisk: ImagesNotOnDisk = { images: 0, folders: 0 };

  constructor(
    readonly n: number,
    readonly cache: PixelHashCache | null,
  ) {
    this.hashes = new Uint32Array(n * HASH_WORDS);
    this.ok = new Uint8Array(n);
  }

  /** Row i from the cache (content hash `key`); false when not there. */
  fromCache(i: number, key: Buffer): boolean {
    const cached = this.cache?.get(key);
    if (!cached || cached.length !== 2 * HASH_WORDS) return false;
    for (let w = 0; w < HASH_WORDS; w++) this.hashes[i * HASH_WORDS + w] = ((cached[2 * w] << 16) | cached[2 * w + 1]) >>> 0;
    this.ok[i] = 1;
    return true;
  }

  /** Row i computed (kept in the cache under `key`, the content hash of the image's bytes). */
  set(i: number, key: Buffer, h: Uint32Array): void {
    this.hashes.set(h, i * HASH_WORDS);
    this.ok[i] = 1;
    if (this.cache) {
      const v = new Float32Array(2 * HASH_WORDS);
      for (let w = 0; w < HASH_WORDS; w++) {
        v[2 * w] = h[w] >>> 16;
        v[2 * w + 1] = h[w] & 0xffff;
      }
      this.cache.put(key, v);
    }
  }
}

/** Images left out because their folders do not exist here. */
export interface ImagesNotOnDisk {
  images: number;
  folders: number;
  /** One of them (absolute path): the first row's. */
  example?: string;
}

export interface PixelHashSource {
  /** Absolute path of the image file (read only for images in a folder on disk; may be a getter). */
  readonly file: string;
  /** Its folder (path.dirname(file)), when the caller has it at hand: one path operation fewer per image. */
  folder?: string;
  /** SHA-256 of the file's bytes (the cache key), when known. */
  contentHash?: Buffer;
}

/**
 * Completes `rows`: each source whose row is not known yet is looked up in the cache by content hash, else read and
 * decoded by `preprocessor` (images whose embedding did not come from this run's image phase: imported embeddings).
 * Images that cannot be read or decoded are left out (ok 0). Each distinct folder is checked once: the images of a
 * folder that is not on disk are not tried one by one (a million imported embeddings whose images are on another
 * machine cost a few thousand stat calls, not a million failed opens); they are counted in `rows.notOnDisk`.
 */
export async function pixelHashesOf(
  sources: readonly (PixelHashSource | null)[] | ((i: number) => PixelHashSource | null),
  rows: PixelHashRows,
  preprocessor: ImagePreprocessor,
  options: { concurrency?: number; signal?: AbortSignal } = {},
): Promise<PixelHashRows> {
  // A function gives row i's source on demand (rows.ok.length rows): a million rows need no million objects at once.
  const n = typeof sources === 'function' ? rows.ok.length : sources.length;
  const sourceOf = typeof sources === 'function' ? sources : (i: number) => sources[i] as PixelHashSource | null;
  const { createHash } = await import('node:crypto');
  /** Folder -> on disk (a folder, or a link to one); pending while its first stat runs. */
  const folders = new Map<string, boolean | Promise<boolean>>();
  const missingFolders = new Set<string>();
  const folderOnDisk = (dir: string): boolean | Promise<boolean> => {
    let known = folders.get(dir);
    if (known === undefined) {
      known = fs.promises.stat(dir).then(
        (st) => st.isDirectory(),
        () => false,
      );
      folders.set(dir, known);
      void known.then((v) => folders.set(dir, v));
    }
    return known;
  };
  let next = 0;
  let exampleRow = rows.notOnDisk.example === undefined ? Infinity : -1;
  const worker = async () => {
    while (next < n) {
      if (options.signal?.aborted) return;
      const i = next++;
      if (rows.ok[i]) continue;
      const src = sourceOf(i);
      if (!src) continue;
      if (src.contentHash && rows.fromCache(i, src.contentHash)) continue;
      const dir = src.folder ?? path.dirname(src.file);
      const known = folderOnDisk(dir);
      if (!(known === true || (known !== false && (await known)))) {
        rows.notOnDisk.images++;
        // The first such row's image (the workers finish in any order: the same example on every run).
        if (i < exampleRow) {
          exampleRow = i;
          rows.notOnDisk.example = src.file;
        }
        if (!missingFolders.has(dir)) {
          missingFolders.add(dir);
          rows.notOnDisk.folders++;
        }
        continue;
      }
      try {
        const bytes = await readRegularFile(src.file, { maxBytes: FILE_LIMITS.image, code: 'image-unreadable', what: 'the image' });
        rows.set(i, src.contentHash ?? createHash('sha256').update(bytes).digest(), await perceptualHashes(bytes, preprocessor, src.file));
      } catch {
        // Unreadable: takes part in nothing (the evaluation names it once, under its sample's error).
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  return rows;
}
