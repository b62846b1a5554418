import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineDeferredJob, defineJob, setParallelism, sharedInt32, stopHelpers, threadCount, toSharedInt32 } from '../../src/core/parallel';

interface SquaresData {
  out: Int32Array;
}

// Defined here only: a helper thread does not know this kind, fails its units, and the caller runs them again.
const runSquares = defineJob<SquaresData>('test-squares', (data, unit) => {
  data.out[unit] = unit * unit + (data.out[unit] === 0 ? 0 : 1_000_000); // a unit run twice on the caller would show
});

test('a job runs each unit once on the caller when it is small or has no helpers', () => {
  const data = { out: sharedInt32(50) };
  runSquares(data, 50, 10, true); // below the parallel threshold
  assert.deepEqual(Array.from(data.out), Array.from({ length: 50 }, (_, u) => u * u));
  const local = { out: new Int32Array(7) };
  runSquares(local, 7, 1e12, false); // data not in shared memory: never posted
  assert.deepEqual(Array.from(local.out), [0, 1, 4, 9, 16, 25, 36]);
});

test('units a helper fails are run again by the caller', () => {
  try {
    setParallelism({ threads: 2, minWork: 0, callerRuns: false });
    const data = { out: sharedInt32(20) };
    runSquares(data, 20, 1e9, true);
    assert.deepEqual(Array.from(data.out), Array.from({ length: 20 }, (_, u) => u * u));
    setParallelism({ threads: 2, minWork: 0 });
    const again = { out: sharedInt32(300) };
    runSquares(again, 300, 1e9, true);
    assert.deepEqual(Array.from(again.out), Array.from({ length: 300 }, (_, u) => u * u));
  } finally {
    setParallelism({});
    stopHelpers();
  }
});

test('thread count: override, CLIP_LENS_THREADS, else the CPU count (at most 4); bad overrides are rejected', () => {
  const saved = process.env.CLIP_LENS_THREADS;
  try {
    setParallelism({ threads: 3 });
    assert.equal(threadCount(), 3);
    setParallelism({});
    process.env.CLIP_LENS_THREADS = '1';
    assert.equal(threadCount(), 1);
    process.env.CLIP_LENS_THREADS = 'many';
    assert.ok(threadCount() >= 1 && threadCount() <= 4);
    assert.throws(() => setParallelism({ threads: 0 }), RangeError);
    assert.throws(() => setParallelism({ threads: 1.5 }), RangeError);
  } finally {
    if (saved === undefined) delete process.env.CLIP_LENS_THREADS;
    else process.env.CLIP_LENS_THREADS = saved;
    setParallelism({});
  }
});

test('toSharedInt32 keeps a shared Int32Array and copies anything else into shared memory', () => {
  const shared = sharedInt32(3);
  assert.equal(toSharedInt32(shared), shared);
  const copy = toSharedInt32([4, 5, 6]);
  assert.ok(copy.buffer instanceof SharedArrayBuffer);
  assert.deepEqual(Array.from(copy), [4, 5, 6]);
  const plain = new Int32Array([7, 8]);
  const copied = toSharedInt32(plain);
  assert.notEqual(copied, plain);
  assert.deepEqual(Array.from(copied), [7, 8]);
});

// Also unknown to the helpers: their units fail there and the finish runs them on the caller.
const startSquares = defineDeferredJob<SquaresData>('test-squares-deferred', (data, unit) => {
  data.out[unit] = unit * unit + (data.out[unit] === 0 ? 0 : 1_000_000);
});

test('a deferred job: nothing guaranteed before its finish, every unit exactly once after it (helpers or not)', async () => {
  try {
    for (const threads of [1, 2]) {
      setParallelism({ threads, minWork: 0 });
      const data = { out: sharedInt32(40) };
      const finish = startSquares(data, 40, 1e9, true);
      await new Promise((r) => setTimeout(r, 20)); // the caller busy elsewhere meanwhile
      finish();
      assert.deepEqual(Array.from(data.out), Array.from({ length: 40 }, (_, u) => u * u), `threads ${threads}`);
    }
    // Without helpers the units wait for the finish.
    setParallelism({ threads: 1 });
    const data = { out: sharedInt32(3) };
    const finish = startSquares(data, 3, 1e9, true);
    assert.deepEqual(Array.from(data.out), [0, 0, 0]);
    finish();
    assert.deepEqual(Array.from(data.out), [0, 1, 4]);
  } finally {
    setParallelism({});
    stopHelpers();
  }
});
