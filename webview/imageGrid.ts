/**
 * The image grid (tab "Images"): the thumbnails of one source (likely label errors, the images labelled as a class,
 * or one confusion-matrix cell), virtualised (only the rows near the viewport are in the DOM) and paged from the host
 * (pagedRows.ts: the host filters and sorts, the grid holds a few pages), sorted by score,
 * with multi-select (click, Ctrl/Cmd+click, Shift+click, keyboard) and bulk "Move to / Change label to" and
 * "Ignore" applied by the host as ONE undoable step. Logic in gridModel.ts.
 */
import type { GridSort, GridSource, PanelUiState } from '../src/core/panelProtocol';
import { h, replaceChildren } from './dom';
import { baseName, int } from './format';
import {
  clickSelect,
  emptySelection,
  keySelect,
  labelScore,
  sourceOptions,
  sourceTitle,
  sourceValue,
  visibleRows,
  type GridSelection,
} from './gridModel';
import type { HostChannel } from './host';
import type { ReportModel } from './model';
import { PagedRows } from './pagedRows';
import type { ThumbnailLoader } from './thumbs';

export interface ImageGridDeps {
  host: HostChannel;
  thumbs: ThumbnailLoader;
  state: () => PanelUiState;
  save: () => void;
  toast: (message: string, kind?: 'info' | 'error') => void;
  /** Marks samples as fixed/ignored in the panel (label-issue list, badges). */
  onResolved: (paths: string[], action: 'fixed' | 'ignored', message: string) => void;
}

/** Most images in one bulk step (the host refuses more). */
const MAX_BULK = 10_000;
const TILE_W = 148;
const TILE_H = 176;
const GAP = 8;

export class ImageGrid {
  readonly element: HTMLElement;
  private model: ReportModel | null = null;
  private rows: PagedRows | null = null;
  private sel: GridSelection = emptySelection();
  private columns = 1;
  private readonly sourceSelect = h('select', { class: 'grid-source', 'aria-label': 'Images to show' });
  private readonly sortSelect = h(
    'select',
    { class: 'grid-sort', 'aria-label': 'Order' },
    h('option', { value: 'labelScore', text: 'Score of the label, lowest first' }),
    h('option', { value: 'topScore', text: 'Score of the top prediction, highest first' }),
    h('option', { value: 'path', text: 'File name' }),
  );
  private readonly title = h('h2', { class: 'grid-title' });
  private readonly count = h('span', { class: 'grid-count muted' });
  private readonly classSelect = h('select', { class: 'grid-target', 'aria-label': 'Class' });
  private readonly fixButton = h('button', { type: 'button', class: 'grid-fix', disabled: true });
  private readonly ignoreButton = h('button', { type: 'button', class: 'grid-ignore secondary', disabled: true, text: 'Ignore' });
  private readonly viewport = h('div', { class: 'grid-viewport', tabindex: '0', role: 'grid', 'aria-multiselectable': 'true' });
  private readonly spacer = h('div', { class: 'grid-spacer' });
  private readonly layer = h('div', { class: 'grid-layer', role: 'rowgroup' });
  private readonly done = new Map<string, string>();
  private busy = false;
  private renderQueued = false;

  constructor(private readonly deps: ImageGridDeps) {
    this.viewport.append(this.spacer, this.layer);
    this.element = h(
      'section',
      { class: 'image-grid', 'aria-label': 'Image grid' },
      h('div', { class: 'grid-toolbar' }, this.title, this.count),
      h(
        'div',
        { class: 'grid-controls' },
        h('label', null, 'Show ', this.sourceSelect),
        h('label', null, 'Sort ', this.sortSelect),
        h('span', { class: 'grid-bulk' }, this.fixButton, this.classSelect, this.ignoreButton),
      ),
      h('p', { class: 'grid-help muted', text: 'Click to select, Ctrl/Cmd+click or Shift+click for more, arrows to move, Space to toggle, Ctrl/Cmd+A for all, Enter or double-click to open. A bulk fix is one step: Undo (Ctrl+Z) puts it back.' }),
      this.viewport,
    );
    this.sourceSelect.addEventListener('change', () => {
      const opt = this.options().find((o) => o.value === this.sourceSelect.value);
      if (opt) this.show(opt.source);
    });
    this.sortSelect.addEventListener('change', () => {
      this.gridState().sort = this.sortSelect.value as GridSort;
      this.deps.save();
      this.reorder();
    });
    this.viewport.addEventListener('scroll', () => this.queueRender());
    this.viewport.addEventListener('keydown', (e) => this.onKey(e));
    this.fixButton.addEventListener('click', () => void this.bulk('fix'));
    this.ignoreButton.addEventListener('click', () => void this.bulk('ignore'));
    new ResizeObserver(() => this.queueRender()).observe(this.viewport);
  }

  private gridState(): NonNullable<PanelUiState['grid']> {
    const st = this.deps.state();
    st.grid ??= { source: { kind: 'issues' }, sort: 'labelScore' };
    return st.grid;
  }

  private options() {
    return this.model ? sourceOptions(this.model) : [];
  }

  /** A report (and the samples fixed or ignored since its evaluation, wherever that happened). */
  setModel(model: ReportModel, resolved: Record<string, 'fixed' | 'ignored'> = {}): void {
    this.model = model;
    this.done.clear();
    for (const [p, how] of Object.entries(resolved)) this.done.set(p, how === 'fixed' ? (model.fixKind === 'change-label' ? 'label changed' : 'moved') : 'ignored');
    const g = this.gridState();
    // A source that no longer exists (another report) falls back to the label issues.
    const opts = this.options();
    if (!opts.some((o) => o.value === sourceValue(g.source)) && g.source.kind !== 'cell') g.source = { kind: 'issues' };
    replaceChildren(this.sourceSelect, ...opts.map((o) => h('option', { value: o.value, text: o.label })));
    if (g.source.kind === 'cell' && !opts.some((o) => o.value === sourceValue(g.source))) {
      this.sourceSelect.append(h('option', { value: sourceValue(g.source), text: sourceTitle(g.source) }));
    }
    this.sourceSelect.value = sourceValue(g.source);
    this.sortSelect.value = g.sort;
    const label = model.fixKind === 'change-label' ? 'Change label to' : 'Move to';
    this.fixButton.textContent = `${label}…`;
    replaceChildren(this.classSelect, ...model.classes.map((c) => h('option', { value: c, text: c })));
    this.reorder();
  }

  /** Shows a source (from the selector, "Show images" links, or a reveal from the host). */
  show(source: GridSource): void {
    const g = this.gridState();
    g.source = source;
    this.deps.save();
    if (!this.model) return;
    const value = sourceValue(source);
    if (![...this.sourceSelect.options].some((o) => o.value === value)) this.sourceSelect.append(h('option', { value, text: sourceTitle(source) }));
    this.sourceSelect.value = value;
    this.reorder();
    this.viewport.scrollTop = 0;
  }

  onShown(): void {
    this.queueRender();
  }

  private reorder(): void {
    const model = this.model;
    if (!model) return;
    const g = this.gridState();
    this.rows?.dispose();
    const rows = new PagedRows(this.deps.host, { source: g.source, sort: g.sort, split: model.split }, () => {
      if (this.rows === rows) this.queueRender();
    });
    this.rows = rows;
    this.sel = emptySelection();
    this.title.textContent = sourceTitle(g.source);
    this.count.textContent = 'loading…';
    this.element.dataset.source = sourceValue(g.source);
    delete this.element.dataset.count;
    void rows.load(0).then(
      () => {
        if (this.rows !== rows) return;
        this.count.textContent = `${int(rows.total)} image${rows.total === 1 ? '' : 's'}`;
        this.element.dataset.count = String(rows.total);
        this.render();
      },
      (e: unknown) => this.deps.toast(`Could not load the images: ${e instanceof Error ? e.message : String(e)}`, 'error'),
    );
    this.render();
  }

  /** Rows of the current query (0 until the host answered). */
  private get total(): number {
    return Math.max(0, this.rows?.total ?? 0);
  }

  private queueRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private render(): void {
    const model = this.model;
    if (!model) return;
    const width = this.viewport.clientWidth || 800;
    this.columns = Math.max(1, Math.floor((width - GAP) / (TILE_W + GAP)));
    const total = this.total;
    const rows = Math.ceil(total / this.columns);
    this.spacer.style.height = `${rows * (TILE_H + GAP) + GAP}px`;
    const { first, end } = visibleRows(this.viewport.scrollTop, this.viewport.clientHeight || 600, TILE_H + GAP, rows);
    const tiles: HTMLElement[] = [];
    for (let r = first; r < end; r++) {
      for (let c = 0; c < this.columns; c++) {
        const at = r * this.columns + c;
        if (at >= total) break;
        tiles.push(this.tile(at, r, c));
      }
    }
    this.element.dataset.requests = String(this.rows?.requests ?? 0);
    if (total === 0 && this.rows?.total === 0) tiles.push(h('p', { class: 'grid-empty muted', text: 'No images here.' }));
    replaceChildren(this.layer, ...tiles);
    const n = this.sel.selected.size;
    this.fixButton.disabled = n === 0 || this.busy;
    this.ignoreButton.disabled = n === 0 || this.busy;
    this.classSelect.disabled = n === 0 || this.busy;
    this.ignoreButton.textContent = n > 0 ? `Ignore ${n}` : 'Ignore';
    const verb = model.fixKind === 'change-label' ? 'Change label' : 'Move';
    this.fixButton.textContent = n > 0 ? `${verb} ${n} to` : `${verb} to`;
    this.element.dataset.selected = String(n);
  }

  private tile(at: number, rowIndex: number, col: number): HTMLElement {
    const model = this.model!;
    const row = this.rows?.get(at);
    if (!row) {
      const wait = h('div', { class: 'grid-tile loading', role: 'gridcell', 'aria-busy': 'true', 'data-at': String(at) });
      wait.style.transform = `translate(${GAP + col * (TILE_W + GAP)}px, ${GAP + rowIndex * (TILE_H + GAP)}px)`;
      return wait;
    }
    const s = row.sample;
    const selected = this.sel.selected.has(at);
    const done = this.done.get(s.path);
    const score = labelScore(s, model.classes);
    const top = s.predicted[0];
    // The top prediction when it differs from the label, else the label's score.
    const detail = !top ? (s.error?.message ?? 'no prediction') : top.class !== s.label ? `→ ${top.class} ${top.score.toFixed(2)}` : `${s.label} ${score.toFixed(2)}`;
    const el = h(
      'div',
      {
        class: `grid-tile${selected ? ' selected' : ''}${at === this.sel.focus ? ' focused' : ''}${done ? ' done' : ''}`,
        role: 'gridcell',
        'aria-selected': selected ? 'true' : 'false',
        'data-path': s.path,
        'data-at': String(at),
        title: `${s.path}\nlabel: ${s.label} (CLIP score ${score.toFixed(3)})${top ? `\nCLIP: ${top.class} (${top.score.toFixed(3)})` : ''}${done ? `\n${done}` : ''}`,
      },
      this.deps.thumbs.element(s.path),
      h('span', { class: 'grid-name', text: s.split ? `${s.split}/${baseName(s.path)}` : baseName(s.path) }),
      h('span', { class: 'grid-detail', text: done ?? detail }),
    );
    el.style.transform = `translate(${GAP + col * (TILE_W + GAP)}px, ${GAP + rowIndex * (TILE_H + GAP)}px)`;
    el.addEventListener('click', (e) => {
      this.sel = clickSelect(this.sel, at, { toggle: e.ctrlKey || e.metaKey, range: e.shiftKey });
      this.viewport.focus({ preventScroll: true });
      this.render();
    });
    el.addEventListener('dblclick', () => this.deps.host.post({ type: 'openImage', path: s.path }));
    return el;
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key === 'Enter') {
      const row = this.rows?.get(this.sel.focus);
      if (row) this.deps.host.post({ type: 'openImage', path: row.sample.path });
      e.preventDefault();
      return;
    }
    const rowH = TILE_H + GAP;
    const next = keySelect(this.sel, e.key, { shift: e.shiftKey, ctrl: e.ctrlKey || e.metaKey }, this.total, this.columns, Math.floor((this.viewport.clientHeight || rowH) / rowH));
    if (!next) return;
    e.preventDefault();
    this.sel = next;
    // Keep the focused tile in view.
    const row = Math.floor(next.focus / this.columns);
    const top = row * rowH;
    if (top < this.viewport.scrollTop) this.viewport.scrollTop = top;
    else if (top + rowH > this.viewport.scrollTop + this.viewport.clientHeight) this.viewport.scrollTop = top + rowH - this.viewport.clientHeight + GAP;
    this.render();
  }

  private async bulk(kind: 'fix' | 'ignore'): Promise<void> {
    const model = this.model;
    if (!model || this.busy) return;
    const rows = this.rows;
    if (!rows) return;
    if (this.sel.selected.size > MAX_BULK) {
      this.deps.toast(`Select at most ${int(MAX_BULK)} images for one step (${int(this.sel.selected.size)} selected).`, 'error');
      return;
    }
    const paths = (await rows.rowsAt([...this.sel.selected])).map((r) => r.sample.path).filter((p) => !this.done.has(p));
    if (paths.length === 0) return;
    const toClass = this.classSelect.value;
    this.busy = true;
    this.render();
    try {
      const answer = await this.deps.host.request(
        (requestId) => ({ type: 'bulkAction', requestId, action: kind === 'fix' ? { kind: 'fix', paths, toClass } : { kind: 'ignore', paths } }),
        'actionResult',
      );
      if (answer.ok) {
        const message = answer.message ?? (kind === 'fix' ? `Fixed ${paths.length}` : `Ignored ${paths.length}`);
        for (const p of paths) this.done.set(p, kind === 'fix' ? (model.fixKind === 'change-label' ? `label → ${toClass}` : `moved to ${toClass}/`) : 'ignored');
        this.deps.onResolved(paths, kind === 'fix' ? 'fixed' : 'ignored', message);
        this.deps.toast(message);
        this.sel = emptySelection();
      } else {
        this.deps.toast(answer.message ?? 'The fix was refused.', 'error');
      }
    } finally {
      this.busy = false;
      this.render();
    }
  }
}
