import * as ort from 'onnxruntime-node';
import * as fs from 'node:fs';
import { zeroShotSummaryModelBytes, zeroShotScanModelBytes, zeroShotModelBytes } from '../src/core/onnxMatMul';
const which = process.argv[2] ?? 'summary';
(async () => {
  const bytes = which === 'summary' ? zeroShotSummaryModelBytes(true) : which === 'scan' ? zeroShotScanModelBytes(true) : zeroShotModelBytes(true);
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 2, enableProfiling: true, profileFilePrefix: '/tmp/ortprof-' + which, extra: { session: { intra_op: { allow_spinning: '0' } } } } as any);
  const m = 4096, d = 512, n = 1000;
  const bits = new Uint16Array(m * d).map(() => 0x2000 + Math.floor(Math.random() * 0x1000) | (Math.random() < 0.5 ? 0x8000 : 0));
  const sc = new Float32Array(m).fill(0.05);
  const B = new Float32Array(d * n).map(() => (Math.random() - 0.5) * 0.1);
  const feeds: Record<string, ort.Tensor> = { A16: new ort.Tensor('float16', bits, [m, d]), SC: new ort.Tensor('float32', sc, [m, 1]), B: new ort.Tensor('float32', B, [d, n]), S: new ort.Tensor('float32', Float32Array.of(100), [1]) };
  for (const name of s.inputNames) if (!feeds[name]) {
    if (name === 'T') feeds.T = new ort.Tensor('int64', BigInt64Array.of(5n), [1]);
    else if (name === 'L') feeds.L = new ort.Tensor('int64', BigInt64Array.from({ length: m }, (_, i) => BigInt(i % n)), [m, 1]);
    else if (name === 'J') feeds.J = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [1, n]);
    else if (name === 'AX') feeds.AX = new ort.Tensor('int64', BigInt64Array.of(1n), [1]);
    else if (name === 'CUT') feeds.CUT = new ort.Tensor('float32', new Float32Array(n).fill(0.002), [1, n]);
    else console.log('input?', name, s.inputNames);
  }
  for (let i = 0; i < 5; i++) await s.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < 30; i++) await s.run(feeds);
  console.log(which, 'ms per run', ((performance.now() - t0) / 30).toFixed(1));
  (s as any).endProfiling?.(); await new Promise((r) => setTimeout(r, 200));
  const f = fs.readdirSync('/tmp').filter((x) => x.startsWith('ortprof-' + which)).map((x) => '/tmp/' + x).sort().pop() as string;
  const ev = JSON.parse(fs.readFileSync(f, 'utf8')) as { name: string; dur: number; cat: string; args?: { op_name?: string } }[];
  const by = new Map<string, number>();
  for (const e of ev) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) by.set(e.name, (by.get(e.name) ?? 0) + e.dur);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1])) console.log((v / 35 / 1000).toFixed(2).padStart(7), 'ms', k);
  fs.unlinkSync(f);
})();
