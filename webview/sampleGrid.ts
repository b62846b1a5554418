/** A paged grid of sample thumbnails with captions; clicking a thumbnail opens the image, the caption link the label line. */
import type { PanelSamplesQuery } from '../src/core/panelProtocol';
import type { ReportSample } from '../src/core/report';
import { h } from './dom';
import { baseName, int } from './format';
import type { HostChannel } from './host';
import type { ReportModel } from './model';
import type { ThumbnailLoader } from './thumbs';

export interface SampleGridOptions {
  model: ReportModel;
  thumbs: ThumbnailLoader;
  host: HostChannel;
  /** Known sample indices to show, in order (model.sample), or ... */
  indices?: number[];
  /** ... a query whose rows the host sends a page at a time. */
  query?: PanelSamplesQuery;
  /** Tiles added per "Show more" (default 60). */
  pageSize?: number;
  /** Second caption line; default: the top-1 prediction and its score. */
  detail?: (s: ReportSample) => string;
}

export function sampleTile(o: Pick<SampleGridOptions, 'thumbs' | 'host' | 'detail'>, s: ReportSample): HTMLElement {
  const open = () => o.host.post({ type: 'openImage', path: s.path });
  const top = s.predicted[0];
  const detail = o.detail ? o.detail(s) : top ? `${top.class} · ${top.score.toFixed(2)}` : (s.error?.message ?? 'no prediction');
  return h(
    'figure',
    { class: 'tile', 'data-path': s.path },
    o.thumbs.element(s.path, { onOpen: open, title: `${s.path}\nlabel: ${s.label}\nClick to open the image` }),
    h(
      'figcaption',
      null,
      h('span', { class: 'tile-name', title: s.path, text: s.split ? `${s.split}/${baseName(s.path)}` : baseName(s.path) }),
      h('span', { class: 'tile-detail', title: detail, text: detail }),
      s.source
        ? h('button', {
            class: 'link tile-source',
            type: 'button',
            title: `Open ${s.source.file} at line ${s.source.line}`,
            text: `${baseName(s.source.file)}:${s.source.line}`,
            onclick: () => o.host.post({ type: 'openLabelLine', path: s.path }),
          })
        : null,
    ),
  );
}

export function sampleGrid(o: SampleGridOptions): HTMLElement {
  const pageSize = o.pageSize ?? 60;
  const grid = h('div', { class: 'tiles', role: 'list' });
  const more = h('vscode-button', { secondary: true, class: 'more' });
  const wrap = h('div', { class: 'sample-grid' }, grid, more);
  let shown = 0;
  const page = async (): Promise<{ total: number; samples: ReportSample[] }> => {
    if (o.query) {
      const query = o.query;
      const a = await o.host.request((requestId) => ({ type: 'requestSamples', requestId, query, start: shown, end: shown + pageSize }), 'samples');
      if (a.error) throw new Error(a.error);
      return { total: a.total, samples: a.rows.map((r) => r.sample) };
    }
    const indices = o.indices ?? [];
    return { total: indices.length, samples: indices.slice(shown, shown + pageSize).flatMap((i) => o.model.sample(i) ?? []) };
  };
  let busy = false;
  const showMore = async () => {
    if (busy) return;
    busy = true;
    try {
      const { total, samples } = await page();
      for (const s of samples) {
        const tile = sampleTile(o, s);
        tile.setAttribute('role', 'listitem');
        grid.appendChild(tile);
      }
      shown += samples.length;
      const left = total - shown;
      more.hidden = left <= 0 || samples.length === 0;
      more.textContent = `Show ${int(Math.min(left, pageSize))} more (${int(left)} left)`;
    } finally {
      busy = false;
    }
  };
  more.hidden = true;
  more.addEventListener('click', () => void showMore());
  void showMore();
  return wrap;
}
