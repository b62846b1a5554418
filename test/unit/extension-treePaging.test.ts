/**
 * The Datasets view pages a class's images: children are made on expand, 500 at a time, and "Show more" adds the
 * next page; a report whose samples come from a sidecar is read through the same accessor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFakeVscode, installFakeVscode } from './extension-fakeVscode';
import { writeJsonReport } from '../../src/cli/io';
import { readReportFile } from '../../src/core/reportSamples';
import { makeReport, many } from './reportFixtures';

test('Datasets view: a class of 1,200 images lists 500, then "Show more" pages; sidecar and inline give the same children', async () => {
  const fake = createFakeVscode(os.tmpdir());
  const uninstall = installFakeVscode(fake.vscode);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DatasetsTree, MAX_IMAGES_PER_CLASS } = require('../../src/extension/trees/datasets') as typeof import('../../src/extension/trees/datasets');
    const inline = makeReport(['a', 'b'], [...many('a', 1200, 1100, 'b'), ...many('b', 30, 30, 'a')]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-tree-'));
    const file = path.join(dir, 'r.json');
    await writeJsonReport(inline, file, 'sidecar');
    const fromSidecar = await readReportFile(file);
    assert.equal(fromSidecar.samples, undefined);

    const childrenOf = (report: typeof inline) => {
      const { EventEmitter } = fake.vscode as unknown as { EventEmitter: new () => { event: unknown } };
      const result = { root: '/d', report, resolved: new Map(), stale: false, config: {} };
      const store = { onDidChange: new EventEmitter().event, get: () => result, all: () => [result], currentResult: result };
      const engine = { onDidChangeRunning: new EventEmitter().event, runningStates: [], runningState: () => undefined };
      const tree = new DatasetsTree(store as never, engine as never, {} as never);
      const cls = tree.getChildren({ kind: 'dataset', root: '/d' }).find((n) => n.kind === 'class' && n.cls === 'a')!;
      return { tree, cls };
    };
    for (const report of [inline, fromSidecar]) {
      const { tree, cls } = childrenOf(report);
      let kids = tree.getChildren(cls);
      assert.equal(kids.length, MAX_IMAGES_PER_CLASS + 1);
      const more = kids.at(-1)!;
      assert.equal(more.kind, 'more');
      const item = tree.getTreeItem(more);
      assert.match(String(item.label), /^Show 500 more… \(700 left\)$/);
      assert.deepEqual(item.command?.arguments, ['/d', 'a']);
      tree.showMore('/d', 'a');
      kids = tree.getChildren(cls);
      assert.equal(kids.length, 2 * MAX_IMAGES_PER_CLASS + 1);
      tree.showMore('/d', 'a');
      kids = tree.getChildren(cls);
      assert.equal(kids.length, 1200, 'all images, no "more" node');
      assert.ok(kids.every((k) => k.kind === 'image'));
      // Mistakes first: the 100 misclassified images of class a lead.
      const first = kids[0] as { index: number };
      assert.equal(inline.samples![first.index]!.predicted[0]!.class, 'b');
    }
    // Inline and sidecar give the same children.
    const order = (r: typeof inline) => {
      const { tree, cls } = childrenOf(r);
      return tree.getChildren(cls).map((k) => JSON.stringify(k));
    };
    assert.deepEqual(order(fromSidecar), order(inline));
  } finally {
    uninstall();
  }
});
