/**
 * The Datasets view: dataset -> class (images, recall, a warning icon when a warning concerns the class) -> image
 * (given vs predicted, score). Clicking an image opens it; datasets have re-run, open-report, reveal and remove
 * actions (package.json menus on TREE_CONTEXT.dataset).
 */
import { describeProvisional } from '../../core/provisional';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS, TREE_CONTEXT } from '../commandIds';
import { sampleFile } from '../diagnosticsModel';
import type { Engine } from '../engine';
import { datasetName, escapeMarkdown, pct, statusTooltipLines } from '../format';
import { predictionsMarkdown, type Thumbnails } from '../hover';
import type { DatasetResult, ReportStore } from '../store';
import { classDescription, classImages, classRows, duplicateGroupRows, imageDescription, viewOrder, type ClassRow, type ImageRow } from './model';
import type { EvalReport, ReportSample } from '../../core/report';
import { datasetFormat } from '../../core/datasetFormat';
import { samplesOf, pathIndex } from '../../core/sampleTable';
import { removalCandidates } from '../removalModel';

/** The samples "Remove Image from Split…" is offered for, per report (computed once). */
const removableOf = new WeakMap<EvalReport, Set<string>>();
function removable(report: EvalReport): Set<string> {
  let set = removableOf.get(report);
  if (!set) removableOf.set(report, (set = new Set(removalCandidates(report).map((c) => c.samplePath))));
  return set;
}

/** Images listed per class at first and added per "Show more" (children are made on expand, a page at a time). */
export const MAX_IMAGES_PER_CLASS = 500;

export type DatasetNode =
  | { kind: 'dataset'; root: string }
  | { kind: 'class'; root: string; cls: string }
  | { kind: 'image'; root: string; index: number }
  | { kind: 'more'; root: string; cls: string; count: number }
  /** Duplicate groups and outliers of the dataset (docs/duplicates.md). */
  | { kind: 'duplicates'; root: string }
  | { kind: 'dupGroup'; root: string; group: number }
  | { kind: 'dupImage'; root: string; group: number; index: number }
  | { kind: 'outliers'; root: string }
  | { kind: 'outlierImage'; root: string; index: number };

const green = new vscode.ThemeColor('testing.iconPassed');
const red = new vscode.ThemeColor('testing.iconFailed');
const yellow = new vscode.ThemeColor('list.warningForeground');

export class DatasetsTree implements vscode.TreeDataProvider<DatasetNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<DatasetNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  /** Node objects are reused so the view keeps expansion and selection across refreshes. */
  private readonly nodes = new Map<string, DatasetNode>();
  private readonly lastRunningUpdate = new Map<string, number>();
  /** Images listed per class (root NUL class) after "Show more". */
  private readonly limits = new Map<string, number>();
  /** Rows computed once per report (a class may hold thousands of images). */
  private readonly classCache = new WeakMap<EvalReport, ClassRow[]>();
  private readonly imageCache = new WeakMap<EvalReport, Map<string, ImageRow[]>>();

  private classRowsOf(report: EvalReport): ClassRow[] {
    let rows = this.classCache.get(report);
    if (!rows) this.classCache.set(report, (rows = viewOrder(classRows(report))));
    return rows;
  }

  private imageRowsOf(report: EvalReport, cls: string): ImageRow[] {
    let byClass = this.imageCache.get(report);
    if (!byClass) this.imageCache.set(report, (byClass = new Map()));
    let rows = byClass.get(cls);
    if (!rows) byClass.set(cls, (rows = classImages(report, cls)));
    return rows;
  }

  constructor(
    private readonly store: ReportStore,
    private readonly engine: Engine,
    private readonly thumbnails: Thumbnails,
  ) {
    this.subscriptions.push(
      store.onDidChange(() => this.changed.fire(undefined)),
      // A dataset's row follows its run (at most once a second while it runs); the list changes when a first run
      // starts or ends.
      engine.onDidChangeRunning((s) => {
        const now = Date.now();
        const done = 'done' in s;
        if (!done && now - (this.lastRunningUpdate.get(s.root) ?? 0) < 1000) return;
        this.lastRunningUpdate.set(s.root, done ? 0 : now);
        this.changed.fire(this.store.get(s.root) ? this.node({ kind: 'dataset', root: s.root }) : undefined);
      }),
    );
  }

  /** "Show more" under a class: the next page of its images. */
  showMore(root: string, cls: string): void {
    const key = `${root}\0${cls}`;
    this.limits.set(key, (this.limits.get(key) ?? MAX_IMAGES_PER_CLASS) + MAX_IMAGES_PER_CLASS);
    this.changed.fire(this.node({ kind: 'class', root, cls }));
  }

  private node<T extends DatasetNode>(n: T): T {
    const key = JSON.stringify(n);
    const existing = this.nodes.get(key);
    if (existing) return existing as T;
    this.nodes.set(key, n);
    return n;
  }

  getChildren(element?: DatasetNode): DatasetNode[] {
    if (!element) {
      const results = this.store.all();
      const roots = results.map((r) => this.node({ kind: 'dataset', root: r.root }) as DatasetNode);
      // Datasets evaluated for the first time show while they run.
      for (const s of this.engine.runningStates) {
        if (!this.store.get(s.root)) roots.push(this.node({ kind: 'dataset', root: s.root }));
      }
      if (roots.length === 0) this.nodes.clear();
      return roots;
    }
    const result = this.store.get(element.root);
    if (!result) return [];
    if (element.kind === 'dataset') {
      const children: DatasetNode[] = result.report.dataset.classes.map((cls) => this.node({ kind: 'class', root: element.root, cls }));
      if ((result.report.duplicates ?? []).length > 0) children.push(this.node({ kind: 'duplicates', root: element.root }));
      if ((result.report.outliers ?? []).length > 0) children.push(this.node({ kind: 'outliers', root: element.root }));
      return children;
    }
    if (element.kind === 'duplicates') return duplicateGroupRows(result.report).map((r) => this.node({ kind: 'dupGroup', root: element.root, group: r.group }));
    if (element.kind === 'dupGroup') {
      const row = duplicateGroupRows(result.report).find((r) => r.group === element.group);
      return (row?.indices ?? []).map((index) => this.node({ kind: 'dupImage', root: element.root, group: element.group, index }));
    }
    if (element.kind === 'outliers') {
      const indexOf = pathIndex(samplesOf(result.report));
      return (result.report.outliers ?? []).slice(0, MAX_IMAGES_PER_CLASS).flatMap((o) => (indexOf.has(o.path) ? [this.node({ kind: 'outlierImage', root: element.root, index: indexOf.get(o.path)! })] : []));
    }
    if (element.kind === 'class') {
      const rows = this.imageRowsOf(result.report, element.cls);
      const limit = this.limits.get(`${element.root}\0${element.cls}`) ?? MAX_IMAGES_PER_CLASS;
      const shown = rows.slice(0, limit).map((r) => this.node({ kind: 'image', root: element.root, index: r.index }) as DatasetNode);
      if (rows.length > limit) shown.push(this.node({ kind: 'more', root: element.root, cls: element.cls, count: rows.length - limit }));
      return shown;
    }
    return [];
  }

  getParent(element: DatasetNode): DatasetNode | undefined {
    if (element.kind === 'dataset') return undefined;
    if (element.kind === 'duplicates' || element.kind === 'outliers') return this.node({ kind: 'dataset', root: element.root });
    if (element.kind === 'dupGroup') return this.node({ kind: 'duplicates', root: element.root });
    if (element.kind === 'dupImage') return this.node({ kind: 'dupGroup', root: element.root, group: element.group });
    if (element.kind === 'outlierImage') return this.node({ kind: 'outliers', root: element.root });
    if (element.kind === 'class' || element.kind === 'more') return element.kind === 'class' ? this.node({ kind: 'dataset', root: element.root }) : this.node({ kind: 'class', root: element.root, cls: element.cls });
    const r = this.store.get(element.root)?.report;
    const s = r ? samplesOf(r).at(element.index) : undefined;
    return s ? this.node({ kind: 'class', root: element.root, cls: s.label }) : undefined;
  }

  getTreeItem(element: DatasetNode): vscode.TreeItem {
    const result = this.store.get(element.root);
    if (!result) {
      const item = new vscode.TreeItem(datasetName(element.root), vscode.TreeItemCollapsibleState.None);
      item.id = `dataset:${element.root}`;
      item.iconPath = new vscode.ThemeIcon('sync~spin');
      item.description = this.engine.runningState(element.root)?.message ?? '';
      item.tooltip = `Evaluating ${element.root}`;
      return item;
    }
    switch (element.kind) {
      case 'dataset':
        return this.datasetItem(result);
      case 'class': {
        const row = this.classRowsOf(result.report).find((r) => r.class === element.cls);
        const item = new vscode.TreeItem(element.cls, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `class:${element.root}\0${element.cls}`;
        item.contextValue = TREE_CONTEXT.class;
        if (!row) return item;
        item.description = classDescription(row);
        item.iconPath = row.warnings.length > 0 ? new vscode.ThemeIcon('warning', yellow) : new vscode.ThemeIcon('symbol-class');
        const md = new vscode.MarkdownString(undefined, true);
        md.appendMarkdown(`**${escapeMarkdown(row.class)}**\n\n`);
        md.appendMarkdown(`${row.images} image${row.images === 1 ? '' : 's'}, ${row.support} evaluated\n\n`);
        if (row.recall !== null) md.appendMarkdown(`Recall ${pct(row.recall)} · precision ${row.precision === null ? '–' : pct(row.precision)} · F1 ${row.f1 === null ? '–' : pct(row.f1)}\n\n`);
        const versus = result.report.predictor?.perClass.find((c) => c.class === row.class);
        if (versus && versus.probeRecall !== null) md.appendMarkdown(`Zero-shot recall ${pct(versus.zeroShotRecall)} · linear probe recall ${pct(versus.probeRecall)}\n\n`);
        for (const w of row.warnings) md.appendMarkdown(`$(warning) ${escapeMarkdown(w.message)}\n\n`);
        item.tooltip = md;
        return item;
      }
      case 'image': {
        const sample = samplesOf(result.report).at(element.index) as ReportSample;
        const row = this.imageRowsOf(result.report, sample.label).find((r) => r.index === element.index);
        const file = sampleFile(result.report, sample.path);
        const item = new vscode.TreeItem(path.posix.basename(sample.path), vscode.TreeItemCollapsibleState.None);
        item.id = `image:${element.root}\0${sample.path}`;
        item.resourceUri = vscode.Uri.file(file);
        item.contextValue = TREE_CONTEXT.image;
        if (row) {
          item.description = imageDescription(row);
          item.iconPath = row.error ? new vscode.ThemeIcon('warning', yellow) : row.correct ? new vscode.ThemeIcon('pass', green) : new vscode.ThemeIcon('error', red);
        }
        item.command = { command: 'vscode.open', title: 'Open Image', arguments: [vscode.Uri.file(file)] };
        return item;
      }
      case 'duplicates': {
        const groups = result.report.duplicates ?? [];
        const leaks = groups.filter((g) => new Set(g.splits).size > 1).length;
        const item = new vscode.TreeItem('Duplicates', vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `duplicates:${element.root}`;
        item.description = `${groups.length} group${groups.length === 1 ? '' : 's'}${leaks ? ` · ${leaks} across splits` : ''}`;
        item.iconPath = new vscode.ThemeIcon(leaks ? 'error' : 'copy', leaks ? red : undefined);
        item.tooltip = 'Exact and near-copies of images (resized, recompressed, slightly cropped, brightened); groups that cross splits leak test images into training.';
        return item;
      }
      case 'dupGroup': {
        const row = duplicateGroupRows(result.report).find((r) => r.group === element.group);
        const item = new vscode.TreeItem(row?.label ?? 'group', vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `dupGroup:${element.root}\0${element.group}`;
        item.description = row?.description;
        item.iconPath = row?.leak ? new vscode.ThemeIcon('error', red) : row?.conflicting ? new vscode.ThemeIcon('warning', yellow) : new vscode.ThemeIcon('copy');
        return item;
      }
      case 'outliers': {
        const n = result.report.outliers?.length ?? 0;
        const item = new vscode.TreeItem('Outliers', vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `outliers:${element.root}`;
        item.description = `${n} image${n === 1 ? '' : 's'}`;
        item.iconPath = new vscode.ThemeIcon('question');
        item.tooltip = 'Images unlike the rest of their class and of the dataset (blank, corrupted or wrong-domain?), most unusual first.';
        return item;
      }
      case 'dupImage':
      case 'outlierImage': {
        const sample = samplesOf(result.report).at(element.index) as ReportSample;
        const file = sampleFile(result.report, sample.path);
        const item = new vscode.TreeItem(sample.path, vscode.TreeItemCollapsibleState.None);
        item.id = `${element.kind}:${element.root}\0${element.kind === 'dupImage' ? `${element.group}\0` : ''}${sample.path}`;
        item.resourceUri = vscode.Uri.file(file);
        const removed = result.resolved.get(sample.path) === 'removed';
        item.contextValue = element.kind === 'dupImage' && !removed && removable(result.report).has(sample.path) ? TREE_CONTEXT.removableImage : TREE_CONTEXT.image;
        const outlier = element.kind === 'outlierImage' ? result.report.outliers?.find((o) => o.path === sample.path) : undefined;
        item.description = `${sample.split ? `${sample.split} · ` : ''}${sample.label}${outlier ? ` · score ${outlier.score.toFixed(3)}` : ''}${removed ? ' · removed' : ''}`;
        item.command = { command: 'vscode.open', title: 'Open Image', arguments: [vscode.Uri.file(file)] };
        return item;
      }
      case 'more': {
        const next = Math.min(MAX_IMAGES_PER_CLASS, element.count);
        const item = new vscode.TreeItem(`Show ${next} more… (${element.count} left)`, vscode.TreeItemCollapsibleState.None);
        item.description = 'or open the report for all';
        item.command = { command: COMMANDS.showMoreImages, title: 'Show More Images', arguments: [element.root, element.cls] };
        return item;
      }
    }
  }

  private datasetItem(result: DatasetResult): vscode.TreeItem {
    const { report } = result;
    const current = this.store.currentResult?.root === result.root;
    const item = new vscode.TreeItem(datasetName(result.root), current ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
    item.id = `dataset:${result.root}`;
    item.contextValue = TREE_CONTEXT.dataset;
    const running = this.engine.runningState(result.root);
    const parts: string[] = [];
    if (running) parts.push(running.message);
    else {
      parts.push(report.metrics ? `top-1 ${pct(report.metrics.top1Accuracy)}` : 'no result');
      parts.push(`${report.dataset.counts.samples} images`);
      if (result.gate && result.gate.summary.total > 0) parts.push(result.gate.passed ? 'gate passed' : `gate failed ${result.gate.summary.failed}/${result.gate.summary.total}`);
      if (result.stale) parts.push('out of date');
      if (report.provisional) parts.push(describeProvisional(report.provisional));
    }
    item.description = parts.join(' · ');
    item.iconPath = running
      ? new vscode.ThemeIcon('sync~spin')
      : result.gate && !result.gate.passed
        ? new vscode.ThemeIcon('error', red)
        : new vscode.ThemeIcon(datasetFormat(report.dataset.format).hasLabelFile ? 'file-text' : 'folder-library');
    const md = new vscode.MarkdownString(statusTooltipLines(report, result.gate, { datasetName: datasetName(result.root), stale: result.stale }).slice(0, -2).join('\n'), true);
    md.appendMarkdown(`\n\n${escapeMarkdown(result.target)}`);
    item.tooltip = md;
    return item;
  }

  async resolveTreeItem(item: vscode.TreeItem, element: DatasetNode, token: vscode.CancellationToken): Promise<vscode.TreeItem> {
    if ((element.kind !== 'image' && element.kind !== 'dupImage' && element.kind !== 'outlierImage') || item.tooltip) return item;
    const result = this.store.get(element.root);
    const sample = result ? samplesOf(result.report).at(element.index) : undefined;
    if (!result || !sample) return item;
    const thumb = await this.thumbnails.markdown(sampleFile(result.report, sample.path));
    if (token.isCancellationRequested) return item;
    const md = new vscode.MarkdownString(`${thumb}\n\n**${escapeMarkdown(sample.path)}** · label **${escapeMarkdown(sample.label)}**\n\n${predictionsMarkdown(sample, result.report)}`, true);
    item.tooltip = md;
    return item;
  }

  dispose(): void {
    this.changed.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
