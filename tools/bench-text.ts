/**
 * The text tower: N prompts at 77 tokens (the old way) and trimmed to each batch's longest prompt (sorted by
 * length), side by side in one process on the same graph, plus the worst cosine between the two.
 *
 *   node --import tsx tools/bench-text.ts MODEL_DIR [--fixed FIXED_77_MODEL_DIR] [--prompts N] [--set classes|imagenet80]
 *        [--rounds R] [--quantized]
 *
 * MODEL_DIR must have a text graph with a dynamic sequence axis (tools/make-fixture-model.py writes one by default);
 * --fixed names a model with the same weights whose text graph is fixed at 77 (the bench model of earlier sessions,
 * made by the same command with --text-length fixed): its embeddings are compared too. Prompts: `classes` = the
 * zero-shot prompts of the 1,000-class benchmark ("a photo of a class 0042."), `imagenet80` = the 80 CLIP
 * templates over class names (lengths vary more). Every timed call starts from sessions that are already created.
 */
import * as os from 'node:os';
import { ClipModel, cosine } from '../src/core/runtime';
import { BUILTIN_TEMPLATES, fillTemplate, classPrompt } from '../src/core/prompts';

const args = process.argv.slice(2);
const opt = (name: string, dflt?: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const modelDir = args[0];
if (!modelDir || modelDir.startsWith('--')) throw new Error('usage: bench-text.ts MODEL_DIR [--fixed DIR] [--prompts N] [--set classes|imagenet80] [--rounds R]');
const n = Number(opt('--prompts', '1000'));
const set = opt('--set', 'classes');
const rounds = Number(opt('--rounds', '1'));
const quantized = args.includes('--quantized');
const fixedDir = opt('--fixed');
const batchSize = opt('--batch') === undefined ? undefined : Number(opt('--batch'));

function prompts(): string[] {
  if (set === 'classes') return Array.from({ length: n }, (_, c) => fillTemplate('a photo of a {}.', classPrompt(`class_${String(c).padStart(4, '0')}`)));
  const t = BUILTIN_TEMPLATES.imagenet80;
  const names = ['tench', 'goldfish', 'great white shark', 'tiger shark', 'hammerhead shark', 'electric ray', 'stingray', 'rooster', 'hen', 'ostrich', 'brambling', 'goldfinch', 'house finch', 'junco', 'indigo bunting', 'American robin', 'bulbul', 'jay', 'magpie', 'chickadee', 'American dipper', 'kite (bird of prey)', 'bald eagle', 'vulture', 'great grey owl', 'fire salamander', 'smooth newt'];
  return Array.from({ length: n }, (_, i) => fillTemplate(t[i % t.length]!, names[Math.floor(i / t.length) % names.length]!));
}

/** Worst row cosine (float64 over the float32 rows; can print as 1 when the rows agree to float32 rounding) and the largest element difference. */
function compare(x: Float32Array, y: Float32Array, dim: number): { worstCosine: number; row: number; maxAbsDiff: number } {
  let worst = Infinity, row = -1, maxAbsDiff = 0;
  for (let r = 0; r < x.length / dim; r++) {
    const c = cosine(x.subarray(r * dim, (r + 1) * dim), y.subarray(r * dim, (r + 1) * dim));
    if (c < worst) (worst = c), (row = r);
  }
  for (let i = 0; i < x.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x[i]! - y[i]!));
  return { worstCosine: worst, row, maxAbsDiff };
}

async function timed(model: ClipModel, texts: string[]) {
  let best = Infinity;
  let out: Float32Array = new Float32Array(0);
  let dim = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const res = await model.embedTexts(texts, batchSize ? { batchSize } : {});
    best = Math.min(best, performance.now() - t0);
    out = res.embeddings;
    dim = res.dim;
  }
  return { ms: best, embeddings: out, dim };
}

async function main() {
  const texts = prompts();
  const full = await ClipModel.load(modelDir, { quantized, trimText: false });
  const trim = await ClipModel.load(modelDir, { quantized });
  await full.prepare({ text: true });
  await trim.prepare({ text: true });
  const tok = await trim.tokenizer();
  const lengths = texts.map((t) => tok.encode(t).attentionMask.reduce((a, b) => a + b, 0));
  lengths.sort((a, b) => a - b);
  const a = await timed(full, texts);
  await full.dispose();
  const b = await timed(trim, texts);
  const result: Record<string, unknown> = {
    model: modelDir,
    quantized,
    set,
    prompts: texts.length,
    tokens: { min: lengths[0], median: lengths[lengths.length >> 1], max: lengths[lengths.length - 1] },
    at77Ms: Math.round(a.ms),
    trimmedMs: Math.round(b.ms),
    speedup: Number((a.ms / b.ms).toFixed(2)),
    trimCheckCosine: trim.textTrimCheck,
    trimmedVs77: compare(b.embeddings, a.embeddings, a.dim),
    batchSize: batchSize ?? 'default',
    loadavg: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  await trim.dispose();
  if (fixedDir) {
    const fixed = await ClipModel.load(fixedDir, { quantized });
    await fixed.prepare({ text: true });
    const c = await timed(fixed, texts);
    result.fixedGraphMs = Math.round(c.ms);
    result.trimmedVsFixedGraph = compare(b.embeddings, c.embeddings, c.dim);
    await fixed.dispose();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
