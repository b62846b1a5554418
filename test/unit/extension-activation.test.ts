/**
 * Activates the bundled extension (dist/extension.js as esbuild builds it) in plain Node against a fake 'vscode', in a
 * child process with a clean module cache: every contributed command is registered, and activation loads neither
 * sharp nor onnxruntime-node (they are imported on first use only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { COMMANDS, CONTEXT_KEYS } from '../../src/extension/commandIds';

const root = path.join(__dirname, '..', '..');

test('the bundle activates without loading sharp or onnxruntime-node and registers every command', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-bundle-'));
  await esbuild.build({
    absWorkingDir: root,
    // The fake 'vscode' is bundled too, so the child runs in plain Node (no TypeScript loader in the module cache).
    entryPoints: { extension: 'src/extension/main.ts', inferenceWorker: 'src/core/inferenceWorker.ts', fakeVscode: 'test/unit/extension-fakeVscode.ts' },
    outdir: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['vscode', 'onnxruntime-node', 'sharp'],
    logLevel: 'silent',
  });
  // Native modules resolve from the repository's node_modules.
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  const child = path.join(out, 'activate.cjs');
  fs.writeFileSync(
    child,
    `
const { createFakeVscode, installFakeVscode, fakeContext } = require('./fakeVscode.js');
const path = require('node:path');
const { vscode, state } = createFakeVscode(${JSON.stringify(root)});
installFakeVscode(vscode);
const t0 = performance.now();
const ext = require(${JSON.stringify(path.join(out, 'extension.js'))});
const api = ext.activate(fakeContext(${JSON.stringify(root)}, path.join(${JSON.stringify(out)}, 'storage')));
const ms = performance.now() - t0;
setTimeout(() => {
  const loaded = Object.keys(require.cache);
  process.stdout.write(JSON.stringify({
    ms,
    apiVersion: api.apiVersion,
    commands: [...state.commands.keys()],
    context: Object.fromEntries(state.context),
    sharp: loaded.filter((f) => /[\\\\/]node_modules[\\\\/]sharp[\\\\/]/.test(f)),
    ort: loaded.filter((f) => /[\\\\/]node_modules[\\\\/]onnxruntime-node[\\\\/]/.test(f)),
    views: [...state.treeViews.keys()],
    collections: [...state.diagnostics.keys()],
  }));
  process.exit(0);
}, 200);
`,
  );
  const res = JSON.parse(execFileSync(process.execPath, [child], { cwd: root, encoding: 'utf8' }));
  assert.equal(res.apiVersion, 1);
  assert.deepEqual([...res.commands].sort(), Object.values(COMMANDS).sort());
  assert.deepEqual(res.sharp, [], 'sharp is not loaded at activation');
  assert.deepEqual(res.ort, [], 'onnxruntime-node is not loaded at activation');
  assert.deepEqual(res.views.sort(), ['clipLens.datasets', 'clipLens.labelIssues', 'clipLens.warnings']);
  assert.deepEqual(res.collections.sort(), ['clipLens.config', 'clipLens.dataset', 'clipLens.labelIssues']);
  assert.equal(res.context[CONTEXT_KEYS.hasResults], false);
  fs.rmSync(out, { recursive: true, force: true });
});
