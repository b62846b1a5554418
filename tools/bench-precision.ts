/**
 * fp32 vs int8 on the fixture's whole example (examples/shapes, every image): zero-shot top-1 agreement and the
 * cosine of each image's two embeddings, as `--precision auto` measures it on a sample. Prints one JSON line.
 * Run by tools/bench.mjs; alone: node --import tsx tools/bench-precision.ts [modelDir] [datasetDir]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipModel } from '../src/core/runtime';
import { measureAgreement } from '../src/core/precision';
import { promptsForClass } from '../src/core/prompts';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  const modelDir = process.argv[2] ?? path.join(root, 'test/fixtures/tiny-clip');
  const dataset = process.argv[3] ?? path.join(root, 'examples/shapes');
  const classes = fs.readdirSync(dataset, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const files = classes.flatMap((c) => fs.readdirSync(path.join(dataset, c)).sort().map((f) => path.join(dataset, c, f)));
  const fp32 = await ClipModel.load(modelDir, { quantized: false });
  const int8 = await ClipModel.load(modelDir, { quantized: true });
  try {
    const a = await measureAgreement(fp32, int8, files, classes.map((c) => promptsForClass(c, ['a photo of a {}.'])));
    process.stdout.write(JSON.stringify({ ...a, worstImage: a.worstImage ? path.relative(root, a.worstImage) : undefined }) + '\n');
  } finally {
    await Promise.all([fp32.dispose(), int8.dispose()]);
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
