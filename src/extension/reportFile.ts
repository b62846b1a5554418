/**
 * Saving a report without blocking the extension host (no 'vscode'; unit-tested).
 */
import * as fs from 'node:fs';
import type { EvalReport } from '../core/report';
import { reportForFile, samplesInline, samplesOf, writeSamplesSidecar, type SamplesMode } from '../core/reportSamples';

/** Samples serialised per slice. */
const SAMPLES_PER_SLICE = 2000;

/**
 * Writes a report as JSON (equal to the report once parsed; `samples` comes first) in slices of samples, yielding to
 * the event loop between them, into a temporary file renamed into place at the end. A saved report keeps its samples
 * inline up to 50,000 samples (one file, as before) and only in the sidecar above (core/reportSamples.ts; the sidecar
 * is written first), unless `mode` says otherwise.
 */
export async function writeReport(file: string, report: EvalReport, mode?: SamplesMode): Promise<void> {
  const { json, sidecar } = reportForFile(report, file, mode ?? (samplesInline('auto', samplesOf(report).length) ? 'inline' : 'sidecar'));
  if (sidecar) await writeSamplesSidecar(report, sidecar);
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    const { samples = [], ...rest } = json;
    const head = JSON.stringify(rest);
    await fh.write(json.samples ? '{"samples":[' : '{');
    for (let i = 0; i < samples.length; i += SAMPLES_PER_SLICE) {
      const slice = samples
        .slice(i, i + SAMPLES_PER_SLICE)
        .map((s) => JSON.stringify(s))
        .join(',');
      await fh.write(i === 0 ? slice : `,${slice}`);
      await new Promise((r) => setImmediate(r));
    }
    if (json.samples) await fh.write(head === '{}' ? ']}' : `],${head.slice(1)}`);
    else await fh.write(head.slice(1));
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fs.promises.rename(tmp, file);
}
