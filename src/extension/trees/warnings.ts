/**
 * The Warnings view: rare classes with low recall, class imbalance, the accuracy band, low Recall@K, duplicates and
 * leakage between splits, each with its numbers and an explanation in the tooltip. A warning about a class opens
 * that class in the report; duplicates and leakage list their images.
 */
import { describeProvisional } from '../../core/provisional';
import * as vscode from 'vscode';
import type { Warning } from '../../core/report';
import { COMMANDS, TREE_CONTEXT } from '../commandIds';
import { sampleFile } from '../diagnosticsModel';
import { datasetName, escapeMarkdown } from '../format';
import type { DatasetResult, ReportStore } from '../store';
import { WARNING_EXPLANATIONS, warningLabel, warningNumbers, warningRows } from './model';

export type WarningNode =
  | { kind: 'dataset'; root: string }
  | { kind: 'warning'; root: string; index: number }
  | { kind: 'path'; root: string; index: number; path: string };

const ICONS: Record<Warning['severity'], vscode.ThemeIcon> = {
  error: new vscode.ThemeIcon('error', new vscode.ThemeColor('list.errorForeground')),
  warning: new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')),
  info: new vscode.ThemeIcon('info'),
};

export class WarningsTree implements vscode.TreeDataProvider<WarningNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<WarningNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly nodes = new Map<string, WarningNode>();

  constructor(private readonly store: ReportStore) {
    this.subscriptions.push(store.onDidChange(() => this.changed.fire(undefined)));
  }

  private node<T extends WarningNode>(n: T): T {
    const key = JSON.stringify(n);
    const existing = this.nodes.get(key);
    if (existing) return existing as T;
    this.nodes.set(key, n);
    return n;
  }

  private warnings(result: DatasetResult): Warning[] {
    return warningRows(result.report);
  }

  getChildren(element?: WarningNode): WarningNode[] {
    if (!element) {
      const withWarnings = this.store.all().filter((r) => r.report.warnings.length > 0);
      if (withWarnings.length === 1) return this.warningNodes(withWarnings[0]);
      return withWarnings.map((r) => this.node({ kind: 'dataset', root: r.root }));
    }
    const result = this.store.get(element.root);
    if (!result) return [];
    if (element.kind === 'dataset') return this.warningNodes(result);
    if (element.kind === 'warning') {
      const w = this.warnings(result)[element.index];
      return (w?.paths ?? []).map((p) => this.node({ kind: 'path', root: element.root, index: element.index, path: p }));
    }
    return [];
  }

  private warningNodes(result: DatasetResult): WarningNode[] {
    return this.warnings(result).map((_, index) => this.node({ kind: 'warning', root: result.root, index }));
  }

  getTreeItem(element: WarningNode): vscode.TreeItem {
    const result = this.store.get(element.root);
    if (!result) return new vscode.TreeItem('(gone)');
    if (element.kind === 'dataset') {
      const item = new vscode.TreeItem(datasetName(result.root), vscode.TreeItemCollapsibleState.Expanded);
      item.id = `warnings:${result.root}`;
      const partial = result.report.provisional;
      item.description = `${result.report.warnings.length} warning${result.report.warnings.length === 1 ? '' : 's'}${partial ? ` · ${describeProvisional(partial)}` : ''}`;
      return item;
    }
    const w = this.warnings(result)[element.index];
    if (element.kind === 'path') {
      const item = new vscode.TreeItem(element.path, vscode.TreeItemCollapsibleState.None);
      const uri = vscode.Uri.file(sampleFile(result.report, element.path));
      item.resourceUri = uri;
      item.command = { command: 'vscode.open', title: 'Open Image', arguments: [uri] };
      return item;
    }
    const item = new vscode.TreeItem(warningLabel(w), w.paths && w.paths.length > 0 ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.id = `warning:${result.root}\0${element.index}\0${w.kind}\0${w.class ?? ''}\0${w.split ?? ''}`;
    item.contextValue = w.kind === 'prompt-fails' && w.class !== undefined ? TREE_CONTEXT.warningPrompt : TREE_CONTEXT.warning;
    item.iconPath = ICONS[w.severity];
    item.description = warningNumbers(w);
    const md = new vscode.MarkdownString();
    md.appendMarkdown(`**${escapeMarkdown(warningLabel(w))}**${w.split ? ` (split ${escapeMarkdown(w.split)})` : ''}\n\n`);
    md.appendMarkdown(`${escapeMarkdown(w.message)}\n\n`);
    md.appendMarkdown(`${escapeMarkdown(WARNING_EXPLANATIONS[w.kind])}\n\n`);
    if (Object.keys(w.numbers).length > 0) md.appendMarkdown(`_${escapeMarkdown(warningNumbers(w))}_`);
    item.tooltip = md;
    item.accessibilityInformation = { label: `${w.severity}: ${w.message}` };
    if (w.class !== undefined) {
      item.command = { command: COMMANDS.openReport, title: 'Show in Report', arguments: [result.root, { kind: 'class', class: w.class }] };
    } else if (!w.paths) {
      item.command = { command: COMMANDS.openReport, title: 'Open Report', arguments: [result.root] };
    }
    return item;
  }

  dispose(): void {
    this.changed.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
