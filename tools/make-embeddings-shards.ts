/**
 * Writes synthetic clip-retrieval shards for measuring `clip-lens eval --embeddings` at scale:
 *   node --import tsx tools/make-embeddings-shards.ts OUT ROWS [DIM=64] [CLASSES=16] [SHARD_ROWS=250000] [f2|f4]
 * Rows are noisy copies of one random direction per class, under /bench/<class>/<n>.jpg (images not on disk, so
 * --verify is skipped). Not part of the test suite.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

async function main(): Promise<void> {
  const [out, rowsArg, dimArg = '64', classesArg = '16', shardArg = '250000', dtype = 'f2'] = process.argv.slice(2);
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
  const centres = Array.from({ length: k }, () => Float32Array.from({ length: dim }, rand));
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
      for (let j = 0; j < dim; j++) {
        const v = (centre[j] as number) + 0.5 * rand();
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

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
