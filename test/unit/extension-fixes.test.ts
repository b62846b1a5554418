/**
 * Fixes (src/extension/fixes.ts) against the fake 'vscode' on a synthetic report (no model): bulk moves are one
 * WorkspaceEdit and one undo step, Undo Last Fix puts every image back, another file operation hands Ctrl+Z back to
 * the Explorer, bulk label changes and bulk ignores are one edit each; and the pure history (moveHistoryModel.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EvalReport } from '../../src/core/report';
import { FixHistory, HISTORY_LIMIT, moveMessage, undoPlan, type FileMove } from '../../src/extension/moveHistoryModel';
import { createFakeVscode, installFakeVscode } from './extension-fakeVscode';

let work: string;
let fake: ReturnType<typeof createFakeVscode>;
let uninstall: () => void;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-fixes-'));
  fake = createFakeVscode(work);
  uninstall = installFakeVscode(fake.vscode);
});

after(() => {
  uninstall();
  fs.rmSync(work, { recursive: true, force: true });
});

function folderReport(root: string, files: Record<string, string>): EvalReport {
  const classes = [...new Set(Object.values(files))].sort();
  const samples = Object.entries(files).map(([p, label]) => ({ path: p, label, predicted: [] }));
  return { dataset: { root, format: 'class-folders', classes, counts: {} }, samples, labelIssues: [], errors: [], warnings: [] } as unknown as EvalReport;
}

async function setup(name: string, files: Record<string, string>, extraClasses: string[] = []) {
  const root = path.join(work, name);
  for (const p of Object.keys(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), p);
  }
  for (const c of extraClasses) fs.mkdirSync(path.join(root, c), { recursive: true });
  const { ReportStore } = require('../../src/extension/store') as typeof import('../../src/extension/store');
  const { Fixes } = require('../../src/extension/fixes') as typeof import('../../src/extension/fixes');
  const log = fake.vscode.window.createOutputChannel() as never;
  const store = new ReportStore(undefined, log);
  const report = folderReport(root, files);
  report.dataset.classes.push(...extraClasses);
  store.set({ root, target: root, report, gate: null, config: {}, configFile: path.join(root, '.clip-lens.json'), modelChoice: {} as never, stale: false, resolved: new Map() });
  const fixes = new Fixes(store, log);
  return { root, store, fixes, result: store.get(root)! };
}

test('moveMany: one WorkspaceEdit and one undo step; undoLast moves every image back and un-resolves them', async () => {
  const { root, store, fixes, result } = await setup('bulk', { 'cat/a.png': 'cat', 'cat/b.png': 'cat', 'dog/c.png': 'dog' });
  const edits = fake.state.appliedEdits.length;
  const { message, step } = await fixes.moveMany(result, [
    { samplePath: 'cat/a.png', toClass: 'dog' },
    { samplePath: 'cat/b.png', toClass: 'dog' },
  ]);
  assert.equal(message, "Moved 2 images to 'dog'");
  assert.equal(fake.state.appliedEdits.length, edits + 1, 'one edit');
  assert.equal(step.kind, 'move');
  assert.ok(fs.existsSync(path.join(root, 'dog', 'a.png')) && fs.existsSync(path.join(root, 'dog', 'b.png')));
  assert.equal(store.get(root)!.resolved.get('cat/a.png'), 'fixed');
  assert.equal(fake.state.context.get('clipLens.canUndoFix'), true);
  // an unrelated file operation (an Explorer rename) gives Ctrl+Z back to the Explorer ...
  fake.fileOps.rename.fire({ files: [{ oldUri: fake.vscode.Uri.file(path.join(work, 'x')), newUri: fake.vscode.Uri.file(path.join(work, 'y')) }] });
  assert.equal(fake.state.context.get('clipLens.canUndoFix'), false);
  // ... while the command still undoes the step, as one step
  assert.equal(await fixes.undoLast(), 'Moved 2 images back');
  assert.ok(fs.existsSync(path.join(root, 'cat', 'a.png')) && fs.existsSync(path.join(root, 'cat', 'b.png')));
  assert.ok(!fs.existsSync(path.join(root, 'dog', 'a.png')));
  assert.equal(store.get(root)!.resolved.has('cat/a.png'), false);
  await assert.rejects(fixes.undoLast(), /no CLIP Lens fix to undo/);
  fixes.dispose();
});

test('moveMany refuses the whole batch when one target exists, and moves nothing', async () => {
  const { root, fixes, result } = await setup('conflict', { 'cat/a.png': 'cat', 'cat/b.png': 'cat', 'dog/b.png': 'dog' });
  await assert.rejects(
    fixes.moveMany(result, [
      { samplePath: 'cat/a.png', toClass: 'dog' },
      { samplePath: 'cat/b.png', toClass: 'dog' },
    ]),
    /dog\/b\.png already exists/,
  );
  assert.ok(fs.existsSync(path.join(root, 'cat', 'a.png')), 'nothing moved');
  assert.equal(fixes.history.size, 0);
  fixes.dispose();
});

test('undo refuses (and forgets the step) when a moved image was moved away since', async () => {
  const { root, fixes, result } = await setup('gone', { 'cat/a.png': 'cat', 'dog/c.png': 'dog' });
  await fixes.moveToFolder(result, 'cat/a.png', 'dog');
  fs.rmSync(path.join(root, 'dog', 'a.png'));
  await assert.rejects(fixes.undoLast(), /cannot undo: a\.png is no longer in dog\//);
  assert.equal(fixes.history.size, 0);
  fixes.dispose();
});

test('ignoreMany: one edit of .clip-lens.json adding every path, keeping the rest', async () => {
  const { root, fixes, result } = await setup('ign', { 'cat/a.png': 'cat', 'cat/b.png': 'cat', 'dog/c.png': 'dog' });
  fs.writeFileSync(path.join(root, '.clip-lens.json'), '{\n  "topK": 3,\n  "ignore": ["dog/c.png"]\n}\n');
  const edits = fake.state.appliedEdits.length;
  assert.equal(await fixes.ignoreMany(result, ['cat/a.png', 'cat/b.png']), 'Ignored 2 samples (added to .clip-lens.json)');
  assert.equal(fake.state.appliedEdits.length, edits + 1);
  const doc = fake.state.documents.find((d) => d.uri.fsPath === path.join(root, '.clip-lens.json'))!;
  assert.deepEqual(JSON.parse(doc.getText()), { topK: 3, ignore: ['dog/c.png', 'cat/a.png', 'cat/b.png'] });
  assert.equal(fixes.history.last?.kind, 'text');
  fixes.dispose();
});

test('FixHistory keeps the newest steps; undoPlan reverses newest first and names what blocks it; moveMessage', () => {
  const h = new FixHistory();
  for (let i = 0; i < HISTORY_LIMIT + 5; i++) h.push({ kind: 'text', label: `t${i}`, edit: { root: '/r', samplePaths: [], file: '/r/f', version: i } });
  assert.equal(h.size, HISTORY_LIMIT);
  assert.equal(h.last?.label, `t${HISTORY_LIMIT + 4}`);
  assert.equal(h.remove(h.last!.id), true);
  assert.equal(h.last?.label, `t${HISTORY_LIMIT + 3}`);

  const moves: FileMove[] = [
    { root: '/r', samplePath: 'cat/a.png', from: '/r/cat/a.png', to: '/r/dog/a.png', toClass: 'dog' },
    { root: '/r', samplePath: 'cat/b.png', from: '/r/cat/b.png', to: '/r/fox/b.png', toClass: 'fox' },
  ];
  const there = new Set(['/r/dog/a.png', '/r/fox/b.png']);
  assert.deepEqual(undoPlan(moves, (p) => there.has(p)), {
    renames: [
      { from: '/r/fox/b.png', to: '/r/cat/b.png' },
      { from: '/r/dog/a.png', to: '/r/cat/a.png' },
    ],
  });
  there.add('/r/cat/a.png');
  assert.deepEqual(undoPlan(moves, (p) => there.has(p)), { error: 'cat/a.png exists again; move it away first' });
  assert.equal(moveMessage(moves), "Moved 2 images (1 to 'dog', 1 to 'fox')");
  assert.equal(moveMessage(moves.slice(0, 1)), "Moved a.png to 'dog'");
});
