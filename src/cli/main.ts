/**
 * The `clip-lens` command: a thin shell over core. The subcommands, their options and help are declared once in
 * commands.ts (the command table); this file dispatches and turns errors into one line. Exit codes: 0 success, 1 a
 * check failed (gate), 2 usage or fatal error (one line on stderr; the stack trace of an internal error only with
 * --debug).
 */
import { CancelledError } from '../core/errors';
import { TOOL_VERSION } from '../core/version';
import { allowFullCollection } from '../core/memLog';
import { nearestOption, runCommand, tableUsage } from './args';
import { COMMANDS } from './commands';
import { describeError, processIO, UsageError, type CliIO } from './io';
import { relaunch, relaunchTunables } from './relaunch';

// For tools/bench.mjs, which runs main() in a wrapper of its own and sets the same environment.
export { relaunchTunables };

export function topLevelHelp(): string {
  return `clip-lens ${TOOL_VERSION}: audit image classification datasets with CLIP

Usage:
${tableUsage(COMMANDS)}  clip-lens --version | --help
  clip-lens <command> --help                   the options of a command

<dataset> is a folder of class folders (optionally under train/val/test), or a folder with a label file
(metadata.jsonl, labels.csv, ...), or a CSV/TSV/JSONL label file. --model defaults to the "model" of the dataset's
.clip-lens.json, else clip-vit-base-patch32 (downloaded on first use into the cache folder).
--debug (any command) prints the stack trace of an internal error.
`;
}

/** `--debug` anywhere before a `--` is the global debug flag, not a command's argument. */
function takeDebug(argv: string[]): { args: string[]; debug: boolean } {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const debug = own.includes('--debug');
  return { args: debug ? [...own.filter((a) => a !== '--debug'), ...(dash >= 0 ? argv.slice(dash) : [])] : argv, debug };
}

export async function main(argv: string[], io: CliIO = processIO, signal: AbortSignal = new AbortController().signal): Promise<number> {
  // A command-line process owns its heap: large evaluations free their big buffers at phase ends (memLog.ts).
  allowFullCollection();
  const { args, debug } = takeDebug(argv);
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
        io.out(topLevelHelp());
        return command === undefined ? 2 : 0;
      case 'help': {
        const spec = rest[0] === undefined ? undefined : COMMANDS.find((c) => c.name === rest[0]);
        if (rest[0] !== undefined && !spec) throw new UsageError(`unknown command '${rest[0]}' (try --help)`);
        if (spec) return await runCommand(spec, ['--help'], { io, signal, debug });
        io.out(topLevelHelp());
        return 0;
      }
      case '--version':
      case '-v':
        io.out(`${TOOL_VERSION}\n`);
        return 0;
    }
    const spec = COMMANDS.find((c) => c.name === command);
    if (!spec) {
      const guess = nearestOption(command, COMMANDS.map((c) => c.name));
      throw new UsageError(`unknown command '${command}'${guess ? `; did you mean '${guess}'?` : ''} (try --help)`);
    }
    return await runCommand(spec, rest, { io, signal, debug });
  } catch (e) {
    if (e instanceof CancelledError) {
      io.err('clip-lens: cancelled\n');
      return 2;
    }
    io.err(`clip-lens: ${describeError(e).line}\n`);
    if (debug && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
    return 2;
  }
}

if (require.main === module) {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  // A reader that stops early (`clip-lens embed ... | head`) closes the pipe: stop quietly, as other CLI tools do.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    controller.abort();
    process.exit(process.exitCode ?? 0);
  });
  // The heavy commands run in a child process with glibc's allocator settings (relaunch.ts); the others here.
  const tunables = relaunchTunables(process.env, takeDebug(process.argv.slice(2)).args[0]);
  void (tunables ? relaunch(tunables) : Promise.resolve(-1)).then(async (relaunched) => {
    process.exitCode = relaunched >= 0 ? relaunched : await main(process.argv.slice(2), processIO, controller.signal);
  });
}
