/**
 * Publishes the diagnostics of diagnosticsModel.ts and keeps them current:
 * - label issues: recomputed (debounced) when a label file changes in the editor, and when images of a class-folder
 *   dataset are moved (an issue whose image left its folder, or whose line lost its label, disappears; an undo brings
 *   it back);
 * - dataset problems: once per evaluation;
 * - `.clip-lens.json`: validated live for every open config (even before any evaluation), with failed gate thresholds
 *   of the last evaluation on the keys they come from.
 * Source "CLIP Lens"; the code is the issue kind and links to docs/extension.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { labelFileKind } from '../core/datasetFormat';
import { CONFIG_FILE_NAME } from '../core/projectConfig';
import type { Settings } from './config';
import {
  configDiagnostics,
  datasetDiagnostics,
  gateDiagnostics,
  issuePathsInOrder,
  labelIssueDiagnostics,
  type IssueRef,
  type LabelFileText,
  type PlainDiagnostic,
  type PlainRange,
  type Severity,
} from './diagnosticsModel';
import { Debouncer } from './enginePool';
import { stripBom } from './labelEdits';
import { samePath } from './datasetFiles';
import type { DatasetResult, ReportStore } from './store';
import { datasetFormat } from '../core/datasetFormat';

export const DIAGNOSTIC_SOURCE = 'CLIP Lens';

/** Images checked at once for existence (class-folder label issues). */
const STAT_BATCH = 256;

/** Label files with more lines than this are re-read on save rather than on every edit. */
const LIVE_LABEL_FILE_LINES = 50_000;

const SEVERITY: Record<Severity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  information: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};

function toRange(r: PlainRange): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

/** Groups plain diagnostics by file into vscode.Diagnostic lists. */
function group(items: PlainDiagnostic[], docs: vscode.Uri): Map<string, { uri: vscode.Uri; diagnostics: vscode.Diagnostic[] }> {
  const out = new Map<string, { uri: vscode.Uri; diagnostics: vscode.Diagnostic[] }>();
  for (const d of items) {
    const uri = vscode.Uri.file(d.file);
    const key = uri.toString();
    let entry = out.get(key);
    if (!entry) out.set(key, (entry = { uri, diagnostics: [] }));
    const diag = new vscode.Diagnostic(toRange(d.range), d.message, SEVERITY[d.severity]);
    diag.source = DIAGNOSTIC_SOURCE;
    diag.code = d.link ? { value: d.link.label, target: vscode.Uri.parse(`command:${d.link.command}?${encodeURIComponent(JSON.stringify(d.link.args))}`) } : { value: d.code, target: docs };
    if (d.related) diag.relatedInformation = d.related.map((r) => new vscode.DiagnosticRelatedInformation(new vscode.Location(vscode.Uri.file(r.file), toRange(r.range)), r.message));
    entry.diagnostics.push(diag);
  }
  return out;
}

function isConfigDocument(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme === 'file' && path.basename(doc.uri.fsPath) === CONFIG_FILE_NAME;
}

export class DiagnosticsManager implements vscode.Disposable {
  private readonly issues = vscode.languages.createDiagnosticCollection('clipLens.labelIssues');
  private readonly problems = vscode.languages.createDiagnosticCollection('clipLens.dataset');
  private readonly config = vscode.languages.createDiagnosticCollection('clipLens.config');
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly debouncer = new Debouncer();
  /** Per dataset root: the uris each collection holds for it (to clear what is no longer reported). */
  private readonly owned = new Map<string, { issues: Set<string>; problems: Set<string> }>();
  /** Label issues by uri and 0-based line, for code actions. */
  private readonly issueIndex = new Map<string, Map<number, IssueRef>>();
  /**
   * Report (by root) whose dataset problems are published, with the samples removed from their split at the time,
   * so they are only recomputed for a new evaluation or a removal (or its undo).
   */
  private readonly publishedReports = new Map<string, { report: unknown; removed: string }>();
  private readonly docs: vscode.Uri;

  constructor(
    private readonly store: ReportStore,
    private readonly settings: () => Settings,
    extensionUri: vscode.Uri,
  ) {
    this.docs = vscode.Uri.joinPath(extensionUri, 'docs', 'extension.md');
    this.subscriptions.push(
      store.onDidChange((root) => void this.refresh(root)),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length > 0) this.onDocumentChanged(e.document);
      }),
      vscode.workspace.onDidSaveTextDocument((doc) => {
        const result = doc.uri.scheme === 'file' ? this.store.findByLabelFile(doc.uri.fsPath) : undefined;
        if (result && doc.lineCount > LIVE_LABEL_FILE_LINES) void this.refreshIssues(result);
      }),
      vscode.workspace.onDidOpenTextDocument((doc) => {
        if (isConfigDocument(doc)) void this.refreshConfig(doc.uri.fsPath);
      }),
      vscode.workspace.onDidCloseTextDocument((doc) => {
        // A closed config keeps the problems of its saved content.
        if (isConfigDocument(doc)) void this.refreshConfig(doc.uri.fsPath);
      }),
    );
    for (const doc of vscode.workspace.textDocuments) if (isConfigDocument(doc)) void this.refreshConfig(doc.uri.fsPath);
    void this.refresh(undefined);
  }

  /** The label issue a diagnostic on this line of this document is about. */
  issueAt(uri: vscode.Uri, line: number): IssueRef | undefined {
    return this.issueIndex.get(uri.toString())?.get(line);
  }

  /** Recomputes one dataset's diagnostics (undefined: all), and drops those of datasets no longer in the store. */
  async refresh(root: string | undefined): Promise<void> {
    const results = root ? [this.store.get(root)].filter((r): r is DatasetResult => r !== undefined) : this.store.all();
    const known = new Set(this.store.all().map((r) => r.root));
    for (const r of [...this.owned.keys()]) if (!known.has(r)) this.clearDataset(r);
    await Promise.all(results.map((r) => this.refreshDataset(r)));
  }

  private onDocumentChanged(doc: vscode.TextDocument): void {
    if (doc.uri.scheme !== 'file') return;
    const file = doc.uri.fsPath;
    if (isConfigDocument(doc)) {
      this.debouncer.trigger(`config:${file}`, 250, () => void this.refreshConfig(file));
      return;
    }
    const result = this.store.findByLabelFile(file);
    if (result && doc.lineCount <= LIVE_LABEL_FILE_LINES) this.debouncer.trigger(`issues:${result.root}`, 300, () => void this.refreshIssues(result));
  }

  /** The label file of a result as text: the open document when there is one, else the file on disk. */
  private async labelFileText(result: DatasetResult): Promise<LabelFileText | null> {
    const file = result.report.dataset.labelFile;
    const kind = file ? labelFileKind(file) : undefined;
    if (!file || !kind) return null;
    const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && samePath(d.uri.fsPath, file));
    let text: string;
    if (open) text = open.getText();
    else {
      try {
        text = stripBom(await fs.promises.readFile(file, 'utf8'));
      } catch {
        return null;
      }
    }
    return { text, kind, columns: result.config.labels ?? {} };
  }

  private ownedOf(root: string) {
    let o = this.owned.get(root);
    if (!o) this.owned.set(root, (o = { issues: new Set(), problems: new Set() }));
    return o;
  }

  /** Replaces what a collection holds for a dataset. */
  private publish(collection: vscode.DiagnosticCollection, previous: Set<string>, items: PlainDiagnostic[]): Set<string> {
    const grouped = group(items, this.docs);
    for (const key of previous) if (!grouped.has(key)) collection.delete(vscode.Uri.parse(key));
    for (const { uri, diagnostics } of grouped.values()) collection.set(uri, diagnostics);
    return new Set(grouped.keys());
  }

  private async refreshDataset(result: DatasetResult): Promise<void> {
    await this.refreshIssues(result);
    const removed = this.store.removedPaths(result);
    const removedKey = [...removed].sort().join('\0');
    const published = this.publishedReports.get(result.root);
    if (published?.report !== result.report || published.removed !== removedKey) {
      this.publishedReports.set(result.root, { report: result.report, removed: removedKey });
      const labelFile = await this.labelFileText(result);
      const own = this.ownedOf(result.root);
      own.problems = this.publish(this.problems, own.problems, datasetDiagnostics({ report: result.report, labelFile, max: this.settings().maxProblems, removed }));
    }
    await this.refreshConfig(result.configFile);
  }

  async refreshIssues(result: DatasetResult): Promise<void> {
    const current = this.store.get(result.root);
    if (!current) return;
    const { report } = current;
    const ignored = this.store.ignoredPaths(current);
    const { labelIssueWarningScore: warningScore, maxProblems: max } = this.settings();
    let items: PlainDiagnostic[];
    if (datasetFormat(report.dataset.format).samplesHaveLines) {
      items = labelIssueDiagnostics({ report, labelFile: await this.labelFileText(current), resolved: ignored, warningScore, max });
    } else {
      // Images are checked in rank order, STAT_BATCH at a time, until `max` are present: not all 100,000 of a large run.
      const present = new Set<string>();
      const checked = new Set<string>();
      const order = issuePathsInOrder(report, ignored);
      for (let start = 0; start < order.length && present.size < max; start += STAT_BATCH) {
        await Promise.all(
          order.slice(start, start + STAT_BATCH).map(async (p) => {
            checked.add(p);
            if (await fs.promises.stat(path.join(report.dataset.root, ...p.split('/'))).then(() => true, () => false)) present.add(p);
          }),
        );
      }
      items = labelIssueDiagnostics({ report, resolved: ignored, imageExists: (p) => present.has(p) || !checked.has(p), warningScore, max });
    }
    if (this.store.get(result.root) !== current) return; // a newer result arrived meanwhile
    const own = this.ownedOf(result.root);
    for (const key of own.issues) this.issueIndex.delete(key);
    own.issues = this.publish(this.issues, own.issues, items);
    for (const d of items) {
      if (!d.issue) continue;
      const key = vscode.Uri.file(d.file).toString();
      let byLine = this.issueIndex.get(key);
      if (!byLine) this.issueIndex.set(key, (byLine = new Map()));
      byLine.set(d.range.start.line, d.issue);
    }
  }

  /** Validates a `.clip-lens.json` (open document or disk) and adds the failed gate checks of its dataset. */
  async refreshConfig(file: string): Promise<void> {
    const uri = vscode.Uri.file(file);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && samePath(d.uri.fsPath, file));
    let text: string | null = null;
    if (open) text = open.getText();
    else {
      try {
        text = stripBom(await fs.promises.readFile(file, 'utf8'));
      } catch {
        text = null;
      }
    }
    const items: PlainDiagnostic[] = [];
    if (text !== null) items.push(...configDiagnostics(file, text));
    const result = this.store.findByConfigFile(file);
    if (result?.gate && text !== null) items.push(...gateDiagnostics(file, text, result.gate));
    const grouped = group(items, this.docs);
    this.config.set(uri, grouped.get(uri.toString())?.diagnostics ?? []);
  }

  private clearDataset(root: string): void {
    const own = this.owned.get(root);
    if (!own) return;
    for (const key of own.issues) {
      this.issues.delete(vscode.Uri.parse(key));
      this.issueIndex.delete(key);
    }
    for (const key of own.problems) this.problems.delete(vscode.Uri.parse(key));
    this.owned.delete(root);
    this.publishedReports.delete(root);
    // Its gate results go; the config's own problems stay.
    void this.refreshConfig(path.join(root, CONFIG_FILE_NAME));
  }

  dispose(): void {
    this.debouncer.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.issues.dispose();
    this.problems.dispose();
    this.config.dispose();
  }
}
