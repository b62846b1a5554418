/**
 * The `clip-lens` command table: every subcommand's options, positionals, help and run function, declared once (see
 * args.ts for the spec). main.ts dispatches through it and builds the top-level help from it. To add a subcommand,
 * write a CommandSpec and add it to COMMANDS.
 *
 * Runs go through core/run.ts (one plan from `.clip-lens.json` + these options, one model loader); this file only
 * turns flags into a request and results into text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from '../core/errors';
import { computeMetrics } from '../core/metrics';
import { findLabelIssues } from '../core/labelIssues';
import { readPredictionsFile } from '../core/probabilities';
import { defaultModelEntry } from '../core/modelRegistry';
import { chooseModelSpec, embedFiles, loadModel, locateModel, runEvaluation, } from '../core/run';
import type { ClipModel } from '../core/runtime';
import { CHECK_COMMAND } from './checkCommand';
import { PREVIOUS_SUFFIX } from '../core/gitHook';
import { hookCommand } from './hookCommand';
import { MODEL_COMMAND, modelCommand } from './modelCommand';
import { formatSummary } from './summary';
import { bar, cliObtainModel, ProgressLine, UsageError, writeJsonReport, type CliIO } from './io';
import type { CommandSpec, OptionSpec, ParsedArgs } from './args';
import { parsePrecision, type Precision } from '../core/precision';

/** --model (or the default) loaded through core's loader, for commands without a dataset (embed, tokenize). */
async function modelFromOption(args: ParsedArgs, io: CliIO, signal: AbortSignal): Promise<ClipModel> {
  const choice = chooseModelSpec({ option: args.string('model'), projectDir: process.cwd() });
  const located = await locateModel(choice, { quantized: args.flag('quantized'), obtain: cliObtainModel(io), signal });
  if (!located) throw new ClipLensError('model-missing', `model '${choice.spec}' is not available`);
  return loadModel(located, { threads: args.int('threads') });
}

const MODEL_OPTION: OptionSpec = { type: 'string', value: 'DIR|ID', help: `model folder or registry id (default: ${defaultModelEntry().id}, downloaded on first use)` };
const QUANTIZED_OPTION: OptionSpec = { type: 'boolean', help: 'use the 8-bit (*_quantized.onnx) graphs (= --precision int8)' };
const PRECISION_OPTION: OptionSpec = {
  type: 'string',
  value: 'auto|fp32|int8',
  help: 'fp32, int8 (the *_quantized.onnx graphs) or auto: int8 only when it agrees with fp32 on a sample of\n64 images of this dataset (default: "precision" of .clip-lens.json, else fp32)',
};

function precisionOption(args: ParsedArgs): Precision | undefined {
  const v = args.string('precision');
  return v === undefined ? undefined : parsePrecision(v, { option: '--precision' });
}
const THREADS_OPTION: OptionSpec = { type: 'integer', help: 'ONNX Runtime threads (default: the number of cores)' };
const CACHE_OPTION: OptionSpec = { type: 'string', value: 'DIR', help: 'embedding cache folder (default: $CLIP_LENS_CACHE or the user cache folder)' };
const NO_CACHE_OPTION: OptionSpec = { type: 'boolean', help: 'neither read nor write the embedding cache' };
const BATCH_OPTION: OptionSpec = { type: 'integer', help: 'images per inference batch (default 32)' };

function cacheOption(args: ParsedArgs): string | null | undefined {
  if (args.string('cache') !== undefined && args.flag('no-cache')) throw new UsageError('--cache and --no-cache exclude each other');
  return args.flag('no-cache') ? null : args.string('cache') !== undefined ? path.resolve(args.string('cache') as string) : undefined;
}

export const EVAL_COMMAND: CommandSpec = {
  name: 'eval',
  usage: [
    '<dataset> [--model DIR|ID] [--labels FILE] [--top-k K] [--templates simple|imagenet80|FILE]',
    '[--json OUT] [--probabilities] [--cache DIR | --no-cache] [--batch N] [--threads N] [--precision P | --quantized]',
    '[--image-column NAME] [--label-column NAME] [--split-column NAME]',
  ],
  description:
    'Evaluates a dataset with CLIP zero-shot: metrics, likely label errors, warnings. <dataset> is a folder of class\n' +
    'folders (optionally under train/val/test), a folder with a label file, or a CSV/TSV/JSONL label file.\n' +
    'Each value comes from the option, else the dataset\'s .clip-lens.json, else the default. The dataset and the\n' +
    'config are checked before the model is loaded (or downloaded).',
  options: {
    model: { ...MODEL_OPTION, help: `model folder or registry id (default: "model" of .clip-lens.json, relative to it,\nelse ${defaultModelEntry().id}, downloaded on first use)` },
    labels: { type: 'string', value: 'FILE', help: 'label file (default: "labels.file" of .clip-lens.json, or the one in the folder)' },
    'top-k': { type: 'integer', value: 'K', help: 'top predictions kept per sample (default: "topK" of .clip-lens.json, else 5)' },
    templates: { type: 'string', value: 'simple|imagenet80|FILE', help: 'prompt templates (default: "templates" of .clip-lens.json, else simple)' },
    json: { type: 'string', value: 'OUT', help: 'write the full report as JSON to OUT' },
    probabilities: { type: 'boolean', help: 'keep every sample\'s probability vector in the JSON report' },
    cache: CACHE_OPTION,
    'no-cache': NO_CACHE_OPTION,
    batch: BATCH_OPTION,
    threads: THREADS_OPTION,
    quantized: QUANTIZED_OPTION,
    precision: PRECISION_OPTION,
    'image-column': { type: 'string', value: 'NAME', help: 'image column of a CSV/TSV/JSONL label file' },
    'label-column': { type: 'string', value: 'NAME', help: 'label column' },
    'split-column': { type: 'string', value: 'NAME', help: 'split column' },
  },
  notes: 'Exit codes: 0 done, 2 usage or fatal error (one line on stderr).',
  run: async (args, { io, signal }) => {
    if (args.positionals.length !== 1) throw new UsageError(`eval expects one dataset, got ${args.positionals.length}`);
    const cacheDir = cacheOption(args);
    const given = args.positionals[0] as string;
    if (!fs.existsSync(path.resolve(given))) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: given });
    const json = args.string('json');
    const progress = new ProgressLine(io);
    try {
      const outcome = await runEvaluation(
        {
          target: given,
          options: {
            model: args.string('model'),
            labelFile: args.string('labels'),
            imageColumn: args.string('image-column'),
            labelColumn: args.string('label-column'),
            splitColumn: args.string('split-column'),
            topK: args.int('top-k'),
            templates: args.string('templates'),
            precision: precisionOption(args),
          },
          quantized: args.flag('quantized'),
          cacheDir,
          batchSize: args.int('batch'),
          probabilities: args.flag('probabilities'),
          signal,
        },
        {
          threads: args.int('threads'),
          obtain: cliObtainModel(io),
          onProgress: (p) => {
            if (p.phase === 'images') progress.update(`Evaluating ${bar(p.done, p.total)} ${p.done}/${p.total} images, ${p.rate.toFixed(1)}/s${p.fromCache ? `, ${p.fromCache} cached` : ''}`);
            else progress.update(p.phase === 'reading' ? 'Reading dataset...' : p.phase === 'prompts' ? 'Embedding class prompts...' : 'Computing metrics...', true);
          },
        },
      );
      progress.clear();
      if (!outcome) return 2;
      if (json) await writeJsonReport(outcome.report, path.resolve(json));
      io.out(formatSummary(outcome.report));
      if (json) io.out(`\nReport written to ${json}\n`);
      return 0;
    } finally {
      progress.clear();
    }
  },
};

export const EMBED_COMMAND: CommandSpec = {
  name: 'embed',
  usage: ['--model DIR <image>...'],
  summary: 'one JSON line per image: {"path","embedding"} (L2-normalised)',
  description:
    'Prints one JSON line per image, in input order: {"path","embedding"} (L2-normalised). Images go through the\n' +
    'evaluation\'s pipeline (decoding overlapped with inference, the embedding cache). An unreadable image is a line\n' +
    'on stderr, and the exit code is then 2.',
  options: { model: MODEL_OPTION, quantized: QUANTIZED_OPTION, threads: THREADS_OPTION, cache: CACHE_OPTION, 'no-cache': NO_CACHE_OPTION, batch: BATCH_OPTION },
  run: async (args, { io, signal }) => {
    if (args.positionals.length === 0) throw new UsageError('embed expects at least one image');
    const cacheDir = cacheOption(args);
    const model = await modelFromOption(args, io, signal);
    const progress = new ProgressLine(io);
    try {
      const files = args.positionals;
      const counts = await embedFiles(files, {
        model,
        cacheDir,
        batchSize: args.int('batch'),
        signal,
        onProgress: (done, total) => progress.update(`Embedding ${bar(done, total)} ${done}/${total} images`),
        onWarning: (message) => {
          progress.clear();
          io.err(`clip-lens: warning: ${message}\n`);
        },
        onResult: (i, r) => {
          if ('error' in r) {
            progress.clear();
            io.err(`${r.error.message}\n`);
          } else io.out(JSON.stringify({ path: files[i], embedding: Array.from(r.embedding) }) + '\n');
        },
      });
      return counts.failed > 0 ? 2 : 0;
    } finally {
      progress.clear();
      await model.dispose();
    }
  },
};

export const TOKENIZE_COMMAND: CommandSpec = {
  name: 'tokenize',
  usage: ['--model DIR <text>...'],
  summary: 'one JSON line per text: {"text","ids"} (77 ids)',
  options: { model: MODEL_OPTION },
  run: async (args, { io, signal }) => {
    if (args.positionals.length === 0) throw new UsageError('tokenize expects at least one text');
    const model = await modelFromOption(args, io, signal);
    try {
      const tokenizer = await model.tokenizer();
      for (const text of args.positionals) io.out(JSON.stringify({ text, ids: tokenizer.encode(text).ids }) + '\n');
      return 0;
    } finally {
      await model.dispose();
    }
  },
};

const INPUT_OPTION: OptionSpec = {
  type: 'string',
  value: 'FILE',
  help: 'JSON {"classes","labels","pred_probs"}, CSV with a header label,<class1>,..., or a folder with\npred_probs.npy, labels.npy and classes.json (also accepted as the first positional)',
};

export const METRICS_COMMAND: CommandSpec = {
  name: 'metrics',
  usage: ['--input FILE [--k K]...'],
  summary: "metrics of any classifier's probabilities (JSON or CSV)",
  options: { input: INPUT_OPTION, k: { type: 'integer', value: 'K', multiple: true, help: 'extra K for Recall@K (1, 3 and 5 always)' } },
  run: async (args, { io }) => {
    const input = args.string('input') ?? args.positionals[0];
    if (!input) throw new UsageError('metrics expects --input FILE');
    const data = await readPredictionsFile(path.resolve(input));
    const ks = [1, 3, 5, ...args.list<number>('k')];
    io.out(JSON.stringify(computeMetrics(data, { ks: [...new Set(ks)].sort((a, b) => a - b) }), null, 1) + '\n');
    return 0;
  },
};

export const LABEL_ISSUES_COMMAND: CommandSpec = {
  name: 'label-issues',
  usage: ['--input FILE [--rank-by self_confidence|normalized_margin]'],
  options: { input: INPUT_OPTION, 'rank-by': { type: 'string', value: 'self_confidence|normalized_margin', help: 'ranking score (default self_confidence)' } },
  run: async (args, { io }) => {
    const input = args.string('input') ?? args.positionals[0];
    if (!input) throw new UsageError('label-issues expects --input FILE');
    const rankBy = args.string('rank-by') ?? 'self_confidence';
    if (rankBy !== 'self_confidence' && rankBy !== 'normalized_margin') throw new UsageError(`--rank-by expects self_confidence or normalized_margin, got '${rankBy}'`);
    const data = await readPredictionsFile(path.resolve(input));
    io.out(JSON.stringify({ labelIssues: findLabelIssues(data, { rankBy }) }, null, 1) + '\n');
    return 0;
  },
};

/** `hook <action>`: parsed here for --help and unknown options, run by hookCommand.ts. */
function hookAction(name: string, summary: string, passThrough = false): CommandSpec {
  return {
    name,
    usage: [passThrough ? '[-- <check arguments>]' : ''],
    summary,
    passThrough,
    run: async (args, { io, signal }) => {
      if (args.positionals.length > 0) throw new UsageError(`hook ${name}: unexpected argument '${args.positionals[0]}'${passThrough ? ' (arguments for check go after --)' : ''}`);
      return hookCommand([name, ...(args.rest.length > 0 ? ['--', ...args.rest] : [])], io, signal);
    },
  };
}

export const HOOK_COMMAND: CommandSpec = {
  name: 'hook',
  usage: [],
  summary: 'git pre-commit hook running `check --staged`',
  description:
    'A git pre-commit hook that runs `clip-lens check --staged` on the datasets a commit touches. An existing\n' +
    `pre-commit hook is kept (moved to pre-commit${PREVIOUS_SUFFIX}) and runs first. Skip the check for one commit with\n` +
    '`git commit --no-verify`.',
  subcommands: [
    hookAction('install', 'add the hook; arguments after -- go to `clip-lens check --staged`', true),
    hookAction('uninstall', 'remove it and put the previous hook back exactly as it was'),
    hookAction('status', 'whether the hook is installed (exit 0) or not (exit 1)'),
  ],
};

/** `model` keeps its own exit codes (1 for a failed download or verification) and messages: see modelCommand.ts. */
const MODEL_ENTRY: CommandSpec = { ...MODEL_COMMAND, dispatch: (args, { io }) => modelCommand(args, io) };

/** Every subcommand, in the order of the top-level help. */
export const COMMANDS: readonly CommandSpec[] = [EVAL_COMMAND, EMBED_COMMAND, TOKENIZE_COMMAND, METRICS_COMMAND, LABEL_ISSUES_COMMAND, CHECK_COMMAND, HOOK_COMMAND, MODEL_ENTRY];
