/**
 * Runs the heavy loops of the metrics and label-issue computations on the calling thread and on helper worker
 * threads at once, while keeping those computations synchronous.
 *
 * A job is split into units (a block of classes, a range of rows...). The caller posts the job to the helpers, then
 * every thread claims the next unclaimed unit from a shared counter (Atomics.add) until none is left; the caller
 * then blocks (Atomics.wait) until the units the helpers claimed are finished. Inputs and outputs live in
 * SharedArrayBuffers (the probability matrix already does, see probabilities.ts), so nothing big is copied. Units
 * must be idempotent (write their results, never accumulate): a unit a helper failed on, or stalled on for
 * {@link STALL_MS}, is run again by the caller. A helper that never starts (script missing, slow start) is harmless:
 * the caller then claims every unit itself. Jobs reading few values stay on the caller.
 *
 * Helpers: one per CPU core beyond the first (at most {@link MAX_THREADS} threads in all), started on first use,
 * reused, and stopped after {@link IDLE_MS} without a job; they are unref'd, so they never keep the process alive.
 * `CLIP_LENS_THREADS` (a positive integer) sets the thread count, 1 disabling helpers. The helper script is
 * `metricsWorker.js` next to this bundle (esbuild entry `metricsWorker`), or `metricsWorker.ts` when running from
 * source with tsx; without either, everything runs on the caller.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMainThread, Worker, type MessagePort } from 'node:worker_threads';

/** Upper bound on threads (caller included) used by default: memory bandwidth saturates beyond a few. */
const MAX_THREADS = 4;
/** A job whose units stop finishing for this long is finished by the caller (a helper died mid-unit). */
const STALL_MS = 20_000;
/**
 * Helpers idle this long are stopped: an idle helper would not collect its garbage, and so would keep alive the
 * shared memory of the last matrix it saw after the caller dropped it.
 */
const IDLE_MS = 5_000;

/** ctrl[NEXT] = next unit to claim, ctrl[FINISHED] = units done or failed, ctrl[STATUS + u] = status of unit u. */
const NEXT = 0;
const FINISHED = 1;
const STATUS = 2;
const DONE = 1;
const FAILED = 2;

type UnitRunner = (data: unknown, unit: number) => void;

interface JobMessage {
  kind: string;
  data: unknown;
  units: number;
  ctrl: Int32Array;
}

const runners = new Map<string, UnitRunner>();

/**
 * Registers a kind of job (at module load, in the caller and in the helpers alike) and returns the function that
 * runs all `units` of such a job: `run(data, unit)` computes one unit. Helpers join when `work` (an estimate of the
 * values the job reads) is worth it (see {@link setParallelism}) and `shared` says that `data` can be posted: it is
 * structured-cloneable and its typed arrays are on SharedArrayBuffers, so the helpers see the caller's memory.
 */
export function defineJob<T>(kind: string, run: (data: T, unit: number) => void): (data: T, units: number, work: number, shared: boolean) => void {
  runners.set(kind, run as UnitRunner);
  return (data, units, work, shared) => runJob(kind, data, units, shared && work >= minParallelWork);
}

/**
 * Like {@link defineJob}, but the returned function only starts the job: the helpers claim its units at once, the
 * caller goes on (to run an ONNX Runtime product, say) and calls the returned `finish` before it touches the job's
 * outputs or reuses its inputs; `finish` claims the units still unclaimed, waits for the helpers' and reruns any a
 * helper failed on, like a job run at once. Without helpers (or below the work threshold) the units run at `finish`.
 * Two started jobs must not write the same memory.
 */
export function defineDeferredJob<T>(kind: string, run: (data: T, unit: number) => void): (data: T, units: number, work: number, shared: boolean) => () => void {
  runners.set(kind, run as UnitRunner);
  return (data, units, work, shared) => startJob(kind, data, units, shared && work >= minParallelWork, true);
}

/** Units run by helper threads since the start (for tests: that a job did use them). */
let helperUnitsRun = 0;
/** How many job units helper threads have finished since the process started (tests check that helpers ran). */
export function helperUnits(): number {
  return helperUnitsRun;
}

let threadOverride: number | undefined;
/** Jobs reading fewer values than this run on the caller alone (a helper's start and a post cost milliseconds). */
let minParallelWork = 1 << 23;
/** False (tests only): the caller leaves every unit to the helpers and only waits, so that they surely run some. */
let callerRuns = true;

/**
 * Overrides the thread count (caller included; undefined: the default), the work below which jobs stay on the
 * caller (undefined: 2^23 values) and whether the caller runs units itself (default true). For tests and benchmarks.
 */
export function setParallelism(options: { threads?: number; minWork?: number; callerRuns?: boolean }): void {
  const { threads, minWork } = options;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  threadOverride = threads;
  minParallelWork = minWork ?? 1 << 23;
  callerRuns = options.callerRuns ?? true;
}

/**
 * Stops the helper threads now (they restart on demand); resolves once they are gone, and with them their references
 * to shared memory (a helper keeps the buffers of the jobs it ran, such as the embedding rows, until it collects its
 * garbage, which an idle helper does not do).
 */
export async function stopHelpers(): Promise<void> {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  const old = pool;
  pool = [];
  await Promise.all(old.map((w) => w.terminate().catch(() => undefined)));
}

/**
 * {@link stopHelpers} unless some job is out (another evaluation running meanwhile, e.g. a second model's: its helpers
 * stay).
 */
export async function stopIdleHelpers(): Promise<void> {
  if (jobsOut === 0) await stopHelpers();
}

/** Jobs posted to helpers and not finished yet. */
let jobsOut = 0;

/** Threads (caller included) a job may use: the override, CLIP_LENS_THREADS, or the CPU count up to MAX_THREADS. */
export function threadCount(): number {
  if (threadOverride !== undefined) return threadOverride;
  const env = Number(process.env.CLIP_LENS_THREADS);
  if (Number.isInteger(env) && env >= 1) return env;
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(MAX_THREADS, cpus));
}

/** True when shared memory is available, so that jobs can use helpers (else they run on the caller alone). */
export function canShareMemory(): boolean {
  return typeof SharedArrayBuffer === 'function' && typeof Atomics === 'object';
}

/** An Int32Array on a SharedArrayBuffer (an ordinary one where shared memory is not available). */
export function sharedInt32(length: number): Int32Array {
  return canShareMemory() ? new Int32Array(new SharedArrayBuffer(4 * length)) : new Int32Array(length);
}

/** A Float64Array on a SharedArrayBuffer (an ordinary one where shared memory is not available). */
export function sharedFloat64(length: number): Float64Array {
  return canShareMemory() ? new Float64Array(new SharedArrayBuffer(8 * length)) : new Float64Array(length);
}

/** A Float32Array on a SharedArrayBuffer (an ordinary one where shared memory is not available). */
export function sharedFloat32(length: number): Float32Array {
  return canShareMemory() ? new Float32Array(new SharedArrayBuffer(4 * length)) : new Float32Array(length);
}

/** A Uint16Array on a SharedArrayBuffer (an ordinary one where shared memory is not available). */
export function sharedUint16(length: number): Uint16Array {
  return canShareMemory() ? new Uint16Array(new SharedArrayBuffer(2 * length)) : new Uint16Array(length);
}

/** A Uint8Array on a SharedArrayBuffer (an ordinary one where shared memory is not available). */
export function sharedUint8(length: number): Uint8Array {
  return canShareMemory() ? new Uint8Array(new SharedArrayBuffer(length)) : new Uint8Array(length);
}

/** A copy of `values` in shared memory (the same Float64Array when it already is in shared memory). */
export function toSharedFloat64(values: Float64Array): Float64Array {
  if (values.buffer instanceof SharedArrayBuffer) return values;
  const out = sharedFloat64(values.length);
  out.set(values);
  return out;
}

/** A copy of `values` in shared memory (an Int32Array view of it when it already is one). */
export function toSharedInt32(values: ArrayLike<number>): Int32Array {
  if (values instanceof Int32Array && values.buffer instanceof SharedArrayBuffer) return values;
  const out = sharedInt32(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i];
  return out;
}

function runJob(kind: string, data: unknown, units: number, parallel: boolean): void {
  startJob(kind, data, units, parallel, false)();
}

/**
 * Posts the job to the helpers and returns the caller's part: claiming the units left, waiting for the helpers',
 * rerunning failed ones. A job run at once shares its units between the caller and threadCount() - 1 helpers; a
 * deferred one (the caller busy meanwhile) goes to as many helpers as it has units, up to threadCount() - 1.
 */
function startJob(kind: string, data: unknown, units: number, parallel: boolean, deferred: boolean): () => void {
  const run = runners.get(kind) as UnitRunner;
  const threads = threadCount();
  const wanted = deferred ? Math.min(units, threads - 1) : Math.min(units, threads) - 1;
  const helpers = parallel && units > 0 ? helperWorkers(wanted) : [];
  if (helpers.length === 0) {
    return () => {
      for (let u = 0; u < units; u++) run(data, u);
    };
  }
  const ctrl = sharedInt32(STATUS + units);
  const message: JobMessage = { kind, data, units, ctrl };
  // No idle stop while a job is out (a deferred one may wait a while for its finish).
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  for (const w of helpers) w.postMessage(message);
  jobsOut++;
  let finished = false;
  return () => {
    if (finished) return;
    finished = true;
    try {
      finishJob(run, data, units, ctrl);
    } finally {
      jobsOut--;
    }
  };
}

function finishJob(run: UnitRunner, data: unknown, units: number, ctrl: Int32Array): void {
  let ranHere = 0;
  if (callerRuns) {
    for (let u = Atomics.add(ctrl, NEXT, 1); u < units; u = Atomics.add(ctrl, NEXT, 1)) {
      run(data, u);
      ranHere++;
      Atomics.store(ctrl, STATUS + u, DONE);
      Atomics.add(ctrl, FINISHED, 1);
    }
  }
  waitForUnits(ctrl, units, callerRuns ? STALL_MS : 10 * STALL_MS);
  // Units a helper failed on (or stalled on) are run here; their results are written, so running one twice is fine.
  let done = 0;
  for (let u = 0; u < units; u++) {
    if (Atomics.load(ctrl, STATUS + u) === DONE) done++;
    else run(data, u);
  }
  helperUnitsRun += done - ranHere;
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => void stopHelpers(), IDLE_MS);
  idleTimer.unref();
}

function waitForUnits(ctrl: Int32Array, units: number, stallMs: number): void {
  let seen = Atomics.load(ctrl, FINISHED);
  let since = Date.now();
  while (seen < units) {
    try {
      Atomics.wait(ctrl, FINISHED, seen, 100);
    } catch {
      // Atomics.wait is not allowed on this thread: poll.
    }
    const now = Atomics.load(ctrl, FINISHED);
    if (now !== seen) {
      seen = now;
      since = Date.now();
    } else if (Date.now() - since > stallMs) return;
  }
}

let pool: Worker[] = [];
let helpersBroken = false;
let idleTimer: NodeJS.Timeout | undefined;

function helperWorkers(count: number): Worker[] {
  if (count <= 0 || helpersBroken || !isMainThread || !canShareMemory()) return [];
  while (pool.length < count) {
    const w = startHelper();
    if (!w) {
      helpersBroken = true;
      return pool.slice(0, count);
    }
    pool.push(w);
  }
  return pool.slice(0, count);
}

/**
 * A worker thread running `name`.js next to this bundle (an esbuild entry), or `name`.ts when running from source
 * with tsx; undefined without either, or when it cannot be made.
 */
export function startWorkerScript(name: string): Worker | undefined {
  const script = [`${name}.js`, `${name}.ts`].map((f) => path.join(__dirname, f)).find((f) => fs.existsSync(f));
  if (!script) return undefined;
  try {
    return script.endsWith('.ts') ? new Worker(`require('tsx/cjs/api').register(); require(${JSON.stringify(script)});`, { eval: true }) : new Worker(script);
  } catch {
    return undefined;
  }
}

function startHelper(): Worker | undefined {
  const w = startWorkerScript('metricsWorker');
  if (!w) return undefined;
  w.unref();
  let started = false;
  w.on('online', () => (started = true));
  const drop = () => {
    pool = pool.filter((x) => x !== w);
    // A helper that could not even start will not start next time either: stop trying.
    if (!started) helpersBroken = true;
  };
  w.on('error', drop);
  w.on('exit', drop);
  return w;
}

/** The helper side: runs the units of each job posted to `port` (see metricsWorker.ts). */
export function serveJobs(port: MessagePort): void {
  port.on('message', (msg: JobMessage) => {
    const { kind, data, units, ctrl } = msg;
    const run = runners.get(kind);
    for (let u = Atomics.add(ctrl, NEXT, 1); u < units; u = Atomics.add(ctrl, NEXT, 1)) {
      let status = DONE;
      try {
        if (!run) throw new Error(`unknown job kind ${kind}`);
        run(data, u);
      } catch {
        status = FAILED;
      }
      Atomics.store(ctrl, STATUS + u, status);
      Atomics.add(ctrl, FINISHED, 1);
      Atomics.notify(ctrl, FINISHED);
    }
  });
}
