/**
 * Worker thread encoding a large report's samples sidecar (reportSamples.ts) while the caller goes on: gets the
 * columns, answers with the Parquet bytes of the whole file (parquetOfColumns) or of a part of it (sidecarPart), their
 * buffer transferred, or with an error message. Bundled as dist/sidecarWorker.js.
 */
import { parentPort } from 'node:worker_threads';
import { parquetOfColumns, sidecarPart, type SidecarJob } from './reportSamples';

parentPort?.on('message', (job: SidecarJob) => {
  const fail = (e: unknown) => parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e) });
  if (job.part) sidecarPart(job.columns).then((part) => parentPort?.postMessage({ part }, [part.bytes.buffer as ArrayBuffer]), fail);
  else parquetOfColumns(job.columns).then((bytes) => parentPort?.postMessage({ bytes }, [bytes.buffer as ArrayBuffer]), fail);
});
