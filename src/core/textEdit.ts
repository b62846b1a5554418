/**
 * A minimal text edit, the one shape shared by core (edits of `.clip-lens.json`) and the extension (label fixes in
 * label files): replace `length` UTF-16 units at `offset` with `text`. The extension turns it into a vscode.TextEdit.
 */
export interface TextEdit {
  offset: number;
  length: number;
  text: string;
}

/** Applies edits to a text (for tests, previews and writes without an editor); edits must not overlap. */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  const sorted = [...edits].sort((a, b) => b.offset - a.offset);
  let out = text;
  for (const e of sorted) out = out.slice(0, e.offset) + e.text + out.slice(e.offset + e.length);
  return out;
}
