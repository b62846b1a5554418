/**
 * Worker thread encoding a large report's samples sidecar (reportSamples.ts parquetOfColumns) while the caller goes
 * on: gets the columns, answers with the Parquet bytes (their buffer transferred) or an error message. Bundled as
 * dist/sidecarWorker.js.
 */
import { parentPort } from 'node:worker_threads';
import { parquetOfColumns, type SidecarColumns } from './reportSamples';

parentPort?.on('message', (columns: SidecarColumns) => {
  parquetOfColumns(columns).then(
    (bytes) => parentPort?.postMessage({ bytes }, [bytes.buffer as ArrayBuffer]),
    (e: unknown) => parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e) }),
  );
});
