/** Inputs for the tests of the zero-shot graphs (zeroShotSummary, zeroShotScan): exact ties on purpose. */
import type { ClassEmbeddings } from '../../src/core/zeroShot';

export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

export function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  return v.map((x) => x / Math.sqrt(s));
}

/**
 * k classes of width dim, where class 2c+1 repeats class 2c for c < dups (equal probabilities in every row), and m
 * unit rows, every `nearEvery`-th near a random class (often a duplicated one, so ties reach the top), the rest
 * random. `rand` goes on from where the rows left it.
 */
export function tiedProblem(seed: number, m: number, k: number, dim: number, dups: number, nearEvery: number): { classes: ClassEmbeddings; images: Float32Array; rand: () => number } {
  const rand = lcg(seed);
  const matrix = new Float32Array(k * dim);
  for (let c = 0; c < k; c++) {
    const src = c % 2 === 1 && c < 2 * dups ? matrix.slice((c - 1) * dim, c * dim) : unit(Float32Array.from({ length: dim }, () => rand() * 2 - 1));
    matrix.set(src, c * dim);
  }
  const classes: ClassEmbeddings = { matrix, dim, computed: 0, ms: 0 };
  const images = new Float32Array(m * dim);
  for (let r = 0; r < m; r++) {
    const near = Math.floor(rand() * k);
    const row = Float32Array.from({ length: dim }, (_, j) => (r % nearEvery === 0 ? (matrix[near * dim + j] as number) : 0) + (rand() * 2 - 1) * 0.3);
    images.set(unit(row), r * dim);
  }
  return { classes, images, rand };
}
