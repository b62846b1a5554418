/**
 * package.json's extension manifest agrees with the code: command ids, views, context keys, settings and their
 * defaults, restricted settings, activation events and the files it points to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMMANDS, CONTEXT_KEYS, PANEL_VIEW_TYPE, TREE_CONTEXT, VIEWS } from '../../src/extension/commandIds';
import { DEFAULT_SETTINGS, readSettings, SECTION } from '../../src/extension/config';
import { RESTRICTED_SETTINGS } from '../../src/extension/trust';

const root = path.join(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const contributes = pkg.contributes;

interface MenuItem {
  command: string;
  when?: string;
  group?: string;
}

const allMenuItems = (): MenuItem[] => Object.values(contributes.menus as Record<string, MenuItem[]>).flat();

test('every command is contributed once, and every contributed command has an id in commandIds.ts', () => {
  const contributed = (contributes.commands as { command: string; title: string; category: string }[]).map((c) => c.command);
  assert.deepEqual([...contributed].sort(), Object.values(COMMANDS).sort());
  assert.equal(new Set(contributed).size, contributed.length);
  for (const c of contributes.commands) assert.equal(c.category, 'CLIP Lens', c.command);
});

test('menus only name contributed commands; item-only commands are hidden from the palette', () => {
  const ids = new Set(Object.values(COMMANDS) as string[]);
  for (const item of allMenuItems()) assert.ok(ids.has(item.command), `menu names unknown command ${item.command}`);
  const palette = new Map((contributes.menus.commandPalette as MenuItem[]).map((m) => [m.command, m.when]));
  for (const id of [COMMANDS.openImage, COMMANDS.applyFix, COMMANDS.ignoreSample, COMMANDS.moveToSuggestedClass, COMMANDS.applyFixChooseClass]) {
    assert.equal(palette.get(id), 'false', `${id} needs arguments: hidden from the palette`);
  }
  const explorer = contributes.menus['explorer/context'] as MenuItem[];
  assert.ok(explorer.some((m) => m.command === COMMANDS.evaluateDataset && m.when === 'explorerResourceIsFolder'));
  const labelFileItem = explorer.find((m) => m.command === COMMANDS.evaluateLabelFile);
  assert.ok(labelFileItem?.when);
  const ext = /resourceExtname =~ \/(.+)\/i/.exec(labelFileItem.when)?.[1];
  assert.ok(ext);
  const re = new RegExp(ext.replace(/\\\\/g, '\\'), 'i');
  for (const e of ['.csv', '.TSV', '.jsonl', '.ndjson']) assert.ok(re.test(e), e);
  for (const e of ['.json', '.csv.bak', '.png']) assert.ok(!re.test(e), e);
});

test('when clauses use only known views, tree item kinds and context keys', () => {
  const known = new Set<string>([...Object.values(CONTEXT_KEYS), ...Object.values(VIEWS), ...Object.values(TREE_CONTEXT), ...Object.values(COMMANDS)]);
  const whens = [...allMenuItems().map((m) => m.when ?? ''), ...(contributes.viewsWelcome as { when: string }[]).map((v) => v.when)];
  for (const when of whens) {
    for (const token of when.match(/clipLens\.[A-Za-z.]+/g) ?? []) {
      const t = token.replace(/\.$/, '');
      assert.ok(known.has(t) || [...known].some((k) => k.startsWith(`${t}.`)), `unknown name ${t} in "${when}"`);
    }
  }
  for (const m of allMenuItems()) {
    const item = /viewItem == ([\w.]+)/.exec(m.when ?? '')?.[1];
    if (item) assert.ok((Object.values(TREE_CONTEXT) as string[]).includes(item), item);
    const view = /view == ([\w.]+)/.exec(m.when ?? '')?.[1];
    if (view) assert.ok((Object.values(VIEWS) as string[]).includes(view), view);
  }
});

test('views: one activity-bar container with the three views, each with a welcome view', () => {
  const container = contributes.viewsContainers.activitybar[0];
  assert.equal(container.id, VIEWS.container);
  assert.ok(fs.existsSync(path.join(root, container.icon)), container.icon);
  assert.match(fs.readFileSync(path.join(root, container.icon), 'utf8'), /<svg[\s\S]*currentColor/);
  const views = (contributes.views[VIEWS.container] as { id: string }[]).map((v) => v.id);
  assert.deepEqual(views, [VIEWS.datasets, VIEWS.labelIssues, VIEWS.warnings]);
  // Before any result: the Datasets view has the "Evaluate a Dataset" button; the other two views say what will show
  // up there, without repeating the same button (three identical buttons one under the other confused people).
  for (const v of views) {
    const welcome = (contributes.viewsWelcome as { view: string; contents: string; when: string }[]).filter((w) => w.view === v);
    const empty = welcome.find((w) => w.when === `!${CONTEXT_KEYS.hasResults}`);
    assert.ok(empty, `${v} has a welcome view`);
    if (v === VIEWS.datasets) assert.ok(empty.contents.includes(`command:${COMMANDS.evaluateDataset}`), v);
    else assert.ok(!empty.contents.includes('command:'), `${v} repeats a button of the Datasets view`);
  }
});

test('settings: every setting read is contributed with the same default, and nothing else is contributed', () => {
  const props = contributes.configuration.properties as Record<string, { default: unknown }>;
  const read: string[] = [];
  readSettings({ get: <T>(key: string) => (read.push(key), undefined as T | undefined) });
  assert.deepEqual(read.map((k) => `${SECTION}.${k}`).sort(), Object.keys(props).sort());
  const fromManifest = readSettings({ get: <T>(key: string) => props[`${SECTION}.${key}`]?.default as T });
  assert.deepEqual(fromManifest.problems, []);
  assert.deepEqual(fromManifest.settings, DEFAULT_SETTINGS);
});

test('restricted settings, activation events, schema validation and icon', () => {
  assert.deepEqual(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations, [...RESTRICTED_SETTINGS]);
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  for (const key of RESTRICTED_SETTINGS) assert.ok(key in contributes.configuration.properties, key);
  assert.ok(pkg.activationEvents.includes('workspaceContains:**/.clip-lens.json'));
  assert.ok(pkg.activationEvents.includes(`onWebviewPanel:${PANEL_VIEW_TYPE}`));
  const [validation] = contributes.jsonValidation;
  assert.equal(validation.fileMatch, '.clip-lens.json');
  assert.ok(fs.existsSync(path.join(root, validation.url)));
  const png = fs.readFileSync(path.join(root, pkg.icon));
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
  assert.equal(pkg.main, './dist/extension.js');
});

test('the report panel view type matches reportPanel.ts', () => {
  const src = fs.readFileSync(path.join(root, 'src', 'extension', 'reportPanel.ts'), 'utf8');
  assert.match(src, new RegExp(`REPORT_PANEL_VIEW_TYPE = '${PANEL_VIEW_TYPE.replace('.', '\\.')}'`));
});

test('walkthrough: five steps (model, evaluate, report, fix, gate), each with its markdown and real commands', () => {
  const walkthroughs = pkg.contributes.walkthroughs as { id: string; steps: { id: string; description: string; media: { markdown: string }; completionEvents: string[] }[] }[];
  assert.equal(walkthroughs.length, 1);
  const steps = walkthroughs[0]!.steps;
  assert.deepEqual(steps.map((s) => s.id), ['pickModel', 'evaluate', 'readReport', 'fixLabel', 'installGate']);
  const commands = new Set<string>(Object.values(COMMANDS));
  const views = new Set<string>(Object.values(VIEWS));
  const known = (id: string) => commands.has(id) || (id.endsWith('.focus') && views.has(id.slice(0, -'.focus'.length)));
  for (const s of steps) {
    assert.ok(fs.existsSync(path.join(root, s.media.markdown)), `${s.id}: ${s.media.markdown} exists`);
    const links = [...s.description.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1]!);
    assert.ok(links.length > 0, `${s.id} has a command link`);
    for (const id of links) assert.ok(known(id), `${s.id}: unknown command ${id}`);
    for (const e of s.completionEvents) {
      if (e.startsWith('onCommand:')) assert.ok(known(e.slice('onCommand:'.length)), `${s.id}: unknown command in ${e}`);
      else if (e.startsWith('onContext:')) assert.ok((Object.values(CONTEXT_KEYS) as string[]).includes(e.slice('onContext:'.length)), `${s.id}: unknown context key in ${e}`);
    }
  }
});

test('Ctrl+Z runs Undo Last Fix only where CLIP Lens fixes are the last thing done (our panel, our views, the Explorer)', () => {
  const kb = (pkg.contributes.keybindings as { command: string; key: string; when: string }[]).find((k) => k.command === COMMANDS.undoLastFix)!;
  assert.equal(kb.key, 'ctrl+z');
  assert.match(kb.when, new RegExp(`^${CONTEXT_KEYS.canUndoFix.replace('.', '\\.')} && \\(`), 'guarded by the undo context key');
  assert.match(kb.when, /activeWebviewPanelId == 'clipLens\.report'/);
  assert.match(kb.when, /focusedView == 'clipLens\.labelIssues'/);
});
