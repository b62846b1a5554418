/**
 * Lazy thumbnails: a thumbnail element asks for its image only when it scrolls near the viewport; requests are
 * batched (up to 24 paths per message), answered by the host with small data: URIs, and kept in a bounded cache
 * so re-opening a cell does not ask again.
 */
import type { HostToPanel, ThumbnailItem } from '../src/core/panelProtocol';
import { h, icon } from './dom';
import type { HostChannel } from './host';

const BATCH = 24;
const CACHE_LIMIT = 3000;

type Waiter = (item: ThumbnailItem) => void;

export class ThumbnailLoader {
  private readonly cache = new Map<string, ThumbnailItem>();
  private readonly waiting = new Map<string, Waiter[]>();
  private readonly requested = new Set<string>();
  private queue: string[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly observer: IntersectionObserver;

  constructor(private readonly host: HostChannel) {
    this.observer = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          if (!e.isIntersecting) continue;
          this.observer.unobserve(e.target);
          const path = (e.target as HTMLElement).dataset.path;
          if (path) this.want(path);
        }
      },
      { rootMargin: '300px 0px' },
    );
    host.onMessage((m: HostToPanel) => {
      if (m.type === 'thumbnails') for (const item of m.items) this.deliver(item);
    });
  }

  /**
   * A thumbnail box for a sample path: shows a placeholder, then the image once it is near the viewport.
   * `onOpen` runs on click / Enter.
   */
  element(path: string, options: { size?: 'small' | 'medium'; title?: string; onOpen?: () => void } = {}): HTMLElement {
    const img = h('img', { alt: '', draggable: 'false', decoding: 'async' });
    const box = h(
      options.onOpen ? 'button' : 'div',
      { class: `thumb ${options.size ?? 'medium'}`, 'data-path': path, title: options.title ?? path, type: options.onOpen ? 'button' : null },
      img,
    );
    if (options.onOpen) box.addEventListener('click', options.onOpen);
    const show = (item: ThumbnailItem) => {
      if ('dataUri' in item) {
        img.src = item.dataUri;
        box.classList.add('loaded');
      } else {
        box.classList.add('failed');
        box.title = `${path}\n${item.error}`;
        box.appendChild(icon('broken'));
      }
    };
    const cached = this.cache.get(path);
    if (cached) show(cached);
    else {
      this.wait(path, show);
      this.observer.observe(box);
    }
    return box;
  }

  private wait(path: string, w: Waiter): void {
    const list = this.waiting.get(path);
    if (list) list.push(w);
    else this.waiting.set(path, [w]);
  }

  private want(path: string): void {
    if (this.cache.has(path) || this.requested.has(path)) return;
    this.requested.add(path);
    this.queue.push(path);
    if (this.queue.length >= BATCH) this.flush();
    else if (this.flushTimer === undefined) this.flushTimer = setTimeout(() => this.flush(), 16);
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    while (this.queue.length) {
      const paths = this.queue.splice(0, BATCH);
      this.host.post({ type: 'requestThumbnails', requestId: this.host.newRequestId(), paths });
    }
  }

  private deliver(item: ThumbnailItem): void {
    this.requested.delete(item.path);
    this.cache.set(item.path, item);
    if (this.cache.size > CACHE_LIMIT) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    const list = this.waiting.get(item.path);
    this.waiting.delete(item.path);
    list?.forEach((w) => w(item));
  }
}
