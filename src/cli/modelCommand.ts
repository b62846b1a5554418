/**
 * `clip-lens model ...`: list the registry, download a model into the cache, verify a model directory.
 *
 *   clip-lens model list [--cache DIR]
 *   clip-lens model download <id> [--cache DIR] [--quantized] [--force] [--mirror URL] [--proxy URL]
 *   clip-lens model verify <dir|id> [--quantized] [--cache DIR]
 *
 * Exit codes: 0 success, 1 failure (download error, verification problems), 2 usage error (one-line reason),
 * 130 cancelled with Ctrl-C (a partial download is kept and resumed next time).
 *
 * `io.out` / `io.err` receive raw text (this module adds the newlines), so a TTY progress bar can redraw with '\r'.
 * `download` prints the model directory alone on `out` (for scripts); progress and messages go to `err`.
 */
import * as path from 'node:path';
import { CancelledError, ClipLensError } from '../core/errors';
import { validateModelDir } from '../core/modelDir';
import {
  cachedModelDir,
  checkCachedModel,
  defaultCacheDir,
  downloadModel,
  isModelCached,
  type DownloadProgress,
} from '../core/modelDownload';
import { runCommand, type CommandSpec, type OptionSpec, type ParsedArgs } from './args';
import { UsageError } from './io';
import { MODEL_REGISTRY, quantizedVariant, resolveModelSpec, type RegistryEntry } from '../core/modelRegistry';

const CACHE: OptionSpec = { type: 'string', value: 'DIR', help: 'model cache folder (default: $CLIP_LENS_CACHE or the user cache folder)' };

export interface ModelCommandIO {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
}

/** `model list|download|verify`: options and help declared once (args.ts); run by modelCommand below. */
export const MODEL_COMMAND: CommandSpec = {
  name: 'model',
  usage: [],
  summary: 'models: the registry, downloads, verification',
  subcommands: [
    {
      name: 'list',
      usage: ['[--cache DIR]'],
      summary: 'the registry, with what is downloaded',
      options: { cache: CACHE },
      run: (args, { io }) => listCommand(flagsOf(args, 0), io),
    },
    {
      name: 'download',
      usage: ['<id> [--cache DIR] [--quantized] [--force] [--mirror URL] [--proxy URL]'],
      summary: 'download a registry model into the cache (prints its folder)',
      options: {
        cache: CACHE,
        quantized: { type: 'boolean', help: 'the 8-bit variant' },
        force: { type: 'boolean', help: 'download again even when cached' },
        mirror: { type: 'string', value: 'URL', help: 'server to download from (default $CLIP_LENS_MODEL_MIRROR or https://huggingface.co)' },
        proxy: { type: 'string', value: 'URL', help: 'http://[user:pass@]host:port proxy (default HTTPS_PROXY / HTTP_PROXY)' },
      },
      run: (args, { io }) => downloadCommand(flagsOf(args, 1), io),
    },
    {
      name: 'verify',
      usage: ['<dir|id> [--quantized] [--cache DIR]'],
      summary: 'check a model folder (or a downloaded registry model) completely',
      options: { quantized: { type: 'boolean', help: 'check the 8-bit variant' }, cache: CACHE },
      run: (args, { io }) => verifyCommand(flagsOf(args, 1), io),
    },
  ],
};

/** Run `clip-lens model <args>`; returns the process exit code. */
export async function modelCommand(args: string[], io: ModelCommandIO): Promise<number> {
  try {
    return await runCommand(MODEL_COMMAND, args, { io, signal: new AbortController().signal, debug: false });
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`clip-lens model: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CancelledError) {
      io.err(`\ncancelled; the partial download is kept and resumes next time\n`);
      return 130;
    }
    if (e instanceof ClipLensError) {
      io.err(`error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

type Flags = { cache?: string; quantized?: boolean; force?: boolean; mirror?: string; proxy?: string };

function flagsOf(args: ParsedArgs, positionals: number): { flags: Flags; pos: string[] } {
  if (args.positionals.length > positionals) throw new UsageError(`unexpected argument '${args.positionals[positionals]}'`);
  return { flags: args.values as Flags, pos: args.positionals };
}

function cacheDirOf(flags: Flags): string {
  return flags.cache ? path.resolve(flags.cache) : defaultCacheDir();
}

/** A registry entry from a user-typed id (usage errors for unknown ids, paths and missing quantized variants). */
function registryEntry(id: string, quantized: boolean | undefined): RegistryEntry {
  let resolved;
  try {
    resolved = resolveModelSpec(id, process.cwd());
  } catch (e) {
    if (e instanceof ClipLensError) throw new UsageError(e.message);
    throw e;
  }
  if (resolved.kind === 'path') throw new UsageError(`'${id}' is a path; download takes a model id (see clip-lens model list)`);
  if (!quantized) return resolved.entry;
  const q = quantizedVariant(resolved.entry);
  if (!q) throw new UsageError(`model '${resolved.entry.id}' has no quantized variant`);
  return q;
}

async function listCommand({ flags }: { flags: Flags }, io: ModelCommandIO): Promise<number> {
  const cacheDir = cacheDirOf(flags);
  const rows = [['ID', 'SIZE', 'QUANTIZED', 'CACHED', 'DESCRIPTION']];
  for (const e of MODEL_REGISTRY) {
    rows.push([
      e.isDefault ? `${e.id} (default)` : e.id,
      `~${formatBytes(e.approxBytes)}`,
      e.quantized ? 'yes' : 'no',
      (await isModelCached(e, cacheDir)) ? 'yes' : 'no',
      e.description,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) io.out(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ') + '\n');
  io.out(`\ncache: ${cacheDir}\n`);
  return 0;
}

async function downloadCommand({ flags, pos }: { flags: Flags; pos: string[] }, io: ModelCommandIO): Promise<number> {
  if (pos.length === 0) throw new UsageError('download needs a model id (see clip-lens model list)');
  const entry = registryEntry(pos[0], flags.quantized);
  const cacheDir = cacheDirOf(flags);
  if (!flags.force && (await isModelCached(entry, cacheDir))) {
    io.err(`${entry.id} is already downloaded (use --force to download it again)\n`);
    io.out(cachedModelDir(entry, cacheDir) + '\n');
    return 0;
  }
  io.err(`downloading ${entry.id} (~${formatBytes(entry.approxBytes)}) from ${entry.repo} into ${cacheDir}\n`);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const bar = new ProgressPrinter(io);
  try {
    const dir = await downloadModel(entry, {
      cacheDir,
      baseUrl: flags.mirror,
      proxy: flags.proxy,
      signal: controller.signal,
      onProgress: (p) => bar.update(p),
    });
    bar.finish();
    io.err(`${entry.id}: downloaded and verified\n`);
    io.out(dir + '\n');
    return 0;
  } finally {
    bar.finish();
    process.removeListener('SIGINT', onSigint);
  }
}

async function verifyCommand({ flags, pos }: { flags: Flags; pos: string[] }, io: ModelCommandIO): Promise<number> {
  if (pos.length === 0) throw new UsageError('verify needs a model directory or id');
  let resolved;
  try {
    resolved = resolveModelSpec(pos[0], process.cwd());
  } catch (e) {
    if (e instanceof ClipLensError) throw new UsageError(e.message);
    throw e;
  }
  let dir: string;
  if (resolved.kind === 'registry') {
    const entry = flags.quantized ? quantizedVariant(resolved.entry) : resolved.entry;
    if (!entry) throw new UsageError(`model '${resolved.entry.id}' has no quantized variant`);
    const cacheDir = cacheDirOf(flags);
    const problem = await checkCachedModel(entry, cacheDir, 'full');
    if (problem) {
      io.err(`${problem}\n`);
      return 1;
    }
    dir = cachedModelDir(entry, cacheDir);
  } else dir = resolved.dir;
  const result = await validateModelDir(dir, { deep: true, quantized: flags.quantized ? true : undefined });
  if (result.ok) {
    io.out(`ok: ${dir}\n`);
    return 0;
  }
  for (const p of result.problems) {
    const where = p.file === '.' ? dir : path.join(dir, p.file);
    io.err(`${where}${p.line ? `:${p.line}` : ''}: ${p.message}\n`);
  }
  io.err(`${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} in ${dir}\n`);
  return 1;
}

/** A one-line progress bar on a TTY (redrawn with '\r'); one line per file otherwise. */
class ProgressPrinter {
  private file: string | null = null;
  private drawn = false;
  constructor(private readonly io: ModelCommandIO) {}

  update(p: DownloadProgress): void {
    if (p.file !== this.file) {
      this.endLine();
      this.file = p.file;
      if (!this.io.isTTY) this.io.err(`  ${p.file}${p.totalBytes !== null ? ` (${formatBytes(p.totalBytes)})` : ''}\n`);
    }
    if (!this.io.isTTY) return;
    this.io.err(`\r${progressLine(p)}`);
    this.drawn = true;
  }

  finish(): void {
    this.endLine();
    this.file = null;
  }

  private endLine(): void {
    if (this.drawn) this.io.err('\n');
    this.drawn = false;
  }
}

/** `  onnx/vision_model.onnx  [########------------]  41%  144.3 MB / 352.0 MB  12.1 MB/s  ETA 17s` */
export function progressLine(p: DownloadProgress, width = 20): string {
  const rate = `${formatBytes(p.bytesPerSecond)}/s`;
  if (p.totalBytes === null || p.totalBytes <= 0) return `  ${p.file}  ${formatBytes(p.bytes)}  ${rate}`;
  const frac = Math.min(1, p.bytes / p.totalBytes);
  const filled = Math.round(frac * width);
  const eta = p.bytesPerSecond > 0 ? `  ETA ${formatDuration((p.totalBytes - p.bytes) / p.bytesPerSecond)}` : '';
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  return `  ${p.file}  [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}  ${formatBytes(p.bytes)} / ${formatBytes(p.totalBytes)}  ${rate}${eta}`;
}

/** Decimal units, as download sizes are usually shown: 950 B, 12.3 kB, 352.0 MB, 1.22 GB. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
