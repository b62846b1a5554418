/**
 * Small thumbnails for the report panel: sharp decodes an image, applies its EXIF orientation, fits it in a
 * `size`×`size` box and encodes it as WebP (or JPEG); the panel receives a data: URI of a few kilobytes, never the
 * original file. Results are kept in an LRU cache bounded by entry count and encoded bytes, keyed by the file and
 * invalidated when the file's size or modification time changes. Concurrent requests for one file share one job.
 * sharp (a native module) is loaded on the first thumbnail, so importing this module costs nothing at activation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Sharp from 'sharp';

let sharpFn: typeof Sharp | undefined;
/** sharp on first use (a plain require: bundles keep it external, and it works in any extension host). */
function loadSharp(): typeof Sharp {
  return (sharpFn ??= require('sharp') as typeof Sharp);
}

export interface ThumbnailOptions {
  /** Longest side in pixels (default 128). Images smaller than this are not enlarged. */
  size?: number;
  /** Output encoding (default 'webp'). JPEG flattens transparency onto white. */
  format?: 'webp' | 'jpeg';
  /** Encoder quality 1-100 (default 72). */
  quality?: number;
  /** Cache capacity in entries (default 2,000). */
  maxEntries?: number;
  /** Cache capacity in encoded bytes (default 24 MiB). */
  maxBytes?: number;
  /** Images decoded at once (default 4; sharp runs each on libuv's thread pool). */
  concurrency?: number;
}

export interface Thumbnail {
  /** `data:image/webp;base64,...` or `data:image/jpeg;base64,...`. */
  dataUri: string;
  width: number;
  height: number;
  /** Encoded size in bytes. */
  bytes: number;
}

const DEFAULTS: Required<ThumbnailOptions> = {
  size: 128,
  format: 'webp',
  quality: 72,
  maxEntries: 2000,
  maxBytes: 24 * 1024 * 1024,
  concurrency: 4,
};

/** Least-recently-used map bounded by entry count and by a total weight (e.g. bytes). */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  private totalWeight = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxWeight: number,
    private readonly weigh: (value: V) => number,
  ) {
    if (!(maxEntries >= 1) || !(maxWeight > 0)) throw new RangeError('LruCache needs maxEntries >= 1 and maxWeight > 0');
  }

  get size(): number {
    return this.map.size;
  }

  get weight(): number {
    return this.totalWeight;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Returns the value and marks it most recently used. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  /** Inserts or replaces; evicts least recently used entries until both bounds hold (a lone oversized value stays). */
  set(key: K, value: V): void {
    this.delete(key);
    this.map.set(key, value);
    this.totalWeight += this.weigh(value);
    for (const [k, v] of this.map) {
      if (this.map.size <= this.maxEntries && this.totalWeight <= this.maxWeight) break;
      if (k === key) break;
      this.map.delete(k);
      this.totalWeight -= this.weigh(v);
    }
  }

  delete(key: K): boolean {
    const value = this.map.get(key);
    if (value === undefined) return false;
    this.map.delete(key);
    this.totalWeight -= this.weigh(value);
    return true;
  }

  clear(): void {
    this.map.clear();
    this.totalWeight = 0;
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }
}

/**
 * Resolves a dataset-relative POSIX path against the dataset root; null when the result would leave the root
 * (`..`, absolute paths, drive letters), so a request from the webview can never name a file outside the dataset.
 */
export function resolveInsideRoot(root: string, relPath: string): string | null {
  if (!relPath || relPath.includes('\0') || path.isAbsolute(relPath) || /^[a-zA-Z]:/.test(relPath)) return null;
  const absRoot = path.resolve(root);
  const abs = path.resolve(absRoot, ...relPath.split(/[\\/]/));
  const rel = path.relative(absRoot, abs);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return abs;
}

/** Makes one thumbnail, without caching. Rejects when the file cannot be read or decoded. */
export async function makeThumbnail(file: string, options: ThumbnailOptions = {}): Promise<Thumbnail> {
  const o = { ...DEFAULTS, ...options };
  const sharp = loadSharp();
  let pipeline = sharp(file, { failOn: 'none', animated: false })
    .rotate()
    .resize({ width: o.size, height: o.size, fit: 'inside', withoutEnlargement: true });
  pipeline =
    o.format === 'jpeg'
      ? pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: o.quality, mozjpeg: true })
      : pipeline.webp({ quality: o.quality, effort: 2 });
  const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
  return {
    dataUri: `data:image/${o.format};base64,${data.toString('base64')}`,
    width: info.width,
    height: info.height,
    bytes: data.length,
  };
}

interface CacheEntry {
  thumbnail: Thumbnail;
  mtimeMs: number;
  fileSize: number;
}

export interface ThumbnailCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

/** Thumbnails with an LRU cache, request de-duplication and a bound on concurrent decodes. */
export class ThumbnailCache {
  private readonly options: Required<ThumbnailOptions>;
  private readonly cache: LruCache<string, CacheEntry>;
  private readonly inFlight = new Map<string, Promise<Thumbnail>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  private hits = 0;
  private misses = 0;

  constructor(options: ThumbnailOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.cache = new LruCache(this.options.maxEntries, this.options.maxBytes, (e) => e.thumbnail.bytes);
  }

  /** The thumbnail of an absolute file path, from the cache when the file is unchanged. */
  async get(file: string): Promise<Thumbnail> {
    const stat = await fs.promises.stat(file);
    if (!stat.isFile()) throw new Error(`Not a file: ${file}`);
    const cached = this.cache.get(file);
    if (cached && cached.mtimeMs === stat.mtimeMs && cached.fileSize === stat.size) {
      this.hits++;
      return cached.thumbnail;
    }
    const key = `${file}\0${stat.mtimeMs}\0${stat.size}`;
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    this.misses++;
    const job = this.limited(() => makeThumbnail(file, this.options))
      .then((thumbnail) => {
        this.cache.set(file, { thumbnail, mtimeMs: stat.mtimeMs, fileSize: stat.size });
        return thumbnail;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, job);
    return job;
  }

  /** Thumbnails of several files; a failure is returned in place as an Error, never thrown. */
  getMany(files: readonly string[]): Promise<Array<Thumbnail | Error>> {
    return Promise.all(
      files.map((f) => this.get(f).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))),
    );
  }

  stats(): ThumbnailCacheStats {
    return { entries: this.cache.size, bytes: this.cache.weight, hits: this.hits, misses: this.misses };
  }

  clear(): void {
    this.cache.clear();
  }

  private async limited<T>(task: () => Promise<T>): Promise<T> {
    while (this.running >= this.options.concurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
