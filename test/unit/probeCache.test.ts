import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runPredictors } from '../../src/core/predictors';
import { computeMetrics } from '../../src/core/metrics';
import { ProbabilityMatrix } from '../../src/core/probabilities';
import { crossValidatedProbe } from '../../src/core/linearProbe';
import { PROBE_CACHE_MAX_ENTRIES, probeCacheKey, readCachedProbe, writeCachedProbe } from '../../src/core/probeCache';
import { rng } from '../fixtures/rng';

/** 4 classes x 12 samples in 8 dimensions; zero-shot at chance, so auto uses the probe. */
function input() {
  const r = rng(9);
  const dim = 8;
  const k = 4;
  const labels: number[] = [];
  const emb: number[] = [];
  const zs = new ProbabilityMatrix(k);
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < 12; i++) {
      labels.push(c);
      for (let d = 0; d < dim; d++) emb.push((d === c ? 2 : 0) + r() - 0.5);
      zs.push([0.25, 0.25, 0.25, 0.25]);
    }
  }
  const classes = ['a', 'b', 'c', 'd'];
  return { classes, labels, embeddings: Float32Array.from(emb), dim, zeroShot: zs, zeroShotMetrics: computeMetrics({ classes, labels, probs: zs }) };
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-probe-cache-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the probe cache: a second evaluation of the same embeddings reuses the probabilities; any change refits', async (t) => {
  const root = tmp(t);
  const first = await runPredictors({ ...input(), cacheRoot: root });
  assert.equal(first.report.linearProbe?.fromCache, false);
  assert.equal(first.report.linearProbe?.c, 10);
  assert.equal(first.report.linearProbe?.cChosenBy, 'default');
  assert.equal(fs.readdirSync(path.join(root, 'probe-v1')).length, 1);
  const second = await runPredictors({ ...input(), cacheRoot: root });
  assert.equal(second.report.linearProbe?.fromCache, true);
  assert.deepEqual(second.report, { ...first.report, linearProbe: { ...first.report.linearProbe!, fromCache: true } });
  assert.deepEqual(second.labelIssues, first.labelIssues);
  assert.deepEqual(second.warnings, first.warnings);

  // one embedding value changed, one label changed, C changed, folds changed: each is a new fit
  const moved = input();
  moved.embeddings[5] += 1e-3;
  assert.equal((await runPredictors({ ...moved, cacheRoot: root })).report.linearProbe?.fromCache, false);
  const relabelled = input();
  relabelled.labels[0] = 1;
  assert.equal((await runPredictors({ ...relabelled, cacheRoot: root })).report.linearProbe?.fromCache, false);
  const withC = await runPredictors({ ...input(), c: 1, cacheRoot: root });
  assert.equal(withC.report.linearProbe?.fromCache, false);
  assert.equal(withC.report.linearProbe?.cChosenBy, 'requested');
  assert.equal(withC.report.linearProbe?.c, 1);
  assert.equal((await runPredictors({ ...input(), folds: 3, cacheRoot: root })).report.linearProbe?.fromCache, false);
  assert.equal(fs.readdirSync(path.join(root, 'probe-v1')).length, 5);
  // no cache root: nothing written, nothing read
  assert.equal((await runPredictors({ ...input(), cacheRoot: null })).report.linearProbe?.fromCache, false);
});

test('the probe cache round-trips probabilities exactly and refuses a corrupt or mis-shaped entry', async (t) => {
  const root = tmp(t);
  const s = input();
  const probe = crossValidatedProbe(s.embeddings, s.dim, s.labels, 4, { folds: 5, c: 10 });
  const key = probeCacheKey({ embeddings: s.embeddings, dim: s.dim, labels: s.labels, classes: s.classes, folds: 5, c: 10, maxIterations: 300 });
  assert.ok(await writeCachedProbe(root, key, probe));
  const back = await readCachedProbe(root, key, s.labels, 4);
  assert.ok(back);
  assert.deepEqual(Array.from(back.probs), Array.from(probe.probs));
  assert.deepEqual(Array.from(back.foldOfSample), Array.from(probe.foldOfSample));
  assert.deepEqual(back.fits, probe.fits);
  assert.equal(back.c, 10);
  // another number of classes: refused (and removed)
  assert.equal(await readCachedProbe(root, key, s.labels, 5), null);
  assert.equal(fs.existsSync(path.join(root, 'probe-v1', `${key}.bin`)), false);
  // one flipped byte: checksum mismatch, refused
  await writeCachedProbe(root, key, probe);
  const file = path.join(root, 'probe-v1', `${key}.bin`);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 100] ^= 1;
  fs.writeFileSync(file, bytes);
  assert.equal(await readCachedProbe(root, key, s.labels, 4), null);
  // a folder where the cache would be: writing fails quietly
  const blocked = tmp(t);
  fs.writeFileSync(path.join(blocked, 'probe-v1'), 'not a folder');
  assert.equal(await writeCachedProbe(blocked, key, probe), false);
});

test('the probe cache keeps at most PROBE_CACHE_MAX_ENTRIES entries, the most recently used', async (t) => {
  const root = tmp(t);
  const s = input();
  const probe = crossValidatedProbe(s.embeddings, s.dim, s.labels, 4, { folds: 5, c: 10 });
  const keys = Array.from({ length: PROBE_CACHE_MAX_ENTRIES + 3 }, (_, i) => i.toString(16).padStart(64, '0'));
  for (const [i, key] of keys.entries()) {
    await writeCachedProbe(root, key, probe);
    const when = new Date(Date.now() - (keys.length - i) * 60_000);
    fs.utimesSync(path.join(root, 'probe-v1', `${key}.bin`), when, when);
  }
  const left = fs.readdirSync(path.join(root, 'probe-v1')).sort();
  assert.equal(left.length, PROBE_CACHE_MAX_ENTRIES);
  assert.deepEqual(left, keys.slice(3).map((k) => `${k}.bin`).sort());
});
