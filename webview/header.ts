/**
 * The report header: dataset, model, image counts and time, the split selector, export buttons, and the headline
 * metrics side by side (top-1 accuracy, balanced accuracy, Recall@K, macro F1), each with its good/fair/poor band.
 */
import type { ExportFormat } from '../src/core/panelProtocol';
import type { Comparison } from '../src/core/comparison';
import { cardDelta } from './compare';
import { headlineMetric, headlineMetrics, type HeadlineMetric } from '../src/core/metricCatalogue';
import { h } from './dom';
import { dateTime, duration, int, pct, plural } from './format';
import type { ReportModel } from './model';
import { datasetFormat } from '../src/core/datasetFormat';
import { describeProvisional } from '../src/core/provisional';

export interface HeaderDeps {
  onSplit: (split: string | null) => void;
  onExport: (format: ExportFormat) => void;
  /** "Compare with...": asks the host for a run to compare with. */
  onCompare?: () => void;
  /** The active comparison: each card shows its change (all samples only, not a split). */
  comparison?: Comparison | null;
}

const BAND_TEXT = { good: 'Good', fair: 'Fair', poor: 'Poor' } as const;
/** Which predictor found the label errors (report.predictor.used). */
export const PREDICTOR_TEXT = { 'zero-shot': 'zero-shot', 'linear-probe': 'the linear probe', knn: 'kNN' } as const;

function card(metric: HeadlineMetric, sub: string, delta: HTMLElement | null = null): HTMLElement {
  const { band, thresholds: t, value, label } = metric;
  const fill = h('span', { class: 'gauge-fill' });
  fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  const tick = (at: number, name: string) => {
    const el = h('span', { class: 'gauge-tick', title: `${name}: ${pct(at, 0)}` });
    el.style.left = `${at * 100}%`;
    return el;
  };
  return h(
    'div',
    { class: `card ${band}`, title: `${metric.help}\nGood ≥ ${pct(t.good, 0)}, poor < ${pct(t.poor, 0)}.`, 'data-metric': label },
    h('div', { class: 'card-label' }, h('span', { text: label }), h('span', { class: `band ${band}`, text: BAND_TEXT[band] })),
    h('div', { class: 'card-value', text: pct(value) }),
    h('div', { class: 'gauge', 'aria-hidden': 'true' }, fill, tick(t.poor, 'poor below'), tick(t.good, 'good from')),
    h('div', { class: 'card-sub', text: sub }),
    delta,
  );
}

export function renderHeader(model: ReportModel, deps: HeaderDeps): HTMLElement {
  const r = model.report;
  const m = model.metrics;
  const counts = r.dataset.counts;
  const splits = model.splits;
  let splitSelect: HTMLElement | null = null;
  if (splits.length) {
    splitSelect = h(
      'vscode-single-select',
      { class: 'split', 'aria-label': 'Split' },
      h('vscode-option', { value: '', selected: model.split === null, text: 'All splits' }),
      ...splits.map((s) => h('vscode-option', { value: s, selected: model.split === s, text: `Split: ${s}` })),
    );
    splitSelect.addEventListener('change', () => {
      const v = (splitSelect as HTMLElement & { value: string }).value;
      deps.onSplit(v ? v : null);
    });
  }
  const exportButton = (format: ExportFormat, text: string, title: string) =>
    h('vscode-button', { secondary: true, 'data-export': format, title, text, onclick: () => deps.onExport(format) });

  const meta = h(
    'p',
    { class: 'meta' },
    h('span', { class: 'meta-item', text: datasetFormat(r.dataset.format).description }),
    h('span', { class: 'meta-item', title: r.model.dir }, 'model ', h('code', { text: r.model.id })),
    r.precision || r.model.quantized
      ? h('span', {
          class: 'meta-item precision',
          title: r.precision ? `${r.precision.requested === 'auto' ? 'auto: ' : ''}${r.precision.reason}` : 'the quantized graphs',
          text: r.precision?.requested === 'auto' ? `${r.precision.used} (auto${r.precision.agreement ? `, top-1 agreement ${(100 * r.precision.agreement.top1Agreement).toFixed(1)}%` : ''})` : (r.precision?.used ?? 'int8'),
        })
      : null,
    h(
      'span',
      { class: 'meta-item' },
      `${plural(counts.samples, 'image')}`,
      counts.failed ? h('span', { class: 'failed', text: ` (${int(counts.failed)} unreadable)` }) : null,
    ),
    h('span', { class: 'meta-item', text: `${plural(r.dataset.classes.length, 'class', 'classes')}` }),
    h('span', { class: 'meta-item', title: r.createdAt, text: `${dateTime(r.createdAt)} · ${duration(r.timing.totalMs)}` }),
    r.predictor
      ? h('span', { class: 'meta-item predictor', 'data-predictor': r.predictor.used, title: `Label errors from ${PREDICTOR_TEXT[r.predictor.used]}: ${r.predictor.reason}` }, 'label errors from ', h('strong', { text: PREDICTOR_TEXT[r.predictor.used] }))
      : null,
  );

  const cards = h('div', { class: 'cards' });
  if (m) {
    const correct = Math.round(m.top1Accuracy * m.n);
    const sub: Record<HeadlineMetric['key'], (k: string) => string> = {
      top1Accuracy: () => `${int(correct)} of ${int(m.n)} images`,
      balancedAccuracy: () => `mean recall of ${plural(m.perClass.filter((c) => c.support > 0).length, 'class', 'classes')}`,
      recallAtK: (k) => `label among the top ${k}`,
      macroF1: () => `precision ${pct(m.macro.precision, 0)} · recall ${pct(m.macro.recall, 0)}`,
    };
    // With a comparison (all samples, not a split): each card shows its change.
    const c = model.split === null ? deps.comparison : null;
    const deltaKey = (key: HeadlineMetric['key']) => (key === 'recallAtK' ? (model.k === '1' ? 'top1Accuracy' : `recallAtK.${model.k}`) : key);
    for (const metric of headlineMetrics(r, m)) cards.append(card(metric, sub[metric.key](model.k ?? ''), c ? cardDelta(c, deltaKey(metric.key)) : null));
  }
  // Results while running: the header says how much of the dataset the numbers cover (the final report replaces them).
  const partial = r.provisional;
  const badge = partial
    ? h('p', {
        class: `provisional-badge${partial.cancelled ? ' cancelled' : ''}`,
        role: 'status',
        'data-done': String(partial.done),
        'data-total': String(partial.total),
        title: partial.cancelled
          ? 'The run was cancelled here: the numbers cover the images done. Evaluate again to finish (the images done come from the cache).'
          : 'The evaluation is still running: metrics and label errors (from zero-shot) cover the images done so far; duplicates and outliers come with the final report, which replaces this one.',
        text: describeProvisional(partial),
      })
    : null;
  let gap: HTMLElement | null = null;
  if (m && m.top1Accuracy - m.balancedAccuracy >= 0.03) {
    // A note, not a yellow banner, when the balanced accuracy itself is still good (every card GOOD).
    const band = headlineMetric(r, m, 'balancedAccuracy')?.band ?? 'fair';
    gap = h(
      'p',
      { class: `gap-note ${band === 'good' ? 'info' : 'warn'}`, 'data-band': band },
      h('strong', { text: `Balanced accuracy is ${((m.top1Accuracy - m.balancedAccuracy) * 100).toFixed(1)} points below accuracy: ` }),
      'some classes do much worse than the average suggests. See the warnings below.',
    );
  }

  return h(
    'header',
    { class: 'report-header' },
    h(
      'div',
      { class: 'title-row' },
      h(
        'div',
        { class: 'title' },
        h('h1', null, h('span', { class: 'product', text: 'CLIP Lens' }), h('span', { text: model.name })),
        h('p', { class: 'root', title: r.dataset.root, text: r.dataset.root }),
        badge,
        meta,
      ),
      h(
        'div',
        { class: 'header-actions' },
        splitSelect,
        deps.onCompare
          ? h('vscode-button', { secondary: true, class: 'compare-with', title: 'Compare this report with the baseline, an earlier run or another report', text: 'Compare with…', onclick: () => deps.onCompare?.() })
          : null,
        h(
          'div',
          { class: 'export', role: 'group', 'aria-label': 'Export' },
          h('span', { class: 'muted', text: 'Export' }),
          exportButton('json', 'JSON', 'Save the full report as JSON'),
          exportButton('csv', 'CSV', 'Save per-class metrics as CSV'),
          exportButton('html', 'HTML', 'Save a self-contained HTML report'),
          exportButton('png', 'PNG', 'Save the confusion matrix as a PNG image'),
        ),
      ),
    ),
    cards,
    gap,
  );
}
