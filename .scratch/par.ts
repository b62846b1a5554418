import * as ort from 'onnxruntime-node';
import { logisticStepModelBytes } from '/work/wt/p-probe/src/core/onnxMatMul';
let state = 12345;
const uniform = () => { state ^= state << 13; state ^= state >>> 17; state ^= state << 5; return ((state >>> 0) + 0.5) / 4294967296; };
const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
const m = 16000, dim = 512, k = 100;
async function main() {
  const xs = Float32Array.from({ length: m * dim }, normal);
  const w = Float32Array.from({ length: dim * k }, () => normal() * 0.01);
  const b = new Float32Array(k);
  const y = new Float32Array(m * k); for (let i = 0; i < m; i++) y[i * k + (i % k)] = 1;
  const feeds = () => ({ X: new ort.Tensor('float32', xs, [m, dim]), W: new ort.Tensor('float32', w, [k, dim]), b: new ort.Tensor('float32', b, [k]), Y: new ort.Tensor('float32', y, [m, k]) });
  const two = await ort.InferenceSession.create(logisticStepModelBytes(), { executionProviders: ['cpu'] });
  const twoNoSpin = await ort.InferenceSession.create(logisticStepModelBytes(), { executionProviders: ['cpu'], extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const one = [0, 1].map(() => ort.InferenceSession.create(logisticStepModelBytes(), { executionProviders: ['cpu'], intraOpNumThreads: 1 }));
  const ones = await Promise.all(one);
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    for (let i = 0; i < 4; i++) await two.run(feeds());
    const a = performance.now() - t; t = performance.now();
    for (let i = 0; i < 4; i++) await twoNoSpin.run(feeds());
    const a2 = performance.now() - t; t = performance.now();
    for (let i = 0; i < 2; i++) await Promise.all(ones.map((s) => s.run(feeds())));
    const c = performance.now() - t;
    console.log(`4 steps: 2-thread session ${a.toFixed(0)} ms, 2-thread no spinning ${a2.toFixed(0)} ms, two 1-thread sessions concurrently ${c.toFixed(0)} ms`);
  }
}
main();
