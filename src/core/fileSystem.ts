/** Small file-system queries shared by core, the CLI and the extension. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from './errors';

/**
 * Whether something is at `p`. By default a symbolic link counts as itself (lstat: a dangling link exists, so
 * nothing is written over it); `followSymlinks` asks about what the link points to (stat).
 */
export async function pathExists(p: string, options: { followSymlinks?: boolean } = {}): Promise<boolean> {
  try {
    await (options.followSymlinks ? fs.promises.stat(p) : fs.promises.lstat(p));
    return true;
  } catch {
    return false;
  }
}

/** What a non-regular file system entry is, in words ('a FIFO (named pipe)', 'a folder', ...). */
export function describeEntry(
  st: Pick<fs.Stats, 'isFile' | 'isDirectory' | 'isFIFO' | 'isCharacterDevice' | 'isBlockDevice' | 'isSocket' | 'isSymbolicLink'>,
): string {
  if (st.isFile()) return 'a file';
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** Sizes in messages: "1.5 MB", "512 bytes". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} byte${n === 1 ? '' : 's'}`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? Math.round(v) : Math.round(v * 10) / 10} ${units[u]}`;
}

/** Why readRegularFile refused a file: it is missing, not a regular file, over the size limit, or unreadable. */
export type FileRefusal = 'missing' | 'not-regular' | 'too-large' | 'unreadable';

/** A file readRegularFile would not read; `reason` says why, `errno` is the system error code when there is one. */
export class FileRefusedError extends ClipLensError {
  constructor(
    code: string,
    message: string,
    file: string,
    readonly reason: FileRefusal,
    readonly errno?: string,
  ) {
    super(code, message, { file });
  }
}

export interface ReadRegularFileOptions {
  /** Larger files are refused (reason 'too-large'); also bounds what is read from a file that grows while read. */
  maxBytes: number;
  /** The ClipLensError code of a refusal (default 'file-unreadable'). */
  code?: string;
  /** What the file is, for messages ("the label file"; default "the file"). */
  what?: string;
}

/** A counting seam for tests: called with the path of every file readRegularFile opens for reading. */
export const readObserver: { onRead: ((file: string) => void) | null } = { onRead: null };

/**
 * Reads a whole regular file, after checking what it is: FIFOs, devices, sockets and folders are refused with a
 * FileRefusedError naming them (the file is opened non-blocking, so a FIFO without a writer cannot hang the open, and
 * nothing is read from it), and so are files over `maxBytes` (a link to /dev/zero or a 50 GB file is never read).
 * Links are followed: what counts is what the path points to.
 */
export async function readRegularFile(file: string, options: ReadRegularFileOptions): Promise<Buffer> {
  const code = options.code ?? 'file-unreadable';
  const what = options.what ?? 'the file';
  const refuse = (reason: FileRefusal, message: string, errno?: string) => new FileRefusedError(code, message, file, reason, errno);
  readObserver.onRead?.(file);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') throw refuse('missing', `${what} does not exist`, errno);
    if (errno === 'EISDIR') throw refuse('not-regular', `${what} is a folder, not a file`, errno);
    throw refuse('unreadable', `cannot open ${what}: ${errno ?? (e as Error).message}`, errno);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw refuse('not-regular', `${what} is ${describeEntry(st)}, not a regular file; refused`);
    if (st.size > options.maxBytes) {
      throw refuse('too-large', `${what} is ${formatBytes(st.size)}, over the limit of ${formatBytes(options.maxBytes)}; refused`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let want = Math.max(1, Math.min(st.size, options.maxBytes) + 1);
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(want, options.maxBytes + 1 - total));
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      chunks.push(filled === buf.length ? buf : buf.subarray(0, filled));
      total += filled;
      if (total > options.maxBytes) {
        throw refuse('too-large', `${what} grew past the limit of ${formatBytes(options.maxBytes)} while it was read; refused`);
      }
      if (filled < buf.length) break;
      want = 1 << 20;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof FileRefusedError) throw e;
    const errno = (e as NodeJS.ErrnoException).code;
    throw refuse('unreadable', `cannot read ${what}: ${errno ?? (e as Error).message}`, errno);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Size limits of the files CLIP Lens reads whole (docs/robustness.md). Larger files are refused with a named
 * problem before anything is read.
 */
export const FILE_LIMITS = {
  /** An image file (decoded size is bounded separately, by the pixel limit). */
  image: 512 * 1024 * 1024,
  /** A label file (CSV, TSV, JSONL): read whole, as text. */
  labelFile: 256 * 1024 * 1024,
  /** `.clip-lens.json`, a templates file. */
  config: 16 * 1024 * 1024,
  /** A model folder's JSON and text files (config, preprocessor config, tokenizer, vocabulary, merges). */
  modelText: 64 * 1024 * 1024,
} as const;

/**
 * Checks that `file` is a regular file (following links) of at most `maxBytes`, for files read by streams or by
 * other libraries; throws a FileRefusedError otherwise (see readRegularFile). Returns its size.
 */
export async function assertRegularFile(file: string, options: ReadRegularFileOptions): Promise<number> {
  const code = options.code ?? 'file-unreadable';
  const what = options.what ?? 'the file';
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') throw new FileRefusedError(code, `${what} does not exist`, file, 'missing', errno);
    throw new FileRefusedError(code, `cannot read ${what}: ${errno ?? (e as Error).message}`, file, 'unreadable', errno);
  }
  if (!st.isFile()) throw new FileRefusedError(code, `${what} is ${describeEntry(st)}, not a regular file; refused`, file, 'not-regular');
  if (st.size > options.maxBytes) {
    throw new FileRefusedError(code, `${what} is ${formatBytes(st.size)}, over the limit of ${formatBytes(options.maxBytes)}; refused`, file, 'too-large');
  }
  return st.size;
}

/**
 * Creates `dir` and its missing parents, as Node's recursive mkdir does, and returns the first
 * folder it created (undefined when `dir` already existed). Node's recursive mkdir never returns on some paths
 * (`/proc/nope`: mkdir answers ENOENT although the parent exists, and Node retries forever), so the missing folders
 * are found by stat from `dir` upwards and created one at a time: every failure is an ordinary errno error.
 */
export async function makeDirectory(dir: string): Promise<string | undefined> {
  const target = path.resolve(dir);
  const missing: string[] = [];
  for (let p = target; ; ) {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(p);
    } catch (e) {
      const parent = path.dirname(p);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === p) throw e;
      missing.push(p);
      p = parent;
      continue;
    }
    if (!st.isDirectory()) {
      const e: NodeJS.ErrnoException = new Error(`ENOTDIR: not a directory, mkdir '${target}'`);
      e.code = 'ENOTDIR';
      e.syscall = 'mkdir';
      e.path = p;
      throw e;
    }
    break;
  }
  let first: string | undefined;
  for (const d of missing.reverse()) {
    try {
      await fs.promises.mkdir(d);
      first ??= d;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return first;
}
