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
 * recomputed: a corrupt or stale cache is never trusted and never fatal.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
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

export class EmbeddingCache {
  private readonly entries = new Map<string, Float32Array>();
  private pendingKeys: Buffer[] = [];
  private pendingValues: Float32Array[] = [];
  private segmentFiles: string[] = [];
  readonly discarded: { file: string; reason: string }[] = [];

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
    await fs.promises.mkdir(folder, { recursive: true });
    const cache = new EmbeddingCache(folder, nsHash, null);
    await cache.load();
    return cache;
  }

  get size(): number {
    return this.entries.size;
  }

  get stats(): CacheStats {
    return { segments: this.segmentFiles.length, entries: this.entries.size, discarded: [...this.discarded] };
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

  /** Writes the entries added since the last flush as one new segment, then compacts if there are many. */
  async flush(): Promise<void> {
    if (this.pendingKeys.length === 0 || this.dim === null) return;
    const keys = this.pendingKeys;
    const values = this.pendingValues;
    this.pendingKeys = [];
    this.pendingValues = [];
    const file = await this.writeSegment(keys, values);
    this.segmentFiles.push(file);
    if (this.segmentFiles.length > MAX_SEGMENTS) await this.compact();
  }

  /** Rewrites every entry into one segment and removes the old ones. */
  async compact(): Promise<void> {
    if (this.dim === null || this.entries.size === 0) return;
    const keys: Buffer[] = [];
    const values: Float32Array[] = [];
    for (const [hex, v] of this.entries) {
      keys.push(Buffer.from(hex, 'hex'));
      values.push(v);
    }
    const old = this.segmentFiles;
    const merged = await this.writeSegment(keys, values);
    this.segmentFiles = [merged];
    this.pendingKeys = [];
    this.pendingValues = [];
    await Promise.all(old.filter((f) => f !== merged).map((f) => fs.promises.rm(f, { force: true })));
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
      await fh.writeFile(body);
      await fh.write(checksum);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, final);
    return final;
  }

  private async load(): Promise<void> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.folder);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const file = path.join(this.folder, name);
      if (name.includes('.tmp-')) {
        // A write that never finished (crash or kill). Remove it when it is not fresh (another process may be writing).
        const st = await fs.promises.stat(file).catch(() => null);
        if (st && Date.now() - st.mtimeMs > 10 * 60_000) await fs.promises.rm(file, { force: true });
        continue;
      }
      if (!name.startsWith('seg-') || !name.endsWith('.bin')) continue;
      const reason = await this.loadSegment(file);
      if (reason) {
        this.discarded.push({ file, reason });
        await fs.promises.rm(file, { force: true }).catch(() => undefined);
      } else {
        this.segmentFiles.push(file);
      }
    }
  }

  /** Loads one segment; returns why it was rejected, or null. */
  private async loadSegment(file: string): Promise<string | null> {
    let buf: Buffer;
    try {
      buf = await fs.promises.readFile(file);
    } catch (e) {
      return `unreadable: ${(e as Error).message}`;
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
    for (let i = 0; i < count; i++) {
      const hex = buf.subarray(HEADER_BYTES + i * KEY_BYTES, HEADER_BYTES + (i + 1) * KEY_BYTES).toString('hex');
      if (!this.entries.has(hex)) this.entries.set(hex, floats.subarray(i * dim, (i + 1) * dim));
    }
    return null;
  }
}
