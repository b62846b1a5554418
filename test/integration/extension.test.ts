/**
 * The extension in a real VS Code, on a temporary copy of examples/shapes with the fixture model (.vscode-test.mjs).
 * Run: node esbuild.mjs && npx tsc -p test/integration && npx vscode-test
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

/** The part of the extension's API (src/extension/main.ts ClipLensApi) used here. */
interface ClipLensApi {
  apiVersion: 1;
  reports(): { dataset: { root: string; classes: string[]; format: string }; labelIssues: { path?: string; given: string; suggested: string }[] }[];
  loadedModels(): string[];
}

const EXTENSION_ID = 'clip-lens.clip-lens';
const IMAGE = /\.(png|jpe?g|webp)$/i;

const workspace = process.env.CLIP_LENS_IT_WORKSPACE as string;
const shapes = path.join(workspace, 'shapes');

function clipLensDiagnostics(): [vscode.Uri, vscode.Diagnostic[]][] {
  return vscode.languages
    .getDiagnostics()
    .map(([uri, ds]) => [uri, ds.filter((d) => d.source === 'CLIP Lens')] as [vscode.Uri, vscode.Diagnostic[]])
    .filter(([, ds]) => ds.length > 0);
}

function codeOf(d: vscode.Diagnostic): string {
  return typeof d.code === 'object' ? String(d.code.value) : String(d.code);
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every image under a folder, as POSIX paths relative to it. */
function images(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...images(dir, r));
    else if (IMAGE.test(e.name)) out.push(r);
  }
  return out.sort();
}

suite('CLIP Lens extension', () => {
  let api: ClipLensApi;

  suiteSetup(async () => {
    const ext = vscode.extensions.getExtension<ClipLensApi>(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is installed`);
    api = await ext.activate();
    assert.equal(api.apiVersion, 1);
  });

  test('every contributed command is registered', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { contributes: { commands: { command: string }[] } };
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of pkg.contributes.commands) assert.ok(registered.has(c.command), c.command);
  });

  test('Evaluate Dataset: a report, diagnostics on the images of the likely label errors, the model stays loaded', async () => {
    const report = (await vscode.commands.executeCommand('clipLens.evaluateDataset', vscode.Uri.file(shapes))) as ReturnType<ClipLensApi['reports']>[number];
    assert.ok(report, 'the command returns the report');
    assert.equal(report.dataset.root, shapes);
    assert.equal(report.dataset.classes.length, 16);
    assert.deepEqual(api.reports().map((r) => r.dataset.root), [shapes]);
    assert.equal(api.loadedModels().length, 1);
    const issues = report.labelIssues.filter((i) => i.path);
    const expected = new Set(issues.map((i) => vscode.Uri.file(path.join(shapes, ...(i.path as string).split('/'))).toString()));
    await waitFor('label-issue diagnostics', () => clipLensDiagnostics().filter(([, ds]) => ds.some((d) => codeOf(d) === 'label-issue')).length === expected.size);
    for (const [uri, ds] of clipLensDiagnostics()) {
      for (const d of ds.filter((x) => codeOf(x) === 'label-issue')) {
        assert.ok(expected.has(uri.toString()), `diagnostic on ${uri.fsPath} is a reported issue`);
        assert.match(d.message, /^CLIP predicts '.+' \(\S+\) but the image is in the folder '.+' \(\S+\)$/);
      }
    }
  });

  test('a label file: diagnostics on the label, the quick fix changes exactly that field, and the diagnostic goes', async () => {
    // A CSV over the shapes images with two labels swapped on purpose.
    const all = images(shapes).slice(0, 60);
    const classOf = (p: string) => p.split('/').find((seg) => api.reports()[0].dataset.classes.includes(seg)) as string;
    const rows = all.map((p) => [p, classOf(p)]);
    const a = rows.findIndex((r) => r[1] !== rows[0][1]);
    [rows[0][1], rows[a][1]] = [rows[a][1], rows[0][1]];
    const csv = path.join(shapes, 'labels-it.csv');
    fs.writeFileSync(csv, `image,label\n${rows.map((r) => `${r[0]},${r[1]}`).join('\n')}\n`);
    const report = (await vscode.commands.executeCommand('clipLens.evaluateLabelFile', vscode.Uri.file(csv))) as ReturnType<ClipLensApi['reports']>[number];
    assert.ok(report);
    assert.equal(report.dataset.format, 'label-file');
    const uri = vscode.Uri.file(csv);
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const diags = await waitFor('diagnostics in the label file', () => {
      const ds = vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'CLIP Lens' && codeOf(d) === 'label-issue');
      return ds.length === report.labelIssues.length && ds.length > 0 ? ds : undefined;
    });
    const d = diags[0];
    const given = doc.getText(d.range);
    assert.ok(report.dataset.classes.includes(given), `the range covers a label: ${given}`);
    const actions = (await vscode.commands.executeCommand('vscode.executeCodeActionProvider', uri, d.range, vscode.CodeActionKind.QuickFix.value, 10)) as vscode.CodeAction[];
    const change = actions.find((x) => x.title.startsWith('Change label to '));
    assert.ok(change?.edit, `a "Change label to" quick fix with an edit (got ${actions.map((x) => x.title).join(', ')})`);
    const before = doc.getText();
    const line = d.range.start.line;
    assert.ok(await vscode.workspace.applyEdit(change.edit));
    const suggested = /'(.+)'/.exec(change.title)?.[1] as string;
    assert.equal(doc.lineAt(line).text, doc.lineAt(line).text.slice(0, d.range.start.character) + suggested);
    assert.equal(doc.getText().split('\n').filter((l, i) => l !== before.split('\n')[i]).length, 1, 'only that line changed');
    await waitFor('the fixed diagnostic to go', () => vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'CLIP Lens' && codeOf(x) === 'label-issue').length === diags.length - 1);
    await vscode.commands.executeCommand('undo');
    assert.equal(doc.getText(), before);
    await waitFor('the diagnostic to come back after undo', () => vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'CLIP Lens' && codeOf(x) === 'label-issue').length === diags.length);
    await vscode.commands.executeCommand('workbench.action.files.revert');
  });

  test('Ignore this sample records the path in .clip-lens.json (created when missing)', async () => {
    const report = api.reports().find((r) => r.dataset.root === shapes);
    assert.ok(report);
    const configFile = path.join(shapes, '.clip-lens.json');
    const issue = report.labelIssues.find((i) => i.path) ?? { path: images(shapes)[0] };
    await vscode.commands.executeCommand('clipLens.ignoreSample', shapes, issue.path);
    const text = await waitFor('the config', () => {
      const open = vscode.workspace.textDocuments.find((x) => x.uri.fsPath === configFile);
      const t = open ? open.getText() : fs.existsSync(configFile) ? fs.readFileSync(configFile, 'utf8') : '';
      return t.includes(JSON.stringify(issue.path)) ? t : undefined;
    });
    const json = JSON.parse(text) as { ignore?: string[] };
    assert.ok(json.ignore?.includes(issue.path as string));
  });
});
