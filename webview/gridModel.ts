/**
 * The image grid's logic without the DOM (unit-tested in test/webview/imageGrid.test.ts): the list of sources (label issues, classes, confusion cells), the rows to render for a
 * scroll position (virtualisation; which samples a source shows and in what order is the host's, core/panelSamples.ts),
 * and how clicks and keys change the selection and the focused tile.
 */
import type { GridSource } from '../src/core/panelProtocol';
import type { ReportModel } from './model';

export { labelScore, topScore } from '../src/core/panelSamples';

export interface SourceOption {
  /** Stable value for a <select>: `issues`, `class:<name>`, `cell:<true>\u0000<predicted>`. */
  value: string;
  label: string;
  count: number;
  source: GridSource;
}

export function sourceValue(source: GridSource): string {
  if (source.kind === 'issues') return 'issues';
  if (source.kind === 'class') return `class:${source.class}`;
  return `cell:${source.cell.trueClass}\u0000${source.cell.predictedClass}`;
}

/**
 * Every source the grid offers: label issues, each class, then the confusions (most images first, up to `maxCells`).
 * Counts come from the metrics of the selected split (evaluated samples), not from the samples.
 */
export function sourceOptions(model: ReportModel, maxCells = 60): SourceOption[] {
  const out: SourceOption[] = [];
  const issues = model.report.labelIssues.filter((issue) => {
    const i = issue.path !== undefined ? model.byPath.get(issue.path) : issue.index;
    return i !== undefined && model.inSplit(i);
  }).length;
  out.push({ value: 'issues', label: `Likely label errors (${issues})`, count: issues, source: { kind: 'issues' } });
  const m = model.metrics;
  if (!m) return out;
  for (const c of m.perClass) {
    if (c.support > 0) out.push({ value: `class:${c.class}`, label: `Labelled '${c.class}' (${c.support})`, count: c.support, source: { kind: 'class', class: c.class } });
  }
  const cells: SourceOption[] = [];
  m.confusionMatrix.forEach((row, t) =>
    row.forEach((count, p) => {
      if (t === p || count === 0) return;
      const cell = { trueClass: m.classes[t]!, predictedClass: m.classes[p]! };
      cells.push({ value: sourceValue({ kind: 'cell', cell }), label: `'${cell.trueClass}' predicted as '${cell.predictedClass}' (${count})`, count, source: { kind: 'cell', cell } });
    }),
  );
  cells.sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
  out.push(...cells.slice(0, maxCells));
  return out;
}

/** A readable title of a source. */
export function sourceTitle(source: GridSource): string {
  if (source.kind === 'issues') return 'Likely label errors';
  if (source.kind === 'class') return `Images labelled '${source.class}'`;
  return `Labelled '${source.cell.trueClass}', predicted '${source.cell.predictedClass}'`;
}

/** Rows to render for a scroll position: [firstRow, endRow) with `overscan` rows above and below the viewport. */
export function visibleRows(scrollTop: number, viewportHeight: number, rowHeight: number, rowCount: number, overscan = 2): { first: number; end: number } {
  if (rowCount <= 0 || rowHeight <= 0) return { first: 0, end: 0 };
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const end = Math.min(rowCount, Math.ceil((scrollTop + Math.max(0, viewportHeight)) / rowHeight) + overscan);
  return { first, end: Math.max(first, end) };
}

/** Selection state of the grid: positions (indexes into the ordered list), the focused one and the range anchor. */
export interface GridSelection {
  selected: Set<number>;
  focus: number;
  anchor: number;
}

export function emptySelection(): GridSelection {
  return { selected: new Set(), focus: 0, anchor: 0 };
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = Math.min(a, b); i <= Math.max(a, b); i++) out.push(i);
  return out;
}

/** A click on tile `at`: plain selects it alone, Ctrl/Cmd toggles it, Shift selects the range from the anchor. */
export function clickSelect(sel: GridSelection, at: number, mods: { toggle: boolean; range: boolean }): GridSelection {
  if (mods.range) {
    const selected = mods.toggle ? new Set(sel.selected) : new Set<number>();
    for (const i of range(sel.anchor, at)) selected.add(i);
    return { selected, focus: at, anchor: sel.anchor };
  }
  if (mods.toggle) {
    const selected = new Set(sel.selected);
    if (selected.has(at)) selected.delete(at);
    else selected.add(at);
    return { selected, focus: at, anchor: at };
  }
  return { selected: new Set([at]), focus: at, anchor: at };
}

/**
 * A key in the grid: arrows/Home/End/PageUp/PageDown move the focus (Shift extends the selection from the anchor),
 * Space toggles the focused tile, Ctrl/Cmd+A selects all, Escape clears. Returns null for keys it does not handle.
 */
export function keySelect(sel: GridSelection, key: string, mods: { shift: boolean; ctrl: boolean }, count: number, columns: number, pageRows: number): GridSelection | null {
  if (count === 0) return null;
  const cols = Math.max(1, columns);
  if (mods.ctrl && (key === 'a' || key === 'A')) return { selected: new Set(range(0, count - 1)), focus: sel.focus, anchor: sel.anchor };
  if (key === 'Escape') return { selected: new Set(), focus: sel.focus, anchor: sel.focus };
  if (key === ' ') {
    const selected = new Set(sel.selected);
    if (selected.has(sel.focus)) selected.delete(sel.focus);
    else selected.add(sel.focus);
    return { selected, focus: sel.focus, anchor: sel.focus };
  }
  const moves: Record<string, number> = {
    ArrowRight: 1,
    ArrowLeft: -1,
    ArrowDown: cols,
    ArrowUp: -cols,
    PageDown: cols * Math.max(1, pageRows),
    PageUp: -cols * Math.max(1, pageRows),
  };
  let focus: number;
  if (key === 'Home') focus = 0;
  else if (key === 'End') focus = count - 1;
  else if (key in moves) focus = Math.max(0, Math.min(count - 1, sel.focus + moves[key]!));
  else return null;
  if (mods.shift) return { selected: new Set(range(sel.anchor, focus)), focus, anchor: sel.anchor };
  return { selected: mods.ctrl ? new Set(sel.selected) : new Set([focus]), focus, anchor: focus };
}
