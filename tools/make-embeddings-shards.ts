/**
 * Writes synthetic clip-retrieval shards for measuring `clip-lens eval --embeddings` at scale:
 *   node --import tsx tools/make-embeddings-shards.ts OUT ROWS [DIM=64] [CLASSES=16] [SHARD_ROWS=250000] [f2|f4]
 *     [--aligned MODEL_DIR]
 * Rows are noisy copies of one random direction per class, under /bench/<class>/<n>.jpg (images not on disk, so
 * --verify is skipped). Not part of the test suite.
 *
 * --aligned MODEL_DIR: "trained-like" geometry instead. The class directions come from MODEL_DIR's text tower (the
 * prompts `eval` embeds for the folders class_0000 ..., default templates), so zero-shot on these rows behaves like a
 * trained CLIP on a real dataset: a peaked softmax, a top-1 in the 60-80% range, confusions between pairs of classes
 * and about 3% of rows placed in another class's direction (label errors). Random directions (the default) against a
 * random-weight text tower give near-uniform softmax rows instead (chance accuracy, half the rows label issues),
 * which no real dataset produces.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const a = argv.indexOf('--aligned');
  const alignedModel = a >= 0 ? argv[a + 1] : undefined;
  if (a >= 0) argv.splice(a, 2);
  const [out, rowsArg, dimArg = '64', classesArg = '16', shardArg = '250000', dtype = 'f2'] = argv;
  if (!out || !rowsArg) throw new Error('usage: make-embeddings-shards.ts OUT ROWS [DIM] [CLASSES] [SHARD_ROWS] [f2|f4]');
  const rows = Number(rowsArg);
  const dim = Number(dimArg);
  const k = Number(classesArg);
  const shardRows = Number(shardArg);
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  fs.mkdirSync(path.join(out, 'img_emb'), { recursive: true });
  fs.mkdirSync(path.join(out, 'metadata'), { recursive: true });
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) * 2 - 1;
  const centres = alignedModel ? await alignedCentres(alignedModel, k, dim) : Array.from({ length: k }, () => Float32Array.from({ length: dim }, rand));
  /** Aligned geometry: each row's direction (see the module comment) into `row`. */
  const row = new Float32Array(dim);
  const confuser = Int32Array.from({ length: k }, (_, c) => (c * 7 + 3) % k);
  const alignedRow = (c: number): void => {
    // 3% of rows sit in another class's direction (a label error); the others mix in their class's confuser.
    const wrong = Math.abs(rand()) < 0.03;
    const own = centres[wrong ? Math.floor(Math.abs(rand()) * k) % k : c] as Float32Array;
    const other = centres[confuser[c] as number] as Float32Array;
    const mix = wrong ? 0 : 1.5 * Math.abs(rand()) ** 2;
    for (let j = 0; j < dim; j++) row[j] = (own[j] as number) + mix * (other[j] as number) + 0.9 * rand() * NOISE;
  };
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const half = (v: number) => {
    f[0] = v;
    const x = u[0] as number;
    const e = ((x >>> 23) & 0xff) - 112;
    return ((x >>> 16) & 0x8000) | (e <= 0 ? 0 : e >= 31 ? 0x7c00 : (e << 10) | ((x >>> 13) & 0x3ff));
  };
  for (let s = 0, start = 0; start < rows; s++, start += shardRows) {
    const n = Math.min(shardRows, rows - start);
    const size = dtype === 'f2' ? 2 : 4;
    let dict = `{'descr': '<${dtype}', 'fortran_order': False, 'shape': (${n}, ${dim}), }`;
    dict = dict.padEnd(128 - 10 - 1, ' ') + '\n';
    const buf = Buffer.alloc(128 + n * dim * size);
    buf.writeUInt8(0x93, 0);
    buf.write('NUMPY', 1, 'latin1');
    buf.writeUInt8(1, 6);
    buf.writeUInt16LE(dict.length, 8);
    buf.write(dict, 10, 'latin1');
    const paths: string[] = new Array(n);
    for (let r = 0; r < n; r++) {
      const c = (start + r) % k;
      const centre = centres[c] as Float32Array;
      if (alignedModel) alignedRow(c);
      for (let j = 0; j < dim; j++) {
        const v = alignedModel ? (row[j] as number) : (centre[j] as number) + 0.5 * rand();
        const off = 128 + (r * dim + j) * size;
        if (size === 2) buf.writeUInt16LE(half(v), off);
        else buf.writeFloatLE(v, off);
      }
      paths[r] = `/bench/class_${String(c).padStart(4, '0')}/${start + r}.jpg`;
    }
    fs.writeFileSync(path.join(out, 'img_emb', `img_emb_${s}.npy`), buf);
    fs.writeFileSync(path.join(out, 'metadata', `metadata_${s}.parquet`), Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'image_path', data: paths, type: 'STRING' }] })));
  }
}

/** Noise per coordinate of an aligned row, against class directions of unit norm. */
const NOISE = 0.02;

/**
 * Unit class directions from the model's text tower. A random-weight tower's class texts share most of their
 * direction (cosines 0.83-0.99), so each class's deviation from the mean d_c is used, plus twice its whitened
 * direction (C^-1 d_c, C the deviations' covariance with a small ridge, unit norm): the deviation alone lets classes
 * with a large deviation win the rows of their neighbours (top-1 75% on the noiseless directions), the whitened
 * direction evens the margins (94%; cosine gap to the best other class about 0.02, 2 logits at scale 100).
 */
async function alignedCentres(modelDir: string, k: number, dim: number): Promise<Float32Array[]> {
  const { loadModel } = await import('../src/core/run');
  const { resolveTemplates, promptsForClass } = await import('../src/core/prompts');
  const { embedClassPrompts } = await import('../src/core/zeroShot');
  const model = await loadModel({ dir: path.resolve(modelDir), quantized: false });
  const { templates } = await resolveTemplates(undefined, '.');
  const names = Array.from({ length: k }, (_, c) => `class_${String(c).padStart(4, '0')}`);
  const text = await embedClassPrompts(model, names.map((c) => promptsForClass(c, templates)), null);
  if (text.dim !== dim) throw new Error(`the model's text embeddings are ${text.dim} wide, not ${dim}`);
  const T = text.matrix;
  const mean = new Float64Array(dim);
  for (let c = 0; c < k; c++) for (let x = 0; x < dim; x++) mean[x] += (T[c * dim + x] as number) / k;
  const D = new Float64Array(k * dim);
  for (let c = 0; c < k; c++) for (let x = 0; x < dim; x++) D[c * dim + x] = (T[c * dim + x] as number) - (mean[x] as number);
  const C = new Float64Array(dim * dim);
  for (let c = 0; c < k; c++) {
    for (let a = 0; a < dim; a++) {
      const da = D[c * dim + a] as number;
      for (let b = 0; b < dim; b++) C[a * dim + b] += (da * (D[c * dim + b] as number)) / k;
    }
  }
  let trace = 0;
  for (let a = 0; a < dim; a++) trace += C[a * dim + a] as number;
  for (let a = 0; a < dim; a++) C[a * dim + a] += (1e-3 * trace) / dim;
  // Cholesky C = L L^T, then C^-1 d_c by two triangular solves.
  const L = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j <= i; j++) {
      let s = C[i * dim + j] as number;
      for (let q = 0; q < j; q++) s -= (L[i * dim + q] as number) * (L[j * dim + q] as number);
      L[i * dim + j] = i === j ? Math.sqrt(s) : s / (L[j * dim + j] as number);
    }
  }
  const y = new Float64Array(dim);
  const w = new Float64Array(dim);
  const unit = (v: Float64Array): Float64Array => {
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  return Array.from({ length: k }, (_, c) => {
    const d = D.subarray(c * dim, (c + 1) * dim);
    for (let i = 0; i < dim; i++) {
      let s = d[i] as number;
      for (let q = 0; q < i; q++) s -= (L[i * dim + q] as number) * (y[q] as number);
      y[i] = s / (L[i * dim + i] as number);
    }
    for (let i = dim - 1; i >= 0; i--) {
      let s = y[i] as number;
      for (let q = i + 1; q < dim; q++) s -= (L[q * dim + i] as number) * (w[q] as number);
      w[i] = s / (L[i * dim + i] as number);
    }
    const u = unit(Float64Array.from(d));
    const whitened = unit(w);
    return Float32Array.from(unit(u.map((x, i) => x + WHITENED * (whitened[i] as number))));
  });
}

/** Weight of the whitened direction in an aligned class direction (see alignedCentres). */
const WHITENED = 2;

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
