/**
 * Saving a report without blocking the extension host (no 'vscode'; unit-tested).
 */
import * as fs from 'node:fs';
import type { EvalReport } from '../core/report';

/** Samples serialised per slice. */
const SAMPLES_PER_SLICE = 2000;

/**
 * Writes a report as JSON (equal to the report once parsed; `samples` comes first) in slices of samples, yielding to
 * the event loop between them, into a temporary file renamed into place at the end.
 */
export async function writeReport(file: string, report: EvalReport): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    const { samples, ...rest } = report;
    const head = JSON.stringify(rest);
    await fh.write('{"samples":[');
    for (let i = 0; i < samples.length; i += SAMPLES_PER_SLICE) {
      const slice = samples
        .slice(i, i + SAMPLES_PER_SLICE)
        .map((s) => JSON.stringify(s))
        .join(',');
      await fh.write(i === 0 ? slice : `,${slice}`);
      await new Promise((r) => setImmediate(r));
    }
    await fh.write(head === '{}' ? ']}' : `],${head.slice(1)}`);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fs.promises.rename(tmp, file);
}
