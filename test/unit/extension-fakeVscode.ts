/**
 * A small in-memory stand-in for the 'vscode' module, enough to activate the extension in plain Node and drive its
 * commands: it records registered commands, context keys, diagnostics, messages, status-bar text and tree views.
 * Used by the extension-*.test.ts units (the real-VS-Code suite lives in test/integration); its EventEmitter and Uri
 * are also test/webview/fakeVscode.ts's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Module from 'node:module';

type Listener<T> = (e: T) => unknown;

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  event = (listener: Listener<T>) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
  ) {}
  static file(p: string): Uri {
    return new Uri('file', path.resolve(p));
  }
  static parse(s: string): Uri {
    const m = /^(\w+):\/\/(.*)$/.exec(s);
    return m ? new Uri(m[1], decodeURIComponent(m[2])) : new Uri('file', s);
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return new Uri(base.scheme, path.join(base.path, ...parts));
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    // As VS Code prints them: path segments encoded, slashes kept (file:///a/b%20c).
    return `${this.scheme}://${this.path.split('/').map(encodeURIComponent).join('/')}`;
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: number | Position, b: number | Position, c?: number, d?: number) {
    this.start = typeof a === 'number' ? new Position(a, b as number) : a;
    this.end = typeof a === 'number' ? new Position(c as number, d as number) : (b as Position);
  }
}

export class Location {
  constructor(
    readonly uri: Uri,
    readonly range: Range,
  ) {}
}

export enum DiagnosticSeverity {
  Error = 0,
  Warning = 1,
  Information = 2,
  Hint = 3,
}

export class Diagnostic {
  source?: string;
  code?: string | number | { value: string | number; target: Uri };
  relatedInformation?: DiagnosticRelatedInformation[];
  constructor(
    readonly range: Range,
    readonly message: string,
    readonly severity: DiagnosticSeverity = DiagnosticSeverity.Error,
  ) {}
}

export class DiagnosticRelatedInformation {
  constructor(
    readonly location: Location,
    readonly message: string,
  ) {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class ThemeIcon {
  constructor(
    readonly id: string,
    readonly color?: ThemeColor,
  ) {}
}

export class MarkdownString {
  value: string;
  supportHtml = false;
  constructor(
    value = '',
    readonly supportThemeIcons = false,
  ) {
    this.value = value;
  }
  appendMarkdown(s: string): this {
    this.value += s;
    return this;
  }
}

export enum TreeItemCollapsibleState {
  None = 0,
  Collapsed = 1,
  Expanded = 2,
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string | MarkdownString;
  iconPath?: unknown;
  contextValue?: string;
  command?: { command: string; title: string; arguments?: unknown[] };
  resourceUri?: Uri;
  accessibilityInformation?: { label: string };
  constructor(
    readonly label: string,
    readonly collapsibleState: TreeItemCollapsibleState = TreeItemCollapsibleState.None,
  ) {}
}

export class CodeActionKind {
  static readonly QuickFix = new CodeActionKind('quickfix');
  constructor(readonly value: string) {}
}

export class CodeAction {
  diagnostics?: Diagnostic[];
  isPreferred?: boolean;
  edit?: WorkspaceEdit;
  command?: { command: string; title: string; arguments?: unknown[] };
  constructor(
    readonly title: string,
    readonly kind?: CodeActionKind,
  ) {}
}

export class Hover {
  constructor(
    readonly contents: MarkdownString,
    readonly range?: Range,
  ) {}
}

export class RelativePattern {
  constructor(
    readonly base: Uri | { uri: Uri },
    readonly pattern: string,
  ) {}
}

export class TabInputWebview {
  constructor(readonly viewType: string) {}
}

type EditOp =
  | { kind: 'replace'; uri: Uri; range: Range; text: string }
  | { kind: 'rename'; from: Uri; to: Uri; overwrite?: boolean }
  | { kind: 'create'; uri: Uri; contents?: Uint8Array; ignoreIfExists?: boolean };

export class WorkspaceEdit {
  readonly ops: EditOp[] = [];
  replace(uri: Uri, range: Range, text: string): void {
    this.ops.push({ kind: 'replace', uri, range, text });
  }
  renameFile(from: Uri, to: Uri, options?: { overwrite?: boolean }): void {
    this.ops.push({ kind: 'rename', from, to, overwrite: options?.overwrite });
  }
  createFile(uri: Uri, options?: { contents?: Uint8Array; ignoreIfExists?: boolean }): void {
    this.ops.push({ kind: 'create', uri, contents: options?.contents, ignoreIfExists: options?.ignoreIfExists });
  }
}

export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 };
export const ViewColumn = { Active: -1, Beside: -2, One: 1 };
export const ConfigurationTarget = { Global: 1, Workspace: 2, WorkspaceFolder: 3 };
export const QuickPickItemKind = { Separator: -1, Default: 0 };

/** A text document over a file's content (edits apply in memory). */
export class FakeDocument {
  version = 1;
  isDirty = false;
  constructor(
    readonly uri: Uri,
    private text: string,
  ) {}
  getText(): string {
    return this.text;
  }
  private starts(): number[] {
    const s = [0];
    for (let i = 0; i < this.text.length; i++) {
      const c = this.text.charCodeAt(i);
      if (c === 10) s.push(i + 1);
      else if (c === 13) {
        if (this.text.charCodeAt(i + 1) === 10) i++;
        s.push(i + 1);
      }
    }
    return s;
  }
  positionAt(offset: number): Position {
    const s = this.starts();
    let line = 0;
    while (line + 1 < s.length && s[line + 1] <= offset) line++;
    return new Position(line, offset - s[line]);
  }
  offsetAt(p: Position): number {
    return this.starts()[p.line] + p.character;
  }
  get lineCount(): number {
    return this.starts().length;
  }
  setText(t: string): void {
    this.text = t;
    this.version++;
  }
}

export interface FakeState {
  commands: Map<string, (...args: unknown[]) => unknown>;
  context: Map<string, unknown>;
  diagnostics: Map<string, Map<string, Diagnostic[]>>;
  messages: { level: string; text: string }[];
  statusItems: { text: string; tooltip?: unknown; visible: boolean }[];
  /** Every progress.report() of withProgress tasks, in order. */
  progressReports: { message?: string; increment?: number }[];
  treeViews: Map<string, { treeDataProvider: unknown; badge?: unknown }>;
  settings: Record<string, unknown>;
  documents: FakeDocument[];
  logs: string[];
  /** Answers for showInformationMessage/showWarningMessage by message prefix (the button to press). */
  answers: { prefix: string; answer: string }[];
  panelsCreated: number;
  codeActionProviders: { provideCodeActions: Function; resolveCodeAction?: Function }[];
  /** File watchers: their base folder and a way to fire a created/deleted/changed event. */
  watchers: { base: string; fire(kind: 'create' | 'delete' | 'change', uri: Uri): void; disposed: boolean }[];
  hoverProviders: { provideHover: Function }[];
  /** Answers showOpenDialog (default: dismiss). */
  openDialog?: () => Uri[] | undefined;
  /** Every WorkspaceEdit applied, in order. */
  appliedEdits: WorkspaceEdit[];
  /** Picks an item in showQuickPick (default: dismiss). */
  quickPick?: (items: { label: string }[]) => { label: string } | undefined;
}

export function createFakeVscode(workspaceRoot: string, trusted = true) {
  const state: FakeState = {
    commands: new Map(),
    context: new Map(),
    diagnostics: new Map(),
    messages: [],
    statusItems: [],
    progressReports: [],
    treeViews: new Map(),
    settings: {},
    documents: [],
    logs: [],
    answers: [],
    panelsCreated: 0,
    codeActionProviders: [],
    hoverProviders: [],
    watchers: [],
    appliedEdits: [],
  };
  const disposable = { dispose: () => undefined };
  const event = () => () => disposable;
  const docEvents = {
    change: new EventEmitter<unknown>(),
    save: new EventEmitter<unknown>(),
    open: new EventEmitter<unknown>(),
    close: new EventEmitter<unknown>(),
    configuration: new EventEmitter<{ affectsConfiguration(section: string): boolean }>(),
  };
  const fileOps = {
    rename: new EventEmitter<{ files: { oldUri: Uri; newUri: Uri }[] }>(),
    create: new EventEmitter<{ files: Uri[] }>(),
    delete: new EventEmitter<{ files: Uri[] }>(),
  };
  const message = (level: string) => async (text: string, ...rest: unknown[]) => {
    state.messages.push({ level, text });
    const buttons = rest.filter((r): r is string => typeof r === 'string');
    return state.answers.find((a) => text.startsWith(a.prefix) && buttons.includes(a.answer))?.answer;
  };
  const logger = (level: string) => (msg: string) => state.logs.push(`${level} ${msg}`);
  const openDoc = async (uri: Uri | string) => {
    const u = typeof uri === 'string' ? Uri.file(uri) : uri;
    let doc = state.documents.find((d) => d.uri.fsPath === u.fsPath);
    if (!doc) {
      doc = new FakeDocument(u, fs.readFileSync(u.fsPath, 'utf8').replace(/^\uFEFF/, ''));
      state.documents.push(doc);
    }
    return doc;
  };

  const vscode = {
    EventEmitter,
    Uri,
    Position,
    Range,
    Location,
    Diagnostic,
    DiagnosticSeverity,
    DiagnosticRelatedInformation,
    ThemeColor,
    ThemeIcon,
    MarkdownString,
    TreeItem,
    TreeItemCollapsibleState,
    CodeAction,
    CodeActionKind,
    Hover,
    RelativePattern,
    TabInputWebview,
    WorkspaceEdit,
    StatusBarAlignment,
    ProgressLocation,
    ViewColumn,
    ConfigurationTarget,
    QuickPickItemKind,
    window: {
      createOutputChannel: () => ({ info: logger('info'), warn: logger('warn'), error: logger('error'), debug: logger('debug'), trace: logger('trace'), appendLine: logger('line'), show: () => undefined, dispose: () => undefined }),
      createTreeView: (id: string, options: { treeDataProvider: unknown }) => {
        const view = { treeDataProvider: options.treeDataProvider, badge: undefined as unknown, dispose: () => undefined, reveal: async () => undefined };
        state.treeViews.set(id, view);
        return view;
      },
      createStatusBarItem: () => {
        const item = { text: '', tooltip: undefined as unknown, visible: false, name: '', command: undefined as unknown, backgroundColor: undefined as unknown, accessibilityInformation: undefined as unknown, show() { item.visible = true; }, hide() { item.visible = false; }, dispose() {} };
        state.statusItems.push(item);
        return item;
      },
      showInformationMessage: message('info'),
      showWarningMessage: message('warning'),
      showErrorMessage: message('error'),
      setStatusBarMessage: (text: string) => (state.messages.push({ level: 'status', text }), disposable),
      withProgress: async (_o: unknown, task: (p: unknown, t: unknown) => Promise<unknown>) =>
        task({ report: (v: { message?: string; increment?: number }) => state.progressReports.push(v) }, { isCancellationRequested: false, onCancellationRequested: () => disposable }),
      showQuickPick: async (items: { label: string }[]) => state.quickPick?.(await items),
      showOpenDialog: async () => state.openDialog?.(),
      showTextDocument: async (doc: unknown) => ({ document: doc }),
      showWorkspaceFolderPick: async () => undefined,
      registerWebviewPanelSerializer: () => disposable,
      createWebviewPanel: () => {
        state.panelsCreated++;
        throw new Error('no webviews in the fake');
      },
      tabGroups: { all: [] as unknown[] },
      activeTextEditor: undefined,
    },
    workspace: {
      isTrusted: trusted as boolean,
      workspaceFolders: [{ uri: Uri.file(workspaceRoot), name: path.basename(workspaceRoot), index: 0 }],
      get textDocuments() {
        return state.documents;
      },
      getConfiguration: (section: string) => ({
        get: (key: string) => state.settings[`${section}.${key}`],
        inspect: (key: string) => (`${section}.${key}` in state.settings ? { globalValue: state.settings[`${section}.${key}`] } : undefined),
        update: async (key: string, value: unknown) => void (state.settings[`${section}.${key}`] = value),
      }),
      onDidChangeTextDocument: docEvents.change.event,
      onDidSaveTextDocument: docEvents.save.event,
      onDidOpenTextDocument: docEvents.open.event,
      onDidCloseTextDocument: docEvents.close.event,
      onDidChangeConfiguration: docEvents.configuration.event,
      onDidGrantWorkspaceTrust: event(),
      onDidRenameFiles: fileOps.rename.event,
      onDidCreateFiles: fileOps.create.event,
      onDidDeleteFiles: fileOps.delete.event,
      createFileSystemWatcher: (pattern: RelativePattern) => {
        const emitters = { create: new EventEmitter<Uri>(), delete: new EventEmitter<Uri>(), change: new EventEmitter<Uri>() };
        const base = pattern.base instanceof Uri ? pattern.base.fsPath : pattern.base.uri.fsPath;
        const entry = { base, fire: (kind: 'create' | 'delete' | 'change', uri: Uri) => emitters[kind].fire(uri), disposed: false };
        state.watchers.push(entry);
        return {
          onDidCreate: emitters.create.event,
          onDidDelete: emitters.delete.event,
          onDidChange: emitters.change.event,
          dispose: () => void (entry.disposed = true),
        };
      },
      findFiles: async () => [],
      asRelativePath: (p: string) => path.relative(workspaceRoot, p),
      openTextDocument: openDoc,
      applyEdit: async (edit: WorkspaceEdit) => {
        state.appliedEdits.push(edit);
        for (const op of edit.ops) {
          if (op.kind === 'rename') {
            if (!op.overwrite && fs.existsSync(op.to.fsPath)) return false;
            fs.renameSync(op.from.fsPath, op.to.fsPath);
            fileOps.rename.fire({ files: [{ oldUri: op.from, newUri: op.to }] });
          } else if (op.kind === 'create') {
            if (fs.existsSync(op.uri.fsPath)) {
              if (!op.ignoreIfExists) return false;
            } else fs.writeFileSync(op.uri.fsPath, op.contents ?? new Uint8Array());
          } else {
            const doc = await openDoc(op.uri);
            const text = doc.getText();
            const a = doc.offsetAt(op.range.start);
            const b = doc.offsetAt(op.range.end);
            doc.setText(text.slice(0, a) + op.text + text.slice(b));
            doc.isDirty = true;
            docEvents.change.fire({ document: doc, contentChanges: [{}] });
          }
        }
        return true;
      },
      fs: { readFile: async (u: Uri) => fs.readFileSync(u.fsPath) },
    },
    languages: {
      createDiagnosticCollection: (name: string) => {
        const map = new Map<string, Diagnostic[]>();
        state.diagnostics.set(name, map);
        return {
          set: (uri: Uri, d: Diagnostic[]) => void map.set(uri.fsPath, d),
          delete: (uri: Uri) => void map.delete(uri.fsPath),
          clear: () => map.clear(),
          dispose: () => map.clear(),
        };
      },
      registerCodeActionsProvider: (_selector: unknown, provider: FakeState['codeActionProviders'][number]) => (state.codeActionProviders.push(provider), disposable),
      registerHoverProvider: (_selector: unknown, provider: FakeState['hoverProviders'][number]) => (state.hoverProviders.push(provider), disposable),
    },
    commands: {
      registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => {
        if (state.commands.has(id)) throw new Error(`command ${id} registered twice`);
        state.commands.set(id, fn);
        return { dispose: () => state.commands.delete(id) };
      },
      executeCommand: async (id: string, ...args: unknown[]) => {
        if (id === 'setContext') {
          state.context.set(args[0] as string, args[1]);
          return undefined;
        }
        const fn = state.commands.get(id);
        return fn ? fn(...args) : undefined;
      },
    },
  };
  /** Changes a setting the way the settings editor does (value, then the change event). */
  const setSetting = (key: string, value: unknown) => {
    state.settings[key] = value;
    docEvents.configuration.fire({ affectsConfiguration: (section: string) => key === section || key.startsWith(`${section}.`) });
  };
  return { vscode, state, docEvents, fileOps, setSetting };
}

/** Makes `require('vscode')` return the fake (for modules loaded afterwards); returns a function undoing it. */
export function installFakeVscode(fake: unknown): () => void {
  const m = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
  const original = m._load;
  m._load = function (request: string, parent: unknown, isMain: boolean) {
    if (request === 'vscode') return fake;
    return original.call(this, request, parent, isMain);
  };
  return () => {
    m._load = original;
  };
}

/** A fake ExtensionContext with storage in `storageDir`. */
export function fakeContext(extensionRoot: string, storageDir: string) {
  return {
    subscriptions: [] as { dispose(): unknown }[],
    extensionUri: Uri.file(extensionRoot),
    extensionPath: extensionRoot,
    storageUri: Uri.file(storageDir),
    globalStorageUri: Uri.file(path.join(storageDir, 'global')),
  };
}

/** What the extension's `activate` returns to tests (its API for integration). */
export interface ExtensionApi {
  evaluate(target: string): Promise<import('../../src/core/report').EvalReport | undefined>;
  reports(): import('../../src/core/report').EvalReport[];
  loadedModels(): string[];
}

/**
 * The extension activated from source on a fresh fake 'vscode' over `work` (storage in work/storage), with `settings`
 * applied first: its state, its API, and the teardown (deactivate, then the fake uninstalled).
 */
/**
 * The teardown of a test file that called {@link activateExtension}: deactivates (when activation got that far),
 * uninstalls the fake vscode, drops the model and cache variables such files set, and removes their `work` folder.
 */
export async function closeExtension(deactivate: (() => Promise<void>) | undefined, uninstall: (() => void) | undefined, work: string | undefined): Promise<void> {
  await deactivate?.();
  uninstall?.();
  delete process.env.CLIP_LENS_MODEL;
  delete process.env.CLIP_LENS_CACHE;
  if (work) fs.rmSync(work, { recursive: true, force: true });
}

export function activateExtension(extensionRoot: string, work: string, settings: Record<string, unknown> = {}): { fake: ReturnType<typeof createFakeVscode>; state: FakeState; api: ExtensionApi; deactivate: () => Promise<void>; uninstall: () => void } {
  const fake = createFakeVscode(work);
  Object.assign(fake.state.settings, settings);
  const uninstall = installFakeVscode(fake.vscode);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ext = require('../../src/extension/main') as { activate(c: unknown): ExtensionApi; deactivate(): Promise<void> };
  const api = ext.activate(fakeContext(extensionRoot, path.join(work, 'storage')));
  return { fake, state: fake.state, api, deactivate: ext.deactivate, uninstall };
}
