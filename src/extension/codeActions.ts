/**
 * Quick fixes on the diagnostics of likely label errors in label files ("Change label to 'dog'", "Change label to
 * another class…", "Open image", "Ignore this sample"), on label-file lines whose class was merged into another with
 * the same prompt ("Change label to 'red_circle'" for a `RED_CIRCLE` line), and on failed gate thresholds in
 * `.clip-lens.json` ("Open the report", and "Add a prompt for 'X'" for classes whose zero-shot prompt fails while a
 * linear probe separates them), and "Remove x.jpg from the 'test' split…" on the line of a leaked or duplicated image
 * (a command: it asks first). Edits are computed from the document as it is when the user picks the fix (resolveCodeAction), so they
 * apply to the current text, and only the label field (or the ignore list) changes.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CONFIG_FILE_NAME } from '../core/projectConfig';
import { changeLabelEdit, fieldsOnLine, labelFileLayout, stripBom } from './labelEdits';
import { COMMANDS } from './commandIds';
import { DIAGNOSTIC_SOURCE, type DiagnosticsManager } from './diagnostics';
import type { IssueRef } from './diagnosticsModel';
import type { Fixes } from './fixes';
import type { ReportStore } from './store';
import { labelFileGlob, labelFileKind } from '../core/datasetFormat';
import { removalCandidates, removalTitle } from './removalModel';
import { samplesOf } from '../core/sampleTable';

/** Label files: CSV, TSV, JSONL (as core/labelFile.ts reads them), in either letter case. */
export const LABEL_FILE_SELECTOR: vscode.DocumentSelector = [{ scheme: 'file', pattern: labelFileGlob() }];
export const CONFIG_SELECTOR: vscode.DocumentSelector = [{ scheme: 'file', pattern: `**/${CONFIG_FILE_NAME}` }];

function codeOf(d: vscode.Diagnostic): string | undefined {
  const c = d.code;
  if (c === undefined) return undefined;
  return typeof c === 'object' ? String(c.value) : String(c);
}

class IssueAction extends vscode.CodeAction {
  constructor(
    title: string,
    readonly fix: { type: 'change' | 'ignore'; issue: IssueRef },
  ) {
    super(title, vscode.CodeActionKind.QuickFix);
  }
}

/**
 * "Rename to 'topK'" for a config key the validator (or the gate, for class names) answered with "did you mean …?":
 * replaces the quoted key the diagnostic starts at, keeping the value.
 */
export function renameKeyFix(document: Pick<vscode.TextDocument, 'getText' | 'offsetAt' | 'positionAt' | 'uri'>, d: vscode.Diagnostic): vscode.CodeAction | undefined {
  const guess = /did you mean '?([^'?\s]+)'?\?/.exec(d.message)?.[1];
  if (!guess) return undefined;
  const text = document.getText();
  const start = document.offsetAt(d.range.start);
  const m = /^"((?:[^"\\]|\\.)*)"/.exec(text.slice(start, start + 512));
  if (!m || m[1] === guess) return undefined;
  const action = new vscode.CodeAction(`Rename to '${guess}'`, vscode.CodeActionKind.QuickFix);
  action.diagnostics = [d];
  action.isPreferred = true;
  action.edit = new vscode.WorkspaceEdit();
  action.edit.replace(document.uri, new vscode.Range(document.positionAt(start), document.positionAt(start + m[0].length)), JSON.stringify(guess));
  return action;
}

export class LabelIssueCodeActions implements vscode.CodeActionProvider<vscode.CodeAction> {
  static readonly metadata: vscode.CodeActionProviderMetadata = { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] };

  constructor(
    private readonly store: ReportStore,
    private readonly diagnostics: DiagnosticsManager,
    private readonly fixes: Fixes,
  ) {}

  provideCodeActions(document: vscode.TextDocument, _range: vscode.Range | vscode.Selection, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const actions: vscode.CodeAction[] = [];
    for (const d of context.diagnostics) {
      if (d.source !== DIAGNOSTIC_SOURCE) continue;
      const code = codeOf(d);
      if (code === 'label-issue') {
        const issue = this.diagnostics.issueAt(document.uri, d.range.start.line);
        if (!issue || !this.store.get(issue.datasetRoot)) continue;
        const change = new IssueAction(`Change label to '${issue.suggested}'`, { type: 'change', issue });
        change.diagnostics = [d];
        change.isPreferred = true;
        const other = new vscode.CodeAction('Change label to another class…', vscode.CodeActionKind.QuickFix);
        other.diagnostics = [d];
        other.command = { command: COMMANDS.applyFixChooseClass, title: 'Change label to another class…', arguments: [issue.datasetRoot, issue.samplePath] };
        const open = new vscode.CodeAction(`Open image ${path.posix.basename(issue.samplePath)}`, vscode.CodeActionKind.QuickFix);
        open.diagnostics = [d];
        open.command = { command: COMMANDS.openImage, title: 'Open image', arguments: [issue.datasetRoot, issue.samplePath] };
        const ignore = new IssueAction(`Ignore this sample (add it to ${CONFIG_FILE_NAME})`, { type: 'ignore', issue });
        ignore.diagnostics = [d];
        actions.push(change, other, open, ignore);
      } else if (code === 'leakage' || code === 'duplicate' || code === 'conflicting-labels') {
        const remove = this.removeAction(document, d);
        if (remove) actions.push(remove);
      } else if (code === 'class-name-collision') {
        const merge = this.mergeAction(document, d);
        if (merge) actions.push(merge);
      } else if (path.basename(document.uri.fsPath) === CONFIG_FILE_NAME && (code === 'config-invalid' || code === 'clip-lens/gate-config') && renameKeyFix(document, d)) {
        actions.push(renameKeyFix(document, d)!);
      } else if (code?.startsWith('clip-lens/') && path.basename(document.uri.fsPath) === CONFIG_FILE_NAME) {
        const root = path.dirname(document.uri.fsPath);
        if (!this.store.get(root)) continue;
        const open = new vscode.CodeAction('Open the CLIP Lens report', vscode.CodeActionKind.QuickFix);
        open.diagnostics = [d];
        open.command = { command: COMMANDS.openReport, title: 'Open the CLIP Lens report', arguments: [root] };
        actions.push(open);
      }
    }
    actions.push(...this.promptActions(document));
    return actions;
  }

  /** In a `.clip-lens.json`: "Add a prompt for 'X'" for each class whose prompt fails (warning prompt-fails). */
  private promptActions(document: vscode.TextDocument): vscode.CodeAction[] {
    if (path.basename(document.uri.fsPath) !== CONFIG_FILE_NAME) return [];
    const root = path.dirname(document.uri.fsPath);
    const result = this.store.get(root);
    if (!result) return [];
    return result.report.warnings
      .filter((w) => w.kind === 'prompt-fails' && w.class !== undefined)
      .map((w) => {
        const title = `Add a prompt for '${w.class}' (CLIP separates it, the prompt fails)`;
        const action = new vscode.CodeAction(title, vscode.CodeActionKind.QuickFix);
        action.command = { command: COMMANDS.addPrompt, title, arguments: [root, w.class] };
        return action;
      });
  }

  /**
   * "Remove x.jpg from the 'test' split" on the label-file line of a leaked or duplicated image: runs the command,
   * which asks for confirmation (modal) and deletes the line as one undoable step.
   */
  private removeAction(document: vscode.TextDocument, d: vscode.Diagnostic): vscode.CodeAction | undefined {
    const result = document.uri.scheme === 'file' ? this.store.findByLabelFile(document.uri.fsPath) : undefined;
    if (!result) return undefined;
    const line = d.range.start.line + 1;
    let sample: { path: string } | undefined;
    for (const s of samplesOf(result.report)) if (s.source?.line === line) sample = s;
    const candidate = sample && removalCandidates(result.report).find((c) => c.samplePath === sample.path);
    if (!candidate || result.resolved.has(candidate.samplePath)) return undefined;
    const title = removalTitle(candidate.samplePath, candidate.split);
    const action = new vscode.CodeAction(`${title}…`, vscode.CodeActionKind.QuickFix);
    action.diagnostics = [d];
    action.command = { command: COMMANDS.removeFromSplit, title, arguments: [result.root, candidate.samplePath] };
    return action;
  }

  /**
   * "Change label to 'red_circle'" on a label-file line whose label was merged into the class the evaluation kept (the
   * sample's label in the report): the edit is the label field of the line as the document is now.
   */
  private mergeAction(document: vscode.TextDocument, d: vscode.Diagnostic): vscode.CodeAction | undefined {
    const result = document.uri.scheme === 'file' ? this.store.findByLabelFile(document.uri.fsPath) : undefined;
    const kind = labelFileKind(document.uri.fsPath);
    if (!result || !kind) return undefined;
    const line = d.range.start.line + 1;
    const problem = result.report.errors.find((p) => p.code === 'class-name-collision' && p.line === line && p.path !== undefined);
    const kept = problem && samplesOf(result.report).byPath(problem.path as string)?.label;
    if (!kept) return undefined;
    const raw = document.getText();
    const text = stripBom(raw);
    const bom = raw.length - text.length;
    const columns = result.config.labels ?? {};
    const layout = labelFileLayout(text, kind, columns);
    const current = layout ? fieldsOnLine(text, layout, line)?.label.value : undefined;
    if (current === undefined || current === kept) return undefined;
    let edit;
    try {
      edit = changeLabelEdit(text, kind, line, current, kept, columns);
    } catch {
      return undefined;
    }
    const action = new vscode.CodeAction(`Change label to '${kept}'`, vscode.CodeActionKind.QuickFix);
    action.diagnostics = [d];
    action.isPreferred = true;
    action.edit = new vscode.WorkspaceEdit();
    action.edit.replace(document.uri, new vscode.Range(document.positionAt(bom + edit.offset), document.positionAt(bom + edit.offset + edit.length)), edit.text);
    return action;
  }

  async resolveCodeAction(action: vscode.CodeAction): Promise<vscode.CodeAction> {
    if (!(action instanceof IssueAction)) return action;
    const { issue } = action.fix;
    const result = this.store.get(issue.datasetRoot);
    if (!result) return action;
    try {
      if (action.fix.type === 'change') {
        const e = await this.fixes.labelEdit(result, issue.samplePath, issue.suggested);
        const edit = new vscode.WorkspaceEdit();
        edit.replace(e.uri, e.range, e.text);
        action.edit = edit;
        this.store.resolve(result.root, issue.samplePath, 'fixed');
      } else {
        const edit = await this.fixes.ignoreEdit(result, issue.samplePath);
        if (edit) action.edit = edit;
        this.store.resolve(result.root, issue.samplePath, 'ignored');
      }
    } catch (e) {
      void vscode.window.showErrorMessage(`CLIP Lens: ${(e as Error).message}`);
    }
    return action;
  }
}
