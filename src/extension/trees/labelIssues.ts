/**
 * The Label issues view: likely label errors ranked, grouped by given -> suggested class (groups in the order of their
 * most suspicious image), with the quick fixes inline: apply the suggested fix (move the image / change the label),
 * ignore the sample, open the image. Fixed and ignored samples disappear until the next evaluation.
 */
import { describeProvisional } from '../../core/provisional';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EvalReport, LabelIssue } from '../../core/report';
import { TREE_CONTEXT } from '../commandIds';
import { formatScore, labelIssueMessage, sampleFile } from '../diagnosticsModel';
import type { Settings } from '../config';
import { datasetName, escapeMarkdown } from '../format';
import { predictionsMarkdown, type Thumbnails } from '../hover';
import type { DatasetResult, ReportStore } from '../store';
import { issueGroups, issuePath, predictorText, type IssueGroup } from './model';
import { datasetFormat } from '../../core/datasetFormat';
import { samplesOf } from '../../core/sampleTable';

export type IssueNode =
  | { kind: 'dataset'; root: string }
  | { kind: 'group'; root: string; given: string; suggested: string }
  | { kind: 'issue'; root: string; samplePath: string };

/** Arguments the fix commands accept from this view. */
export function isIssueNode(x: unknown): x is Extract<IssueNode, { kind: 'issue' }> {
  return typeof x === 'object' && x !== null && (x as IssueNode).kind === 'issue' && typeof (x as { samplePath?: unknown }).samplePath === 'string';
}

export class LabelIssuesTree implements vscode.TreeDataProvider<IssueNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<IssueNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly nodes = new Map<string, IssueNode>();
  private view: vscode.TreeView<IssueNode> | undefined;

  constructor(
    private readonly store: ReportStore,
    private readonly settings: () => Settings,
    private readonly thumbnails: Thumbnails,
  ) {
    this.subscriptions.push(store.onDidChange(() => this.refresh()));
  }

  /** The view, to show the number of open issues as its badge. */
  attach(view: vscode.TreeView<IssueNode>): void {
    this.view = view;
    this.updateBadge();
  }

  private refresh(): void {
    this.changed.fire(undefined);
    this.updateBadge();
  }

  private updateBadge(): void {
    if (!this.view) return;
    const n = this.store.all().reduce((sum, r) => sum + this.groupsOf(r).reduce((s, g) => s + g.issues.length, 0), 0);
    this.view.badge = n > 0 ? { value: n, tooltip: `${n} likely label error${n === 1 ? '' : 's'}` } : undefined;
    // Results while running (or of a cancelled run): said above the list, which may have no dataset row to say it on.
    const partial = this.store.all().filter((r) => r.report.provisional);
    const several = this.store.all().length > 1;
    this.view.message = partial.length > 0 ? partial.map((r) => `${several ? `${datasetName(r.root)}: ` : ''}${describeProvisional(r.report.provisional!)}`).join('; ') : undefined;
  }

  private node<T extends IssueNode>(n: T): T {
    const key = JSON.stringify(n);
    const existing = this.nodes.get(key);
    if (existing) return existing as T;
    this.nodes.set(key, n);
    return n;
  }

  private groupsOf(result: DatasetResult): IssueGroup[] {
    return issueGroups(result.report, new Set(result.resolved.keys()));
  }

  getChildren(element?: IssueNode): IssueNode[] {
    if (!element) {
      const withIssues = this.store.all().filter((r) => this.groupsOf(r).length > 0);
      if (withIssues.length === 1) return this.groupNodes(withIssues[0]);
      return withIssues.map((r) => this.node({ kind: 'dataset', root: r.root }));
    }
    const result = this.store.get(element.root);
    if (!result) return [];
    if (element.kind === 'dataset') return this.groupNodes(result);
    if (element.kind === 'group') {
      const g = this.groupsOf(result).find((x) => x.given === element.given && x.suggested === element.suggested);
      return g ? g.issues.map((i) => this.node({ kind: 'issue', root: element.root, samplePath: issuePath(result.report, i) })) : [];
    }
    return [];
  }

  private groupNodes(result: DatasetResult): IssueNode[] {
    return this.groupsOf(result).map((g) => this.node({ kind: 'group', root: result.root, given: g.given, suggested: g.suggested }));
  }

  getParent(element: IssueNode): IssueNode | undefined {
    if (element.kind === 'dataset') return undefined;
    const several = this.store.all().filter((r) => this.groupsOf(r).length > 0).length > 1;
    if (element.kind === 'group') return several ? this.node({ kind: 'dataset', root: element.root }) : undefined;
    const issue = this.issue(element.root, element.samplePath);
    return issue ? this.node({ kind: 'group', root: element.root, given: issue.issue.given, suggested: issue.issue.suggested }) : undefined;
  }

  /** The issue and report of an issue node. */
  issue(root: string, samplePath: string): { result: DatasetResult; issue: LabelIssue } | undefined {
    const result = this.store.get(root);
    const issue = result?.report.labelIssues.find((i) => issuePath(result.report, i) === samplePath);
    return result && issue ? { result, issue } : undefined;
  }

  getTreeItem(element: IssueNode): vscode.TreeItem {
    const result = this.store.get(element.root);
    if (!result) return new vscode.TreeItem('(gone)');
    const report = result.report;
    if (element.kind === 'dataset') {
      const n = this.groupsOf(result).reduce((s, g) => s + g.issues.length, 0);
      const item = new vscode.TreeItem(datasetName(result.root), vscode.TreeItemCollapsibleState.Expanded);
      item.id = `issues:${result.root}`;
      const by = predictorText(report);
      item.description = `${n} likely label error${n === 1 ? '' : 's'}${by ? ` · from ${by}` : ''}${report.provisional ? ` · ${describeProvisional(report.provisional)}` : ''}`;
      if (report.predictor) item.tooltip = `Label errors from ${by}: ${report.predictor.reason}.`;
      item.iconPath = new vscode.ThemeIcon(datasetFormat(report.dataset.format).hasLabelFile ? 'file-text' : 'folder-library');
      return item;
    }
    if (element.kind === 'group') {
      const g = this.groupsOf(result).find((x) => x.given === element.given && x.suggested === element.suggested);
      const n = g?.issues.length ?? 0;
      const item = new vscode.TreeItem(`${element.given} → ${element.suggested}`, n <= 10 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `group:${result.root}\0${element.given}\0${element.suggested}`;
      item.contextValue = TREE_CONTEXT.issueGroup;
      // Label files are fixed line by line: count lines, not images; name where the suggested fix goes.
      const isLabelFile = datasetFormat(report.dataset.format).fix === 'change-label';
      const unit = isLabelFile ? 'line' : 'image';
      item.description = `${n} ${unit}${n === 1 ? '' : 's'}${g ? ` · from #${g.issues[0].rank}` : ''}`;
      item.iconPath = new vscode.ThemeIcon('arrow-swap');
      const who = report.predictor && report.predictor.used !== 'zero-shot' ? predictorText(report) : 'CLIP';
      item.tooltip =
        `Labelled '${element.given}', ${who} predicts '${element.suggested}' for ${n} ${unit}${n === 1 ? '' : 's'}. ` +
        (isLabelFile ? `Apply Suggested Fix changes the label to '${element.suggested}'.` : `Apply Suggested Fix moves the image into the folder '${element.suggested}/'.`);
      return item;
    }
    const found = this.issue(element.root, element.samplePath);
    const item = new vscode.TreeItem(path.posix.basename(element.samplePath), vscode.TreeItemCollapsibleState.None);
    item.id = `issue:${result.root}\0${element.samplePath}`;
    if (!found) return item;
    const { issue } = found;
    const traits = datasetFormat(report.dataset.format);
    item.contextValue = traits.fix === 'change-label' ? TREE_CONTEXT.issueLabel : TREE_CONTEXT.issueMove;
    const dir = path.posix.dirname(element.samplePath);
    item.description = `#${issue.rank} · ${formatScore(issue.score)}${dir !== '.' ? ` · ${dir}` : ''}`;
    const warn = issue.score < this.settings().labelIssueWarningScore;
    item.iconPath = new vscode.ThemeIcon(warn ? 'warning' : 'info', new vscode.ThemeColor(warn ? 'list.warningForeground' : 'notificationsInfoIcon.foreground'));
    item.resourceUri = vscode.Uri.file(sampleFile(report, element.samplePath));
    const sample = samplesOf(report).at(issue.index);
    item.accessibilityInformation = { label: `${labelIssueMessage(issue, sample, report.dataset.format, report.predictor?.used)}: ${element.samplePath}` };
    if (traits.samplesHaveLines && sample?.source && report.dataset.labelFile) {
      item.command = { command: 'vscode.open', title: 'Open Label Line', arguments: [vscode.Uri.file(report.dataset.labelFile), { selection: new vscode.Range(sample.source.line - 1, 0, sample.source.line - 1, 0) } satisfies vscode.TextDocumentShowOptions] };
    } else {
      item.command = { command: 'vscode.open', title: 'Open Image', arguments: [vscode.Uri.file(sampleFile(report, element.samplePath))] };
    }
    return item;
  }

  async resolveTreeItem(item: vscode.TreeItem, element: IssueNode, token: vscode.CancellationToken): Promise<vscode.TreeItem> {
    if (element.kind !== 'issue' || item.tooltip) return item;
    const found = this.issue(element.root, element.samplePath);
    if (!found) return item;
    const report: EvalReport = found.result.report;
    const sample = samplesOf(report).at(found.issue.index);
    const thumb = await this.thumbnails.markdown(sampleFile(report, element.samplePath));
    if (token.isCancellationRequested) return item;
    const fix = datasetFormat(report.dataset.format).fix === 'change-label' ? `change the label to **${escapeMarkdown(found.issue.suggested)}**` : `move it to the folder **${escapeMarkdown(found.issue.suggested)}**`;
    item.tooltip = new vscode.MarkdownString(
      `${thumb}\n\n**${escapeMarkdown(element.samplePath)}**\n\n${escapeMarkdown(labelIssueMessage(found.issue, sample, report.dataset.format, report.predictor?.used))}. Suggested fix: ${fix}.\n\n${sample ? predictionsMarkdown(sample, report) : ''}`,
      true,
    );
    return item;
  }

  dispose(): void {
    this.changed.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
