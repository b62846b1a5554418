/**
 * `clip-lens search <dataset> [--model M] [--top N] "<text>"`: the dataset's images ranked by CLIP similarity to the
 * text, one JSON line `{"path","score"}` per image, best first (docs/duplicates.md). The model is chosen as for `eval`
 * (--model, else the dataset's .clip-lens.json, else the default) and the embeddings come from the cache `eval`
 * fills, so after an evaluation no image is inferred again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError } from '../core/errors';
import { defaultModelEntry } from '../core/modelRegistry';
import { readProjectConfig } from '../core/projectConfig';
import { chooseModelSpec, loadModel, locateModel } from '../core/run';
import { searchDataset } from '../core/search';
import type { CommandSpec } from './args';
import { bar, cliObtainModel, ProgressLine, UsageError } from './io';

export const SEARCH_COMMAND: CommandSpec = {
  name: 'search',
  usage: ['<dataset> [--model DIR|ID] [--top N] [--cache DIR | --no-cache] "<text>"'],
  summary: 'images ranked by CLIP similarity to the text: JSON lines {"path","score"}, best first',
  description:
    'Ranks the dataset\'s images by the cosine between their CLIP embeddings and the text\'s (as written, no prompt\n' +
    'template) and prints one JSON line per image, best first: {"path","score"} (path as in the eval report\'s\n' +
    'samples). Image embeddings come from the cache `clip-lens eval` fills: after an evaluation with the same model\n' +
    'and cache no image is inferred again. Unreadable images are skipped and named once on stderr.',
  options: {
    model: { type: 'string', value: 'DIR|ID', help: `model folder or registry id (default: "model" of .clip-lens.json, else ${defaultModelEntry().id})` },
    top: { type: 'integer', value: 'N', help: 'how many results (default 20)' },
    cache: { type: 'string', value: 'DIR', help: 'embedding cache folder (default: $CLIP_LENS_CACHE or the user cache folder)' },
    'no-cache': { type: 'boolean', help: 'neither read nor write the embedding cache' },
    labels: { type: 'string', value: 'FILE', help: 'label file (default: "labels.file" of .clip-lens.json, or the one in the folder)' },
    quantized: { type: 'boolean', help: 'use the 8-bit (*_quantized.onnx) graphs' },
    threads: { type: 'integer', help: 'ONNX Runtime threads (default: the number of cores)' },
  },
  notes: 'Exit codes: 0 done, 2 usage or fatal error (one line on stderr).',
  run: async (args, { io, signal }) => {
    if (args.positionals.length !== 2) throw new UsageError(`search expects a dataset and a text, got ${args.positionals.length} argument${args.positionals.length === 1 ? '' : 's'}`);
    const [given, text] = args.positionals as [string, string];
    if (text.trim() === '') throw new UsageError('search expects a non-empty text');
    const top = args.int('top') ?? 20;
    if (top < 1) throw new UsageError(`--top expects an integer >= 1, got ${top}`);
    if (args.string('cache') !== undefined && args.flag('no-cache')) throw new UsageError('--cache and --no-cache exclude each other');
    const cacheDir = args.flag('no-cache') ? null : args.string('cache') !== undefined ? path.resolve(args.string('cache') as string) : undefined;
    const target = path.resolve(given);
    const st = await fs.promises.stat(target).catch(() => null);
    if (!st) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: given });
    const root = st.isDirectory() ? target : path.dirname(target);
    const { config } = await readProjectConfig(root);
    const choice = chooseModelSpec({ option: args.string('model'), projectModel: config.model, projectDir: root });
    const located = await locateModel(choice, { quantized: args.flag('quantized'), obtain: cliObtainModel(io), signal });
    if (!located) return 2;
    const model = await loadModel(located, { threads: args.int('threads') });
    const progress = new ProgressLine(io);
    try {
      const labels = args.string('labels');
      const result = await searchDataset(target, text, {
        model,
        top,
        cacheDir,
        ...(labels ? { labelFile: path.resolve(labels) } : {}),
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
  },
};
