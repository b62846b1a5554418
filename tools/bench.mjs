#!/usr/bin/env node
// `npm run bench`: speed and memory goals of CLIP Lens, measured (never asserted by unit tests).
//
// 1. Throughput on a random-weight CLIP ViT-B/32 (generated here by tools/make-fixture-model.py --random, needs
//    Debian's python3-torch and python3-onnx; cached in .bench/): bare `session.run` on ready tensors (the
//    ceiling), the whole `clip-lens eval` process (cold, no cache), and transformers.js's CLIP vision model on the
//    same model and images.
// 2. Incremental re-runs: warm (unchanged dataset, cache hot) and after one image changed.
// 3. Memory: peak RSS of `eval` at 1,000 and 10,000 images (fixture model, so the pipeline dominates).
// 4. Metrics and label issues at 1,000,000 samples x 1,000 classes (tools/bench-metrics.ts).
// Results are printed and written to .bench/results.json; docs/benchmarks.md records them.
//
// Options: --images N (throughput set, default 512) --quick (smaller sets) --skip-transformers --skip-metrics
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.join(ROOT, '.bench');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const quick = flag('--quick');
const N_THROUGHPUT = opt('--images', quick ? 128 : 512);
const BATCH = 32;
const results = { machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, date: new Date().toISOString() } };
const log = (s) => process.stdout.write(`${s}\n`);

fs.mkdirSync(BENCH, { recursive: true });

// ---------------------------------------------------------------------------------------------------------------
// Inputs
function ensureVitB32() {
  const dir = path.join(BENCH, 'vit-b-32');
  if (fs.existsSync(path.join(dir, 'onnx', 'vision_model.onnx'))) return dir;
  log('Generating a random-weight CLIP ViT-B/32 (tools/make-fixture-model.py --random --arch vit-b-32)...');
  execFileSync('/usr/bin/python3', [path.join(ROOT, 'tools/make-fixture-model.py'), '--random', '--arch', 'vit-b-32', '--out', dir], { stdio: 'inherit' });
  return dir;
}

/** A class-folder dataset of `n` photo-like JPEGs (smooth random colour fields with shapes) of size w x h. */
async function ensureImages(name, n, classes, w, h) {
  const sharp = require('sharp');
  const dir = path.join(BENCH, name);
  const stamp = path.join(dir, '.complete');
  if (fs.existsSync(stamp)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  log(`Generating ${n} ${w}x${h} JPEGs in ${path.relative(ROOT, dir)}...`);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < n; i++) {
    const cls = `class_${String(i % classes).padStart(2, '0')}`;
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    // A low-resolution random field upscaled (smooth, photo-like entropy) plus fine noise.
    const gw = 8, gh = 6;
    const grid = Buffer.alloc(gw * gh * 3);
    for (let j = 0; j < grid.length; j++) grid[j] = Math.floor(rnd() * 256);
    const base = await sharp(grid, { raw: { width: gw, height: gh, channels: 3 } }).resize(w, h, { kernel: 'cubic' }).raw().toBuffer();
    for (let j = 0; j < base.length; j++) base[j] = Math.max(0, Math.min(255, base[j] + Math.floor((rnd() - 0.5) * 24)));
    await sharp(base, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 88 }).toFile(path.join(dir, cls, `img_${String(i).padStart(5, '0')}.jpg`));
  }
  fs.writeFileSync(stamp, '');
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements
function runEval(dataset, model, extra = [], { memory = false } = {}) {
  const out = path.join(BENCH, 'report.json');
  const t0 = performance.now();
  // With memory, run the CLI's main() in a wrapper that prints the process's peak RSS (KiB, worker included) last.
  const wrapper = `require(${JSON.stringify(CLI)}).main(process.argv.slice(1)).then((c) => { process.stderr.write('\\n' + process.resourceUsage().maxRSS + '\\n'); process.exitCode = c; })`;
  const runner = memory ? [process.execPath, ['-e', wrapper]] : [process.execPath, [CLI]];
  const r = spawnSync(runner[0], [...runner[1], 'eval', dataset, '--model', model, '--json', out, '--batch', String(BATCH), ...extra], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`eval failed (${r.status}): ${r.stderr}`);
  const report = JSON.parse(fs.readFileSync(out, 'utf8'));
  const peakKiB = memory ? Number(r.stderr.trim().split('\n').pop()) : null;
  return { wallMs, report, peakRssMiB: peakKiB ? peakKiB / 1024 : null };
}

async function ceiling(modelDir, n) {
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(path.join(modelDir, 'onnx', 'vision_model.onnx'), {
    intraOpNumThreads: os.availableParallelism(), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3,
  });
  const data = new Float32Array(BATCH * 3 * 224 * 224).map(() => Math.random() * 2 - 1);
  const tensor = new ort.Tensor('float32', data, [BATCH, 3, 224, 224]);
  await session.run({ pixel_values: tensor }); // warm-up
  const batches = Math.max(2, Math.round(n / BATCH));
  const t0 = performance.now();
  for (let i = 0; i < batches; i++) await session.run({ pixel_values: tensor });
  const ms = performance.now() - t0;
  await session.release();
  return { imagesPerSecond: (batches * BATCH * 1000) / ms, batches };
}

async function transformersJs(modelDir, dataset, n) {
  // transformers.js expects a model folder named by id under localModelPath, with tokenizer_config.json present.
  const { env, AutoProcessor, CLIPVisionModelWithProjection, RawImage } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(modelDir) + path.sep;
  const id = path.basename(modelDir);
  const processor = await AutoProcessor.from_pretrained(id);
  const model = await CLIPVisionModelWithProjection.from_pretrained(id, { dtype: 'fp32', device: 'cpu' });
  const files = [];
  for (const cls of fs.readdirSync(dataset).filter((d) => !d.startsWith('.')).sort()) for (const f of fs.readdirSync(path.join(dataset, cls)).sort()) files.push(path.join(dataset, cls, f));
  const use = files.slice(0, n);
  const t0 = performance.now();
  for (let i = 0; i < use.length; i += BATCH) {
    const images = await Promise.all(use.slice(i, i + BATCH).map((f) => RawImage.read(f)));
    const inputs = await processor(images);
    const { image_embeds } = await model(inputs);
    image_embeds.dispose?.();
  }
  const ms = performance.now() - t0;
  await model.dispose?.();
  return { imagesPerSecond: (use.length * 1000) / ms, images: use.length };
}

function touchOneImage(dataset) {
  const cls = fs.readdirSync(dataset).filter((d) => !d.startsWith('.')).sort()[0];
  const file = path.join(dataset, cls, fs.readdirSync(path.join(dataset, cls)).sort()[0]);
  const buf = fs.readFileSync(file);
  // Append a JPEG comment-free trailing byte: decoders ignore bytes after EOI, the content hash changes.
  fs.writeFileSync(file, Buffer.concat([buf, Buffer.from([0])]));
  return file;
}

// ---------------------------------------------------------------------------------------------------------------
async function main() {
  if (!fs.existsSync(CLI)) throw new Error('dist/cli.js missing: npm run bench builds it first');
  const vit = ensureVitB32();
  const photos = await ensureImages(`photos-${N_THROUGHPUT}`, N_THROUGHPUT, 10, 640, 480);

  log('\n== Throughput, random-weight CLIP ViT-B/32, batch 32');
  const ceil = await ceiling(vit, N_THROUGHPUT);
  log(`  bare session.run on ready tensors (ceiling): ${ceil.imagesPerSecond.toFixed(2)} images/s`);
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-bench-cache-'));
  const cold = runEval(photos, vit, ['--cache', cache]);
  const coldWall = (N_THROUGHPUT * 1000) / cold.wallMs;
  const coldSteady = cold.report.timing.imagesPerSecond;
  log(`  clip-lens eval, whole process (cold, wall clock incl. start-up and model load): ${coldWall.toFixed(2)} images/s = ${((100 * coldWall) / ceil.imagesPerSecond).toFixed(1)}% of the ceiling`);
  log(`  clip-lens eval, image phase only: ${coldSteady.toFixed(2)} images/s = ${((100 * coldSteady) / ceil.imagesPerSecond).toFixed(1)}% of the ceiling`);
  results.throughput = { images: N_THROUGHPUT, imageSize: '640x480 JPEG', ceiling: ceil.imagesPerSecond, evalWholeProcess: coldWall, evalImagePhase: coldSteady, ratioWholeProcess: coldWall / ceil.imagesPerSecond, ratioImagePhase: coldSteady / ceil.imagesPerSecond, coldWallMs: cold.wallMs };

  if (!flag('--skip-transformers')) {
    try {
      const tj = await transformersJs(vit, photos, Math.min(N_THROUGHPUT, 256));
      log(`  transformers.js CLIPVisionModelWithProjection (same model, same images): ${tj.imagesPerSecond.toFixed(2)} images/s; clip-lens is ${(coldWall / tj.imagesPerSecond).toFixed(2)}x`);
      results.transformersJs = tj;
    } catch (e) {
      log(`  transformers.js: could not run (${e.message.split('\n')[0]})`);
      results.transformersJs = { error: e.message };
    }
  }

  log('\n== Incremental re-runs (same dataset, same cache)');
  const warm = runEval(photos, vit, ['--cache', cache]);
  log(`  warm re-run, nothing changed: ${(warm.wallMs / 1000).toFixed(2)} s vs cold ${(cold.wallMs / 1000).toFixed(2)} s: ${(cold.wallMs / warm.wallMs).toFixed(1)}x faster; images inferred: ${warm.report.timing.imagesComputed}`);
  const touched = touchOneImage(photos);
  const one = runEval(photos, vit, ['--cache', cache]);
  const perImageMs = 1000 / ceil.imagesPerSecond;
  log(`  after one image changed (${path.relative(ROOT, touched)}): ${(one.wallMs / 1000).toFixed(2)} s, ${one.report.timing.imagesComputed} image inferred; extra over warm ${(one.wallMs - warm.wallMs).toFixed(0)} ms (one image at the ceiling: ${perImageMs.toFixed(0)} ms, plus one batch-1 session run)`);
  results.incremental = { coldMs: cold.wallMs, warmMs: warm.wallMs, speedup: cold.wallMs / warm.wallMs, oneChangedMs: one.wallMs, oneChangedComputed: one.report.timing.imagesComputed, extraMs: one.wallMs - warm.wallMs };
  fs.rmSync(cache, { recursive: true, force: true });

  log('\n== Memory: peak RSS of eval (fixture model, no cache)');
  const tiny = path.join(ROOT, 'test/fixtures/tiny-clip');
  const small = await ensureImages(`mem-${quick ? 300 : 1000}`, quick ? 300 : 1000, 16, 128, 128);
  const large = await ensureImages(`mem-${quick ? 3000 : 10000}`, quick ? 3000 : 10000, 16, 128, 128);
  const m1 = runEval(small, tiny, ['--no-cache'], { memory: true });
  const m10 = runEval(large, tiny, ['--no-cache'], { memory: true });
  log(`  ${m1.report.samples.length} images: ${m1.peakRssMiB.toFixed(0)} MiB; ${m10.report.samples.length} images: ${m10.peakRssMiB.toFixed(0)} MiB (+${((100 * (m10.peakRssMiB - m1.peakRssMiB)) / m1.peakRssMiB).toFixed(1)}%)`);
  results.memory = { small: { images: m1.report.samples.length, peakRssMiB: m1.peakRssMiB }, large: { images: m10.report.samples.length, peakRssMiB: m10.peakRssMiB } };

  if (!flag('--skip-metrics')) {
    log('\n== Metrics and label issues at scale (tools/bench-metrics.ts)');
    const n = quick ? 100000 : 1000000;
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-metrics.ts'), String(n), '1000'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    process.stdout.write(r.stdout.split('\n').map((l) => `  ${l}`).join('\n') + '\n');
    results.metricsBench = r.stdout;
  }

  fs.writeFileSync(path.join(BENCH, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  log(`\nResults written to ${path.relative(ROOT, path.join(BENCH, 'results.json'))}`);
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
