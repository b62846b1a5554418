/**
 * The report panel's "Compare with...": a quick pick of the runs to compare the shown report with (the dataset's
 * baseline file, its previous run in this session, its recent runs of earlier sessions (runHistory.ts), any report
 * or baseline file), then the comparison (core/compare.ts) with the picked run as A and the shown report as B.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { baselineFileOf, makeBaseline, readBaseline, type Baseline } from '../core/baseline';
import { compareRuns, readRunFile } from '../core/compare';
import type { Comparison } from '../core/comparison';
import type { EvalReport } from '../core/report';
import type { ReportStore } from './store';
import { describeRun, runsToOffer } from './runHistoryModel';

interface Choice extends vscode.QuickPickItem {
  id: 'baseline' | 'previous' | 'history' | 'file';
  load: () => Promise<{ run: Baseline; name: string } | undefined>;
}

export async function pickComparison(store: ReportStore, report: EvalReport): Promise<{ comparison: Comparison } | { error: string } | undefined> {
  const root = report.dataset.root;
  const result = store.get(root);
  const choices: Choice[] = [];
  const { file, rel } = baselineFileOf(root, result?.config.gate);
  if (fs.existsSync(file)) {
    choices.push({ id: 'baseline', label: '$(git-commit) Baseline', description: rel, detail: 'The file clip-lens baseline (or Update Baseline) wrote', load: async () => ({ run: await readBaseline(file, rel), name: rel }) });
  }
  const previous = store.previous(root);
  if (previous) {
    choices.push({
      id: 'previous',
      label: '$(history) Previous run',
      description: `${new Date(previous.createdAt).toLocaleString()} · model ${previous.model.id}`,
      load: async () => ({ run: makeBaseline(previous), name: 'previous run' }),
    });
  }
  // Recent runs kept across sessions (newest first), but not this report or the previous run already offered.
  const kept = store.history ? await store.history.list(root).catch(() => []) : [];
  for (const entry of runsToOffer({ root, runs: kept }, [report.createdAt, ...(previous ? [previous.createdAt] : [])])) {
    const name = `run of ${new Date(entry.createdAt).toLocaleString()}`;
    choices.push({ id: 'history', ...describeRun(entry, (iso) => new Date(iso).toLocaleString()), load: async () => ({ run: await store.history!.load(root, entry), name }) });
  }
  choices.push({
    id: 'file',
    label: '$(file) Report or baseline file…',
    detail: 'An eval --json report or a baseline: another model, another prompt set, another run',
    load: async () => {
      const picked = await vscode.window.showOpenDialog({ canSelectMany: false, defaultUri: vscode.Uri.file(root), filters: { 'CLIP Lens report or baseline': ['json'] }, title: 'Compare with' });
      if (!picked || picked.length === 0) return undefined;
      const f = picked[0].fsPath;
      return { run: await readRunFile(f, path.basename(f)), name: path.basename(f) };
    },
  });
  const choice = await vscode.window.showQuickPick(choices, { title: 'CLIP Lens: Compare with…', placeHolder: 'The run to compare this report with (A); this report is B' });
  if (!choice) return undefined;
  try {
    const a = await choice.load();
    if (!a) return undefined;
    return { comparison: compareRuns(a.run, makeBaseline(report), [a.name, 'this run']) };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
