/** The panel's UI state: defaults, and a defensive merge of whatever `getState()` returned. */
import type { ClassSortKey, GridSort, GridSource, MatrixMode, MatrixOrder, PanelTab, PanelUiState } from '../src/core/panelProtocol';

export function defaultState(): PanelUiState {
  return {
    version: 1,
    tab: 'matrix',
    split: null,
    warningsExpanded: false,
    matrix: { mode: 'counts', order: 'class', cellSize: 0, scrollX: 0, scrollY: 0, selected: null },
    table: { sortKey: 'recall', descending: false, filter: '', warningsOnly: false, selectedClass: null, scrollTop: 0 },
    issues: { filter: '', showResolved: true },
    resolved: {},
  };
}

const TABS: readonly PanelTab[] = ['matrix', 'classes', 'issues', 'images'];
const GRID_SORTS: readonly GridSort[] = ['labelScore', 'topScore', 'path'];

function gridSource(v: unknown): GridSource {
  if (isObj(v) && v.kind === 'class' && typeof v.class === 'string') return { kind: 'class', class: v.class };
  if (isObj(v) && v.kind === 'cell' && isObj(v.cell) && typeof v.cell.trueClass === 'string' && typeof v.cell.predictedClass === 'string') {
    return { kind: 'cell', cell: { trueClass: v.cell.trueClass, predictedClass: v.cell.predictedClass } };
  }
  return { kind: 'issues' };
}
const MODES: readonly MatrixMode[] = ['counts', 'recall'];
const ORDERS: readonly MatrixOrder[] = ['class', 'confusion'];
const SORT_KEYS: readonly ClassSortKey[] = ['class', 'support', 'predicted', 'precision', 'recall', 'probeRecall', 'f1', 'recallAtK', 'ap'];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const pick = <T>(v: unknown, allowed: readonly T[], fallback: T): T => (allowed.includes(v as T) ? (v as T) : fallback);
const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const str = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
const strOrNull = (v: unknown) => (typeof v === 'string' ? v : null);

/** Restores saved state field by field; anything missing or malformed falls back to the default. */
export function restoreState(saved: unknown): PanelUiState {
  const d = defaultState();
  if (!isObj(saved) || saved.version !== 1) return d;
  const m = isObj(saved.matrix) ? saved.matrix : {};
  const t = isObj(saved.table) ? saved.table : {};
  const i = isObj(saved.issues) ? saved.issues : {};
  const sel = isObj(m.selected) && typeof m.selected.trueClass === 'string' && typeof m.selected.predictedClass === 'string'
    ? { trueClass: m.selected.trueClass, predictedClass: m.selected.predictedClass }
    : null;
  const resolved: PanelUiState['resolved'] = {};
  if (isObj(saved.resolved)) {
    for (const [path, r] of Object.entries(saved.resolved)) {
      if (isObj(r) && (r.action === 'fixed' || r.action === 'ignored') && typeof r.message === 'string') {
        resolved[path] = { action: r.action, message: r.message };
      }
    }
  }
  return {
    version: 1,
    reportRef: typeof saved.reportRef === 'string' ? saved.reportRef : undefined,
    reportId: typeof saved.reportId === 'string' ? saved.reportId : undefined,
    tab: pick(saved.tab, TABS, d.tab),
    split: strOrNull(saved.split),
    warningsExpanded: saved.warningsExpanded === true,
    matrix: {
      mode: pick(m.mode, MODES, d.matrix.mode),
      order: pick(m.order, ORDERS, d.matrix.order),
      cellSize: Math.max(0, num(m.cellSize, 0)),
      scrollX: Math.max(0, num(m.scrollX, 0)),
      scrollY: Math.max(0, num(m.scrollY, 0)),
      selected: sel,
    },
    table: {
      sortKey: pick(t.sortKey, SORT_KEYS, d.table.sortKey),
      descending: t.descending === true,
      filter: str(t.filter, ''),
      warningsOnly: t.warningsOnly === true,
      selectedClass: strOrNull(t.selectedClass),
      scrollTop: Math.max(0, num(t.scrollTop, 0)),
    },
    issues: { filter: str(i.filter, ''), showResolved: i.showResolved !== false },
    ...(isObj(saved.grid) ? { grid: { source: gridSource(saved.grid.source), sort: pick(saved.grid.sort, GRID_SORTS, 'labelScore') } } : {}),
    resolved,
  };
}
