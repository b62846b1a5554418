/**
 * The Problems panel at scale (issue 15, item 5): DiagnosticsManager on the fake vscode publishes at most
 * clipLens.maxProblems label issues per dataset plus one entry counting the rest, and checks only as many images as
 * it needs (not all 100,000).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFakeVscode, EventEmitter, installFakeVscode } from './extension-fakeVscode';
import type { EvalReport, LabelIssue, ReportSample } from '../../src/core/report';

test('DiagnosticsManager: 100,000 class-folder issues -> maxProblems diagnostics and one "not shown" entry; images checked only up to the cap', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-cap-'));
  const n = 100_000;
  const max = 120;
  // Only the images of the first 400 issues exist (every third of them moved away): the manager must find the 120
  // worst present ones among them without looking at the other 99,600.
  fs.mkdirSync(path.join(root, 'cat'));
  for (let i = 0; i < 400; i++) if (i % 3 !== 2) fs.writeFileSync(path.join(root, 'cat', `${i}.png`), 'x');
  const samples: ReportSample[] = [];
  const labelIssues: LabelIssue[] = [];
  for (let i = 0; i < n; i++) {
    samples.push({ path: `cat/${i}.png`, label: 'cat', predicted: [{ class: 'dog', score: 0.9 }] });
    labelIssues.push({ index: i, given: 'cat', suggested: 'dog', score: 0.01, rank: i + 1, path: `cat/${i}.png` });
  }
  const report = {
    schemaVersion: 2,
    dataset: { root, format: 'class-folders', classes: ['cat', 'dog'], counts: { samples: n, evaluated: n, failed: 0, perClass: {} } },
    samples,
    errors: [],
    warnings: [],
    labelIssues,
  } as unknown as EvalReport;
  const result = { root, target: root, report, gate: null, config: {}, configFile: path.join(root, '.clip-lens.json'), stale: false };
  const changed = new EventEmitter<string | undefined>();
  const store = {
    onDidChange: changed.event,
    all: () => [result],
    get: (r: string) => (r === root ? result : undefined),
    ignoredPaths: () => new Set<string>(),
    removedPaths: () => new Set<string>(),
    findByLabelFile: () => undefined,
    findByConfigFile: () => undefined,
  };
  const fake = createFakeVscode(root);
  const uninstall = installFakeVscode(fake.vscode);
  const statted: string[] = [];
  const realStat = fs.promises.stat;
  (fs.promises as { stat: unknown }).stat = (p: fs.PathLike) => (statted.push(String(p)), realStat(p));
  try {
    const { DiagnosticsManager } = require('../../src/extension/diagnostics') as typeof import('../../src/extension/diagnostics');
    const settings = { labelIssueWarningScore: 0.05, maxProblems: max };
    const manager = new DiagnosticsManager(store as never, () => settings as never, fake.vscode.Uri.file(root) as never);
    await manager.refresh(root);
    const published = fake.state.diagnostics.get('clipLens.labelIssues')!;
    const perFile = [...published.values()].filter((d) => d.length > 0);
    const all = perFile.flat() as unknown as { message: string; code: { value: string } }[];
    assert.equal(all.length, max + 1);
    assert.equal(published.get(root)?.length, 1, 'the count sits on the dataset folder');
    const summary = published.get(root)![0] as unknown as { message: string; code: { value: string; target: { toString(): string } } };
    // 100,000 - 120 shown - the 59 moved images (2, 5, ..., 176) before the 120th present one (cat/178.png).
    const movedBefore = 59;
    assert.match(summary.message, new RegExp(`^${(n - max - movedBefore).toLocaleString('en-US')} more likely label errors not shown`));
    assert.equal(summary.code.value, 'Open CLIP Lens report');
    assert.match(decodeURIComponent(String(summary.code.target)), /command:clipLens\.openReport/);
    assert.ok(published.has(path.join(root, 'cat', '178.png')) && !published.has(path.join(root, 'cat', '180.png')));
    assert.ok(statted.length <= 512, `checked ${statted.length} images, not ${n}`);
    // A smaller cap on the next refresh shrinks what is published.
    settings.maxProblems = 10;
    await manager.refreshIssues(result as never);
    assert.equal([...published.values()].flat().length, 11);
    manager.dispose();
  } finally {
    (fs.promises as { stat: unknown }).stat = realStat;
    uninstall();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
