import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer, KeyedRunner, ModelPool, type Timers } from '../../src/extension/enginePool';

/** Manual timers: `advance(ms)` fires what is due, in order. */
class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  get pending(): number {
    return this.due.size;
  }
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const ready = [...this.due.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!ready) break;
      this.due.delete(ready[0]);
      this.now = ready[1].at;
      ready[1].fn();
    }
    this.now = until;
  }
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

test('KeyedRunner: never two runs of one key at once; refuse answers busy; other keys run in parallel', async () => {
  const runner = new KeyedRunner();
  const gate = deferred();
  let active = 0;
  let maxActive = 0;
  const task = async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    await gate.promise;
    active--;
    return 'ok';
  };
  const first = runner.run('a', task, 'refuse');
  assert.equal(runner.isRunning('a'), true);
  assert.deepEqual(await runner.run('a', task, 'refuse'), { status: 'busy' });
  const other = runner.run('b', task, 'refuse');
  await tick();
  assert.equal(active, 2, 'a and b run together');
  gate.resolve();
  assert.deepEqual(await first, { status: 'done', value: 'ok' });
  assert.deepEqual(await other, { status: 'done', value: 'ok' });
  assert.equal(maxActive, 2);
  assert.equal(runner.isRunning('a'), false);
});

test('KeyedRunner: queued requests wait for the run in progress and coalesce (the newest wins)', async () => {
  const runner = new KeyedRunner();
  const order: string[] = [];
  const gate = deferred();
  const first = runner.run('k', async () => {
    order.push('start 1');
    await gate.promise;
    order.push('end 1');
    return 1;
  }, 'queue');
  const second = runner.run('k', async () => {
    order.push('run 2');
    return 2;
  }, 'queue');
  const third = runner.run('k', async () => {
    order.push('run 3');
    return 3;
  }, 'queue');
  assert.deepEqual(await second, { status: 'superseded' });
  gate.resolve();
  assert.deepEqual(await first, { status: 'done', value: 1 });
  assert.deepEqual(await third, { status: 'done', value: 3 });
  assert.deepEqual(order, ['start 1', 'end 1', 'run 3']);
});

test('KeyedRunner: a failing run frees the key and starts the queued one; cancel aborts and drops the queue', async () => {
  const runner = new KeyedRunner();
  const gate = deferred();
  const failing = runner.run('k', async () => {
    await gate.promise;
    throw new Error('boom');
  }, 'queue');
  const next = runner.run('k', async () => 'next', 'queue');
  gate.resolve();
  await assert.rejects(failing, /boom/);
  assert.deepEqual(await next, { status: 'done', value: 'next' });

  let signal: AbortSignal | undefined;
  const hold = deferred();
  const running = runner.run('k', async (s) => {
    signal = s;
    await hold.promise;
    return s.aborted;
  }, 'queue');
  const queued = runner.run('k', async () => 'never', 'queue');
  runner.cancel('k');
  assert.equal(signal?.aborted, true);
  assert.deepEqual(await queued, { status: 'cancelled' });
  hold.resolve();
  assert.deepEqual(await running, { status: 'done', value: true });
});

test('ModelPool: one load per key shared by concurrent users; disposed only after the idle timeout once unused', async () => {
  const timers = new FakeTimers();
  const loads: string[] = [];
  const disposed: string[] = [];
  const pool = new ModelPool<{ key: string }>({
    load: async (key) => {
      loads.push(key);
      await tick();
      return { key };
    },
    dispose: async (m) => {
      disposed.push(m.key);
    },
    idleMs: () => 1000,
    timers,
  });
  const [a, b] = await Promise.all([pool.acquire('m1'), pool.acquire('m1')]);
  assert.equal(a.model, b.model);
  assert.deepEqual(loads, ['m1']);
  a.release();
  a.release(); // idempotent
  assert.equal(timers.pending, 0, 'still used by b');
  b.release();
  assert.equal(timers.pending, 1);
  timers.advance(999);
  assert.deepEqual(disposed, []);
  const c = await pool.acquire('m1');
  assert.deepEqual(loads, ['m1'], 're-acquired before the timeout: no reload');
  assert.equal(timers.pending, 0, 'the idle timer is cleared');
  c.release();
  timers.advance(1000);
  await tick();
  assert.deepEqual(disposed, ['m1']);
  assert.equal(pool.isLoaded('m1'), false);
  await pool.acquire('m1');
  assert.deepEqual(loads, ['m1', 'm1'], 'loaded again after being released');
});

test('ModelPool: acquiring another model disposes unused ones at once; a failed load is not cached', async () => {
  const timers = new FakeTimers();
  const disposed: string[] = [];
  let fail = true;
  const pool = new ModelPool<string>({
    load: async (key) => {
      if (key === 'bad' && fail) throw new Error('cannot load');
      return key;
    },
    dispose: async (m) => {
      disposed.push(m);
    },
    idleMs: () => 60_000,
    timers,
  });
  const a = await pool.acquire('a');
  const b = await pool.acquire('b');
  assert.deepEqual(disposed, [], 'a is in use');
  a.release();
  const c = await pool.acquire('c');
  await tick();
  assert.deepEqual(disposed, ['a']);
  assert.deepEqual(pool.keys.sort(), ['b', 'c']);
  await assert.rejects(pool.acquire('bad'), /cannot load/);
  await tick();
  fail = false;
  const ok = await pool.acquire('bad');
  assert.equal(ok.model, 'bad');
  b.release();
  c.release();
  ok.release();
  await pool.dispose();
  assert.deepEqual(disposed.sort(), ['a', 'b', 'bad', 'c']);
  await assert.rejects(pool.acquire('a'), /disposed/);
});

test('ModelPool: an idle timeout of 0 releases the model as soon as it is unused', async () => {
  const disposed: string[] = [];
  const pool = new ModelPool<string>({ load: async (k) => k, dispose: async (m) => void disposed.push(m), idleMs: () => 0, timers: new FakeTimers() });
  const lease = await pool.acquire('x');
  lease.release();
  await tick();
  assert.deepEqual(disposed, ['x']);
});

test('Debouncer: runs once after the key has been quiet; keys are independent; cancel drops it', () => {
  const timers = new FakeTimers();
  const d = new Debouncer(timers);
  const runs: string[] = [];
  d.trigger('a', 100, () => runs.push('a'));
  timers.advance(50);
  d.trigger('a', 100, () => runs.push('a2'));
  d.trigger('b', 100, () => runs.push('b'));
  timers.advance(99);
  assert.equal(runs.length, 0);
  timers.advance(1);
  assert.deepEqual(runs, ['a2', 'b']);
  d.trigger('c', 10, () => runs.push('c'));
  d.cancel('c');
  timers.advance(100);
  assert.deepEqual(runs, ['a2', 'b']);
});
