/**
 * On-disk cache of the linear probe's out-of-sample probabilities, next to the embedding cache (same root,
 * folder `probe-v1`), so that re-evaluating an unchanged dataset does not fit the probe again.
 *
 * The key is the SHA-256 of everything the probabilities depend on: the embedding rows themselves, in order (they
 * identify the images' contents, the model and its precision), the labels, the class list, the folds, C, the
 * iteration limit and the fitting algorithm's version ({@link PROBE_ALGORITHM_VERSION}). Any change gives another
 * key; an entry is never updated in place.
 *
 * File layout: magic "CLPROBE1" | u32 header length | header JSON | zero padding to 8 bytes | N x K float64
 * probabilities | 32 B SHA-256 of all the bytes before it. A file that fails a check is ignored and removed. Like the
 * embedding cache, this cache never breaks a run: reading or writing failures only mean the probe is fitted.
 * At most {@link PROBE_CACHE_MAX_ENTRIES} entries are kept (the least recently used are removed).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDirectory } from './fileSystem';
import type { CrossValidatedProbe } from './linearProbe';
import { stratifiedFolds } from './linearProbe';

/** Bump when the probe's fitting changes its answers (stopping rule, objective, fold order, warm start). */
export const PROBE_ALGORITHM_VERSION = 3;
export const PROBE_CACHE_MAX_ENTRIES = 32;
/** Probabilities larger than this (bytes) are not cached. */
export const PROBE_CACHE_MAX_BYTES = 256 * 1024 * 1024;

const MAGIC = Buffer.from('CLPROBE1', 'ascii');
const CHECKSUM_BYTES = 32;

export interface ProbeCacheKeyInput {
  embeddings: Float32Array;
  dim: number;
  labels: ArrayLike<number>;
  classes: readonly string[];
  folds: number;
  c: number;
  maxIterations: number;
}

/** The cache key (hex SHA-256) of a probe run. */
export function probeCacheKey(input: ProbeCacheKeyInput): string {
  const h = createHash('sha256');
  const head = { v: PROBE_ALGORITHM_VERSION, dim: input.dim, n: input.labels.length, classes: input.classes, folds: input.folds, c: input.c, maxIterations: input.maxIterations };
  h.update(JSON.stringify(head));
  h.update(Buffer.from(Int32Array.from(input.labels).buffer));
  h.update(Buffer.from(input.embeddings.buffer, input.embeddings.byteOffset, input.embeddings.byteLength));
  return h.digest('hex');
}

type Stored = Omit<CrossValidatedProbe, 'probs' | 'foldOfSample'>;

function folderOf(root: string): string {
  return path.join(root, 'probe-v1');
}

/** The cached probe for `key`, or null (absent, unreadable, corrupt or of another shape). */
export async function readCachedProbe(root: string, key: string, labels: ArrayLike<number>, numClasses: number): Promise<CrossValidatedProbe | null> {
  const file = path.join(folderOf(root), `${key}.bin`);
  let buf: Buffer;
  try {
    const st = await fs.promises.lstat(file);
    if (!st.isFile()) return null;
    buf = await fs.promises.readFile(file);
  } catch {
    return null;
  }
  const parsed = parse(buf, labels.length * numClasses);
  if (!parsed) {
    await fs.promises.rm(file, { force: true }).catch(() => undefined);
    return null;
  }
  // mark as recently used (pruning removes the least recently used)
  const now = new Date();
  await fs.promises.utimes(file, now, now).catch(() => undefined);
  return { ...parsed.header, probs: parsed.probs, foldOfSample: stratifiedFolds(labels, parsed.header.folds) };
}

function parse(buf: Buffer, expectedValues: number): { header: Stored; probs: Float64Array } | null {
  if (buf.length < MAGIC.length + 4 + CHECKSUM_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  const bodyEnd = buf.length - CHECKSUM_BYTES;
  if (!createHash('sha256').update(buf.subarray(0, bodyEnd)).digest().equals(buf.subarray(bodyEnd))) return null;
  const headerLength = buf.readUInt32LE(MAGIC.length);
  const headerEnd = MAGIC.length + 4 + headerLength;
  const dataStart = Math.ceil(headerEnd / 8) * 8;
  if (dataStart + expectedValues * 8 !== bodyEnd) return null;
  let header: Stored;
  try {
    header = JSON.parse(buf.subarray(MAGIC.length + 4, headerEnd).toString('utf8')) as Stored;
  } catch {
    return null;
  }
  if (!Number.isInteger(header.folds) || header.folds < 2 || !Array.isArray(header.fits)) return null;
  const probs = new Float64Array(expectedValues);
  new Uint8Array(probs.buffer).set(buf.subarray(dataStart, bodyEnd));
  return { header, probs };
}

/** Stores `probe` under `key` (atomically: temporary file, then rename); never throws. */
export async function writeCachedProbe(root: string, key: string, probe: CrossValidatedProbe): Promise<boolean> {
  if (probe.probs.byteLength > PROBE_CACHE_MAX_BYTES) return false;
  const folder = folderOf(root);
  const stored: Stored = { folds: probe.folds, c: probe.c, smallClasses: probe.smallClasses, singletonClasses: probe.singletonClasses, unconverged: probe.unconverged, fits: probe.fits };
  const header = Buffer.from(JSON.stringify(stored), 'utf8');
  const headerEnd = MAGIC.length + 4 + header.length;
  const dataStart = Math.ceil(headerEnd / 8) * 8;
  const body = Buffer.alloc(dataStart + probe.probs.byteLength);
  MAGIC.copy(body, 0);
  body.writeUInt32LE(header.length, MAGIC.length);
  header.copy(body, MAGIC.length + 4);
  Buffer.from(probe.probs.buffer, probe.probs.byteOffset, probe.probs.byteLength).copy(body, dataStart);
  const checksum = createHash('sha256').update(body).digest();
  const final = path.join(folder, `${key}.bin`);
  const tmp = `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await makeDirectory(folder);
    await fs.promises.writeFile(tmp, Buffer.concat([body, checksum]));
    await fs.promises.rename(tmp, final);
  } catch {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    return false;
  }
  await prune(folder).catch(() => undefined);
  return true;
}

/** Keeps the PROBE_CACHE_MAX_ENTRIES most recently used entries; removes stale temporary files (over 10 minutes). */
async function prune(folder: string): Promise<void> {
  const names = await fs.promises.readdir(folder);
  const entries: { file: string; mtime: number }[] = [];
  for (const name of names) {
    const file = path.join(folder, name);
    const st = await fs.promises.lstat(file).catch(() => null);
    if (!st || !st.isFile()) continue;
    if (name.includes('.tmp-')) {
      if (Date.now() - st.mtimeMs > 10 * 60_000) await fs.promises.rm(file, { force: true }).catch(() => undefined);
    } else if (name.endsWith('.bin')) entries.push({ file, mtime: st.mtimeMs });
  }
  entries.sort((a, b) => b.mtime - a.mtime);
  for (const e of entries.slice(PROBE_CACHE_MAX_ENTRIES)) await fs.promises.rm(e.file, { force: true }).catch(() => undefined);
}
