/**
 * Fixes of likely label errors, shared by code actions, the Label issues view, the explorer command and the report
 * panel. Every change goes through a WorkspaceEdit, so it is undoable, and nothing changes unless the user asked:
 * - "Move to folder 'dog'" (class folders): a rename into the other class folder; refused when the target exists;
 * - "Change label to 'dog'" (label files): replaces exactly the label field of the image's line (CSV quoting and
 *   JSONL escaping kept right, see labelEdits.ts); refused when the line no longer has the label the report saw;
 * - "Ignore this sample": adds the path to `ignore` in the dataset's `.clip-lens.json` with the smallest edit,
 *   creating the file when there is none.
 * - "Add a prompt for 'X'" (warning prompt-fails): adds `"X": "x"` to `prompts` in `.clip-lens.json` the same way and
 *   selects the prompt text for the user to type a better one.
 * Edits are marked as refactorings, so VS Code saves files that were not open (setting files.refactoring.autoSave).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ClipLensError } from '../core/errors';
import { pathExists } from '../core/fileSystem';
import { labelFileKind } from '../core/datasetFormat';
import { CONFIG_FILE_NAME, ignoredSampleEdit, promptEntryEdit } from '../core/projectConfig';
import { indexLabelFile, sampleFile } from './diagnosticsModel';
import { changeLabelEdit, editorLineStarts, LabelEditError, positionAt, stripBom } from './labelEdits';
import type { TextEdit } from '../core/textEdit';
import { FixError, folderMoveTarget } from './fixPlan';
import { pathKey, samePath } from './datasetFiles';
import type { DatasetResult, ReportStore } from './store';
import { datasetFormat } from '../core/datasetFormat';

/** How long file events caused by our own moves are recognised as such (watcher.ts). */
const OWN_CHANGE_MS = 5000;

export class Fixes {
  private readonly ownChanges = new Map<string, number>();

  constructor(
    private readonly store: ReportStore,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** True when a file event at this path comes from a fix applied a moment ago. */
  isOwnChange(fsPath: string): boolean {
    const until = this.ownChanges.get(pathKey(fsPath));
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.ownChanges.delete(pathKey(fsPath));
      return false;
    }
    return true;
  }

  private noteOwnChange(...files: string[]): void {
    const until = Date.now() + OWN_CHANGE_MS;
    for (const f of files) this.ownChanges.set(pathKey(f), until);
  }

  /** The issue of a sample in a result, when it has one. */
  issueOf(result: DatasetResult, samplePath: string) {
    return result.report.labelIssues.find((i) => (i.path ?? result.report.samples[i.index]?.path) === samplePath);
  }

  /** Applies the dataset's kind of fix: move (class folders) or change the label (label files). */
  async apply(result: DatasetResult, samplePath: string, toClass: string, options: { reveal: boolean }): Promise<string> {
    return datasetFormat(result.report.dataset.format).fix === 'change-label' ? this.changeLabel(result, samplePath, toClass, options) : this.moveToFolder(result, samplePath, toClass);
  }

  /** Moves an image into another class folder (undoable rename). Resolves with a confirmation. */
  async moveToFolder(result: DatasetResult, samplePath: string, toClass: string): Promise<string> {
    const { report } = result;
    const sample = report.samples.find((s) => s.path === samplePath);
    if (!sample) throw new FixError(`${samplePath} is not a sample of this report`);
    if (!report.dataset.classes.includes(toClass)) throw new FixError(`'${toClass}' is not a class of this dataset`);
    const targetRel = folderMoveTarget(samplePath, report.dataset.format, sample.label, toClass);
    const from = sampleFile(report, samplePath);
    const to = sampleFile(report, targetRel);
    if (!(await pathExists(from))) throw new FixError(`${samplePath} is not there any more (moved or deleted since the evaluation)`);
    if (await pathExists(to)) throw new FixError(`${targetRel} already exists; move or rename one of the two images by hand`);
    const edit = new vscode.WorkspaceEdit();
    edit.renameFile(vscode.Uri.file(from), vscode.Uri.file(to), { overwrite: false }, { label: `Move ${path.basename(from)} to ${toClass}/`, needsConfirmation: false });
    this.noteOwnChange(from, to);
    if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not move ${samplePath} to ${targetRel}`);
    this.store.resolve(result.root, samplePath, 'fixed');
    this.log.info(`moved ${samplePath} to ${targetRel}`);
    return `Moved to ${path.posix.dirname(targetRel)}/`;
  }

  /** The label file document and the edit that changes a sample's label (computed from the current text). */
  async labelEdit(result: DatasetResult, samplePath: string, toClass: string): Promise<{ uri: vscode.Uri; doc: vscode.TextDocument; range: vscode.Range; text: string; line: number }> {
    const { report } = result;
    const labelFile = report.dataset.labelFile;
    const kind = labelFile ? labelFileKind(labelFile) : undefined;
    if (!labelFile || !kind) throw new FixError('this dataset has no label file');
    const sample = report.samples.find((s) => s.path === samplePath);
    if (!sample) throw new FixError(`${samplePath} is not a sample of this report`);
    const uri = vscode.Uri.file(labelFile);
    const doc = await vscode.workspace.openTextDocument(uri);
    const text = doc.getText();
    const columns = result.config.labels ?? {};
    // The line may have moved since the evaluation: find the image's current line.
    const index = indexLabelFile(report, { text, kind, columns });
    const line = index?.entries.get(samplePath)?.line ?? sample.source?.line;
    if (line === undefined) throw new FixError(`${samplePath} is no longer listed in ${path.basename(labelFile)}`);
    let edit: TextEdit;
    try {
      edit = changeLabelEdit(text, kind, line, sample.label, toClass, columns);
    } catch (e) {
      if (e instanceof LabelEditError) throw new FixError(`${path.basename(labelFile)}: ${e.message}`);
      throw e;
    }
    const range = new vscode.Range(doc.positionAt(edit.offset), doc.positionAt(edit.offset + edit.length));
    return { uri, doc, range, text: edit.text, line };
  }

  /** Changes a sample's label in its label file (undoable text edit). Resolves with a confirmation. */
  async changeLabel(result: DatasetResult, samplePath: string, toClass: string, options: { reveal: boolean }): Promise<string> {
    const e = await this.labelEdit(result, samplePath, toClass);
    const wasDirty = e.doc.isDirty;
    const edit = new vscode.WorkspaceEdit();
    edit.replace(e.uri, e.range, e.text, { label: `Change label to '${toClass}'`, needsConfirmation: false });
    if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not edit ${path.basename(e.uri.fsPath)}`);
    this.store.resolve(result.root, samplePath, 'fixed');
    this.log.info(`changed the label of ${samplePath} to '${toClass}' on line ${e.line} of ${e.uri.fsPath}`);
    if (options.reveal) {
      const start = e.range.start;
      const end = e.doc.positionAt(e.doc.offsetAt(start) + e.text.length);
      await vscode.window.showTextDocument(e.doc, { selection: new vscode.Range(start, end), preserveFocus: false, preview: true });
    }
    const name = path.basename(e.uri.fsPath);
    return `Label changed to '${toClass}' (line ${e.line} of ${name}${wasDirty ? ', which has other unsaved changes' : ''})`;
  }

  /** The edit that adds a sample to the `ignore` list of the dataset's `.clip-lens.json`; undefined when already there. */
  async ignoreEdit(result: DatasetResult, samplePath: string): Promise<vscode.WorkspaceEdit | undefined> {
    const file = path.join(result.root, CONFIG_FILE_NAME);
    const uri = vscode.Uri.file(file);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && samePath(d.uri.fsPath, file));
    let text: string | undefined;
    if (open) text = open.getText();
    else {
      try {
        text = stripBom(await fs.promises.readFile(file, 'utf8'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ClipLensError('config-unreadable', `cannot read: ${(e as Error).message}`, { file });
      }
    }
    const metadata = { label: `Ignore ${samplePath}`, needsConfirmation: false };
    const edit = new vscode.WorkspaceEdit();
    if (text === undefined) {
      const created = ignoredSampleEdit('', samplePath) as TextEdit;
      edit.createFile(uri, { ignoreIfExists: false, contents: new TextEncoder().encode(created.text) }, metadata);
      return edit;
    }
    let change: TextEdit | undefined;
    try {
      change = ignoredSampleEdit(text, samplePath);
    } catch (e) {
      if (e instanceof ClipLensError) throw new ClipLensError(e.code, `${e.message.replace(/^[^:]*\.clip-lens\.json:\d*:? ?/, '')}; fix it before ignoring samples`, { file, line: e.line });
      throw e;
    }
    if (!change) return undefined;
    const starts = open ? undefined : editorLineStarts(text);
    const pos = (offset: number) => {
      if (open) return open.positionAt(offset);
      const p = positionAt(starts as number[], offset);
      return new vscode.Position(p.line, p.character);
    };
    edit.replace(uri, new vscode.Range(pos(change.offset), pos(change.offset + change.length)), change.text, metadata);
    return edit;
  }

  /** Adds a sample to the ignore list (undoable). Resolves with a confirmation. */
  async ignore(result: DatasetResult, samplePath: string): Promise<string> {
    if (!result.report.samples.some((s) => s.path === samplePath)) throw new FixError(`${samplePath} is not a sample of this report`);
    const edit = await this.ignoreEdit(result, samplePath);
    if (edit && !(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not edit ${CONFIG_FILE_NAME}`);
    this.store.resolve(result.root, samplePath, 'ignored');
    this.log.info(edit ? `added ${samplePath} to "ignore" in ${path.join(result.root, CONFIG_FILE_NAME)}` : `${samplePath} was already ignored`);
    return edit ? `Ignored (added to ${CONFIG_FILE_NAME})` : `Already in the ignore list of ${CONFIG_FILE_NAME}`;
  }

  /**
   * Adds a `prompts` entry for a class to the dataset's `.clip-lens.json` (created when missing; undoable), opens
   * the file and selects the prompt text, which starts as the class name with _ and - as spaces.
   */
  async addPrompt(result: DatasetResult, className: string): Promise<string> {
    if (!result.report.dataset.classes.includes(className)) throw new FixError(`'${className}' is not a class of this dataset`);
    const file = path.join(result.root, CONFIG_FILE_NAME);
    const uri = vscode.Uri.file(file);
    const prompt = className.replace(/[_-]+/g, ' ').trim() || className;
    const exists = await pathExists(file);
    const metadata = { label: `Add a prompt for '${className}'`, needsConfirmation: false };
    const edit = new vscode.WorkspaceEdit();
    let changed = true;
    if (!exists) {
      const created = promptEntryEdit('', className, prompt) as TextEdit;
      edit.createFile(uri, { ignoreIfExists: false, contents: new TextEncoder().encode(created.text) }, metadata);
    } else {
      const doc = await vscode.workspace.openTextDocument(uri);
      let change: TextEdit | undefined;
      try {
        change = promptEntryEdit(doc.getText(), className, prompt);
      } catch (e) {
        if (e instanceof ClipLensError) throw new ClipLensError(e.code, `${e.message.replace(/^[^:]*\.clip-lens\.json:\d*:? ?/, '')}; fix it before adding prompts`, { file, line: e.line });
        throw e;
      }
      if (change) edit.replace(uri, new vscode.Range(doc.positionAt(change.offset), doc.positionAt(change.offset + change.length)), change.text, metadata);
      else changed = false;
    }
    if (changed && !(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not edit ${CONFIG_FILE_NAME}`);
    // Select the prompt text so the user can type a better one.
    const doc = await vscode.workspace.openTextDocument(uri);
    const text = doc.getText();
    const key = text.indexOf(`${JSON.stringify(className)}:`, Math.max(0, text.indexOf('"prompts"')));
    const valueStart = key >= 0 ? text.indexOf('"', key + JSON.stringify(className).length + 1) : -1;
    const valueEnd = valueStart >= 0 ? text.indexOf('"', valueStart + 1) : -1;
    const selection = valueEnd > valueStart && valueStart >= 0 ? new vscode.Range(doc.positionAt(valueStart + 1), doc.positionAt(valueEnd)) : undefined;
    await vscode.window.showTextDocument(doc, { selection, preview: false });
    this.log.info(`added a prompt for '${className}' to ${file}`);
    return changed ? `Added a prompt for '${className}' to ${CONFIG_FILE_NAME}: type a better one and re-run` : `'${className}' already has a prompt in ${CONFIG_FILE_NAME}`;
  }
}
