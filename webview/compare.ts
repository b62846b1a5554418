/**
 * The comparison section of the panel ("Compare with..."): what run A is, the per-class changes (a delta column per
 * figure, largest change first), the difference confusion matrix B - A (classes with a change only; green where the
 * diagonal gained or an off-diagonal cell lost, red the other way), and the images fixed and broken.
 */
import type { Comparison } from '../src/core/comparison';
import { h } from './dom';
import { int, pct, plural } from './format';

/** A change in percentage points with its sign: "+1.2 pts", "−3.0 pts", "±0". */
export function deltaPoints(d: number | null): string {
  if (d === null) return '–';
  const p = Math.round(d * 1000) / 10;
  if (p === 0) return '±0';
  return `${p > 0 ? '+' : '−'}${Math.abs(p).toFixed(1)} pts`;
}

function deltaClass(d: number | null): string {
  if (d === null || Math.abs(d) < 5e-4) return 'delta same';
  return d > 0 ? 'delta up' : 'delta down';
}

/** The delta badge under a header card. */
export function cardDelta(c: Comparison, metric: string): HTMLElement | null {
  const row = c.headline.find((x) => x.metric === metric);
  if (!row || row.delta === null) return null;
  return h('div', { class: `card-delta ${deltaClass(row.delta)}`, title: `${c.a.name}: ${pct(row.a)} → this run: ${pct(row.b)}`, text: `${deltaPoints(row.delta)} vs ${c.a.name}` });
}

/** Rows of the per-class table (the largest changes come first). */
const MAX_CLASS_ROWS = 300;
/** Largest number of classes the difference matrix shows (those with the most change). */
const MAX_MATRIX_CLASSES = 30;

export function renderComparison(c: Comparison, onClear: () => void, showClass: (name: string) => void): HTMLElement {
  const S = c.samples;
  const head = h(
    'div',
    { class: 'compare-head' },
    h('h2', { text: `Compared with ${c.a.name}` }),
    h('vscode-button', { secondary: true, class: 'compare-clear', text: 'Clear comparison', onclick: onClear }),
  );
  const facts = h(
    'p',
    { class: 'compare-facts' },
    `A: ${c.a.name} (model ${c.a.model}, templates ${c.a.templates}, ${int(c.a.images)} images) · B: this run (model ${c.b.model}, templates ${c.b.templates}, ${int(c.b.images)} images)`,
  );
  const setup = c.setupDifferences.length > 0 ? h('p', { class: 'compare-setup', text: `Different setup: ${c.setupDifferences.join('; ')}` }) : null;
  const summary = h(
    'p',
    { class: 'compare-summary' },
    `${plural(S.common, 'image')} in both · `,
    h('span', { class: 'delta up', text: `${int(S.fixed.length)} fixed` }),
    ' · ',
    h('span', { class: 'delta down', text: `${int(S.broken.length)} broken` }),
    ` · ${int(S.changed.length)} changed · likely label errors ${int(c.labelIssues.new.length)} new, ${int(c.labelIssues.gone.length)} gone`,
  );

  // Per class: delta columns.
  const rows = c.classes.slice(0, MAX_CLASS_ROWS).map((d) =>
    h(
      'tr',
      { 'data-class': d.class },
      h('td', null, h('a', { href: '#', text: d.class, onclick: (e: Event) => (e.preventDefault(), showClass(d.class)) })),
      h('td', { class: 'num', text: d.a ? pct(d.a.recall) : '–' }),
      h('td', { class: 'num', text: d.b ? pct(d.b.recall) : '–' }),
      h('td', { class: `num ${deltaClass(d.delta?.recall ?? null)}`, 'data-delta': 'recall', text: d.delta ? deltaPoints(d.delta.recall) : d.a ? 'gone' : 'new' }),
      h('td', { class: `num ${deltaClass(d.delta?.precision ?? null)}`, text: d.delta ? deltaPoints(d.delta.precision) : '–' }),
      h('td', { class: `num ${deltaClass(d.delta?.f1 ?? null)}`, text: d.delta ? deltaPoints(d.delta.f1) : '–' }),
    ),
  );
  const table = h(
    'table',
    { class: 'compare-classes' },
    h('thead', null, h('tr', null, ...['Class', 'Recall A', 'Recall B', 'Δ recall', 'Δ precision', 'Δ F1'].map((t) => h('th', { text: t })))),
    h('tbody', null, ...rows),
  );

  return h(
    'section',
    { class: 'comparison', 'aria-label': 'Comparison' },
    head,
    facts,
    setup,
    summary,
    h(
      'details',
      { open: true },
      h('summary', { text: 'Per-class changes (largest first)' }),
      table,
      c.classes.length > MAX_CLASS_ROWS ? h('p', { class: 'muted', text: `… and ${int(c.classes.length - MAX_CLASS_ROWS)} more classes (clip-lens compare lists them all)` }) : null,
    ),
    renderDeltaMatrix(c),
    renderSamples(c),
  );
}

function renderDeltaMatrix(c: Comparison): HTMLElement | null {
  const d = c.confusionDelta;
  if (!d) return null;
  const n = d.classes.length;
  const weight = d.classes.map((_, i) => d.matrix[i].reduce((a, x) => a + Math.abs(x), 0) + d.matrix.reduce((a, row) => a + Math.abs(row[i]), 0));
  const shown = d.classes
    .map((_, i) => i)
    .filter((i) => weight[i] > 0)
    .sort((x, y) => weight[y] - weight[x])
    .slice(0, MAX_MATRIX_CLASSES)
    .sort((x, y) => x - y);
  const body =
    shown.length === 0
      ? h('p', { class: 'muted', text: 'No change: every image is predicted as before.' })
      : h(
          'table',
          { class: 'delta-matrix', 'aria-label': 'Difference confusion matrix, B minus A; rows true class, columns predicted class' },
          h('thead', null, h('tr', null, h('th', { text: 'true \\ predicted' }), ...shown.map((j) => h('th', { class: 'col', title: d.classes[j], text: d.classes[j] })))),
          h(
            'tbody',
            null,
            ...shown.map((i) =>
              h(
                'tr',
                null,
                h('th', { text: d.classes[i] }),
                ...shown.map((j) => {
                  const v = d.matrix[i][j];
                  // More on the diagonal (or less off it) is better.
                  const good = i === j ? v > 0 : v < 0;
                  return h('td', {
                    class: `num ${v === 0 ? 'zero' : good ? 'delta up' : 'delta down'}`,
                    'data-cell': `${d.classes[i]}|${d.classes[j]}`,
                    title: `${d.classes[i]} predicted as ${d.classes[j]}: ${v > 0 ? '+' : ''}${v}`,
                    text: v === 0 ? '·' : `${v > 0 ? '+' : ''}${v}`,
                  });
                }),
              ),
            ),
          ),
        );
  return h(
    'details',
    { class: 'delta-matrix-block' },
    h('summary', { text: `Difference confusion matrix (B − A)${shown.length < n && shown.length > 0 ? `, ${shown.length} of ${n} classes with a change` : ''}` }),
    body,
  );
}

function renderSamples(c: Comparison): HTMLElement | null {
  const list = (title: string, items: Comparison['samples']['fixed']) =>
    items.length === 0
      ? null
      : h(
          'div',
          { class: 'compare-samples' },
          h('h3', { text: `${title} (${int(items.length)})` }),
          h('ul', null, ...items.slice(0, 50).map((x) => h('li', { text: `${x.path}: labelled '${x.label}'${x.labelBefore ? ` (was '${x.labelBefore}')` : ''}, A '${x.a}' → B '${x.b}'` }))),
          items.length > 50 ? h('p', { class: 'muted', text: `… and ${int(items.length - 50)} more (clip-lens compare lists them all)` }) : null,
        );
  const broken = list('Broken: right in A, wrong now', c.samples.broken);
  const fixed = list('Fixed: wrong in A, right now', c.samples.fixed);
  if (!broken && !fixed) return null;
  return h('details', null, h('summary', { text: 'Images whose prediction changed' }), broken, fixed);
}
