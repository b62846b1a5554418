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
import { CancelledError, ClipLensError } from '../core/errors';
import { defaultModelEntry, resolveModelSpec } from '../core/modelRegistry';
import { CONFIG_FILE_NAME, readProjectConfig } from '../core/projectConfig';
import { hasThresholds } from '../core/gate';
import { configError, executeRun, loadWithPrecision, locateModel, planRun, type RunPlan } from '../core/run';
import { parsePrecision, type Precision, type PrecisionChoice } from '../core/precision';
import type { ClipModel } from '../core/runtime';
import { GATE_FORMATS, formatGate, gateExitCode, type GateFormat, type GateOutcome } from '../core/gateFormats';
import { gitTopLevel, relativeInside, stagedDataset, stagedDatasetRoots, type StagedDataset } from '../core/gitStaged';
import { runCommand, type CommandContext, type CommandSpec, type ParsedArgs } from './args';
import { bar, cliObtainModel, describeError, ProgressLine, UsageError, writeOutput, type CliIO } from './io';

export const CHECK_COMMAND: CommandSpec = {
  name: 'check',
  usage: ['[<dataset>...] [--staged] [--model DIR|ID] [--format FMT [--output FILE]]...', '[--cache DIR] [--quantized] [--threads N] [--batch N]'],
  summary: 'exit 0 pass, 1 a threshold failed, 2 could not run',
  description:
    'Evaluates each dataset (a folder with a .clip-lens.json) and compares it with the "gate" thresholds of its config.\n' +
    '<dataset>... are dataset folders (default: every folder under the current one holding a .clip-lens.json,\n' +
    'node_modules and .git skipped). A dataset whose config has a problem is not evaluated (exit 2).',
  options: {
    staged: { type: 'boolean', help: 'check what the next commit records: only datasets the staged changes touch, staged content' },
    model: { type: 'string', value: 'DIR|ID', help: `model folder or registry id (default: the config's "model", relative to the config file,\nelse ${defaultModelEntry().id})` },
    format: { type: 'string', value: 'FMT', multiple: true, help: 'text (default), json, junit, sarif or markdown; repeat with one --output each to write several' },
    output: { type: 'string', value: 'FILE', multiple: true, help: 'write the format to FILE (the text summary still goes to stdout)' },
    cache: { type: 'string', value: 'DIR', help: 'embedding cache folder (default: $CLIP_LENS_CACHE or the user cache folder)' },
    quantized: { type: 'boolean', help: 'use the 8-bit (*_quantized.onnx) graphs (= --precision int8)' },
    precision: { type: 'string', value: 'auto|fp32|int8', help: 'numeric precision (default: the config\'s "precision", else fp32; see clip-lens eval --help)' },
    threads: { type: 'integer', help: 'ONNX Runtime threads (default: the number of cores)' },
    batch: { type: 'integer', help: 'images per inference batch (default 32)' },
  },
  notes: 'Exit codes: 0 every threshold met, 1 a threshold not met, 2 a dataset could not be checked (or bad usage).',
  run: (args, ctx) => runCheck(args, ctx),
};

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
  /** Which precision ran (auto: measured for this dataset). */
  precision?: PrecisionChoice;
}

/** `clip-lens check <args>` (parsed by CHECK_COMMAND). */
export function checkCommand(args: string[], io: CliIO, signal: AbortSignal, options: { debug?: boolean } = {}): Promise<number> {
  return runCommand(CHECK_COMMAND, args, { io, signal, debug: Boolean(options.debug) });
}

async function runCheck(args: ParsedArgs, { io, signal, debug }: CommandContext): Promise<number> {
  const positionals = args.positionals;
  const values = { staged: args.flag('staged'), model: args.string('model'), precision: args.string('precision') };
  const precisionOption = values.precision === undefined ? undefined : parsePrecision(values.precision, { option: '--precision' });
  const formats = args.list<string>('format');
  if (formats.length === 0) formats.push('text');
  for (const f of formats) {
    if (!GATE_FORMATS.includes(f as GateFormat)) throw new UsageError(`--format expects one of ${GATE_FORMATS.join(', ')}, got '${f}'`);
  }
  const outputs = args.list<string>('output');
  if (outputs.length > 0 && outputs.length !== formats.length) {
    throw new UsageError(`give one --output per --format (${formats.length} format${formats.length === 1 ? '' : 's'}, ${outputs.length} output${outputs.length === 1 ? '' : 's'})`);
  }
  if (outputs.length === 0 && formats.length > 1) throw new UsageError('several --format need one --output each');
  const threads = args.int('threads');
  const batchSize = args.int('batch');
  const quantized = args.flag('quantized');
  const cwd = process.cwd();
  const cacheDir = args.string('cache') ? path.resolve(args.string('cache') as string) : undefined;

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
  const obtain = cliObtainModel(io);
  const loadShared = (plan: RunPlan): Promise<LoadedModel> => {
    // One load per model and precision, however many datasets name it (by registry id, or by folder relative to
    // their config). auto measures per dataset, so its model is that dataset's own.
    const choice = plan.model;
    let key: string;
    try {
      const resolved = resolveModelSpec(choice.spec, choice.baseDir);
      key = `${plan.precision}:${resolved.kind === 'path' ? `path:${resolved.dir}` : `id:${resolved.entry.id}`}${plan.precision === 'auto' ? `:${plan.root}` : ''}`;
    } catch (e) {
      return Promise.resolve({ id: choice.spec, error: e as Error });
    }
    let p = models.get(key);
    if (!p) {
      p = (async (): Promise<LoadedModel> => {
        try {
          const located = await locateModel(choice, { quantized: plan.quantized, obtain, signal });
          if (!located) throw new ClipLensError('model-missing', `model '${choice.spec}' is not available`);
          const { model, precision } = await loadWithPrecision(plan, located, { threads, signal });
          return { model, id: choice.spec, precision };
        } catch (e) {
          return { id: choice.spec, error: e as Error };
        }
      })();
      models.set(key, p);
    }
    return p;
  };

  const outcomes: GateOutcome[] = [];
  try {
    for (const t of targets) {
      outcomes.push(await checkOne(t, { io, signal, debug, baseDir, repoRoot, cacheDir, batchSize, quantized, modelOption: values.model, precisionOption, loadModel: loadShared }));
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
      const text = formatGate(outcomes, formats[i] as GateFormat, { baseDir });
      await writeOutput(path.resolve(outputs[i] as string), async (fh) => void (await fh.write(text)));
    }
    io.out(formatGate(outcomes, 'text', { baseDir }));
    io.out(`Written: ${outputs.map((o, i) => `${o} (${formats[i]})`).join(', ')}\n`);
  }
  return gateExitCode(outcomes);
}

interface CheckContext {
  io: CliIO;
  signal: AbortSignal;
  debug: boolean;
  baseDir: string;
  repoRoot?: string;
  cacheDir?: string;
  batchSize?: number;
  quantized: boolean;
  modelOption?: string;
  precisionOption?: Precision;
  loadModel: (plan: RunPlan) => Promise<LoadedModel>;
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
    // An invalid config is not evaluated with defaults in place of what it got wrong.
    if (read.problems.length > 0) throw configError(configFile, read.problems, read.file);
    const config = read.config;
    if (!hasThresholds(config.gate)) {
      // Nothing to compare: skip the evaluation.
      notes.push(`no thresholds in the "gate" section of ${configFile}: nothing to check`);
      outcome.result = { passed: true, checks: [], summary: { total: 0, passed: 0, failed: 0 } };
      return finish();
    }

    // The dataset and the config are checked before the model is loaded.
    const plan = await planRun({
      target: dir,
      config: read,
      projectDir: t.root,
      options: { model: ctx.modelOption, precision: ctx.precisionOption },
      // "models" of the config: the gate judges the first.
      firstModelOnly: true,
      quantized: ctx.quantized,
      cacheDir: ctx.cacheDir,
      batchSize: ctx.batchSize,
      signal: ctx.signal,
    });
    const loaded = await ctx.loadModel(plan);
    if (loaded.error || !loaded.model) {
      const e = loaded.error;
      if (e instanceof CancelledError) throw e;
      const where = plan.model.source === 'project' ? ` (model "${config.model ?? config.models?.[0]}" of ${configFile})` : '';
      throw new ClipLensError(e instanceof ClipLensError ? e.code : 'model-load-failed', `cannot load the model${where}: ${e ? describeError(e).line : 'unknown error'}`);
    }
    const { report, gate } = await executeRun(plan, {
      model: loaded.model,
      modelId: loaded.id,
      ratchet: { shownRoot: dataset, notes },
      precision: loaded.precision,
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
    outcome.result = gate ?? undefined;
  } catch (e) {
    progress.clear();
    if (e instanceof CancelledError) throw e;
    const err = e as Error & { code?: string; file?: string; line?: number };
    const known = e instanceof ClipLensError;
    const described = describeError(e);
    if (described.internal && ctx.debug) ctx.io.err(`${err.stack ?? err.message}\n`);
    // Name files by their working-tree path, not the temporary checkout's.
    const unstage = (s: string) => (staged?.materialized ? s.split(staged.dir).join(t.root) : s);
    outcome.error = {
      message: unstage(described.line),
      ...(known ? { code: err.code } : {}),
      ...(known && err.file ? { file: shown(ctx.baseDir, staged && err.file.startsWith(staged.dir) ? path.join(t.root, path.relative(staged.dir, err.file)) : path.resolve(err.file)) } : {}),
      ...(known && err.line !== undefined ? { line: err.line } : {}),
    };
  } finally {
    await staged?.dispose().catch(() => undefined);
  }
  return finish();
}
