/**
 * `clip-lens check`: the quality gate for commits and CI. Evaluates datasets (incrementally, through the embedding
 * cache), compares them with the thresholds of the `gate` section of their `.clip-lens.json`, prints what failed with
 * the numbers, and exits 0 when every threshold is met, 1 when one is not, 2 when a dataset could not be checked.
 *
 * With --staged (the pre-commit hook) it checks what the commit would record: only the datasets the staged changes
 * touch, with their staged content (see core/gitStaged.ts); nothing in the working tree or the index is changed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CancelledError, ClipLensError } from '../core/errors';
import { evaluateDataset } from '../core/evaluate';
import { ClipModel } from '../core/runtime';
import { ensureModel } from '../core/modelDownload';
import { defaultModelEntry, resolveModelSpec } from '../core/modelRegistry';
import { CONFIG_FILE_NAME, formatConfigProblem, readProjectConfig, type ConfigProblem } from '../core/projectConfig';
import { evaluateGate, gateKs, hasThresholds } from '../core/gate';
import { checkRatchet } from '../core/baseline';
import { GATE_FORMATS, formatGate, gateExitCode, type GateFormat, type GateOutcome } from '../core/gateFormats';
import { gitTopLevel, relativeInside, stagedDataset, stagedDatasetRoots, type StagedDataset } from '../core/gitStaged';
import { bar, ProgressLine, UsageError, type CliIO } from './io';

export const CHECK_HELP = `Usage: clip-lens check [<dataset>...] [--staged] [--model DIR|ID] [--format FMT [--output FILE]]...
                        [--cache DIR] [--quantized] [--threads N] [--batch N]

Evaluates each dataset (a folder with a .clip-lens.json) and compares it with the "gate" thresholds of its config.
  <dataset>...     dataset folders (default: every folder under the current one holding a .clip-lens.json,
                   node_modules and .git skipped)
  --staged         check what the next commit records: only datasets the staged changes touch, staged content
  --model          model folder or registry id (default: the config's "model", relative to the config file,
                   else ${defaultModelEntry().id})
  --format         text (default), json, junit, sarif or markdown; repeat with one --output each to write several
  --output FILE    write the format to FILE (the text summary still goes to stdout)
  --cache DIR      embedding cache folder (default: $CLIP_LENS_CACHE or the user cache folder)
Exit codes: 0 every threshold met, 1 a threshold not met, 2 a dataset could not be checked (or bad usage).
`;

/** Folder names never searched for datasets. */
const SKIP_DIRS = new Set(['node_modules', '.git']);

/** Every folder under `root` (itself included) holding a `.clip-lens.json`, sorted. */
export async function findDatasetRoots(root: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    if (signal?.aborted) throw new CancelledError();
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => e.name === CONFIG_FILE_NAME && (e.isFile() || e.isSymbolicLink()))) out.push(dir);
    for (const e of entries) {
      if (e.isDirectory() && !SKIP_DIRS.has(e.name)) await walk(path.join(dir, e.name));
    }
  };
  await walk(root);
  return out.sort();
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

/** A path as shown in outputs: relative to `base` when inside it, else absolute; POSIX separators. */
function shown(base: string, abs: string): string {
  const rel = relativeInside(base, abs);
  if (rel === undefined) return toPosix(abs);
  return rel === '' ? '.' : rel;
}

function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} expects an integer >= 1, got '${value}'`);
  return n;
}

interface Target {
  /** Absolute working-tree folder of the dataset (where relative config paths such as `model` point). */
  root: string;
  /** Repository-relative folder, with --staged. */
  stagedRel?: string;
}

interface LoadedModel {
  model?: ClipModel;
  id: string;
  error?: Error;
}

export async function checkCommand(args: string[], io: CliIO, signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      staged: { type: 'boolean' },
      model: { type: 'string' },
      format: { type: 'string', multiple: true },
      output: { type: 'string', multiple: true },
      cache: { type: 'string' },
      quantized: { type: 'boolean' },
      threads: { type: 'string' },
      batch: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(CHECK_HELP);
    return 0;
  }
  const formats = (values.format ?? ['text']) as string[];
  for (const f of formats) {
    if (!GATE_FORMATS.includes(f as GateFormat)) throw new UsageError(`--format expects one of ${GATE_FORMATS.join(', ')}, got '${f}'`);
  }
  const outputs = values.output ?? [];
  if (outputs.length > 0 && outputs.length !== formats.length) {
    throw new UsageError(`give one --output per --format (${formats.length} format${formats.length === 1 ? '' : 's'}, ${outputs.length} output${outputs.length === 1 ? '' : 's'})`);
  }
  if (outputs.length === 0 && formats.length > 1) throw new UsageError('several --format need one --output each');
  const threads = intOption(values.threads, 'threads');
  const batchSize = intOption(values.batch, 'batch');
  const quantized = Boolean(values.quantized);
  const cwd = process.cwd();
  const cacheDir = values.cache ? path.resolve(values.cache) : undefined;

  // Which datasets.
  let baseDir = cwd;
  let repoRoot: string | undefined;
  const targets: Target[] = [];
  if (values.staged) {
    repoRoot = await gitTopLevel(cwd);
    baseDir = repoRoot;
    const wanted = positionals.map((p) => path.resolve(p));
    for (const rel of await stagedDatasetRoots(repoRoot)) {
      const root = path.join(repoRoot, rel);
      if (wanted.length > 0 && !wanted.some((w) => path.resolve(w) === path.resolve(root))) continue;
      targets.push({ root, stagedRel: rel });
    }
    if (targets.length === 0) {
      io.err('clip-lens check --staged: no staged change touches a dataset with a .clip-lens.json; nothing to check\n');
    }
  } else {
    try {
      baseDir = await gitTopLevel(cwd);
    } catch {
      baseDir = cwd;
    }
    if (positionals.length > 0) {
      for (const p of positionals) {
        const abs = path.resolve(p);
        let st: fs.Stats;
        try {
          st = await fs.promises.stat(abs);
        } catch {
          throw new ClipLensError('dataset-missing', 'no such folder', { file: p });
        }
        if (!st.isDirectory()) throw new ClipLensError('dataset-not-a-folder', `check expects a dataset folder holding ${CONFIG_FILE_NAME}`, { file: p });
        targets.push({ root: abs });
      }
    } else {
      for (const root of await findDatasetRoots(cwd, signal)) targets.push({ root });
      if (targets.length === 0) {
        throw new ClipLensError('no-datasets', `no ${CONFIG_FILE_NAME} found under this folder (node_modules and .git skipped); give dataset folders or add a config with a "gate" section`, { file: cwd });
      }
    }
  }

  const models = new Map<string, Promise<LoadedModel>>();
  const loadModel = (spec: string, specBase: string): Promise<LoadedModel> => {
    // One load per model, however many datasets name it (by registry id, or by folder relative to their config).
    let key: string;
    try {
      const resolved = resolveModelSpec(spec, specBase);
      key = resolved.kind === 'path' ? `path:${resolved.dir}` : `id:${resolved.entry.id}`;
    } catch (e) {
      return Promise.resolve({ id: spec, error: e as Error });
    }
    let p = models.get(key);
    if (!p) {
      p = (async (): Promise<LoadedModel> => {
        try {
          const progress = new ProgressLine(io);
          const dir = await ensureModel(spec, {
            baseDir: specBase,
            quantized,
            onProgress: (d) => progress.update(`Downloading ${d.file} ${d.totalBytes ? bar(d.bytes, d.totalBytes) : ''} ${(d.bytes / 1e6).toFixed(1)} MB`),
          });
          progress.clear();
          return { model: await ClipModel.load(dir, { quantized, threads }), id: spec };
        } catch (e) {
          return { id: spec, error: e as Error };
        }
      })();
      models.set(key, p);
    }
    return p;
  };

  const outcomes: GateOutcome[] = [];
  try {
    for (const t of targets) {
      outcomes.push(await checkOne(t, { io, signal, baseDir, repoRoot, cacheDir, batchSize, modelOption: values.model, loadModel }));
    }
  } finally {
    for (const p of models.values()) {
      const m = await p;
      await m.model?.dispose().catch(() => undefined);
    }
  }

  // Outputs.
  if (outputs.length === 0) {
    // --staged with nothing staged in a dataset: the note on stderr says it all.
    if (!(targets.length === 0 && formats[0] === 'text')) io.out(formatGate(outcomes, formats[0] as GateFormat, { baseDir }));
  } else {
    for (let i = 0; i < outputs.length; i++) {
      const file = path.resolve(outputs[i]);
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.tmp-${process.pid}`;
      await fs.promises.writeFile(tmp, formatGate(outcomes, formats[i] as GateFormat, { baseDir }));
      await fs.promises.rename(tmp, file);
    }
    io.out(formatGate(outcomes, 'text', { baseDir }));
    io.out(`Written: ${outputs.map((o, i) => `${o} (${formats[i]})`).join(', ')}\n`);
  }
  return gateExitCode(outcomes);
}

interface CheckContext {
  io: CliIO;
  signal: AbortSignal;
  baseDir: string;
  repoRoot?: string;
  cacheDir?: string;
  batchSize?: number;
  modelOption?: string;
  loadModel: (spec: string, specBase: string) => Promise<LoadedModel>;
}

async function checkOne(t: Target, ctx: CheckContext): Promise<GateOutcome> {
  const started = performance.now();
  const dataset = shown(ctx.baseDir, t.root);
  const configFile = shown(ctx.baseDir, path.join(t.root, CONFIG_FILE_NAME));
  const outcome: GateOutcome = { dataset, configFile };
  const notes: string[] = [];
  let staged: StagedDataset | undefined;
  const progress = new ProgressLine(ctx.io);
  const finish = (): GateOutcome => {
    outcome.durationMs = performance.now() - started;
    if (notes.length > 0) outcome.notes = notes;
    return outcome;
  };
  try {
    // The folder to evaluate: the working tree, or the staged content.
    let dir = t.root;
    if (t.stagedRel !== undefined && ctx.repoRoot) {
      staged = await stagedDataset(ctx.repoRoot, t.stagedRel);
      dir = staged.dir;
      if (staged.materialized) notes.push(`evaluated the staged content (${staged.files} files checked out to a temporary folder: the working tree differs from the index)`);
    }
    const read = await readProjectConfig(dir);
    if (!read.file) throw new ClipLensError('config-missing', `no ${CONFIG_FILE_NAME} in this dataset folder: nothing to check`, { file: dataset });
    try {
      outcome.configText = await fs.promises.readFile(read.file, 'utf8');
    } catch {
      // Already read once by readProjectConfig; a race here only loses line numbers.
    }
    const gateProblems = read.problems.filter((p) => p.key === '' || p.key === 'gate' || p.key.startsWith('gate.'));
    if (gateProblems.length > 0) {
      const first = formatConfigProblem(configFile, gateProblems[0] as ConfigProblem);
      const more = gateProblems.length > 1 ? ` (and ${gateProblems.length - 1} more problem${gateProblems.length === 2 ? '' : 's'} in the gate section)` : '';
      throw new ClipLensError('config-invalid', `${first}${more}`);
    }
    for (const p of read.problems) notes.push(formatConfigProblem(configFile, p));
    const config = read.config;
    const gate = config.gate ?? {};
    if (!hasThresholds(config.gate)) {
      // Nothing to compare: skip the evaluation.
      notes.push(`no thresholds in the "gate" section of ${configFile}: nothing to check`);
      outcome.result = { passed: true, checks: [], summary: { total: 0, passed: 0, failed: 0 } };
      return finish();
    }

    const spec = ctx.modelOption ?? config.model ?? defaultModelEntry().id;
    const specBase = ctx.modelOption !== undefined ? process.cwd() : t.root;
    const loaded = await ctx.loadModel(spec, specBase);
    if (loaded.error || !loaded.model) {
      const e = loaded.error;
      if (e instanceof CancelledError) throw e;
      const where = ctx.modelOption === undefined && config.model !== undefined ? ` (model "${config.model}" of ${configFile})` : '';
      throw new ClipLensError(e instanceof ClipLensError ? e.code : 'model-load-failed', `cannot load the model${where}: ${e?.message ?? 'unknown error'}`);
    }
    const report = await evaluateDataset(dir, {
      model: loaded.model,
      modelId: loaded.id,
      projectConfig: config,
      ks: gateKs(gate),
      cacheDir: ctx.cacheDir,
      batchSize: ctx.batchSize,
      signal: ctx.signal,
      onProgress: (p) => {
        if (p.phase === 'images') progress.update(`${dataset}: ${bar(p.done, p.total)} ${p.done}/${p.total} images${p.fromCache ? `, ${p.fromCache} cached` : ''}`);
        else progress.update(`${dataset}: ${p.phase}...`, true);
      },
    });
    progress.clear();
    const failed = report.dataset.counts.failed;
    if (failed > 0) notes.push(`${failed} image${failed === 1 ? '' : 's'} could not be evaluated (see clip-lens eval for details)`);
    notes.push(`${report.dataset.counts.evaluated} images evaluated, ${report.timing.imagesComputed} inferred and ${report.timing.imagesFromCache} from the cache`);
    outcome.report = report;
    outcome.result = evaluateGate(report, gate, { warnings: config.warnings });
    await checkRatchet(outcome.result, report, gate, { root: dir, shownRoot: dataset, notes });
  } catch (e) {
    progress.clear();
    if (e instanceof CancelledError) throw e;
    const err = e as Error & { code?: string; file?: string; line?: number };
    const known = e instanceof ClipLensError;
    // Name files by their working-tree path, not the temporary checkout's.
    const unstage = (s: string) => (staged?.materialized ? s.split(staged.dir).join(t.root) : s);
    outcome.error = {
      message: unstage(known ? err.message.split('\n')[0] : `internal error: ${err.stack ?? err.message}`),
      ...(known ? { code: err.code } : {}),
      ...(known && err.file ? { file: shown(ctx.baseDir, staged && err.file.startsWith(staged.dir) ? path.join(t.root, path.relative(staged.dir, err.file)) : path.resolve(err.file)) } : {}),
      ...(known && err.line !== undefined ? { line: err.line } : {}),
    };
  } finally {
    await staged?.dispose().catch(() => undefined);
  }
  return finish();
}
