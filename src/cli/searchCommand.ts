/**
 * `clip-lens search <dataset> [--model M] [--top N] "<text>"`: the dataset's images ranked by CLIP similarity to the
 * text, one JSON line `{"path","score"}` per image, best first (docs/duplicates.md). Embeddings come from the cache
 * `clip-lens eval` fills, so after an evaluation no image is inferred again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ClipLensError } from '../core/errors';
import { ClipModel } from '../core/runtime';
import { resolveModelSpec } from '../core/modelRegistry';
import { ensureModel } from '../core/modelDownload';
import { searchDataset } from '../core/search';
import { bar, ProgressLine, UsageError, type CliIO } from './io';

export const SEARCH_USAGE = `clip-lens search <dataset> [--model DIR|ID] [--top N] [--cache DIR | --no-cache] [--quantized] "<text>"
  one JSON line per image, best first: {"path","score"} (score = cosine of CLIP embeddings; default --top 20)`;

const DEFAULT_MODEL = 'clip-vit-base-patch32';

export async function searchCommand(args: string[], io: CliIO, signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      top: { type: 'string' },
      cache: { type: 'string' },
      'no-cache': { type: 'boolean' },
      quantized: { type: 'boolean' },
      threads: { type: 'string' },
      labels: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(`${SEARCH_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`search expects a dataset and a text, got ${positionals.length} argument${positionals.length === 1 ? '' : 's'} (usage: ${SEARCH_USAGE.split('\n')[0]})`);
  if (values.cache && values['no-cache']) throw new UsageError('--cache and --no-cache exclude each other');
  const [datasetArg, text] = positionals;
  if (text.trim() === '') throw new UsageError('search expects a non-empty text');
  let top = 20;
  if (values.top !== undefined) {
    top = Number(values.top);
    if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top expects an integer >= 1, got '${values.top}'`);
  }
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads expects an integer >= 1, got '${values.threads}'`);
  }
  const target = path.resolve(datasetArg);
  if (!fs.existsSync(target)) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: datasetArg });

  const given = values.model ?? DEFAULT_MODEL;
  const quantized = Boolean(values.quantized);
  const resolved = resolveModelSpec(given, process.cwd());
  const progress = new ProgressLine(io);
  const dir =
    resolved.kind === 'path'
      ? resolved.dir
      : await ensureModel(given, { quantized, onProgress: (p) => progress.update(`Downloading ${p.file} ${p.totalBytes ? bar(p.bytes, p.totalBytes) : ''}`) });
  progress.clear();
  const model = await ClipModel.load(dir, { quantized, threads });
  try {
    const result = await searchDataset(target, text, {
      model,
      top,
      cacheDir: values['no-cache'] ? null : values.cache ? path.resolve(values.cache) : undefined,
      labelFile: values.labels ? path.resolve(values.labels) : undefined,
      signal,
      onProgress: (done, total) => progress.update(`Embedding images ${bar(done, total)} ${done}/${total}`),
    });
    progress.clear();
    for (const f of result.failed) io.err(`clip-lens: ${f.path}: skipped: ${f.message}\n`);
    for (const h of result.hits) io.out(JSON.stringify({ path: h.path, score: h.score }) + '\n');
    return 0;
  } finally {
    progress.clear();
    await model.dispose();
  }
}
