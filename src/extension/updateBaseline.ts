/**
 * `CLIP Lens: Update Baseline`: writes the baseline of the dataset's last evaluation (re-evaluating first when the
 * dataset changed since) to `gate.baseline` of its `.clip-lens.json` (default .clip-lens-baseline.json), the file
 * `clip-lens baseline` writes, and re-checks the gate against it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { baselineFileOf, checkRatchet, makeBaseline, serializeBaseline } from '../core/baseline';
import { evaluateGate, hasThresholds } from '../core/gate';
import { makeDirectory } from '../core/fileSystem';
import type { Engine } from './engine';
import { datasetName } from './format';
import type { DatasetResult, ReportStore } from './store';

/** Returns the baseline file written, or undefined when there was nothing to write. */
export async function updateBaseline(store: ReportStore, engine: Engine, result: DatasetResult | undefined, log: vscode.LogOutputChannel): Promise<string | undefined> {
  if (!result) {
    void vscode.window.showInformationMessage('CLIP Lens: evaluate a dataset first; its baseline is made from the evaluation.');
    return undefined;
  }
  let current = result;
  if (current.stale) {
    const report = await engine.evaluate(current.target, 'user');
    const fresh = store.get(current.root);
    if (!report || !fresh) return undefined;
    current = fresh;
  }
  if (!current.report.metrics) {
    void vscode.window.showErrorMessage(`CLIP Lens: no image of '${datasetName(current.root)}' could be evaluated: nothing to make a baseline of.`);
    return undefined;
  }
  const { file } = baselineFileOf(current.root, current.config.gate);
  const text = serializeBaseline(makeBaseline(current.report));
  await makeDirectory(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.promises.writeFile(tmp, text);
  await fs.promises.rename(tmp, file);
  log.info(`${datasetName(current.root)}: baseline written to ${file}`);
  // The gate state against the new baseline.
  const gate = current.config.gate;
  if (gate && hasThresholds(gate)) {
    const next = evaluateGate(current.report, gate, { warnings: current.config.warnings });
    await checkRatchet(next, current.report, gate, { root: current.root });
    store.set({ ...current, gate: next });
  }
  vscode.window.setStatusBarMessage(`$(check) CLIP Lens: baseline written to ${path.relative(current.root, file)}`, 5000);
  return file;
}
