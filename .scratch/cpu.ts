import * as ort from 'onnxruntime-node';
import { logisticStepModelBytes } from '../src/core/onnxMatMul';
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
  await two.run(feeds());
  const c0 = process.cpuUsage(); const t = performance.now();
  for (let i = 0; i < 10; i++) await two.run(feeds());
  const c = process.cpuUsage(c0);
  console.log(`ORT fused step: ${((c.user + c.system) / 1e4).toFixed(0)} ms CPU, ${((performance.now() - t) / 10).toFixed(0)} ms wall per step`);
}
main();
