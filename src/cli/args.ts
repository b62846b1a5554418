/**
 * Command specs for the `clip-lens` command table (commands.ts): each subcommand declares its options (with types),
 * positionals and help once; parsing, `--help`, the top-level help and "unknown option ... did you mean" come from
 * the declaration.
 */
import { editDistance } from '../core/modelRegistry';
import { UsageError, type CliIO } from './io';

export interface OptionSpec {
  /** 'integer' values are checked (>= min, default 1) and returned as numbers. */
  type: 'string' | 'boolean' | 'integer';
  /** Placeholder in the help, e.g. 'DIR|ID'. */
  value?: string;
  short?: string;
  /** May be given several times (values in order). */
  multiple?: boolean;
  min?: number;
  help: string;
}

export interface CommandContext {
  io: CliIO;
  signal: AbortSignal;
  /** --debug: print stack traces of internal errors. */
  debug: boolean;
}

export interface CommandSpec {
  name: string;
  /** Usage after `clip-lens <name> `; several lines for alternatives or long option lists. */
  usage: string[];
  /** One line for the top-level help (shown after the last usage line). */
  summary?: string;
  /** Paragraphs of the command's --help, after the usage. */
  description?: string;
  options?: Record<string, OptionSpec>;
  /** Lines after the option list in the command's --help (exit codes, notes). */
  notes?: string;
  /** A group (`model list|download|verify`): the first argument picks one. */
  subcommands?: CommandSpec[];
  /** Arguments after `--` are not parsed but handed over in `rest` (e.g. `hook install -- <check arguments>`). */
  passThrough?: boolean;
  /** Not listed in the top-level help (a group's entries are listed through the group). */
  hidden?: boolean;
  run?: (args: ParsedArgs, ctx: CommandContext) => Promise<number>;
  /** Handles its whole argument list itself (own error handling and exit codes, e.g. `model`); help still comes from the spec. */
  dispatch?: (args: string[], ctx: CommandContext) => Promise<number>;
}

export class ParsedArgs {
  constructor(
    /** `clip-lens eval`, `clip-lens model list`: for messages. */
    readonly command: string,
    readonly values: Record<string, string | boolean | number | (string | number)[] | undefined>,
    readonly positionals: string[],
    /** Arguments after `--` with passThrough. */
    readonly rest: string[],
    readonly help: boolean,
  ) {}

  string(name: string): string | undefined {
    return this.values[name] as string | undefined;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  int(name: string): number | undefined {
    return this.values[name] as number | undefined;
  }

  list<T extends string | number>(name: string): T[] {
    return (this.values[name] as T[] | undefined) ?? [];
  }
}

function checkInteger(name: string, spec: OptionSpec, raw: string): number {
  const min = spec.min ?? 1;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} expects an integer >= ${min}, got '${raw}'`);
  return n;
}

/** The nearest option name to a mistyped one, when close enough to be a typo (`--topk` -> `--top-k`). */
export function nearestOption(given: string, names: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const d = norm(name) === norm(given) ? 0 : editDistance(given.toLowerCase(), name);
    if (!best || d < best.d) best = { name, d };
  }
  if (!best) return undefined;
  const limit = given.length <= 3 ? 1 : Math.min(3, Math.ceil(given.length / 3));
  if (best.d <= limit) return best.name;
  const prefixed = names.filter((n) => n.startsWith(given) || given.startsWith(n));
  return prefixed.length === 1 && given.length >= 2 ? prefixed[0] : undefined;
}

/** Parses `args` by the spec's options. Unknown options are a UsageError naming the nearest option. */
export function parseCommandArgs(spec: CommandSpec, args: string[], command: string): ParsedArgs {
  const options = spec.options ?? {};
  const values: ParsedArgs['values'] = {};
  const positionals: string[] = [];
  const rest: string[] = [];
  let help = false;
  const byShort = new Map(Object.entries(options).filter(([, o]) => o.short).map(([n, o]) => [o.short as string, n]));
  const unknown = (arg: string): never => {
    const name = arg.replace(/^-+/, '').split('=')[0] as string;
    const guess = nearestOption(name, [...Object.keys(options), 'help']);
    throw new UsageError(`unknown option '${arg.split('=')[0]}' for ${command.replace(/^clip-lens /, '')}${guess ? `; did you mean '--${guess}'?` : ` (see ${command} --help)`}`);
  };
  const set = (name: string, o: OptionSpec, raw: string | true) => {
    const v = o.type === 'boolean' ? true : o.type === 'integer' ? checkInteger(name, o, raw as string) : (raw as string);
    if (o.multiple) values[name] = [...((values[name] as (string | number)[] | undefined) ?? []), v as string | number];
    else values[name] = v;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      if (spec.passThrough) rest.push(...args.slice(i + 1));
      else positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === '--help' || (arg === '-h' && !byShort.has('h'))) {
      help = true;
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      const o = options[name];
      if (!o) unknown(arg);
      const opt = o as OptionSpec;
      if (opt.type === 'boolean') {
        if (eq >= 0) throw new UsageError(`option '--${name}' takes no value`);
        set(name, opt, true);
      } else if (eq >= 0) {
        set(name, opt, arg.slice(eq + 1));
      } else {
        const next = args[i + 1];
        if (next === undefined || (next.startsWith('-') && next !== '-' && !/^-\d/.test(next))) {
          throw new UsageError(`option '--${name}' expects a value${opt.value ? ` (${opt.value})` : ''}`);
        }
        set(name, opt, next);
        i++;
      }
      continue;
    }
    if (arg.startsWith('-') && arg !== '-' && !/^-\d/.test(arg)) {
      const name = byShort.get(arg.slice(1));
      if (name === 'help') {
        help = true;
        continue;
      }
      if (!name) unknown(arg);
      const opt = options[name as string] as OptionSpec;
      if (opt.type === 'boolean') set(name as string, opt, true);
      else {
        const next = args[i + 1];
        if (next === undefined) throw new UsageError(`option '${arg}' expects a value`);
        set(name as string, opt, next);
        i++;
      }
      continue;
    }
    positionals.push(arg);
  }
  return new ParsedArgs(command, values, positionals, rest, help);
}

function optionLabel(name: string, o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'boolean' ? '' : ` ${o.value ?? (o.type === 'integer' ? 'N' : 'VALUE')}`}`;
}

/** Aligns a two-column list ("  --model DIR|ID   help"), wrapping help lines under the help column. */
function twoColumns(rows: [string, string][], indent = '  '): string[] {
  const w = Math.max(...rows.map(([a]) => a.length)) + 2;
  const lines: string[] = [];
  for (const [a, b] of rows) {
    const [first, ...more] = b.split('\n');
    lines.push(`${indent}${a.padEnd(w)}${first}`.trimEnd());
    for (const m of more) lines.push(`${indent}${' '.repeat(w)}${m}`);
  }
  return lines;
}

/** `--help` of one command (or of a group: its subcommands' usages). */
export function commandHelp(spec: CommandSpec, prefix: string): string {
  const lines: string[] = [];
  const usages: string[] = [];
  if (spec.subcommands) {
    for (const sub of spec.subcommands) for (const u of sub.usage) usages.push(`${prefix} ${sub.name}${u ? ` ${u}` : ''}`);
  } else {
    spec.usage.forEach((u, i) => usages.push(i === 0 ? `${prefix}${u ? ` ${u}` : ''}` : `${' '.repeat(prefix.length)} ${u}`));
  }
  usages.forEach((u, i) => lines.push(`${i === 0 ? 'usage: ' : '       '}${u}`));
  if (spec.description) lines.push('', spec.description.trimEnd());
  if (spec.subcommands) {
    lines.push('', ...twoColumns(spec.subcommands.map((s) => [s.name, s.summary ?? ''])));
    lines.push('', `\`${prefix} <subcommand> --help\` shows the options of each.`);
  } else {
    const rows: [string, string][] = Object.entries(spec.options ?? {}).map(([n, o]) => [optionLabel(n, o), o.help]);
    rows.push(['-h, --help', 'show this help']);
    lines.push('', 'Options:', ...twoColumns(rows));
  }
  if (spec.notes) lines.push('', spec.notes.trimEnd());
  return lines.join('\n') + '\n';
}

/** The top-level usage lines: every command's usages, with its summary after the last one. */
export function tableUsage(table: readonly CommandSpec[]): string {
  const lines: string[] = [];
  for (const spec of table) {
    if (spec.hidden) continue;
    const head = `  clip-lens ${spec.name}`;
    // A group shows its subcommands with their positionals (`model list | download <id> | verify <dir|id>`).
    const brief = (s: CommandSpec) => {
      let u = s.usage[0] ?? '';
      while (/\[[^[\]]*\]/.test(u)) u = u.replace(/\[[^[\]]*\]/g, '');
      return `${s.name} ${u}`.replace(/\s+/g, ' ').trim();
    };
    const usages = spec.subcommands ? [spec.subcommands.map(brief).join(' | ')] : spec.usage;
    usages.forEach((u, i) => {
      let line = `${i === 0 ? head : ' '.repeat(head.length)} ${u}`;
      if (i === usages.length - 1 && spec.summary) line = line.length < 47 ? `${line.padEnd(47)}${spec.summary}` : `${line}\n${' '.repeat(47)}${spec.summary}`;
      lines.push(line);
    });
  }
  return lines.join('\n') + '\n';
}

/** Runs a command (or a group's subcommand) from its arguments: parsing, `--help`, then its `run`. */
export async function runCommand(spec: CommandSpec, args: string[], ctx: CommandContext, prefix = `clip-lens ${spec.name}`): Promise<number> {
  if (spec.dispatch) return spec.dispatch(args, ctx);
  if (spec.subcommands) {
    const [sub, ...rest] = args;
    const names = spec.subcommands.map((s) => s.name);
    const expected = `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      ctx.io.out(commandHelp(spec, prefix));
      return 0;
    }
    if (sub === undefined) throw new UsageError(`missing subcommand: expected ${expected}`);
    const chosen = spec.subcommands.find((s) => s.name === sub);
    if (!chosen) {
      const guess = nearestOption(sub, names);
      throw new UsageError(`unknown subcommand '${sub}': expected ${expected}${guess ? `; did you mean '${guess}'?` : ''}`);
    }
    return runCommand(chosen, rest, ctx, `${prefix} ${chosen.name}`);
  }
  const parsed = parseCommandArgs(spec, args, prefix);
  if (parsed.help) {
    ctx.io.out(commandHelp(spec, prefix));
    return 0;
  }
  if (!spec.run) throw new UsageError(`${prefix} cannot run`);
  return spec.run(parsed, ctx);
}
