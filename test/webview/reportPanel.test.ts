/**
 * The extension-host side of the panel (src/extension/reportPanel.ts) against a stand-in 'vscode' module:
 * HTML and CSP, resource roots, the ready/report handshake, request validation, fixes, exports, restore.
 */
import * as fake from './fakeVscode'; // first: makes require('vscode') resolve to the stand-in
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type * as vscodeTypes from 'vscode';
import type { HostToPanel, SampleFix } from '../../src/core/panelProtocol';
import type { EvalReport } from '../../src/core/report';
import {
  REPORT_PANEL_VIEW_TYPE,
  ReportPanel,
  buildFix,
  decodePngDataUrl,
  parsePanelMessage,
  saveExportWithDialog,
  toPanelReport,
  type ExportFile,
  type ReportPanelActions,
} from '../../src/extension/reportPanel';
import { querySamples } from '../../src/core/panelSamples';

const FIXTURE = path.join(__dirname, '../fixtures/report/shapes-report.json');
const ext = fake.Uri.file('/opt/ext/clip-lens') as unknown as vscodeTypes.Uri;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-host-'));

/** The fixture with its dataset root moved to a temp folder holding one real image. */
async function report(): Promise<EvalReport> {
  const r = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as EvalReport;
  r.dataset.root = path.join(tmp, 'shapes');
  const first = r.samples![0].path;
  fs.mkdirSync(path.dirname(path.join(r.dataset.root, first)), { recursive: true });
  await sharp({ create: { width: 300, height: 200, channels: 3, background: '#d94a3d' } }).png().toFile(path.join(r.dataset.root, first));
  return r;
}

interface Calls {
  opened: string[];
  lines: Array<[string, number]>;
  fixes: SampleFix[];
  ignored: string[];
  saved: ExportFile[];
  logs: string[];
}

function actions(calls: Calls, extra: Partial<ReportPanelActions> = {}): ReportPanelActions {
  return {
    openImage: (uri) => void calls.opened.push(uri.fsPath),
    openLabelLine: (uri, line) => void calls.lines.push([uri.fsPath, line]),
    applyFix: async (fix) => {
      calls.fixes.push(fix);
      return `Moved to ${fix.toClass}/`;
    },
    ignoreSample: async (p) => void calls.ignored.push(p),
    saveExport: async (file) => {
      calls.saved.push(file);
      return fake.Uri.file(path.join(tmp, file.fileName)) as unknown as vscodeTypes.Uri;
    },
    log: (m) => void calls.logs.push(m),
    ...extra,
  };
}

const newCalls = (): Calls => ({ opened: [], lines: [], fixes: [], ignored: [], saved: [], logs: [] });
const lastPanel = () => fake.created.at(-1)!;
const posted = () => lastPanel().webview.posted as HostToPanel[];
/** Lets the host's async message handler finish. */
const settle = () => new Promise((r) => setTimeout(r, 50));

beforeEach(() => ReportPanel.all.forEach((p) => p.dispose()));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('creates the panel with a strict CSP, a nonce, and only extension + dataset resource roots', async () => {
  const r = await report();
  const p = ReportPanel.createOrShow(ext, actions(newCalls()), r);
  const panel = lastPanel();
  assert.equal(ReportPanel.current, p);
  assert.equal(panel.viewType, REPORT_PANEL_VIEW_TYPE);
  assert.equal(panel.title, 'CLIP Lens: shapes');
  const html = panel.webview.html;
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)![1].replace(/&#39;/g, "'");
  const nonce = /'nonce-([^']+)'/.exec(csp)![1];
  assert.ok(nonce.length >= 22);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, new RegExp(`script-src 'nonce-${nonce}'`));
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*| https?:(;| |$)/, 'no inline code, no wildcard or scheme-wide sources');
  assert.match(csp, /img-src https:\/\/file\+\.vscode-resource\.vscode-cdn\.net data:;/);
  assert.match(html, new RegExp(`<script nonce="${nonce}" src="file:///opt/ext/clip-lens/dist/webview.js"></script>`));
  assert.match(html, /<link rel="stylesheet" href="file:\/\/\/opt\/ext\/clip-lens\/media\/panel.css">/);
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  const roots = panel.webview.options.localResourceRoots!.map((u) => u.fsPath);
  assert.deepEqual(roots, [path.resolve('/opt/ext/clip-lens/dist'), path.resolve('/opt/ext/clip-lens/media'), path.resolve(r.dataset.root)]);
  assert.equal(panel.webview.options.enableScripts, true);
  // A second call reuses the panel with a fresh report.
  assert.equal(ReportPanel.createOrShow(ext, actions(newCalls()), r), p);
  assert.equal(fake.created.filter((x) => !x.disposed).length, 1);
  // Another dataset gets its own panel; the first stays, and each is found by its root.
  const other = { ...r, dataset: { ...r.dataset, root: path.join(path.dirname(r.dataset.root), 'other-dataset') } };
  const q = ReportPanel.createOrShow(ext, actions(newCalls()), other);
  assert.notEqual(q, p);
  assert.equal(fake.created.filter((x) => !x.disposed).length, 2);
  assert.equal(ReportPanel.forRoot(r.dataset.root), p);
  assert.equal(ReportPanel.forRoot(other.dataset.root), q);
  assert.equal(lastPanel().title, 'CLIP Lens: other-dataset');
  q.dispose();
});

test('sends the report when the webview is ready, and again after it was hidden and shown', async () => {
  const r = await report();
  ReportPanel.createOrShow(ext, actions(newCalls(), { ignoredPaths: () => ['x.png'] }), r, { reportRef: '/reports/shapes.json' });
  assert.equal(posted().length, 0, 'nothing is posted before the webview listens');
  lastPanel().webview.receive({ type: 'ready' });
  await settle();
  const msg = posted()[0] as Extract<HostToPanel, { type: 'report' }>;
  assert.equal(msg.type, 'report');
  assert.equal(msg.reportRef, '/reports/shapes.json');
  assert.deepEqual(msg.ignoredPaths, ['x.png']);
  assert.equal(msg.report.samples!, undefined, 'the panel gets no samples array, at any size');
  assert.equal(msg.samples.count, r.samples!.length);
  assert.ok(msg.samples.known.length > 0 && msg.samples.known.length < r.samples!.length, 'only the samples its lists name');
  lastPanel().setVisible(false);
  ReportPanel.current!.reveal({ kind: 'class', class: 'yellow_star' });
  assert.equal(posted().length, 1, 'a hidden webview is not posted to');
  lastPanel().webview.receive({ type: 'ready' });
  await settle();
  assert.deepEqual(posted().slice(1).map((m) => m.type), ['report', 'reveal']);
});

test('a re-run of the same dataset and model sends the search shown again after its report (samples as they are now); another model does not', async () => {
  const r = await report();
  const p = ReportPanel.createOrShow(ext, actions(newCalls()), r);
  lastPanel().webview.receive({ type: 'ready' });
  await settle();
  const hits = r.samples!.slice(0, 3).map((s, i) => ({ path: s.path, score: 0.31 - i * 0.01 }));
  p.reveal({ kind: 'search', query: 'a photo of a red circle.', hits });
  const shown = posted().at(-1) as Extract<HostToPanel, { type: 'reveal' }>;
  assert.equal(shown.target.kind === 'search' && shown.target.refresh, undefined);
  // The re-run: the first image was moved since.
  const moved = { ...r, createdAt: new Date(Date.now() + 1000).toISOString(), samples: r.samples!.map((s, i) => (i === 0 ? { ...s, path: `elsewhere/${s.path}` } : s)) };
  const before = posted().length;
  p.update(moved);
  const sent = posted().slice(before);
  assert.deepEqual(sent.map((m) => m.type), ['report', 'reveal']);
  const target = (sent[1] as Extract<HostToPanel, { type: 'reveal' }>).target;
  assert.ok(target.kind === 'search');
  assert.equal(target.refresh, true);
  assert.equal(target.query, 'a photo of a red circle.');
  assert.deepEqual(target.hits.map((x) => [x.path, x.score, x.index]), hits.slice(1).map((x, i) => [x.path, x.score, i + 1]));
  assert.equal(target.hits[0]!.sample?.path, hits[1]!.path);
  // Another model's report: the scores are not its own, so the search is dropped (and stays dropped).
  const other = { ...moved, model: { ...moved.model, id: 'another-model' } };
  const n = posted().length;
  p.update(other);
  p.update(moved);
  assert.deepEqual(posted().slice(n).map((m) => m.type), ['report', 'report']);
});

test('toPanelReport drops content hashes, and probabilities only when too many', () => {
  const r = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as EvalReport;
  const first = r.labelIssues[0]!.index;
  r.samples![first]!.contentHash = 'ab'.repeat(32);
  const small = toPanelReport(r);
  assert.equal(small.probabilitiesStripped, false);
  assert.equal(small.samples.hasProbabilities, true);
  const known = small.samples.known.find((k) => k.index === first)!;
  assert.equal(known.sample.contentHash, undefined);
  assert.equal(known.sample.probabilities?.length, 16);
  assert.equal(r.samples![first]!.contentHash, 'ab'.repeat(32), 'the original is not modified');
  const page = querySamples(r, { source: { kind: 'issues' }, sort: 'labelScore', split: null }, 0, 5);
  assert.ok(page.rows.length > 0 && page.rows.every((x) => x.sample.contentHash === undefined && x.sample.probabilities?.length === 16));
  const big = toPanelReport(r, 1000);
  assert.equal(big.probabilitiesStripped, true);
  assert.equal(big.samples.hasProbabilities, false);
  assert.ok(big.samples.known.every((k) => k.sample.probabilities === undefined));
  assert.ok(querySamples(r, { source: { kind: 'issues' }, sort: 'labelScore', split: null }, 0, 5, true).rows.every((x) => x.sample.probabilities === undefined));
});

test('answers thumbnail requests only for samples of the report, inside the dataset root', async () => {
  const r = await report();
  const calls = newCalls();
  ReportPanel.createOrShow(ext, actions(calls), r);
  const w = lastPanel().webview;
  w.receive({ type: 'ready' });
  w.receive({ type: 'requestThumbnails', requestId: 7, paths: [r.samples![0].path, r.samples![1].path, '../../etc/passwd'] });
  await settle();
  await settle();
  const answer = posted().find((m) => m.type === 'thumbnails') as Extract<HostToPanel, { type: 'thumbnails' }>;
  assert.equal(answer.requestId, 7);
  const [ok, missing, outside] = answer.items;
  assert.ok('dataUri' in ok && ok.dataUri.startsWith('data:image/webp;base64,') && ok.width === 128 && ok.height === 85);
  assert.ok('error' in missing && /ENOENT/.test(missing.error));
  assert.deepEqual(outside, { path: '../../etc/passwd', error: 'not a sample of this report' });
  assert.ok(calls.logs.some((l) => l.includes('../../etc/passwd')));

  w.receive({ type: 'openImage', path: '/etc/passwd' });
  w.receive({ type: 'openImage', path: r.samples![0].path });
  await settle();
  assert.deepEqual(calls.opened, [path.join(r.dataset.root, r.samples![0].path)]);
});

test('applies fixes in the dataset\'s terms and reports failures back', async () => {
  const r = await report();
  const calls = newCalls();
  ReportPanel.createOrShow(ext, actions(calls), r);
  const w = lastPanel().webview;
  w.receive({ type: 'ready' });
  const issue = r.labelIssues[0];
  w.receive({ type: 'applyFix', requestId: 1, path: issue.path, toClass: issue.suggested });
  w.receive({ type: 'applyFix', requestId: 2, path: issue.path, toClass: 'purple_hexagon' });
  w.receive({ type: 'ignoreSample', requestId: 3, path: r.labelIssues[1].path });
  w.receive({ type: 'applyFix', requestId: 4, path: 'nope.png', toClass: issue.suggested });
  await settle();
  assert.deepEqual(calls.fixes, [{ kind: 'move-to-folder', path: issue.path, fromClass: issue.given, toClass: issue.suggested }]);
  assert.deepEqual(calls.ignored, [r.labelIssues[1].path]);
  const results = posted().filter((m) => m.type === 'actionResult') as Array<Extract<HostToPanel, { type: 'actionResult' }>>;
  const byId = new Map(results.map((m) => [m.requestId, m]));
  assert.deepEqual(byId.get(1), { type: 'actionResult', requestId: 1, ok: true, message: `Moved to ${issue.suggested}/` });
  assert.equal(byId.get(2)!.ok, false);
  assert.match(byId.get(2)!.message!, /not a class/);
  assert.deepEqual(byId.get(3), { type: 'actionResult', requestId: 3, ok: true });
  assert.equal(byId.get(4)!.ok, false);
});

test('label-file datasets change the label line; label lines and problem files open at their line', async () => {
  const r = await report();
  r.dataset.format = 'label-file';
  r.dataset.labelFile = path.join(r.dataset.root, 'labels.csv');
  const s = r.samples![3];
  s.source = { file: 'labels.csv', line: 12 };
  assert.deepEqual(buildFix(r, s, 'red_star'), { kind: 'change-label', path: s.path, file: 'labels.csv', line: 12, fromClass: s.label, toClass: 'red_star' });
  assert.equal(buildFix(r, { ...s, source: undefined }, 'red_star'), null);
  assert.equal(buildFix({ ...r, dataset: { ...r.dataset, format: 'class-folders' } }, s, 'red_star')?.kind, 'move-to-folder');

  const calls = newCalls();
  ReportPanel.createOrShow(ext, actions(calls), r);
  const w = lastPanel().webview;
  w.receive({ type: 'ready' });
  w.receive({ type: 'openLabelLine', path: s.path });
  w.receive({ type: 'openLabelLine', path: r.samples![4].path }); // no source: refused
  const problem = r.errors.findIndex((e) => e.file);
  w.receive({ type: 'openProblem', index: problem });
  w.receive({ type: 'openProblem', index: 999 });
  await settle();
  assert.deepEqual(calls.lines, [
    [path.join(r.dataset.root, 'labels.csv'), 12],
    [path.join(r.dataset.root, r.errors[problem].file!), r.errors[problem].line ?? 1],
  ]);
  assert.ok(calls.logs.some((l) => l.includes('has none')));
  assert.ok(calls.logs.some((l) => l.includes('problem #999')));
});

test('exports: builds the content from the report and hands it to saveExport', async () => {
  const r = await report();
  const calls = newCalls();
  ReportPanel.createOrShow(ext, actions(calls), r);
  const w = lastPanel().webview;
  w.receive({ type: 'ready' });
  const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer();
  const pngUrl = `data:image/png;base64,${png.toString('base64')}`;
  w.receive({ type: 'export', requestId: 1, request: { format: 'csv' } });
  w.receive({ type: 'export', requestId: 2, request: { format: 'png', png: pngUrl } });
  w.receive({ type: 'export', requestId: 3, request: { format: 'png', png: 'data:image/png;base64,AAAA' } });
  w.receive({ type: 'export', requestId: 4, request: { format: 'html', matrixPng: pngUrl } });
  await settle();
  assert.deepEqual(calls.saved.map((f) => [f.format, f.fileName]), [
    ['csv', 'shapes-per-class.csv'],
    ['png', 'shapes-confusion-matrix.png'],
    ['html', 'shapes-report.html'],
  ]);
  assert.deepEqual(Buffer.from(calls.saved[1].content as Uint8Array), png);
  assert.ok((calls.saved[2].content as string).includes(pngUrl));
  assert.equal(calls.saved[0].defaultDir.fsPath, path.resolve(r.dataset.root));
  const results = posted().filter((m) => m.type === 'actionResult') as Array<Extract<HostToPanel, { type: 'actionResult' }>>;
  assert.deepEqual(results.find((m) => m.requestId === 1), { type: 'actionResult', requestId: 1, ok: true, message: 'Saved shapes-per-class.csv' });
  assert.match(results.find((m) => m.requestId === 3)!.message!, /Export failed: not a PNG image/);
  assert.throws(() => decodePngDataUrl('data:text/html;base64,PGI+'), /not a PNG data URL/);
});

test('saveExportWithDialog writes where the user chose, and nothing when cancelled', async () => {
  const target = path.join(tmp, 'out.csv');
  fake.setNextSaveTarget(fake.Uri.file(target));
  const file = { format: 'csv' as const, fileName: 'x.csv', content: 'a,b\r\n', defaultDir: fake.Uri.file(tmp) as unknown as vscodeTypes.Uri };
  const saved = await saveExportWithDialog(file);
  assert.equal(saved?.fsPath, target);
  assert.equal(fs.readFileSync(target, 'utf8'), 'a,b\r\n');
  fake.setNextSaveTarget(undefined);
  assert.equal(await saveExportWithDialog({ ...file, fileName: 'y.csv' }), undefined);
  assert.equal(fs.existsSync(path.join(tmp, 'y.csv')), false);
});

test('the serializer restores the panel with the report named in the saved state', async () => {
  const r = await report();
  const loaded: string[] = [];
  const d = ReportPanel.registerSerializer(ext, actions(newCalls(), { loadReport: async (ref) => (loaded.push(ref), ref === 'good' ? r : undefined) }));
  const serializer = fake.serializers.get(REPORT_PANEL_VIEW_TYPE)!;
  const restored = new fake.FakeWebviewPanel(REPORT_PANEL_VIEW_TYPE, 'old', {}, {});
  await serializer.deserializeWebviewPanel(restored, { version: 1, reportRef: 'good', tab: 'issues' });
  assert.ok(restored.webview.html.includes('Content-Security-Policy'));
  assert.equal(restored.webview.options.localResourceRoots!.length, 3);
  restored.webview.receive({ type: 'ready' });
  await settle();
  assert.equal((restored.webview.posted[0] as HostToPanel).type, 'report');
  assert.equal(restored.title, 'CLIP Lens: shapes');

  const gone = new fake.FakeWebviewPanel(REPORT_PANEL_VIEW_TYPE, 'old', {}, {});
  await serializer.deserializeWebviewPanel(gone, { version: 1, reportRef: 'deleted.json' });
  gone.webview.receive({ type: 'ready' });
  await settle();
  const empty = gone.webview.posted[0] as Extract<HostToPanel, { type: 'empty' }>;
  assert.equal(empty.type, 'empty');
  assert.match(empty.message, /deleted\.json is no longer available/);
  assert.deepEqual(loaded, ['good', 'deleted.json']);
  assert.ok(!restored.disposed, 'one panel per dataset: restoring another panel does not close this one');
  restored.dispose();
  gone.dispose();
  d.dispose();
});

test('malformed messages are rejected', () => {
  assert.equal(parsePanelMessage(null), null);
  assert.equal(parsePanelMessage({ type: 'nope' }), null);
  assert.equal(parsePanelMessage({ type: 'requestThumbnails', requestId: 1, paths: [1] }), null);
  assert.equal(parsePanelMessage({ type: 'applyFix', requestId: '1', path: 'a', toClass: 'b' }), null);
  assert.equal(parsePanelMessage({ type: 'export', requestId: 1, request: { format: 'exe' } }), null);
  assert.equal(parsePanelMessage({ type: 'openProblem', index: 1.5 }), null);
  assert.deepEqual(parsePanelMessage({ type: 'ready', extra: true }), { type: 'ready' });
  assert.deepEqual(parsePanelMessage({ type: 'openImage', path: 'a.png' }), { type: 'openImage', path: 'a.png' });
});
