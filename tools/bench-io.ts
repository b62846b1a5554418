/**
 * The input and output of `clip-lens eval --embeddings` at scale, each part alone (wall, heap, peak RSS):
 *
 *   node --expose-gc --import tsx tools/bench-io.ts DIR PART [MODEL=/work/bench/vit-b-32]
 *
 * DIR is a clip-retrieval folder (tools/make-embeddings-shards.ts; images not on disk). PART is one of
 *   read      readEmbeddingsDir: the layout, the parquet metadata, the Dataset
 *   stream    read + every row decoded and L2-normalised (forEachEmbedding)
 *   hashes    read + the perceptual hashes of the samples (pixelHashesOf; the images are not on disk)
 *   samples   read + the report's per-sample objects (as evaluate.ts makes them up to INLINE_SAMPLES_LIMIT samples,
 *             top-5 predictions): heap per sample
 *   columns   read + the same samples as columns (as evaluate.ts keeps them above that): heap per sample, and the
 *             sidecar written from them
 *   sidecar   read + samples + OUT.samples.parquet bytes (samplesParquet), next to the inline JSON of the samples
 * One JSON line on stdout. Not part of the test suite; run each part in its own process (`nice`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { forEachEmbedding, readEmbeddingsDir } from '../src/core/embeddingsDir';
import { PixelHashRows, pixelHashesOf } from '../src/core/perceptualHash';
import { ImagePreprocessor } from '../src/core/imagePreprocess';
import { readPreprocessorConfig } from '../src/core/preprocessorConfig';
import { attachSamples, samplesParquet, SampleTable } from '../src/core/reportSamples';
import { jsonReportChunks } from '../src/core/reportExport';
import type { EvalReport, ReportSample } from '../src/core/report';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const peakRssMiB = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : -1;
};
const heapMiB = () => {
  gc();
  return Math.round(process.memoryUsage().heapUsed / 2 ** 20);
};
const mib = (b: number) => Math.round(b / 2 ** 20);

async function main(): Promise<void> {
  const [dir, part, model = '/work/bench/vit-b-32'] = process.argv.slice(2);
  if (!dir || !part) throw new Error('usage: bench-io.ts DIR read|stream|hashes|samples|sidecar [MODEL]');
  const out: Record<string, unknown> = { dir: path.basename(dir), part };
  const heap0 = heapMiB();
  let t = performance.now();
  const { dataset, input } = await readEmbeddingsDir(dir);
  out.readMs = Math.round(performance.now() - t);
  out.rows = input.rows;
  out.samples = dataset.samples.length;
  out.datasetHeapMiB = heapMiB() - heap0;
  if (part === 'stream') {
    t = performance.now();
    let sum = 0;
    let bad = 0;
    await forEachEmbedding(input, (_s, e) => (sum += e[0] as number), () => bad++);
    out.streamMs = Math.round(performance.now() - t);
    out.bad = bad;
  } else if (part === 'hashes') {
    const pre = new ImagePreprocessor(await readPreprocessorConfig(path.join(model, 'preprocessor_config.json')));
    const rows = new PixelHashRows(dataset.samples.length, null);
    const sources = dataset.samples.map((s) => ({ file: path.join(dataset.root, s.path) }));
    t = performance.now();
    await pixelHashesOf(sources, rows, pre);
    out.hashesMs = Math.round(performance.now() - t);
    out.hashed = rows.ok.reduce((a, b) => a + b, 0);
    out.notOnDisk = rows.notOnDisk;
  } else if (part === 'samples' || part === 'sidecar') {
    const heap1 = heapMiB();
    t = performance.now();
    const classes = dataset.classes;
    // As evaluate.ts: one object per sample, then its top-5 predictions.
    const results: ReportSample[] = dataset.samples.map((s) => ({ path: s.path, label: s.label, ...(s.split !== undefined ? { split: s.split } : {}), predicted: [] }));
    results.forEach((r, i) => {
      r.predicted = [0, 1, 2, 3, 4].map((k) => ({ class: classes[(i + k * 7) % classes.length] as string, score: 1 / (k + 2) }));
    });
    out.samplesMs = Math.round(performance.now() - t);
    out.samplesHeapMiB = heapMiB() - heap1;
    out.heapPerSampleBytes = Math.round(((heapMiB() - heap1) * 2 ** 20) / results.length);
    if (part === 'sidecar') {
      const report = { dataset: { classes, counts: { samples: results.length } }, topK: 5, samples: results } as unknown as EvalReport;
      t = performance.now();
      const bytes = await samplesParquet(report);
      out.sidecarMs = Math.round(performance.now() - t);
      out.sidecarMiB = mib(bytes.length);
      t = performance.now();
      let jsonBytes = 0;
      for (const chunk of jsonReportChunks({ samples: results } as unknown as EvalReport, 1)) jsonBytes += Buffer.byteLength(chunk);
      out.jsonMs = Math.round(performance.now() - t);
      out.jsonMiB = mib(jsonBytes);
    }
  } else if (part === 'columns') {
    const heap1 = heapMiB();
    t = performance.now();
    const n = dataset.samples.length;
    const k = 5;
    const labelNames: string[] = [];
    const labelIdx = new Map<string, number>();
    const c = {
      paths: new Array<string>(n),
      labels: new Int32Array(n),
      splits: new Int32Array(n).fill(-1),
      sourceFile: new Int32Array(n).fill(-1),
      sourceLine: new Int32Array(n),
      topClass: new Int32Array(n * k),
      topScore: new Float64Array(n * k),
    };
    dataset.samples.forEach((s, i) => {
      c.paths[i] = s.path;
      let l = labelIdx.get(s.label);
      if (l === undefined) labelIdx.set(s.label, (l = labelNames.push(s.label) - 1));
      c.labels[i] = l;
      for (let r = 0; r < k; r++) {
        c.topClass[i * k + r] = (i + r * 7) % dataset.classes.length;
        // Scores as a softmax gives them: distinct float32 values.
        c.topScore[i * k + r] = Math.fround(Math.random() / (r + 1));
      }
    });
    out.columnsMs = Math.round(performance.now() - t);
    out.columnsHeapMiB = heapMiB() - heap1;
    out.heapPerSampleBytes = Math.round(((heapMiB() - heap1) * 2 ** 20 + Object.values(c).reduce((a, v) => a + ((v as { byteLength?: number }).byteLength ?? 0), 0)) / n);
    const table = SampleTable.fromColumns({
      ...c,
      n,
      k,
      classes: dataset.classes,
      labelNames,
      splitNames: [],
      sourceFiles: [],
      hashes: null,
      errors: new Map(),
      probabilities: null,
    });
    const report = { dataset: { classes: dataset.classes, counts: { samples: n } }, topK: k } as unknown as EvalReport;
    attachSamples(report, table);
    t = performance.now();
    const bytes = await samplesParquet(report);
    out.sidecarMs = Math.round(performance.now() - t);
    out.sidecarMiB = mib(bytes.length);
  } else if (part !== 'read') throw new Error(`unknown part ${part}`);
  out.heapMiB = heapMiB();
  out.peakRssMiB = peakRssMiB();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
