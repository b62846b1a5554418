/**
 * glibc's allocator settings for the heavy commands. glibc reads GLIBC_TUNABLES once, when the process starts, so the
 * CLI starts itself again with them (once: the new process finds them set). Measured on a million-image evaluation
 * (docs/benchmarks.md): with the default of 8 arenas per core, the threads that run ONNX Runtime sessions (text tower,
 * zero-shot products) each leave an arena behind, and in about one run in ten glibc kept ~200 MiB of a released
 * session resident to the end of the run; two arenas keep the peak within its bound, at no cost in time. With two
 * arenas glibc still kept 0-250 MiB of freed large blocks (its mmap threshold rises to the size of the largest block
 * freed, so later blocks of that size come from an arena and stay there once freed): the peak ranged 1,785-2,031 MiB
 * over 24 runs. A fixed threshold of 1 MiB returns every large block when it is freed: 1,752-1,775 MiB in 6 runs, at
 * about 2 s more system time; 200 photographs of 2000 x 1500 evaluated as fast, with a 50 MiB lower peak.
 * Nothing else changes: the same arguments, environment (plus GLIBC_TUNABLES), standard streams and exit code.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** The tunables the relaunched process runs with. */
export const MALLOC_TUNABLES = 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=1048576';

/** Commands that evaluate or embed datasets (the others start and finish in moments). */
const HEAVY_COMMANDS = new Set(['eval', 'embed', 'probe', 'hook']);

/**
 * The GLIBC_TUNABLES to start again with, or null to go on in this process: not Linux with glibc, GLIBC_TUNABLES
 * already set (the user's own settings, or this is the relaunched process), CLIP_LENS_RELAUNCH=0, or a light command.
 */
export function relaunchTunables(env: NodeJS.ProcessEnv, command: string | undefined, glibc: () => boolean = runsOnGlibc): string | null {
  if (env.GLIBC_TUNABLES !== undefined || env.CLIP_LENS_RELAUNCH === '0') return null;
  if (command === undefined || !HEAVY_COMMANDS.has(command)) return null;
  return glibc() ? MALLOC_TUNABLES : null;
}

function runsOnGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return typeof header?.glibcVersionRuntime === 'string';
  } catch {
    return false;
  }
}

/**
 * Runs this CLI again in a child process with `tunables` and resolves to the exit code to leave with (-1: the child
 * could not be started; go on in this process). Ctrl-C reaches the child directly (same process group); a SIGTERM or
 * SIGHUP sent to this process alone is passed on.
 */
export function relaunch(tunables: string, argv: readonly string[] = process.argv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...argv.slice(1)], { stdio: 'inherit', env: { ...process.env, GLIBC_TUNABLES: tunables } });
    const pass = (sig: NodeJS.Signals) => () => child.kill(sig);
    const handlers: [NodeJS.Signals, () => void][] = [['SIGINT', () => undefined], ['SIGTERM', pass('SIGTERM')], ['SIGHUP', pass('SIGHUP')]];
    for (const [sig, h] of handlers) process.on(sig, h);
    const done = (code: number) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(code);
    };
    child.once('error', () => done(-1));
    // Killed by a signal: the shell's convention, 128 + its number.
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
  });
}
