/**
 * Warnings, shown before anything else: errors first and rare-class recall warnings as a large callout (an overall
 * accuracy of 98% must not hide a 12% recall on fire trucks), then imbalance, leakage, duplicates, dataset errors.
 * Each warning links to what it is about: the class, the files (as thumbnails), or the dataset problems.
 */
import type { PanelUiState } from '../src/core/panelProtocol';
import type { Warning } from '../src/core/report';
import { sortWarnings } from '../src/core/warnings';
import { h, icon, replaceChildren } from './dom';
import { int, pct, plural } from './format';
import type { HostChannel } from './host';
import type { ReportModel } from './model';
import { sampleGrid } from './sampleGrid';
import type { ThumbnailLoader } from './thumbs';

export interface WarningsDeps {
  host: HostChannel;
  thumbs: ThumbnailLoader;
  state: () => PanelUiState;
  save: () => void;
  showClass: (name: string) => void;
}

/** Warnings listed before "Show more". */
const FIRST = 4;

const KIND_TITLE: Record<Warning['kind'], string> = {
  'rare-class-low-recall': 'Rare class missed',
  'class-imbalance': 'Class imbalance',
  'low-accuracy': 'Low accuracy',
  'good-accuracy': 'Accuracy',
  'low-recall-at-k': 'Low Recall@K',
  duplicate: 'Duplicates',
  'possible-leakage': 'Possible leakage',
  'dataset-errors': 'Dataset errors',
  'zero-shot-at-chance': 'Class names mean nothing to CLIP',
  'prompt-fails': 'Prompt fails',
  'classes-do-not-separate': 'Classes do not separate',
  leakage: 'Leakage between splits',
  'conflicting-labels': 'Copies with different labels',
  'class-outliers': 'Many outliers',
  'class-collision': 'Classes the model cannot tell apart',
  overfitting: 'Train-test gap',
};

export function renderWarnings(model: ReportModel, deps: WarningsDeps): HTMLElement {
  const warnings = sortWarnings(model.report.warnings);
  const section = h('section', { class: 'warnings', 'aria-label': 'Warnings' });
  if (warnings.length === 0) {
    section.append(h('p', { class: 'ok' }, icon('check'), ' No warnings: no rare class is missed, no duplicates or leakage were found.'));
    return section;
  }
  const list = h('ul', { class: 'warning-list' });
  const toggle = h('button', { type: 'button', class: 'link more-warnings' });
  const paint = () => {
    const expanded = deps.state().warningsExpanded;
    const shown = expanded ? warnings : warnings.slice(0, FIRST);
    replaceChildren(list, ...shown.map((w) => item(w, model, deps)));
    toggle.hidden = warnings.length <= FIRST;
    toggle.textContent = expanded ? 'Show fewer warnings' : `Show ${warnings.length - FIRST} more ${warnings.length - FIRST === 1 ? 'warning' : 'warnings'}`;
  };
  toggle.addEventListener('click', () => {
    deps.state().warningsExpanded = !deps.state().warningsExpanded;
    deps.save();
    paint();
  });
  const counts = { error: 0, warning: 0, info: 0 };
  for (const w of warnings) counts[w.severity]++;
  section.append(
    h(
      'h2',
      null,
      'Warnings ',
      h('span', { class: 'muted', text: [counts.error && plural(counts.error, 'error'), counts.warning && plural(counts.warning, 'warning'), counts.info && `${int(counts.info)} info`].filter(Boolean).join(' · ') }),
    ),
    list,
    toggle,
  );
  paint();
  return section;
}

function item(w: Warning, model: ReportModel, deps: WarningsDeps): HTMLElement {
  const extra = h('div', { class: 'warning-extra' });
  const actions = h('div', { class: 'warning-actions' });
  if (w.class) {
    actions.append(h('button', { type: 'button', class: 'link', text: `Show ${w.class}`, onclick: () => deps.showClass(w.class!) }));
  }
  const indices = (w.paths ?? []).map((p) => model.byPath.get(p)).filter((i): i is number => i !== undefined);
  if (indices.length) {
    const b = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false', text: `Show ${plural(indices.length, 'image')}` });
    b.addEventListener('click', () => {
      const open = b.getAttribute('aria-expanded') === 'true';
      b.setAttribute('aria-expanded', String(!open));
      b.textContent = open ? `Show ${plural(indices.length, 'image')}` : 'Hide images';
      replaceChildren(extra, open ? null : sampleGrid({ model, thumbs: deps.thumbs, host: deps.host, indices, pageSize: 24, detail: (s) => `labelled ${s.label}${s.split ? ` · ${s.split}` : ''}` }));
    });
    actions.append(b);
  }
  if (w.kind === 'dataset-errors' && model.report.errors.length) {
    const b = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false', text: `Show ${plural(model.report.errors.length, 'problem')}` });
    b.addEventListener('click', () => {
      const open = b.getAttribute('aria-expanded') === 'true';
      b.setAttribute('aria-expanded', String(!open));
      b.textContent = open ? `Show ${plural(model.report.errors.length, 'problem')}` : 'Hide problems';
      replaceChildren(extra, open ? null : problems(model, deps.host));
    });
    actions.append(b);
  }
  const sevIcon = icon(w.severity === 'error' ? 'error' : w.severity === 'warning' ? 'warning' : 'info', `sev-${w.severity}`);
  const li = h('li', { class: `warning sev-${w.severity} kind-${w.kind}`, 'data-kind': w.kind });
  if (w.kind === 'rare-class-low-recall' && typeof w.numbers.recall === 'number') {
    const support = w.numbers.support;
    const found = typeof support === 'number' ? Math.round(w.numbers.recall * support) : null;
    li.append(
      h(
        'div',
        { class: 'callout-figure' },
        h('span', { class: 'big', text: pct(w.numbers.recall, 0) }),
        // A rare-class warning that follows the linear probe or kNN (zero-shot near chance) says whose recall it is.
        h('span', { class: 'muted', text: `${w.predictor === 'linear-probe' ? 'linear probe ' : w.predictor === 'knn' ? 'kNN ' : ''}recall on ${w.class ?? 'a rare class'}` }),
        found !== null ? h('span', { class: 'muted', text: `${int(found)} of ${int(support)} found` }) : null,
      ),
    );
  } else {
    li.append(sevIcon);
  }
  li.append(h('div', { class: 'warning-body' }, h('div', { class: 'warning-title', text: KIND_TITLE[w.kind] ?? w.kind }), h('div', { class: 'warning-message', text: w.message }), actions, extra));
  return li;
}

function problems(model: ReportModel, host: HostChannel): HTMLElement {
  const errors = model.report.errors.slice(0, 200);
  return h(
    'ul',
    { class: 'problems' },
    ...errors.map((e, index) => {
      const where = e.file ? `${e.file}${e.line ? `:${e.line}` : ''}` : (e.path ?? '');
      return h(
        'li',
        null,
        where ? h('button', { type: 'button', class: 'link', title: `Open ${where}`, text: where, onclick: () => host.post({ type: 'openProblem', index }) }) : null,
        h('span', { text: ` ${e.message}` }),
      );
    }),
    model.report.errors.length > errors.length ? h('li', { class: 'muted', text: `… and ${int(model.report.errors.length - errors.length)} more` }) : null,
  );
}
