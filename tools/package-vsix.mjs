#!/usr/bin/env node
// Builds a platform-specific VSIX of CLIP Lens and checks what went into it.
//
//   node tools/package-vsix.mjs [target] [--stage] [--no-build] [--out FILE] [--keep-stage]
//
//   target      linux-x64 | linux-arm64 | darwin-arm64 | darwin-x64 | win32-x64 | win32-arm64
//               (default: this machine's platform-arch)
//   --stage     install the production dependencies into a staging copy even for this machine's target
//               (always done for other targets; see docs/packaging.md)
//   --no-build  skip `node esbuild.mjs` (dist/ is already current)
//   --out FILE  default out/clip-lens-<target>.vsix
//
// The VSIX holds the esbuild bundles (dist/), media/, the schema, LICENSE/CHANGELOG/README and the production
// node_modules needed at run time: onnxruntime-node (only the target's binaries), onnxruntime-common, sharp with
// the target's @img/sharp-* (and @img/sharp-libvips-*) packages, and sharp's small JS dependencies. What is packed
// is decided by .vscodeignore, whose "target binaries" block this script rewrites per target (vsce --ignoreFile).
//
// For this machine's target the packaging runs in place (the same as
//   npx @vscode/vsce package --target linux-x64 --allow-missing-repository --no-rewrite-relative-links -o out/clip-lens-linux-x64.vsix
// on linux-x64). For another target, the package files are copied to out/vsix-stage/<target>/ and
// `npm ci --omit=dev --ignore-scripts --os --cpu [--libc]` installs the production dependencies for that platform
// there (sharp's platform packages are optional dependencies chosen by os/cpu/libc), then vsce packages the copy.
//
// After packaging, the VSIX is opened and checked: required files present, no sources/tests/devDependencies, no
// other platform's binaries, no source maps, and every `require()`/`import()` in the packed bundles resolves to a
// Node built-in, 'vscode' or a package inside the VSIX. Exits non-zero when a check fails.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Per VS Code target: npm's os/cpu/libc, onnxruntime-node's binary folder, sharp's platform packages. */
const TARGETS = {
  'linux-x64': { os: 'linux', cpu: 'x64', libc: 'glibc', ort: 'linux/x64', usearch: 'linux-x64', sharp: ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'] },
  'linux-arm64': { os: 'linux', cpu: 'arm64', libc: 'glibc', ort: 'linux/arm64', usearch: 'linux-arm64', sharp: ['@img/sharp-linux-arm64', '@img/sharp-libvips-linux-arm64'] },
  'darwin-arm64': { os: 'darwin', cpu: 'arm64', ort: 'darwin/arm64', usearch: 'darwin-arm64+x64', sharp: ['@img/sharp-darwin-arm64', '@img/sharp-libvips-darwin-arm64'] },
  'darwin-x64': { os: 'darwin', cpu: 'x64', ort: 'darwin/x64', usearch: 'darwin-arm64+x64', sharp: ['@img/sharp-darwin-x64', '@img/sharp-libvips-darwin-x64'] },
  // sharp's Windows packages carry libvips themselves (no separate libvips package)
  'win32-x64': { os: 'win32', cpu: 'x64', ort: 'win32/x64', usearch: null, sharp: ['@img/sharp-win32-x64'] },
  'win32-arm64': { os: 'win32', cpu: 'arm64', ort: 'win32/arm64', usearch: null, sharp: ['@img/sharp-win32-arm64'] },
};

function parseArgs(argv) {
  const o = { target: `${process.platform}-${process.arch}`, stage: false, build: true, out: undefined, keepStage: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--stage') o.stage = true;
    else if (a === '--no-build') o.build = false;
    else if (a === '--keep-stage') o.keepStage = true;
    else if (a === '--out' || a === '-o') o.out = argv[++i];
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 12).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    } else if (!a.startsWith('-')) o.target = a;
    else throw new Error(`unknown option ${a}`);
  }
  if (!TARGETS[o.target]) throw new Error(`unknown target '${o.target}' (one of: ${Object.keys(TARGETS).join(', ')})`);
  o.out = path.resolve(ROOT, o.out ?? `out/clip-lens-${o.target}.vsix`);
  return o;
}

const t0 = Date.now();
const log = (m) => console.log(`[package-vsix ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const run = (cmd, args, cwd, env = {}) => execFileSync(cmd, args, { cwd, stdio: 'inherit', env: { ...process.env, ...env } });

/** .vscodeignore with its "target binaries" block pointing at the target's onnxruntime-node folder. */
export function ignoreFileFor(text, target) {
  const spec = TARGETS[target];
  const re = /(# >>> target binaries[^\n]*\n(?:#[^\n]*\n)*)([\s\S]*?)(# <<< target binaries)/;
  if (!re.test(text)) throw new Error('.vscodeignore has no "# >>> target binaries ... # <<< target binaries" block');
  // usearch (core/neighbours.ts: the approximate kNN index) where it ships a prebuilt binary for the target, with the
  // two small packages its loader requires; elsewhere the extension uses the exact search.
  const usearch = spec.usearch
    ? [
        '!node_modules/usearch/package.json',
        '!node_modules/usearch/LICENSE',
        '!node_modules/usearch/javascript/dist/cjs/*.js',
        '!node_modules/usearch/javascript/dist/cjs/package.json',
        `!node_modules/usearch/prebuilds/${spec.usearch}/*.node`,
        '!node_modules/node-gyp-build/*.js',
        '!node_modules/node-gyp-build/package.json',
        '!node_modules/node-gyp-build/LICENSE',
        '!node_modules/bindings/*.js',
        '!node_modules/bindings/package.json',
        '!node_modules/bindings/LICENSE.md',
        '!node_modules/file-uri-to-path/index.js',
        '!node_modules/file-uri-to-path/package.json',
        '!node_modules/file-uri-to-path/LICENSE',
      ].join('\n') + '\n'
    : '';
  return text.replace(re, `$1!node_modules/onnxruntime-node/bin/napi-v6/${spec.ort}/!(libonnxruntime_providers_*)\n${usearch}$3`);
}

/** Entries of a zip file (central directory), with a reader for stored/deflated entries. */
export function readZip(file) {
  const buf = fs.readFileSync(file);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip file`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries = new Map();
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory`);
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    entries.set(name, {
      name,
      size,
      read() {
        const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
        const data = buf.subarray(start, start + csize);
        return method === 0 ? Buffer.from(data) : zlib.inflateRawSync(data);
      },
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { size: buf.length, entries };
}

/** Checks a VSIX for a target; returns a list of problems (empty when fine). */
export function checkVsix(file, target) {
  const spec = TARGETS[target];
  const { entries } = readZip(file);
  const names = [...entries.keys()];
  const problems = [];
  const has = (n) => entries.has(n);
  const E = 'extension/';
  const required = [
    'extension.vsixmanifest',
    `${E}package.json`, `${E}readme.md`, `${E}LICENSE.txt`, `${E}changelog.md`,
    `${E}dist/extension.js`, `${E}dist/inferenceWorker.js`, `${E}dist/metricsWorker.js`, `${E}dist/sidecarWorker.js`, `${E}dist/cli.js`, `${E}dist/webview.js`,
    `${E}media/panel.css`, `${E}schemas/clip-lens.schema.json`,
    `${E}node_modules/onnxruntime-node/package.json`, `${E}node_modules/onnxruntime-node/dist/index.js`,
    `${E}node_modules/onnxruntime-node/bin/napi-v6/${spec.ort}/onnxruntime_binding.node`,
    `${E}node_modules/onnxruntime-common/package.json`, `${E}node_modules/onnxruntime-common/dist/cjs/index.js`,
    `${E}node_modules/sharp/package.json`, `${E}node_modules/sharp/dist/index.cjs`,
    `${E}node_modules/@img/colour/package.json`, `${E}node_modules/detect-libc/package.json`, `${E}node_modules/semver/package.json`,
    ...spec.sharp.map((p) => `${E}node_modules/${p}/package.json`),
    ...(spec.usearch
      ? [`${E}node_modules/usearch/package.json`, `${E}node_modules/usearch/javascript/dist/cjs/usearch.js`, `${E}node_modules/usearch/prebuilds/${spec.usearch}/usearch.node`,
         `${E}node_modules/node-gyp-build/package.json`, `${E}node_modules/bindings/package.json`, `${E}node_modules/file-uri-to-path/package.json`]
      : []),
  ];
  for (const r of required) if (!has(r)) problems.push(`missing ${r}`);
  const sharpNode = `${E}node_modules/${spec.sharp[0]}/lib/`;
  if (!names.some((n) => n.startsWith(sharpNode) && n.endsWith('.node'))) problems.push(`no sharp binary under ${sharpNode}`);
  // files the package.json manifest points at
  const manifest = JSON.parse(entries.get(`${E}package.json`).read().toString('utf8'));
  for (const rel of [manifest.main, manifest.icon, ...(manifest.contributes?.jsonValidation ?? []).map((j) => j.url)]) {
    if (rel && !has(E + path.posix.normalize(rel.replace(/^\.\//, '')))) problems.push(`package.json points at ${rel}, which is not packed`);
  }
  const forbidden = [
    [/^extension\/(src|test|examples|tools|webview|out|\.bench|\.ci|\.git|\.github|\.vscode)\//, 'sources, tests, tooling or build output'],
    [/^extension\/docs\/(?!extension\.md$)/, 'docs other than docs/extension.md (the page diagnostics link to)'],
    [/\.map$/, 'source maps'],
    [/\.vsix$/, 'a VSIX inside the VSIX'],
    [/^extension\/node_modules\/@huggingface\//, '@huggingface/* (bundled into dist by esbuild)'],
    [/^extension\/node_modules\/(typescript|esbuild|@esbuild|tsx|playwright-core|@vscode|@types|@vscode-elements|adm-zip|global-agent)\//, 'devDependencies or install-time helpers'],
    [/^extension\/node_modules\/onnxruntime-node\/(script|lib)\//, "onnxruntime-node's install script or sources"],
    [/\/libonnxruntime_providers_[^/]*$/, 'GPU provider libraries (CPU build only, see docs/packaging.md)'],
  ];
  for (const n of names) {
    for (const [re, what] of forbidden) if (re.test(n)) problems.push(`${n}: ${what} must not be packed`);
    const ort = /^extension\/node_modules\/onnxruntime-node\/bin\/napi-v\d+\/([^/]+\/[^/]+)\//.exec(n);
    if (ort && ort[1] !== spec.ort) problems.push(`${n}: onnxruntime-node binary of another platform`);
    const us = /^extension\/node_modules\/usearch\/prebuilds\/([^/]+)\//.exec(n);
    if (us && us[1] !== spec.usearch) problems.push(`${n}: usearch binary of another platform`);
    if (/^extension\/node_modules\/usearch\/(c|cpp|cmake|include|numkong|build)\//.test(n)) problems.push(`${n}: usearch sources must not be packed`);
    const img = /^extension\/node_modules\/(@img\/sharp-[^/]+)\//.exec(n);
    if (img && !spec.sharp.includes(img[1])) problems.push(`${n}: sharp package of another platform`);
  }
  // every module the packed bundles load must be a built-in, the host's 'vscode', or packed
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  // Specifiers that appear in the bundles but are never loaded from a VSIX, and why.
  const notLoadedFromVsix = new Set([
    // core/runtime.ts: the worker registers tsx only when it runs from the TypeScript sources (worker script
    // *.ts); from dist/ it starts dist/inferenceWorker.js, which is checked to be packed above.
    'tsx/cjs/api',
  ]);
  // core/neighbours.ts loads usearch (an optional dependency with prebuilt binaries for linux and macOS only) in a
  // try/catch: packed where it has a binary for the target; on Windows the extension uses the exact neighbour search
  // (the JavaScript scan, or matrix products on onnxruntime-node) instead of the approximate index.
  if (!spec.usearch) notLoadedFromVsix.add('usearch');
  for (const bundle of ['dist/extension.js', 'dist/inferenceWorker.js', 'dist/metricsWorker.js', 'dist/sidecarWorker.js', 'dist/cli.js']) {
    const e = entries.get(E + bundle);
    if (!e) continue;
    const code = e.read().toString('utf8');
    const specs = new Set([...code.matchAll(/\b(?:require|import)\(\s*["'`]([^"'`$]+)["'`]\s*\)/g)].map((m) => m[1]));
    for (const s of specs) {
      if (s.startsWith('.') || builtins.has(s) || s === 'vscode' || notLoadedFromVsix.has(s)) continue;
      const pkg = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0];
      if (!has(`${E}node_modules/${pkg}/package.json`)) problems.push(`${bundle} loads '${s}', which is not packed`);
    }
  }
  const vsixManifest = entries.get('extension.vsixmanifest').read().toString('utf8');
  if (!vsixManifest.includes(`TargetPlatform="${target}"`)) problems.push(`extension.vsixmanifest does not say TargetPlatform="${target}"`);
  return problems;
}

function copyPackageFiles(stage, ignoreText) {
  // the top-level files and folders the ignore file lets through, plus what npm ci needs
  const tops = new Set(['package.json', 'package-lock.json', '.npmrc', 'README.md']);
  for (const line of ignoreText.split(/\r?\n/)) {
    const m = /^!([^*/#\s][^/]*)/.exec(line.trim());
    if (m && m[1] !== 'node_modules') tops.add(m[1]);
  }
  for (const t of tops) {
    const src = path.join(ROOT, t);
    if (fs.existsSync(src)) fs.cpSync(src, path.join(stage, t), { recursive: true });
  }
  // dist/ is built already (in the repository, with the devDependencies the staging copy does not have)
  const pkgFile = path.join(stage, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  if (pkg.scripts?.['vscode:prepublish']) {
    delete pkg.scripts['vscode:prepublish'];
    fs.writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const spec = TARGETS[o.target];
  const host = `${process.platform}-${process.arch}`;
  const vsce = path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
  if (!fs.existsSync(vsce)) throw new Error('node_modules/@vscode/vsce is missing: run npm ci first');
  const ortPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8'));
  // onnxruntime-node ships all its platforms in one npm package: the target's folder must exist in it
  if (!fs.existsSync(path.join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', ...spec.ort.split('/')))) {
    throw new Error(`onnxruntime-node ${ortPkg.version} ships no ${spec.ort} binary, so there is no ${o.target} VSIX (see docs/packaging.md)`);
  }
  if (o.build) {
    log('node esbuild.mjs');
    run(process.execPath, ['esbuild.mjs'], ROOT);
  }
  for (const f of ['dist/extension.js', 'dist/inferenceWorker.js', 'dist/metricsWorker.js', 'dist/sidecarWorker.js', 'dist/cli.js', 'dist/webview.js', 'LICENSE']) {
    if (!fs.existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing`);
  }
  const ignoreText = ignoreFileFor(fs.readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8'), o.target);
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  const inPlace = o.target === host && !o.stage;
  let cwd = ROOT;
  let stage;
  if (!inPlace) {
    stage = path.join(ROOT, 'out', 'vsix-stage', o.target);
    log(`staging into ${path.relative(ROOT, stage)}`);
    fs.rmSync(stage, { recursive: true, force: true });
    fs.mkdirSync(stage, { recursive: true });
    copyPackageFiles(stage, ignoreText);
    const npmArgs = ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', `--os=${spec.os}`, `--cpu=${spec.cpu}`];
    if (spec.libc) npmArgs.push(`--libc=${spec.libc}`);
    log(`npm ${npmArgs.join(' ')}`);
    run('npm', npmArgs, stage, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
    for (const p of spec.sharp) {
      if (!fs.existsSync(path.join(stage, 'node_modules', p, 'package.json'))) throw new Error(`npm did not install ${p} for ${o.target}`);
    }
    cwd = stage;
  } else {
    for (const p of spec.sharp) {
      if (!fs.existsSync(path.join(ROOT, 'node_modules', p, 'package.json'))) throw new Error(`node_modules/${p} is missing (npm ci on this machine installs it)`);
    }
  }
  const ignoreFile = path.join(ROOT, 'out', `.vscodeignore-${o.target}`);
  fs.mkdirSync(path.dirname(ignoreFile), { recursive: true });
  fs.writeFileSync(ignoreFile, ignoreText);
  log(`vsce package --target ${o.target}${inPlace ? ' (in place)' : ''}`);
  fs.rmSync(o.out, { force: true });
  run(process.execPath, [vsce, 'package', '--target', o.target, '--allow-missing-repository', '--no-rewrite-relative-links', '--ignoreFile', ignoreFile, '-o', o.out], cwd);
  if (stage && !o.keepStage) fs.rmSync(stage, { recursive: true, force: true });

  const problems = checkVsix(o.out, o.target);
  const { size, entries } = readZip(o.out);
  const unpacked = [...entries.values()].reduce((s, e) => s + e.size, 0);
  log(`${path.relative(ROOT, o.out)}: ${(size / 1048576).toFixed(2)} MiB (${entries.size} files, ${(unpacked / 1048576).toFixed(1)} MiB unpacked)`);
  if (problems.length > 0) {
    for (const p of problems.slice(0, 50)) console.error(`  VSIX check: ${p}`);
    if (problems.length > 50) console.error(`  ... and ${problems.length - 50} more`);
    process.exit(1);
  }
  log(`VSIX contents checked for ${o.target}: OK`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`package-vsix: ${e.message}`);
    process.exit(1);
  });
}
