import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError, ClipLensError } from '../../src/core/errors';
import { validateModelDir } from '../../src/core/modelDir';
import {
  MANIFEST_FILE,
  PINS_FILE,
  checkCachedModel,
  defaultCacheDir,
  downloadModel,
  ensureModel,
  proxyFor,
  readPins,
  type DownloadOptions,
  type DownloadProgress,
  type ModelManifest,
} from '../../src/core/modelDownload';
import type { RegistryEntry, RegistryFile } from '../../src/core/modelRegistry';
import { formatBytes, modelCommand, progressLine } from '../../src/cli/modelCommand';
import { varint } from './onnxWriter';

// ---- A synthetic model (small, valid-looking files) and a Hugging Face-like server for it ----

const REPO = 'test/tiny-clip';
const COMMIT = 'c0ffee0000000000000000000000000000c0ffee';

/** A buffer that passes the cheap ONNX check: ir_version, producer name, a graph field of `graphBytes` random bytes. */
function fakeOnnx(graphBytes: number): Buffer {
  const name = Buffer.from('test');
  return Buffer.concat([Buffer.from([0x08, 0x08, 0x12, name.length]), name, Buffer.from([0x3a]), varint(graphBytes), randomBytes(graphBytes)]);
}

const MODEL_FILES: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ model_type: 'clip', logit_scale: 100 })),
  'preprocessor_config.json': Buffer.from(
    JSON.stringify({ size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 }, do_center_crop: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] }),
  ),
  'tokenizer.json': Buffer.from(JSON.stringify({ model: { type: 'BPE', vocab: { a: 0, b: 1 }, merges: ['a b'] } })),
  'onnx/vision_model.onnx': fakeOnnx(300_000),
  'onnx/text_model.onnx': fakeOnnx(120_000),
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A registry entry for the synthetic model; `known` decides which files have their SHA-256 in the registry. */
function makeEntry(over: Partial<RegistryEntry> = {}, known: (p: string) => boolean = () => true, id = `test-${Math.random().toString(36).slice(2, 8)}`): RegistryEntry {
  const files: RegistryFile[] = Object.keys(MODEL_FILES).map((p) => ({ path: p, size: null, sha256: known(p) ? sha(MODEL_FILES[p]) : null }));
  files.splice(3, 0, { path: 'tokenizer_config.json', size: null, sha256: null, optional: true }); // the server lacks it
  return { id, family: 'clip', repo: REPO, revision: COMMIT, quantized: false, baseId: id, files, approxBytes: 500_000, license: 'test', description: 'test', isDefault: false, ...over };
}

interface LogLine {
  path: string;
  range: string | undefined;
  status: number;
}

/** What a hook may do with a request; return true when it answered. */
type Hook = (info: { file: string | null; path: string; range: string | undefined; nth: number }, req: http.IncomingMessage, res: http.ServerResponse) => boolean;

class ModelServer {
  readonly log: LogLine[] = [];
  hook: Hook | null = null;
  redirectLfs = false;
  linkedEtag: (file: string) => string = (f) => sha(MODEL_FILES[f]);
  private readonly counts = new Map<string, number>();
  private readonly sockets = new Set<net.Socket>();
  constructor(readonly server: http.Server | https.Server) {
    server.on('request', (req, res) => this.handle(req, res));
    server.on('connection', (s) => this.track(s));
    server.on('secureConnection', (s) => this.track(s));
  }
  private track(s: net.Socket) {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const port = (this.server.address() as net.AddressInfo).port;
    return `${this.server instanceof https.Server ? 'https' : 'http'}://127.0.0.1:${port}`;
  }
  requestsFor(file: string): LogLine[] {
    return this.log.filter((l) => l.path.endsWith(`/${file}`) || l.path === `/cdn/${file}`);
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x');
    const range = req.headers.range;
    const logLine: LogLine = { path: decodeURIComponent(url.pathname), range, status: 0 };
    this.log.push(logLine);
    const origWriteHead = res.writeHead.bind(res);
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      logLine.status = status;
      return (origWriteHead as (...a: unknown[]) => http.ServerResponse)(status, ...rest);
    }) as typeof res.writeHead;

    let file: string | null = null;
    // Any repository serves the synthetic model (so registry ids can be fetched from this mirror too).
    const m = /^\/[^/]+\/[^/]+\/resolve\/([^/]+)\/(.+)$/.exec(logLine.path);
    const cdn = /^\/cdn\/(.+)$/.exec(logLine.path);
    if (m && (m[1] === COMMIT || m[1] === 'main')) file = m[2];
    else if (cdn) file = cdn[1];
    const nth = (this.counts.get(logLine.path) ?? 0) + 1;
    this.counts.set(logLine.path, nth);
    if (this.hook?.({ file, path: logLine.path, range, nth }, req, res)) return;
    if (!file || !(file in MODEL_FILES)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Entry not found');
      return;
    }
    const data = MODEL_FILES[file];
    const hfHeaders: Record<string, string> = { 'x-repo-commit': COMMIT };
    if (file.endsWith('.onnx')) {
      hfHeaders['x-linked-etag'] = `"${this.linkedEtag(file)}"`;
      hfHeaders['x-linked-size'] = String(data.length);
      if (this.redirectLfs && m) {
        res.writeHead(302, { ...hfHeaders, location: `/cdn/${file}` });
        res.end();
        return;
      }
    }
    serveBytes(req, res, data, cdn ? {} : hfHeaders);
  }
}

/** Answer with `data`, honouring `Range: bytes=N-` with a 206. */
function serveBytes(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, headers: Record<string, string> = {}, ignoreRange = false) {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && !ignoreRange) {
    const start = Number(m[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` });
      res.end();
      return;
    }
    res.writeHead(206, { ...headers, 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
    res.end(data.subarray(start));
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': data.length });
  res.end(data);
}

const servers: ModelServer[] = [];
async function startServer(): Promise<{ srv: ModelServer; baseUrl: string }> {
  const srv = new ModelServer(http.createServer());
  servers.push(srv);
  return { srv, baseUrl: await srv.listen() };
}
after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
});

function tmpCache(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-cache-'));
}

/** Every file under `dir`, relative, POSIX. */
function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)).split(path.sep).join('/'));
  }
  return out.sort();
}

function assertModelFiles(dir: string) {
  for (const [rel, data] of Object.entries(MODEL_FILES)) assert.ok(fs.readFileSync(path.join(dir, rel)).equals(data), `${rel} differs`);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected the promise to reject');
}

const opts = (cacheDir: string, baseUrl: string, more: Partial<DownloadOptions> = {}): DownloadOptions => ({ cacheDir, baseUrl, timeoutMs: 5000, ...more });

// ---- Downloads ----

test('full download from a Hugging Face-like server: redirects, pinned revision, progress, manifest, atomic move', async () => {
  const { srv, baseUrl } = await startServer();
  srv.redirectLfs = true;
  const cache = tmpCache();
  // revision 'main', nothing known in advance except the vision graph: the rest is recorded on first download.
  const entry = makeEntry({ revision: 'main' }, (p) => p === 'onnx/vision_model.onnx');
  const progress: DownloadProgress[] = [];
  const dir = await downloadModel(entry, opts(cache, baseUrl, { onProgress: (p) => progress.push(p) }));

  assert.equal(dir, path.join(cache, 'models', entry.id));
  assertModelFiles(dir);
  assert.equal(fs.existsSync(path.join(dir, 'tokenizer_config.json')), false, 'optional file the server lacks is skipped');
  assert.deepEqual((await validateModelDir(dir)).problems, []);
  assert.deepEqual(walk(path.join(cache, 'staging')), [], 'nothing left in staging (no .part, no lock)');

  // The first request asked for 'main'; the server's X-Repo-Commit pinned every later request to the commit.
  const resolves = srv.log.filter((l) => l.path.includes('/resolve/'));
  assert.ok(resolves[0].path.includes('/resolve/main/'), resolves[0].path);
  assert.ok(resolves.slice(1).every((l) => l.path.includes(`/resolve/${COMMIT}/`)));
  assert.ok(srv.log.some((l) => l.path === '/cdn/onnx/vision_model.onnx' && l.status === 200), 'redirect to the CDN was followed');

  const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as ModelManifest;
  assert.equal(manifest.revision, COMMIT);
  assert.deepEqual(
    manifest.files.map((f) => [f.path, f.size, f.sha256]),
    Object.entries(MODEL_FILES).map(([p, d]) => [p, d.length, sha(d)]),
  );
  const pins = await readPins(cache);
  assert.equal(pins.models[entry.id].revision, COMMIT);
  assert.equal(pins.models[entry.id].files['tokenizer.json'].sha256, sha(MODEL_FILES['tokenizer.json']));

  // Progress: per file, bytes never go down, the last event of each file has bytes === totalBytes.
  const vision = progress.filter((p) => p.file === 'onnx/vision_model.onnx');
  assert.ok(vision.length >= 2);
  for (let i = 1; i < vision.length; i++) assert.ok(vision[i].bytes >= vision[i - 1].bytes);
  assert.deepEqual([vision.at(-1)!.bytes, vision.at(-1)!.totalBytes], [MODEL_FILES['onnx/vision_model.onnx'].length, MODEL_FILES['onnx/vision_model.onnx'].length]);
  assert.ok(progress.every((p) => Number.isFinite(p.bytesPerSecond) && p.bytesPerSecond >= 0));
  assert.ok(vision.at(-1)!.bytesPerSecond > 0);

  // A second download of the same entry uses the pinned commit from the first request on, and replaces the directory.
  srv.log.length = 0;
  fs.writeFileSync(path.join(dir, 'stale-marker'), 'x');
  assert.equal(await downloadModel(entry, opts(cache, baseUrl)), dir);
  assert.ok(srv.log.filter((l) => l.path.includes('/resolve/')).every((l) => l.path.includes(`/resolve/${COMMIT}/`)));
  assert.equal(fs.existsSync(path.join(dir, 'stale-marker')), false);
  assert.deepEqual(fs.readdirSync(path.join(cache, 'models')), [entry.id], 'no .old-* directory left');
});

test('a connection dropped mid-file is resumed with a Range request (206)', async () => {
  const { srv, baseUrl } = await startServer();
  const cache = tmpCache();
  const data = MODEL_FILES['onnx/vision_model.onnx'];
  srv.hook = (info, _req, res) => {
    if (info.file !== 'onnx/vision_model.onnx' || info.nth !== 1) return false;
    res.writeHead(200, { 'content-length': data.length });
    // Give the client time to store what it received, then drop the connection.
    res.write(data.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 100));
    return true;
  };
  const entry = makeEntry();
  const dir = await downloadModel(entry, opts(cache, baseUrl));
  assertModelFiles(dir);
  const reqs = srv.requestsFor('onnx/vision_model.onnx');
  assert.equal(reqs.length, 2);
  assert.equal(reqs[0].range, undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(reqs[1].range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 100_000, `resumed at ${reqs[1].range}`);
  assert.equal(reqs[1].status, 206);
});

test('a server that answers a Range request with 200 restarts the file (no duplicated bytes)', async () => {
  const { srv, baseUrl } = await startServer();
  const data = MODEL_FILES['onnx/text_model.onnx'];
  srv.hook = (info, req, res) => {
    if (info.file !== 'onnx/text_model.onnx') return false;
    if (info.nth === 1) {
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, 50_000), () => setTimeout(() => res.socket?.destroy(), 100));
    } else serveBytes(req, res, data, {}, true);
    return true;
  };
  const dir = await downloadModel(makeEntry(), opts(tmpCache(), baseUrl));
  assertModelFiles(dir);
  const reqs = srv.requestsFor('onnx/text_model.onnx');
  assert.match(reqs[1].range ?? '', /^bytes=\d+-$/);
  assert.equal(reqs[1].status, 200);
});

test('cancelling keeps the .part in staging (never in the final place); the next run resumes it', async () => {
  const { srv, baseUrl } = await startServer();
  const cache = tmpCache();
  const data = MODEL_FILES['onnx/vision_model.onnx'];
  srv.hook = (info, req, res) => {
    if (info.file !== 'onnx/vision_model.onnx' || req.headers.range) return false;
    // Trickle the file so the client can cancel in the middle.
    res.writeHead(200, { 'content-length': data.length });
    let sent = 0;
    const timer = setInterval(() => {
      if (res.destroyed || sent >= data.length) return clearInterval(timer);
      res.write(data.subarray(sent, sent + 16_384));
      sent += 16_384;
    }, 10);
    res.on('close', () => clearInterval(timer));
    return true;
  };
  const entry = makeEntry();
  const controller = new AbortController();
  const err = await rejection(
    downloadModel(entry, opts(cache, baseUrl, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.file === 'onnx/vision_model.onnx' && p.bytes > 60_000) controller.abort();
      },
    })),
  );
  assert.ok(err instanceof CancelledError, String(err));
  assert.equal(fs.existsSync(path.join(cache, 'models', entry.id)), false);
  const part = path.join(cache, 'staging', entry.id, 'onnx', 'vision_model.onnx.part');
  const partSize = fs.statSync(part).size;
  assert.ok(partSize > 0 && partSize < data.length, `part has ${partSize} bytes`);
  assert.ok(fs.readFileSync(part).equals(data.subarray(0, partSize)), 'the part is a prefix of the file');
  assert.equal(fs.existsSync(path.join(cache, 'staging', `${entry.id}.lock`)), false, 'lock released');

  srv.log.length = 0;
  const dir = await downloadModel(entry, opts(cache, baseUrl));
  assertModelFiles(dir);
  assert.deepEqual(srv.requestsFor('onnx/vision_model.onnx').map((l) => [l.range, l.status]), [[`bytes=${partSize}-`, 206]]);
  assert.deepEqual(srv.requestsFor('config.json'), [], 'files finished before the cancel are reused from staging');
});

test('a complete .part left by a crash before the rename (416 to its Range) is fetched again', async () => {
  const { srv, baseUrl } = await startServer();
  const cache = tmpCache();
  const entry = makeEntry();
  const part = path.join(cache, 'staging', entry.id, 'onnx', 'text_model.onnx.part');
  fs.mkdirSync(path.dirname(part), { recursive: true });
  fs.writeFileSync(part, MODEL_FILES['onnx/text_model.onnx']);
  assertModelFiles(await downloadModel(entry, opts(cache, baseUrl)));
  assert.deepEqual(srv.requestsFor('onnx/text_model.onnx').map((l) => [l.range, l.status]), [
    [`bytes=${MODEL_FILES['onnx/text_model.onnx'].length}-`, 416],
    [undefined, 200],
  ]);
});

test('an already-aborted signal rejects at once with CancelledError', async () => {
  const { srv, baseUrl } = await startServer();
  const err = await rejection(downloadModel(makeEntry(), opts(tmpCache(), baseUrl, { signal: AbortSignal.abort() })));
  assert.ok(err instanceof CancelledError);
  assert.equal(srv.log.length, 0);
});

test('a wrong checksum is refused and nothing is left behind', async () => {
  const { baseUrl } = await startServer();
  const cache = tmpCache();
  const entry = makeEntry();
  const text = entry.files.find((f) => f.path === 'onnx/text_model.onnx')!;
  text.sha256 = 'ab'.repeat(32);
  const err = await rejection(downloadModel(entry, opts(cache, baseUrl)));
  assert.ok(err instanceof ClipLensError);
  assert.equal(err.code, 'model-checksum-mismatch');
  assert.equal(
    err.message,
    `${baseUrl}/${REPO}/resolve/${COMMIT}/onnx/text_model.onnx: onnx/text_model.onnx has SHA-256 ${sha(MODEL_FILES['onnx/text_model.onnx'])}, expected ${'ab'.repeat(32)}; the download was refused and discarded`,
  );
  assert.deepEqual(walk(cache), [], 'no model, no staging, no .part, no lock, no pins');
});

test("a server-vouched checksum (X-Linked-Etag) that the bytes don't match is refused too", async () => {
  const { srv, baseUrl } = await startServer();
  srv.linkedEtag = () => 'cd'.repeat(32);
  const cache = tmpCache();
  const err = await rejection(downloadModel(makeEntry({}, () => false), opts(cache, baseUrl)));
  assert.ok(err instanceof ClipLensError && err.code === 'model-checksum-mismatch', String(err));
  assert.match(err.message, /expected cdcdcd/);
  assert.deepEqual(walk(cache), []);
});

test('files that do not form a usable model are refused after download', async () => {
  const { srv, baseUrl } = await startServer();
  srv.hook = (info, req, res) => {
    if (info.file !== 'preprocessor_config.json') return false;
    // A resize that ignores the aspect ratio: refused by the loader, so by the download check too (one set of rules).
    serveBytes(req, res, Buffer.from('{"size": {"height": 224, "width": 224}}'));
    return true;
  };
  const cache = tmpCache();
  const err = await rejection(downloadModel(makeEntry({}, (p) => p !== 'preprocessor_config.json'), opts(cache, baseUrl)));
  assert.ok(err instanceof ClipLensError && err.code === 'model-download-invalid', String(err));
  assert.match(err.message, /preprocessor_config\.json: "size" as \{height, width\}.*not supported/);
  assert.deepEqual(walk(cache), []);
});

test('HTTP 404: a clear error naming the URL', async () => {
  const { srv, baseUrl } = await startServer();
  srv.hook = (info, _req, res) => {
    if (info.file !== 'tokenizer.json') return false;
    res.writeHead(404);
    res.end();
    return true;
  };
  const cache = tmpCache();
  const err = await rejection(downloadModel(makeEntry(), opts(cache, baseUrl)));
  assert.ok(err instanceof ClipLensError);
  assert.equal(err.code, 'model-download-not-found');
  assert.ok(err.message.startsWith(`${baseUrl}/${REPO}/resolve/${COMMIT}/tokenizer.json: HTTP 404 Not Found; the file does not exist at this revision`), err.message);
  assert.equal(fs.existsSync(path.join(cache, 'models')), false);
});

test('other HTTP errors name the status', async () => {
  const { srv, baseUrl } = await startServer();
  srv.hook = (_info, _req, res) => {
    res.writeHead(403);
    res.end();
    return true;
  };
  const err = await rejection(downloadModel(makeEntry(), opts(tmpCache(), baseUrl)));
  assert.ok(err instanceof ClipLensError && err.code === 'model-download-denied');
  assert.match(err.message, /config\.json: HTTP 403 Forbidden; the server refused access/);
});

test('timeouts: no response, or a body that stalls, fail after timeoutMs with the URL', async () => {
  const { srv, baseUrl } = await startServer();
  srv.hook = (info, _req, res) => {
    if (info.file === 'config.json') return true; // never answers
    if (info.file === 'onnx/vision_model.onnx') {
      res.writeHead(200, { 'content-length': 1_000_000 });
      res.write(Buffer.alloc(1000)); // then stalls
      return true;
    }
    return false;
  };
  const t0 = Date.now();
  const err = await rejection(downloadModel(makeEntry(), opts(tmpCache(), baseUrl, { timeoutMs: 300 })));
  assert.ok(err instanceof ClipLensError && err.code === 'model-download-timeout', String(err));
  assert.equal(err.message, `${baseUrl}/${REPO}/resolve/${COMMIT}/config.json: no data from ${new URL(baseUrl).host} for 300 ms (timed out); run again to resume`);
  assert.ok(Date.now() - t0 < 3000);

  const entry = makeEntry();
  entry.files = entry.files.filter((f) => f.path !== 'config.json');
  const cache = tmpCache();
  const stalled = await rejection(downloadModel(entry, opts(cache, baseUrl, { timeoutMs: 300 })));
  assert.ok(stalled instanceof ClipLensError && stalled.code === 'model-download-timeout', String(stalled));
  assert.ok(stalled.message.startsWith(`${baseUrl}/${REPO}/resolve/${COMMIT}/onnx/vision_model.onnx: no data`), stalled.message);
  assert.equal(fs.statSync(path.join(cache, 'staging', entry.id, 'onnx', 'vision_model.onnx.part')).size, 1000, 'received bytes kept for resume');
});

test('connection refused names the URL and the host', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const baseUrl = `http://127.0.0.1:${port}`;
  const err = await rejection(downloadModel(makeEntry(), opts(tmpCache(), baseUrl)));
  assert.ok(err instanceof ClipLensError);
  assert.equal(err.code, 'model-download-refused');
  assert.equal(err.message, `${baseUrl}/${REPO}/resolve/${COMMIT}/config.json: connection refused by 127.0.0.1:${port}`);
});

test('the mirror comes from CLIP_LENS_MODEL_MIRROR when no baseUrl is given; a bad one is a clear error', async () => {
  const { srv, baseUrl } = await startServer();
  const saved = process.env.CLIP_LENS_MODEL_MIRROR;
  try {
    process.env.CLIP_LENS_MODEL_MIRROR = baseUrl + '/';
    const dir = await downloadModel(makeEntry(), { cacheDir: tmpCache() });
    assertModelFiles(dir);
    assert.ok(srv.log.length >= 5);
    process.env.CLIP_LENS_MODEL_MIRROR = 'not a url';
    const err = await rejection(downloadModel(makeEntry(), { cacheDir: tmpCache() }));
    assert.ok(err instanceof ClipLensError && err.code === 'model-download-mirror');
    assert.match(err.message, /invalid model server URL 'not a url'/);
  } finally {
    if (saved === undefined) delete process.env.CLIP_LENS_MODEL_MIRROR;
    else process.env.CLIP_LENS_MODEL_MIRROR = saved;
  }
});

test('a download already running for the same model is refused; a stale lock is taken over', async () => {
  const { baseUrl } = await startServer();
  const cache = tmpCache();
  const entry = makeEntry();
  fs.mkdirSync(path.join(cache, 'staging'), { recursive: true });
  const lock = path.join(cache, 'staging', `${entry.id}.lock`);
  fs.writeFileSync(lock, String(process.pid));
  const err = await rejection(downloadModel(entry, opts(cache, baseUrl)));
  assert.ok(err instanceof ClipLensError && err.code === 'model-download-busy');
  assert.match(err.message, new RegExp(`process ${process.pid} is already downloading '${entry.id}'`));
  fs.writeFileSync(lock, '2147483646'); // no such process
  assertModelFiles(await downloadModel(entry, opts(cache, baseUrl)));
});

// ---- Proxies ----

/** A forward proxy: absolute-form GETs for http, CONNECT tunnels for https. Logs what it was asked. */
async function startProxy(): Promise<{ url: string; log: string[]; close: () => Promise<void> }> {
  const log: string[] = [];
  const sockets = new Set<net.Socket>();
  const proxy = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? '');
    const upstream = http.request({ hostname: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  proxy.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  proxy.on('connect', (req, client: net.Socket, head) => {
    log.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  return {
    url,
    log,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => proxy.close(() => r()));
    },
  };
}

test('http through a proxy: the explicit option, or HTTP_PROXY; NO_PROXY bypasses it', async () => {
  const { baseUrl } = await startServer();
  const proxy = await startProxy();
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY, http_proxy: process.env.http_proxy, no_proxy: process.env.no_proxy };
  try {
    delete process.env.http_proxy;
    delete process.env.no_proxy;
    delete process.env.NO_PROXY;
    assertModelFiles(await downloadModel(makeEntry(), opts(tmpCache(), baseUrl, { proxy: proxy.url })));
    assert.ok(proxy.log.includes(`GET ${baseUrl}/${REPO}/resolve/${COMMIT}/onnx/vision_model.onnx`), proxy.log.join('\n'));

    proxy.log.length = 0;
    process.env.HTTP_PROXY = proxy.url;
    assertModelFiles(await downloadModel(makeEntry(), opts(tmpCache(), baseUrl)));
    assert.ok(proxy.log.length >= 5);

    proxy.log.length = 0;
    process.env.NO_PROXY = 'example.com,127.0.0.1';
    assertModelFiles(await downloadModel(makeEntry(), opts(tmpCache(), baseUrl)));
    assert.deepEqual(proxy.log, []);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await proxy.close();
  }
});

test('a refused proxy connection names the proxy', async () => {
  const { baseUrl } = await startServer();
  const err = await rejection(downloadModel(makeEntry(), opts(tmpCache(), baseUrl, { proxy: 'http://127.0.0.1:1' })));
  assert.ok(err instanceof ClipLensError && err.code === 'model-download-refused', String(err));
  assert.match(err.message, /connection refused by proxy 127\.0\.0\.1:1$/);
});

function selfSignedCert(): { key: string; cert: string } | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    return { key: fs.readFileSync(path.join(dir, 'k.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'c.pem'), 'utf8') };
  } catch {
    return null;
  }
}

const tlsCert = selfSignedCert();
test('https directly and through a CONNECT tunnel, trusting an extra CA', { skip: !tlsCert && 'openssl is not available to make a test certificate' }, async () => {
  const srv = new ModelServer(https.createServer({ key: tlsCert!.key, cert: tlsCert!.cert }));
  servers.push(srv);
  const baseUrl = await srv.listen();

  // Without the CA the certificate is refused with a clear TLS error.
  const untrusted = await rejection(downloadModel(makeEntry(), opts(tmpCache(), baseUrl)));
  assert.ok(untrusted instanceof ClipLensError && untrusted.code === 'model-download-tls', String(untrusted));

  assertModelFiles(await downloadModel(makeEntry(), opts(tmpCache(), baseUrl, { ca: tlsCert!.cert })));

  const proxy = await startProxy();
  try {
    srv.log.length = 0;
    assertModelFiles(await downloadModel(makeEntry(), opts(tmpCache(), baseUrl, { ca: tlsCert!.cert, proxy: proxy.url })));
    const port = new URL(baseUrl).port;
    assert.ok(proxy.log.length >= 5 && proxy.log.every((l) => l === `CONNECT 127.0.0.1:${port}`), proxy.log.join('\n'));
    assert.ok(srv.log.length >= 5, 'the requests reached the server through the tunnel');
  } finally {
    await proxy.close();
  }
});

test('proxyFor: scheme-specific variables, NO_PROXY forms, explicit option, bad proxies', () => {
  const env = { HTTPS_PROXY: 'http://p:3128', HTTP_PROXY: 'proxy.local:8080', NO_PROXY: 'localhost, .internal.example, cdn.example:8443' };
  assert.equal(proxyFor(new URL('https://huggingface.co/x'), undefined, env)?.href, 'http://p:3128/');
  assert.equal(proxyFor(new URL('http://huggingface.co/x'), undefined, env)?.href, 'http://proxy.local:8080/');
  assert.equal(proxyFor(new URL('https://localhost/x'), undefined, env), null);
  assert.equal(proxyFor(new URL('https://a.internal.example/x'), undefined, env), null);
  assert.equal(proxyFor(new URL('https://internal.example/x'), undefined, env), null);
  assert.equal(proxyFor(new URL('https://cdn.example:8443/x'), undefined, env), null);
  assert.notEqual(proxyFor(new URL('https://cdn.example/x'), undefined, env), null, 'port-specific NO_PROXY entry');
  assert.notEqual(proxyFor(new URL('https://notinternal.example/x'), undefined, env), null);
  assert.equal(proxyFor(new URL('https://h/x'), 'http://u:p@explicit:1'.toString(), {})?.username, 'u');
  assert.equal(proxyFor(new URL('https://h/x'), 'http://explicit:1', { NO_PROXY: '*' }), null);
  assert.equal(proxyFor(new URL('https://h/x'), undefined, { https_proxy: 'http://lower:1' })?.host, 'lower:1');
  assert.equal(proxyFor(new URL('https://h/x'), undefined, {}), null);
  assert.throws(() => proxyFor(new URL('https://h/x'), 'socks5://s:1080', {}), /only http:\/\/ proxies are supported/);
});

// ---- The cache ----

test('ensureModel: a cached, complete model is used without any request; a damaged one is downloaded again', async () => {
  const { srv, baseUrl } = await startServer();
  const cache = tmpCache();
  const entry = makeEntry();
  const dir = await ensureModel(entry, { cacheDir: cache, baseUrl });
  assertModelFiles(dir);
  assert.equal(await checkCachedModel(entry, cache), null);

  srv.log.length = 0;
  assert.equal(await ensureModel(entry, { cacheDir: cache, baseUrl }), dir);
  assert.deepEqual(srv.log, []);

  // Same size, different bytes: only the full check notices.
  const vision = path.join(dir, 'onnx/vision_model.onnx');
  const bytes = fs.readFileSync(vision);
  bytes[bytes.length - 1] ^= 0xff;
  fs.writeFileSync(vision, bytes);
  assert.equal(await checkCachedModel(entry, cache, 'size'), null);
  assert.match((await checkCachedModel(entry, cache, 'full')) ?? '', /vision_model\.onnx: SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64} \(the file changed after download\)/);
  assert.equal(await ensureModel(entry, { cacheDir: cache, baseUrl, verify: 'full' }), dir);
  assertModelFiles(dir);
  assert.ok(srv.requestsFor('onnx/vision_model.onnx').length === 1);

  // A truncated file fails the size check.
  fs.truncateSync(path.join(dir, 'onnx/text_model.onnx'), 10);
  assert.match((await checkCachedModel(entry, cache)) ?? '', /text_model\.onnx: 10 bytes, expected \d+/);
  await ensureModel(entry, { cacheDir: cache, baseUrl });
  assertModelFiles(dir);

  // A registry that now pins another commit makes the cached copy stale.
  assert.match((await checkCachedModel({ ...entry, revision: 'f'.repeat(40) }, cache)) ?? '', /downloaded at revision c0ffee.*the registry now pins f{40}/);
  assert.match((await checkCachedModel(makeEntry(), cache)) ?? '', /not downloaded$/);
});

test('ensureModel with a path checks the directory and returns it', async () => {
  const { baseUrl } = await startServer();
  const dir = await downloadModel(makeEntry(), opts(tmpCache(), baseUrl));
  assert.equal(await ensureModel(dir, { baseDir: '/' }), dir);
  const rel = path.relative(process.cwd(), dir);
  assert.equal(await ensureModel(rel), dir);
  fs.rmSync(path.join(dir, 'tokenizer.json'));
  const err = await rejection(ensureModel(dir));
  assert.ok(err instanceof ClipLensError && err.code === 'model-missing-file');
});

test('defaultCacheDir follows each platform convention', () => {
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' }, 'linux', '/home/u'), '/xdg/clip-lens');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: 'relative' }, 'linux', '/home/u'), '/home/u/.cache/clip-lens');
  assert.equal(defaultCacheDir({}, 'linux', '/home/u'), '/home/u/.cache/clip-lens');
  assert.equal(defaultCacheDir({}, 'darwin', '/Users/u'), '/Users/u/Library/Caches/clip-lens');
  assert.equal(defaultCacheDir({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Local\\clip-lens');
  assert.equal(defaultCacheDir({}, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Local\\clip-lens');
  assert.ok(path.isAbsolute(defaultCacheDir()));
});

test('the pin file is plain JSON in the cache folder', async () => {
  const cache = tmpCache();
  assert.deepEqual(await readPins(cache), { schema: 1, models: {} });
  fs.writeFileSync(path.join(cache, PINS_FILE), '{broken');
  assert.deepEqual(await readPins(cache), { schema: 1, models: {} });
});

// ---- clip-lens model (the CLI part) ----

function captureIO(isTTY = false) {
  const io = { out: '', err: '', isTTY };
  return { io: { out: (s: string) => void (io.out += s), err: (s: string) => void (io.err += s), isTTY }, text: io };
}

test('clip-lens model list: every registry model with size, quantized and cached columns', async () => {
  const cache = tmpCache();
  const { io, text } = captureIO();
  assert.equal(await modelCommand(['list', '--cache', cache], io), 0);
  const lines = text.out.trimEnd().split('\n');
  assert.match(lines[0], /^ID\s+SIZE\s+QUANTIZED\s+CACHED\s+DESCRIPTION$/);
  assert.match(text.out, /^clip-vit-base-patch32 \(default\)\s+~608\.\d MB\s+no\s+no\s+OpenAI CLIP ViT-B\/32/m);
  assert.match(text.out, /^clip-vit-base-patch32-quantized\s+~15\d\.\d MB\s+yes\s+no/m);
  assert.match(text.out, /^clip-vit-large-patch14\s+~1\.72 GB\s+no\s+no/m);
  assert.ok(text.out.endsWith(`\ncache: ${cache}\n`));
  assert.equal(text.err, '');
});

test('clip-lens model download: fetches from a mirror, prints the directory; list then shows it cached', async () => {
  const { srv, baseUrl } = await startServer();
  const cache = tmpCache();
  const tty = captureIO(true);
  assert.equal(await modelCommand(['download', 'clip-vit-base-patch16', '--cache', cache, '--mirror', baseUrl], tty.io), 0, tty.text.err);
  const dir = path.join(cache, 'models', 'clip-vit-base-patch16');
  assert.equal(tty.text.out, dir + '\n');
  assertModelFiles(dir);
  assert.ok(srv.log.some((l) => l.path === `/Xenova/clip-vit-base-patch16/resolve/main/config.json`));
  assert.match(tty.text.err, /^downloading clip-vit-base-patch16 \(~601\.\d MB\) from Xenova\/clip-vit-base-patch16 into /);
  assert.match(tty.text.err, /\r {2}onnx\/vision_model\.onnx {2}\[#{20}\] 100% {2}300\.\d kB \/ 300\.\d kB/, 'a redrawn progress bar');
  assert.match(tty.text.err, /clip-vit-base-patch16: downloaded and verified\n$/);

  const again = captureIO();
  assert.equal(await modelCommand(['download', 'clip-vit-base-patch16', '--cache', cache, '--mirror', baseUrl], again.io), 0);
  assert.equal(again.text.out, dir + '\n');
  assert.match(again.text.err, /already downloaded \(use --force/);

  const forced = captureIO();
  assert.equal(await modelCommand(['download', 'clip-vit-base-patch16', '--cache', cache, '--mirror', baseUrl, '--force'], forced.io), 0);
  assert.doesNotMatch(forced.text.err, /\r/, 'no progress bar when not a TTY');
  assert.match(forced.text.err, /^ {2}onnx\/vision_model\.onnx \(300\.\d kB\)$/m);

  const list = captureIO();
  await modelCommand(['list', '--cache', cache], list.io);
  assert.match(list.text.out, /^clip-vit-base-patch16\s+~\S+ MB\s+no\s+yes/m);
  assert.match(list.text.out, /^clip-vit-base-patch16-quantized\s+~\S+ MB\s+yes\s+no/m);
});

test('clip-lens model download: failures exit 1 naming the URL', async () => {
  const { srv, baseUrl } = await startServer();
  srv.hook = (info, _req, res) => {
    if (info.file !== 'onnx/text_model.onnx') return false;
    res.writeHead(404);
    res.end();
    return true;
  };
  const { io, text } = captureIO();
  assert.equal(await modelCommand(['download', 'clip-vit-base-patch16', '--cache', tmpCache(), '--mirror', baseUrl], io), 1);
  assert.match(text.err, new RegExp(`error: ${baseUrl.replace(/[.]/g, '\\.')}/Xenova/clip-vit-base-patch16/resolve/${COMMIT}/onnx/text_model\\.onnx: HTTP 404 Not Found`));
  assert.equal(text.out, '');
});

test('clip-lens model: usage errors exit 2 with a one-line reason', async () => {
  const cases: [string[], RegExp][] = [
    [[], /missing subcommand: expected list, download or verify/],
    [['frob'], /unknown subcommand 'frob'/],
    [['download'], /download needs a model id/],
    [['download', 'clip-vit-base-patch23'], /unknown model 'clip-vit-base-patch23'\. Did you mean 'clip-vit-base-patch32'\?/],
    [['download', 'mobileclip-b', '--quantized'], /model 'mobileclip-b' has no quantized variant/],
    [['download', './some/dir'], /'\.\/some\/dir' is a path; download takes a model id/],
    [['list', '--bogus'], /unknown option '--bogus' for model list/],
    [['download', 'clip-vit-base-patch32', '--cahce', 'x'], /unknown option '--cahce' for model download; did you mean '--cache'\?/],
    [['list', 'extra'], /unexpected argument 'extra'/],
    [['download', 'clip-vit-base-patch32', '--cache'], /option '--cache' expects a value \(DIR\)/],
    [['verify'], /verify needs a model directory or id/],
  ];
  for (const [args, pattern] of cases) {
    const { io, text } = captureIO();
    assert.equal(await modelCommand(args, io), 2, args.join(' '));
    assert.match(text.err, pattern, args.join(' '));
    assert.ok(text.err.startsWith('clip-lens model: ') && text.err.endsWith('\n') && text.err.split('\n').length === 2, text.err);
  }
  const help = captureIO();
  assert.equal(await modelCommand(['--help'], help.io), 0);
  assert.match(help.text.out, /^usage: clip-lens model list/);
  const subHelp = captureIO();
  assert.equal(await modelCommand(['download', '--help'], subHelp.io), 0);
  assert.match(subHelp.text.out, /^usage: clip-lens model download <id>/);
  assert.match(subHelp.text.out, /--mirror URL/);
});

test('clip-lens model verify: exit 0 for a usable directory, 1 with every problem listed', async () => {
  if (fs.existsSync(REFERENCE)) {
    const ok = captureIO();
    assert.equal(await modelCommand(['verify', REFERENCE], ok.io), 0, ok.text.err);
    assert.equal(ok.text.out, `ok: ${REFERENCE}\n`);
  }
  // The synthetic download passes the cheap checks but its graphs are random bytes: the deep check says so.
  const { baseUrl } = await startServer();
  const dir = await downloadModel(makeEntry(), opts(tmpCache(), baseUrl));
  fs.writeFileSync(path.join(dir, 'config.json'), '{"logit_scale": "high"}');
  const bad = captureIO();
  assert.equal(await modelCommand(['verify', dir], bad.io), 1);
  const lines = bad.text.err.trimEnd().split('\n');
  assert.match(lines[0], new RegExp(`^${escapeRe(path.join(dir, 'onnx/vision_model.onnx'))}: onnxruntime cannot load this graph`));
  assert.match(lines[1], new RegExp(`^${escapeRe(path.join(dir, 'onnx/text_model.onnx'))}: onnxruntime cannot load this graph`));
  assert.match(bad.text.err, /config\.json: 'logit_scale' must be a positive number/);
  assert.equal(lines.at(-1), `3 problems in ${dir}`);

  const missing = captureIO();
  assert.equal(await modelCommand(['verify', 'clip-vit-base-patch32', '--cache', tmpCache()], missing.io), 1);
  assert.match(missing.text.err, /clip-vit-base-patch32: not downloaded\n$/);
});

test('progress line and byte formatting', () => {
  assert.equal(
    progressLine({ file: 'onnx/vision_model.onnx', bytes: 144_300_000, totalBytes: 352_000_000, bytesPerSecond: 12_100_000 }),
    '  onnx/vision_model.onnx  [########------------]  40%  144.3 MB / 352.0 MB  12.1 MB/s  ETA 18s',
  );
  assert.equal(progressLine({ file: 'config.json', bytes: 512, totalBytes: null, bytesPerSecond: 0 }), '  config.json  512 B  0 B/s');
  assert.deepEqual([formatBytes(950), formatBytes(12_345), formatBytes(1_220_000_000)], ['950 B', '12.3 kB', '1.22 GB']);
});

const REFERENCE = '/work/shared/clip-reference/tiny-random-clip';
function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
