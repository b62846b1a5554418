/**
 * Commands that need no model, driven through the fake 'vscode': Install/Uninstall Commit Gate (on a real git
 * repository, refused in Restricted Mode) and Select Model (registry pick, local folder validated by validateModelDir).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HOOK_MARKER } from '../../src/core/gitHook';
import { COMMANDS } from '../../src/extension/commandIds';
import { createFakeVscode, fakeContext, installFakeVscode } from './extension-fakeVscode';

let work: string;
let repo: string;
let extRoot: string;
let fake: ReturnType<typeof createFakeVscode>;
let uninstall: () => void;
let deactivate: () => Promise<void>;
const run = async <T>(id: string, ...args: unknown[]) => (await fake.state.commands.get(id)!(...args)) as T;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-cmds-'));
  repo = path.join(work, 'repo');
  fs.mkdirSync(repo);
  execFileSync('git', ['init', '-q'], { cwd: repo });
  // The extension as installed: the hook records its bundled CLI.
  extRoot = path.join(work, 'ext');
  fs.mkdirSync(path.join(extRoot, 'dist'), { recursive: true });
  fs.writeFileSync(path.join(extRoot, 'dist', 'cli.js'), '#!/usr/bin/env node\n');
  fake = createFakeVscode(repo);
  uninstall = installFakeVscode(fake.vscode);
  const ext = require('../../src/extension/main') as { activate(c: unknown): unknown; deactivate(): Promise<void> };
  ext.activate(fakeContext(extRoot, path.join(work, 'storage')));
  deactivate = ext.deactivate;
});

after(async () => {
  await deactivate();
  uninstall();
  fs.rmSync(work, { recursive: true, force: true });
});

test('Install Commit Gate: refused in Restricted Mode; installs the hook with this Node and the bundled CLI; Uninstall removes it', async () => {
  const hook = path.join(repo, '.git', 'hooks', 'pre-commit');
  fake.vscode.workspace.isTrusted = false;
  assert.equal(await run<boolean>(COMMANDS.installCommitGate), false);
  assert.ok(fake.state.messages.some((m) => m.level === 'warning' && /only in a trusted workspace/.test(m.text)));
  assert.ok(!fs.existsSync(hook));

  fake.vscode.workspace.isTrusted = true;
  assert.equal(await run<boolean>(COMMANDS.installCommitGate), true);
  const script = fs.readFileSync(hook, 'utf8');
  assert.ok(script.split('\n').includes(HOOK_MARKER));
  assert.ok(script.includes(`clip_lens_node='${process.execPath}'`), 'a plain Node host records itself');
  assert.ok(script.includes(`clip_lens_cli='${path.join(extRoot, 'dist', 'cli.js')}'`));
  assert.ok(fake.state.messages.some((m) => m.level === 'info' && /installed the commit gate in repo\. No \.clip-lens\.json in this folder has a "gate" section yet/.test(m.text)));

  assert.equal(await run<boolean>(COMMANDS.uninstallCommitGate), true);
  assert.ok(!fs.existsSync(hook));
  assert.equal(await run<boolean>(COMMANDS.uninstallCommitGate), false, 'nothing left to remove');
});

test('Select Model: a registry model goes to the setting; a local folder is checked first', async () => {
  fake.state.quickPick = (items) => items.find((i) => i.label.endsWith('mobileclip-b'));
  await run(COMMANDS.selectModel);
  assert.equal(fake.state.settings['clipLens.model'], 'mobileclip-b');
  assert.ok(fake.state.messages.some((m) => m.text === "CLIP Lens will use 'mobileclip-b'."));

  const notAModel = path.join(work, 'not-a-model');
  fs.mkdirSync(notAModel);
  fake.state.quickPick = (items) => items.find((i) => i.label.includes('Browse for a local folder'));
  fake.state.openDialog = () => [fake.vscode.Uri.file(notAModel)];
  await run(COMMANDS.selectModel);
  assert.equal(fake.state.settings['clipLens.model'], 'mobileclip-b', 'an invalid folder is not saved');
  assert.ok(fake.state.messages.some((m) => m.level === 'error' && m.text === 'CLIP Lens: not-a-model is not a usable model folder.'));

  const tiny = path.join(__dirname, '..', 'fixtures', 'tiny-clip');
  const model = process.env.CLIP_LENS_TEST_MODEL ?? tiny;
  assert.ok(fs.existsSync(model), `fixture model missing: ${tiny}`);
  fake.state.openDialog = () => [fake.vscode.Uri.file(model)];
  await run(COMMANDS.selectModel);
  assert.equal(fake.state.settings['clipLens.model'], path.resolve(model));
  fake.state.quickPick = undefined;
  fake.state.openDialog = undefined;
});
