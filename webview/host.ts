/**
 * The webview's side of the channel: typed `post`, a typed message listener, request/response pairing by
 * `requestId`, and persisted UI state through `acquireVsCodeApi().getState/setState`.
 */
import type { HostToPanel, PanelToHost, PanelUiState } from '../src/core/panelProtocol';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** Answers that carry a requestId. */
type Answer = Extract<HostToPanel, { requestId: number }>;

const HOST_TYPES: ReadonlySet<string> = new Set<HostToPanel['type']>([
  'report',
  'empty',
  'thumbnails',
  'prCurve',
  'samples',
  'actionResult',
  'reveal',
  'comparison',
]);

export class HostChannel {
  private readonly api: VsCodeApi;
  private nextId = 1;
  private readonly pending = new Map<number, { type: Answer['type']; resolve: (answer: Answer) => void }>();
  private readonly listeners: Array<(message: HostToPanel) => void> = [];
  private stateTimer: ReturnType<typeof setTimeout> | undefined;
  private latestState: PanelUiState | undefined;

  constructor() {
    this.api = acquireVsCodeApi();
    window.addEventListener('message', (event: MessageEvent) => {
      const data: unknown = event.data;
      if (!data || typeof data !== 'object' || !HOST_TYPES.has((data as { type?: unknown }).type as string)) return;
      const message = data as HostToPanel;
      if ('requestId' in message) {
        const waiting = this.pending.get(message.requestId);
        if (waiting && waiting.type === message.type) {
          this.pending.delete(message.requestId);
          waiting.resolve(message);
        }
      }
      for (const l of this.listeners) l(message);
    });
    // Flush a pending state save when the webview is about to go away.
    window.addEventListener('pagehide', () => this.flushState());
  }

  post(message: PanelToHost): void {
    this.api.postMessage(message);
  }

  onMessage(listener: (message: HostToPanel) => void): void {
    this.listeners.push(listener);
  }

  /** Sends a request built around a fresh requestId; resolves with the host's answer of type `answerType` and that id. */
  request<T extends Answer['type']>(build: (requestId: number) => PanelToHost, answerType: T): Promise<Extract<Answer, { type: T }>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { type: answerType, resolve: (answer) => resolve(answer as Extract<Answer, { type: T }>) });
      this.post(build(id));
    });
  }

  /** A fresh id for fire-and-collect requests answered through onMessage (thumbnails). */
  newRequestId(): number {
    return this.nextId++;
  }

  loadState(): unknown {
    try {
      return this.api.getState();
    } catch {
      return undefined;
    }
  }

  /** Saves UI state, coalescing bursts (scrolling, typing) into one setState per 200 ms. */
  saveState(state: PanelUiState): void {
    this.latestState = state;
    if (this.stateTimer !== undefined) return;
    this.stateTimer = setTimeout(() => this.flushState(), 200);
  }

  flushState(): void {
    clearTimeout(this.stateTimer);
    this.stateTimer = undefined;
    if (this.latestState) this.api.setState(this.latestState);
  }
}
