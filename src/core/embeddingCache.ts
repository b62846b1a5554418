/**
 * On-disk embedding cache. Entries are keyed by a 32-byte content hash (SHA-256 of an image file, or of a prompt
 * text) inside a namespace that identifies everything else the embedding depends on (model graph, preprocessing,
 * tokenizer). Each namespace is a folder of immutable segment files; a run appends one new segment (written to a
 * temporary name, then renamed: atomic), and many small segments are compacted into one.
 *
 * Segment layout (little-endian):
 *   magic "CLIPLENS" | u32 format version | u32 dim | u32 count | u32 reserved | 32 B namespace hash
 *   count x 32 B keys | count x dim float32 | 32 B SHA-256 of all the bytes before it
 * A segment that fails any check (truncated, wrong magic/version/namespace, checksum) is deleted and its entries
 * recomputed: a corrupt or stale cache is never trusted and never fatal. An entry named like a segment that is not a
 * regular file (a FIFO, a device, a folder) is reported and ignored, never opened for reading.
 *
 * The cache never breaks a run: a folder that cannot be written (permissions, another user's cache) or a write that
 * fails (a full disk) turns writing off for the rest of the run, with the reason in `writeError`; the partial
 * temporary file is removed, and temporary files of processes that no longer run are removed when a namespace opens.
 * Segments are merged tier by tier (the smaller half when there are more than MAX_SEGMENTS), so frequent small
 * flushes cost O(n log n) writes in all.
 */
import { constants as bufferConstants } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { describeEntry, FileRefusedError, makeDirectory, readRegularFile } from './fileSystem';
import * as os from 'node:os';
import * as path from 'node:path';

const MAGIC = Buffer.from('CLIPLENS', 'ascii');
const FORMAT_VERSION = 1;
const HEADER_BYTES = 8 + 4 * 4 + 32;
const KEY_BYTES = 32;
const CHECKSUM_BYTES = 32;
/** Compact when a namespace holds more segments than this. */
const MAX_SEGMENTS = 8;

/** Default cache root: the user's cache folder, never inside a dataset. */
export function defaultEmbeddingCacheDir(): string {
  const env = process.env.CLIP_LENS_CACHE;
  if (env) return env;
  const home = os.homedir();
  if (process.platform === 'win32') return path.join(process.env.LOCALAPPDATA || path.join(home, 'AppData', 'Local'), 'clip-lens', 'Cache');
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Caches', 'clip-lens');
  return path.join(process.env.XDG_CACHE_HOME || path.join(home, '.cache'), 'clip-lens');
}

export function sha256(data: string | Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export interface CacheStats {
  segments: number;
  entries: number;
  /** Segments found broken or stale and removed, with the reason. */
  discarded: { file: string; reason: string }[];
}

/** One segment on disk and the keys (hex) it holds. */
interface Segment {
  file: string;
  keys: string[];
}

export class EmbeddingCache {
  private readonly entries = new Map<string, Float32Array>();
  private pendingKeys: Buffer[] = [];
  private pendingValues: Float32Array[] = [];
  private segments: Segment[] = [];
  readonly discarded: { file: string; reason: string }[] = [];
  /** Why this cache stopped writing (the first failure), or null while it writes. Entries already loaded still serve. */
  writeError: string | null = null;

  private constructor(
    /** Folder of this namespace's segments. */
    readonly folder: string,
    private readonly namespaceHash: Buffer,
    /** Embedding width; null until the first entry is known. */
    private dim: number | null,
  ) {}

  /**
   * Opens (and loads) the namespace `namespace` under `root`. Never throws for a broken cache: broken segments
   * are removed and reported in `discarded`. Throws only when `root` cannot be created.
   */
  static async open(root: string, namespace: string): Promise<EmbeddingCache> {
    const nsHash = sha256(namespace);
    const folder = path.join(root, 'embeddings-v1', nsHash.toString('hex').slice(0, 32));
    await makeDirectory(folder);
    const cache = new EmbeddingCache(folder, nsHash, null);
    try {
      await fs.promises.access(folder, fs.constants.W_OK);
    } catch (e) {
      cache.writeError = `the cache folder is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
    await cache.load();
    return cache;
  }

  get size(): number {
    return this.entries.size;
  }

  get stats(): CacheStats {
    return { segments: this.segments.length, entries: this.entries.size, discarded: [...this.discarded] };
  }

  get(key: Buffer): Float32Array | undefined {
    return this.entries.get(key.toString('hex'));
  }

  has(key: Buffer): boolean {
    return this.entries.has(key.toString('hex'));
  }

  /** Adds an entry in memory; it reaches the disk on `flush()`. */
  put(key: Buffer, embedding: Float32Array): void {
    if (key.length !== KEY_BYTES) throw new Error(`cache keys are ${KEY_BYTES} bytes`);
    if (this.dim === null) this.dim = embedding.length;
    if (embedding.length !== this.dim) throw new Error(`embedding width ${embedding.length} differs from the cache's ${this.dim}`);
    const hex = key.toString('hex');
    if (this.entries.has(hex)) return;
    const copy = Float32Array.from(embedding);
    this.entries.set(hex, copy);
    this.pendingKeys.push(key);
    this.pendingValues.push(copy);
  }

  get pendingCount(): number {
    return this.pendingKeys.length;
  }

  /**
   * Writes the entries added since the last flush as one new segment, then merges segments if there are many.
   * Never throws for a write failure: writing stops for the rest of the run, `writeError` says why, and the
   * pending entries stay in memory only. Returns whether everything pending is on disk.
   */
  async flush(): Promise<boolean> {
    if (this.pendingKeys.length === 0 || this.dim === null) return this.writeError === null;
    const keys = this.pendingKeys;
    const values = this.pendingValues;
    this.pendingKeys = [];
    this.pendingValues = [];
    if (this.writeError !== null) return false;
    try {
      const file = await this.writeSegment(keys, values);
      this.segments.push({ file, keys: keys.map((k) => k.toString('hex')) });
      if (this.segments.length > MAX_SEGMENTS) await this.mergeSmallest();
      return true;
    } catch (e) {
      this.writeError = `cannot write to the cache (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
      return false;
    }
  }

  /** Rewrites every entry into one segment and removes the old ones. */
  async compact(): Promise<void> {
    if (this.dim === null || this.entries.size === 0) return;
    await this.merge(this.segments, [...this.entries.keys()]);
    this.pendingKeys = [];
    this.pendingValues = [];
  }

  /** Merges the smaller half of the segments (by entries) into one: each entry is rewritten O(log n) times in all. */
  private async mergeSmallest(): Promise<void> {
    const bySize = [...this.segments].sort((a, b) => a.keys.length - b.keys.length);
    const take = bySize.slice(0, Math.max(2, Math.ceil(bySize.length / 2)));
    const keys = [...new Set(take.flatMap((seg) => seg.keys))];
    await this.merge(take, keys);
  }

  /** Writes `keys` (hex, all in `entries`) as one segment replacing `old`, then removes the old files. */
  private async merge(old: Segment[], keys: string[]): Promise<void> {
    const file = await this.writeSegment(
      keys.map((hex) => Buffer.from(hex, 'hex')),
      keys.map((hex) => this.entries.get(hex)!),
    );
    const gone = new Set(old);
    this.segments = [...this.segments.filter((seg) => !gone.has(seg)), { file, keys }];
    await Promise.all(old.filter((seg) => seg.file !== file).map((seg) => fs.promises.rm(seg.file, { force: true })));
  }

  private async writeSegment(keys: Buffer[], values: Float32Array[]): Promise<string> {
    const dim = this.dim as number;
    const count = keys.length;
    const body = Buffer.alloc(HEADER_BYTES + count * KEY_BYTES + count * dim * 4);
    MAGIC.copy(body, 0);
    body.writeUInt32LE(FORMAT_VERSION, 8);
    body.writeUInt32LE(dim, 12);
    body.writeUInt32LE(count, 16);
    body.writeUInt32LE(0, 20);
    this.namespaceHash.copy(body, 24);
    let off = HEADER_BYTES;
    for (const k of keys) {
      k.copy(body, off);
      off += KEY_BYTES;
    }
    const floats = new Float32Array(body.buffer, body.byteOffset + off, count * dim);
    // body.byteOffset + off is a multiple of 4 because HEADER_BYTES and KEY_BYTES are.
    values.forEach((v, i) => floats.set(v, i * dim));
    const checksum = sha256(body);
    const name = `seg-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.bin`;
    const final = path.join(this.folder, name);
    const tmp = `${final}.tmp-${process.pid}`;
    const fh = await fs.promises.open(tmp, 'w');
    try {
      try {
        await fh.writeFile(body);
        await fh.write(checksum);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, final);
    } catch (e) {
      // A full disk or a vanished folder: leave no partial temporary file behind.
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
    return final;
  }

  private async load(): Promise<void> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.folder);
    } catch (e) {
      this.discarded.push({ file: this.folder, reason: `cannot list the cache folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
      return;
    }
    for (const name of names.sort()) {
      const file = path.join(this.folder, name);
      if (name.includes('.tmp-')) {
        // A write that never finished (crash, kill, full disk). Remove it when its process is gone or it is old
        // (another process may still be writing it).
        const st = await fs.promises.lstat(file).catch(() => null);
        const pid = Number(name.slice(name.lastIndexOf('.tmp-') + 5));
        if (st && st.isFile() && (!processAlive(pid) || Date.now() - st.mtimeMs > 10 * 60_000)) {
          await fs.promises.rm(file, { force: true }).catch(() => undefined);
        }
        continue;
      }
      if (!name.startsWith('seg-') || !name.endsWith('.bin')) continue;
      const st = await fs.promises.lstat(file).catch(() => null);
      if (!st) continue;
      if (!st.isFile()) {
        // Never opened (a FIFO would block the read) and never removed (it is not ours): reported and ignored.
        this.discarded.push({ file, reason: `${describeEntry(st)}, not a cache segment; ignored` });
        continue;
      }
      const loaded = await this.loadSegment(file);
      if (typeof loaded === 'string') {
        this.discarded.push({ file, reason: loaded });
        await fs.promises.rm(file, { force: true }).catch(() => undefined);
      } else {
        this.segments.push({ file, keys: loaded });
      }
    }
  }

  /** Loads one segment; returns its keys (hex), or why it was rejected. */
  private async loadSegment(file: string): Promise<string[] | string> {
    let buf: Buffer;
    try {
      buf = await readRegularFile(file, { maxBytes: bufferConstants.MAX_LENGTH, what: 'the segment' });
    } catch (e) {
      return e instanceof FileRefusedError ? e.message.slice(e.message.indexOf(': ') + 2) : `unreadable: ${(e as Error).message}`;
    }
    if (buf.length < 8 || !buf.subarray(0, 8).equals(MAGIC)) return 'not a CLIP Lens cache segment';
    if (buf.length < HEADER_BYTES + CHECKSUM_BYTES) return 'truncated';
    if (buf.readUInt32LE(8) !== FORMAT_VERSION) return `format version ${buf.readUInt32LE(8)} (expected ${FORMAT_VERSION})`;
    const dim = buf.readUInt32LE(12);
    const count = buf.readUInt32LE(16);
    if (!buf.subarray(24, 56).equals(this.namespaceHash)) return 'belongs to another model or preprocessing (stale)';
    const expected = HEADER_BYTES + count * KEY_BYTES + count * dim * 4 + CHECKSUM_BYTES;
    if (dim === 0 || buf.length !== expected) return `size ${buf.length} bytes, expected ${expected}`;
    const bodyEnd = buf.length - CHECKSUM_BYTES;
    if (!sha256(buf.subarray(0, bodyEnd)).equals(buf.subarray(bodyEnd))) return 'checksum mismatch (corrupt)';
    if (this.dim !== null && this.dim !== dim) return `embedding width ${dim} differs from ${this.dim}`;
    this.dim = dim;
    const floatsOffset = HEADER_BYTES + count * KEY_BYTES;
    // Copy into an aligned buffer (Buffer pools may not be 4-byte aligned).
    const floats = new Float32Array(count * dim);
    new Uint8Array(floats.buffer).set(buf.subarray(floatsOffset, floatsOffset + count * dim * 4));
    const keys: string[] = [];
    for (let i = 0; i < count; i++) {
      const hex = buf.subarray(HEADER_BYTES + i * KEY_BYTES, HEADER_BYTES + (i + 1) * KEY_BYTES).toString('hex');
      keys.push(hex);
      if (!this.entries.has(hex)) this.entries.set(hex, floats.subarray(i * dim, (i + 1) * dim));
    }
    return keys;
  }
}

/** Whether a process with this id runs (on this machine); false for an invalid id. */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
