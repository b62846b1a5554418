/**
 * Results while running: time to the first label issue of a run, with the model loaded, as the editor runs it
 * (core/run.ts planRun + executeRun with onProvisional; the dataset is read inside the timed span). Called by
 * tools/bench.mjs (section "Results while running"); the run is cancelled once the first label issue is in, and the
 * time the cancel takes is reported too.
 *
 *   node --import tsx tools/bench-live.ts <dataset> <model> [--cold-sessions] [--first-result]
 *
 * Without --cold-sessions the model's sessions are created before the clock starts (the editor's model kept loaded
 * from an earlier run); with it, only ClipModel.load ran (the vision session is created inside the run).
 * --first-result stops at the first provisional result whether or not it has a label issue (a random-weight model
 * finds none for a long time: its zero-shot probabilities are nearly uniform). Every run starts from an empty
 * embedding cache. Prints one JSON line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipModel } from '../src/core/runtime';
import { executeRun, planRun } from '../src/core/run';
import { CancelledError } from '../src/core/errors';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const [dataset, modelDir] = args.filter((a) => !a.startsWith('--'));
  if (!dataset || !modelDir) throw new Error('usage: bench-live.ts <dataset> <model> [--cold-sessions]');
  const coldSessions = args.includes('--cold-sessions');
  const firstResult = args.includes('--first-result');
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-bench-live-'));
  const model = await ClipModel.load(modelDir);
  if (!coldSessions) await model.prepare();
  // One bare batch of 32 through the vision session, on ready tensors, just before the run: what the machine gives
  // now (the run's first result needs one such batch), so figures taken under load can be read as a ratio.
  let batchMs: number | null = null;
  if (!coldSessions) {
    const pre = model.preprocessor;
    const pixels = new Float32Array(32 * 3 * pre.outputHeight * pre.outputWidth);
    const tb = performance.now();
    await model.embedImages(pixels, 32);
    batchMs = performance.now() - tb;
  }
  // The evaluation modules are loaded (as in an editor that has run before; tsx would otherwise compile them inside
  // the timed span).
  await import('../src/core/evaluate');
  const controller = new AbortController();
  const t0 = performance.now();
  let first: { ms: number; done: number } | undefined;
  let firstIssue: { ms: number; done: number; issues: number; total: number; predictor: string } | undefined;
  let abortedAt = 0;
  let total = 0;
  try {
    const plan = await planRun({ target: dataset, cacheDir: cache, batchSize: 32 });
    const planMs = performance.now() - t0;
    total = plan.dataset.samples.length;
    await executeRun(plan, {
      model,
      signal: controller.signal,
      onProvisional: (r) => {
        const ms = performance.now() - t0;
        first ??= { ms, done: r.provisional!.done };
        process.stderr.write(`  provisional at ${(ms / 1000).toFixed(2)} s: ${r.provisional!.done} of ${r.provisional!.total} done, ${r.labelIssues.length} label issues\n`);
        if (!firstIssue && r.labelIssues.length > 0) firstIssue = { ms, done: r.provisional!.done, issues: r.labelIssues.length, total: r.provisional!.total, predictor: r.predictor?.used ?? '' };
        if ((firstIssue || firstResult) && !abortedAt) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    }).catch((e: unknown) => {
      if (!(e instanceof CancelledError)) throw e;
    });
    const cancelMs = abortedAt ? performance.now() - abortedAt : null;
    if (!first || (!firstIssue && !firstResult)) throw new Error('the run ended without a provisional label issue');
    process.stdout.write(
      `${JSON.stringify({
        images: total,
        sessions: coldSessions ? 'created in the run' : 'ready',
        planMs: Math.round(planMs),
        batchMs: batchMs === null ? null : Math.round(batchMs),
        firstProvisionalMs: Math.round(first!.ms),
        firstProvisionalDone: first!.done,
        firstIssueMs: firstIssue ? Math.round(firstIssue.ms) : null,
        firstIssueDone: firstIssue?.done ?? null,
        firstIssueCount: firstIssue?.issues ?? 0,
        predictor: firstIssue?.predictor ?? null,
        cancelMs: cancelMs === null ? null : Math.round(cancelMs),
      })}\n`,
    );
  } finally {
    await model.dispose();
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench-live: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
