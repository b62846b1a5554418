/**
 * The confusion matrix view: toolbar (counts / row-normalised, class / confusion order, zoom), a canvas inside a
 * native scroll container (scrollbars, wheel and keyboard scrolling come free; the canvas is sticky and draws only
 * the visible cells), hover tooltips, Ctrl+wheel zoom around the pointer, drag to pan, arrow keys to move a cursor,
 * and a drawer listing the images of the selected cell.
 */
import type { MatrixCell, PanelUiState } from '../src/core/panelProtocol';
import { confusionOrder, identityOrder } from './lib/confusionOrder';
import { h, rafThrottle, replaceChildren } from './dom';
import { int, pct, pctShort, plural } from './format';
import type { HostChannel } from './host';
import {
  LABELS_FROM,
  MAX_CELL,
  buildBitmap,
  buildMatrixData,
  cellColor,
  compactCount,
  drawMatrix,
  labelFont,
  type MatrixData,
  type MatrixLayout,
} from './matrixRender';
import type { ReportModel } from './model';
import { sampleGrid } from './sampleGrid';
import { readChartTheme, rgb, type ChartTheme } from './theme';
import type { ThumbnailLoader } from './thumbs';

export interface MatrixViewDeps {
  host: HostChannel;
  thumbs: ThumbnailLoader;
  state: () => PanelUiState;
  save: () => void;
  /** A row or column label was clicked. */
  onClass: (name: string) => void;
  /** Opens the cell in the image grid (bulk fixes); optional. */
  onGrid?: (cell: MatrixCell) => void;
}

type Pos = { r: number; c: number };

const FIT_MAX_CELL = 44;
/** Scrollbar thickness (px), as styled in media/panel.css (VS Code styles webview scrollbars the same way). */
const SCROLLBAR = 10;
const ZOOM_STEP = 1.4;

export class MatrixView {
  readonly element: HTMLElement;
  private readonly scroller: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tooltip: HTMLDivElement;
  private readonly drawer: HTMLDivElement;
  /** Holds the matrix and the drawer: side by side when there is room, else stacked. */
  private readonly body: HTMLDivElement;
  private readonly wrap: HTMLDivElement;
  private readonly legend: HTMLDivElement;
  private readonly caption: HTMLParagraphElement;
  private readonly modeButtons: Record<'counts' | 'recall', HTMLElement>;
  private readonly orderButtons: Record<'class' | 'confusion', HTMLElement>;
  private model: ReportModel | null = null;
  private data: MatrixData | null = null;
  private bitmap: HTMLCanvasElement | null = null;
  private theme: ChartTheme | null = null;
  private posOf = new Int32Array(0);
  private layout: MatrixLayout | null = null;
  private hover: Pos | null = null;
  private cursor: Pos | null = null;
  private labelWidth = 0;
  private readonly orderCache = new Map<string, number[]>();
  /** Scroll position from the saved state still to apply (once the view has a size). */
  private pendingScroll: { x: number; y: number } | null = null;
  private readonly draw = rafThrottle(() => this.paint());

  constructor(private readonly deps: MatrixViewDeps) {
    const seg = (labels: Array<[string, string, string]>, onPick: (v: string) => void) => {
      const buttons: Record<string, HTMLElement> = {};
      const group = h('vscode-button-group', { class: 'seg' });
      for (const [value, text, title] of labels) {
        const b = h('vscode-button', { 'data-value': value, title, text, onclick: () => onPick(value) });
        buttons[value] = b;
        group.appendChild(b);
      }
      return { group, buttons };
    };
    const mode = seg(
      [
        ['counts', 'Counts', 'Colour by number of images'],
        ['recall', 'Row %', 'Colour by share of the true class (row-normalised; the diagonal is recall)'],
      ],
      (v) => this.setMode(v as 'counts' | 'recall'),
    );
    const order = seg(
      [
        ['class', 'By class', 'Classes in name order'],
        ['confusion', 'By confusion', 'Classes that are confused with each other next to each other'],
      ],
      (v) => this.setOrder(v as 'class' | 'confusion'),
    );
    this.modeButtons = mode.buttons as Record<'counts' | 'recall', HTMLElement>;
    this.orderButtons = order.buttons as Record<'class' | 'confusion', HTMLElement>;
    const zoom = h(
      'div',
      { class: 'zoom' },
      h('vscode-button', { secondary: true, title: 'Zoom out (−)', 'aria-label': 'Zoom out', text: '−', onclick: () => this.zoomBy(1 / ZOOM_STEP) }),
      h('vscode-button', { secondary: true, title: 'Fit the whole matrix (0)', text: 'Fit', onclick: () => this.setCell(0) }),
      h('vscode-button', { secondary: true, title: 'Zoom in (+)', 'aria-label': 'Zoom in', text: '+', onclick: () => this.zoomBy(ZOOM_STEP) }),
    );
    this.legend = h('div', { class: 'legend', 'aria-hidden': 'true' });
    this.caption = h('p', { class: 'caption' });
    this.canvas = h('canvas', { class: 'matrix-canvas' });
    this.spacer = h('div', { class: 'matrix-spacer' }, this.canvas);
    this.scroller = h('div', { class: 'matrix-scroll', tabindex: '0', role: 'application', 'aria-roledescription': 'confusion matrix' }, this.spacer);
    this.tooltip = h('div', { class: 'tooltip', role: 'tooltip', hidden: true });
    this.drawer = h('div', { class: 'cell-drawer', 'aria-live': 'polite' });
    this.wrap = h('div', { class: 'matrix-wrap' }, this.scroller, this.tooltip);
    this.body = h('div', { class: 'matrix-body' }, this.wrap, this.drawer);
    this.element = h(
      'section',
      { class: 'matrix-view' },
      h('div', { class: 'toolbar' }, mode.group, order.group, zoom, h('span', { class: 'grow' }), this.legend),
      this.caption,
      this.body,
    );
    this.wire();
  }

  setModel(model: ReportModel): void {
    const st = this.deps.state().matrix;
    this.model = model;
    this.orderCache.clear();
    this.labelWidth = 0;
    this.pendingScroll = { x: st.scrollX, y: st.scrollY };
    this.rebuild();
    this.showDrawer();
  }

  /** Re-reads theme colours (after VS Code switched theme). */
  refreshTheme(): void {
    this.theme = readChartTheme();
    if (this.data) this.bitmap = buildBitmap(this.data, this.theme);
    this.renderLegend();
    this.relayout();
  }

  /** Call when the view becomes visible (its size was 0 while hidden). */
  onShown(): void {
    this.relayout();
  }

  /** Selects a cell, scrolls it into view and lists its images. */
  select(cell: MatrixCell | null, scroll = true): void {
    this.deps.state().matrix.selected = cell;
    this.deps.save();
    if (cell && scroll) this.scrollToCell(cell);
    this.showDrawer();
    this.draw();
  }

  /** PNG data URL of the whole matrix with labels (when they fit) and a title, in the current theme. */
  exportPng(title: string): string | null {
    if (!this.data || !this.bitmap || !this.theme) return null;
    const n = this.data.n;
    const cell = Math.max(1, Math.min(36, Math.floor(1600 / n)));
    const labels = cell >= LABELS_FROM;
    const gutter = labels ? this.measureLabels() : 8;
    const width = gutter + n * cell + 16;
    const height = gutter + n * cell + 16;
    const dpr = width * height * 4 <= 16e6 ? 2 : 1;
    const m = document.createElement('canvas');
    m.width = width * dpr;
    m.height = height * dpr;
    const layout: MatrixLayout = { width, height, left: gutter, top: gutter, cell, offsetX: 0, offsetY: 0, labels };
    drawMatrix(m.getContext('2d')!, dpr, this.data, this.bitmap, layout, this.theme);
    const titleH = 36;
    const out = document.createElement('canvas');
    out.width = m.width;
    out.height = m.height + titleH * dpr;
    const ctx = out.getContext('2d')!;
    ctx.fillStyle = rgb(this.theme.background);
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.scale(dpr, dpr);
    ctx.fillStyle = rgb(this.theme.foreground);
    ctx.font = `600 14px ${this.theme.font}`;
    ctx.textBaseline = 'middle';
    ctx.fillText(title, 12, titleH / 2 + 2);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(m, 0, titleH * dpr);
    return out.toDataURL('image/png');
  }

  // --- state changes -------------------------------------------------------------------------------------------

  private setMode(mode: 'counts' | 'recall'): void {
    this.deps.state().matrix.mode = mode;
    this.deps.save();
    this.rebuild();
  }

  private setOrder(order: 'class' | 'confusion'): void {
    const keep = this.deps.state().matrix.selected;
    this.deps.state().matrix.order = order;
    this.deps.save();
    this.rebuild();
    if (keep) this.scrollToCell(keep);
  }

  private zoomBy(factor: number, anchor?: { x: number; y: number }): void {
    const current = this.layout?.cell ?? 0;
    if (!current) return;
    this.setCell(current * factor, anchor);
  }

  /** Sets the cell size (0 = fit), keeping the cell under `anchor` (canvas px) in place. */
  private setCell(cell: number, anchor?: { x: number; y: number }): void {
    const before = this.layout;
    const st = this.deps.state().matrix;
    const fit = this.fitCell();
    st.cellSize = cell <= fit * 1.001 ? 0 : Math.min(MAX_CELL, cell);
    const a = anchor ?? (before ? { x: before.left + (before.width - before.left) / 2, y: before.top + (before.height - before.top) / 2 } : { x: 0, y: 0 });
    const cx = before ? (a.x - before.left) / before.cell + before.offsetX : 0;
    const cy = before ? (a.y - before.top) / before.cell + before.offsetY : 0;
    this.relayout();
    const after = this.layout;
    if (after && before) {
      this.scroller.scrollLeft = cx * after.cell - (a.x - after.left);
      this.scroller.scrollTop = cy * after.cell - (a.y - after.top);
    }
    this.deps.save();
    this.draw();
  }

  // --- data ----------------------------------------------------------------------------------------------------

  private rebuild(): void {
    const model = this.model;
    const metrics = model?.metrics;
    this.theme ??= readChartTheme();
    const st = this.deps.state().matrix;
    for (const [k, b] of Object.entries(this.modeButtons)) this.pressed(b, k === st.mode);
    for (const [k, b] of Object.entries(this.orderButtons)) this.pressed(b, k === st.order);
    if (!model || !metrics) {
      this.data = null;
      this.bitmap = null;
      replaceChildren(this.caption, 'No metrics: no sample could be evaluated.');
      this.relayout();
      return;
    }
    const order = this.order(metrics.confusionMatrix, st.order);
    this.data = buildMatrixData(metrics.confusionMatrix, metrics.classes, order, st.mode);
    this.posOf = new Int32Array(order.length);
    order.forEach((ci, pos) => (this.posOf[ci] = pos));
    this.bitmap = buildBitmap(this.data, this.theme);
    const n = metrics.classes.length;
    replaceChildren(
      this.caption,
      h('strong', { text: 'Rows' }),
      ': true class · ',
      h('strong', { text: 'columns' }),
      `: predicted class · ${plural(n, 'class', 'classes')}, ${int(metrics.n)} images${model.split ? ` in '${model.split}'` : ''}. `,
      'Click a cell to list its images; Ctrl+scroll to zoom, drag to pan, arrow keys + Enter from the keyboard.',
    );
    this.canvas.setAttribute('data-order', st.order);
    this.scroller.setAttribute('aria-label', `Confusion matrix of ${n} classes. Use arrow keys to move and Enter to list a cell's images.`);
    this.renderLegend();
    this.relayout();
  }

  private order(matrix: number[][], kind: 'class' | 'confusion'): number[] {
    const key = `${kind}:${this.model?.split ?? ''}`;
    let order = this.orderCache.get(key);
    if (!order) {
      order = kind === 'confusion' ? confusionOrder(matrix) : identityOrder(matrix.length);
      this.orderCache.set(key, order);
    }
    return order;
  }

  private pressed(button: HTMLElement, on: boolean): void {
    button.toggleAttribute('secondary', !on);
    button.setAttribute('aria-pressed', String(on));
  }

  private renderLegend(): void {
    const d = this.data;
    const t = this.theme;
    if (!d || !t) {
      this.legend.replaceChildren();
      return;
    }
    const ramp = (diagonal: boolean) => {
      const el = h('span', { class: 'ramp' });
      const stops = [0.08, 0.3, 0.55, 0.8, 1].map((x) => rgb(cellColor(t, x, diagonal))).join(', ');
      el.style.background = `linear-gradient(to right, ${stops})`;
      return el;
    };
    const recall = d.mode === 'recall';
    replaceChildren(
      this.legend,
      h('span', { class: 'legend-item' }, 'Correct', ramp(true), recall ? '0–100%' : `1–${compactCount(d.maxDiag)}`),
      h('span', { class: 'legend-item' }, 'Confused', ramp(false), recall ? '0–100%' : `1–${compactCount(Math.max(1, d.maxOff))}`),
    );
  }

  // --- layout and painting --------------------------------------------------------------------------------------

  private measureLabels(): number {
    if (this.labelWidth) return this.labelWidth;
    const d = this.data;
    const t = this.theme;
    if (!d || !t) return 60;
    const ctx = this.canvas.getContext('2d')!;
    ctx.font = labelFont(t, MAX_CELL);
    let max = 0;
    // Measuring every label of 1,000 classes costs ~1 ms; cap anyway for absurd class counts.
    for (let i = 0; i < Math.min(d.n, 5000); i++) max = Math.max(max, ctx.measureText(d.labels[i]).width);
    this.labelWidth = Math.round(Math.max(48, Math.min(200, max + 16)));
    return this.labelWidth;
  }

  private viewHeight(): number {
    return Math.max(300, Math.min(window.innerHeight - 120, 1400));
  }

  /** Width available to the matrix: the whole body (the drawer moves below when the matrix needs it). */
  private availableWidth(): number {
    return this.body.clientWidth;
  }

  private fitCell(labels = true): number {
    const n = this.data?.n ?? 0;
    if (!n) return 0;
    const gutter = labels ? this.measureLabels() : 8;
    const w = this.availableWidth() - gutter - SCROLLBAR;
    const hgt = this.viewHeight() - gutter - 2;
    const fit = Math.min(FIT_MAX_CELL, w / n, hgt / n);
    if (labels && fit < LABELS_FROM) return this.fitCell(false);
    return Math.max(0.05, fit);
  }

  private relayout(): void {
    const d = this.data;
    const avail = this.availableWidth();
    if (!d || avail === 0) {
      this.layout = null;
      this.canvas.width = 0;
      this.canvas.height = 0;
      return;
    }
    const st = this.deps.state().matrix;
    const fit = this.fitCell();
    const cell = st.cellSize > 0 ? Math.min(MAX_CELL, Math.max(fit, st.cellSize)) : fit;
    const labels = cell >= LABELS_FROM;
    const gutter = labels ? this.measureLabels() : 8;
    const content = d.n * cell;
    const canvasH = Math.min(this.viewHeight(), gutter + content + 1);
    // Leave room for a vertical scrollbar when the matrix is taller than the view.
    const scrollbarY = gutter + content + 1 > canvasH ? SCROLLBAR : 0;
    const canvasW = Math.min(avail - scrollbarY, gutter + content + 1);
    const scrollbarX = gutter + content + 1 > canvasW ? SCROLLBAR : 0;
    this.wrap.style.width = `${canvasW + scrollbarY}px`;
    this.scroller.style.height = `${canvasH + scrollbarX}px`;
    this.spacer.style.width = `${gutter + content + 1}px`;
    this.spacer.style.height = `${gutter + content + 1}px`;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${canvasW}px`;
    this.canvas.style.height = `${canvasH}px`;
    if (this.canvas.width !== Math.round(canvasW * dpr)) this.canvas.width = Math.round(canvasW * dpr);
    if (this.canvas.height !== Math.round(canvasH * dpr)) this.canvas.height = Math.round(canvasH * dpr);
    const maxX = Math.max(0, d.n - (canvasW - gutter) / cell);
    const maxY = Math.max(0, d.n - (canvasH - gutter) / cell);
    this.layout = {
      width: canvasW,
      height: canvasH,
      left: gutter,
      top: gutter,
      cell,
      offsetX: Math.min(maxX, this.scroller.scrollLeft / cell),
      offsetY: Math.min(maxY, this.scroller.scrollTop / cell),
      labels,
    };
    if (this.pendingScroll) {
      const { x, y } = this.pendingScroll;
      this.pendingScroll = null;
      this.scroller.scrollLeft = x * cell;
      this.scroller.scrollTop = y * cell;
    }
    this.paint();
  }

  private paint(): void {
    const d = this.data;
    const l = this.layout;
    if (!d || !l || !this.bitmap || !this.theme) return;
    l.offsetX = Math.max(0, this.scroller.scrollLeft / l.cell);
    l.offsetY = Math.max(0, this.scroller.scrollTop / l.cell);
    const sel = this.deps.state().matrix.selected;
    const selected = sel ? this.posOfCell(sel) : null;
    const focused = document.activeElement === this.scroller;
    drawMatrix(this.canvas.getContext('2d')!, window.devicePixelRatio || 1, d, this.bitmap, l, this.theme, {
      hover: this.hover,
      selected,
      cursor: focused ? this.cursor : null,
    });
    // Geometry for tests and tools (CSS px relative to the canvas; offsets in cells).
    const ds = this.canvas.dataset;
    ds.left = String(l.left);
    ds.top = String(l.top);
    ds.cell = String(l.cell);
    ds.offsetX = String(l.offsetX);
    ds.offsetY = String(l.offsetY);
    ds.classes = String(d.n);
  }

  private posOfCell(cell: MatrixCell): Pos | null {
    const m = this.model;
    if (!m) return null;
    const t = m.classIndex.get(cell.trueClass);
    const p = m.classIndex.get(cell.predictedClass);
    if (t === undefined || p === undefined) return null;
    return { r: this.posOf[t], c: this.posOf[p] };
  }

  private cellOfPos(pos: Pos): MatrixCell | null {
    const d = this.data;
    const m = this.model;
    if (!d || !m) return null;
    return { trueClass: m.classes[d.order[pos.r]], predictedClass: m.classes[d.order[pos.c]] };
  }

  private scrollToCell(cell: MatrixCell): void {
    const p = this.posOfCell(cell);
    const l = this.layout;
    if (!p || !l) return;
    const visW = l.width - l.left;
    const visH = l.height - l.top;
    const x = p.c * l.cell;
    const y = p.r * l.cell;
    if (x < this.scroller.scrollLeft || x + l.cell > this.scroller.scrollLeft + visW) this.scroller.scrollLeft = x - visW / 2;
    if (y < this.scroller.scrollTop || y + l.cell > this.scroller.scrollTop + visH) this.scroller.scrollTop = y - visH / 2;
  }

  // --- interaction ---------------------------------------------------------------------------------------------

  /** Cell under canvas point, or a label hit. */
  private hit(x: number, y: number): { kind: 'cell'; pos: Pos } | { kind: 'row' | 'col'; index: number } | null {
    const l = this.layout;
    const d = this.data;
    if (!l || !d) return null;
    const c = Math.floor((x - l.left) / l.cell + l.offsetX);
    const r = Math.floor((y - l.top) / l.cell + l.offsetY);
    if (x >= l.left && y >= l.top) return r >= 0 && r < d.n && c >= 0 && c < d.n ? { kind: 'cell', pos: { r, c } } : null;
    if (!l.labels) return null;
    if (x < l.left && y >= l.top && r >= 0 && r < d.n) return { kind: 'row', index: r };
    if (y < l.top && x >= l.left && c >= 0 && c < d.n) return { kind: 'col', index: c };
    return null;
  }

  private wire(): void {
    new ResizeObserver(() => this.relayout()).observe(this.body);
    window.addEventListener('resize', () => this.relayout());
    this.scroller.addEventListener('scroll', () => {
      const l = this.layout;
      if (l) {
        const st = this.deps.state().matrix;
        st.scrollX = this.scroller.scrollLeft / l.cell;
        st.scrollY = this.scroller.scrollTop / l.cell;
        this.deps.save();
      }
      this.hideTooltip();
      this.draw();
    });

    const point = (e: MouseEvent) => {
      const r = this.canvas.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    let drag: { x: number; y: number; left: number; top: number; moved: boolean } | null = null;
    this.canvas.addEventListener('mousedown', (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, left: this.scroller.scrollLeft, top: this.scroller.scrollTop, moved: false };
    });
    window.addEventListener('mousemove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      drag.moved = true;
      this.canvas.classList.add('dragging');
      this.scroller.scrollLeft = drag.left - dx;
      this.scroller.scrollTop = drag.top - dy;
    });
    window.addEventListener('mouseup', (e) => {
      const d = drag;
      drag = null;
      this.canvas.classList.remove('dragging');
      if (!d || d.moved || e.target !== this.canvas) return;
      const p = point(e);
      const hit = this.hit(p.x, p.y);
      if (!hit) return;
      if (hit.kind === 'cell') {
        this.cursor = hit.pos;
        this.select(this.cellOfPos(hit.pos), false);
      } else if (this.data && this.model) {
        this.deps.onClass(this.model.classes[this.data.order[hit.index]]);
      }
    });
    this.canvas.addEventListener('mousemove', (e) => {
      if (drag?.moved) return;
      const p = point(e);
      const hit = this.hit(p.x, p.y);
      const pos = hit?.kind === 'cell' ? hit.pos : null;
      this.canvas.classList.toggle('over-label', hit !== null && hit.kind !== 'cell');
      if (pos?.r !== this.hover?.r || pos?.c !== this.hover?.c) {
        this.hover = pos;
        this.draw();
      }
      if (hit) this.showTooltip(hit, p);
      else this.hideTooltip();
    });
    this.canvas.addEventListener('mouseleave', () => {
      this.hover = null;
      this.hideTooltip();
      this.draw();
    });
    this.scroller.addEventListener(
      'wheel',
      (e) => {
        if (!e.ctrlKey && !e.metaKey) return;
        e.preventDefault();
        const p = point(e);
        this.zoomBy(Math.exp(-e.deltaY * 0.0025), p);
      },
      { passive: false },
    );
    this.scroller.addEventListener('focus', () => this.draw());
    this.scroller.addEventListener('blur', () => {
      this.hideTooltip();
      this.draw();
    });
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
  }

  private onKey(e: KeyboardEvent): void {
    const d = this.data;
    const l = this.layout;
    if (!d || !l) return;
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      const sel = this.deps.state().matrix.selected;
      const from = this.cursor ?? (sel ? this.posOfCell(sel) : null) ?? { r: 0, c: 0 };
      const [dr, dc] = moves[e.key];
      const step = e.shiftKey ? 10 : 1;
      this.cursor = { r: Math.max(0, Math.min(d.n - 1, from.r + dr * step)), c: Math.max(0, Math.min(d.n - 1, from.c + dc * step)) };
      const cell = this.cellOfPos(this.cursor);
      if (cell) this.scrollToCell(cell);
      const cl = this.layout!;
      this.showTooltip({ kind: 'cell', pos: this.cursor }, { x: cl.left + (this.cursor.c - cl.offsetX + 1) * cl.cell, y: cl.top + (this.cursor.r - cl.offsetY + 1) * cl.cell });
      this.draw();
    } else if ((e.key === 'Enter' || e.key === ' ') && this.cursor) {
      e.preventDefault();
      this.select(this.cellOfPos(this.cursor), false);
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault();
      this.zoomBy(ZOOM_STEP);
    } else if (e.key === '-') {
      e.preventDefault();
      this.zoomBy(1 / ZOOM_STEP);
    } else if (e.key === '0') {
      e.preventDefault();
      this.setCell(0);
    } else if (e.key === 'Escape') {
      this.hideTooltip();
      this.select(null, false);
    }
  }

  private showTooltip(hit: NonNullable<ReturnType<MatrixView['hit']>>, p: { x: number; y: number }): void {
    const d = this.data;
    const m = this.model;
    if (!d || !m) return;
    const tip = this.tooltip;
    if (hit.kind === 'cell') {
      const { r, c } = hit.pos;
      const v = d.counts[r * d.n + c];
      const total = d.rowTotals[r];
      const t = d.labels[r];
      const pr = d.labels[c];
      replaceChildren(
        tip,
        r === c
          ? h('div', { class: 'tt-title' }, h('span', { class: 'tt-true', text: t }), h('span', { class: 'tt-note', text: ' correct' }))
          : h('div', { class: 'tt-title' }, h('span', { class: 'tt-true', text: t }), ' → ', h('span', { class: 'tt-pred', text: pr })),
        h(
          'div',
          null,
          r === c
            ? `${int(v)} of ${plural(total, 'image')} · recall ${pct(total ? v / total : 0)}`
            : v === 0
              ? `No image of ${t} is predicted as ${pr}`
              : `${plural(v, 'image')} · ${pctShort(total ? v / total : 0)} of ${t}`,
        ),
        v > 0 ? h('div', { class: 'tt-hint', text: 'Click to list the images' }) : null,
      );
    } else {
      const name = d.labels[hit.index];
      const cm = m.classMetrics(name);
      replaceChildren(
        tip,
        h('div', { class: 'tt-title', text: name }),
        cm ? h('div', { text: `support ${int(cm.support)} · precision ${pct(cm.precision)} · recall ${pct(cm.recall)}` }) : null,
        h('div', { class: 'tt-hint', text: 'Click to show the class' }),
      );
    }
    tip.hidden = false;
    const wrap = tip.parentElement!.getBoundingClientRect();
    const canvasBox = this.canvas.getBoundingClientRect();
    let x = canvasBox.left - wrap.left + p.x + 14;
    let y = canvasBox.top - wrap.top + p.y + 16;
    const tw = tip.offsetWidth;
    const th = tip.offsetHeight;
    if (x + tw > wrap.width - 4) x = Math.max(4, x - tw - 28);
    if (y + th > wrap.height - 4) y = Math.max(4, y - th - 32);
    tip.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
  }

  private hideTooltip(): void {
    this.tooltip.hidden = true;
  }

  private showDrawer(): void {
    const m = this.model;
    const sel = this.deps.state().matrix.selected;
    if (!m || !sel) {
      replaceChildren(this.drawer, h('p', { class: 'muted hint', text: 'Select a cell to see its images.' }));
      return;
    }
    const t = m.classIndex.get(sel.trueClass);
    const p = m.classIndex.get(sel.predictedClass);
    if (t === undefined || p === undefined) {
      replaceChildren(this.drawer);
      return;
    }
    const inCell = m.cellCount(t, p);
    const support = m.classMetrics(sel.trueClass)?.support ?? 0;
    const correct = t === p;
    const close = h('vscode-button', { secondary: true, class: 'close', title: 'Clear the selection (Esc)', text: 'Clear' });
    close.addEventListener('click', () => this.select(null, false));
    const onGrid = this.deps.onGrid;
    const toGrid = onGrid && inCell
      ? h('vscode-button', { secondary: true, class: 'open-grid', title: 'Open these images in the image grid: sort, select several, move or relabel them in one step', text: 'Open in image grid' })
      : null;
    toGrid?.addEventListener('click', () => onGrid!({ trueClass: sel.trueClass, predictedClass: sel.predictedClass }));
    replaceChildren(
      this.drawer,
      h(
        'header',
        { class: 'drawer-head' },
        h(
          'div',
          null,
          h('h3', null, h('span', { class: 'tt-true', text: sel.trueClass }), correct ? ' predicted correctly' : ' → ', correct ? null : h('span', { class: 'tt-pred', text: sel.predictedClass })),
          h(
            'p',
            { class: 'muted' },
            correct
              ? `${plural(inCell, 'image')} of ${int(support)} labelled ${sel.trueClass} are predicted as ${sel.trueClass}.`
              : `${plural(inCell, 'image')} labelled ${sel.trueClass} (${pct(support ? inCell / support : 0)} of the class) are predicted as ${sel.predictedClass}. Click an image to open it.`,
          ),
        ),
        h('div', { class: 'drawer-actions' }, toGrid, close),
      ),
      inCell
        ? sampleGrid({ model: m, thumbs: this.deps.thumbs, host: this.deps.host, query: { source: { kind: 'cell', cell: { trueClass: sel.trueClass, predictedClass: sel.predictedClass } }, sort: 'report', split: m.split }, pageSize: 60 })
        : h('p', { class: 'muted', text: 'No images in this cell.' }),
    );
  }
}
