/**
 * The import rules between the layers, checked by reading the import lines of every .ts file:
 * - src/core imports nothing from vscode, src/cli, src/extension or webview/;
 * - src/extension imports nothing from src/cli or webview/;
 * - webview/ imports nothing from vscode, src/extension or src/cli;
 * - src/cli imports nothing from vscode, src/extension or webview/;
 * - the src/core modules the panel's browser bundle pulls in (followed from webview/, type-only imports aside) import
 *   no Node built-in and no native package.
 * The checker is a pure function of file texts, tested on small planted examples first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

type Layer = 'core' | 'cli' | 'extension' | 'webview' | 'vscode' | 'node' | 'package' | 'other';

const FORBIDDEN: Partial<Record<Layer, readonly Layer[]>> = {
  core: ['vscode', 'cli', 'extension', 'webview'],
  extension: ['cli', 'webview'],
  webview: ['vscode', 'extension', 'cli'],
  cli: ['vscode', 'extension', 'webview'],
};
/** Packages with native code: never in the browser bundle. */
const NATIVE = new Set(['sharp', 'onnxruntime-node']);

interface ImportLine {
  spec: string;
  line: number;
  typeOnly: boolean;
}

/** The module specifiers of a file: static imports and re-exports (over several lines too), import(), require(). */
export function importsOf(text: string): ImportLine[] {
  const out: ImportLine[] = [];
  const lineAt = (i: number) => text.slice(0, i).split('\n').length;
  const statement = /^[ \t]*(import|export)\b([^;'"]*?)\bfrom\s*['"]([^'"]+)['"]/gm;
  for (let m; (m = statement.exec(text)); ) {
    const head = m[2]!;
    out.push({ spec: m[3]!, line: lineAt(m.index + m[0].indexOf(m[1]!)), typeOnly: /^\s*type\b/.test(head) });
  }
  const bare = /^[ \t]*import\s*['"]([^'"]+)['"]/gm;
  for (let m; (m = bare.exec(text)); ) out.push({ spec: m[1]!, line: lineAt(m.index), typeOnly: false });
  const dynamic = /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m; (m = dynamic.exec(text)); ) out.push({ spec: m[1]!, line: lineAt(m.index), typeOnly: false });
  return out;
}

function layerOf(file: string): Layer {
  if (file.startsWith('src/core/')) return 'core';
  if (file.startsWith('src/cli/')) return 'cli';
  if (file.startsWith('src/extension/')) return 'extension';
  if (file.startsWith('webview/')) return 'webview';
  return 'other';
}

/** The repository-relative .ts file an import names (extension added or changed from .js), or its layer. */
function resolve(from: string, spec: string, files: ReadonlyMap<string, string>): { file?: string; layer: Layer } {
  if (spec === 'vscode') return { layer: 'vscode' };
  if (spec.startsWith('node:')) return { layer: 'node' };
  if (!spec.startsWith('.')) return { layer: 'package' };
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.(js|ts)$/, '');
  const file = [`${base}.ts`, `${base}/index.ts`].find((f) => files.has(f)) ?? `${base}.ts`;
  return { file, layer: layerOf(file) };
}

/** Every broken rule, as "file:line: imports spec (layer a -> layer b)". `files`: repository-relative path -> text. */
export function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const [file, text] of files) {
    const from = layerOf(file);
    for (const imp of importsOf(text)) {
      const to = resolve(file, imp.spec, files).layer;
      if (FORBIDDEN[from]?.includes(to)) problems.push(`${file}:${imp.line}: imports '${imp.spec}' (${from} must not import ${to})`);
    }
  }
  // What the panel's bundle pulls in: follow value imports from webview/ and check the modules reached.
  const seen = new Set<string>();
  const queue = [...files.keys()].filter((f) => layerOf(f) === 'webview');
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const imp of importsOf(files.get(file) ?? '')) {
      if (imp.typeOnly) continue;
      const r = resolve(file, imp.spec, files);
      if (r.layer === 'node' || NATIVE.has(imp.spec) || (r.layer === 'package' && /^(fs|path|os|crypto|child_process|worker_threads|util)$/.test(imp.spec))) {
        problems.push(`${file}:${imp.line}: imports '${imp.spec}', but the report panel's browser bundle includes this file`);
      } else if (r.file && files.has(r.file)) queue.push(r.file);
    }
  }
  return problems;
}

test('the checker reads import lines of every form', () => {
  const text = [
    "import * as fs from 'node:fs';",
    'import {',
    '  a,',
    '  b,',
    "} from '../cli/io';",
    "import type { X } from './x';",
    "export { y } from './y';",
    "import './side-effect';",
    "  const m = await import('../extension/z.js');",
    "const r = require('vscode');",
    "// a comment saying from 'nowhere' is not an import line",
  ].join('\n');
  assert.deepEqual(
    importsOf(text).map((i) => `${i.line} ${i.spec}${i.typeOnly ? ' (type)' : ''}`).sort(),
    ['1 node:fs', '2 ../cli/io', '6 ./x (type)', '7 ./y', '8 ./side-effect', '9 ../extension/z.js', '10 vscode'].sort(),
  );
});

test('the checker finds planted violations and passes the same files without them', () => {
  const clean = new Map([
    ['src/core/a.ts', "import { b } from './b';\nexport const a = b;\n"],
    ['src/core/b.ts', 'export const b = 1;\n'],
    ['src/core/host.ts', "import * as fs from 'node:fs';\nexport const h = fs;\n"],
    ['src/cli/main.ts', "import { a } from '../core/a';\n"],
    ['src/extension/main.ts', "import * as vscode from 'vscode';\nimport { a } from '../core/a';\nimport { h } from '../core/host.js';\n"],
    ['webview/main.ts', "import { a } from '../src/core/a';\nimport type { H } from '../src/core/host';\n"],
  ]);
  assert.deepEqual(layerViolations(clean), []);
  const planted = (file: string, line: string) => {
    const files = new Map(clean);
    files.set(file, `${files.get(file) ?? ''}${line}\n`);
    return layerViolations(files);
  };
  assert.deepEqual(planted('src/core/b.ts', "import * as vscode from 'vscode';"), ["src/core/b.ts:2: imports 'vscode' (core must not import vscode)"]);
  assert.deepEqual(planted('src/core/b.ts', "import { io } from '../cli/io';"), ["src/core/b.ts:2: imports '../cli/io' (core must not import cli)"]);
  assert.match(planted('src/core/a.ts', "export { x } from '../../webview/lib/x';")[0]!, /core must not import webview/);
  assert.match(planted('src/core/a.ts', "const e = await import('../extension/engine.js');")[0]!, /core must not import extension/);
  assert.match(planted('src/extension/main.ts', "import { hookCommand } from '../cli/hookCommand';")[0]!, /extension must not import cli/);
  assert.match(planted('src/extension/main.ts', "import { x } from '../../webview/lib/prCurve';")[0]!, /extension must not import webview/);
  assert.match(planted('webview/main.ts', "import { r } from '../src/extension/reportPanel';")[0]!, /webview must not import extension/);
  assert.match(planted('webview/main.ts', "import { c } from '../src/cli/summary';")[0]!, /webview must not import cli/);
  assert.match(planted('src/cli/main.ts', "import { e } from '../extension/engine';")[0]!, /cli must not import extension/);
  assert.match(planted('src/cli/main.ts', "import { p } from '../../webview/panelHtml';")[0]!, /cli must not import webview/);
  // A value import of a node-using core module from the panel, directly or through another core module.
  assert.match(planted('webview/main.ts', "import { h } from '../src/core/host';")[0]!, /src\/core\/host\.ts:1: imports 'node:fs', but the report panel's browser bundle/);
  assert.match(planted('src/core/b.ts', "import { h } from './host';")[0]!, /src\/core\/host\.ts:1: imports 'node:fs'/);
  assert.match(planted('src/core/b.ts', "import sharp from 'sharp';")[0]!, /src\/core\/b\.ts:2: imports 'sharp'/);
});

test('the repository follows the layer rules', () => {
  const root = path.resolve(__dirname, '../..');
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts')) files.set(rel, fs.readFileSync(path.join(root, rel), 'utf8'));
    }
  };
  walk('src');
  walk('webview');
  assert.ok(files.size > 50 && [...files.keys()].some((f) => f.startsWith('webview/')), `${files.size} files read`);
  assert.deepEqual(layerViolations(files), []);
});
