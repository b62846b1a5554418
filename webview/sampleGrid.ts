/** A paged grid of sample thumbnails with captions; clicking a thumbnail opens the image, the caption link the label line. */
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
  /** Sample indices to show, in order. */
  indices: number[];
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
  const showMore = () => {
    const next = o.indices.slice(shown, shown + pageSize);
    for (const i of next) {
      const tile = sampleTile(o, o.model.sample(i));
      tile.setAttribute('role', 'listitem');
      grid.appendChild(tile);
    }
    shown += next.length;
    const left = o.indices.length - shown;
    more.hidden = left <= 0;
    more.textContent = `Show ${int(Math.min(left, pageSize))} more (${int(left)} left)`;
  };
  more.addEventListener('click', showMore);
  showMore();
  return wrap;
}
