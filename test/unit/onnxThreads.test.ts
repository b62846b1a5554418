/**
 * The shared ONNX Runtime sessions (MatMul, zero-shot head, logistic step) take the thread count of `--threads` /
 * `clipLens.threads`: loadModel hands the model's count to onnxMatMul.ts, and a session is made again when it changes.
 * Counted as the process's OS threads (Linux /proc/self/task): an intra-op pool of N threads starts N - 1.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onnxLogisticStep, onnxMatMul, onnxZeroShot, setOnnxThreads, sharedSessionThreads } from '../../src/core/onnxMatMul';
import { loadModel } from '../../src/core/run';

const MODEL = path.join(__dirname, '../fixtures/tiny-clip');
const linux = fs.existsSync('/proc/self/task');
const osThreads = () => fs.readdirSync('/proc/self/task').length;

test('shared sessions are created with the set intra-op thread count, again when it changes', { skip: !linux && 'needs /proc/self/task' }, async (t) => {
  t.after(() => setOnnxThreads(undefined));
  // Warm up ONNX Runtime's process-wide state with a one-thread session.
  setOnnxThreads(1);
  const one = await onnxMatMul();
  assert.ok(one, 'onnxruntime-node loads');
  await one.run(new Float32Array(4), 2, 2, new Float32Array(4), 2);
  assert.equal(await onnxMatMul(), one, 'same count: the same session');

  for (const [get, threads] of [[onnxMatMul, 4], [onnxZeroShot, 3], [onnxLogisticStep, 5]] as const) {
    setOnnxThreads(threads);
    const before = osThreads();
    const session = await get();
    assert.ok(session);
    assert.equal(osThreads() - before, threads - 1, `${get.name}: ${threads} threads`);
    assert.equal(await get(), session);
  }
  setOnnxThreads(4);
  assert.notEqual(await onnxMatMul(), one, 'a new count: a new session');
  assert.throws(() => setOnnxThreads(0), /positive integer/);
});

test('loadModel passes its thread count (--threads, clipLens.threads) to the shared sessions', async (t) => {
  t.after(() => setOnnxThreads(undefined));
  const model = await loadModel({ dir: MODEL, quantized: undefined }, { threads: 2 });
  t.after(() => model.dispose());
  assert.equal(sharedSessionThreads(), 2);
  const other = await loadModel({ dir: MODEL, quantized: undefined });
  t.after(() => other.dispose());
  assert.equal(sharedSessionThreads(), undefined, 'no count given: ONNX Runtime default');
});
