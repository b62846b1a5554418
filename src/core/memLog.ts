/**
 * Memory phase marks for diagnosing a run's peak (issue 15): with CLIP_LENS_MEMLOG=1 in the environment, each
 * `memMark(phase)` writes one line to stderr with the process's resident set now (VmRSS) and its peak so far
 * (VmHWM, from /proc/self/status on Linux; elsewhere process.memoryUsage().rss only), the V8 heap in use and
 * committed, the memory held outside the heap by ArrayBuffers, and the CPU time of all its threads so far (a phase's
 * CPU over its wall time is how many of the cores it kept busy). Off (the default) it costs one property read.
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

export interface MemSnapshot {
  phase: string;
  /** Seconds since the first mark. */
  atS: number;
  rssMiB: number;
  /** Peak resident set so far (null where /proc/self/status is not readable). */
  hwmMiB: number | null;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
  /** CPU time of the whole process (every thread, user + system) since it started, in seconds. */
  cpuS: number;
}

const MiB = 1024 * 1024;
let started = 0;

/** Whether CLIP_LENS_MEMLOG asks for the marks (read each call: tests may set it). */
export function memLogEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CLIP_LENS_MEMLOG;
  return v !== undefined && v !== '' && v !== '0';
}

function procStatusKiB(field: string, text: string): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** One snapshot of the process's memory (whether or not logging is on). */
export function memSnapshot(phase: string): MemSnapshot {
  const now = performance.now();
  if (started === 0) started = now;
  const u = process.memoryUsage();
  let rss = u.rss / MiB;
  let hwm: number | null = null;
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const r = procStatusKiB('VmRSS', status);
    const h = procStatusKiB('VmHWM', status);
    if (r !== null) rss = r / 1024;
    if (h !== null) hwm = h / 1024;
  } catch {
    // not Linux: rss from process.memoryUsage() only
  }
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return {
    phase,
    atS: r1((now - started) / 1000),
    rssMiB: r1(rss),
    hwmMiB: hwm === null ? null : r1(hwm),
    heapUsedMiB: r1(u.heapUsed / MiB),
    heapTotalMiB: r1(u.heapTotal / MiB),
    externalMiB: r1(u.external / MiB),
    arrayBuffersMiB: r1(u.arrayBuffers / MiB),
    cpuS: r1(cpuSeconds()),
  };
}

function cpuSeconds(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

export function formatMemSnapshot(s: MemSnapshot): string {
  return `[memlog] ${s.atS.toFixed(1).padStart(6)} s  rss ${s.rssMiB.toFixed(0).padStart(5)} MiB  peak ${s.hwmMiB === null ? '    ?' : s.hwmMiB.toFixed(0).padStart(5)} MiB  heap ${s.heapUsedMiB.toFixed(0)}/${s.heapTotalMiB.toFixed(0)} MiB  external ${s.externalMiB.toFixed(0)} MiB (arrayBuffers ${s.arrayBuffersMiB.toFixed(0)})  cpu ${s.cpuS.toFixed(1)} s  ${s.phase}`;
}

/** Logs a phase mark to stderr when CLIP_LENS_MEMLOG is set; returns the snapshot (or null when off). */
export function memMark(phase: string): MemSnapshot | null {
  if (!memLogEnabled()) return null;
  const s = memSnapshot(phase);
  process.stderr.write(formatMemSnapshot(s) + '\n');
  return s;
}

let fullCollection: ((options?: { type: 'major' | 'minor' }) => void) | null = null;

/**
 * Lets {@link releaseGarbage} run full collections. The CLI (a process of its own) turns it on at start; the editor
 * does not (the extension host's heap is not ours to stop), so there it does nothing.
 */
export function allowFullCollection(): void {
  if (fullCollection) return;
  try {
    v8.setFlagsFromString('--expose-gc');
    fullCollection = vm.runInNewContext('gc') as (options?: { type: 'major' | 'minor' }) => void;
  } catch {
    fullCollection = null;
  }
}

/**
 * A full garbage collection now, when allowed (see {@link allowFullCollection}), at a phase boundary of a large
 * evaluation where hundreds of MB just became garbage (the duplicate index and its search blocks, the prune's heaps,
 * the embedding rows once judged). V8 frees ArrayBuffers only when it collects, and while it has not they stay
 * resident, so the next phase's allocations would pile on them: that made the peak of a million-row run (issue 15).
 * Costs a few hundred milliseconds at a million samples. Returns whether it ran.
 */
export function releaseGarbage(after: string): boolean {
  if (!fullCollection) return false;
  fullCollection();
  // V8 frees the backing stores of the ArrayBuffers the collection found dead on a background thread afterwards (a GB
  // of embedding rows in about 0.1 s when a core is free, later when none is), and until then they stay resident: the
  // next phase's allocations, or a worker started meanwhile, piled on them (peaks of 2,125 to 2,457 MiB at a million
  // rows). The next collection first finishes that sweep on this thread: a scavenge, a few milliseconds.
  fullCollection({ type: 'minor' });
  memMark(`garbage released after ${after}`);
  return true;
}

/**
 * {@link releaseGarbage} where most of the ArrayBuffer memory is expected to go (a large evaluation's embedding rows,
 * once it is over): while less than half of it went, again after a turn of the event loop, at most twice more. In 5
 * of 22 million-row runs the first collection left the rows' GB held and one more after a turn (setTimeout 0) freed it
 * (a turn before the first did not: something lets go only once a collection has run, as a finalizer's held value
 * does); the write then piled on them (peaks of 1,972 to 2,125 MiB). Returns whether it ran.
 */
export async function releaseGarbageThoroughly(after: string): Promise<boolean> {
  if (!fullCollection) return false;
  const before = process.memoryUsage().arrayBuffers;
  releaseGarbage(after);
  for (let more = 1; more <= 2 && process.memoryUsage().arrayBuffers > before / 2; more++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    releaseGarbage(`${after}, again (${more})`);
  }
  return true;
}

/**
 * A young-generation collection (a scavenge: one or two milliseconds) when allowed (see {@link allowFullCollection}),
 * after each block of a pass whose product hands back the block's whole probabilities (16 MB at 4,096 rows x 1,000
 * classes): ONNX Runtime's output buffer, dead by then, is freed while still young. Left to itself V8 answers that
 * external memory either with scavenges or, once a few outputs have been promoted, with a full mark-compact every few
 * blocks: at 1,000,000 x 1,000 pass 3 took 13.6 s in the first mode and 18.6 s in the second (68 mark-compacts, and
 * ONNX Runtime slowed beside the concurrent marking), about one run in two (docs/benchmarks.md, session 9).
 */
export function releaseYoungGarbage(): void {
  fullCollection?.({ type: 'minor' });
}
