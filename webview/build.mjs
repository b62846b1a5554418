/**
 * esbuild options of the report panel's webview bundle: webview/main.ts -> dist/webview.js, one minified IIFE for
 * the browser. The project's esbuild.mjs imports `webviewBuildOptions`; running this file builds the bundle alone:
 *   node webview/build.mjs [--dev]     (--dev: no minification, inline source map)
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** @type {import('esbuild').BuildOptions} */
export const webviewBuildOptions = {
  absWorkingDir: root,
  entryPoints: ['webview/main.ts'],
  outfile: 'dist/webview.js',
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: ['chrome120'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  tsconfig: 'webview/tsconfig.json',
  logLevel: 'warning',
  metafile: true,
};

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const esbuild = await import('esbuild');
  const dev = process.argv.includes('--dev');
  const result = await esbuild.build({ ...webviewBuildOptions, ...(dev ? { minify: false, sourcemap: 'inline' } : {}) });
  const out = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith('webview.js'));
  if (out) console.log(`${out[0]}: ${(out[1].bytes / 1024).toFixed(1)} KiB`);
}
