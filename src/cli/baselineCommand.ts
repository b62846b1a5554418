/**
 * `clip-lens baseline <dataset> [--out FILE]`: evaluates a dataset the way `clip-lens check` does (one run through
 * core/run.ts: the config's model, templates and Ks, the embedding cache) and writes its baseline (core/baseline.ts)
 * to `gate.baseline` of its `.clip-lens.json` (relative to the dataset root; default .clip-lens-baseline.json) or to
 * FILE. The ratchet (`gate.maxDrop`) of later checks compares with it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from '../core/errors';
import { defaultModelEntry } from '../core/modelRegistry';
import { CONFIG_FILE_NAME } from '../core/projectConfig';
import { num } from '../core/gate';
import { runEvaluation } from '../core/run';
import { baselineFileOf, makeBaseline, serializeBaseline } from '../core/baseline';
import { makeDirectory } from '../core/fileSystem';
import type { CommandSpec, ParsedArgs, CommandContext } from './args';
import { bar, cliObtainModel, ProgressLine, UsageError } from './io';

export const BASELINE_COMMAND: CommandSpec = {
  name: 'baseline',
  usage: ['<dataset> [--out FILE] [--model DIR|ID] [--cache DIR] [--quantized] [--threads N] [--batch N]'],
  summary: 'write the baseline gate.maxDrop ratchets against (commit it)',
  description:
    'Evaluates the dataset as `clip-lens check` does and writes its baseline: metrics, per-class figures, per-image\n' +
    'predicted class and label-issue flags keyed by content hash, and the model, templates and predictor (no\n' +
    'probabilities; one line per class and per image, so it diffs well). Commit it: "gate.maxDrop" in\n' +
    `${CONFIG_FILE_NAME} refuses changes that lose more than the allowed drop against it.`,
  options: {
    out: { type: 'string', value: 'FILE', help: `where to write (default: "gate.baseline" of ${CONFIG_FILE_NAME}, relative to the dataset root,\nelse .clip-lens-baseline.json in the dataset root)` },
    model: { type: 'string', value: 'DIR|ID', help: `model folder or registry id (default: the config's "model", else ${defaultModelEntry().id})` },
    cache: { type: 'string', value: 'DIR', help: 'embedding cache folder (default: $CLIP_LENS_CACHE or the user cache folder)' },
    quantized: { type: 'boolean', help: 'use the 8-bit (*_quantized.onnx) graphs' },
    threads: { type: 'integer', help: 'ONNX Runtime threads (default: the number of cores)' },
    batch: { type: 'integer', help: 'images per inference batch (default 32)' },
  },
  notes: 'Exit codes: 0 written, 2 usage or fatal error (one line on stderr).',
  run: (args, ctx) => baselineCommand(args, ctx),
};

async function baselineCommand(args: ParsedArgs, { io, signal }: CommandContext): Promise<number> {
  if (args.positionals.length !== 1) throw new UsageError(`baseline expects one dataset, got ${args.positionals.length}`);
  const given = args.positionals[0] as string;
  if (!fs.existsSync(path.resolve(given))) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: given });
  const progress = new ProgressLine(io);
  try {
    const outcome = await runEvaluation(
      {
        target: given,
        options: { model: args.string('model') },
        // "models" of the config: the baseline is the first model's (the one the ratchet judges).
        firstModelOnly: true,
        quantized: args.flag('quantized'),
        cacheDir: args.string('cache') !== undefined ? path.resolve(args.string('cache') as string) : undefined,
        batchSize: args.int('batch'),
        signal,
      },
      {
        threads: args.int('threads'),
        obtain: cliObtainModel(io),
        onProgress: (p) => {
          if (p.phase === 'images') progress.update(`Evaluating ${bar(p.done, p.total)} ${p.done}/${p.total} images${p.fromCache ? `, ${p.fromCache} cached` : ''}`);
          else progress.update(`${p.phase}...`, true);
        },
      },
    );
    progress.clear();
    if (!outcome) return 2;
    const { report, plan } = outcome;
    if (!report.metrics) throw new ClipLensError('baseline-empty', 'no image could be evaluated: nothing to make a baseline of (see clip-lens eval)', { file: given });
    const out = args.string('out') !== undefined ? path.resolve(args.string('out') as string) : baselineFileOf(plan.root, plan.config.gate).file;
    const baseline = makeBaseline(report);
    const text = serializeBaseline(baseline);
    const previous = await fs.promises.readFile(out, 'utf8').catch(() => undefined);
    await makeDirectory(path.dirname(out));
    const tmp = `${out}.tmp-${process.pid}`;
    await fs.promises.writeFile(tmp, text);
    await fs.promises.rename(tmp, out);
    const rel = path.relative(process.cwd(), out);
    const shownOut = rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? out : rel.split(path.sep).join('/');
    const m = baseline.metrics;
    io.out(
      `Baseline ${previous === undefined ? 'written' : previous === text ? 'unchanged' : 'updated'}: ${shownOut}\n` +
        `  ${report.metrics.n} images (${Object.keys(baseline.samples).length} distinct), ${report.dataset.classes.length} classes; top-1 accuracy ${num(m?.top1Accuracy ?? 0)}, balanced accuracy ${num(m?.balancedAccuracy ?? 0)}\n` +
        `  model ${baseline.model.name}${baseline.model.quantized ? ' (int8)' : ''}, templates ${baseline.templates.name} (${baseline.templates.count}), predictor ${baseline.predictor}\n`,
    );
    if (report.dataset.counts.failed > 0) io.err(`note: ${report.dataset.counts.failed} image(s) could not be evaluated and are not in the baseline\n`);
    return 0;
  } finally {
    progress.clear();
  }
}
