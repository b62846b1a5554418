/**
 * A 64-bit perceptual hash of an image's pixels (the DCT "pHash" of cleanvision and imagehash): the image, with its
 * EXIF orientation applied and alpha dropped (as preprocessing does), in greyscale, resized to 32x32 (aspect ignored), its 2-D DCT-II, the 8x8 lowest
 * frequencies, each bit "coefficient > median of those 64" (the DC term included, as imagehash does).
 * Resizing, recompression and moderate brightening barely change it (a few bits of 64); a different picture differs
 * in about half of them. Two hashes are compared by their Hamming distance.
 *
 * A hash is two uint32 words (hi, lo). Each image gets one per centre crop of {@link HASH_SCALES}, so that small crops
 * still match (see {@link hashDistance}).
 */
import type Sharp from 'sharp';
import { DEFAULT_MAX_PIXELS } from './imagePreprocess';
import { FILE_LIMITS, readRegularFile } from './fileSystem';

let sharpFn: typeof Sharp | undefined;
function sharp(): typeof Sharp {
  return (sharpFn ??= require('sharp') as typeof Sharp);
}

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
/** Images are decoded to at most this many pixels on their longer side before hashing (shrink-on-load). */
const DECODE_MAX_SIDE = 256;

/**
 * The image's hash at each of {@link HASH_SCALES} (centre crops): [hi, lo] per scale. A copy cropped by a few
 * percent on each side matches the original's centre crop of about its size, which the full-image hash alone misses
 * (a 6% crop per side moves the full-image hash by 8-18 bits of 64 on the bundled example, the matching centre crop
 * by 2-6). Throws sharp's error for undecodable bytes.
 */
export async function perceptualHashes(bytes: Buffer, maxPixels = DEFAULT_MAX_PIXELS): Promise<Uint32Array> {
  const { data, info } = await sharp()(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
    .rotate()
    .removeAlpha()
    .resize(DECODE_MAX_SIDE, DECODE_MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('b-w')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  if (channels !== 1 || data.length !== width * height) throw new Error(`unexpected ${channels}-channel pixel buffer`);
  const out = new Uint32Array(HASH_WORDS);
  const cell = new Float64Array(SIZE * SIZE);
  HASH_SCALES.forEach((f, s) => {
    const [hi, lo] = perceptualHashOfPixels(boxResize(data, width, height, f, cell));
    out[2 * s] = hi;
    out[2 * s + 1] = lo;
  });
  return out;
}

/** The centre `f` (side fraction) of a greyscale image averaged into 32x32 cells (area-weighted). */
function boxResize(px: Uint8Array, width: number, height: number, f: number, out: Float64Array): Float64Array {
  const w = width * f;
  const h = height * f;
  const x0 = (width - w) / 2;
  const y0 = (height - h) / 2;
  const weightsX = axisWeights(x0, w, width);
  const weightsY = axisWeights(y0, h, height);
  out.fill(0);
  const row = new Float64Array(SIZE);
  for (const [y, cy, wy] of weightsY) {
    row.fill(0);
    for (const [x, cx, wx] of weightsX) row[cx] += wx * px[y * width + x];
    for (let c = 0; c < SIZE; c++) out[cy * SIZE + c] += wy * row[c];
  }
  return out;
}

/** (pixel, cell, weight) triples mapping pixels [start, start + length) onto SIZE cells by overlap. */
function axisWeights(start: number, length: number, limit: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  const step = length / SIZE;
  for (let c = 0; c < SIZE; c++) {
    const a = start + c * step;
    const b = a + step;
    for (let p = Math.max(0, Math.floor(a)); p < Math.min(limit, Math.ceil(b)); p++) {
      const overlap = Math.min(b, p + 1) - Math.max(a, p);
      if (overlap > 0) out.push([p, c, overlap / step]);
    }
  }
  return out;
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

/** Cache namespace of the hashes (an EmbeddingCache of HASH_WORDS * 2 16-bit halves stored as floats). */
export const HASH_CACHE_NAMESPACE = `pixel-hash\0dct64-v1\0${HASH_SCALES.join(',')}`;

export interface PixelHashSource {
  /** Absolute path of the image file. */
  file: string;
  /** SHA-256 of the file's bytes (the cache key), when known. */
  contentHash?: Buffer;
}

/**
 * Hashes for each source: HASH_WORDS words per row, `ok[i]` = 1 when row i was computed (or came from the cache).
 * Images that cannot be read or decoded are left out (ok 0). Hashes are kept in `cache` by content hash, so a
 * re-run decodes nothing it has seen.
 */
export async function pixelHashesOf(
  sources: (PixelHashSource | null)[],
  cache: { get(key: Buffer): Float32Array | undefined; put(key: Buffer, v: Float32Array): void } | null,
  options: { concurrency?: number; signal?: AbortSignal; maxPixels?: number } = {},
): Promise<{ hashes: Uint32Array; ok: Uint8Array }> {
  const n = sources.length;
  const hashes = new Uint32Array(n * HASH_WORDS);
  const ok = new Uint8Array(n);
  const { createHash } = await import('node:crypto');
  let next = 0;
  const worker = async () => {
    while (next < n) {
      if (options.signal?.aborted) return;
      const i = next++;
      const src = sources[i];
      if (!src) continue;
      const cached = src.contentHash ? cache?.get(src.contentHash) : undefined;
      if (cached && cached.length === 2 * HASH_WORDS) {
        for (let w = 0; w < HASH_WORDS; w++) hashes[i * HASH_WORDS + w] = ((cached[2 * w] << 16) | cached[2 * w + 1]) >>> 0;
        ok[i] = 1;
        continue;
      }
      try {
        const bytes = await readRegularFile(src.file, { maxBytes: FILE_LIMITS.image, code: 'image-unreadable', what: 'the image' });
        const h = await perceptualHashes(bytes, options.maxPixels);
        hashes.set(h, i * HASH_WORDS);
        ok[i] = 1;
        if (cache) {
          const v = new Float32Array(2 * HASH_WORDS);
          for (let w = 0; w < HASH_WORDS; w++) {
            v[2 * w] = h[w] >>> 16;
            v[2 * w + 1] = h[w] & 0xffff;
          }
          cache.put(src.contentHash ?? createHash('sha256').update(bytes).digest(), v);
        }
      } catch {
        // Unreadable: takes part in nothing (the evaluation names it once, under its sample's error).
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  return { hashes, ok };
}
