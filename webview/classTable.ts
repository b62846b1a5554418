/**
 * Per-class metrics: a sortable, filterable table that renders only the rows in view (28 px rows in a native scroll
 * container, so 1,000 classes cost ~25 row elements), and a detail pane for the selected class with its
 * precision-recall curve, average precision and the classes it is confused with.
 */
import type { ClassSortKey, MatrixCell, PanelUiState, PrCurve } from '../src/core/panelProtocol';
import type { ClassMetrics } from '../src/core/report';
import { metricBand, probeRecallByClass, recallAtKBandKind } from '../src/core/metricCatalogue';
import { h, icon, rafThrottle, replaceChildren } from './dom';
import { int, pct, plural } from './format';
import type { ReportModel } from './model';
import { PR_CHART_SIZE, drawPrChart } from './prChart';
import { readChartTheme } from './theme';

export interface ClassTableDeps {
  state: () => PanelUiState;
  save: () => void;
  /** Show a confusion-matrix cell (switches to the matrix tab). */
  showCell: (cell: MatrixCell) => void;
  /** Precision-recall curve of a class in the current split. */
  prCurve: (className: string) => Promise<PrCurve>;
}

interface Column {
  key: ClassSortKey;
  label: string;
  title: string;
  value: (c: ClassMetrics, k: string | null) => number | string | null;
  kind: 'text' | 'int' | 'rate' | 'ap';
}

const ROW_HEIGHT = 28;
/** Rows rendered beyond the visible ones, above and below. */
const OVERSCAN = 8;

function columns(k: string | null, probe: Map<string, number> | null = null): Column[] {
  const recall: Column = { key: 'recall', label: 'Recall', title: 'Of the images of the class, the share predicted as it', value: (c) => c.recall, kind: 'rate' };
  const probeRecall: Column[] = probe
    ? [
        {
          key: 'probeRecall',
          label: 'Probe recall',
          title: "Recall of the linear probe on the image embeddings (out of sample, 5-fold cross-validation over all evaluated images, whichever split is shown), next to zero-shot's recall: high here and low there means the prompt fails, not the images",
          value: (c) => probe.get(c.class) ?? null,
          kind: 'rate',
        },
      ]
    : [];
  if (probe) {
    recall.label = 'Zero-shot recall';
    recall.title = 'Of the images of the class, the share zero-shot predicts as it';
  }
  return [
    { key: 'class', label: 'Class', title: 'Class name', value: (c) => c.class, kind: 'text' },
    { key: 'support', label: 'Support', title: 'Images whose true label is the class', value: (c) => c.support, kind: 'int' },
    { key: 'predicted', label: 'Predicted', title: 'Images predicted (top-1) as the class', value: (c) => c.predicted, kind: 'int' },
    { key: 'precision', label: 'Precision', title: 'Of the images predicted as the class, the share that are', value: (c) => c.precision, kind: 'rate' },
    recall,
    ...probeRecall,
    { key: 'f1', label: 'F1', title: 'Harmonic mean of precision and recall', value: (c) => c.f1, kind: 'rate' },
    {
      key: 'recallAtK',
      label: k ? `Recall@${k}` : 'Recall@K',
      title: k ? `Share of the class's images with the class among the top ${k} predictions` : 'Not measured',
      value: (c, kk) => (kk ? (c.recallAtK[kk] ?? null) : null),
      kind: 'rate',
    },
    { key: 'ap', label: 'AP', title: 'Average precision: area under the precision-recall curve, retrieving the class by its score', value: (c) => c.averagePrecision, kind: 'ap' },
  ];
}

/** Default direction when a column is first sorted: worst first for rates, largest first for counts. */
const DEFAULT_DESC: Record<ClassSortKey, boolean> = {
  class: false,
  support: true,
  predicted: true,
  precision: false,
  recall: false,
  probeRecall: false,
  f1: false,
  recallAtK: false,
  ap: false,
};

export class ClassTable {
  readonly element: HTMLElement;
  private readonly filterInput: HTMLElement & { value: string };
  private readonly warnOnly: HTMLElement & { checked: boolean };
  private readonly count: HTMLSpanElement;
  private readonly header: HTMLDivElement;
  private readonly scroller: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly detail: HTMLElement;
  private model: ReportModel | null = null;
  private cols: Column[] = columns(null);
  private rows: ClassMetrics[] = [];
  private readonly renderRows = rafThrottle(() => this.paintRows());
  private prToken = 0;

  constructor(private readonly deps: ClassTableDeps) {
    this.filterInput = h('vscode-textfield', { placeholder: 'Filter classes', 'aria-label': 'Filter classes', class: 'filter' }) as HTMLElement & { value: string };
    this.warnOnly = h('vscode-checkbox', { label: 'Only weak classes', title: 'Classes named by a warning or with recall below 50%' }) as HTMLElement & { checked: boolean };
    this.count = h('span', { class: 'muted count' });
    this.header = h('div', { class: 'vrow vhead', role: 'row' });
    this.spacer = h('div', { class: 'vspacer', role: 'rowgroup' });
    this.scroller = h('div', { class: 'vscroll', tabindex: '0', role: 'grid', 'aria-label': 'Per-class metrics' }, this.header, this.spacer);
    this.detail = h('aside', { class: 'class-detail', 'aria-live': 'polite' });
    this.element = h(
      'section',
      { class: 'classes-view' },
      h('div', { class: 'toolbar' }, this.filterInput, this.warnOnly, h('span', { class: 'grow' }), this.count),
      h('div', { class: 'classes-body' }, h('div', { class: 'vtable' }, this.scroller), this.detail),
    );
    this.filterInput.addEventListener('input', () => {
      this.deps.state().table.filter = this.filterInput.value;
      this.deps.save();
      this.refresh();
    });
    this.warnOnly.addEventListener('change', () => {
      this.deps.state().table.warningsOnly = this.warnOnly.checked;
      this.deps.save();
      this.refresh();
    });
    this.scroller.addEventListener('scroll', () => {
      this.deps.state().table.scrollTop = this.scroller.scrollTop;
      this.deps.save();
      this.renderRows();
    });
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.renderRows()).observe(this.scroller);
  }

  setModel(model: ReportModel): void {
    this.model = model;
    this.cols = columns(model.k, probeRecallByClass(model.report));
    const st = this.deps.state().table;
    this.filterInput.value = st.filter;
    this.warnOnly.checked = st.warningsOnly;
    this.refresh();
    this.scroller.scrollTop = st.scrollTop;
    this.renderDetail();
  }

  onShown(): void {
    this.renderRows();
  }

  /** Redraws what uses theme colours on a canvas (the precision-recall chart). */
  refreshTheme(): void {
    if (this.deps.state().table.selectedClass) this.renderDetail();
  }

  /** Selects a class (e.g. from a warning) and scrolls its row into view. */
  selectClass(name: string): void {
    const st = this.deps.state().table;
    st.selectedClass = name;
    if (!this.rows.some((r) => r.class === name)) {
      st.filter = '';
      st.warningsOnly = false;
      this.filterInput.value = '';
      this.warnOnly.checked = false;
      this.refresh();
    }
    this.deps.save();
    this.scrollToRow(this.rows.findIndex((r) => r.class === name));
    this.paintRows();
    this.renderDetail();
  }

  /** Recomputes the rows (filter, then sort) and repaints the header and the visible rows. */
  private refresh(): void {
    const m = this.model;
    const metrics = m?.metrics;
    if (!m || !metrics) {
      this.rows = [];
      this.paintHeader();
      this.paintRows();
      return;
    }
    const st = this.deps.state().table;
    const q = st.filter.trim().toLowerCase();
    let rows = metrics.perClass;
    if (q) rows = rows.filter((c) => c.class.toLowerCase().includes(q));
    if (st.warningsOnly) rows = rows.filter((c) => m.warnedClasses.has(c.class) || (c.support > 0 && c.recall < m.bands.accuracy.poor));
    const col = this.cols.find((c) => c.key === st.sortKey) ?? this.cols[0];
    const k = m.k;
    const dir = st.descending ? -1 : 1;
    rows = [...rows].sort((a, b) => {
      const va = col.value(a, k);
      const vb = col.value(b, k);
      // Missing values (no support → no AP) sort last in both directions.
      if (va === null || vb === null) return va === vb ? a.class.localeCompare(b.class) : va === null ? 1 : -1;
      const cmp = typeof va === 'string' ? va.localeCompare(vb as string) : va - (vb as number);
      return cmp * dir || a.class.localeCompare(b.class);
    });
    this.rows = rows;
    this.count.textContent = rows.length === metrics.perClass.length ? plural(rows.length, 'class', 'classes') : `${int(rows.length)} of ${plural(metrics.perClass.length, 'class', 'classes')}`;
    this.scroller.setAttribute('aria-rowcount', String(rows.length + 1));
    this.paintHeader();
    this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    this.spacer.replaceChildren();
    this.paintRows();
  }

  private paintHeader(): void {
    const st = this.deps.state().table;
    replaceChildren(
      this.header,
      ...this.cols.map((col) => {
        const active = st.sortKey === col.key;
        const b = h(
          'button',
          {
            type: 'button',
            class: `th ${col.kind}${active ? ' sorted' : ''}`,
            role: 'columnheader',
            'data-key': col.key,
            title: `${col.title}. Click to sort.`,
            'aria-sort': active ? (st.descending ? 'descending' : 'ascending') : 'none',
          },
          h('span', { text: col.label }),
          h('span', { class: 'arrow', 'aria-hidden': 'true', text: active ? (st.descending ? '▼' : '▲') : '' }),
        );
        b.addEventListener('click', () => {
          if (st.sortKey === col.key) st.descending = !st.descending;
          else {
            st.sortKey = col.key;
            st.descending = DEFAULT_DESC[col.key];
          }
          this.deps.save();
          this.refresh();
        });
        return b;
      }),
    );
  }

  private paintRows(): void {
    const m = this.model;
    if (!m) return;
    const viewH = this.scroller.clientHeight || 560;
    const top = Math.max(0, this.scroller.scrollTop - this.header.offsetHeight);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((top + viewH) / ROW_HEIGHT) + OVERSCAN);
    const selected = this.deps.state().table.selectedClass;
    const k = m.k;
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.appendChild(this.row(this.rows[i], i, k, selected));
    this.spacer.replaceChildren(frag);
  }

  private row(c: ClassMetrics, i: number, k: string | null, selected: string | null): HTMLElement {
    const m = this.model!;
    const sev = m.warnedClasses.get(c.class);
    const cells = this.cols.map((col) => {
      const v = col.value(c, k);
      if (col.kind === 'text') {
        return h(
          'div',
          { class: 'td text', role: 'gridcell', title: c.class },
          sev ? icon(sev === 'error' ? 'error' : 'warning', `sev-${sev}`) : null,
          h('span', { class: 'name', text: c.class }),
        );
      }
      if (col.kind === 'int') return h('div', { class: 'td num', role: 'gridcell', text: int(v as number) });
      if (v === null) return h('div', { class: 'td num muted', role: 'gridcell', text: '–' });
      const value = v as number;
      const band = col.kind === 'rate' && c.support + c.predicted > 0 ? metricBand(col.key === 'recallAtK' && k !== null ? recallAtKBandKind(k) : 'accuracy', value, m.bands) : null;
      const bar = h('span', { class: 'bar' });
      bar.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
      return h(
        'div',
        { class: `td num rate${band ? ` ${band}` : ''}`, role: 'gridcell' },
        bar,
        h('span', { class: 'v', text: col.kind === 'ap' ? value.toFixed(3) : pct(value) }),
      );
    });
    const row = h(
      'div',
      {
        class: `vrow${c.class === selected ? ' selected' : ''}`,
        role: 'row',
        'data-class': c.class,
        'aria-rowindex': String(i + 2),
        'aria-selected': c.class === selected ? 'true' : 'false',
      },
      ...cells,
    );
    row.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
    row.addEventListener('click', () => this.selectClass(c.class));
    return row;
  }

  private scrollToRow(index: number): void {
    if (index < 0) return;
    const head = this.header.offsetHeight;
    const y = index * ROW_HEIGHT;
    const view = this.scroller.clientHeight - head;
    if (y < this.scroller.scrollTop) this.scroller.scrollTop = y;
    else if (y + ROW_HEIGHT > this.scroller.scrollTop + view) this.scroller.scrollTop = y + ROW_HEIGHT - view;
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'Home' && e.key !== 'End') return;
    e.preventDefault();
    if (!this.rows.length) return;
    const cur = this.rows.findIndex((r) => r.class === this.deps.state().table.selectedClass);
    const next =
      e.key === 'Home' ? 0 : e.key === 'End' ? this.rows.length - 1 : Math.max(0, Math.min(this.rows.length - 1, cur + (e.key === 'ArrowDown' ? 1 : -1)));
    this.selectClass(this.rows[next].class);
  }

  private renderDetail(): void {
    const m = this.model;
    const name = this.deps.state().table.selectedClass;
    const c = name ? m?.classMetrics(name) : undefined;
    if (!m || !c) {
      replaceChildren(this.detail, h('p', { class: 'muted hint', text: 'Select a class to see its precision-recall curve and what it is confused with.' }));
      return;
    }
    const metrics = m.metrics!;
    const ci = metrics.classes.indexOf(c.class);
    const row = metrics.confusionMatrix[ci];
    const k = m.k;
    const confusedAs = row
      .map((v, j) => ({ v, j }))
      .filter((x) => x.j !== ci && x.v > 0)
      .sort((a, b) => b.v - a.v)
      .slice(0, 5);
    const confusedFrom = metrics.confusionMatrix
      .map((r, i) => ({ v: r[ci], j: i }))
      .filter((x) => x.j !== ci && x.v > 0)
      .sort((a, b) => b.v - a.v)
      .slice(0, 5);
    const link = (cell: MatrixCell, text: string, n: number, share: string) =>
      h(
        'li',
        null,
        h('button', { type: 'button', class: 'link', title: 'Show this cell of the confusion matrix', text, onclick: () => this.deps.showCell(cell) }),
        h('span', { class: 'muted', text: ` ${plural(n, 'image')} · ${share}` }),
      );
    const stat = (label: string, value: string, band?: string | null) => h('div', { class: `stat${band ? ` ${band}` : ''}` }, h('dt', { text: label }), h('dd', { text: value }));
    const canvas = h('canvas', { class: 'pr-chart', role: 'img', 'aria-label': `Precision-recall curve of ${c.class}` });
    canvas.style.width = `${PR_CHART_SIZE.width}px`;
    canvas.style.height = `${PR_CHART_SIZE.height}px`;
    const prNote = h('p', { class: 'muted small pr-note', text: 'Computing the precision-recall curve…' });
    const showCell = h('vscode-button', { secondary: true, text: 'Show in matrix' });
    showCell.addEventListener('click', () => this.deps.showCell({ trueClass: c.class, predictedClass: c.class }));
    const sev = m.warnedClasses.get(c.class);
    replaceChildren(
      this.detail,
      h('h3', { class: 'detail-title' }, sev ? icon(sev === 'error' ? 'error' : 'warning', `sev-${sev}`) : null, h('span', { text: c.class })),
      h(
        'dl',
        { class: 'stats' },
        stat('Support', int(c.support)),
        stat('Predicted', int(c.predicted)),
        stat('Precision', pct(c.precision), metricBand('accuracy', c.precision, m.bands)),
        stat('Recall', pct(c.recall), c.support ? metricBand('accuracy', c.recall, m.bands) : null),
        stat('F1', pct(c.f1), metricBand('accuracy', c.f1, m.bands)),
        k ? stat(`Recall@${k}`, pct(c.recallAtK[k]), c.support ? metricBand(recallAtKBandKind(k), c.recallAtK[k] ?? 0, m.bands) : null) : null,
        stat('Avg. precision', c.averagePrecision === null ? '–' : c.averagePrecision.toFixed(3)),
      ),
      h('h4', { text: 'Precision-recall (retrieving this class by its score)' }),
      canvas,
      prNote,
      h('h4', { text: `${c.class} is predicted as` }),
      confusedAs.length
        ? h('ul', { class: 'confusions' }, ...confusedAs.map((x) => link({ trueClass: c.class, predictedClass: metrics.classes[x.j] }, metrics.classes[x.j], x.v, `${pct(x.v / Math.max(1, c.support))} of ${c.class}`)))
        : h('p', { class: 'muted', text: 'Never anything else.' }),
      h('h4', { text: `Predicted as ${c.class} but labelled` }),
      confusedFrom.length
        ? h('ul', { class: 'confusions' }, ...confusedFrom.map((x) => link({ trueClass: metrics.classes[x.j], predictedClass: c.class }, metrics.classes[x.j], x.v, `${pct(x.v / Math.max(1, c.predicted))} of predictions`)))
        : h('p', { class: 'muted', text: 'Nothing else.' }),
      showCell,
    );
    const token = ++this.prToken;
    this.deps
      .prCurve(c.class)
      .then((curve) => {
        if (token !== this.prToken) return;
        drawPrChart(canvas, curve, readChartTheme());
        prNote.textContent =
          curve.source === 'probabilities'
            ? `AP ${c.averagePrecision === null ? '–' : c.averagePrecision.toFixed(3)} over ${plural(curve.total, 'image')} (${int(curve.positives)} positive). Dashed: no-skill baseline.`
            : `From top-${m.report.topK} scores only: exact up to ${pct(curve.coverage, 0)} recall (red line), a lower bound beyond. AP from the report: ${c.averagePrecision === null ? '–' : c.averagePrecision.toFixed(3)}.`;
      })
      .catch((e: unknown) => {
        if (token === this.prToken) prNote.textContent = `No precision-recall curve: ${e instanceof Error ? e.message : String(e)}`;
      });
  }
}
