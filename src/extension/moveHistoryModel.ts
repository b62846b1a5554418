/**
 * The undo history of CLIP Lens's own fixes, as pure data (no vscode; unit-tested in
 * test/unit/extension-moveHistory.test.ts).
 *
 * Why a history of our own: VS Code's Undo in the Explorer only undoes the Explorer's own file operations, and an
 * extension's WorkspaceEdit that renames an image is not undone by Ctrl+Z anywhere (there is no text editor on an
 * image). So every fix that CLIP Lens applies is recorded here as one step, a bulk fix is one step, and "CLIP Lens:
 * Undo Last Fix" (the toast's Undo button, Ctrl+Z in the report panel, the Label Issues view, and in the Explorer
 * while our fix is the last file operation) reverses the newest step.
 */
import * as path from 'node:path';

/** One image moved by a fix (absolute paths, plus the dataset terms to tell the user and the store). */
export interface FileMove {
  root: string;
  /** Dataset-relative path before the move (the sample path of the report). */
  samplePath: string;
  from: string;
  to: string;
  toClass: string;
}

/** An edit to a text file (label file, `.clip-lens.json`) made by a fix; undone with the editor's own undo. */
export interface TextFixEdit {
  root: string;
  samplePaths: string[];
  file: string;
  /** The document's version right after the edit: undo refuses when the document changed since. */
  version: number;
}

/** A step before it is recorded. */
export type NewFixStep = { label: string } & ({ kind: 'move'; moves: FileMove[] } | { kind: 'text'; edit: TextFixEdit });
export type FixStep = NewFixStep & { id: number };

/** Most steps kept. */
export const HISTORY_LIMIT = 50;

export class FixHistory {
  private readonly steps: FixStep[] = [];
  private nextId = 1;

  push(step: NewFixStep): FixStep {
    const s: FixStep = { ...step, id: this.nextId++ };
    this.steps.push(s);
    if (this.steps.length > HISTORY_LIMIT) this.steps.shift();
    return s;
  }

  get last(): FixStep | undefined {
    return this.steps[this.steps.length - 1];
  }

  get size(): number {
    return this.steps.length;
  }

  /** Removes a step (after it was undone); false when it is not in the history. */
  remove(id: number): boolean {
    const i = this.steps.findIndex((s) => s.id === id);
    if (i < 0) return false;
    this.steps.splice(i, 1);
    return true;
  }

  /** Drops the steps that moved files inside `root` (e.g. after the dataset was evaluated again with other paths). */
  clear(): void {
    this.steps.length = 0;
  }
}

/**
 * The renames that undo a move step, newest first; or why it cannot be undone (a moved image is gone, or its old
 * place is taken again). `exists` answers for absolute paths.
 */
export function undoPlan(moves: readonly FileMove[], exists: (p: string) => boolean): { renames: { from: string; to: string }[] } | { error: string } {
  const renames: { from: string; to: string }[] = [];
  for (const m of [...moves].reverse()) {
    if (!exists(m.to)) return { error: `${path.basename(m.to)} is no longer in ${path.basename(path.dirname(m.to))}/ (moved or deleted since)` };
    if (exists(m.from)) return { error: `${m.samplePath} exists again; move it away first` };
    renames.push({ from: m.to, to: m.from });
  }
  return { renames };
}

/** The confirmation of a move step: "Moved circle_3.png to 'square'", "Moved 4 images to 'square'", or per class. */
export function moveMessage(moves: readonly FileMove[]): string {
  if (moves.length === 0) return 'Nothing moved';
  if (moves.length === 1) return `Moved ${path.basename(moves[0]!.from)} to '${moves[0]!.toClass}'`;
  const byClass = new Map<string, number>();
  for (const m of moves) byClass.set(m.toClass, (byClass.get(m.toClass) ?? 0) + 1);
  if (byClass.size === 1) return `Moved ${moves.length} images to '${moves[0]!.toClass}'`;
  const parts = [...byClass].map(([c, n]) => `${n} to '${c}'`);
  return `Moved ${moves.length} images (${parts.join(', ')})`;
}

/** The confirmation after undoing a step. */
export function undoMessage(step: FixStep): string {
  if (step.kind === 'move') {
    const n = step.moves.length;
    return n === 1 ? `Moved ${path.basename(step.moves[0]!.from)} back to '${path.basename(path.dirname(step.moves[0]!.from))}'` : `Moved ${n} images back`;
  }
  return `Undid: ${step.label}`;
}

/** The dataset-relative folder of a target path, for messages (`square/`). */
export function targetFolder(root: string, to: string): string {
  return `${path.relative(root, path.dirname(to)).split(path.sep).join('/')}/`;
}
