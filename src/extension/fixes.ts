/**
 * Fixes of likely label errors, shared by code actions, the Label issues view, the explorer command and the report
 * panel. Every change goes through a WorkspaceEdit, so it is undoable, and nothing changes unless the user asked:
 * - "Move to folder 'dog'" (class folders): a rename into the other class folder; refused when the target exists;
 * - "Change label to 'dog'" (label files): replaces exactly the label field of the image's line (CSV quoting and
 *   JSONL escaping kept right, see labelEdits.ts); refused when the line no longer has the label the report saw;
 * - "Ignore this sample": adds the path to `ignore` in the dataset's `.clip-lens.json` with the smallest edit,
 *   creating the file when there is none.
 * - "Remove x.jpg from the 'test' split" (leaked and duplicated images, after a modal confirmation; removalModel.ts):
 *   class folders move the image into the dataset's hidden `.clip-lens-removed/` folder, label files lose the image's
 *   record (the image file stays); nothing is deleted.
 * - "Add a prompt for 'X'" (warning prompt-fails): adds `"X": "x"` to `prompts` in `.clip-lens.json` the same way and
 *   selects the prompt text for the user to type a better one.
 * Edits are marked as refactorings, so VS Code saves files that were not open (setting files.refactoring.autoSave).
 * Every fix (and every bulk fix, as one step) is recorded in a FixHistory (moveHistoryModel.ts) and announced with a
 * "… — Undo" notification; `undoLast()` reverses the newest step, because VS Code's own Undo does not reach an
 * extension's file renames.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ClipLensError } from '../core/errors';
import { makeDirectory, pathExists } from '../core/fileSystem';
import { labelFileKind } from '../core/datasetFormat';
import { addIgnoredSample, CONFIG_FILE_NAME, ignoredSampleEdit, promptEntryEdit } from '../core/projectConfig';
import { indexLabelFile, sampleFile } from './diagnosticsModel';
import { changeLabelEdit, dropRecordEdit, editorLineStarts, LabelEditError, positionAt, stripBom } from './labelEdits';
import { HOLDING_FOLDER, removalCandidates, removalConfirmation, removalPlan, removalTitle } from './removalModel';
import type { TextEdit } from '../core/textEdit';
import { FixError, folderMoveTarget } from './fixPlan';
import { FixHistory, moveMessage, undoMessage, undoPlan, type FileMove, type FixStep, type NewFixStep } from './moveHistoryModel';
import { CONTEXT_KEYS } from './commandIds';
import { pathKey, samePath } from './datasetFiles';
import type { DatasetResult, ReportStore } from './store';
import { datasetFormat } from '../core/datasetFormat';
import { samplesOf } from '../core/sampleTable';

/** How long file events caused by our own moves are recognised as such (watcher.ts). */
const OWN_CHANGE_MS = 5000;

export class Fixes implements vscode.Disposable {
  private readonly ownChanges = new Map<string, number>();
  readonly history = new FixHistory();
  private readonly subscriptions: vscode.Disposable[] = [];
  private canUndoKey: boolean | undefined;

  constructor(
    private readonly store: ReportStore,
    private readonly log: vscode.LogOutputChannel,
  ) {
    // Ctrl+Z in the Explorer undoes our move only while it is the last file operation there; any other rename,
    // creation or deletion hands Ctrl+Z back to the Explorer's own undo (the command keeps working).
    const ws = vscode.workspace as Partial<typeof vscode.workspace>;
    const other = (files: readonly vscode.Uri[]) => {
      if (files.some((f) => !this.isOwnChange(f.fsPath))) this.setCanUndo(false);
    };
    if (ws.onDidRenameFiles) this.subscriptions.push(ws.onDidRenameFiles((e) => other(e.files.map((f) => f.newUri))));
    if (ws.onDidCreateFiles) this.subscriptions.push(ws.onDidCreateFiles((e) => other(e.files)));
    if (ws.onDidDeleteFiles) this.subscriptions.push(ws.onDidDeleteFiles((e) => other(e.files)));
  }

  private setCanUndo(value: boolean): void {
    if (this.canUndoKey === value) return;
    this.canUndoKey = value;
    void vscode.commands.executeCommand('setContext', CONTEXT_KEYS.canUndoFix, value);
  }

  private record(step: NewFixStep): FixStep {
    const s = this.history.push(step);
    this.setCanUndo(true);
    return s;
  }

  /** Shows a fix's confirmation with an Undo button (resolves when the notification is answered or dismissed). */
  announce(message: string, step: FixStep | undefined): void {
    if (!step) {
      vscode.window.setStatusBarMessage(`$(check) CLIP Lens: ${message}`, 5000);
      return;
    }
    void Promise.resolve(vscode.window.showInformationMessage(`CLIP Lens: ${message}`, 'Undo')).then(async (a) => {
      if (a !== 'Undo') return;
      try {
        const done = await this.undo(step.id);
        vscode.window.setStatusBarMessage(`$(discard) CLIP Lens: ${done}`, 5000);
      } catch (e) {
        void vscode.window.showErrorMessage(`CLIP Lens: ${(e as Error).message}`);
      }
    });
  }

  /** Undoes the newest fix step. Resolves with a confirmation; throws FixError when there is none or it cannot be. */
  async undoLast(): Promise<string> {
    const step = this.history.last;
    if (!step) throw new FixError('there is no CLIP Lens fix to undo');
    return this.undo(step.id);
  }

  /** Undoes one recorded step (moves back, or the editor's undo on an unchanged document). */
  async undo(id: number): Promise<string> {
    const step = this.history.last?.id === id ? this.history.last : undefined;
    if (!step) throw new FixError('only the most recent CLIP Lens fix can be undone from here; use "CLIP Lens: Undo Last Fix" step by step');
    if (step.kind === 'move') {
      const plan = undoPlan(step.moves, (p) => fs.existsSync(p));
      if ('error' in plan) {
        this.history.remove(step.id);
        this.setCanUndo(this.history.size > 0);
        throw new FixError(`cannot undo: ${plan.error}`);
      }
      const edit = new vscode.WorkspaceEdit();
      for (const r of plan.renames) {
        edit.renameFile(vscode.Uri.file(r.from), vscode.Uri.file(r.to), { overwrite: false }, { label: `Undo: ${step.label}`, needsConfirmation: false });
        this.noteOwnChange(r.from, r.to);
      }
      if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not undo: ${step.label}`);
      for (const m of step.moves) this.store.unresolve(m.root, m.samplePath);
    } else {
      const uri = vscode.Uri.file(step.edit.file);
      const doc = await vscode.workspace.openTextDocument(uri);
      if (doc.version !== step.edit.version) {
        this.history.remove(step.id);
        this.setCanUndo(this.history.size > 0);
        throw new FixError(`${path.basename(step.edit.file)} changed since the fix; undo it in its editor (Ctrl+Z)`);
      }
      await vscode.window.showTextDocument(doc, { preview: true, preserveFocus: false });
      await vscode.commands.executeCommand('undo');
      for (const p of step.edit.samplePaths) this.store.unresolve(step.edit.root, p);
    }
    this.history.remove(step.id);
    this.setCanUndo(this.history.size > 0);
    const message = undoMessage(step);
    this.log.info(`undid: ${step.label}`);
    return message;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }

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
    return result.report.labelIssues.find((i) => (i.path ?? samplesOf(result.report).at(i.index)?.path) === samplePath);
  }

  /** Applies the dataset's kind of fix: move (class folders) or change the label (label files). */
  async apply(result: DatasetResult, samplePath: string, toClass: string, options: { reveal: boolean }): Promise<string> {
    return datasetFormat(result.report.dataset.format).fix === 'change-label' ? this.changeLabel(result, samplePath, toClass, options) : this.moveToFolder(result, samplePath, toClass);
  }

  /** Moves an image into another class folder (undoable rename). Resolves with a confirmation. */
  async moveToFolder(result: DatasetResult, samplePath: string, toClass: string): Promise<string> {
    return (await this.moveMany(result, [{ samplePath, toClass }])).message;
  }

  /**
   * Moves images into other class folders as ONE WorkspaceEdit (one undo step). Every move is checked before any
   * file is touched; a refusal of one refuses all. Resolves with a confirmation and the recorded step.
   */
  async moveMany(result: DatasetResult, items: readonly { samplePath: string; toClass: string }[]): Promise<{ message: string; step: FixStep }> {
    const { report } = result;
    if (items.length === 0) throw new FixError('no images to move');
    const moves: FileMove[] = [];
    const targets = new Set<string>();
    for (const { samplePath, toClass } of items) {
      const sample = samplesOf(report).byPath(samplePath);
      if (!sample) throw new FixError(`${samplePath} is not a sample of this report`);
      if (!report.dataset.classes.includes(toClass)) throw new FixError(`'${toClass}' is not a class of this dataset`);
      const targetRel = folderMoveTarget(samplePath, report.dataset.format, sample.label, toClass);
      const from = sampleFile(report, samplePath);
      const to = sampleFile(report, targetRel);
      if (!(await pathExists(from))) throw new FixError(`${samplePath} is not there any more (moved or deleted since the evaluation)`);
      if ((await pathExists(to)) || targets.has(pathKey(to))) throw new FixError(`${targetRel} already exists; move or rename one of the two images by hand`);
      targets.add(pathKey(to));
      moves.push({ root: result.root, samplePath, from, to, toClass });
    }
    const label = moveMessage(moves);
    const edit = new vscode.WorkspaceEdit();
    for (const m of moves) {
      edit.renameFile(vscode.Uri.file(m.from), vscode.Uri.file(m.to), { overwrite: false }, { label, needsConfirmation: false });
      this.noteOwnChange(m.from, m.to);
    }
    if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(moves.length === 1 ? `could not move ${moves[0]!.samplePath} to '${moves[0]!.toClass}'` : `could not move the ${moves.length} images`);
    for (const m of moves) {
      this.store.resolve(result.root, m.samplePath, 'fixed');
      this.log.info(`moved ${m.samplePath} to ${path.relative(result.root, m.to).split(path.sep).join('/')}`);
    }
    const step = this.record({ kind: 'move', label, moves });
    return { message: label, step };
  }

  /**
   * Removes a leaked or duplicated image from its split (from the dataset when it has no splits): checks first, then
   * asks `confirm` (commands.ts shows a modal naming the file and what will happen), then moves the image into
   * `.clip-lens-removed/` (class folders) or deletes its record from the label file, as one undoable step. Resolves
   * with a confirmation, or undefined when the user said no; throws FixError when it cannot be done.
   */
  async removeFromSplit(
    result: DatasetResult,
    samplePath: string,
    confirm: (question: { message: string; detail: string; button: string }) => Promise<boolean>,
  ): Promise<string | undefined> {
    const { report } = result;
    const plan = removalPlan(report, samplePath);
    const candidate = removalCandidates(report).find((c) => c.samplePath === samplePath);
    const title = removalTitle(samplePath, plan.split);
    const out = plan.split !== undefined ? `out of the '${plan.split}' split` : 'out of the dataset';
    if (plan.kind === 'move') {
      const from = sampleFile(report, samplePath);
      const to = sampleFile(report, plan.to);
      if (!(await pathExists(from))) throw new FixError(`${samplePath} is not there any more (moved or deleted since the evaluation)`);
      if (await pathExists(to)) throw new FixError(`${plan.to} already exists; move or rename one of the two by hand`);
      if (!(await confirm(removalConfirmation(plan, candidate)))) return undefined;
      await makeDirectory(path.dirname(to));
      const edit = new vscode.WorkspaceEdit();
      edit.renameFile(vscode.Uri.file(from), vscode.Uri.file(to), { overwrite: false }, { label: title, needsConfirmation: false });
      this.noteOwnChange(from, to);
      if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not move ${samplePath} to ${plan.to}`);
      this.store.resolve(result.root, samplePath, 'removed');
      this.log.info(`removed ${samplePath}: moved to ${plan.to}`);
      this.record({ kind: 'move', label: title, moves: [{ root: result.root, samplePath, from, to, toClass: HOLDING_FOLDER }] });
      return `Moved ${path.posix.basename(samplePath)} to ${HOLDING_FOLDER}/ (${out})`;
    }
    const kind = labelFileKind(plan.labelFile);
    const sample = samplesOf(report).byPath(samplePath)!;
    if (!kind) throw new FixError(`${path.basename(plan.labelFile)} is not a label file CLIP Lens can edit`);
    const uri = vscode.Uri.file(plan.labelFile);
    const doc = await vscode.workspace.openTextDocument(uri);
    const text = doc.getText();
    const columns = result.config.labels ?? {};
    // The line may have moved since the evaluation: find the image's current line.
    const line = indexLabelFile(report, { text, kind, columns })?.entries.get(samplePath)?.line ?? plan.line;
    let change: TextEdit;
    try {
      change = dropRecordEdit(text, kind, line, sample.label, columns);
    } catch (e) {
      if (e instanceof LabelEditError) throw new FixError(`${path.basename(plan.labelFile)}: ${e.message}`);
      throw e;
    }
    if (!(await confirm(removalConfirmation({ ...plan, line }, candidate)))) return undefined;
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, new vscode.Range(doc.positionAt(change.offset), doc.positionAt(change.offset + change.length)), '', { label: title, needsConfirmation: false });
    if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not edit ${path.basename(plan.labelFile)}`);
    this.store.resolve(result.root, samplePath, 'removed');
    this.log.info(`removed ${samplePath}: deleted line ${line} of ${plan.labelFile}`);
    this.recordText(result, [samplePath], uri, title);
    return `Removed line ${line} of ${path.basename(plan.labelFile)} (${path.posix.basename(samplePath)}, ${out}); the image file stays`;
  }

  /** The label file document and the edit that changes a sample's label (computed from the current text). */
  async labelEdit(result: DatasetResult, samplePath: string, toClass: string): Promise<{ uri: vscode.Uri; doc: vscode.TextDocument; range: vscode.Range; text: string; line: number }> {
    const { report } = result;
    const labelFile = report.dataset.labelFile;
    const kind = labelFile ? labelFileKind(labelFile) : undefined;
    if (!labelFile || !kind) throw new FixError('this dataset has no label file');
    const sample = samplesOf(report).byPath(samplePath);
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
    const label = `Change label of ${path.posix.basename(samplePath)} to '${toClass}'`;
    const edit = new vscode.WorkspaceEdit();
    edit.replace(e.uri, e.range, e.text, { label, needsConfirmation: false });
    if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not edit ${path.basename(e.uri.fsPath)}`);
    this.store.resolve(result.root, samplePath, 'fixed');
    this.log.info(`changed the label of ${samplePath} to '${toClass}' on line ${e.line} of ${e.uri.fsPath}`);
    this.recordText(result, [samplePath], e.uri, label);
    if (options.reveal) {
      const start = e.range.start;
      const end = e.doc.positionAt(e.doc.offsetAt(start) + e.text.length);
      await vscode.window.showTextDocument(e.doc, { selection: new vscode.Range(start, end), preserveFocus: false, preview: true });
    }
    const name = path.basename(e.uri.fsPath);
    return `Label changed to '${toClass}' (line ${e.line} of ${name}${wasDirty ? ', which has other unsaved changes' : ''})`;
  }

  /** Changes the labels of several samples in ONE edit of the label file (one undo step). */
  async changeLabels(result: DatasetResult, items: readonly { samplePath: string; toClass: string }[]): Promise<string> {
    if (items.length === 0) throw new FixError('no samples to change');
    const edits = [];
    for (const it of items) edits.push({ ...it, e: await this.labelEdit(result, it.samplePath, it.toClass) });
    const lines = new Set(edits.map((x) => x.e.line));
    if (lines.size !== edits.length) throw new FixError('two of the selected samples are on the same line of the label file');
    const classes = new Set(items.map((i) => i.toClass));
    const label = `Change ${items.length} label${items.length === 1 ? '' : 's'} to ${classes.size === 1 ? `'${items[0]!.toClass}'` : 'other classes'}`;
    const edit = new vscode.WorkspaceEdit();
    for (const x of edits) edit.replace(x.e.uri, x.e.range, x.e.text, { label, needsConfirmation: false });
    const uri = edits[0]!.e.uri;
    if (!(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not edit ${path.basename(uri.fsPath)}`);
    for (const x of edits) {
      this.store.resolve(result.root, x.samplePath, 'fixed');
      this.log.info(`changed the label of ${x.samplePath} to '${x.toClass}' on line ${x.e.line} of ${uri.fsPath}`);
    }
    this.recordText(result, items.map((i) => i.samplePath), uri, label);
    return `${label} (${path.basename(uri.fsPath)})`;
  }

  /** Records a text fix (by the document's version right after it) so that Undo Last Fix can reverse it. */
  private recordText(result: DatasetResult, samplePaths: string[], uri: vscode.Uri, label: string): void {
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && samePath(d.uri.fsPath, uri.fsPath));
    if (!doc) return;
    this.record({ kind: 'text', label, edit: { root: result.root, samplePaths, file: uri.fsPath, version: doc.version } });
  }

  /** The step a fix just recorded (for announce()), when the newest step is about these samples. */
  stepFor(samplePath: string): FixStep | undefined {
    const last = this.history.last;
    if (!last) return undefined;
    const paths = last.kind === 'move' ? last.moves.map((m) => m.samplePath) : last.edit.samplePaths;
    return paths.includes(samplePath) ? last : undefined;
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
    return this.ignoreMany(result, [samplePath]);
  }

  /** Adds samples to the ignore list in ONE edit (one undo step). Resolves with a confirmation. */
  async ignoreMany(result: DatasetResult, samplePaths: readonly string[]): Promise<string> {
    if (samplePaths.length === 0) throw new FixError('no samples to ignore');
    for (const p of samplePaths) if (!(samplesOf(result.report).indexOfPath(p) >= 0)) throw new FixError(`${p} is not a sample of this report`);
    const edit = samplePaths.length === 1 ? await this.ignoreEdit(result, samplePaths[0]!) : await this.ignoreManyEdit(result, samplePaths);
    if (edit && !(await vscode.workspace.applyEdit(edit, { isRefactoring: true }))) throw new FixError(`could not edit ${CONFIG_FILE_NAME}`);
    const file = path.join(result.root, CONFIG_FILE_NAME);
    for (const p of samplePaths) this.store.resolve(result.root, p, 'ignored');
    this.log.info(edit ? `added ${samplePaths.join(', ')} to "ignore" in ${file}` : `${samplePaths.join(', ')} already ignored`);
    if (edit) this.recordText(result, [...samplePaths], vscode.Uri.file(file), samplePaths.length === 1 ? `Ignore ${samplePaths[0]}` : `Ignore ${samplePaths.length} samples`);
    const what = samplePaths.length === 1 ? 'Ignored' : `Ignored ${samplePaths.length} samples`;
    return edit ? `${what} (added to ${CONFIG_FILE_NAME})` : `Already in the ignore list of ${CONFIG_FILE_NAME}`;
  }

  /** One edit adding several samples to `ignore`: the changed span between the text before and after. */
  private async ignoreManyEdit(result: DatasetResult, samplePaths: readonly string[]): Promise<vscode.WorkspaceEdit | undefined> {
    const file = path.join(result.root, CONFIG_FILE_NAME);
    const uri = vscode.Uri.file(file);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && samePath(d.uri.fsPath, file));
    let text: string | undefined;
    if (open) text = open.getText();
    else text = await fs.promises.readFile(file, 'utf8').then(stripBom, (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw new ClipLensError('config-unreadable', `cannot read: ${e.message}`, { file });
    });
    const metadata = { label: `Ignore ${samplePaths.length} samples`, needsConfirmation: false };
    let after = text ?? '';
    try {
      for (const p of samplePaths) after = addIgnoredSample(after, p);
    } catch (e) {
      if (e instanceof ClipLensError) throw new ClipLensError(e.code, `${e.message.replace(/^[^:]*\.clip-lens\.json:\d*:? ?/, '')}; fix it before ignoring samples`, { file, line: e.line });
      throw e;
    }
    const edit = new vscode.WorkspaceEdit();
    if (text === undefined) {
      edit.createFile(uri, { ignoreIfExists: false, contents: new TextEncoder().encode(after) }, metadata);
      return edit;
    }
    if (after === text) return undefined;
    let a = 0;
    while (a < text.length && a < after.length && text[a] === after[a]) a++;
    let b = 0;
    while (b < text.length - a && b < after.length - a && text[text.length - 1 - b] === after[after.length - 1 - b]) b++;
    const starts = open ? undefined : editorLineStarts(text);
    const pos = (offset: number) => {
      if (open) return open.positionAt(offset);
      const p = positionAt(starts as number[], offset);
      return new vscode.Position(p.line, p.character);
    };
    edit.replace(uri, new vscode.Range(pos(a), pos(text.length - b)), after.slice(a, after.length - b), metadata);
    return edit;
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
