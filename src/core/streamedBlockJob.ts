/**
 * The JavaScript work of one block of the streamed judgement (streamedJudgement.ts) as one job of independent units
 * over shared memory (parallel.ts), so that the helper threads share it like the held path's AP blocks: the AP
 * counting of each accumulator (one unit per block of classes, retrieval.ts StreamingAveragePrecision), cleanlab's
 * per-row scan (labelIssues.ts rowScanUnit) and the metrics' per-row pass (metrics.ts rowPassUnit), each split in
 * row ranges. Every unit writes only its own outputs (its counter's histograms, its rows' values), integers or
 * float32 patterns computed exactly as on one thread, so the results do not depend on which thread ran what.
 * The larger AP units come first, so that the row units fill in at the end.
 */
import { rowScanUnit, type RowScanData } from './labelIssues';
import { rowPassUnit, type RowPassData } from './metrics';
import { canShareMemory, defineDeferredJob, defineJob, threadCount } from './parallel';
import { streamedCountUnit, type StreamedCount } from './retrieval';

/** One kind of work of a block: its data and how many units it has. */
export type BlockPart = { kind: 'count'; data: StreamedCount } | { kind: 'scan'; data: RowScanData; units: number } | { kind: 'rows'; data: RowPassData; units: number };

interface BlockJobData {
  parts: BlockPart[];
}

function unitsOf(part: BlockPart): number {
  return part.kind === 'count' ? part.data.counters.length : part.units;
}

function runBlockUnit(data: BlockJobData, unit: number): void {
  let u = unit;
  for (const part of data.parts) {
    const units = unitsOf(part);
    if (u >= units) {
      u -= units;
      continue;
    }
    if (part.kind === 'count') streamedCountUnit(part.data, u);
    else if (part.kind === 'scan') rowScanUnit(part.data, u);
    else rowPassUnit(part.data, u);
    return;
  }
}

const runBlockJob = defineJob<BlockJobData>('streamedBlock', runBlockUnit);
const startBlockJob = defineDeferredJob<BlockJobData>('streamedBlockDeferred', runBlockUnit);

/**
 * Rows per unit of the row parts for a block of `m` rows: about 4 units per thread (the row units fill the gaps
 * the AP units leave), whole blocks on one thread.
 */
export function rowsPerUnitFor(m: number): number {
  const threads = streamedThreads();
  return threads <= 1 ? Math.max(1, m) : Math.max(64, Math.ceil(m / (4 * threads)));
}

/** Threads the streamed blocks use: helpers only where memory can be shared. */
export function streamedThreads(): number {
  return canShareMemory() ? threadCount() : 1;
}

/**
 * Runs every unit of `parts` (on helper threads too when `shared`: all their arrays are in shared memory). `work`:
 * values the parts read (decides whether helpers join, see parallel.ts).
 */
export function runBlockParts(parts: BlockPart[], work: number, shared: boolean): void {
  const units = parts.reduce((sum, p) => sum + unitsOf(p), 0);
  if (units > 0) runBlockJob({ parts }, units, work, shared);
}

/**
 * Starts every unit of `parts` on the helper threads and returns the function that finishes them (the units left,
 * on the caller): the caller runs the next block's product meanwhile (onnxruntime-node's session.run holds this
 * thread), then calls it before reusing the block's memory or starting another job on the same outputs. Without
 * helpers, or when `shared` is false, everything runs at the finish.
 */
export function startBlockParts(parts: BlockPart[], work: number, shared: boolean): () => void {
  const units = parts.reduce((sum, p) => sum + unitsOf(p), 0);
  return units > 0 ? startBlockJob({ parts }, units, work, shared) : () => undefined;
}
