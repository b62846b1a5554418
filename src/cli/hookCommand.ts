/** `clip-lens hook install|uninstall|status`: the command-line wrapper of core/gitHook.ts. */
import { hookStatus, installHook, PREVIOUS_SUFFIX, uninstallHook } from '../core/gitHook';
import { UsageError, type CliIO } from './io';

export const HOOK_HELP = `Usage: clip-lens hook install [-- <check arguments>]
       clip-lens hook uninstall
       clip-lens hook status

install    adds a git pre-commit hook running \`clip-lens check --staged\` on the datasets a commit touches; an existing
           pre-commit hook is kept (moved to pre-commit${PREVIOUS_SUFFIX}) and runs first
uninstall  removes it and puts the previous hook back exactly as it was
status     prints whether the hook is installed (exit 0) or not (exit 1)
Skip the check for one commit with \`git commit --no-verify\`.
`;

export async function hookCommand(args: string[], io: CliIO, _signal: AbortSignal): Promise<number> {
  const dash = args.indexOf('--');
  const own = dash >= 0 ? args.slice(0, dash) : args;
  const extraArgs = dash >= 0 ? args.slice(dash + 1) : [];
  const [action, ...rest] = own;
  if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
    io.out(HOOK_HELP);
    return action === undefined ? 2 : 0;
  }
  if (rest.length > 0) throw new UsageError(`hook ${action}: unexpected argument '${rest[0]}' (arguments for check go after --)`);
  if (extraArgs.length > 0 && action !== 'install') throw new UsageError(`hook ${action} takes no check arguments`);
  const cwd = process.cwd();
  switch (action) {
    case 'install': {
      const r = await installHook(cwd, { extraArgs });
      const s = await hookStatus(cwd);
      io.out(
        `${r.updated ? 'Updated' : 'Installed'} the clip-lens pre-commit hook: ${r.hook}\n` +
          (r.previous ? `  the existing hook was kept as ${r.previous} and runs first\n` : '') +
          `  it runs ${s.nodePath} ${s.cliScript} check --staged${extraArgs.length ? ` ${extraArgs.join(' ')}` : ''}\n` +
          `  (falling back to clip-lens on PATH, then npx --no-install clip-lens, when those are gone)\n`,
      );
      return 0;
    }
    case 'uninstall': {
      const r = await uninstallHook(cwd);
      if (!r.removed) io.out(`No clip-lens pre-commit hook installed at ${r.hook}; nothing changed\n`);
      else io.out(`Removed the clip-lens pre-commit hook${r.restored ? `; restored the previous hook ${r.restored}` : ''}\n`);
      return 0;
    }
    case 'status': {
      const s = await hookStatus(cwd);
      io.out(s.installed ? `installed: ${s.hook}${s.chained ? ' (runs the previous hook first)' : ''}\n  ${s.nodePath} ${s.cliScript}\n` : `not installed (${s.hook})\n`);
      return s.installed ? 0 : 1;
    }
    default:
      throw new UsageError(`hook expects install, uninstall or status, got '${action}'`);
  }
}
