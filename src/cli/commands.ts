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
import { BASELINE_COMMAND } from './baselineCommand';
import { COMPARE_COMMAND } from './compareCommand';
import { compareWithFile, formatComparison } from '../core/compare';
import { splitSections } from '../core/splits';
import { PREVIOUS_SUFFIX } from '../core/gitHook';
import { hookCommand } from './hookCommand';
import { MODEL_COMMAND, modelCommand } from './modelCommand';
import { formatSummary } from './summary';
import { parsePredictor, runLabelIssuesKnn, runProbe } from './probeCommand';
import { DEFAULT_FOLDS, DEFAULT_PROBE_C } from '../core/linearProbe';
import { SEARCH_COMMAND } from './searchCommand';
import type { EvaluateProgress } from '../core/evaluate';
import { bar, cliObtainModel, evaluationProgressLine, ProgressLine, UsageError, writeJsonReport, type CliIO } from './io';
import type { CommandSpec, OptionSpec, ParsedArgs } from './args';
import { parsePrecision } from '../core/precision';
import { DEFAULT_SHARD_ROWS, DEFAULT_VERIFY, EmbeddingsWriter } from '../core/embeddingsDir';
import { compareCodePoints, isIgnoredName, isImageFile } from '../core/dataset';
import { INLINE_SAMPLES_LIMIT, SAMPLES_MODES, type SamplesMode } from '../core/reportSamples';

/** Image arguments: files as given, folders replaced by their images (recursively, sorted by code point). */
async function expandImageArgs(args: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of args) {
    const st = await fs.promises.stat(a).catch(() => null);
    if (!st?.isDirectory()) {
      out.push(a);
      continue;
    }
    const found: string[] = [];
    const walk = async (dir: string) => {
      for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
        if (isIgnoredName(e.name)) continue;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && isImageFile(e.name)) found.push(p);
      }
    };
    await walk(a);
    out.push(...found.sort(compareCodePoints));
  }
  return out;
}

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
    '<dataset> [--model DIR|ID [--model DIR|ID]] [--labels FILE] [--top-k K] [--templates simple|imagenet80|FILE]',
    '[--json OUT] [--probabilities] [--cache DIR | --no-cache] [--batch N] [--threads N] [--precision P | --quantized]',
    '[--image-column NAME] [--label-column NAME] [--split-column NAME] [--baseline FILE]',
    '[--predictor auto|zero-shot|linear-probe|knn]',
    '--embeddings DIR [--verify N] [<dataset>] [options above]',
  ],
  description:
    'Evaluates a dataset with CLIP zero-shot: metrics, likely label errors, warnings. <dataset> is a folder of class\n' +
    'folders (optionally under train/val/test), a folder with a label file, or a CSV/TSV/JSONL label file.\n' +
    'Each value comes from the option, else the dataset\'s .clip-lens.json, else the default. The dataset and the\n' +
    'config are checked before the model is loaded (or downloaded).\n' +
    'With --embeddings DIR (clip-retrieval output: img_emb/img_emb_N.npy, metadata/metadata_N.parquet) the images\n' +
    'are not embedded: labels come from the class folder of image_path (or --label-column, --labels FILE joined on\n' +
    'image_path), and --verify N of the images, when on disk, are embedded locally to check the given embeddings.\n' +
    'With two models (--model A --model B, or "models" of .clip-lens.json) both are evaluated over one read of the\n' +
    'images: the report is A\'s, its "comparison" the changes from B to A (B is the reference, as with --baseline),\n' +
    '"models" names both. --precision once applies to both, twice pairs with the models (--model M --model M\n' +
    '--precision fp32 --precision int8 compares a model\'s int8 graphs with its fp32 ones).',
  options: {
    model: { ...MODEL_OPTION, multiple: true, help: `model folder or registry id (default: "model" of .clip-lens.json, relative to it,\nelse ${defaultModelEntry().id}, downloaded on first use); twice: compare two models` },
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
    precision: { ...PRECISION_OPTION, multiple: true },
    'image-column': { type: 'string', value: 'NAME', help: 'image column of a CSV/TSV/JSONL label file' },
    'label-column': { type: 'string', value: 'NAME', help: 'label column' },
    'split-column': { type: 'string', value: 'NAME', help: 'split column' },
    predictor: { type: 'string', value: 'auto|zero-shot|linear-probe|knn', help: 'what finds the label errors (default: "predictor" of .clip-lens.json, else auto;\nsee docs/predictors.md)' },
    baseline: { type: 'string', value: 'FILE', help: 'an earlier report or baseline: the changes since it go into the report\'s "comparison" section' },
    embeddings: { type: 'string', value: 'DIR', help: 'evaluate image embeddings computed elsewhere (clip-retrieval layout; default:\n"embeddings" of .clip-lens.json)' },
    verify: { type: 'integer', min: 0, help: `with --embeddings: images embedded locally to check them (default ${DEFAULT_VERIFY}; 0: no check)` },
    samples: {
      type: 'string',
      value: 'auto|inline|sidecar',
      help: `with --json: where per-sample data goes (default auto: inline up to ${INLINE_SAMPLES_LIMIT.toLocaleString('en-US')} samples, and always in\nOUT.samples.parquet next to the report; inline: never a sidecar; sidecar: never inline)`,
    },
  },
  notes: 'Exit codes: 0 done, 2 usage or fatal error (one line on stderr).',
  run: async (args, { io, signal }) => {
    const embeddings = args.string('embeddings');
    if (args.positionals.length > 1 || (args.positionals.length === 0 && embeddings === undefined)) throw new UsageError(`eval expects one dataset, got ${args.positionals.length}`);
    const cacheDir = cacheOption(args);
    const predictor = parsePredictor(args.string('predictor'));
    const given = args.positionals[0] ?? (embeddings as string);
    if (!fs.existsSync(path.resolve(given))) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: given });
    const json = args.string('json');
    const models = args.list<string>('model');
    const precisions = args.list<string>('precision').map((v) => parsePrecision(v, { option: '--precision' }));
    const baseline = args.string('baseline');
    if (models.length > 2) throw new UsageError(`eval compares two models at most, got ${models.length} --model options`);
    if (precisions.length > 2 || (precisions.length === 2 && models.length !== 2)) {
      throw new UsageError(`--precision is given once (every model), or once per model with two --model options; got ${precisions.length} for ${models.length} model${models.length === 1 ? '' : 's'}`);
    }
    if (models.length === 2 && baseline !== undefined) throw new UsageError('--baseline and two --model options exclude each other: with two models the second is what the first is compared with');
    if (models.length === 2 && embeddings !== undefined) throw new UsageError('--embeddings and two --model options exclude each other: embeddings computed elsewhere come from one model');
    const samplesMode = args.string('samples') ?? 'auto';
    if (!(SAMPLES_MODES as readonly string[]).includes(samplesMode)) throw new UsageError(`--samples must be one of ${SAMPLES_MODES.join(', ')}, not '${samplesMode}'`);
    if (args.string('samples') !== undefined && json === undefined) throw new UsageError('--samples goes with --json');
    const progress = new ProgressLine(io);
    // Each model's last progress (two with --model A --model B or "models" in the config): one line for both.
    const seen: (EvaluateProgress | undefined)[] = [undefined];
    let names: string[] = [];
    const show = (model: number, p: EvaluateProgress) => {
      const phaseChanged = seen[model]?.phase !== p.phase;
      seen[model] = p;
      progress.update(evaluationProgressLine(seen, names, embeddings !== undefined), phaseChanged && p.phase !== 'images');
    };
    try {
      const outcome = await runEvaluation(
        {
          target: given,
          options: {
            ...(models.length === 2 ? { models } : { model: models[0] }),
            ...(precisions[1] !== undefined ? { comparedPrecision: precisions[1] } : {}),
            labelFile: args.string('labels'),
            imageColumn: args.string('image-column'),
            labelColumn: args.string('label-column'),
            splitColumn: args.string('split-column'),
            topK: args.int('top-k'),
            templates: args.string('templates'),
            predictor,
            precision: precisions[0],
            embeddings,
            verify: args.int('verify'),
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
          onPlan: (plan) => {
            if (baseline !== undefined && plan.compared) throw new UsageError('--baseline and "models" of .clip-lens.json exclude each other: the second model is what the first is compared with (give one --model to compare with the baseline)');
            if (plan.compared) {
              // Short names on the line: a model folder by its last part.
              names = [plan.model.spec, plan.compared.model.spec].map((spec) => (/[\\/]/.test(spec) ? path.basename(spec) : spec));
              seen.length = 2;
            }
          },
          onProgress: (p) => show(0, p),
          onComparedProgress: (p) => show(1, p),
        },
      );
      progress.clear();
      if (!outcome) return 2;
      // --baseline: the changes since an earlier run (a report or baseline file) as the report's `comparison`.
      // (Two models, --model A --model B or config "models": the comparison with the second model, made by core.)
      if (baseline !== undefined) outcome.report.comparison = await compareWithFile(outcome.report, path.resolve(baseline), baseline);
      if (json) await writeJsonReport(outcome.report, path.resolve(json), samplesMode as SamplesMode);
      io.out(formatSummary(outcome.report));
      if (outcome.report.comparison) io.out(`\nCompared with ${baseline ?? `model ${outcome.report.comparison.a.name}`}:\n${formatComparison(outcome.report.comparison, 10)}`);
      if (json) io.out(`\nReport written to ${json}\n`);
      return 0;
    } finally {
      progress.clear();
    }
  },
};

export const EMBED_COMMAND: CommandSpec = {
  name: 'embed',
  usage: ['--model DIR <image|folder>...', '--out DIR [--shard-rows N] <image|folder>...'],
  summary: 'one JSON line per image: {"path","embedding"} (L2-normalised), or clip-retrieval shards',
  description:
    'Prints one JSON line per image, in input order: {"path","embedding"} (L2-normalised). A folder stands for its\n' +
    'images (recursively, sorted). Images go through the evaluation\'s pipeline (decoding overlapped with inference,\n' +
    'the embedding cache). An unreadable image is a line on stderr, and the exit code is then 2.\n' +
    'With --out DIR, writes clip-retrieval\'s layout instead (img_emb/img_emb_N.npy float32, metadata/metadata_N.parquet\n' +
    'with image_path, absolute), which `clip-lens eval --embeddings DIR` reads.',
  options: {
    model: MODEL_OPTION,
    quantized: QUANTIZED_OPTION,
    threads: THREADS_OPTION,
    cache: CACHE_OPTION,
    'no-cache': NO_CACHE_OPTION,
    batch: BATCH_OPTION,
    out: { type: 'string', value: 'DIR', help: 'write img_emb/ and metadata/ shards to DIR (a new or empty folder)' },
    'shard-rows': { type: 'integer', help: `rows per shard with --out (default ${DEFAULT_SHARD_ROWS.toLocaleString('en')})` },
  },
  run: async (args, { io, signal }) => {
    if (args.positionals.length === 0) throw new UsageError('embed expects at least one image');
    const out = args.string('out');
    if (args.int('shard-rows') !== undefined && out === undefined) throw new UsageError('--shard-rows goes with --out');
    const cacheDir = cacheOption(args);
    const files = await expandImageArgs(args.positionals);
    if (files.length === 0) throw new UsageError('embed: no image in the given folders');
    const writer = out !== undefined ? await EmbeddingsWriter.create(out, args.int('shard-rows')) : undefined;
    const model = await modelFromOption(args, io, signal);
    const progress = new ProgressLine(io);
    let writes: Promise<void> = Promise.resolve();
    try {
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
          } else if (writer) {
            const e = Float32Array.from(r.embedding);
            writes = writes.then(() => writer.add(path.resolve(files[i] as string), e));
          } else io.out(JSON.stringify({ path: files[i], embedding: Array.from(r.embedding) }) + '\n');
        },
      });
      await writes;
      if (writer) {
        const shards = await writer.close();
        progress.clear();
        io.out(`Wrote ${writer.count} embedding${writer.count === 1 ? '' : 's'} in ${shards} shard${shards === 1 ? '' : 's'} to ${out}\n`);
      }
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
  help: 'JSON {"classes","labels","pred_probs"[,"splits"]}, CSV with a header label,[split,]<class1>,..., or a folder\nwith pred_probs.npy, labels.npy and classes.json (also accepted as the first positional)',
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
    const ks = [...new Set([1, 3, 5, ...args.list<number>('k')])].sort((a, b) => a - b);
    const metrics = computeMetrics(data, { ks });
    // With splits (a "splits" array or "split" column): per split, side by side, and the train-test gap warnings.
    const bySplit = data.splits ? splitSections(data, data.splits, ks) : undefined;
    for (const w of bySplit?.warnings ?? []) io.err(`warning: ${w.message}\n`);
    io.out(JSON.stringify(bySplit ? { ...metrics, ...bySplit } : metrics, null, 1) + '\n');
    return 0;
  },
};

const FEATURES_INPUT_OPTION: OptionSpec = {
  type: 'string',
  value: 'FILE',
  help: 'JSON {"classes","labels","features"}, or a folder with features.npy (N x D float32/float64),\nlabels.npy and classes.json (also accepted as the first positional)',
};

export const LABEL_ISSUES_COMMAND: CommandSpec = {
  name: 'label-issues',
  usage: ['--input FILE [--rank-by self_confidence|normalized_margin]', '--input FILE --knn K'],
  summary: 'from features: the kNN votes of cleanlab Datalab\'s label route',
  description:
    'Likely label errors (cleanlab find_label_issues) from a classifier\'s out-of-sample probabilities. With --knn K,\n' +
    'FILE holds "features" instead of "pred_probs": the votes of each sample\'s K nearest neighbours by cosine\n' +
    'similarity, its own vote removed, are the probabilities (cleanlab Datalab\'s route without a model).',
  options: {
    input: { ...INPUT_OPTION, help: `${INPUT_OPTION.help}; with --knn: ${FEATURES_INPUT_OPTION.help.replace(' (also accepted as the first positional)', '')}` },
    'rank-by': { type: 'string', value: 'self_confidence|normalized_margin', help: 'ranking score (default self_confidence)' },
    knn: { type: 'integer', value: 'K', help: 'probabilities from the K nearest neighbours of each sample\'s features' },
  },
  run: async (args, { io }) => {
    const input = args.string('input') ?? args.positionals[0];
    if (!input) throw new UsageError('label-issues expects --input FILE');
    const rankBy = args.string('rank-by') ?? 'self_confidence';
    if (rankBy !== 'self_confidence' && rankBy !== 'normalized_margin') throw new UsageError(`--rank-by expects self_confidence or normalized_margin, got '${rankBy}'`);
    const knn = args.int('knn');
    if (knn !== undefined) return runLabelIssuesKnn(input, knn, rankBy, io);
    const data = await readPredictionsFile(path.resolve(input));
    io.out(JSON.stringify({ labelIssues: findLabelIssues(data, { rankBy }) }, null, 1) + '\n');
    return 0;
  },
};

export const PROBE_COMMAND: CommandSpec = {
  name: 'probe',
  usage: ['--input FILE [--folds K] [--c C]'],
  summary: 'cross-validated linear probe on features: pred_probs, metrics, labelIssues',
  description:
    'Out-of-sample class probabilities of a linear probe (multinomial logistic regression with an L2 penalty, the\n' +
    'objective of scikit-learn\'s LogisticRegression(C, lbfgs, multinomial)) by stratified K-fold cross-validation\n' +
    '(scikit-learn\'s StratifiedKFold order, no shuffling), then metrics and likely label errors from them. Prints\n' +
    'JSON {"pred_probs": N x K, "metrics": (as `metrics`), "labelIssues": (as `label-issues`), "probe": {...}}.\n' +
    'A class with fewer samples than folds is missing from some training folds; a class with one sample gets\n' +
    'probability 0 for its own sample (listed in probe.singletonClasses, and on stderr).',
  options: {
    input: FEATURES_INPUT_OPTION,
    folds: { type: 'integer', value: 'K', min: 2, help: `number of folds (default ${DEFAULT_FOLDS}); the largest class needs K samples` },
    c: { type: 'string', value: 'C', help: `inverse regularisation strength, a positive number (default ${DEFAULT_PROBE_C})` },
  },
  notes: 'Exit codes: 0 done, 2 usage error or bad input (one line on stderr naming the file and the problem).',
  run: async (args, { io }) => {
    const input = args.string('input') ?? args.positionals[0];
    if (!input) throw new UsageError('probe expects --input FILE');
    const cText = args.string('c');
    const c = cText === undefined ? undefined : Number(cText);
    if (c !== undefined && (cText!.trim() === '' || !Number.isFinite(c) || c <= 0)) throw new UsageError(`--c expects a positive number, got '${cText}'`);
    return runProbe(input, { folds: args.int('folds'), c }, io);
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
export const COMMANDS: readonly CommandSpec[] = [EVAL_COMMAND, EMBED_COMMAND, TOKENIZE_COMMAND, METRICS_COMMAND, LABEL_ISSUES_COMMAND, PROBE_COMMAND, CHECK_COMMAND, BASELINE_COMMAND, COMPARE_COMMAND, HOOK_COMMAND, MODEL_ENTRY, SEARCH_COMMAND];
