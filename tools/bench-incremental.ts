/**
 * Incremental re-runs with the model kept loaded, as the VS Code extension runs them (it keeps its ClipModel and
 * sessions between runs until idle): called by tools/bench.mjs after the CLI's runs, on a dataset whose embeddings
 * are all in `cache`.
 *
 *   node --import tsx tools/bench-incremental.ts <dataset> <model> <cache>
 *
 * Prints one JSON line: {warmMs, oneChangedMs, oneChangedComputed, touched}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipModel } from '../src/core/runtime';
import { evaluateDataset } from '../src/core/evaluate';

async function main(): Promise<void> {
  const [dataset, modelDir, cache] = process.argv.slice(2);
  if (!dataset || !modelDir || !cache) throw new Error('usage: bench-incremental.ts <dataset> <model> <cache>');
  const model = await ClipModel.load(modelDir);
  await model.prepare(); // the extension's sessions are already there from its previous run
  const run = async () => {
    const t0 = performance.now();
    const report = await evaluateDataset(dataset, { model, cacheDir: cache, batchSize: 32 });
    return { ms: performance.now() - t0, computed: report.timing.imagesComputed };
  };
  await run(); // settles the cache files left by the CLI runs
  const warm = await run();
  if (warm.computed !== 0) throw new Error(`warm run inferred ${warm.computed} images: the cache was not complete`);
  // Change the second image of the first class (the CLI runs changed the first): one trailing byte after the
  // JPEG's end marker changes the content hash, not the pixels.
  const cls = fs.readdirSync(dataset).filter((d) => !d.startsWith('.')).sort()[0];
  const touched = path.join(dataset, cls, fs.readdirSync(path.join(dataset, cls)).sort()[1]);
  fs.appendFileSync(touched, Buffer.from([0]));
  const one = await run();
  await model.dispose();
  process.stdout.write(`${JSON.stringify({ warmMs: warm.ms, oneChangedMs: one.ms, oneChangedComputed: one.computed, touched })}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`bench-incremental: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
