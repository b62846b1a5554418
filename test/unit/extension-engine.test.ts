/**
 * The extension's glue end to end in plain Node: activate (from source) against the fake 'vscode', evaluate small
 * generated datasets with the fixture model (CLIP_LENS_MODEL), and check what the user would see and what the fixes
 * do to the files. The real-VS-Code suite is test/integration (not run by npm test).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import type { EvalReport } from '../../src/core/report';
import { COMMANDS } from '../../src/extension/commandIds';
import { activateExtension, closeExtension, createFakeVscode, type FakeState } from './extension-fakeVscode';

const root = path.join(__dirname, '..', '..');
const MODEL = process.env.CLIP_LENS_TEST_MODEL ?? path.join(root, 'test', 'fixtures', 'tiny-clip');
const haveModel = fs.existsSync(path.join(MODEL, 'onnx', 'vision_model.onnx'));

/** Classes of the fixture model's own domain (coloured shapes), so its predictions mean something. */
const SHAPES: Record<string, { colour: string; shape: 'circle' | 'square' | 'triangle' }> = {
  blue_square: { colour: '#2040d8', shape: 'square' },
  green_triangle: { colour: '#20b030', shape: 'triangle' },
  red_circle: { colour: '#d82020', shape: 'circle' },
};
const CLASSES = Object.keys(SHAPES);

/** A 96 px PNG of a shape on a light background; `variant` shifts its size and place a little. */
async function png(file: string, cls: string, variant: number): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const { colour, shape } = SHAPES[cls];
  const r = 26 + (variant % 4) * 3;
  const c = 48 + ((variant * 5) % 9) - 4;
  const body =
    shape === 'circle'
      ? `<circle cx="${c}" cy="${c}" r="${r}" fill="${colour}"/>`
      : shape === 'square'
        ? `<rect x="${c - r}" y="${c - r}" width="${2 * r}" height="${2 * r}" fill="${colour}"/>`
        : `<polygon points="${c},${c - r} ${c + r},${c + r} ${c - r},${c + r}" fill="${colour}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="#e8e4dc"/>${body}</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}

let work: string;
let state: FakeState;
let api: { evaluate(target: string): Promise<EvalReport | undefined>; reports(): EvalReport[]; loadedModels(): string[] };
let uninstall: () => void;
let deactivate: () => Promise<void>;
let run: <T>(id: string, ...args: unknown[]) => Promise<T>;
let fakeVscode: ReturnType<typeof createFakeVscode>['vscode'];
let fake: ReturnType<typeof createFakeVscode>;

before(async () => {
  assert.ok(haveModel, `fixture model missing: ${MODEL} (made by tools/make-fixture-model.py; CLIP_LENS_TEST_MODEL names another)`);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-engine-'));
  process.env.CLIP_LENS_MODEL = MODEL;
  process.env.CLIP_LENS_CACHE = path.join(work, 'cache');
  // A class-folder dataset (one image in the wrong folder) and a label-file dataset over the same kind of images.
  for (const cls of CLASSES) for (let i = 0; i < 4; i++) await png(path.join(work, 'folders', cls, `${cls}${i}.png`), cls, i);
  await png(path.join(work, 'folders', 'red_circle', 'actually-blue.png'), 'blue_square', 4);
  const lines = ['file_name,label'];
  for (const cls of CLASSES) {
    for (let i = 0; i < 4; i++) {
      await png(path.join(work, 'labelled', 'img', `${cls}${i}.png`), cls, i);
      lines.push(`img/${cls}${i}.png,${cls}`);
    }
  }
  await png(path.join(work, 'labelled', 'img', 'odd.png'), 'green_triangle', 4);
  lines.push('img/odd.png,"red_circle"', 'img/missing.png,red_circle', 'broken line without a label');
  fs.writeFileSync(path.join(work, 'labelled', 'labels.csv'), lines.join('\n') + '\n');

  ({ fake, state, api, deactivate, uninstall } = activateExtension(root, work, { 'clipLens.releaseModelAfterMinutes': 0 }));
  fakeVscode = fake.vscode;
  run = async <T>(id: string, ...args: unknown[]) => (await state.commands.get(id)!(...args)) as T;
});

after(() => closeExtension(deactivate, uninstall, work));


function diagnostics(collection: string, file: string) {
  return state.diagnostics.get(collection)?.get(path.resolve(file)) ?? [];
}

async function until(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('class folders: evaluate, diagnostics on each flagged image, status bar, saved report, incremental re-run, idle release', async () => {
  const dataset = path.join(work, 'folders');
  const report = await api.evaluate(dataset);
  assert.ok(report, `evaluated (messages: ${JSON.stringify(state.messages)})`);
  assert.deepEqual(report.dataset.classes, CLASSES);
  assert.equal(report.dataset.counts.samples, 13);
  assert.equal(report.model.id, MODEL, 'the model of CLIP_LENS_MODEL');
  assert.equal(report.timing.imagesComputed, 13);
  await until('label-issue diagnostics', () => report.labelIssues.every((i) => diagnostics('clipLens.labelIssues', path.join(dataset, i.path!)).length === 1));
  const published = [...state.diagnostics.get('clipLens.labelIssues')!.entries()].filter(([, d]) => d.length > 0);
  assert.equal(published.length, report.labelIssues.length, 'one diagnostic per likely label error, nothing else');
  for (const [, [d]] of published) {
    assert.equal(d.source, 'CLIP Lens');
    assert.match(d.message, /^CLIP predicts '\w+' \(>?[\d.]+\) but the image is in the folder '\w+' \(<?[\d.]+\)$/);
  }
  const status = state.statusItems[0];
  assert.ok(status.visible);
  assert.match(status.text, /^\$\(eye\) CLIP \d+(\.\d)?% · worst \w+ \d+(\.\d)?%$/);
  assert.equal(state.context.get('clipLens.hasResults'), true);
  await until('idle release', () => api.loadedModels().length === 0);
  const indexFile = path.join(work, 'storage', 'reports', 'index.json');
  await until('the saved index', () => fs.existsSync(indexFile));
  const saved = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { root: string; file: string }[];
  assert.deepEqual(saved.map((s) => s.root), [dataset]);
  assert.equal(JSON.parse(fs.readFileSync(saved[0].file, 'utf8')).createdAt, report.createdAt);

  const again = await api.evaluate(dataset);
  assert.equal(again?.timing.imagesFromCache, 13, 'the re-run is served from the embedding cache');
  assert.equal(again?.timing.imagesComputed, 0);
});

test('Search Images: ranks the evaluated images with the cached embeddings (none inferred again); a dataset not evaluated yet is evaluated first', async () => {
  const dataset = path.join(work, 'folders');
  await api.evaluate(dataset);
  const before = state.logs.length;
  const n = await run<number | undefined>(COMMANDS.searchImages, fakeVscode.Uri.file(dataset), 'a red circle');
  assert.equal(n, 13, 'every image ranked');
  const line = state.logs.slice(before).find((l) => /searched for "a red circle"/.test(l));
  assert.ok(line, state.logs.slice(before).join('\n'));
  assert.match(line, /13 results, 0 images inferred, 13 from the cache/);
  // An empty query does nothing.
  assert.equal(await run(COMMANDS.searchImages, fakeVscode.Uri.file(dataset), '  '), undefined);
  // The search's model lease is given back (and, with releaseModelAfterMinutes 0, the model released).
  await until('idle release', () => api.loadedModels().length === 0);
});

test('a second request for a dataset being evaluated is refused with a message, never run twice', async () => {
  const dataset = path.join(work, 'folders');
  // Both requests resolve the dataset root first (file system calls), so either may reach the runner first: exactly
  // one runs, the other is refused (the order depends on the machine's load: asserting 'the first one runs' flaked).
  const results = await Promise.all([api.evaluate(dataset), api.evaluate(dataset)]);
  assert.equal(results.filter((r) => r !== undefined).length, 1, JSON.stringify(state.messages.slice(-3)) + state.logs.slice(-5).join('\n'));
  assert.ok(state.messages.some((m) => m.text === "CLIP Lens is already evaluating 'folders'."));
});

test('moving an image to another class folder: a rename, refused when the target exists; the explorer command moves to the suggestion', async (t) => {
  const dataset = path.join(work, 'folders');
  const source = 'red_circle/actually-blue.png';
  state.quickPick = () => undefined;
  assert.equal(await run<string | undefined>(COMMANDS.applyFixChooseClass, dataset, source), undefined, 'dismissed: nothing happens');
  assert.ok(fs.existsSync(path.join(dataset, source)));
  state.quickPick = (items) => items.find((i) => i.label === 'blue_square');
  fs.copyFileSync(path.join(dataset, 'blue_square', 'blue_square0.png'), path.join(dataset, 'blue_square', 'actually-blue.png'));
  assert.equal(await run<string | undefined>(COMMANDS.applyFixChooseClass, dataset, source), undefined);
  assert.ok(state.messages.some((m) => m.level === 'error' && m.text.includes('blue_square/actually-blue.png already exists')));
  assert.ok(fs.existsSync(path.join(dataset, source)), 'refused: nothing moved');
  fs.rmSync(path.join(dataset, 'blue_square', 'actually-blue.png'));
  state.messages.length = 0;
  assert.equal(await run<string | undefined>(COMMANDS.applyFixChooseClass, dataset, source), "Moved actually-blue.png to 'blue_square'");
  assert.ok(!fs.existsSync(path.join(dataset, source)));
  assert.ok(fs.existsSync(path.join(dataset, 'blue_square', 'actually-blue.png')));
  // The move is announced with an Undo button, and Undo Last Fix (Ctrl+Z in our views) moves it back.
  assert.ok(state.messages.some((m) => m.level === 'info' && m.text === "CLIP Lens: Moved actually-blue.png to 'blue_square'"), JSON.stringify(state.messages));
  assert.equal(state.context.get('clipLens.canUndoFix'), true);
  assert.equal(await run<string | undefined>(COMMANDS.undoLastFix), "Moved actually-blue.png back to 'red_circle'");
  assert.ok(fs.existsSync(path.join(dataset, source)), 'undo: the image is back');
  assert.ok(!fs.existsSync(path.join(dataset, 'blue_square', 'actually-blue.png')));
  assert.equal(state.context.get('clipLens.canUndoFix'), false);
  assert.equal(await run<string | undefined>(COMMANDS.undoLastFix), undefined, 'nothing left to undo');
  assert.ok(state.messages.some((m) => m.text === 'CLIP Lens: there is no CLIP Lens fix to undo'));
  // Redo it by pressing the notification's Undo afterwards: the toast's button undoes that very step.
  state.answers.push({ prefix: "CLIP Lens: Moved actually-blue.png to 'blue_square'", answer: 'Undo' });
  assert.equal(await run<string | undefined>(COMMANDS.applyFixChooseClass, dataset, source), "Moved actually-blue.png to 'blue_square'");
  await until('the toast Undo to move it back', () => fs.existsSync(path.join(dataset, source)));
  state.answers.pop();
  assert.equal(await run<string | undefined>(COMMANDS.applyFixChooseClass, dataset, source), "Moved actually-blue.png to 'blue_square'");
  await until('its diagnostic to go', () => diagnostics('clipLens.labelIssues', path.join(dataset, source)).length === 0);
  state.quickPick = undefined;

  const report = api.reports().find((r) => r.dataset.root === dataset)!;
  const other = report.labelIssues.find((i) => i.path !== source);
  t.diagnostic(`${report.labelIssues.length} likely label errors`);
  const movable = state.context.get('clipLens.movableImages') as string[];
  assert.equal(movable.length, report.labelIssues.filter((i) => i.path !== source).length, 'the moved image is no longer offered');
  if (other) {
    const uri = fakeVscode.Uri.file(path.join(dataset, other.path!));
    assert.equal(await run<string | undefined>(COMMANDS.moveToSuggestedClass, uri, [uri]), `Moved ${path.basename(other.path!)} to '${other.suggested}'`);
    assert.ok(fs.existsSync(path.join(dataset, other.suggested, path.basename(other.path!))));
  }
});

test('label file: diagnostics on the label field, dataset problems on their lines, ignore, gate on the config', async (t) => {
  const dataset = path.join(work, 'labelled');
  const csv = path.join(dataset, 'labels.csv');
  fs.writeFileSync(path.join(dataset, '.clip-lens.json'), '{\n  "gate": {\n    "classes": { "purple": { "minRecall": 0.5 } }\n  }\n}\n');
  const report = await run<EvalReport | undefined>(COMMANDS.evaluateLabelFile, csv);
  assert.ok(report, JSON.stringify(state.messages));
  assert.equal(report.dataset.format, 'label-file');
  const text = fs.readFileSync(csv, 'utf8');
  const lines = text.split('\n');
  await until('dataset problems', () => diagnostics('clipLens.dataset', csv).length >= 2);
  const problems = diagnostics('clipLens.dataset', csv);
  const missing = problems.find((d) => (d.code as { value: string }).value === 'image-missing');
  assert.equal(missing?.range.start.line, lines.indexOf('img/missing.png,red_circle'));
  const bad = problems.find((d) => (d.code as { value: string }).value === 'label-file-bad-line');
  assert.equal(bad?.range.start.line, lines.indexOf('broken line without a label'));
  // The gate names a class the dataset does not have: a failed config check on that key.
  await until('gate diagnostics', () => diagnostics('clipLens.config', path.join(dataset, '.clip-lens.json')).length === 1);
  const [gateDiag] = diagnostics('clipLens.config', path.join(dataset, '.clip-lens.json'));
  assert.equal(gateDiag.range.start.line, 2);
  assert.match(gateDiag.message, /purple/);
  assert.match(state.statusItems[0].text, /\$\(error\) gate 1\/1/);

  const issues = report.labelIssues;
  t.diagnostic(`${issues.length} likely label errors`);
  await until('label issues', () => diagnostics('clipLens.labelIssues', csv).length === issues.length);
  for (const d of diagnostics('clipLens.labelIssues', csv)) {
    const line = lines[d.range.start.line];
    const label = line.slice(d.range.start.character, d.range.end.character);
    assert.ok(/^"?\w+"?$/.test(label) && report.dataset.classes.includes(label.replace(/"/g, '')), `the range covers the label: ${label}`);
  }
  const ignored = await run<string | undefined>(COMMANDS.ignoreSample, dataset, 'img/red_circle0.png');
  assert.equal(ignored, 'Ignored (added to .clip-lens.json)');
  // The edit is in the (unsaved) document of .clip-lens.json, as in the editor.
  const configDoc = state.documents.find((d) => d.uri.fsPath === path.join(dataset, '.clip-lens.json'));
  assert.ok(configDoc?.isDirty);
  const config = JSON.parse(configDoc.getText()) as { ignore?: string[]; gate?: unknown };
  assert.deepEqual(config.ignore, ['img/red_circle0.png']);
  assert.ok(config.gate, 'the rest of the config is kept');
});

test('in the label file: quick fixes computed on the current text, the fix command, and a hover with the thumbnail and the top-K', async () => {
  const dataset = path.join(work, 'labelled');
  const csv = path.join(dataset, 'labels.csv');
  const doc = await fakeVscode.workspace.openTextDocument(csv);
  const diags = diagnostics('clipLens.labelIssues', csv);
  assert.ok(diags.length > 0, 'the evaluation flagged at least one label (img/odd.png is a green triangle labelled red_circle)');
  const d = diags[0];
  const [provider] = state.codeActionProviders;
  const actions = provider.provideCodeActions(doc, d.range, { diagnostics: [d] }) as { title: string; edit?: { ops: { kind: string; range: { start: { line: number; character: number } }; text: string }[] } }[];
  const titles = actions.map((a) => a.title);
  const change = actions.find((a) => a.title.startsWith('Change label to \''));
  assert.ok(change, titles.join(' | '));
  assert.ok(titles.includes('Change label to another class…'));
  assert.ok(titles.some((t) => t.startsWith('Open image ')));
  assert.ok(titles.includes('Ignore this sample (add it to .clip-lens.json)'));
  assert.equal(change.edit, undefined, 'the edit is computed when the fix is chosen');
  await provider.resolveCodeAction!(change);
  const [op] = change.edit!.ops;
  const suggested = /'(.+)'/.exec(change.title)![1];
  assert.equal(op.text.replace(/"/g, ''), suggested);
  assert.deepEqual(op.range.start, d.range.start, 'the edit replaces the label the diagnostic is on');

  // The command the Label Issues view runs: the same edit, applied, and the diagnostic goes.
  const report = api.reports().find((r) => r.dataset.root === dataset)!;
  const first = report.labelIssues[0];
  const lines = doc.getText().split('\n');
  const message = await run<string | undefined>(COMMANDS.applyFix, dataset, first.path);
  assert.match(message ?? '', new RegExp(`^Label changed to '${first.suggested}'`));
  const changed = doc.getText().split('\n');
  const lineNo = lines.findIndex((l) => l.startsWith(`${first.path},`));
  assert.equal(changed[lineNo], `${first.path},${lines[lineNo].endsWith('"') ? `"${first.suggested}"` : first.suggested}`);
  assert.equal(changed.filter((l, i) => l !== lines[i]).length, 1, 'one line changed');
  await until('the fixed diagnostic to go', () => diagnostics('clipLens.labelIssues', csv).length === diags.length - 1);

  const [hover] = state.hoverProviders;
  const hoverLine = doc.getText().split('\n').indexOf('img/blue_square0.png,blue_square');
  const token = { isCancellationRequested: false };
  const h = (await hover.provideHover(doc, new fakeVscode.Position(hoverLine, 3), token)) as { contents: { value: string }; range: { start: { character: number }; end: { character: number } } };
  assert.ok(h, 'a hover on the image path');
  assert.match(h.contents.value, /!\[blue\\_square0\\\.png\]\(data:image\/webp;base64,[A-Za-z0-9+/=]+\)/);
  assert.match(h.contents.value, /\| # \| CLIP top-3 \| p \|/);
  assert.match(h.contents.value, /label \*\*blue\\_square\*\*/);
  assert.deepEqual([h.range.start.character, h.range.end.character], [0, 'img/blue_square0.png'.length]);
  assert.equal(await hover.provideHover(doc, new fakeVscode.Position(0, 2), token), undefined, 'no hover on the header');

  const fresh = path.join(work, 'fresh');
  await png(path.join(fresh, 'a.png'), 'red_circle', 0);
  fs.writeFileSync(path.join(fresh, 'list.csv'), 'image,label\na.png,red_circle\n');
  const freshDoc = await fakeVscode.workspace.openTextDocument(path.join(fresh, 'list.csv'));
  const h2 = (await hover.provideHover(freshDoc, new fakeVscode.Position(1, 1), token)) as { contents: { value: string } };
  assert.match(h2.contents.value, /data:image\/webp;base64,/);
  assert.match(h2.contents.value, /Not evaluated yet/);
});

test('saving the label file re-runs the dataset (autoRerun onSave); with autoRerun off it is only marked out of date', async () => {
  const dataset = path.join(work, 'labelled');
  const csv = path.join(dataset, 'labels.csv');
  const doc = await fakeVscode.workspace.openTextDocument(csv);
  const before = api.reports().find((r) => r.dataset.root === dataset)!.createdAt;
  await new Promise((r) => setTimeout(r, 5));
  fake.docEvents.save.fire(doc);
  await until('the automatic re-run', () => api.reports().find((r) => r.dataset.root === dataset)!.createdAt !== before);
  assert.ok(!state.statusItems[0].text.endsWith('$(history)'));

  fake.setSetting('clipLens.autoRerun', 'off');
  const current = api.reports().find((r) => r.dataset.root === dataset)!.createdAt;
  fake.docEvents.save.fire(doc);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(api.reports().find((r) => r.dataset.root === dataset)!.createdAt, current, 'no re-run');
  assert.ok(state.statusItems[0].text.endsWith('$(history)'), state.statusItems[0].text);
  fake.setSetting('clipLens.autoRerun', 'onSave');
});

test('an invalid .clip-lens.json holds automatic re-runs quietly (no fallback, no prompt) and stops a user run at its line', async () => {
  const dataset = path.join(work, 'labelled');
  const configFile = path.join(dataset, '.clip-lens.json');
  const saved = fs.readFileSync(configFile, 'utf8');
  const before = api.reports().find((r) => r.dataset.root === dataset)!.createdAt;
  state.messages.length = 0;
  // Half-typed (auto-save while typing): a syntax error on line 2.
  fs.writeFileSync(configFile, '{\n  "topK": 3,,\n');
  const doc = await fakeVscode.workspace.openTextDocument(configFile);
  doc.setText(fs.readFileSync(configFile, 'utf8'));
  fake.docEvents.change.fire({ document: doc, contentChanges: [{}] });
  fake.docEvents.save.fire(doc);
  await until('the held re-run', () => state.messages.some((m) => m.level === 'status' && /re-run waits until it is fixed/.test(m.text)));
  assert.equal(api.reports().find((r) => r.dataset.root === dataset)!.createdAt, before, 'no re-run with the defaults');
  assert.deepEqual(state.messages.filter((m) => m.level !== 'status'), [], 'no toast, no download prompt');
  await until('the syntax error on its line', () => diagnostics('clipLens.config', configFile).some((d) => d.range.start.line === 1));
  // The file watcher sees the write too: no "Evaluate it again?" offer for a config that cannot be used.
  doc.isDirty = true;
  state.watchers.find((w) => w.base === dataset && !w.disposed)!.fire('change', fakeVscode.Uri.file(configFile));
  await new Promise((r) => setTimeout(r, 2300));
  assert.ok(!state.messages.some((m) => m.text.startsWith('.clip-lens.json changed')), 'no re-run offered');
  doc.isDirty = false;

  // Asked for by the user: an error naming the file and line, before any model is touched.
  assert.equal(await api.evaluate(dataset), undefined);
  const err = state.messages.find((m) => m.level === 'error');
  assert.match(err?.text ?? '', /^CLIP Lens: .*\.clip-lens\.json:2:\d+: invalid JSON/);

  // A model folder that is not there: an error on the "model" key, and the run stops there too.
  state.messages.length = 0;
  const text = '{\n  "model": "./no-such-model"\n}\n';
  fs.writeFileSync(configFile, text);
  doc.setText(text);
  fake.docEvents.change.fire({ document: doc, contentChanges: [{}] });
  await until('the model diagnostic', () => diagnostics('clipLens.config', configFile).some((d) => (d.code as { value: string }).value === 'model-missing' && d.range.start.line === 1));
  delete process.env.CLIP_LENS_MODEL; // the environment variable would win over the config's "model"
  try {
    assert.equal(await api.evaluate(dataset), undefined);
  } finally {
    process.env.CLIP_LENS_MODEL = MODEL;
  }
  const modelError = state.messages.find((m) => m.level === 'error')?.text ?? '';
  assert.match(modelError, /\.clip-lens\.json:2: "model": no model folder at .*no-such-model/);
  assert.ok(!state.messages.some((m) => /Download/.test(m.text)), 'no download offered');

  fs.writeFileSync(configFile, saved);
  doc.setText(saved);
  fake.docEvents.change.fire({ document: doc, contentChanges: [{}] });
});

test('images added on disk: a re-run is offered (onSave) or run (onChange); nothing is offered for an unrelated file', async () => {
  const dataset = path.join(work, 'folders');
  const watcher = state.watchers.find((w) => w.base === dataset && !w.disposed);
  assert.ok(watcher, 'the evaluated dataset is watched');
  const reportOf = () => api.reports().find((r) => r.dataset.root === dataset)!;
  const before = reportOf();
  const offers = () => state.messages.filter((m) => m.text.startsWith("Images were added, removed or changed in 'folders'")).length;

  watcher.fire('create', fakeVscode.Uri.file(path.join(dataset, 'notes.txt')));
  await new Promise((r) => setTimeout(r, 2300));
  assert.equal(offers(), 0, 'not an image: no offer');

  state.answers.push({ prefix: 'Images were added', answer: 'Re-run' });
  const added = path.join(dataset, 'green_triangle', 'new1.png');
  await png(added, 'green_triangle', 7);
  watcher.fire('create', fakeVscode.Uri.file(added));
  await until('the offer and the re-run', () => offers() === 1 && reportOf().createdAt !== before.createdAt, 15_000);
  assert.equal(reportOf().dataset.counts.samples, before.dataset.counts.samples + 1);
  assert.equal(reportOf().timing.imagesComputed, 1, 'incremental: only the new image is inferred');

  fake.setSetting('clipLens.autoRerun', 'onChange');
  const second = reportOf();
  const added2 = path.join(dataset, 'green_triangle', 'new2.png');
  await png(added2, 'green_triangle', 8);
  watcher.fire('create', fakeVscode.Uri.file(added2));
  await until('the automatic re-run', () => reportOf().createdAt !== second.createdAt, 15_000);
  assert.equal(offers(), 1, 'no offer in onChange mode');
  assert.equal(reportOf().dataset.counts.samples, second.dataset.counts.samples + 1);
  fake.setSetting('clipLens.autoRerun', 'onSave');
});

test('Evaluate Dataset on something that is not a dataset explains why', async () => {
  fs.writeFileSync(path.join(work, 'notes.txt'), 'x');
  const r = await run<EvalReport | undefined>(COMMANDS.evaluateDataset, path.join(work, 'notes.txt'));
  assert.equal(r, undefined);
  assert.ok(state.messages.some((m) => m.level === 'error' && /notes\.txt is not a dataset folder/.test(m.text)));
});

test('prompt-fails: the config offers "Add a prompt for X", the command adds a prompts entry (creating .clip-lens.json)', async () => {
  const dataset = path.join(work, 'folders');
  let report = api.reports().find((r) => r.dataset.root === dataset);
  if (!report) report = await api.evaluate(dataset);
  assert.ok(report?.predictor, 'the report says which predictor found the label issues');
  const configFile = path.join(dataset, '.clip-lens.json');
  fs.rmSync(configFile, { force: true });
  const message = await run<string | undefined>(COMMANDS.addPrompt, dataset, 'red_circle');
  assert.equal(message, "Added a prompt for 'red_circle' to .clip-lens.json: type a better one and re-run");
  assert.deepEqual(JSON.parse(fs.readFileSync(configFile, 'utf8')), { prompts: { red_circle: 'red circle' } });
  assert.equal(await run<string | undefined>(COMMANDS.addPrompt, dataset, 'red_circle'), "'red_circle' already has a prompt in .clip-lens.json");
  assert.equal(await run<string | undefined>(COMMANDS.addPrompt, dataset, 'purple'), undefined);

  // The quick fix in .clip-lens.json, for each class with a prompt-fails warning in the report.
  report.warnings.push({ kind: 'prompt-fails', severity: 'warning', class: 'green_triangle', message: 'm', numbers: {} });
  const doc = await fakeVscode.workspace.openTextDocument(configFile);
  const [provider] = state.codeActionProviders;
  const actions = provider.provideCodeActions(doc, { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, { diagnostics: [] }) as { title: string; command?: { command: string; arguments: unknown[] } }[];
  const fix = actions.find((a) => a.title.startsWith("Add a prompt for 'green_triangle'"));
  assert.ok(fix, actions.map((a) => a.title).join(' | '));
  assert.deepEqual(fix.command?.arguments, [dataset, 'green_triangle']);
  report.warnings.pop();
});

test('a label whose class was merged into another with the same prompt: a diagnostic on its line with "Change label to" that fixes the case', async () => {
  const dataset = path.join(work, 'collide');
  const lines = ['image,label'];
  for (const cls of CLASSES) {
    for (let i = 0; i < 3; i++) {
      await png(path.join(dataset, `${cls}${i}.png`), cls, i);
      lines.push(`${cls}${i}.png,${cls === 'red_circle' && i === 0 ? 'RED_CIRCLE' : cls}`);
    }
  }
  const csv = path.join(dataset, 'labels.csv');
  fs.writeFileSync(csv, lines.join('\n') + '\n');
  const report = await run<EvalReport | undefined>(COMMANDS.evaluateDataset, dataset);
  assert.ok(report);
  assert.deepEqual(report.dataset.classes, CLASSES);
  assert.ok(report.warnings.some((w) => w.kind === 'class-collision' && w.class === 'red_circle'));
  await until('the collision diagnostic', () => diagnostics('clipLens.dataset', csv).some((d) => (d.code as { value: string }).value === 'class-name-collision'));
  const d = diagnostics('clipLens.dataset', csv).find((x) => (x.code as { value: string }).value === 'class-name-collision')!;
  const lineNo = lines.findIndex((l) => l.endsWith(',RED_CIRCLE'));
  assert.equal(d.range.start.line, lineNo);
  const doc = await fakeVscode.workspace.openTextDocument(csv);
  const [provider] = state.codeActionProviders;
  const actions = provider.provideCodeActions(doc, d.range, { diagnostics: [d] }) as { title: string; edit?: { ops: { range: { start: { line: number; character: number } }; text: string }[] } }[];
  const change = actions.find((a) => a.title === "Change label to 'red_circle'");
  assert.ok(change, actions.map((a) => a.title).join(' | '));
  const [op] = change.edit!.ops;
  assert.equal(op.text, 'red_circle');
  assert.deepEqual({ ...op.range.start }, { line: lineNo, character: lines[lineNo]!.indexOf(',') + 1 });
});

test('the ratchet in the gate state: a missing baseline fails and says how to make it; Update Baseline writes it and the gate passes', async (t) => {
  const dataset = path.join(work, 'ratchet');
  for (const cls of CLASSES) for (let i = 0; i < 3; i++) await png(path.join(dataset, cls, `${cls}${i}.png`), cls, i + 7);
  t.after(() => fs.rmSync(dataset, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dataset, '.clip-lens.json'), '{\n  "gate": {\n    "baseline": "gate/base.json",\n    "maxDrop": { "recall": 0.1 }\n  }\n}\n');
  const report = await run<EvalReport | undefined>(COMMANDS.evaluateDataset, dataset);
  assert.ok(report, JSON.stringify(state.messages));
  await until('gate diagnostics', () => diagnostics('clipLens.config', path.join(dataset, '.clip-lens.json')).length === 1);
  const [d] = diagnostics('clipLens.config', path.join(dataset, '.clip-lens.json'));
  assert.equal(d.range.start.line, 2, 'on gate.baseline');
  assert.match(d.message, /gate\/base\.json: no such baseline file: write it with clip-lens baseline/);
  assert.match(state.statusItems[0].text, /\$\(error\) gate 1\/1/);

  const written = await run<string | undefined>(COMMANDS.updateBaseline, dataset);
  assert.equal(written, path.join(dataset, 'gate', 'base.json'));
  const baseline = JSON.parse(fs.readFileSync(written, 'utf8'));
  assert.equal(baseline.format, 'clip-lens-baseline');
  assert.deepEqual(baseline.dataset.classes, CLASSES);
  assert.equal(Object.keys(baseline.samples).length, 9);
  await until('gate passes', () => /\$\(pass\) gate/.test(state.statusItems[0].text));
  await until('no gate diagnostics', () => diagnostics('clipLens.config', path.join(dataset, '.clip-lens.json')).length === 0);

  // A baseline from another model: a clear failure, no comparison.
  fs.writeFileSync(written, JSON.stringify({ ...baseline, model: { ...baseline.model, name: 'clip-vit-large-patch14' } }));
  await run<EvalReport | undefined>(COMMANDS.evaluateDataset, dataset);
  await until('model mismatch', () => diagnostics('clipLens.config', path.join(dataset, '.clip-lens.json')).length === 1);
  assert.match(diagnostics('clipLens.config', path.join(dataset, '.clip-lens.json'))[0].message, /model: the baseline clip-vit-large-patch14, this run tiny-clip.*re-run clip-lens baseline/);
});

test('clipLens.precision auto: compares fp32 and int8 once per dataset, runs the chosen graphs, the report says why', async () => {
  const dataset = path.join(work, 'precision');
  for (const cls of CLASSES) for (let i = 0; i < 3; i++) await png(path.join(dataset, cls, `${cls}${i}.png`), cls, i);
  fake.setSetting('clipLens.precision', 'auto');
  try {
    const report = await api.evaluate(dataset);
    assert.ok(report, `evaluated (messages: ${JSON.stringify(state.messages)})`);
    assert.equal(report.precision?.requested, 'auto');
    assert.equal(report.precision?.used, 'int8');
    assert.equal(report.model.quantized, true);
    assert.equal(report.precision?.agreement?.sample, 9);
    const again = await api.evaluate(dataset);
    assert.deepEqual(again?.precision, report.precision, 'the decision is remembered, not measured again');
    assert.equal(again?.timing.imagesFromCache, 9, 'int8 embeddings cached apart from fp32 ones and reused');
  } finally {
    fake.setSetting('clipLens.precision', 'fp32');
  }
});

test('"models" in .clip-lens.json: the editor evaluates both over one image pass; the report is the first model\'s with its comparison', async () => {
  const dataset = path.join(work, 'two-models');
  for (const cls of CLASSES) for (let i = 0; i < 3; i++) await png(path.join(dataset, cls, `${cls}${i}.png`), cls, i);
  const other = path.join(work, 'tiny-clip-80');
  fs.cpSync(MODEL, other, { recursive: true });
  const pre = JSON.parse(fs.readFileSync(path.join(other, 'preprocessor_config.json'), 'utf8'));
  fs.writeFileSync(path.join(other, 'preprocessor_config.json'), JSON.stringify({ ...pre, size: { shortest_edge: 80 } }));
  fs.writeFileSync(path.join(dataset, '.clip-lens.json'), JSON.stringify({ models: [MODEL, '../tiny-clip-80'] }, null, 2));
  // CLIP_LENS_MODEL names one model and would win over the config.
  delete process.env.CLIP_LENS_MODEL;
  try {
    state.progressReports.length = 0;
    const report = await api.evaluate(dataset);
    assert.ok(report, `evaluated (messages: ${JSON.stringify(state.messages)})`);
    // Both models' progress is shown, each under its name (the 9 images are done by each).
    const shown = state.progressReports.map((r) => r.message ?? '');
    assert.ok(shown.some((m) => m.includes(`${MODEL}: `) && m.includes(' — ../tiny-clip-80: ')), JSON.stringify(shown));
    assert.ok(shown.some((m) => /\.\.\/tiny-clip-80: 9 \/ 9 images/.test(m)), JSON.stringify(shown));
    assert.ok(shown.some((m) => new RegExp(`^${MODEL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 9 / 9 images`).test(m)), JSON.stringify(shown));
    assert.equal(report.model.id, MODEL);
    assert.deepEqual(report.models?.map((m) => m.id), [MODEL, '../tiny-clip-80']);
    assert.equal(report.comparison?.a.name, '../tiny-clip-80');
    assert.equal(report.comparison?.samples.common, 9);
    assert.equal(report.timing.imagesComputed + report.timing.imagesFromCache, 9);
    // A missing folder among "models" is an error on that key.
    fs.writeFileSync(path.join(dataset, '.clip-lens.json'), `{\n  "models": [\n    ${JSON.stringify(MODEL)},\n    "../nope"\n  ]\n}\n`);
    assert.equal(await api.evaluate(dataset), undefined);
    assert.ok(state.messages.some((m) => /"models": no model folder at .*nope/.test(m.text)), JSON.stringify(state.messages.slice(-3)));
  } finally {
    process.env.CLIP_LENS_MODEL = MODEL;
  }
});

test('Compare with... offers the runs of earlier sessions, kept in the extension storage (the last 5 per dataset)', async () => {
  const dataset = path.join(work, 'folders');
  const latest = await api.evaluate(dataset);
  assert.ok(latest);
  const { ReportStore } = require('../../src/extension/store') as typeof import('../../src/extension/store');
  const { RunHistory } = require('../../src/extension/runHistory') as typeof import('../../src/extension/runHistory');
  const { pickComparison } = require('../../src/extension/pickComparison') as typeof import('../../src/extension/pickComparison');
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as import('vscode').LogOutputChannel;
  // A new session: nothing in memory, the history from the storage folder the extension wrote.
  const history = new RunHistory(path.join(work, 'storage', 'history'), log);
  const store = new ReportStore(undefined, log, history);
  // The extension writes the history in the background.
  let kept = await history.list(dataset);
  for (let i = 0; i < 250 && kept[0]?.createdAt !== latest.createdAt; i++) {
    await new Promise((r) => setTimeout(r, 20));
    kept = await history.list(dataset);
  }
  assert.ok(kept.length >= 3 && kept.length <= 5, `runs kept: ${kept.length}`);
  assert.equal(kept[0]?.createdAt, latest.createdAt);
  let offered: string[] = [];
  state.quickPick = (items) => {
    offered = items.map((i) => i.label);
    return items.find((i) => i.label.startsWith('$(history) Run of'));
  };
  try {
    const picked = await pickComparison(store, latest);
    assert.ok(picked && 'comparison' in picked, JSON.stringify(picked));
    assert.equal(offered.filter((l) => l.startsWith('$(history) Run of')).length, kept.length - 1, 'every kept run but the shown one');
    assert.equal(picked.comparison.b.images, latest.metrics?.n);
    assert.ok(picked.comparison.samples.common > 0);
    assert.match(picked.comparison.a.name, /^run of /);
  } finally {
    state.quickPick = undefined;
  }
});
