import { memMark } from '../core/memLog';
import type { EvaluateProgress } from '../core/evaluate';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from '../core/errors';
import { jsonReportChunks } from '../core/reportExport';
import { reportForFile, startSamplesSidecar, type SamplesMode } from '../core/reportSamples';
import { downloadModel } from '../core/modelDownload';
import type { ObtainModel } from '../core/run';
import type { EvalReport } from '../core/report';
import { makeDirectory } from '../core/fileSystem';

/** The CLI's view of its terminal, injectable so commands can be tested in-process. */
export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
  /** stderr is a terminal: show progress bars. */
  isTTY: boolean;
}

export const processIO: CliIO = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  isTTY: Boolean(process.stderr.isTTY),
};

/** A one-line progress bar redrawn in place on a TTY; silent otherwise. */
export class ProgressLine {
  private last = 0;
  private shown = false;
  constructor(private readonly io: CliIO) {}

  update(text: string, force = false): void {
    if (!this.io.isTTY) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = Math.max(20, (process.stderr.columns || 80) - 1);
    this.io.err(`\r\x1b[2K${text.slice(0, width)}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.io.err('\r\x1b[2K');
    this.shown = false;
  }
}

export function bar(done: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** The progress line of an evaluation (one model: `models` has one name and `progress` one entry). */
export function evaluationProgressLine(progress: readonly (EvaluateProgress | undefined)[], names: readonly string[], embeddings: boolean): string {
  const [first] = progress;
  if (!first) return 'Starting...';
  if (progress.length < 2) {
    const p = first;
    if (p.phase === 'images' && embeddings) return `Reading embeddings ${bar(p.done, p.total)} ${p.done}/${p.total}`;
    if (p.phase === 'images') return `Evaluating ${bar(p.done, p.total)} ${p.done}/${p.total} images, ${p.rate.toFixed(1)}/s${p.fromCache ? `, ${p.fromCache} cached` : ''}`;
    return phaseText(p.phase);
  }
  // Two models: the images are read once for both; each model's count or phase, names first (a narrow terminal cuts
  // the bar, not a model), then a bar over both.
  const part = (p: EvaluateProgress | undefined, name: string) => {
    if (!p) return `${name} starting`;
    if (p.phase === 'images') return `${name} ${p.done}/${p.total}${p.fromCache ? ` (${p.fromCache} cached)` : ''}`;
    return `${name} ${p.phase === 'reading' ? 'reading' : p.phase === 'prompts' ? 'prompts' : 'metrics'}`;
  };
  // Both models evaluate the same images: one not started yet counts the other's total.
  const known = Math.max(0, ...progress.map((p) => p?.total ?? 0));
  const total = progress.reduce((a, p) => a + (p?.total ?? known), 0);
  const done = progress.reduce((a, p) => a + (p && p.phase === 'images' ? p.done : p && p.phase !== 'reading' && p.phase !== 'prompts' ? p.total : 0), 0);
  return `Evaluating ${progress.map((p, i) => part(p, names[i] ?? `model ${i + 1}`)).join(' · ')} images ${bar(done, total, 12)}`;
}

function phaseText(phase: EvaluateProgress['phase']): string {
  return phase === 'reading' ? 'Reading dataset...' : phase === 'prompts' ? 'Embedding class prompts...' : 'Computing metrics...';
}

/** A command line the CLI cannot run (unknown option, missing argument): exit code 2 with a one-line reason. */
export class UsageError extends Error {}

/** True for Node's system errors (ENOENT, EACCES, ...), which name a path and a syscall. */
function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  const err = e as NodeJS.ErrnoException;
  return err instanceof Error && typeof err.code === 'string' && /^E[A-Z0-9]+$/.test(err.code) && typeof err.syscall === 'string';
}

/**
 * One line for a fatal error: ClipLensError and UsageError messages as they are (they name their file and line);
 * a system error as "<path>: cannot <syscall>: <cause> (<CODE>)"; anything else as an internal error whose stack
 * trace is printed only with --debug.
 */
export function describeError(e: unknown): { line: string; internal: boolean } {
  const err = e instanceof Error ? e : new Error(String(e));
  if (err instanceof ClipLensError || err instanceof UsageError) return { line: firstLine(err.message), internal: false };
  if (isSystemError(err)) {
    const m = /^[A-Z0-9]+: ([^,]+)/.exec(err.message);
    const cause = `${m ? m[1] : err.code} (${err.code})`;
    const dest = (err as { dest?: string }).dest;
    const target = err.path ? `${err.path}${dest ? ` -> ${dest}` : ''}: ` : '';
    return { line: `${target}cannot ${err.syscall}: ${cause}`, internal: false };
  }
  return { line: `internal error: ${firstLine(err.message) || err.name} (run with --debug for the stack trace)`, internal: true };
}

function firstLine(s: string): string {
  return s.split('\n')[0] as string;
}

/**
 * Writes the eval report as JSON (1-space indent, as JSON.stringify(report, null, 1)) to `file` atomically (a
 * temporary file renamed into place), in 64 KB pieces: a large dataset's report is never one string in memory.
 * Per-sample data goes inline and/or to the sidecar `<file>.samples.parquet` as `mode` says (core/reportSamples.ts).
 */
export async function writeJsonReport(report: EvalReport, file: string, mode: SamplesMode = 'auto'): Promise<void> {
  const { json, sidecar } = reportForFile(report, file, mode);
  await writeOutput(file, async (fh) => {
    // The folder exists now. A large sidecar's encoding starts on a worker while this thread writes the JSON, then
    // this thread encodes its share (startSamplesSidecar); it is in place before the report that names it (renamed
    // into place after this function). A large evaluation's embedding rows (a GB at a million samples) were given back
    // before (run.ts executeRun, memLog.ts releaseGarbageThoroughly): with them still resident the worker's copy of the
    // columns piled on them (peaks of 1,972 to 2,457 MiB at a million rows: docs/benchmarks.md).
    memMark('write: start');
    const sidecarJob = sidecar ? startSamplesSidecar(report, sidecar) : null;
    let pending = '';
    for (const chunk of jsonReportChunks(json, 1)) {
      pending += chunk;
      if (pending.length >= 1 << 16) {
        await fh.write(pending);
        pending = '';
      }
    }
    await fh.write(`${pending}\n`);
    memMark('write: JSON written');
    await sidecarJob?.written();
    memMark('write: sidecar written');
  });
}

/**
 * Writes an output file the user named (--json, --output): its folder is created, the content goes to a temporary
 * file renamed into place. A filesystem error is a ClipLensError naming `file` and the cause, on one line.
 */
export async function writeOutput(file: string, write: (fh: fs.promises.FileHandle) => Promise<void>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fail = (e: unknown): never => {
    if (e instanceof ClipLensError) throw e;
    const err = e as NodeJS.ErrnoException;
    const m = /^[A-Z0-9]+: ([^,]+)/.exec(err.message ?? '');
    throw new ClipLensError('output-unwritable', `cannot write this file: ${m ? m[1] : err.message}${err.code ? ` (${err.code})` : ''}`, { file });
  };
  await makeDirectory(path.dirname(path.resolve(file))).catch(fail);
  const fh = await fs.promises.open(tmp, 'w').catch(fail);
  try {
    await write(fh);
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    fail(e);
  }
  await fs.promises.rename(tmp, file).catch(async (e: unknown) => {
    await fs.promises.rm(tmp, { force: true });
    fail(e);
  });
}

/** Downloads a missing registry model with a progress line on a TTY (the CLI's answer to core's ObtainModel). */
export function cliObtainModel(io: CliIO): ObtainModel {
  return async (entry, cacheDir, signal) => {
    const progress = new ProgressLine(io);
    try {
      return await downloadModel(entry, {
        cacheDir,
        signal,
        onProgress: (p) => progress.update(`Downloading ${p.file} ${p.totalBytes ? bar(p.bytes, p.totalBytes) : ''} ${(p.bytes / 1e6).toFixed(1)} MB at ${(p.bytesPerSecond / 1e6).toFixed(1)} MB/s`),
      });
    } finally {
      progress.clear();
    }
  };
}
