/**
 * The rows of one grid query (source, sort, split), fetched from the host a page at a time as they scroll into view
 * (`requestSamples`, answered from the report's sample table, core/panelSamples.ts). At most `maxPages` pages are
 * kept (least recently used dropped), so a grid of a million images holds a few hundred samples.
 */
import type { PanelSampleRow, PanelSamplesQuery } from '../src/core/panelProtocol';
import type { HostChannel } from './host';

export class PagedRows {
  /** Rows of the query; -1 until the host answered once. */
  total = -1;
  /** Page requests sent so far (tests check that scrolling asks for a bounded number). */
  requests = 0;
  private readonly pages = new Map<number, PanelSampleRow[]>();
  private readonly pending = new Map<number, Promise<void>>();
  private disposed = false;

  constructor(
    private readonly host: HostChannel,
    readonly query: PanelSamplesQuery,
    /** Called when a page arrives (re-render). */
    private readonly onLoad: () => void,
    readonly pageSize = 120,
    private readonly maxPages = 10,
  ) {}

  /** Stop calling onLoad (the grid shows another query). */
  dispose(): void {
    this.disposed = true;
  }

  /** Row `at` if its page is here; otherwise undefined, and the page is asked for. */
  get(at: number): PanelSampleRow | undefined {
    const p = Math.floor(at / this.pageSize);
    const page = this.pages.get(p);
    if (!page) {
      void this.load(p);
      return undefined;
    }
    this.pages.delete(p);
    this.pages.set(p, page);
    return page[at - p * this.pageSize];
  }

  /** Loads page `p` (once at a time); resolves when it is here. */
  load(p: number): Promise<void> {
    if (this.pages.has(p)) return Promise.resolve();
    let wait = this.pending.get(p);
    if (wait) return wait;
    this.requests++;
    const start = p * this.pageSize;
    wait = this.host
      .request((requestId) => ({ type: 'requestSamples', requestId, query: this.query, start, end: start + this.pageSize }), 'samples')
      .then((a) => {
        this.pending.delete(p);
        if (a.error) throw new Error(a.error);
        this.total = a.total;
        this.pages.set(p, a.rows);
        while (this.pages.size > this.maxPages) this.pages.delete(this.pages.keys().next().value as number);
        if (!this.disposed) this.onLoad();
      });
    this.pending.set(p, wait);
    return wait;
  }

  /** Rows at the given positions, fetching their pages as needed (bulk actions on a selection). */
  async rowsAt(positions: readonly number[]): Promise<PanelSampleRow[]> {
    const out: PanelSampleRow[] = [];
    for (const at of [...positions].sort((a, b) => a - b)) {
      const p = Math.floor(at / this.pageSize);
      await this.load(p);
      const row = this.pages.get(p)?.[at - p * this.pageSize];
      if (row) out.push(row);
    }
    return out;
  }
}
