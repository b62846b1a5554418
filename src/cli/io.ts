import * as fs from 'node:fs';
import { jsonReportChunks } from '../core/reportExport';
import type { EvalReport } from '../core/report';

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

/** Usage errors and fatal errors: exit code 2 with a one-line reason. */
export class UsageError extends Error {}

/**
 * Writes the eval report as JSON (1-space indent, as JSON.stringify(report, null, 1)) to `file` atomically (a
 * temporary file renamed into place), in 64 KB pieces: a large dataset's report is never one string in memory.
 */
export async function writeJsonReport(report: EvalReport, file: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    let pending = '';
    for (const chunk of jsonReportChunks(report, 1)) {
      pending += chunk;
      if (pending.length >= 1 << 16) {
        await fh.write(pending);
        pending = '';
      }
    }
    await fh.write(`${pending}\n`);
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fs.promises.rename(tmp, file);
}
