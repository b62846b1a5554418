/**
 * The `clip-lens` command: a thin shell over core. Exit codes: 0 success, 1 a check failed (gate), 2 usage or
 * fatal error (one line on stderr).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CancelledError, ClipLensError } from '../core/errors';
import { evaluateDataset } from '../core/evaluate';
import { ClipModel } from '../core/runtime';
import { resolveModelSpec } from '../core/modelRegistry';
import { ensureModel } from '../core/modelDownload';
import { computeMetrics } from '../core/metrics';
import { findLabelIssues } from '../core/labelIssues';
import { readPredictionsFile } from '../core/probabilities';
import { TOOL_VERSION } from '../core/version';
import { modelCommand } from './modelCommand';
import { checkCommand } from './checkCommand';
import { hookCommand } from './hookCommand';
import { labelIssuesKnnCommand, parsePredictor, probeCommand, wantsKnn } from './probeCommand';
import { formatSummary } from './summary';
import { bar, processIO, ProgressLine, UsageError, writeJsonReport, type CliIO } from './io';

const HELP = `clip-lens ${TOOL_VERSION}: audit image classification datasets with CLIP

Usage:
  clip-lens eval <dataset> [--model DIR|ID] [--labels FILE] [--top-k K] [--templates simple|imagenet80|FILE]
                 [--json OUT] [--probabilities] [--cache DIR | --no-cache] [--batch N] [--threads N] [--quantized]
                 [--image-column NAME] [--label-column NAME] [--split-column NAME]
                 [--predictor auto|zero-shot|linear-probe|knn]   what finds label errors (default auto)
  clip-lens embed --model DIR <image>...        one JSON line per image: {"path","embedding"} (L2-normalised)
  clip-lens tokenize --model DIR <text>...      one JSON line per text: {"text","ids"} (77 ids)
  clip-lens metrics --input FILE [--k K]...     metrics of any classifier's probabilities (JSON or CSV)
  clip-lens label-issues --input FILE [--rank-by self_confidence|normalized_margin]
  clip-lens label-issues --input FILE --knn K   the same from features (kNN votes, cleanlab Datalab's route)
  clip-lens probe --input FILE [--folds K] [--c C]   cross-validated linear probe on features: pred_probs,
                                                metrics, labelIssues
  clip-lens check [<dataset>...] [--model DIR|ID] [--format text|json|junit|sarif|markdown] [--output FILE]
                  [--staged] [--cache DIR]        exit 0 pass, 1 a threshold failed, 2 could not run
  clip-lens hook install | uninstall | status     git pre-commit hook running \`check --staged\`
  clip-lens model list | download <id> | verify <dir>
  clip-lens --version | --help

<dataset> is a folder of class folders (optionally under train/val/test), or a folder with a label file
(metadata.jsonl, labels.csv, ...), or a CSV/TSV/JSONL label file. --model defaults to clip-vit-base-patch32
(downloaded on first use into the cache folder).
`;

const DEFAULT_MODEL = 'clip-vit-base-patch32';

function intOption(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} expects an integer >= ${min}, got '${value}'`);
  return n;
}

/** Turns --model (registry id or directory) into a loaded model, downloading a registry model when needed. */
async function loadModel(spec: string | undefined, opts: { quantized: boolean; threads?: number; cacheDir?: string }, io: CliIO): Promise<{ model: ClipModel; id: string }> {
  const given = spec ?? DEFAULT_MODEL;
  const resolved = resolveModelSpec(given, process.cwd());
  let dir: string;
  if (resolved.kind === 'path') {
    dir = resolved.dir;
  } else {
    const progress = new ProgressLine(io);
    dir = await ensureModel(given, {
      cacheDir: opts.cacheDir,
      quantized: opts.quantized,
      onProgress: (p) => progress.update(`Downloading ${p.file} ${p.totalBytes ? bar(p.bytes, p.totalBytes) : ''} ${(p.bytes / 1e6).toFixed(1)} MB at ${(p.bytesPerSecond / 1e6).toFixed(1)} MB/s`),
    });
    progress.clear();
  }
  const model = await ClipModel.load(dir, { quantized: opts.quantized, threads: opts.threads });
  return { model, id: given };
}

async function evalCommand(args: string[], io: CliIO, signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      labels: { type: 'string' },
      'top-k': { type: 'string' },
      templates: { type: 'string' },
      json: { type: 'string' },
      probabilities: { type: 'boolean' },
      cache: { type: 'string' },
      'no-cache': { type: 'boolean' },
      batch: { type: 'string' },
      threads: { type: 'string' },
      quantized: { type: 'boolean' },
      'image-column': { type: 'string' },
      'label-column': { type: 'string' },
      'split-column': { type: 'string' },
      predictor: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`eval expects one dataset, got ${positionals.length}`);
  const predictor = parsePredictor(values.predictor);
  if (values.cache && values['no-cache']) throw new UsageError('--cache and --no-cache exclude each other');
  const target = path.resolve(positionals[0]);
  if (!fs.existsSync(target)) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: positionals[0] });
  const { model, id } = await loadModel(values.model, { quantized: Boolean(values.quantized), threads: intOption(values.threads, 'threads') }, io);
  const progress = new ProgressLine(io);
  try {
    const report = await evaluateDataset(target, {
      model,
      modelId: id,
      labelFile: values.labels ? path.resolve(values.labels) : undefined,
      imageColumn: values['image-column'],
      labelColumn: values['label-column'],
      splitColumn: values['split-column'],
      topK: intOption(values['top-k'], 'top-k'),
      templates: values.templates,
      cacheDir: values['no-cache'] ? null : values.cache ? path.resolve(values.cache) : undefined,
      batchSize: intOption(values.batch, 'batch'),
      probabilities: Boolean(values.probabilities),
      predictor,
      signal,
      onProgress: (p) => {
        if (p.phase === 'images') progress.update(`Evaluating ${bar(p.done, p.total)} ${p.done}/${p.total} images, ${p.rate.toFixed(1)}/s${p.fromCache ? `, ${p.fromCache} cached` : ''}`);
        else progress.update(p.phase === 'reading' ? 'Reading dataset...' : p.phase === 'prompts' ? 'Embedding class prompts...' : 'Computing metrics...', true);
      },
    });
    progress.clear();
    if (values.json) {
      const out = path.resolve(values.json);
      await fs.promises.mkdir(path.dirname(out), { recursive: true });
      await writeJsonReport(report, out);
    }
    io.out(formatSummary(report));
    if (values.json) io.out(`\nReport written to ${values.json}\n`);
    return 0;
  } finally {
    progress.clear();
    await model.dispose();
  }
}

async function embedCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { model: { type: 'string' }, quantized: { type: 'boolean' }, threads: { type: 'string' } } });
  if (positionals.length === 0) throw new UsageError('embed expects at least one image');
  const { model } = await loadModel(values.model, { quantized: Boolean(values.quantized), threads: intOption(values.threads, 'threads') }, io);
  try {
    const pre = model.preprocessor;
    const per = 3 * pre.outputHeight * pre.outputWidth;
    const BATCH = 16;
    let failures = 0;
    for (let i = 0; i < positionals.length; i += BATCH) {
      const chunk = positionals.slice(i, i + BATCH);
      const pixels = new Float32Array(chunk.length * per);
      const ok: string[] = [];
      for (const p of chunk) {
        try {
          await pre.preprocess(path.resolve(p), pixels, ok.length * per);
          ok.push(p);
        } catch (e) {
          failures++;
          io.err(`${(e as Error).message}\n`);
        }
      }
      if (ok.length === 0) continue;
      const { embeddings, dim } = await model.embedImages(ok.length === chunk.length ? pixels : pixels.slice(0, ok.length * per), ok.length);
      ok.forEach((p, j) => io.out(JSON.stringify({ path: p, embedding: Array.from(embeddings.subarray(j * dim, (j + 1) * dim)) }) + '\n'));
    }
    return failures > 0 ? 2 : 0;
  } finally {
    await model.dispose();
  }
}

async function tokenizeCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { model: { type: 'string' } } });
  if (positionals.length === 0) throw new UsageError('tokenize expects at least one text');
  const { model } = await loadModel(values.model, { quantized: false }, io);
  try {
    const tokenizer = await model.tokenizer();
    for (const text of positionals) io.out(JSON.stringify({ text, ids: tokenizer.encode(text).ids }) + '\n');
    return 0;
  } finally {
    await model.dispose();
  }
}

async function metricsCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { input: { type: 'string' }, k: { type: 'string', multiple: true } } });
  const input = values.input ?? positionals[0];
  if (!input) throw new UsageError('metrics expects --input FILE');
  const data = await readPredictionsFile(path.resolve(input));
  const ks = [1, 3, 5, ...(values.k ?? []).map((k) => intOption(k, 'k') as number)];
  io.out(JSON.stringify(computeMetrics(data, { ks: [...new Set(ks)].sort((a, b) => a - b) }), null, 1) + '\n');
  return 0;
}

async function labelIssuesCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { input: { type: 'string' }, 'rank-by': { type: 'string' } } });
  const input = values.input ?? positionals[0];
  if (!input) throw new UsageError('label-issues expects --input FILE');
  const rankBy = values['rank-by'] ?? 'self_confidence';
  if (rankBy !== 'self_confidence' && rankBy !== 'normalized_margin') throw new UsageError(`--rank-by expects self_confidence or normalized_margin, got '${rankBy}'`);
  const data = await readPredictionsFile(path.resolve(input));
  io.out(JSON.stringify({ labelIssues: findLabelIssues(data, { rankBy }) }, null, 1) + '\n');
  return 0;
}

export async function main(argv: string[], io: CliIO = processIO, signal: AbortSignal = new AbortController().signal): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(HELP);
        return command === undefined ? 2 : 0;
      case '--version':
      case '-v':
        io.out(`${TOOL_VERSION}\n`);
        return 0;
      case 'eval':
        return await evalCommand(rest, io, signal);
      case 'embed':
        return await embedCommand(rest, io);
      case 'tokenize':
        return await tokenizeCommand(rest, io);
      case 'metrics':
        return await metricsCommand(rest, io);
      case 'label-issues':
        return wantsKnn(rest) ? await labelIssuesKnnCommand(rest, io) : await labelIssuesCommand(rest, io);
      case 'probe':
        return await probeCommand(rest, io);
      case 'model':
        return await modelCommand(rest, io);
      case 'check':
        return await checkCommand(rest, io, signal);
      case 'hook':
        return await hookCommand(rest, io, signal);
      default:
        throw new UsageError(`unknown command '${command}' (try --help)`);
    }
  } catch (e) {
    if (e instanceof CancelledError) {
      io.err('clip-lens: cancelled\n');
      return 2;
    }
    const err = e as Error & { code?: string };
    const known = e instanceof ClipLensError || e instanceof UsageError || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL';
    io.err(`clip-lens: ${known ? err.message.split('\n')[0] : `internal error: ${err.stack ?? err.message}`}\n`);
    return 2;
  }
}

if (require.main === module) {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  main(process.argv.slice(2), processIO, controller.signal).then((code) => {
    process.exitCode = code;
  });
}
