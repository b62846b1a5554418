// Bundles the CLI, the inference worker, the VS Code extension and the report webview.
// onnxruntime-node, sharp and usearch (optional) are native and stay external (shipped in node_modules); 'vscode' is the host's.
// Usage: node esbuild.mjs [--watch] [--dev]
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const dev = process.argv.includes('--dev');

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  minify: !dev,
  keepNames: true,
  external: ['vscode', 'onnxruntime-node', 'sharp', 'usearch'],
  logLevel: 'info',
};

const builds = [
  { ...node, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } },
  { ...node, entryPoints: { inferenceWorker: 'src/core/inferenceWorker.ts' }, outdir: 'dist' },
  { ...node, entryPoints: { metricsWorker: 'src/core/metricsWorker.ts' }, outdir: 'dist' },
  { ...node, entryPoints: { sidecarWorker: 'src/core/sidecarWorker.ts' }, outdir: 'dist' },
];
if (existsSync('src/extension/main.ts')) builds.push({ ...node, entryPoints: { extension: 'src/extension/main.ts' }, outdir: 'dist' });
if (existsSync('webview/build.mjs')) {
  const { webviewBuildOptions } = await import('./webview/build.mjs');
  builds.push({ ...webviewBuildOptions, minify: !dev, logLevel: 'info' });
}

if (watch) {
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
