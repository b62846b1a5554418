/**
 * The recent runs kept per dataset across sessions for "Compare with..." (extension/runHistoryModel.ts rules,
 * extension/runHistory.ts files): newest first, at most HISTORY_LIMIT, pruned on disk, tolerant of a damaged index.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBaseline } from '../../src/core/baseline';
import { compareRuns } from '../../src/core/compare';
import { addRun, describeRun, entryOf, HISTORY_LIMIT, historyFolderName, parseHistoryIndex, runFileName, runsToOffer, strayFiles, type HistoryEntry } from '../../src/extension/runHistoryModel';
import { RunHistory } from '../../src/extension/runHistory';
import { makeReport, many } from './reportFixtures';

const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
const entry = (i: number): HistoryEntry => ({ file: runFileName(at(i)), createdAt: at(i), model: 'm', quantized: false, templates: 'simple', predictor: 'zero-shot', images: 10, top1Accuracy: 0.5 });

test('addRun: newest first, a run recorded twice kept once, at most the limit; the dropped runs\' files to delete', () => {
  let index = addRun(undefined, '/d', entry(1)).index;
  for (let i = 2; i <= HISTORY_LIMIT; i++) {
    const r = addRun(index, '/d', entry(i));
    assert.deepEqual(r.remove, []);
    index = r.index;
  }
  assert.deepEqual(index.runs.map((r) => r.createdAt), [5, 4, 3, 2, 1].map(at));
  const again = addRun(index, '/d', entry(3));
  assert.deepEqual(again.index.runs.map((r) => r.createdAt), [5, 4, 3, 2, 1].map(at), 'the same run replaces itself');
  const sixth = addRun(index, '/d', entry(6));
  assert.deepEqual(sixth.index.runs.map((r) => r.createdAt), [6, 5, 4, 3, 2].map(at));
  assert.deepEqual(sixth.remove, [runFileName(at(1))]);
  // An older run recorded late (a clock change): placed by its time, dropped at once when the history is full.
  const late = addRun(sixth.index, '/d', entry(0));
  assert.deepEqual(late.remove, [runFileName(at(0))]);
  assert.equal(addRun(index, '/d', entry(9), 2).index.runs.length, 2);
  // Another dataset's index is not mixed in.
  assert.deepEqual(addRun(index, '/other', entry(7)).index.runs.map((r) => r.createdAt), [at(7)]);
});

test('names and the picker lines', () => {
  assert.equal(runFileName('2026-01-01T00:05:00.000Z'), 'run-20260101T000500000Z.json');
  assert.match(historyFolderName('/d'), /^[0-9a-f]{24}$/);
  assert.notEqual(historyFolderName('/d'), historyFolderName('/e'));
  const report = makeReport(['a', 'b'], [...many('a', 4, 3, 'b'), ...many('b', 4, 4, 'a')], { model: 'clip-vit-base-patch16', templates: 'imagenet80', predictor: 'knn' });
  const e = entryOf(makeBaseline(report), report.createdAt);
  assert.deepEqual(e, { file: runFileName(report.createdAt), createdAt: report.createdAt, model: 'clip-vit-base-patch16', quantized: false, templates: 'imagenet80', predictor: 'knn', images: 8, top1Accuracy: 0.875 });
  assert.deepEqual(describeRun(e, (iso) => iso.slice(0, 10)), { label: '$(history) Run of 2025-01-01', description: 'model clip-vit-base-patch16 · top-1 87.5% · 8 images · templates imagenet80 · knn' });
  const index = { root: '/d', runs: [entry(3), entry(2), entry(1)] };
  assert.deepEqual(runsToOffer(index, [at(3), at(1)]).map((r) => r.createdAt), [at(2)]);
});

test('parseHistoryIndex: another dataset\'s or broken index is none; malformed entries (and foreign file names) dropped', () => {
  const good = { root: '/d', runs: [entry(2), entry(1)] };
  assert.deepEqual(parseHistoryIndex(JSON.stringify(good), '/d'), good);
  assert.equal(parseHistoryIndex(JSON.stringify(good), '/e'), undefined);
  assert.equal(parseHistoryIndex('{"root": "/d", "runs": [', '/d'), undefined);
  assert.equal(parseHistoryIndex('[]', '/d'), undefined);
  const bad = { root: '/d', runs: [entry(2), { ...entry(1), file: '../../etc/passwd' }, { ...entry(3), images: '3' }, null] };
  assert.deepEqual(parseHistoryIndex(JSON.stringify(bad), '/d')?.runs, [entry(2)]);
  assert.deepEqual(strayFiles(good, ['index.json', runFileName(at(2)), runFileName(at(1)), 'run-x.json.tmp', 'run-old.json', 'notes.txt']), ['run-x.json.tmp', 'run-old.json']);
});

test('RunHistory: runs kept on disk across instances (sessions), pruned to the limit, loadable for a comparison', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-history-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const log = { warn: (m: string) => void warnings.push(m) };
  const runs = [0, 1, 2, 3].map((i) => ({ ...makeReport(['a', 'b'], [...many('a', 4, i, 'b'), ...many('b', 4, 4, 'a')]), createdAt: at(i) }));
  const first = new RunHistory(dir, log, 3);
  for (const r of runs) first.record(r);
  await first.flush();
  const later = new RunHistory(dir, log, 3);
  const kept = await later.list('/d');
  assert.deepEqual(kept.map((e) => e.createdAt), [3, 2, 1].map(at));
  const folder = path.join(dir, historyFolderName('/d'));
  assert.deepEqual(fs.readdirSync(folder).sort(), ['index.json', ...[1, 2, 3].map((i) => runFileName(at(i)))].sort(), 'the oldest run deleted');
  const loaded = await later.load('/d', kept[2] as HistoryEntry);
  assert.deepEqual(loaded, makeBaseline(runs[1]!));
  assert.equal(compareRuns(loaded, makeBaseline(runs[3]!)).headline[0]?.delta, 0.25);
  assert.deepEqual(await later.list('/elsewhere'), []);
  // A damaged index: the history starts again, no error; leftovers are removed on the next record.
  fs.writeFileSync(path.join(folder, 'index.json'), '{');
  assert.deepEqual(await later.list('/d'), []);
  later.record({ ...runs[0]!, createdAt: at(9) });
  await later.flush();
  assert.deepEqual(fs.readdirSync(folder).sort(), ['index.json', runFileName(at(9))]);
  assert.deepEqual(warnings, []);
  // An unwritable folder: a warning in the log, not a failure.
  const blocked = new RunHistory(path.join(dir, 'index.json-file'), log);
  fs.writeFileSync(path.join(dir, 'index.json-file'), '');
  blocked.record(runs[0]!);
  await blocked.flush();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /could not keep the run in the history/);
});
