/**
 * Safe model download into the cache folder.
 *
 * Cache layout (`defaultCacheDir()` unless `--cache` says otherwise):
 *
 *   models/<id>/             complete, verified model directories (with .clip-lens-model.json, the manifest)
 *   staging/<id>/            a download in progress: finished files and <file>.part (kept for resume)
 *   staging/<id>.lock        pid of the process downloading <id>
 *   pins.json                per model: the commit a 'main' revision resolved to and every file's size + SHA-256
 *
 * Guarantees: files are fetched into staging/<id>/ (HTTP Range resumes a .part after a dropped connection, a
 * cancellation or a crash; a 200 answer to a Range request restarts the file), each file's SHA-256 is checked against
 * the registry, else the pin file, else the `X-Linked-Etag` that Hugging Face sends for LFS files; the directory is
 * checked with validateModelDir, and only then renamed to models/<id>/ in one step. A wrong checksum deletes the
 * whole staging directory. So models/<id>/ is either absent or complete and verified.
 *
 * Networking uses node:http/https (no dependency): redirects are followed (Hugging Face answers /resolve/ with a
 * redirect to its CDN), proxies come from the `proxy` option or HTTPS_PROXY / HTTP_PROXY / NO_PROXY (https through an
 * http:// proxy uses a CONNECT tunnel), `timeoutMs` is an idle timeout, and HF_TOKEN (if set) is sent to the base URL's
 * host only.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, type Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tls from 'node:tls';
import { CancelledError, ClipLensError, throwIfAborted } from './errors';
import { FILE_LIMITS, makeDirectory, pathExists, readRegularFile } from './fileSystem';
import { resolveModelDir, validateModelDir } from './modelDir';
import { quantizedVariant, resolveModelSpec, type RegistryEntry } from './modelRegistry';

export const DEFAULT_BASE_URL = 'https://huggingface.co';
export const MIRROR_ENV = 'CLIP_LENS_MODEL_MIRROR';
export const MANIFEST_FILE = '.clip-lens-model.json';
export const PINS_FILE = 'pins.json';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;
const MAX_REDIRECTS = 10;
const PROGRESS_INTERVAL_MS = 100;

export interface DownloadProgress {
  /** File being downloaded, relative to the model directory. */
  file: string;
  /** Bytes of this file on disk so far (including a resumed prefix). */
  bytes: number;
  /** Size of this file when the server said, else null. */
  totalBytes: number | null;
  /** Recent download rate (bytes/s, over the last few seconds). */
  bytesPerSecond: number;
}

export interface DownloadOptions {
  /** Cache folder (see the layout above). */
  cacheDir: string;
  /** Server to fetch `<repo>/resolve/<revision>/<file>` from; default $CLIP_LENS_MODEL_MIRROR or https://huggingface.co. */
  baseUrl?: string;
  /** Abort to cancel: the promise rejects with CancelledError, the .part file stays in staging for resume. */
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Idle timeout in ms (connecting, or waiting for the next bytes); default 30000. */
  timeoutMs?: number;
  /** http://[user:pass@]host:port proxy; default from HTTPS_PROXY / HTTP_PROXY. NO_PROXY is honoured either way. */
  proxy?: string;
  /** Automatic resumes after a dropped connection, per file; default 3. */
  retries?: number;
  /** Extra trusted CA certificates (PEM), e.g. of a TLS-inspecting corporate proxy; added to Node's root CAs. */
  ca?: string | Buffer;
}

/** What a completed file is recorded as, in the manifest and the pin file. */
export interface FileRecord {
  path: string;
  size: number;
  sha256: string;
}

/** `.clip-lens-model.json` in a downloaded model directory. */
export interface ModelManifest {
  schema: 1;
  id: string;
  repo: string;
  /** The commit the files came from (or the branch name, when the server did not say). */
  revision: string;
  files: FileRecord[];
  downloadedAt: string;
}

/** `pins.json` in the cache folder. */
export interface PinFile {
  schema: 1;
  models: Record<string, { repo: string; revision: string; files: Record<string, { size: number; sha256: string }>; pinnedAt: string }>;
}

/**
 * The per-user cache folder: $XDG_CACHE_HOME/clip-lens or ~/.cache/clip-lens on Linux (and other Unixes),
 * ~/Library/Caches/clip-lens on macOS, %LOCALAPPDATA%\clip-lens on Windows.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = os.homedir()): string {
  const p = platform === 'win32' ? path.win32 : path.posix;
  if (platform === 'win32') return p.join(env.LOCALAPPDATA || p.join(home, 'AppData', 'Local'), 'clip-lens');
  if (platform === 'darwin') return p.join(home, 'Library', 'Caches', 'clip-lens');
  const xdg = env.XDG_CACHE_HOME;
  return p.join(xdg && p.isAbsolute(xdg) ? xdg : p.join(home, '.cache'), 'clip-lens');
}

/** Where a registry model lives once downloaded. */
export function cachedModelDir(entry: RegistryEntry, cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'models', entry.id);
}

/**
 * Download a registry model into `<cacheDir>/models/<id>` (see the guarantees above) and return that directory.
 * Rejects with CancelledError when `signal` aborts, and with a ClipLensError naming the URL for HTTP errors
 * ('model-download-not-found', 'model-download-http', 'model-download-denied'), network errors
 * ('model-download-timeout', 'model-download-refused', 'model-download-dns', 'model-download-interrupted',
 * 'model-download-tls', 'model-download-proxy'), 'model-checksum-mismatch', 'model-download-invalid' and
 * 'model-download-busy' (another process is downloading the same model).
 */
export async function downloadModel(entry: RegistryEntry, options: DownloadOptions): Promise<string> {
  throwIfAborted(options.signal);
  const cacheDir = path.resolve(options.cacheDir);
  const stagingRoot = path.join(cacheDir, 'staging');
  const staging = path.join(stagingRoot, entry.id);
  const finalDir = cachedModelDir(entry, cacheDir);
  await makeDirectory(staging);
  const lock = await acquireLock(path.join(stagingRoot, `${entry.id}.lock`), entry.id);
  try {
    const baseUrl = (options.baseUrl ?? (process.env[MIRROR_ENV] || DEFAULT_BASE_URL)).replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]/i.test(baseUrl) || !URL.canParse(baseUrl)) {
      throw new ClipLensError('model-download-mirror', `invalid model server URL '${baseUrl}' (from the baseUrl option or ${MIRROR_ENV}); expected http(s)://host[/path]`);
    }
    const pins = await readPins(cacheDir);
    const pin = pins.models[entry.id]?.repo === entry.repo ? pins.models[entry.id] : undefined;
    let revision = isCommit(entry.revision) ? entry.revision : (pin?.revision ?? entry.revision);
    const ctx: RequestContext = {
      baseUrl,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      proxy: options.proxy,
      ca: options.ca,
      onProgress: options.onProgress,
    };
    const records: FileRecord[] = [];
    for (const file of entry.files) {
      throwIfAborted(options.signal);
      const url = `${baseUrl}/${entry.repo}/resolve/${encodeURIComponent(revision)}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
      const expected = {
        sha256: file.sha256 ?? pin?.files[file.path]?.sha256 ?? null,
        size: file.size ?? pin?.files[file.path]?.size ?? null,
      };
      const dest = path.join(staging, ...file.path.split('/'));
      await makeDirectory(path.dirname(dest));
      let record: FileRecord | null = null;
      if (await pathExists(dest, { followSymlinks: true })) record = await reuseStaged(dest, file.path, expected);
      if (!record) {
        const got = await fetchVerified(ctx, url, dest, file.path, expected, options.retries ?? DEFAULT_RETRIES, staging, file.optional === true);
        if (got === null) continue; // optional file the server does not have
        record = got.record;
        if (!isCommit(revision) && got.repoCommit) revision = got.repoCommit;
      }
      records.push(record);
    }

    const check = await validateModelDir(staging, { quantized: entry.quantized });
    if (!check.ok) {
      await fsp.rm(staging, { recursive: true, force: true });
      const list = check.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}`).join('; ');
      throw new ClipLensError('model-download-invalid', `the files downloaded from ${baseUrl}/${entry.repo} do not form a usable model (discarded): ${list}`, { file: staging });
    }
    throwIfAborted(options.signal);

    const manifest: ModelManifest = { schema: 1, id: entry.id, repo: entry.repo, revision, files: records, downloadedAt: new Date().toISOString() };
    await fsp.writeFile(path.join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    pins.models[entry.id] = {
      repo: entry.repo,
      revision,
      files: Object.fromEntries(records.map((r) => [r.path, { size: r.size, sha256: r.sha256 }])),
      pinnedAt: pin?.pinnedAt ?? manifest.downloadedAt,
    };
    await writeJsonAtomic(path.join(cacheDir, PINS_FILE), pins);
    await moveIntoPlace(staging, finalDir);
    return finalDir;
  } finally {
    await lock.release();
  }
}

/**
 * The directory of a model spec (registry id or path, see resolveModelSpec; or an entry), downloading a registry model unless its
 * cached copy is complete and verified (manifest present, each file's size matching, and with `verify: 'full'` each
 * SHA-256 recomputed). Paths are checked with resolveModelDir and returned as absolute directories.
 */
export async function ensureModel(
  spec: string | RegistryEntry,
  options: Partial<DownloadOptions> & { baseDir?: string; quantized?: boolean; verify?: 'size' | 'full' } = {},
): Promise<string> {
  const resolved = typeof spec === 'string' ? resolveModelSpec(spec, options.baseDir ?? process.cwd()) : { kind: 'registry' as const, entry: spec };
  if (resolved.kind === 'path') return (await resolveModelDir(resolved.dir, { quantized: options.quantized })).dir;
  let entry = resolved.entry;
  if (options.quantized) {
    const q = quantizedVariant(entry);
    if (!q) throw new ClipLensError('model-no-quantized', `model '${entry.id}' has no quantized variant`);
    entry = q;
  }
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  if ((await checkCachedModel(entry, cacheDir, options.verify ?? 'size')) === null) return cachedModelDir(entry, cacheDir);
  return downloadModel(entry, { ...options, cacheDir });
}

/** True when `<cacheDir>/models/<id>` is a complete download of this entry (see checkCachedModel). */
export async function isModelCached(entry: RegistryEntry, cacheDir: string, verify: 'size' | 'full' = 'size'): Promise<boolean> {
  return (await checkCachedModel(entry, cacheDir, verify)) === null;
}

/**
 * Why the cached copy of `entry` is not usable, or null when it is: the manifest must name this repository (and the
 * registry's commit, when it pins one), list every required file with the registry's SHA-256 where known, and each
 * file must have the recorded size (and, with 'full', the recorded SHA-256).
 */
export async function checkCachedModel(entry: RegistryEntry, cacheDir: string, verify: 'size' | 'full' = 'size'): Promise<string | null> {
  const dir = cachedModelDir(entry, cacheDir);
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse((await readRegularFile(path.join(dir, MANIFEST_FILE), { maxBytes: FILE_LIMITS.modelText })).toString('utf8')) as ModelManifest;
  } catch {
    return (await pathExists(dir, { followSymlinks: true })) ? `${path.join(dir, MANIFEST_FILE)}: missing or unreadable` : `${dir}: not downloaded`;
  }
  if (manifest.repo !== entry.repo) return `${dir}: downloaded from ${manifest.repo}, expected ${entry.repo}`;
  if (isCommit(entry.revision) && manifest.revision !== entry.revision) {
    return `${dir}: downloaded at revision ${manifest.revision}, the registry now pins ${entry.revision}`;
  }
  const byPath = new Map((manifest.files ?? []).map((f) => [f.path, f]));
  for (const file of entry.files) {
    const rec = byPath.get(file.path);
    if (!rec) {
      if (file.optional) continue;
      return `${dir}: ${file.path} is not in the manifest`;
    }
    if (file.sha256 && rec.sha256 !== file.sha256) return `${path.join(dir, file.path)}: SHA-256 ${rec.sha256} differs from the registry's ${file.sha256}`;
    const abs = path.join(dir, ...rec.path.split('/'));
    const st = await fsp.stat(abs).catch(() => null);
    if (!st) return `${abs}: missing`;
    if (st.size !== rec.size) return `${abs}: ${st.size} bytes, expected ${rec.size}`;
    if (verify === 'full') {
      const sha = await sha256File(abs);
      if (sha !== rec.sha256) return `${abs}: SHA-256 ${sha}, expected ${rec.sha256} (the file changed after download)`;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------------
// One file: fetch into <dest>.part with resume and retries, verify, rename to <dest>.

interface RequestContext {
  baseUrl: string;
  signal?: AbortSignal;
  timeoutMs: number;
  proxy?: string;
  ca?: string | Buffer;
  onProgress?: (p: DownloadProgress) => void;
}

interface Expected {
  sha256: string | null;
  size: number | null;
}

/** A file already complete in staging (from an interrupted run): reuse it when it still matches. */
async function reuseStaged(dest: string, rel: string, expected: Expected): Promise<FileRecord | null> {
  const sha256 = await sha256File(dest);
  const size = (await fsp.stat(dest)).size;
  if ((expected.sha256 && expected.sha256 !== sha256) || (expected.size !== null && expected.size !== size)) {
    await fsp.rm(dest, { force: true });
    return null;
  }
  return { path: rel, size, sha256 };
}

async function fetchVerified(
  ctx: RequestContext,
  url: string,
  dest: string,
  rel: string,
  expected: Expected,
  retries: number,
  staging: string,
  optional: boolean,
): Promise<{ record: FileRecord; repoCommit: string | null } | null> {
  const part = `${dest}.part`;
  let attempt = 0;
  let result: FetchResult;
  for (;;) {
    try {
      result = await fetchToPart(ctx, url, part, rel);
      break;
    } catch (e) {
      if (e instanceof ClipLensError && e.code === 'model-download-not-found' && optional) {
        await fsp.rm(part, { force: true });
        return null;
      }
      if (e instanceof ClipLensError && e.code === 'model-download-interrupted' && attempt < retries && !ctx.signal?.aborted) {
        attempt++;
        await sleep(Math.min(250 * 2 ** (attempt - 1), 4000), ctx.signal);
        continue;
      }
      throw e;
    }
  }
  const want = expected.sha256 ?? result.linkedSha256;
  const sizeWanted = expected.size ?? result.linkedSize;
  if ((want && result.sha256 !== want) || (sizeWanted !== null && result.size !== sizeWanted)) {
    await fsp.rm(part, { force: true });
    await fsp.rm(staging, { recursive: true, force: true });
    const what = want && result.sha256 !== want ? `SHA-256 ${result.sha256}, expected ${want}` : `${result.size} bytes, expected ${sizeWanted}`;
    throw new ClipLensError('model-checksum-mismatch', `${url}: ${rel} has ${what}; the download was refused and discarded`);
  }
  await fsp.rename(part, dest);
  return { record: { path: rel, size: result.size, sha256: result.sha256 }, repoCommit: result.repoCommit };
}

interface FetchResult {
  sha256: string;
  size: number;
  /** SHA-256 the server vouches for (Hugging Face's X-Linked-Etag on LFS files), when it sends one. */
  linkedSha256: string | null;
  linkedSize: number | null;
  /** Commit the server resolved the revision to (X-Repo-Commit), when it sends one. */
  repoCommit: string | null;
}

/** Fetch `url` into `part`, resuming from its current size with a Range request; returns the whole file's hash. */
async function fetchToPart(ctx: RequestContext, url: string, part: string, rel: string, allowRestart = true): Promise<FetchResult> {
  const offset = (await fsp.stat(part).catch(() => null))?.size ?? 0;
  const headers: Record<string, string> = { 'user-agent': 'clip-lens', 'accept-encoding': 'identity' };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  const { res, meta, finalUrl } = await requestFollowingRedirects(ctx, url, headers);
  const status = res.statusCode ?? 0;

  let append = false;
  let total: number | null = null;
  if (status === 206) {
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!cr || Number(cr[1]) !== offset) {
      res.destroy();
      if (!allowRestart) throw new ClipLensError('model-download-http', `${url}: the server answered a Range request with an unusable Content-Range '${res.headers['content-range'] ?? ''}'`);
      await fsp.rm(part, { force: true });
      return fetchToPart(ctx, url, part, rel, false);
    }
    append = true;
    total = cr[3] === '*' ? null : Number(cr[3]);
  } else if (status === 200) {
    const len = res.headers['content-length'];
    total = len !== undefined ? Number(len) : null; // a 200 to a Range request: the server restarts the file
  } else if (status === 416 && offset > 0 && allowRestart) {
    res.resume();
    await fsp.rm(part, { force: true });
    return fetchToPart(ctx, url, part, rel, false);
  } else {
    res.resume();
    throw httpError(status, res.statusMessage ?? '', url, finalUrl);
  }

  const hash = createHash('sha256');
  if (append) await hashInto(hash, part, offset);
  let bytes = append ? offset : 0;
  const rate = new RateMeter();
  let lastReport = 0;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!ctx.onProgress || (!force && now - lastReport < PROGRESS_INTERVAL_MS)) return;
    lastReport = now;
    ctx.onProgress({ file: rel, bytes, totalBytes: total, bytesPerSecond: rate.perSecond(now) });
  };
  report(true);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      rate.add(chunk.length, Date.now());
      report(false);
      cb(null, chunk);
    },
  });
  const out = fs.createWriteStream(part, { flags: append ? 'a' : 'w' });
  try {
    await pipeline(res, meter, out, { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal?.aborted) throw new CancelledError(`Cancelled; ${bytes} bytes of ${rel} kept in ${part} for resume`);
    throw networkError(e, url, ctx, `after ${bytes}${total !== null ? ` of ${total}` : ''} bytes`);
  }
  if (total !== null && bytes !== total) {
    throw new ClipLensError('model-download-interrupted', `${url}: the connection ended after ${bytes} of ${total} bytes`);
  }
  report(true);
  return {
    sha256: hash.digest('hex'),
    size: bytes,
    linkedSha256: meta.linkedSha256,
    linkedSize: meta.linkedSize,
    repoCommit: meta.repoCommit,
  };
}

async function hashInto(hash: ReturnType<typeof createHash>, file: string, length: number): Promise<void> {
  if (length === 0) return;
  for await (const chunk of fs.createReadStream(file, { start: 0, end: length - 1 })) hash.update(chunk as Buffer);
}

/** SHA-256 (lowercase hex) of a file. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Bytes per second over a sliding window of the last few seconds. */
class RateMeter {
  private samples: { t: number; n: number }[] = [];
  private readonly start = Date.now();
  constructor(private readonly windowMs = 5000) {}
  add(n: number, t: number): void {
    this.samples.push({ t, n });
    while (this.samples.length > 0 && t - this.samples[0].t > this.windowMs) this.samples.shift();
  }
  perSecond(now: number): number {
    const windowStart = Math.max(this.start, now - this.windowMs);
    const bytes = this.samples.reduce((sum, s) => (s.t >= windowStart ? sum + s.n : sum), 0);
    return (bytes * 1000) / Math.max(now - windowStart, 200);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// HTTP: one GET with redirects, proxies, timeouts and clear errors.

interface ResponseMeta {
  linkedSha256: string | null;
  linkedSize: number | null;
  repoCommit: string | null;
}

async function requestFollowingRedirects(
  ctx: RequestContext,
  url: string,
  headers: Record<string, string>,
): Promise<{ res: http.IncomingMessage; meta: ResponseMeta; finalUrl: string }> {
  const meta: ResponseMeta = { linkedSha256: null, linkedSize: null, repoCommit: null };
  const baseOrigin = new URL(ctx.baseUrl).origin;
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const target = new URL(current);
    const h = { ...headers };
    const token = process.env.HF_TOKEN;
    if (token && target.origin === baseOrigin) h.authorization = `Bearer ${token}`;
    const res = await requestOnce(ctx, target, h, url);
    const etag = String(res.headers['x-linked-etag'] ?? '').replace(/^W\//, '').replace(/"/g, '');
    if (/^[0-9a-f]{64}$/.test(etag)) meta.linkedSha256 = etag;
    const linkedSize = Number(res.headers['x-linked-size']);
    if (Number.isInteger(linkedSize) && linkedSize >= 0 && res.headers['x-linked-size'] !== undefined) meta.linkedSize = linkedSize;
    const commit = String(res.headers['x-repo-commit'] ?? '');
    if (isCommit(commit)) meta.repoCommit = commit;
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, target).href;
      continue;
    }
    return { res, meta, finalUrl: current };
  }
  throw new ClipLensError('model-download-http', `${url}: more than ${MAX_REDIRECTS} redirects`);
}

/** One GET; resolves with the response (status not checked), rejects with a ClipLensError or CancelledError. */
function requestOnce(ctx: RequestContext, target: URL, headers: Record<string, string>, originalUrl: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (ctx.signal?.aborted) return reject(new CancelledError());
    const proxy = proxyFor(target, ctx.proxy);
    const isHttps = target.protocol === 'https:';
    const port = Number(target.port) || (isHttps ? 443 : 80);
    const ca = ctx.ca ? [...tls.rootCertificates, String(ctx.ca)] : undefined;
    let settled = false;
    let timedOut = false;
    let req: http.ClientRequest | null = null;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      if (ctx.signal?.aborted) reject(new CancelledError());
      else if (timedOut) reject(timeoutError(originalUrl, ctx.timeoutMs, target, proxy));
      else reject(networkError(e, originalUrl, ctx, 'before the response', proxy));
    };
    const onAbort = () => {
      req?.destroy();
      fail(new CancelledError());
    };
    const cleanup = () => ctx.signal?.removeEventListener('abort', onAbort);
    ctx.signal?.addEventListener('abort', onAbort, { once: true });

    const send = (options: https.RequestOptions, mod: typeof http | typeof https) => {
      let response: http.IncomingMessage | null = null;
      // No connection pooling (agent: false): the idle-timeout listener below must not outlive this request.
      const r = mod.request({ agent: false, ...options }, (res) => {
        if (settled) return void res.destroy();
        settled = true;
        cleanup();
        response = res;
        resolve(res);
      });
      req = r;
      r.on('socket', (socket: Socket) => {
        socket.setTimeout(ctx.timeoutMs);
        socket.on('timeout', () => {
          // Before the response: fail the request; during the body: fail the body stream (the pipeline reports it).
          if (response) response.destroy(timeoutError(originalUrl, ctx.timeoutMs, target, proxy));
          else {
            timedOut = true;
            r.destroy();
          }
        });
      });
      r.on('error', fail);
      r.end();
    };

    const path_ = target.pathname + target.search;
    if (!proxy) {
      send({ protocol: target.protocol, hostname: target.hostname, port, path: path_, method: 'GET', headers, ca }, isHttps ? https : http);
      return;
    }
    const proxyAuth = proxy.username ? { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` } : {};
    const proxyPort = Number(proxy.port) || 80;
    if (!isHttps) {
      // Plain http through a forward proxy: absolute-form request target.
      send({ hostname: proxy.hostname, port: proxyPort, path: target.href, method: 'GET', headers: { ...headers, host: target.host, ...proxyAuth } }, http);
      return;
    }
    // https through the proxy: CONNECT tunnel, then TLS to the target over it.
    const connectReq = http.request({
      hostname: proxy.hostname,
      port: proxyPort,
      method: 'CONNECT',
      path: `${target.hostname}:${port}`,
      headers: { host: `${target.hostname}:${port}`, ...proxyAuth },
    });
    req = connectReq;
    connectReq.setTimeout(ctx.timeoutMs, () => {
      timedOut = true;
      connectReq.destroy();
    });
    connectReq.on('error', fail);
    connectReq.once('connect', (res: http.IncomingMessage, socket: Socket) => {
      if (settled) return void socket.destroy();
      socket.setTimeout(0); // the tunnel's idle timeout is watched on the TLS socket from here on
      if (res.statusCode !== 200) {
        socket.destroy();
        settled = true;
        cleanup();
        reject(new ClipLensError('model-download-proxy', `${originalUrl}: proxy ${proxy.host} refused the tunnel to ${target.hostname}:${port} (HTTP ${res.statusCode} ${res.statusMessage ?? ''})`.trim()));
        return;
      }
      // `host` is what the certificate is checked against; SNI only for names, not IP addresses (RFC 6066).
      const tlsSocket = tls.connect({ socket, host: target.hostname, ca, ...(isIP(target.hostname) ? {} : { servername: target.hostname }) });
      tlsSocket.on('error', fail);
      send(
        // agent must be undefined (not false) for Node to use createConnection instead of dialling the target itself.
        { hostname: target.hostname, port, path: path_, method: 'GET', headers, createConnection: () => tlsSocket, agent: undefined },
        https,
      );
    });
    connectReq.end();
  });
}

/**
 * The proxy to use for `target`: the explicit option, else HTTPS_PROXY/https_proxy (https targets) or
 * HTTP_PROXY/http_proxy (http targets); none when NO_PROXY/no_proxy matches the host ('*', a host, a '.domain'
 * suffix, optionally with ':port'). Only http:// proxies are supported.
 */
export function proxyFor(target: URL, explicit?: string, env: NodeJS.ProcessEnv = process.env): URL | null {
  const raw = explicit || (target.protocol === 'https:' ? env.HTTPS_PROXY || env.https_proxy : env.HTTP_PROXY || env.http_proxy);
  if (!raw) return null;
  if (noProxyMatches(target, env.NO_PROXY ?? env.no_proxy ?? '')) return null;
  let proxy: URL;
  try {
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new ClipLensError('model-download-proxy', `invalid proxy URL '${raw}'; expected http://host:port`);
  }
  if (proxy.protocol !== 'http:') throw new ClipLensError('model-download-proxy', `unsupported proxy '${raw}': only http:// proxies are supported`);
  return proxy;
}

function noProxyMatches(target: URL, noProxy: string): boolean {
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (let item of noProxy.split(/[\s,]+/).filter(Boolean)) {
    item = item.toLowerCase();
    if (item === '*') return true;
    let itemPort: string | null = null;
    const m = /^(.*):(\d+)$/.exec(item);
    if (m && !item.includes(']') && m[1].split(':').length === 1) {
      item = m[1];
      itemPort = m[2];
    }
    item = item.replace(/^\[|\]$/g, '').replace(/^\*?\./, '.');
    if (itemPort && itemPort !== port) continue;
    if (item.startsWith('.') ? host.endsWith(item) || host === item.slice(1) : host === item || host.endsWith(`.${item}`)) return true;
  }
  return false;
}

function httpError(status: number, statusMessage: string, url: string, finalUrl: string): ClipLensError {
  const via = finalUrl !== url ? ` (redirected to ${finalUrl})` : '';
  if (status === 404) {
    return new ClipLensError('model-download-not-found', `${url}${via}: HTTP 404 Not Found; the file does not exist at this revision (check the model id, or the mirror in ${MIRROR_ENV})`);
  }
  if (status === 401 || status === 403) {
    return new ClipLensError('model-download-denied', `${url}${via}: HTTP ${status} ${statusMessage}; the server refused access (a gated or private repository needs HF_TOKEN)`.trim());
  }
  return new ClipLensError('model-download-http', `${url}${via}: HTTP ${status} ${statusMessage}; expected 200 or 206`.replace(/ ;/, ';'));
}

function timeoutError(url: string, ms: number, target: URL, proxy: URL | null): ClipLensError {
  const via = proxy ? ` via proxy ${proxy.host}` : '';
  return new ClipLensError('model-download-timeout', `${url}: no data from ${target.host}${via} for ${ms} ms (timed out); run again to resume`);
}

function networkError(e: unknown, url: string, ctx: RequestContext, when: string, proxy: URL | null = null): Error {
  if (e instanceof ClipLensError || e instanceof CancelledError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? '';
  const target = new URL(url);
  const peer = proxy ? `proxy ${proxy.host}` : target.host;
  if (code === 'ECONNREFUSED') return new ClipLensError('model-download-refused', `${url}: connection refused by ${peer}`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new ClipLensError('model-download-dns', `${url}: cannot resolve host ${proxy ? proxy.hostname : target.hostname} (offline? set HTTPS_PROXY or ${MIRROR_ENV})`);
  if (code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return new ClipLensError('model-download-tls', `${url}: TLS certificate problem (${code}); behind a TLS-inspecting proxy, pass its CA (ca option) or set NODE_EXTRA_CA_CERTS`);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || /aborted|socket hang up/i.test(err.message ?? '')) {
    return new ClipLensError('model-download-interrupted', `${url}: the connection was dropped ${when}`);
  }
  void ctx;
  return new ClipLensError('model-download-failed', `${url}: ${err.message ?? String(e)} ${when}`);
}

// ---------------------------------------------------------------------------------------------------------------------
// Cache bookkeeping: lock, pins, atomic directory replacement.

function isCommit(rev: string): boolean {
  return /^[0-9a-f]{40}$/.test(rev);
}

/** Read the pin file; a missing or unreadable one is an empty pin set. */
export async function readPins(cacheDir: string): Promise<PinFile> {
  try {
    const parsed = JSON.parse((await readRegularFile(path.join(cacheDir, PINS_FILE), { maxBytes: FILE_LIMITS.modelText })).toString('utf8')) as PinFile;
    if (parsed && parsed.schema === 1 && typeof parsed.models === 'object' && parsed.models) return parsed;
  } catch {
    // fall through: start a fresh pin file
  }
  return { schema: 1, models: {} };
}

async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(data, null, 2) + '\n');
  await fsp.rename(tmp, file);
}

/** Replace `finalDir` by `staging` with renames only, so `finalDir` is never a half model. */
async function moveIntoPlace(staging: string, finalDir: string): Promise<void> {
  await makeDirectory(path.dirname(finalDir));
  if (await pathExists(finalDir, { followSymlinks: true })) {
    const old = path.join(path.dirname(finalDir), `.old-${path.basename(finalDir)}-${process.pid}-${Date.now()}`);
    await fsp.rename(finalDir, old);
    await fsp.rename(staging, finalDir);
    await fsp.rm(old, { recursive: true, force: true });
  } else {
    await fsp.rename(staging, finalDir);
  }
}

/** An exclusive lock file holding our pid; a lock left by a dead process is taken over. */
async function acquireLock(lockFile: string, id: string): Promise<{ release: () => Promise<void> }> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fsp.open(lockFile, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return { release: () => fsp.rm(lockFile, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await fsp.readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new ClipLensError('model-download-busy', `process ${pid} is already downloading '${id}' (lock ${lockFile}); wait for it or remove the lock if that process is gone`);
      }
      await fsp.rm(lockFile, { force: true });
    }
  }
  throw new ClipLensError('model-download-busy', `cannot take the download lock ${lockFile}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
