/**
 * The status-bar item: the last result (top-1 accuracy, the worst class's recall, the gate state; a history icon
 * when the dataset changed since), a spinner with counts while evaluating. Clicking opens the report (or, while
 * evaluating, offers to cancel).
 */
import * as vscode from 'vscode';
import { COMMANDS } from './commandIds';
import type { Engine } from './engine';
import { datasetName, statusBarText, statusSummary, statusTooltipLines } from './format';
import type { DatasetResult, ReportStore } from './store';
import { describeModelSource } from './trust';
import { samplesOf } from '../core/sampleTable';

/** Label issues of the result that were fixed or ignored since its evaluation. */
function handledIssues(result: DatasetResult): number {
  let n = 0;
  for (const i of result.report.labelIssues) if (result.resolved.has(i.path ?? samplesOf(result.report).at(i.index)?.path ?? '')) n++;
  return n;
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('clipLens.status', vscode.StatusBarAlignment.Left, 50);
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly store: ReportStore,
    private readonly engine: Engine,
  ) {
    this.item.name = 'CLIP Lens';
    this.subscriptions.push(
      store.onDidChange(() => this.update()),
      engine.onDidChangeRunning(() => this.update()),
    );
    this.update();
  }

  update(): void {
    const running = this.engine.anyRunning;
    const result = this.store.currentResult;
    this.item.backgroundColor = undefined;
    if (running) {
      this.item.text = `$(sync~spin) CLIP Lens: ${datasetName(running.root)} ${running.fraction !== undefined ? `${Math.floor(running.fraction * 100)}%` : ''}`.trimEnd();
      this.item.tooltip = `Evaluating ${running.root}\n${running.message}\nClick to cancel.`;
      this.item.command = { command: COMMANDS.cancelEvaluation, title: 'Cancel Evaluation', arguments: [running.root] };
      this.item.accessibilityInformation = { label: `CLIP Lens is evaluating ${datasetName(running.root)}: ${running.message}` };
      this.item.show();
      return;
    }
    if (!result) {
      this.item.hide();
      return;
    }
    const name = datasetName(result.root);
    const summary = statusSummary(result.report, result.gate, result.stale, name);
    this.item.text = statusBarText(summary);
    if (summary.gate && !summary.gate.passed) this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    const note = result.modelChoice.note ?? (result.modelChoice.source === 'environment' ? `Model from ${describeModelSource('environment')}.` : undefined);
    const md = new vscode.MarkdownString(statusTooltipLines(result.report, result.gate, { datasetName: name, stale: result.stale, modelNote: note, handled: handledIssues(result) }).join('\n'), true);
    this.item.tooltip = md;
    this.item.command = { command: COMMANDS.openReport, title: 'Open Report', arguments: [result.root] };
    this.item.accessibilityInformation = {
      label: `CLIP Lens ${name}: ${summary.top1 === null ? 'no result' : `top-1 accuracy ${Math.round(summary.top1 * 1000) / 10} percent${summary.top1Band ? `, ${summary.top1Band}` : ''}`}${summary.worst ? `, worst class ${summary.worst.class}` : ''}${summary.gate ? `, gate ${summary.gate.passed ? 'passed' : 'failed'}` : ''}`,
    };
    this.item.show();
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}
