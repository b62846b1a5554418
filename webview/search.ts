/**
 * Text-search results (CLIP Lens: Search Images...): the images ranked by CLIP similarity to the query, as
 * thumbnails with their score; click opens the image. "Select all above this score" selects every result scoring at
 * least that one's and shows the selection's precision and recall against a chosen class (the retrieval view).
 */
import type { SearchHitItem } from '../src/core/panelProtocol';
import { selectionScores } from '../src/core/searchSelection';
import { h, replaceChildren } from './dom';
import { int, pct } from './format';
import type { HostChannel } from './host';
import type { ReportModel } from './model';
import { sampleTile } from './sampleGrid';
import type { ThumbnailLoader } from './thumbs';

export interface SearchViewDeps {
  model: ReportModel;
  host: HostChannel;
  thumbs: ThumbnailLoader;
  onClose: () => void;
}

const PAGE = 60;

export function renderSearch(query: string, hits: SearchHitItem[], deps: SearchViewDeps): HTMLElement {
  const { model } = deps;
  const report = model.report;
  // The host sends each hit with its sample (the panel holds no samples of its own).
  model.remember(hits.flatMap((x) => (x.sample && x.index !== undefined ? [{ index: x.index, sample: x.sample }] : [])));
  const indexOf = model.byPath;
  const shown = hits.filter((x) => indexOf.has(x.path));
  const labelOf = (p: string) => model.sample(indexOf.get(p) ?? -1)?.label;
  // The class to judge against: the most common label among the first ten results.
  const votes = new Map<string, number>();
  for (const x of shown.slice(0, 10)) votes.set(labelOf(x.path) ?? '', (votes.get(labelOf(x.path) ?? '') ?? 0) + 1);
  let cls = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? report.dataset.classes[0] ?? '';
  let rank: number | null = null;

  const summary = h('p', { class: 'search-summary', role: 'status', 'aria-live': 'polite' });
  const select = h(
    'vscode-single-select',
    { class: 'search-class', 'aria-label': 'Class to judge the selection against' },
    ...report.dataset.classes.map((c) => h('vscode-option', { value: c, selected: c === cls, text: c })),
  ) as HTMLElement & { value: string };
  const grid = h('div', { class: 'tiles search-tiles', role: 'list' });
  const more = h('vscode-button', { secondary: true, class: 'more' });

  const update = () => {
    if (rank === null) {
      summary.textContent = `${int(shown.length)} results, best first. Choose "Select all above this score" on a result to see precision and recall against '${cls}'.`;
    } else {
      const s = selectionScores(shown, labelOf, cls, report.dataset.counts.perClass[cls] ?? 0, rank);
      summary.textContent = `${int(s.selected)} selected (score >= ${s.threshold.toFixed(3)}): precision ${pct(s.precision)}, recall ${pct(s.recall)} against '${cls}' (${int(s.truePositives)} of ${int(report.dataset.counts.perClass[cls] ?? 0)} '${cls}' images).`;
    }
    const threshold = rank === null ? Infinity : shown[rank].score;
    for (const tile of grid.children) (tile as HTMLElement).classList.toggle('selected', Number((tile as HTMLElement).dataset.score) >= threshold);
  };
  select.addEventListener('change', () => {
    cls = select.value;
    update();
  });

  let count = 0;
  const showMore = () => {
    for (const [j, x] of shown.slice(count, count + PAGE).entries()) {
      const r = count + j;
      const s = model.sample(indexOf.get(x.path)!)!;
      const tile = sampleTile({ thumbs: deps.thumbs, host: deps.host, detail: (t) => `score ${x.score.toFixed(3)} · ${t.label}` }, s);
      tile.setAttribute('role', 'listitem');
      tile.dataset.score = String(x.score);
      tile.dataset.rank = String(r + 1);
      tile.querySelector('figcaption')?.appendChild(
        h('button', {
          class: 'link select-above',
          type: 'button',
          title: `Select every result scoring at least ${x.score.toFixed(3)}`,
          text: 'Select all above this score',
          onclick: () => {
            rank = r;
            update();
          },
        }),
      );
      grid.appendChild(tile);
    }
    count = Math.min(shown.length, count + PAGE);
    more.hidden = count >= shown.length;
    more.textContent = `Show ${int(Math.min(PAGE, shown.length - count))} more (${int(shown.length - count)} left)`;
    update();
  };
  more.addEventListener('click', showMore);
  const section = h(
    'section',
    { class: 'search-results', 'aria-label': 'Search results' },
    h(
      'div',
      { class: 'search-head' },
      h('h2', { text: `Search: “${query}”` }),
      h('label', { class: 'search-class-label' }, 'Judge against ', select),
      h('vscode-button', { secondary: true, text: 'Close', title: 'Hide the search results', onclick: () => deps.onClose() }),
    ),
    summary,
    grid,
    more,
  );
  showMore();
  return section;
}

/** Duplicate groups and outliers of the report, as thumbnails (click opens the image). */
export function renderDuplicates(deps: Omit<SearchViewDeps, 'onClose'>): HTMLElement | null {
  const report = deps.model.report;
  const groups = report.duplicates ?? [];
  const outliers = report.outliers ?? [];
  if (groups.length === 0 && outliers.length === 0) return null;
  const tile = (p: string, detail: string) => {
    const i = deps.model.byPath.get(p);
    const s = i === undefined ? undefined : deps.model.sample(i);
    return s === undefined ? null : sampleTile({ thumbs: deps.thumbs, host: deps.host, detail: () => detail }, s);
  };
  const body = h('div', { class: 'duplicates-body' });
  const details = h(
    'details',
    { class: 'duplicates' },
    h('summary', { text: `Duplicates and outliers: ${int(groups.length)} group${groups.length === 1 ? '' : 's'}, ${int(outliers.length)} outlier${outliers.length === 1 ? '' : 's'}` }),
    body,
  );
  details.addEventListener(
    'toggle',
    () => {
      if (!details.open || body.childElementCount > 0) return;
      const leaked = new Set((report.leakage ?? []).flatMap((l) => l.paths));
      const items: HTMLElement[] = [];
      for (const g of groups.slice(0, 200)) {
        const crossesSplits = new Set(g.splits).size > 1;
        items.push(
          h(
            'div',
            { class: `duplicate-group${crossesSplits ? ' leak' : ''}`, 'data-kind': g.kind },
            h('p', { class: 'duplicate-title', text: `${g.kind === 'exact' ? 'Exact copies' : `Near-copies (cosine ≥ ${g.similarity.toFixed(3)})`}${crossesSplits ? ': across splits' : ''}${new Set(g.labels).size > 1 ? ', different labels' : ''}` }),
            h('div', { class: 'tiles', role: 'list' }, ...g.paths.map((p, j) => tile(p, `${g.splits[j] ? `${g.splits[j]} · ` : ''}${g.labels[j]}${leaked.has(p) ? ' · leaked' : ''}`))),
          ),
        );
      }
      if (outliers.length > 0) {
        items.push(
          h(
            'div',
            { class: 'outliers' },
            h('p', { class: 'duplicate-title', text: 'Outliers (unlike the rest of their class and of the dataset), most unusual first' }),
            h('div', { class: 'tiles', role: 'list' }, ...outliers.slice(0, 120).map((o) => tile(o.path, `score ${o.score.toFixed(3)} · ${o.label}`))),
          ),
        );
      }
      replaceChildren(body, ...items);
    },
  );
  return details;
}
