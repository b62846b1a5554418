/**
 * `clip-lens compare A.json B.json [--json]`: the changes from run A to run B (two eval reports or baselines: two
 * runs, two models, two prompt sets), see core/compare.ts. Exit 0 (a comparison never fails), 2 on bad input.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { compareRuns, formatComparison, readRunFile } from '../core/compare';
import { UsageError, type CliIO } from './io';

export const COMPARE_HELP = `Usage: clip-lens compare A.json B.json [--json] [--limit N]

Compares two runs, each an eval report (clip-lens eval --json) or a baseline (clip-lens baseline): headline metrics,
per-class recall/precision/F1 sorted by the largest change, images whose prediction changed (fixed / broken, matched
by content), likely label errors new / gone, and the difference confusion matrix (--json).
  --json       the comparison as JSON on stdout
  --limit N    images listed per group in the text (default 20)
`;

export async function compareCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, limit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.out(COMPARE_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`compare expects two files (reports or baselines), got ${positionals.length}`);
  let limit = 20;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 0) throw new UsageError(`--limit expects an integer >= 0, got '${values.limit}'`);
  }
  const [fa, fb] = positionals;
  const a = await readRunFile(path.resolve(fa), fa);
  const b = await readRunFile(path.resolve(fb), fb);
  const comparison = compareRuns(a, b, [fa, fb]);
  io.out(values.json ? JSON.stringify(comparison, null, 1) + '\n' : formatComparison(comparison, limit));
  return 0;
}
