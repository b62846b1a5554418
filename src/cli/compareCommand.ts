/**
 * `clip-lens compare A.json B.json [--json]`: the changes from run A to run B (two eval reports or baselines: two
 * runs, two models, two prompt sets), see core/compare.ts. Exit 0 (a comparison never fails), 2 on bad input.
 */
import * as path from 'node:path';
import { compareRuns, formatComparison, readRunFile } from '../core/compare';
import type { CommandSpec } from './args';
import { UsageError } from './io';

export const COMPARE_COMMAND: CommandSpec = {
  name: 'compare',
  usage: ['A.json B.json [--json] [--limit N]'],
  summary: 'changes between two runs: reports or baselines',
  description:
    'Compares two runs, each an eval report (clip-lens eval --json) or a baseline (clip-lens baseline): headline\n' +
    'metrics, per-class recall/precision/F1 sorted by the largest change, images whose prediction changed (fixed /\n' +
    'broken, matched by content), likely label errors new / gone, and the difference confusion matrix (--json).',
  options: {
    json: { type: 'boolean', help: 'the comparison as JSON on stdout' },
    limit: { type: 'integer', value: 'N', help: 'images listed per group in the text (default 20)' },
  },
  notes: 'Exit codes: 0 compared, 2 usage or bad input (one line on stderr naming the file).',
  run: async (args, { io }) => {
    if (args.positionals.length !== 2) throw new UsageError(`compare expects two files (reports or baselines), got ${args.positionals.length}`);
    const [fa, fb] = args.positionals as [string, string];
    const a = await readRunFile(path.resolve(fa), fa);
    const b = await readRunFile(path.resolve(fb), fb);
    const comparison = compareRuns(a, b, [fa, fb]);
    io.out(args.flag('json') ? JSON.stringify(comparison, null, 1) + '\n' : formatComparison(comparison, args.int('limit') ?? 20));
    return 0;
  },
};
