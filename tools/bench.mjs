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
// 5. Predictors on embeddings: linear probe and kNN at 20,000 x 512, 100 classes, side by side with scikit-learn,
//    and the approximate index at 100,000 x 512 (tools/bench-predictors.ts).
// 6. Near-duplicate groups of 100,000 embeddings with the approximate index, recall and memory (tools/bench-duplicates.ts).
// 6b. The text tower: 1,000 prompts at 77 tokens and trimmed to each batch's longest, side by side, fp32 and int8
//    (tools/bench-text.ts).
// 7. Zero-shot at scale: 1,000,000 x 512 float16 clip-retrieval shards, 1,000 classes: the judgement steps alone
//    (tools/bench-zeroshot.ts: the blocked product + softmax, metrics, label issues, side by side with the JavaScript
//    path) and `clip-lens eval --embeddings` end to end (wall, CPU, peak RSS).
// 8. Results while running: time to the first label issue on 10,000 photo-like 640x480 JPEGs with the ViT-B/32
//    loaded (tools/bench-live.ts), sessions ready and sessions created in the run.
// 9. Small datasets, whole process: 200 real photographs (mixed sizes, JPEG and PNG, from Debian packages: see
//    tools/make-real-photos.mjs) through `clip-lens embed`, next to the ceiling and transformers.js's image loop.
// Results are printed and written to .bench/results.json; docs/benchmarks.md records them.
//
// Options: --images N (throughput set, default 512) --rounds N (default 2) --quick (smaller sets, 1 round)
//          --skip-throughput --skip-transformers --skip-metrics --skip-predictors --skip-duplicates --skip-text --skip-zeroshot
//          --zeroshot-rows N (default 1,000,000; --quick 100,000) --skip-live
//          --skip-real-photos --only-real-photos --photo-rounds N (default 3)
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { makeRealPhotos, missingPhotos, PHOTO_PACKAGES } from './make-real-photos.mjs';

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
async function textAxisIsDynamic(file) {
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(file);
  const shape = session.inputMetadata.find((m) => m.name === 'input_ids')?.shape ?? [];
  await session.release();
  return typeof shape[1] === 'string';
}

async function ensureVitB32() {
  const dir = path.join(BENCH, 'vit-b-32');
  // older sets had no int8 graphs, or a text graph fixed at 77 tokens (the generator now exports a dynamic axis)
  if (fs.existsSync(path.join(dir, 'onnx', 'vision_model_quantized.onnx')) && (await textAxisIsDynamic(path.join(dir, 'onnx', 'text_model.onnx')))) return dir;
  log('Generating a random-weight CLIP ViT-B/32 (tools/make-fixture-model.py --random --arch vit-b-32)...');
  execFileSync('/usr/bin/python3', [path.join(ROOT, 'tools/make-fixture-model.py'), '--random', '--arch', 'vit-b-32', '--out', dir], { stdio: 'inherit' });
  return dir;
}

/**
 * The folder .bench/<name>, made by `generate(dir)` unless it is complete already. Its stamp records `spec`, so a set
 * generated with other parameters (or by an older generator) is made again, never reused.
 */
async function generatedSet(name, spec, what, generate) {
  const dir = path.join(BENCH, name);
  const stamp = path.join(dir, '.complete');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === spec) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  log(`Generating ${what} in ${path.relative(ROOT, dir)}...`);
  await generate(dir);
  fs.writeFileSync(stamp, spec);
  return dir;
}

/** A deterministic uniform generator in [0, 1) (32-bit LCG in integer arithmetic). */
function lcg(seed) {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/**
 * A class-folder dataset of `n` distinct images the fixture model knows: examples/shapes's images in turn, each copy
 * with a few pixels nudged by one level (so every file has its own content hash) and re-encoded; classes and labels
 * are the example's. The model's predictions, label issues and warnings then look like a real run's.
 */
async function ensureShapesCopies(name, n) {
  const sharp = require('sharp');
  return generatedSet(name, `v2: ${n} copies of examples/shapes`, `${n} images from examples/shapes`, async (dir) => {
    const src = path.join(ROOT, 'examples/shapes');
    const images = [];
    for (const cls of fs.readdirSync(src, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()) {
      for (const f of fs.readdirSync(path.join(src, cls)).sort()) images.push({ cls, file: path.join(src, cls, f) });
    }
    const rnd = lcg(777);
    for (let i = 0; i < n; i++) {
      const { cls, file } = images[i % images.length];
      const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      for (let j = 0; j < 8; j++) {
        const k = Math.floor(rnd() * data.length);
        data[k] = data[k] < 128 ? data[k] + 1 : data[k] - 1;
      }
      fs.mkdirSync(path.join(dir, cls), { recursive: true });
      await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).jpeg({ quality: 92 }).toFile(path.join(dir, cls, `img_${String(i).padStart(5, '0')}.jpg`));
    }
  });
}

/** A class-folder dataset of `n` photo-like JPEGs (smooth random colour fields with shapes) of size w x h. */
async function ensureImages(name, n, classes, w, h) {
  const sharp = require('sharp');
  return generatedSet(name, `v2: ${n} images, ${classes} classes, ${w}x${h}`, `${n} ${w}x${h} JPEGs`, async (dir) => {
    const rnd = lcg(12345);
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
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements
function runEval(dataset, model, extra = [], { memory = false } = {}) {
  const out = path.join(BENCH, 'report.json');
  const t0 = performance.now();
  // With memory, run the CLI's main() in a wrapper that prints the process's peak RSS (KiB, worker threads
  // included) last: VmHWM of /proc/self/status, which starts afresh at exec. (getrusage's maxRSS does not: on Linux
  // a child inherits the high-water mark of the parent it was forked from, here this 600 MB bench process.)
  const peak = `(() => { try { return Number(/VmHWM:\\s*(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]); } catch { return process.resourceUsage().maxRSS; } })()`;
  const wrapper = `require(${JSON.stringify(CLI)}).main(process.argv.slice(1)).then((c) => { process.stderr.write('\\n' + ${peak} + '\\n'); process.exitCode = c; })`;
  const runner = memory ? [process.execPath, ['-e', wrapper]] : [process.execPath, [CLI]];
  const r = spawnSync(runner[0], [...runner[1], 'eval', dataset, '--model', model, '--json', out, '--batch', String(BATCH), ...extra], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`eval failed (${r.status}): ${r.stderr}`);
  const report = JSON.parse(fs.readFileSync(out, 'utf8'));
  const peakKiB = memory ? Number(r.stderr.trim().split('\n').pop()) : null;
  return { wallMs, report, peakRssMiB: peakKiB ? peakKiB / 1024 : null };
}

async function ceiling(modelDir, n, graph = 'vision_model.onnx') {
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(path.join(modelDir, 'onnx', graph), {
    intraOpNumThreads: os.availableParallelism(), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3,
  });
  const data = new Float32Array(BATCH * 3 * 224 * 224).map(() => Math.random() * 2 - 1);
  const tensor = new ort.Tensor('float32', data, [BATCH, 3, 224, 224]);
  await session.run({ pixel_values: tensor }); // warm-up
  const batches = Math.max(2, Math.round(n / BATCH));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < batches; i++) await session.run({ pixel_values: tensor });
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await session.release();
  return { imagesPerSecond: (batches * BATCH * 1000) / ms, batches, cpuMsPerImage: (c.user + c.system) / 1000 / (batches * BATCH) };
}

/** The first `n` images of a class-folder dataset, in the order clip-lens reads them. */
function listImages(dataset, n) {
  const files = [];
  for (const cls of fs.readdirSync(dataset).filter((d) => !d.startsWith('.')).sort()) for (const f of fs.readdirSync(path.join(dataset, cls)).sort()) files.push(path.join(dataset, cls, f));
  return files.slice(0, n);
}

/**
 * transformers.js on the same model folder and images, in its own process (run as this script with
 * --transformers-child), like clip-lens: prints {loadMs, loopMs, images}; the caller times the whole process.
 */
async function transformersJsChild(modelDir, dataset, n) {
  const t0 = performance.now();
  // transformers.js expects a model folder named by id under localModelPath, with tokenizer_config.json present.
  const { env, AutoProcessor, CLIPVisionModelWithProjection, RawImage } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(modelDir) + path.sep;
  const id = path.basename(modelDir);
  const processor = await AutoProcessor.from_pretrained(id);
  const model = await CLIPVisionModelWithProjection.from_pretrained(id, { dtype: 'fp32', device: 'cpu' });
  const use = listImages(dataset, n);
  const t1 = performance.now();
  const c1 = process.cpuUsage();
  for (let i = 0; i < use.length; i += BATCH) {
    const images = await Promise.all(use.slice(i, i + BATCH).map((f) => RawImage.read(f)));
    const inputs = await processor(images);
    const { image_embeds } = await model(inputs);
    image_embeds.dispose?.();
  }
  const t2 = performance.now();
  const c2 = process.cpuUsage(c1);
  await model.dispose?.();
  process.stdout.write(JSON.stringify({ loadMs: t1 - t0, loopMs: t2 - t1, loopCpuMs: (c2.user + c2.system) / 1000, images: use.length }) + '\n');
}

function transformersJs(modelDir, dataset, n) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--transformers-child', modelDir, dataset, String(n)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error((r.stderr || `exit ${r.status}`).trim().split('\n').pop());
  const { loadMs, loopMs, loopCpuMs, images } = JSON.parse(r.stdout.trim().split('\n').pop());
  return { images, wallMs, loadMs, loopMs, loopCpuMs, wholeProcess: (images * 1000) / wallMs, imagePhase: (images * 1000) / loopMs };
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
/** Throughput (ceiling, clip-lens, transformers.js) and incremental re-runs on the ViT-B/32. */
async function throughputAndIncremental(vit, photos) {
  // Each round: ceiling, clip-lens cold, transformers.js. Two cores give run-to-run noise of a few percent, so the
  // ratios are taken within a round (the ceiling measured next to the run it bounds) and every round is reported.
  const ROUNDS = opt('--rounds', quick ? 1 : 2);
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  log(`\n== Throughput, random-weight CLIP ViT-B/32, batch ${BATCH}, ${N_THROUGHPUT} 640x480 JPEGs, ${ROUNDS} round(s)`);
  const rounds = [];
  let lastCache = null;
  for (let r = 0; r < ROUNDS; r++) {
    const ceil = await ceiling(vit, N_THROUGHPUT);
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-bench-cache-'));
    const cold = runEval(photos, vit, ['--cache', cache]);
    const t = cold.report.timing;
    const round = {
      ceiling: ceil.imagesPerSecond,
      wholeProcess: (N_THROUGHPUT * 1000) / cold.wallMs,
      imagePhase: t.imagesPerSecond,
      wallMs: cold.wallMs,
      // Everything that is not the image phase: process start, model files, prompts, vision session, report.
      fixedMs: cold.wallMs - (N_THROUGHPUT * 1000) / t.imagesPerSecond,
      sessionMs: t.sessionMs,
      textMs: t.textMs,
    };
    log(`  round ${r + 1}: ceiling (bare session.run on ready tensors) ${round.ceiling.toFixed(2)} images/s`);
    log(`    clip-lens eval, whole process (cold; process start, model load, prompts included): ${round.wholeProcess.toFixed(2)} images/s = ${pct(round.wholeProcess / round.ceiling)} of the ceiling`);
    log(`    clip-lens eval, image phase (read, hash, decode, resize, infer): ${round.imagePhase.toFixed(2)} images/s = ${pct(round.imagePhase / round.ceiling)} of the ceiling; fixed cost ${(round.fixedMs / 1000).toFixed(2)} s`);
    if (!flag('--skip-transformers')) {
      try {
        const tj = transformersJs(vit, photos, N_THROUGHPUT);
        round.transformersJs = tj;
        log(`    transformers.js (CLIPVisionModelWithProjection + AutoProcessor, same model and images): whole process ${tj.wholeProcess.toFixed(2)} images/s, image loop ${tj.imagePhase.toFixed(2)} images/s (${pct(tj.imagePhase / round.ceiling)} of the ceiling)`);
        log(`    clip-lens / transformers.js: whole process ${(round.wholeProcess / tj.wholeProcess).toFixed(2)}x, image phase ${(round.imagePhase / tj.imagePhase).toFixed(2)}x`);
      } catch (e) {
        log(`    transformers.js: could not run (${e.message.split('\n')[0]})`);
        round.transformersJs = { error: e.message };
      }
    }
    // int8: the same images through the dynamically quantised graphs (DynamicQuantizeLinear + MatMulInteger).
    const ceil8 = await ceiling(vit, N_THROUGHPUT, 'vision_model_quantized.onnx');
    const cache8 = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-bench-cache-'));
    const cold8 = runEval(photos, vit, ['--cache', cache8, '--quantized']);
    fs.rmSync(cache8, { recursive: true, force: true });
    round.int8 = { ceiling: ceil8.imagesPerSecond, wholeProcess: (N_THROUGHPUT * 1000) / cold8.wallMs, imagePhase: cold8.report.timing.imagesPerSecond };
    log(`    int8: ceiling ${round.int8.ceiling.toFixed(2)} images/s (${(round.int8.ceiling / round.ceiling).toFixed(2)}x the fp32 ceiling); clip-lens eval --quantized whole process ${round.int8.wholeProcess.toFixed(2)} images/s = ${(round.int8.wholeProcess / round.ceiling).toFixed(2)}x the fp32 ceiling, ${pct(round.int8.wholeProcess / round.int8.ceiling)} of the int8 ceiling; image phase ${pct(round.int8.imagePhase / round.int8.ceiling)} of the int8 ceiling`);
    rounds.push(round);
    if (lastCache) fs.rmSync(lastCache.dir, { recursive: true, force: true });
    lastCache = { dir: cache, cold };
  }
  results.throughput = { images: N_THROUGHPUT, imageSize: '640x480 JPEG', batch: BATCH, rounds };

  log('\n== Incremental re-runs (same dataset, same cache)');
  const { dir: cache, cold } = lastCache;
  const warm = runEval(photos, vit, ['--cache', cache]);
  log(`  warm re-run, nothing changed: ${(warm.wallMs / 1000).toFixed(2)} s vs cold ${(cold.wallMs / 1000).toFixed(2)} s: ${(cold.wallMs / warm.wallMs).toFixed(1)}x faster; images inferred: ${warm.report.timing.imagesComputed}`);
  const touched = touchOneImage(photos);
  const one = runEval(photos, vit, ['--cache', cache]);
  const perImageMs = 1000 / rounds[rounds.length - 1].ceiling;
  log(`  CLI (new process) after one image changed (${path.relative(ROOT, touched)}): ${(one.wallMs / 1000).toFixed(2)} s, ${one.report.timing.imagesComputed} image inferred; extra over warm ${(one.wallMs - warm.wallMs).toFixed(0)} ms, of which creating the vision session ${one.report.timing.sessionMs.toFixed(0)} ms (one image at the ceiling: ${perImageMs.toFixed(0)} ms)`);
  // The extension keeps its model loaded between runs: the same re-runs in one process (tools/bench-incremental.ts).
  const inproc = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-incremental.ts'), photos, vit, cache], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (inproc.status !== 0) throw new Error(`bench-incremental failed: ${inproc.stderr}`);
  const ext = JSON.parse(inproc.stdout.trim().split('\n').pop());
  log(`  model kept loaded (the extension): warm re-run ${ext.warmMs.toFixed(0)} ms; after one image changed ${ext.oneChangedMs.toFixed(0)} ms, ${ext.oneChangedComputed} image inferred: extra ${(ext.oneChangedMs - ext.warmMs).toFixed(0)} ms`);
  results.incremental = {
    coldMs: cold.wallMs, warmMs: warm.wallMs, speedup: cold.wallMs / warm.wallMs,
    cli: { oneChangedMs: one.wallMs, oneChangedComputed: one.report.timing.imagesComputed, extraMs: one.wallMs - warm.wallMs, sessionMs: one.report.timing.sessionMs },
    modelKeptLoaded: ext,
  };
  fs.rmSync(cache, { recursive: true, force: true });

}

/**
 * Small datasets, whole process: 200 real photographs through `clip-lens embed` (a new process, a new empty cache,
 * stdout to /dev/null), in rounds of ceiling, clip-lens, transformers.js, so each ratio is taken between neighbours.
 */
async function realPhotos(vit) {
  const N = 200;
  const ROUNDS = opt('--photo-rounds', quick ? 1 : 3);
  let made;
  const photos = await generatedSet(`real-photos-${N}`, `v1: ${N} real photos`, `${N} real photographs (tools/make-real-photos.mjs)`, async (dir) => {
    made = await makeRealPhotos(dir, N);
  });
  const files = listImages(photos, N);
  const bytes = files.reduce((s, f) => s + fs.statSync(f).size, 0);
  const png = files.filter((f) => f.endsWith('.png')).length;
  log(`\n== Small datasets, whole process: ${files.length} real photographs (${files.length - png} JPEG, ${png} PNG, ${(bytes / 2 ** 20).toFixed(1)} MiB, long sides 320-2048 px), ${ROUNDS} round(s)`);
  log(`  load before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rounds = [];
  const nul = fs.openSync('/dev/null', 'w');
  for (let r = 0; r < ROUNDS; r++) {
    const ceil = await ceiling(vit, N);
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-bench-cache-'));
    // The CLI's main() in a wrapper that prints the process's CPU time (all threads) last, as runEval's peak RSS.
    const cpu = `(() => { const u = process.resourceUsage(); return (u.userCPUTime + u.systemCPUTime) / 1000; })()`;
    const wrapper = `require(${JSON.stringify(CLI)}).main(process.argv.slice(1)).then((c) => { process.stderr.write('\\n' + ${cpu} + '\\n'); process.exitCode = c; })`;
    const t0 = performance.now();
    const e = spawnSync(process.execPath, ['-e', wrapper, 'embed', '--model', vit, '--cache', cache, '--batch', String(BATCH), photos], { stdio: ['ignore', nul, 'pipe'], encoding: 'utf8' });
    const wallMs = performance.now() - t0;
    fs.rmSync(cache, { recursive: true, force: true });
    if (e.status !== 0) throw new Error(`embed failed (${e.status}): ${e.stderr}`);
    const cpuMs = Number(e.stderr.trim().split('\n').pop());
    const ceilingWallMs = (N * 1000) / ceil.imagesPerSecond;
    const ceilingCpuMs = (N * ceil.cpuMsPerImage);
    const round = { ceiling: ceil.imagesPerSecond, ceilingCpuMs, embedWallMs: wallMs, embedCpuMs: cpuMs, embed: (N * 1000) / wallMs, load: os.loadavg()[0] };
    round.ofCeiling = round.embed / round.ceiling;
    log(`  round ${r + 1} (load ${round.load.toFixed(1)}): ceiling ${round.ceiling.toFixed(2)} images/s (${(ceilingWallMs / 1000).toFixed(2)} s, CPU ${(ceilingCpuMs / 1000).toFixed(2)} s for ${N}); clip-lens embed whole process ${(wallMs / 1000).toFixed(2)} s (CPU ${(cpuMs / 1000).toFixed(2)} s) = ${round.embed.toFixed(2)} images/s = ${round.ofCeiling.toFixed(2)}x the ceiling (CPU: ${(ceilingCpuMs / cpuMs).toFixed(2)}x)`);
    if (!flag('--skip-transformers')) {
      try {
        const tj = transformersJs(vit, photos, N);
        round.transformersJs = tj;
        round.vsTransformersLoop = round.embed / tj.imagePhase;
        round.vsTransformersLoopCpu = tj.loopCpuMs / cpuMs;
        log(`    transformers.js image loop (its load of ${(tj.loadMs / 1000).toFixed(2)} s not counted): ${(tj.loopMs / 1000).toFixed(2)} s (CPU ${(tj.loopCpuMs / 1000).toFixed(2)} s) = ${tj.imagePhase.toFixed(2)} images/s; clip-lens whole process / transformers.js loop ${round.vsTransformersLoop.toFixed(2)}x (CPU: ${round.vsTransformersLoopCpu.toFixed(2)}x)`);
      } catch (err) {
        log(`    transformers.js: could not run (${err.message.split('\n')[0]})`);
        round.transformersJs = { error: err.message };
      }
    }
    rounds.push(round);
  }
  fs.closeSync(nul);
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const summary = {
    ofCeiling: median(rounds.map((x) => x.ofCeiling)),
    ofCeilingCpu: median(rounds.map((x) => x.ceilingCpuMs / x.embedCpuMs)),
    vsTransformersLoop: rounds.every((x) => x.vsTransformersLoop) ? median(rounds.map((x) => x.vsTransformersLoop)) : null,
    vsTransformersLoopCpu: rounds.every((x) => x.vsTransformersLoopCpu) ? median(rounds.map((x) => x.vsTransformersLoopCpu)) : null,
  };
  log(`  median: ${summary.ofCeiling.toFixed(2)}x the ceiling (CPU time: ${summary.ofCeilingCpu.toFixed(2)}x)${summary.vsTransformersLoop ? `, ${summary.vsTransformersLoop.toFixed(2)}x transformers.js's image loop (CPU time: ${summary.vsTransformersLoopCpu.toFixed(2)}x)` : ''}; load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  results.realPhotos = { images: files.length, png, bytes, ...(made ? { made } : {}), rounds, ...summary };
}

/** tools/machine-speed.ts's reading (milliseconds per block of the zero-shot head), or null when it failed. */
function machineSpeed() {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/machine-speed.ts')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()) : null;
}

/**
 * Step 7: zero-shot at 1,000,000 x 512 x 1,000. The shards are tools/make-embeddings-shards.ts's (float16, 250,000
 * rows each, class folders class_0000 .. class_0999 as metadata); the text tower is the random-weight ViT-B/32's,
 * whose 512-wide class embeddings the images' match in width. Images are not on disk, so --verify is skipped.
 */
async function zeroShotAtScale() {
  const rows = opt('--zeroshot-rows', quick ? 100000 : 1000000);
  log(`\n== Zero-shot at scale: ${rows} x 512 embeddings, 1,000 classes (tools/bench-zeroshot.ts, then eval --embeddings)`);
  {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-zeroshot.ts'), String(rows), '512', '1000'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    const lines = r.stdout.trim().split('\n');
    process.stdout.write(lines.slice(0, -1).map((l) => `  ${l}`).join('\n') + '\n');
    if (r.status === 0) results.zeroShotSteps = JSON.parse(lines[lines.length - 1]);
  }
  {
    // The streamed judgement (what eval runs at this size: float16 rows, three products, no N x K matrix), in its own
    // process so that its peak RSS is its own.
    log('  -- streamed judgement (tools/bench-zeroshot.ts --streamed)');
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-zeroshot.ts'), String(rows), '512', '1000', '--streamed'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    const lines = r.stdout.trim().split('\n');
    process.stdout.write(lines.slice(0, -1).map((l) => `  ${l}`).join('\n') + '\n');
    if (r.status === 0) results.zeroShotStreamed = JSON.parse(lines[lines.length - 1]);
  }
  const vit = await ensureVitB32();
  // Two geometries: random class directions (the random-weight text tower then gives near-uniform softmax rows:
  // chance accuracy, half the rows label issues, the heaviest case for the label-issue passes), and rows aligned with
  // the model's own class embeddings (tools/make-embeddings-shards.ts --aligned: top-1 ~65%, ~6% label issues, as a
  // trained CLIP on a real dataset).
  results.zeroShotEndToEnd = {};
  for (const geometry of ['random', 'aligned']) {
    const aligned = geometry === 'aligned';
    const shardArgs = [String(rows), '512', '1000', '250000', 'f2', ...(aligned ? ['--aligned', vit] : [])];
    const shards = await generatedSet(`emb-${rows}-512${aligned ? '-aligned' : ''}`, `make-embeddings-shards ${shardArgs.join(' ')}`.replace(vit, 'vit-b-32'), `${rows} x 512 float16 shards (${geometry} geometry)`, async (dir) => {
      execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/make-embeddings-shards.ts'), dir, ...shardArgs], { cwd: ROOT, stdio: 'inherit' });
    });
    // The CLI's main() in a wrapper that prints its CPU time and peak RSS (VmHWM, worker threads included) last.
    const wrapper = `require(${JSON.stringify(CLI)}).main(process.argv.slice(1)).then((c) => { const u = process.cpuUsage(); const hwm = Number(/VmHWM:\\s*(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]); process.stderr.write('\\n' + JSON.stringify({ cpuS: (u.user + u.system) / 1e6, peakKiB: hwm }) + '\\n'); process.exitCode = c; })`;
    const out = path.join(BENCH, `zeroshot-${geometry}.json`);
    // The machine's speed just before (tools/machine-speed.ts: this VM's drifts by 10-20% within an hour).
    const speed = machineSpeed();
    const t0 = performance.now();
    // With the glibc settings the CLI would start itself again with (src/cli/relaunch.ts): what a user's run gets.
    const tunables = require(CLI).relaunchTunables(process.env, 'eval');
    const env = tunables ? { ...process.env, GLIBC_TUNABLES: tunables } : process.env;
    const r = spawnSync(process.execPath, ['-e', wrapper, 'eval', '--embeddings', shards, '--model', vit, '--no-cache', '--predictor', 'zero-shot', '--json', out], { encoding: 'utf8', maxBuffer: 1 << 26, env });
    const wallS = (performance.now() - t0) / 1000;
    if (r.status !== 0 && r.status !== 1) throw new Error(`eval --embeddings failed (${r.status}): ${r.stderr}`);
    const usage = JSON.parse(r.stderr.trim().split('\n').pop());
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    const embeddingsMiB = (rows * 512 * 2) / 2 ** 20;
    const top1 = report.metrics?.top1Accuracy ?? null;
    log(`  eval --embeddings, end to end, ${geometry} geometry (top-1 ${top1 === null ? '?' : (100 * top1).toFixed(1)}%, ${report.labelIssues.length} label issues): ${wallS.toFixed(1)} s wall, ${usage.cpuS.toFixed(1)} s CPU, peak RSS ${(usage.peakKiB / 1024).toFixed(0)} MiB (embeddings on disk ${embeddingsMiB.toFixed(0)} MiB float16; goals at 1,000,000 rows: 60 s and 2x the embeddings); load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; machine speed before: ${speed ? `${speed.msPerBlock} ms per 4,096-row block of the zero-shot head` : 'not measured'}`);
    results.zeroShotEndToEnd[geometry] = { rows, wallS, cpuS: usage.cpuS, peakRssMiB: usage.peakKiB / 1024, embeddingsMiB, top1, labelIssues: report.labelIssues.length, jsonBytes: fs.statSync(out).size, load: os.loadavg(), ...(speed ? { machineSpeed: speed } : {}) };
  }
}

async function main() {
  if (flag('--transformers-child')) {
    const i = args.indexOf('--transformers-child');
    return transformersJsChild(args[i + 1], args[i + 2], Number(args[i + 3]));
  }
  if (!fs.existsSync(CLI)) throw new Error('dist/cli.js missing: npm run bench builds it first');

  if (!flag('--skip-real-photos')) {
    const missing = missingPhotos();
    if (missing.length === 0) await realPhotos(await ensureVitB32());
    else log(`\n== Small datasets, whole process: skipped, ${missing.length} photograph(s) missing (${missing[0]}): apt-get install --no-install-recommends ${PHOTO_PACKAGES.join(' ')}`);
  }
  if (flag('--only-real-photos')) {
    fs.writeFileSync(path.join(BENCH, 'results-real-photos.json'), JSON.stringify(results, null, 1) + '\n');
    return;
  }

  if (!flag('--skip-throughput')) {
    const vit = await ensureVitB32();
    const photos = await ensureImages(`photos-${N_THROUGHPUT}`, N_THROUGHPUT, 10, 640, 480);
    await throughputAndIncremental(vit, photos);
  }

  log('\n== fp32 vs int8 agreement on the fixture example (tools/bench-precision.ts)');
  {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-precision.ts')], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench-precision failed: ${r.stderr}`);
    const a = JSON.parse(r.stdout.trim().split('\n').pop());
    log(`  ${a.sample} images: top-1 agreement ${(100 * a.top1Agreement).toFixed(1)}%, mean cosine ${a.meanCosine.toFixed(5)}, worst ${a.minCosine.toFixed(5)} (${a.worstImage})`);
    results.precisionAgreement = a;
  }

  if (!flag('--skip-memory')) {
    log('\n== Memory: peak RSS of eval (fixture model, no cache)');
    const tiny = path.join(ROOT, 'test/fixtures/tiny-clip');
    const small = await ensureShapesCopies(`mem-${quick ? 300 : 1000}`, quick ? 300 : 1000);
    const large = await ensureShapesCopies(`mem-${quick ? 3000 : 10000}`, quick ? 3000 : 10000);
    const m1 = runEval(small, tiny, ['--no-cache'], { memory: true });
    const m10 = runEval(large, tiny, ['--no-cache'], { memory: true });
    const describe = (m) => `${m.report.samples.length} images (top-1 ${(100 * m.report.metrics.top1Accuracy).toFixed(1)}%, ${m.report.labelIssues.length} label issues)`;
    log(`  ${describe(m1)}: ${m1.peakRssMiB.toFixed(0)} MiB; ${describe(m10)}: ${m10.peakRssMiB.toFixed(0)} MiB (+${((100 * (m10.peakRssMiB - m1.peakRssMiB)) / m1.peakRssMiB).toFixed(1)}%)`);
    results.memory = { small: { images: m1.report.samples.length, peakRssMiB: m1.peakRssMiB }, large: { images: m10.report.samples.length, peakRssMiB: m10.peakRssMiB } };
  }

  if (!flag('--skip-metrics')) {
    log('\n== Metrics and label issues at scale (tools/bench-metrics.ts)');
    const n = quick ? 100000 : 1000000;
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-metrics.ts'), String(n), '1000'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    process.stdout.write(r.stdout.split('\n').map((l) => `  ${l}`).join('\n') + '\n');
    results.metricsBench = r.stdout;
  }

  if (!flag('--skip-predictors')) {
    log('\n== Predictors on embeddings vs scikit-learn (tools/bench-predictors.ts)');
    const sizes = quick ? ['5000', '512', '50', '--ann', '20000'] : ['20000', '512', '100', '--ann', '100000'];
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-predictors.ts'), ...sizes], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    process.stdout.write(r.stdout.split('\n').map((l) => `  ${l}`).join('\n') + '\n');
    results.predictorsBench = r.stdout;
  }

  if (!flag('--skip-duplicates')) {
    log('\n== Near-duplicate groups at scale (tools/bench-duplicates.ts)');
    results.duplicates = [];
    // Two sizes, each in its own process, so the peak resident sets show how memory grows with N.
    for (const n of quick ? [25000] : [25000, 100000]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-duplicates.ts'), String(n), '512'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
      const lines = r.stdout.trim().split('\n');
      process.stdout.write(lines.slice(0, -1).map((l) => `  ${l}`).join('\n') + '\n');
      if (r.status === 0) results.duplicates.push(JSON.parse(lines[lines.length - 1]));
    }
  }

  if (!flag('--skip-text')) {
    log('\n== Text tower: 1,000 prompts at 77 tokens and trimmed, side by side (tools/bench-text.ts)');
    const vit = await ensureVitB32();
    results.textTower = [];
    for (const extra of [[], ['--quantized']]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-text.ts'), vit, '--prompts', '1000', ...extra], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
      if (r.status !== 0) throw new Error('bench-text failed');
      const t = JSON.parse(r.stdout.trim().split('\n').pop());
      log(`  ${t.quantized ? 'int8' : 'fp32'}: ${t.prompts} prompts of ${t.tokens.min}-${t.tokens.max} tokens: 77 tokens ${(t.at77Ms / 1000).toFixed(2)} s, trimmed ${(t.trimmedMs / 1000).toFixed(2)} s (${t.speedup}x), worst cosine ${t.trimmedVs77.worstCosine.toFixed(7)} (load ${t.loadavg[0]})`);
      results.textTower.push(t);
    }
  }

  if (!flag('--skip-zeroshot')) await zeroShotAtScale();

  if (!flag('--skip-live')) {
    log('\n== Results while running: time to the first label issue (tools/bench-live.ts)');
    const vit = await ensureVitB32();
    const n = quick ? 1000 : 10000;
    const photos = await ensureImages(`photos-${n}`, n, 10, 640, 480);
    results.live = [];
    for (const extra of [[], ['--cold-sessions']]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/bench-live.ts'), photos, vit, ...extra], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
      if (r.status !== 0) throw new Error('bench-live failed');
      const a = JSON.parse(r.stdout.trim().split('\n').pop());
      log(`  ${a.images} images, sessions ${a.sessions}: first provisional result ${(a.firstProvisionalMs / 1000).toFixed(2)} s (${a.firstProvisionalDone} done), first label issue ${(a.firstIssueMs / 1000).toFixed(2)} s (${a.firstIssueCount} issues over ${a.firstIssueDone} images, ${a.predictor}); cancel took ${a.cancelMs} ms`);
      results.live.push(a);
    }
  }

  fs.writeFileSync(path.join(BENCH, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  log(`\nResults written to ${path.relative(ROOT, path.join(BENCH, 'results.json'))}`);
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
