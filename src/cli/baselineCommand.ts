/**
 * `clip-lens baseline <dataset> [--out FILE]`: evaluates a dataset the way `clip-lens check` does (the config's model,
 * templates and Ks, the embedding cache) and writes its baseline (core/baseline.ts) to `gate.baseline` of its
 * `.clip-lens.json` (relative to the dataset root; default .clip-lens-baseline.json) or to FILE. The ratchet
 * (`gate.maxDrop`) of later checks compares with it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ClipLensError } from '../core/errors';
import { evaluateDataset } from '../core/evaluate';
import { ClipModel } from '../core/runtime';
import { ensureModel } from '../core/modelDownload';
import { defaultModelEntry } from '../core/modelRegistry';
import { CONFIG_FILE_NAME, formatConfigProblem, readProjectConfig } from '../core/projectConfig';
import { gateKs, num } from '../core/gate';
import { baselineFileOf, makeBaseline, serializeBaseline } from '../core/baseline';
import { bar, ProgressLine, UsageError, type CliIO } from './io';

export const BASELINE_HELP = `Usage: clip-lens baseline <dataset> [--out FILE] [--model DIR|ID] [--cache DIR] [--quantized] [--threads N] [--batch N]

Evaluates the dataset as \`clip-lens check\` does and writes its baseline: metrics, per-class figures, per-image
predicted class and label-issue flags keyed by content hash, and the model, templates and predictor (no
probabilities; one line per class and per image, so it diffs well). Commit it: "gate.maxDrop" in ${CONFIG_FILE_NAME}
refuses changes that lose more than the allowed drop against it.
  --out FILE     where to write (default: "gate.baseline" of ${CONFIG_FILE_NAME}, relative to the dataset root,
                 else .clip-lens-baseline.json in the dataset root)
  --model        model folder or registry id (default: the config's "model", else ${defaultModelEntry().id})
  --cache DIR    embedding cache folder (default: $CLIP_LENS_CACHE or the user cache folder)
`;

function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} expects an integer >= 1, got '${value}'`);
  return n;
}

export async function baselineCommand(args: string[], io: CliIO, signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      model: { type: 'string' },
      cache: { type: 'string' },
      quantized: { type: 'boolean' },
      threads: { type: 'string' },
      batch: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(BASELINE_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`baseline expects one dataset folder, got ${positionals.length}`);
  const target = path.resolve(positionals[0]);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(target);
  } catch {
    throw new ClipLensError('dataset-missing', 'no such file or folder', { file: positionals[0] });
  }
  const root = st.isDirectory() ? target : path.dirname(target);
  const threads = intOption(values.threads, 'threads');
  const batchSize = intOption(values.batch, 'batch');
  const quantized = Boolean(values.quantized);

  const read = await readProjectConfig(root);
  for (const p of read.problems) io.err(`note: ${formatConfigProblem(read.file ?? CONFIG_FILE_NAME, p)}\n`);
  const config = read.config;
  const spec = values.model ?? config.model ?? defaultModelEntry().id;
  const progress = new ProgressLine(io);
  const dir = await ensureModel(spec, {
    baseDir: values.model !== undefined ? process.cwd() : root,
    quantized,
    onProgress: (d) => progress.update(`Downloading ${d.file} ${d.totalBytes ? bar(d.bytes, d.totalBytes) : ''} ${(d.bytes / 1e6).toFixed(1)} MB`),
  });
  progress.clear();
  const model = await ClipModel.load(dir, { quantized, threads });
  try {
    const report = await evaluateDataset(target, {
      model,
      modelId: spec,
      projectConfig: config,
      ks: gateKs(config.gate),
      cacheDir: values.cache ? path.resolve(values.cache) : undefined,
      batchSize,
      signal,
      onProgress: (p) => {
        if (p.phase === 'images') progress.update(`Evaluating ${bar(p.done, p.total)} ${p.done}/${p.total} images${p.fromCache ? `, ${p.fromCache} cached` : ''}`);
        else progress.update(`${p.phase}...`, true);
      },
    });
    progress.clear();
    if (!report.metrics) throw new ClipLensError('baseline-empty', 'no image could be evaluated: nothing to make a baseline of (see clip-lens eval)', { file: positionals[0] });
    const out = values.out !== undefined ? path.resolve(values.out) : baselineFileOf(root, config.gate).file;
    const baseline = makeBaseline(report);
    const text = serializeBaseline(baseline);
    let previous: string | undefined;
    try {
      previous = await fs.promises.readFile(out, 'utf8');
    } catch {
      previous = undefined;
    }
    await fs.promises.mkdir(path.dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    await fs.promises.writeFile(tmp, text);
    await fs.promises.rename(tmp, out);
    const m = report.metrics;
    const rel = path.relative(process.cwd(), out);
    const shownOut = rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? out : rel;
    io.out(
      `Baseline ${previous === undefined ? 'written' : previous === text ? 'unchanged' : 'updated'}: ${shownOut}\n` +
        `  ${m.n} images (${Object.keys(baseline.samples).length} distinct), ${report.dataset.classes.length} classes; top-1 accuracy ${num(baseline.metrics?.top1Accuracy ?? 0)}, balanced accuracy ${num(baseline.metrics?.balancedAccuracy ?? 0)}\n` +
        `  model ${baseline.model.name}${baseline.model.quantized ? ' (int8)' : ''}, templates ${baseline.templates.name} (${baseline.templates.count}), predictor ${baseline.predictor}\n`,
    );
    if (report.dataset.counts.failed > 0) io.err(`note: ${report.dataset.counts.failed} image(s) could not be evaluated and are not in the baseline\n`);
    return 0;
  } finally {
    progress.clear();
    await model.dispose();
  }
}
