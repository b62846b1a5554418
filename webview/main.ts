/**
 * Entry of the report panel webview. Registers the @vscode-elements components it uses (only those), restores the
 * UI state, tells the host it is ready, and renders each report the host sends: header, warnings, then tabs for the
 * confusion matrix, per-class metrics and label issues.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-button-group/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';

import type { ExportFormat, ExportRequest, HostToPanel, MatrixCell, PanelTab, PanelUiState, PrCurve } from '../src/core/panelProtocol';
import { ClassTable } from './classTable';
import { h, replaceChildren } from './dom';
import { int } from './format';
import { renderHeader } from './header';
import { renderComparison } from './compare';
import type { Comparison } from '../src/core/comparison';
import { HostChannel } from './host';
import { IssuesView } from './issues';
import { MatrixView } from './matrix';
import { ReportModel } from './model';
import { restoreState } from './state';
import { onThemeChange } from './theme';
import { ThumbnailLoader } from './thumbs';
import { renderGate } from './gate';
import { ImageGrid } from './imageGrid';
import type { GridSource, PanelGate } from '../src/core/panelProtocol';
import { renderWarnings, type WarningsDeps } from './warnings';
import { renderDuplicates, renderSearch } from './search';

const TABS: readonly PanelTab[] = ['matrix', 'classes', 'issues', 'images'];

class App {
  private readonly host = new HostChannel();
  private readonly thumbs = new ThumbnailLoader(this.host);
  private state: PanelUiState = restoreState(this.host.loadState());
  private model: ReportModel | null = null;
  private readonly prCache = new Map<string, Promise<PrCurve>>();
  private readonly root = document.getElementById('app') ?? document.body.appendChild(h('main', { id: 'app' }));
  private readonly toasts = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
  private readonly headerSlot = h('div', { class: 'header-slot' });
  private readonly warningsSlot = h('div', { class: 'warnings-slot' });
  private readonly gateSlot = h('div', { class: 'gate-slot' });
  private gate: PanelGate | null = null;
  private resolvedPaths: Record<string, 'fixed' | 'ignored'> = {};
  private readonly grid: ImageGrid;
  private readonly searchSlot = h('div', { class: 'search-slot' });
  /** The query of the search results shown (kept through a new report, which clears them until they are sent again). */
  private searchShown: string | null = null;
  private readonly duplicatesSlot = h('div', { class: 'duplicates-slot' });
  private readonly compareSlot = h('div', { class: 'compare-slot' });
  /** The active "Compare with..." result (A: the picked run, B: the report shown); dropped when another report comes. */
  private comparison: Comparison | null = null;
  /** A report was shown by this page already (a restored page starts without its comparison). */
  private shownReport = false;
  private readonly tabs: HTMLElement & { selectedIndex: number };
  private readonly badges: Record<'classes' | 'issues', HTMLElement>;
  private readonly matrix: MatrixView;
  private readonly table: ClassTable;
  private readonly issues: IssuesView;

  constructor() {
    const state = () => this.state;
    const save = () => this.host.saveState(this.state);
    this.matrix = new MatrixView({ host: this.host, thumbs: this.thumbs, state, save, onClass: (c) => this.showClass(c), onGrid: (cell) => this.showImages({ kind: 'cell', cell }) });
    this.table = new ClassTable({ state, save, showCell: (cell) => this.showCell(cell), prCurve: (c) => this.prCurve(c) });
    this.issues = new IssuesView({
      host: this.host,
      thumbs: this.thumbs,
      state,
      save,
      onCount: (n) => (this.badges.issues.textContent = int(n)),
      toast: (m, k) => this.toast(m, k),
    });
    this.grid = new ImageGrid({
      host: this.host,
      thumbs: this.thumbs,
      state,
      save,
      toast: (m, k) => this.toast(m, k),
      onResolved: (paths, action, message) => {
        for (const p of paths) this.state.resolved[p] = { action, message };
        save();
        if (this.model) this.issues.setModel(this.model);
      },
    });
    this.badges = {
      classes: h('vscode-badge', { variant: 'counter', slot: 'content-after' }),
      issues: h('vscode-badge', { variant: 'counter', slot: 'content-after' }),
    };
    const header = (id: PanelTab, text: string, badge: HTMLElement | null) =>
      h('vscode-tab-header', { slot: 'header', 'data-tab': id }, text, badge);
    this.tabs = h(
      'vscode-tabs',
      { class: 'tabs', 'selected-index': String(TABS.indexOf(this.state.tab)) },
      header('matrix', 'Confusion matrix', null),
      header('classes', 'Per-class metrics', this.badges.classes),
      header('issues', 'Label issues', this.badges.issues),
      header('images', 'Images', null),
      h('vscode-tab-panel', { 'data-tab': 'matrix' }, this.matrix.element),
      h('vscode-tab-panel', { 'data-tab': 'classes' }, this.table.element),
      h('vscode-tab-panel', { 'data-tab': 'issues' }, this.issues.element),
      h('vscode-tab-panel', { 'data-tab': 'images' }, this.grid.element),
    ) as HTMLElement & { selectedIndex: number };
    this.tabs.addEventListener('vsc-tabs-select', (e) => {
      const tab = TABS[(e as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex] ?? 'matrix';
      this.state.tab = tab;
      save();
      this.afterTabShown(tab);
    });
    document.body.appendChild(this.toasts);
    this.host.onMessage((m) => this.onMessage(m));
    onThemeChange(() => {
      this.matrix.refreshTheme();
      this.table.refreshTheme();
    });
    window.addEventListener('error', (e) => this.reportError(e.error ?? e.message));
    window.addEventListener('unhandledrejection', (e) => this.reportError(e.reason));
    this.showLoading();
    this.host.post({ type: 'ready' });
  }

  private onMessage(m: HostToPanel): void {
    switch (m.type) {
      case 'report': {
        const started = performance.now();
        const reportId = `${m.report.dataset.root}@${m.report.createdAt}`;
        // A report that carries a comparison (eval --baseline, two models) opens with it; "Compare with..." replaces it.
        if (this.state.reportId !== reportId || !this.shownReport) this.comparison = m.report.comparison ?? null;
        this.shownReport = true;
        if (this.state.reportId !== reportId) {
          // Another report: keep view preferences, drop selections that referred to the old one.
          this.state.matrix.selected = null;
          this.state.matrix.scrollX = this.state.matrix.scrollY = 0;
          this.state.table.selectedClass = null;
          this.state.table.scrollTop = 0;
          this.state.resolved = {};
        }
        this.state.reportId = reportId;
        this.state.reportRef = m.reportRef;
        const knownPath = new Map(m.samples.known.map((r) => [r.index, r.sample.path]));
        const issuePaths = new Set(m.report.labelIssues.map((i) => i.path ?? knownPath.get(i.index)));
        for (const p of Object.keys(this.state.resolved)) if (!issuePaths.has(p)) delete this.state.resolved[p];
        if (m.resolvedPaths) {
          // The host's set is authoritative: a fix undone since (Undo Last Fix) is open again.
          for (const p of Object.keys(this.state.resolved)) if (!(p in m.resolvedPaths)) delete this.state.resolved[p];
          for (const [p, how] of Object.entries(m.resolvedPaths)) if (issuePaths.has(p)) this.state.resolved[p] ??= { action: how, message: how === 'fixed' ? 'Fixed' : 'Ignored' };
        }
        this.resolvedPaths = m.resolvedPaths ?? {};
        for (const p of m.ignoredPaths ?? []) this.state.resolved[p] ??= { action: 'ignored', message: 'Ignored' };
        const splits = m.report.dataset.splits ?? Object.keys(m.report.metricsBySplit ?? {});
        if (this.state.split !== null && !splits.includes(this.state.split)) this.state.split = null;
        this.gate = m.gate ?? null;
        this.render(new ReportModel(m.report, this.state.split, m.samples));
        this.host.saveState(this.state);
        // Two frames: layout and first paint are done.
        requestAnimationFrame(() =>
          requestAnimationFrame(() => {
            document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
            document.body.dataset.state = 'ready';
          }),
        );
        break;
      }
      case 'empty':
        this.model = null;
        replaceChildren(this.root, h('div', { class: 'empty-state' }, h('h1', { text: 'CLIP Lens' }), h('p', { text: m.message })));
        this.root.removeAttribute('aria-busy');
        document.body.dataset.state = 'empty';
        break;
      case 'reveal': {
        const t = m.target;
        if (t.kind === 'class') this.showClass(t.class);
        else if (t.kind === 'cell') this.showCell(t.cell);
        else if (t.kind === 'images') this.showImages(t.source);
        else if (t.kind === 'search') {
          // A search sent again after a re-run comes back only if the panel showed it when the new report came.
          if (!t.refresh || this.searchShown === t.query) this.showSearch(t.query, t.hits, !t.refresh);
        }
        else {
          this.selectTab('issues');
          if (t.path) this.issues.reveal(t.path);
        }
        break;
      }
      default:
        // thumbnails, prCurve and actionResult are consumed by their requesters.
        break;
    }
  }

  private render(model: ReportModel): void {
    this.model = model;
    this.prCache.clear();
    this.renderHeaderAndComparison(model);
    replaceChildren(this.gateSlot, renderGate(this.gate, { showImages: (c) => this.showImages({ kind: 'class', class: c }) }));
    replaceChildren(this.warningsSlot, renderWarnings(model, this.warningsDeps()));
    replaceChildren(this.duplicatesSlot, renderDuplicates({ model, host: this.host, thumbs: this.thumbs }));
    replaceChildren(this.searchSlot);
    this.badges.classes.textContent = int(model.metrics?.perClass.length ?? 0);
    if (!this.root.contains(this.tabs)) replaceChildren(this.root, this.headerSlot, this.gateSlot, this.compareSlot, this.warningsSlot, this.searchSlot, this.duplicatesSlot, this.tabs);
    this.root.removeAttribute('aria-busy');
    this.matrix.setModel(model);
    this.table.setModel(model);
    this.issues.setModel(model);
    this.grid.setModel(model, this.resolvedPaths);
    this.selectTab(this.state.tab);
  }

  private showSearch(query: string, hits: { path: string; score: number }[], scroll = true): void {
    if (!this.model) return;
    this.searchShown = query;
    const onClose = () => {
      this.searchShown = null;
      replaceChildren(this.searchSlot);
    };
    replaceChildren(this.searchSlot, renderSearch(query, hits, { model: this.model, host: this.host, thumbs: this.thumbs, onClose }));
    if (scroll) this.searchSlot.scrollIntoView({ block: 'start' });
  }

  private renderHeaderAndComparison(model: ReportModel): void {
    replaceChildren(
      this.headerSlot,
      renderHeader(model, { onSplit: (s) => this.setSplit(s), onExport: (f) => void this.export(f), onCompare: () => void this.compare(), comparison: this.comparison }),
    );
    if (this.comparison) {
      replaceChildren(this.compareSlot, renderComparison(this.comparison, () => this.setComparison(null), (c) => this.showClass(c)));
    } else {
      replaceChildren(this.compareSlot);
    }
  }

  private setComparison(c: Comparison | null): void {
    this.comparison = c;
    document.body.dataset.comparison = c ? c.a.name : '';
    if (this.model) this.renderHeaderAndComparison(this.model);
  }

  /** "Compare with...": the host shows the picker and answers with the comparison. */
  private async compare(): Promise<void> {
    const answer = await this.host.request((requestId) => ({ type: 'pickComparison', requestId }), 'comparison');
    if (answer.error) return this.toast(`Cannot compare: ${answer.error}`, 'error');
    if (answer.comparison) this.setComparison(answer.comparison);
  }

  private warningsDeps(): WarningsDeps {
    return {
      host: this.host,
      thumbs: this.thumbs,
      state: () => this.state,
      save: () => this.host.saveState(this.state),
      // "Show <class>" opens the images of that class.
      showClass: (c: string) => this.showImages({ kind: 'class', class: c }),
    };
  }

  private setSplit(split: string | null): void {
    if (!this.model || split === this.state.split) return;
    this.state.split = split;
    this.state.matrix.selected = null;
    this.host.saveState(this.state);
    this.render(new ReportModel(this.model.report, split, this.model.samples));
  }

  private selectTab(tab: PanelTab): void {
    const index = TABS.indexOf(tab);
    this.state.tab = tab;
    if (this.tabs.selectedIndex !== index) this.tabs.selectedIndex = index;
    this.host.saveState(this.state);
    this.afterTabShown(tab);
  }

  private afterTabShown(tab: PanelTab): void {
    // Let the tab panel become visible before measuring.
    requestAnimationFrame(() => {
      if (tab === 'matrix') this.matrix.onShown();
      if (tab === 'classes') this.table.onShown();
      if (tab === 'images') this.grid.onShown();
    });
  }

  /** The image grid on a source (a class, a confusion cell, the label issues). */
  private showImages(source: GridSource): void {
    this.grid.show(source);
    this.selectTab('images');
    requestAnimationFrame(() => this.grid.element.scrollIntoView({ block: 'start' }));
  }

  private showClass(name: string): void {
    this.selectTab('classes');
    requestAnimationFrame(() => this.table.selectClass(name));
  }

  private showCell(cell: MatrixCell): void {
    this.selectTab('matrix');
    requestAnimationFrame(() => {
      this.matrix.onShown();
      this.matrix.select(cell);
    });
  }

  private prCurve(className: string): Promise<PrCurve> {
    const model = this.model;
    if (!model) return Promise.reject(new Error('no report'));
    const key = `${model.split ?? ''}\0${className}`;
    let p = this.prCache.get(key);
    if (!p) {
      // The host holds the samples: it computes the curve (exact from probabilities, else from the top-K scores).
      p = this.host
        .request((requestId) => ({ type: 'requestPrCurve', requestId, class: className, split: model.split }), 'prCurve')
        .then((a) => {
          if (!a.curve) throw new Error(a.error ?? 'the host could not compute it');
          return a.curve;
        });
      this.prCache.set(key, p);
    }
    return p;
  }

  private async export(format: ExportFormat): Promise<void> {
    if (!this.model) return;
    let request: ExportRequest;
    const title = `Confusion matrix · ${this.model.name}${this.model.split ? ` (${this.model.split})` : ''} · ${this.state.matrix.mode === 'recall' ? 'row %' : 'counts'}`;
    if (format === 'png') {
      const png = this.matrix.exportPng(title);
      if (!png) return this.toast('There is no matrix to export.', 'error');
      request = { format: 'png', png };
    } else if (format === 'html') {
      const png = this.matrix.exportPng(title);
      request = png ? { format: 'html', matrixPng: png } : { format: 'html' };
    } else {
      request = { format };
    }
    const answer = await this.host.request((requestId) => ({ type: 'export', requestId, request }), 'actionResult');
    if (answer.ok) {
      if (answer.message) this.toast(answer.message);
    } else {
      this.toast(answer.message ?? 'Export failed.', 'error');
    }
  }

  private showLoading(): void {
    replaceChildren(this.root, h('div', { class: 'loading' }, h('vscode-progress-ring'), h('span', { text: 'Loading report…' })));
    document.body.dataset.state = 'loading';
  }

  private toast(message: string, kind: 'info' | 'error' = 'info'): void {
    const el = h('div', { class: `toast ${kind}`, text: message });
    this.toasts.appendChild(el);
    setTimeout(() => el.classList.add('leaving'), kind === 'error' ? 7000 : 3500);
    setTimeout(() => el.remove(), kind === 'error' ? 7400 : 3900);
  }

  private reportError(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.host.post({ type: 'error', message: e.message, stack: e.stack });
  }
}

new App();
