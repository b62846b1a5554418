/**
 * Text search over a dataset's images: the query's CLIP text embedding against every image embedding, ranked by
 * cosine with the kNN index (neighbours.ts). Image embeddings come from the embedding cache the evaluation fills
 * (same namespace: same model graph and preprocessing), so after `clip-lens eval` no image is inferred again; images
 * not yet cached are inferred once and cached. The query text is embedded as written (no prompt template) and cached too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClipLensError, throwIfAborted } from './errors';
import { EmbeddingCache, defaultEmbeddingCacheDir, sha256 } from './embeddingCache';
import { readDataset } from './dataset';
import { readProjectConfig } from './projectConfig';
import { NeighbourIndex } from './neighbours';
import { FILE_LIMITS, readRegularFile } from './fileSystem';
import { openImageCache } from './evaluate';
import type { ClipModel } from './runtime';
import type { Sample } from './types';

export interface SearchOptions {
  model: ClipModel;
  /** Cache root; null disables the cache (default: the user's cache folder). */
  cacheDir?: string | null;
  /** How many results (default 20; at most the number of readable images). */
  top?: number;
  /** Label file and columns, as for evaluation (default: the dataset's `.clip-lens.json`, else detected). */
  labelFile?: string;
  imageColumn?: string;
  labelColumn?: string;
  splitColumn?: string;
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface SearchHit {
  /** Image path relative to the dataset root, as in the report's `samples`. */
  path: string;
  /** Cosine between the query's and the image's CLIP embeddings. */
  score: number;
  label: string;
  split?: string;
}

export interface SearchResult {
  root: string;
  query: string;
  hits: SearchHit[];
  /** Images inferred by this search (0 after an evaluation with the same model and cache). */
  imagesComputed: number;
  imagesFromCache: number;
  /** Images that could not be read or decoded (left out). */
  failed: { path: string; message: string }[];
}

/** Image embeddings of a dataset's samples, from the cache or inferred (and cached). Rows are L2-normalised. */
export async function datasetImageEmbeddings(
  root: string,
  samples: Sample[],
  model: ClipModel,
  cache: EmbeddingCache | null,
  options: { batchSize?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ rows: (Float32Array | null)[]; computed: number; fromCache: number; failed: { path: string; message: string }[] }> {
  const rows: (Float32Array | null)[] = new Array(samples.length).fill(null);
  const failed: { path: string; message: string }[] = [];
  const pre = model.preprocessor;
  const perImage = 3 * pre.outputHeight * pre.outputWidth;
  const batchSize = Math.max(1, options.batchSize ?? 32);
  let computed = 0;
  let fromCache = 0;
  let done = 0;
  for (let start = 0; start < samples.length; start += batchSize) {
    throwIfAborted(options.signal);
    const chunk = samples.slice(start, start + batchSize).map((s, j) => ({ s, index: start + j }));
    const pixels = new Float32Array(chunk.length * perImage);
    const misses: { index: number; key: Buffer; slot: number }[] = [];
    await Promise.all(
      chunk.map(async ({ s, index }, slot) => {
        try {
          const bytes = await readRegularFile(path.join(root, s.path), { maxBytes: FILE_LIMITS.image, code: 'image-unreadable', what: 'the image' });
          const key = sha256(bytes);
          const hit = cache?.get(key);
          if (hit) {
            rows[index] = hit;
            fromCache++;
            return;
          }
          await pre.preprocess(bytes, pixels, slot * perImage, s.path);
          misses.push({ index, key, slot });
        } catch (e) {
          failed.push({ path: s.path, message: (e as Error).message });
        }
      }),
    );
    if (misses.length > 0) {
      misses.sort((a, b) => a.slot - b.slot);
      const packed = new Float32Array(misses.length * perImage);
      misses.forEach((m, j) => packed.set(pixels.subarray(m.slot * perImage, (m.slot + 1) * perImage), j * perImage));
      const { embeddings, dim } = await model.embedImages(packed, misses.length);
      misses.forEach((m, j) => {
        const e = embeddings.slice(j * dim, (j + 1) * dim);
        cache?.put(m.key, e);
        rows[m.index] = e;
      });
      computed += misses.length;
    }
    done += chunk.length;
    options.onProgress?.(done, samples.length);
  }
  await cache?.flush();
  for (let i = 0; i < rows.length; i++) if (rows[i]) rows[i] = normalised(rows[i]!);
  failed.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { rows, computed, fromCache, failed };
}

function normalised(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * inv;
  return out;
}

/** The query's L2-normalised text embedding (cached by text). */
export async function queryEmbedding(model: ClipModel, text: string, cache: EmbeddingCache | null): Promise<Float32Array> {
  const key = sha256(text);
  const hit = cache?.get(key);
  if (hit) return normalised(hit);
  const { embeddings, dim } = await model.embedTexts([text]);
  const e = embeddings.slice(0, dim);
  cache?.put(key, e);
  await cache?.flush();
  return normalised(e);
}

/** The dataset's images ranked by cosine to `text`, best first (ties: dataset order). */
export async function searchDataset(target: string, text: string, options: SearchOptions): Promise<SearchResult> {
  if (text.trim() === '') throw new ClipLensError('search-empty-query', 'the search text is empty');
  const top = options.top ?? 20;
  if (!Number.isInteger(top) || top < 1) throw new ClipLensError('search-bad-top', `top must be an integer >= 1, got ${top}`);
  const abs = path.resolve(target);
  const st = await fs.promises.stat(abs).catch(() => null);
  if (!st) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: target });
  const configRoot = st.isDirectory() ? abs : path.dirname(abs);
  const { config } = await readProjectConfig(configRoot);
  const labels = config.labels ?? {};
  const dataset = await readDataset(abs, {
    labelFile: options.labelFile ?? (labels.file && abs === configRoot ? path.resolve(configRoot, labels.file) : undefined),
    imageColumn: options.imageColumn ?? labels.imageColumn,
    labelColumn: options.labelColumn ?? labels.labelColumn,
    splitColumn: options.splitColumn ?? labels.splitColumn,
    signal: options.signal,
  });
  const { model } = options;
  const cacheRoot = options.cacheDir === undefined ? defaultEmbeddingCacheDir() : options.cacheDir;
  const open = (ns: string) => (cacheRoot ? EmbeddingCache.open(cacheRoot, ns).catch(() => null) : Promise.resolve(null));
  // The same namespaces as evaluateDataset's, so its cached embeddings are found here.
  const [imageCache, textCache] = await Promise.all([cacheRoot ? openImageCache(cacheRoot, model) : null, open(`text\0${model.textFingerprint}`)]);
  const [query, images] = await Promise.all([
    queryEmbedding(model, text, textCache),
    datasetImageEmbeddings(dataset.root, dataset.samples, model, imageCache, { batchSize: options.batchSize, signal: options.signal, onProgress: options.onProgress }),
  ]);
  const readable = images.rows.map((r, i) => (r ? i : -1)).filter((i) => i >= 0);
  const hits: SearchHit[] = [];
  if (readable.length > 0) {
    const dim = query.length;
    const matrix = new Float32Array(readable.length * dim);
    readable.forEach((i, j) => {
      const row = images.rows[i]!;
      if (row.length !== dim) throw new ClipLensError('search-dim-mismatch', `image embeddings have ${row.length} values, the text embedding ${dim}`);
      matrix.set(row, j * dim);
    });
    const k = Math.min(top, readable.length);
    const nb = NeighbourIndex.build(matrix, dim, { approximate: false }).search(query, k);
    for (let r = 0; r < k; r++) {
      const j = nb.indices[r];
      if (j < 0) break;
      const s = dataset.samples[readable[j]];
      hits.push({ path: s.path, score: nb.similarities[r], label: s.label, ...(s.split !== undefined ? { split: s.split } : {}) });
    }
  }
  return { root: dataset.root, query: text, hits, imagesComputed: images.computed, imagesFromCache: images.fromCache, failed: images.failed };
}
