/**
 * The scheduling pieces of the engine, generic and free of 'vscode' so they are unit-tested directly:
 * - KeyedRunner: at most one run per key (dataset) at a time; a second request is refused or queued (coalesced).
 * - ModelPool: one shared model per key (model spec), loaded on first use, released after an idle timeout.
 * - Debouncer: per-key trailing debounce (auto re-runs).
 */

/** Timers, injectable for tests. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // Never keep the extension host alive just for an idle timer.
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export type RunResult<T> =
  | { status: 'done'; value: T }
  /** Refused: a run for the key is in progress. */
  | { status: 'busy' }
  /** A queued request replaced by a newer one before it started. */
  | { status: 'superseded' }
  /** Cancelled (cancel/cancelAll) before it started. */
  | { status: 'cancelled' };

interface Queued {
  task: (signal: AbortSignal) => Promise<unknown>;
  resolve: (r: RunResult<unknown>) => void;
  reject: (e: unknown) => void;
}

/**
 * Runs tasks so that two tasks with the same key never overlap. `whenBusy: 'refuse'` answers `busy` while a task of
 * the key runs; `'queue'` runs the task after the current one, and a newer queued request replaces an older one
 * (which resolves `superseded`): re-runs triggered by a burst of saves collapse into one.
 */
export class KeyedRunner {
  private readonly running = new Map<string, AbortController>();
  private readonly queued = new Map<string, Queued>();

  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  hasQueued(key: string): boolean {
    return this.queued.has(key);
  }

  get runningKeys(): string[] {
    return [...this.running.keys()];
  }

  run<T>(key: string, task: (signal: AbortSignal) => Promise<T>, whenBusy: 'refuse' | 'queue'): Promise<RunResult<T>> {
    if (this.running.has(key)) {
      if (whenBusy === 'refuse') return Promise.resolve({ status: 'busy' });
      return new Promise<RunResult<T>>((resolve, reject) => {
        this.queued.get(key)?.resolve({ status: 'superseded' });
        this.queued.set(key, { task, resolve: resolve as (r: RunResult<unknown>) => void, reject });
      });
    }
    return this.start(key, task);
  }

  private start<T>(key: string, task: (signal: AbortSignal) => Promise<T>): Promise<RunResult<T>> {
    const controller = new AbortController();
    this.running.set(key, controller);
    const done = () => {
      if (this.running.get(key) === controller) this.running.delete(key);
      const next = this.queued.get(key);
      if (next) {
        this.queued.delete(key);
        this.start(key, next.task).then(next.resolve, next.reject);
      }
    };
    let p: Promise<T>;
    try {
      p = task(controller.signal);
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.then(
      (value) => {
        done();
        return { status: 'done' as const, value };
      },
      (e: unknown) => {
        done();
        throw e;
      },
    );
  }

  /** Aborts the running task of a key (its signal fires) and drops a queued one. */
  cancel(key: string): void {
    const q = this.queued.get(key);
    if (q) {
      this.queued.delete(key);
      q.resolve({ status: 'cancelled' });
    }
    this.running.get(key)?.abort();
  }

  cancelAll(): void {
    for (const key of new Set([...this.running.keys(), ...this.queued.keys()])) this.cancel(key);
  }
}

export interface ModelPoolOptions<M> {
  load: (key: string) => Promise<M>;
  dispose: (model: M, key: string) => Promise<void>;
  /** Milliseconds an unused model stays loaded (read at each release, so a settings change applies). */
  idleMs: () => number;
  timers?: Timers;
  /** Called when a model is loaded or released (e.g. to update a status display). */
  onChange?: () => void;
}

interface PoolEntry<M> {
  refs: number;
  loading: Promise<M>;
  model?: M;
  timer?: unknown;
}

export interface Lease<M> {
  readonly model: M;
  /** Gives the model back; idempotent. */
  release(): void;
}

/**
 * One shared model per key. `acquire` loads it on first use (concurrent acquirers share the load); the last
 * `release` starts the idle timer, after which the model is disposed. Acquiring a model disposes the *unused* models
 * of other keys at once, so switching models never keeps two large models in memory longer than needed.
 */
export class ModelPool<M> {
  private readonly entries = new Map<string, PoolEntry<M>>();
  private readonly timers: Timers;
  private disposed = false;

  constructor(private readonly options: ModelPoolOptions<M>) {
    this.timers = options.timers ?? realTimers;
  }

  /** Keys of the models loaded (or loading) now. */
  get keys(): string[] {
    return [...this.entries.keys()];
  }

  isLoaded(key: string): boolean {
    return this.entries.get(key)?.model !== undefined;
  }

  async acquire(key: string): Promise<Lease<M>> {
    if (this.disposed) throw new Error('the model pool is disposed');
    for (const [other, e] of [...this.entries]) {
      if (other !== key && e.refs === 0 && e.model !== undefined) void this.evict(other);
    }
    let entry = this.entries.get(key);
    if (!entry) {
      const loading = this.options.load(key);
      const created: PoolEntry<M> = { refs: 0, loading };
      entry = created;
      this.entries.set(key, created);
      loading.then(
        (m) => {
          created.model = m;
          this.options.onChange?.();
        },
        () => {
          if (this.entries.get(key) === created) this.entries.delete(key);
        },
      );
    }
    const e = entry;
    e.refs++;
    if (e.timer !== undefined) {
      this.timers.clear(e.timer);
      e.timer = undefined;
    }
    let model: M;
    try {
      model = await e.loading;
    } catch (err) {
      e.refs--;
      throw err;
    }
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        this.release(key, e);
      },
    };
  }

  private release(key: string, e: PoolEntry<M>): void {
    e.refs--;
    if (e.refs > 0 || this.entries.get(key) !== e) return;
    const ms = Math.max(0, this.options.idleMs());
    if (ms === 0) {
      void this.evict(key);
      return;
    }
    e.timer = this.timers.set(() => {
      e.timer = undefined;
      if (e.refs === 0) void this.evict(key);
    }, ms);
  }

  /** Disposes the model of a key now, whether or not it is in use (e.g. after its sessions failed). */
  async evict(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    if (e.timer !== undefined) this.timers.clear(e.timer);
    let model: M;
    try {
      model = await e.loading;
    } catch {
      return;
    }
    try {
      await this.options.dispose(model, key);
    } finally {
      this.options.onChange?.();
    }
  }

  /** Disposes the models nobody uses now. */
  async evictIdle(): Promise<void> {
    const idle = [...this.entries].filter(([, e]) => e.refs === 0).map(([k]) => k);
    await Promise.all(idle.map((k) => this.evict(k)));
  }

  /** Disposes every model; the pool cannot be used afterwards. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all([...this.entries.keys()].map((k) => this.evict(k).catch(() => undefined)));
  }
}

/** Per-key trailing debounce: `trigger` (re)starts the key's timer; `fn` runs once the key has been quiet for `ms`. */
export class Debouncer {
  private readonly pending = new Map<string, unknown>();

  constructor(private readonly timers: Timers = realTimers) {}

  trigger(key: string, ms: number, fn: () => void): void {
    const h = this.pending.get(key);
    if (h !== undefined) this.timers.clear(h);
    this.pending.set(
      key,
      this.timers.set(() => {
        this.pending.delete(key);
        fn();
      }, ms),
    );
  }

  isPending(key: string): boolean {
    return this.pending.has(key);
  }

  cancel(key: string): void {
    const h = this.pending.get(key);
    if (h !== undefined) this.timers.clear(h);
    this.pending.delete(key);
  }

  dispose(): void {
    for (const h of this.pending.values()) this.timers.clear(h);
    this.pending.clear();
  }
}
