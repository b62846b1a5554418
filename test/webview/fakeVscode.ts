/**
 * A minimal stand-in for the 'vscode' module, enough to run src/extension/reportPanel.ts outside VS Code: Uri,
 * ViewColumn, EventEmitter, window.createWebviewPanel / registerWebviewPanelSerializer / showSaveDialog,
 * workspace.fs.writeFile. Importing this file makes `require('vscode')` resolve to it.
 */
import Module from 'node:module';
import * as fs from 'node:fs';

// The primitives are the extension unit tests' own (one EventEmitter, one Uri for every fake).
import { EventEmitter, Uri } from '../unit/extension-fakeVscode';

export { EventEmitter, Uri };

export enum ViewColumn {
  Active = -1,
  Beside = -2,
  One = 1,
  Two = 2,
}

export class Disposable {
  constructor(private readonly fn: () => void) {}
  dispose(): void {
    this.fn();
  }
}

export interface FakeWebview {
  html: string;
  options: { enableScripts?: boolean; localResourceRoots?: Uri[] };
  cspSource: string;
  /** Messages the host posted, in order. */
  posted: unknown[];
  asWebviewUri(uri: Uri): Uri;
  postMessage(message: unknown): Promise<boolean>;
  onDidReceiveMessage: EventEmitter<unknown>['event'];
  /** Test helper: deliver a message from the "webview" to the host. */
  receive(message: unknown): void;
}

export class FakeWebviewPanel {
  readonly webview: FakeWebview;
  title: string;
  iconPath: unknown;
  visible = true;
  disposed = false;
  private readonly onDispose = new EventEmitter<void>();
  private readonly onViewState = new EventEmitter<unknown>();
  readonly onDidDispose = this.onDispose.event;
  readonly onDidChangeViewState = this.onViewState.event;

  constructor(
    readonly viewType: string,
    title: string,
    readonly showOptions: unknown,
    options: FakeWebview['options'],
  ) {
    this.title = title;
    const messages = new EventEmitter<unknown>();
    const posted: unknown[] = [];
    this.webview = {
      html: '',
      options,
      cspSource: 'https://file+.vscode-resource.vscode-cdn.net',
      posted,
      asWebviewUri: (uri: Uri) => Uri.file(uri.fsPath),
      postMessage: async (m: unknown) => {
        posted.push(JSON.parse(JSON.stringify(m)));
        return true;
      },
      onDidReceiveMessage: messages.event,
      receive: (m: unknown) => messages.fire(m),
    };
  }

  reveal(): void {
    this.visible = true;
  }

  /** Test helper: hide (the webview content is unloaded) or show. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    this.onViewState.fire({ webviewPanel: this });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.onDispose.fire();
  }
}

export const created: FakeWebviewPanel[] = [];
export const serializers = new Map<string, { deserializeWebviewPanel(panel: FakeWebviewPanel, state: unknown): Promise<void> }>();
export let nextSaveTarget: Uri | undefined;
export function setNextSaveTarget(uri: Uri | undefined): void {
  nextSaveTarget = uri;
}

export const window = {
  createWebviewPanel(viewType: string, title: string, showOptions: unknown, options: FakeWebview['options']): FakeWebviewPanel {
    const p = new FakeWebviewPanel(viewType, title, showOptions, options);
    created.push(p);
    return p;
  },
  registerWebviewPanelSerializer(viewType: string, serializer: { deserializeWebviewPanel(panel: FakeWebviewPanel, state: unknown): Promise<void> }) {
    serializers.set(viewType, serializer);
    return new Disposable(() => serializers.delete(viewType));
  },
  async showSaveDialog(): Promise<Uri | undefined> {
    return nextSaveTarget;
  },
};

export const workspace = {
  fs: {
    async writeFile(uri: Uri, bytes: Uint8Array): Promise<void> {
      await fs.promises.writeFile(uri.fsPath, bytes);
    },
  },
};

// Make require('vscode') resolve to this module.
const M = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const original = M._resolveFilename;
M._resolveFilename = function (request: string, ...rest: unknown[]) {
  if (request === 'vscode') return __filename;
  return original.call(this, request, ...rest);
};
