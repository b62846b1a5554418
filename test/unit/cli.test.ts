/**
 * The CLI in-process (src/cli/main.ts): the command table (--help on every subcommand, unknown options with the
 * nearest one, every option still there), eval honouring `.clip-lens.json` like check, the order of checks (an empty
 * folder or an invalid config fails on one line before any model is touched: a local server stands in for the model
 * host and counts requests), and one-line fatal errors with stack traces only with --debug.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { COMMANDS } from '../../src/cli/commands';
import { describeError, evaluationProgressLine, UsageError, type CliIO } from '../../src/cli/io';
import { ClipLensError } from '../../src/core/errors';
import type { EvalReport } from '../../src/core/report';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

function captureIO(): CliIO & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', isTTY: false, out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIO();
  const code = await main(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

function tmp(t: { after: (f: () => void) => void }, prefix = 'clip-lens-cli-'): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function smallDataset(dir: string, perClass = 3): void {
  for (const cls of ['red_circle', 'blue_square']) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (const f of fs.readdirSync(path.join(EXAMPLE, cls)).sort().slice(0, perClass)) fs.copyFileSync(path.join(EXAMPLE, cls, f), path.join(dir, cls, f));
  }
}

/** A stand-in model host that refuses everything and counts what it was asked; CLIP_LENS_CACHE an empty folder. */
async function modelHost(t: { after: (f: () => void | Promise<void>) => void }): Promise<{ requests: string[]; cache: string }> {
  const requests: string[] = [];
  const srv = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const cache = tmp(t, 'clip-lens-cli-cache-');
  const saved = { mirror: process.env.CLIP_LENS_MODEL_MIRROR, cache: process.env.CLIP_LENS_CACHE, https: process.env.HTTPS_PROXY, http: process.env.HTTP_PROXY };
  process.env.CLIP_LENS_MODEL_MIRROR = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  process.env.CLIP_LENS_CACHE = cache;
  delete process.env.HTTPS_PROXY;
  delete process.env.HTTP_PROXY;
  t.after(async () => {
    for (const [k, v] of [['CLIP_LENS_MODEL_MIRROR', saved.mirror], ['CLIP_LENS_CACHE', saved.cache], ['HTTPS_PROXY', saved.https], ['HTTP_PROXY', saved.http]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await new Promise((r) => srv.close(r));
  });
  return { requests, cache };
}

function oneLine(s: string): void {
  assert.equal(s.split('\n').length, 2, `one line expected: ${JSON.stringify(s)}`);
  assert.ok(s.endsWith('\n'));
  assert.doesNotMatch(s, /\n\s+at /, 'no stack trace');
}

// ---------------------------------------------------------------------------------------------------------------------
// The command table

test('--help works on every subcommand (and every subcommand of a group); the top-level help lists them all', async () => {
  const names = COMMANDS.map((c) => c.name);
  assert.deepEqual([...names].sort(), ['baseline', 'check', 'compare', 'embed', 'eval', 'hook', 'label-issues', 'metrics', 'model', 'probe', 'search', 'tokenize']);
  const top = await run(['--help']);
  assert.equal(top.code, 0);
  for (const spec of COMMANDS) {
    assert.match(top.stdout, new RegExp(`^  clip-lens ${spec.name} `, 'm'), `${spec.name} in the top-level help`);
    for (const flag of ['--help', '-h']) {
      const r = await run([spec.name, flag]);
      assert.equal(r.code, 0, `${spec.name} ${flag}: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`usage: clip-lens ${spec.name}`), r.stdout);
    }
    const viaHelp = await run(['help', spec.name]);
    assert.equal(viaHelp.code, 0);
    for (const sub of spec.subcommands ?? []) {
      const r = await run([spec.name, sub.name, '--help']);
      assert.equal(r.code, 0, `${spec.name} ${sub.name} --help: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`usage: clip-lens ${spec.name} ${sub.name}`), r.stdout);
    }
  }
  const evalHelp = await run(['eval', '--help']);
  assert.match(evalHelp.stdout, /^ {2}--top-k K\s+top predictions kept per sample/m);
});

test('every option the CLI had is still declared', () => {
  const declared = (name: string, sub?: string) => {
    const spec = COMMANDS.find((c) => c.name === name);
    const s = sub ? spec?.subcommands?.find((x) => x.name === sub) : spec;
    return Object.keys(s?.options ?? {}).sort();
  };
  const had: [string, string | undefined, string[]][] = [
    ['eval', undefined, ['model', 'labels', 'top-k', 'templates', 'json', 'probabilities', 'cache', 'no-cache', 'batch', 'threads', 'quantized', 'image-column', 'label-column', 'split-column', 'predictor']],
    ['embed', undefined, ['model', 'quantized', 'threads']],
    ['tokenize', undefined, ['model']],
    ['metrics', undefined, ['input', 'k']],
    ['label-issues', undefined, ['input', 'rank-by', 'knn']],
    ['probe', undefined, ['input', 'folds', 'c']],
    ['check', undefined, ['staged', 'model', 'format', 'output', 'cache', 'quantized', 'threads', 'batch']],
    ['model', 'list', ['cache']],
    ['model', 'download', ['cache', 'quantized', 'force', 'mirror', 'proxy']],
    ['model', 'verify', ['cache', 'quantized']],
  ];
  for (const [name, sub, options] of had) {
    const d = declared(name, sub);
    for (const o of options) assert.ok(d.includes(o), `${name}${sub ? ` ${sub}` : ''} --${o}`);
  }
});

test('an unknown option is a one-line error naming the nearest option, on every subcommand', async () => {
  const r = await run(['eval', 'some/folder', '--topk', '5']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "clip-lens: unknown option '--topk' for eval; did you mean '--top-k'?\n");
  const leaves: string[][] = COMMANDS.flatMap((c) => (c.subcommands ? c.subcommands.map((s) => [c.name, s.name]) : [[c.name]]));
  for (const argv of leaves) {
    const bad = await run([...argv, '--no-such-option']);
    assert.equal(bad.code, 2, argv.join(' '));
    oneLine(bad.stderr);
    assert.match(bad.stderr, new RegExp(`unknown option '--no-such-option' for ${argv.join(' ')}`), bad.stderr);
  }
  assert.match((await run(['check', '--stagd'])).stderr, /did you mean '--staged'\?/);
  assert.match((await run(['evl'])).stderr, /unknown command 'evl'; did you mean 'eval'\?/);
  assert.match((await run(['eval', 'x', '--top-k', 'many'])).stderr, /^clip-lens: --top-k expects an integer >= 1, got 'many'\n$/);
  assert.match((await run(['eval', 'x', '--model'])).stderr, /^clip-lens: option '--model' expects a value/);
  assert.match((await run(['eval', 'x', '--quantized=yes'])).stderr, /^clip-lens: option '--quantized' takes no value/);
  const equals = await run(['metrics', '--input=no/such/file.json', '--k=7']);
  assert.equal(equals.code, 2);
  assert.match(equals.stderr, /no\/such\/file\.json/);
});

// ---------------------------------------------------------------------------------------------------------------------
// One plan: eval honours .clip-lens.json; order of checks

test('eval honours "model" of .clip-lens.json (as check does) and --model wins over it; nothing is downloaded', async (t) => {
  const host = await modelHost(t);
  const dir = tmp(t);
  smallDataset(dir);
  const rel = path.relative(dir, MODEL);
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ model: rel, topK: 2 }));
  const out = path.join(dir, '..', `${path.basename(dir)}-report.json`);
  t.after(() => fs.rmSync(out, { force: true }));
  const r = await run(['eval', dir, '--no-cache', '--json', out]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport;
  assert.equal(report.model.id, rel);
  assert.equal(report.model.dir, MODEL);
  assert.equal(report.topK, 2, 'the config\'s topK too');
  assert.deepEqual(host.requests, []);

  // The option wins: the config names a folder that does not exist.
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), JSON.stringify({ model: './no-such-model' }));
  const withOption = await run(['eval', dir, '--no-cache', '--model', MODEL, '--top-k', '3', '--json', out]);
  assert.equal(withOption.code, 0, withOption.stderr);
  assert.equal((JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport).topK, 3);
  const fromConfig = await run(['eval', dir, '--no-cache']);
  assert.equal(fromConfig.code, 2);
  oneLine(fromConfig.stderr);
  assert.match(fromConfig.stderr, /no-such-model/);
  assert.deepEqual(host.requests, []);
});

test('an empty folder or an invalid config is a one-line error before any model is touched (eval, check)', async (t) => {
  const host = await modelHost(t);
  const staging = path.join(host.cache, 'staging');

  // Control: a valid dataset with the default (registry) model does go to the model host.
  const valid = tmp(t);
  smallDataset(valid);
  const control = await run(['eval', valid, '--no-cache']);
  assert.equal(control.code, 2);
  oneLine(control.stderr);
  assert.ok(host.requests.length > 0, 'the control run asks the model host');
  host.requests.length = 0;
  fs.rmSync(host.cache, { recursive: true, force: true });
  fs.mkdirSync(host.cache);

  const empty = tmp(t);
  const r1 = await run(['eval', empty]);
  assert.equal(r1.code, 2);
  oneLine(r1.stderr);
  assert.match(r1.stderr, new RegExp(`^clip-lens: ${empty}: no class folders found`));

  // Invalid config (the model key is fine, topK is not): the file and line, no download.
  const bad = tmp(t);
  smallDataset(bad);
  fs.writeFileSync(path.join(bad, '.clip-lens.json'), '{\n  "model": "clip-vit-base-patch32",\n  "topK": "five"\n}\n');
  const r2 = await run(['eval', bad]);
  assert.equal(r2.code, 2);
  oneLine(r2.stderr);
  assert.match(r2.stderr, new RegExp(`^clip-lens: ${path.join(bad, '.clip-lens.json')}:3:\\d+: topK: `));
  // A syntax error (a half-typed file) too.
  fs.writeFileSync(path.join(bad, '.clip-lens.json'), '{\n  "model": "clip-vit-base-patch32",\n  "gate": {\n');
  const r3 = await run(['eval', bad]);
  assert.equal(r3.code, 2);
  oneLine(r3.stderr);
  assert.match(r3.stderr, /\.clip-lens\.json:\d+:\d+: /);
  // check (and so the pre-commit hook) in the same order.
  fs.writeFileSync(path.join(bad, '.clip-lens.json'), '{\n  "gate": { "minTop1Accuracy": 0.5 },\n  "topK": 0\n}\n');
  const io = captureIO();
  assert.equal(await main(['check', bad, '--format', 'json'], io), 2);
  assert.match(JSON.parse(io.stdout).datasets[0].error.message, /\.clip-lens\.json:3:\d+: topK: /);
  fs.writeFileSync(path.join(empty, '.clip-lens.json'), '{ "gate": { "minTop1Accuracy": 0.5 } }');
  const io2 = captureIO();
  assert.equal(await main(['check', empty, '--format', 'json'], io2), 2);
  assert.match(JSON.parse(io2.stdout).datasets[0].error.message, /no class folders found/);

  assert.deepEqual(host.requests, [], 'no request to the model host');
  assert.equal(fs.existsSync(staging), false, 'no download started');
});

test('embed: one JSON line per image in input order; an unreadable image is a line on stderr and exit 2', async (t) => {
  const dir = tmp(t);
  smallDataset(dir, 2);
  const images = ['red_circle', 'blue_square'].flatMap((c) => fs.readdirSync(path.join(dir, c)).sort().map((f) => path.join(dir, c, f)));
  const inputs = [images[2] as string, images[0] as string, path.join(dir, 'missing.png'), images[2] as string];
  const cache = tmp(t, 'clip-lens-cli-cache-');
  const r = await run(['embed', '--model', MODEL, '--cache', cache, ...inputs]);
  assert.equal(r.code, 2);
  oneLine(r.stderr);
  assert.match(r.stderr, /missing\.png: cannot read/);
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; embedding: number[] });
  assert.deepEqual(rows.map((x) => x.path), [inputs[0], inputs[1], inputs[3]]);
  assert.deepEqual(Object.keys(rows[0] as object), ['path', 'embedding']);
  assert.deepEqual(rows[2]?.embedding, rows[0]?.embedding);
  // Second run: from the cache, same lines.
  const again = await run(['embed', '--model', MODEL, '--cache', cache, ...inputs]);
  assert.equal(again.stdout, r.stdout);
  // A cache that cannot be opened: one warning line, the embeddings all the same.
  const blocker = path.join(dir, 'cache-is-a-file');
  fs.writeFileSync(blocker, 'x');
  const noCache = await run(['embed', '--model', MODEL, '--cache', blocker, inputs[0] as string]);
  assert.equal(noCache.code, 0, noCache.stderr);
  oneLine(noCache.stderr);
  assert.match(noCache.stderr, /^clip-lens: warning: .*cache-is-a-file: cache disabled: /);
  assert.equal(noCache.stdout, r.stdout.split('\n')[0] + '\n');
});

// ---------------------------------------------------------------------------------------------------------------------
// One line per fatal error

test('filesystem errors are one line naming the file (--json, --output, hook); the stack only with --debug', async (t) => {
  const dir = tmp(t);
  smallDataset(dir);
  const blocker = path.join(dir, 'not-a-folder');
  fs.writeFileSync(blocker, 'x');
  const r = await run(['eval', dir, '--model', MODEL, '--no-cache', '--json', path.join(blocker, 'report.json')]);
  assert.equal(r.code, 2);
  oneLine(r.stderr);
  assert.match(r.stderr, new RegExp(`^clip-lens: ${path.join(blocker, 'report.json')}: cannot write this file: .*\\(E[A-Z]+\\)\\n$`));
  assert.doesNotMatch(r.stderr, /internal error/);

  fs.writeFileSync(path.join(dir, '.clip-lens.json'), '{ "gate": {} }');
  const check = await run(['check', dir, '--format', 'json', '--output', path.join(blocker, 'gate.json')]);
  assert.equal(check.code, 2);
  oneLine(check.stderr);
  assert.match(check.stderr, /gate\.json: cannot write this file/);

  // A hooks "folder" that is a file.
  const repo = tmp(t, 'clip-lens-cli-repo-');
  execFileSync('git', ['init', '-q'], { cwd: repo });
  fs.writeFileSync(path.join(repo, 'hooks-file'), 'x');
  execFileSync('git', ['config', 'core.hooksPath', 'hooks-file'], { cwd: repo });
  const cwd = process.cwd();
  process.chdir(repo);
  try {
    const hook = await run(['hook', 'install']);
    assert.equal(hook.code, 2);
    oneLine(hook.stderr);
    assert.match(hook.stderr, /hooks-file/);
    assert.doesNotMatch(hook.stderr, /internal error/);
    const debug = await run(['hook', 'install', '--debug']);
    assert.equal(debug.code, 2);
    assert.equal(debug.stderr.split('\n')[0], hook.stderr.trimEnd());
    assert.match(debug.stderr, /\n\s+at /, 'the stack with --debug');
  } finally {
    process.chdir(cwd);
  }
});

test('describeError: ClipLensError and UsageError as they are, system errors by path and cause, others as internal', () => {
  assert.deepEqual(describeError(new ClipLensError('x', 'bad thing', { file: 'a.csv', line: 3 })), { line: 'a.csv:3: bad thing', internal: false });
  assert.deepEqual(describeError(new UsageError('eval expects one dataset, got 0')), { line: 'eval expects one dataset, got 0', internal: false });
  let sys: unknown;
  try {
    fs.readFileSync(path.join(os.tmpdir(), 'clip-lens-no-such-dir', 'seg-1.bin'));
  } catch (e) {
    sys = e;
  }
  assert.deepEqual(describeError(sys), { line: `${path.join(os.tmpdir(), 'clip-lens-no-such-dir', 'seg-1.bin')}: cannot open: no such file or directory (ENOENT)`, internal: false });
  const internal = describeError(new TypeError('x is undefined\n    at somewhere'));
  assert.equal(internal.internal, true);
  assert.equal(internal.line, 'internal error: x is undefined (run with --debug for the stack trace)');
});

test('evaluationProgressLine: one model as before; two models on one line, each with its count or phase', async () => {
  const images = (done: number, total: number, fromCache = 0) => ({ phase: 'images' as const, done, total, rate: 2.5, fromCache });
  assert.equal(evaluationProgressLine([images(3, 12)], [], false), 'Evaluating [######..................] 3/12 images, 2.5/s');
  assert.equal(evaluationProgressLine([images(3, 12)], [], true), 'Reading embeddings [######..................] 3/12');
  assert.equal(evaluationProgressLine([{ phase: 'prompts', done: 0, total: 4, rate: 0, fromCache: 0 }], [], false), 'Embedding class prompts...');
  assert.equal(evaluationProgressLine([images(6, 12), undefined], ['a', 'b'], false), 'Evaluating a 6/12 · b starting images [###.........]');
  assert.equal(
    evaluationProgressLine([images(12, 12, 4), { phase: 'prompts', done: 0, total: 12, rate: 0, fromCache: 0 }], ['a', 'b'], false),
    'Evaluating a 12/12 (4 cached) · b prompts images [######......]',
  );
  assert.equal(evaluationProgressLine([undefined], [], false), 'Starting...');
});
