/**
 * The one way an evaluation runs, for the CLI (`eval`, `check`, the pre-commit hook) and the editor alike:
 *
 *   planRun(request)          `.clip-lens.json` + the caller's options and settings -> one RunPlan. Checks, in this
 *                             order, before any model is touched: the dataset is readable and non-empty (a config
 *                             whose syntax or "labels" section is broken is reported first, since the dataset cannot
 *                             be read as meant without it), the config is valid, there are two classes or more, the
 *                             templates resolve. An invalid config never falls back to defaults (policy 'fail').
 *   locateModel(choice, ...)  the model folder: a local folder as is, a registry model from the cache, or fetched by
 *                             the caller's `obtain` callback (the CLI downloads with a progress line, the editor asks
 *                             first); undefined when the callback declined.
 *   loadModel(located, ...)   ClipModel.load.
 *   executeRun(plan, model)   evaluateDataset with progress and cancellation, then the gate when thresholds are set.
 *   runEvaluation(request)    all four, for callers without a model pool (the CLI).
 *
 * Precedence of every value: an explicit option (a CLI flag) > the dataset's `.clip-lens.json` > a setting (the
 * editor's) > the built-in default. For the model: option > `CLIP_LENS_MODEL` (editor only) > config "model" (a
 * folder relative to the config file) > setting > clip-vit-base-patch32.
 *
 * Heavy modules (sharp, onnxruntime-node, through runtime.ts and evaluate.ts) are imported on first use only.
 */
import { memMark, releaseGarbageThoroughly } from './memLog';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, ClipLensError } from './errors';
import { readDataset, summarizeProblems } from './dataset';
import { datasetFormat } from './datasetFormat';
import { CONFIG_FILE_NAME, formatConfigProblem, readProjectConfig, type ConfigProblem, type GateConfig, type ProjectConfig, type WarningThresholds } from './projectConfig';
import { defaultModelEntry, quantizedVariant, resolveModelSpec, type RegistryEntry } from './modelRegistry';
import { cachedModelDir, checkCachedModel, defaultCacheDir } from './modelDownload';
import { checkRatchet } from './baseline';
import { evaluateGate, gateKs, hasThresholds, type GateResult } from './gate';
import type { ClipModel } from './runtime';
import { setOnnxThreads } from './onnxMatMul';
import { stopIdleHelpers } from './parallel';
import { choosePrecision, measureAgreement, PRECISION_RULES, sampleIndices, type Precision, type PrecisionChoice } from './precision';
import { promptsForClass, resolveTemplates } from './prompts';
import type { EvaluateProgress, RunImagesFn } from './evaluate';
import { compareRuns } from './compare';
import { makeBaseline } from './baseline';
import type { EvalReport, ModelRun, PredictorName } from './report';
import type { Dataset, DatasetProblem } from './types';
import { checkEmbeddingWidth, DEFAULT_VERIFY, isEmbeddingsDir, forEachEmbedding, readEmbeddingsDir, verifyEmbeddings, type EmbeddingsInput } from './embeddingsDir';
import { INLINE_SAMPLES_LIMIT } from './reportSamples';

// ---------------------------------------------------------------------------------------------------------------------
// Which model

export type ModelSource = 'option' | 'environment' | 'project' | 'settings' | 'default';

export interface ModelChoice {
  /** Registry id or folder, as given. */
  spec: string;
  /** Folder a relative `spec` is resolved against. */
  baseDir: string;
  source: ModelSource;
  /** Why a higher-precedence choice was skipped (shown in the log and the status-bar tooltip). */
  note?: string;
}

export interface ModelChoiceInput {
  /** An explicit choice (the CLI's --model), resolved against `optionBaseDir` (default: the current folder). */
  option?: string;
  optionBaseDir?: string;
  /** The CLIP_LENS_MODEL environment variable's value (the editor honours it; resolved against `settingBaseDir`). */
  environment?: string;
  /** `model` of the dataset's `.clip-lens.json`, and the folder of that file. */
  projectModel?: string;
  projectDir: string;
  /** A setting (the editor's clipLens.model), resolved against `settingBaseDir`. */
  setting?: string;
  settingBaseDir?: string;
  /** False in an untrusted workspace: a model *folder* named by the config is not used (a registry id is). */
  trusted?: boolean;
}

/** True when `spec` names a model folder rather than a registry id (same rules as resolveModelSpec). */
export function isModelFolder(spec: string, baseDir: string): boolean {
  try {
    return resolveModelSpec(spec, baseDir).kind === 'path';
  } catch {
    // An unknown id: not a folder (loading it fails later with the did-you-mean message).
    return false;
  }
}

/** The model a run uses: option > environment > .clip-lens.json > setting > default. */
export function chooseModelSpec(input: ModelChoiceInput): ModelChoice {
  const settingBase = input.settingBaseDir ?? process.cwd();
  const option = input.option?.trim();
  if (option) return { spec: option, baseDir: input.optionBaseDir ?? process.cwd(), source: 'option' };
  const fromEnv = input.environment?.trim();
  if (fromEnv) return { spec: fromEnv, baseDir: settingBase, source: 'environment' };
  let note: string | undefined;
  const project = input.projectModel?.trim();
  if (project) {
    if (input.trusted !== false || !isModelFolder(project, input.projectDir)) {
      return { spec: project, baseDir: input.projectDir, source: 'project' };
    }
    note = `the model folder "${project}" named by ${path.join(input.projectDir, CONFIG_FILE_NAME)} is not used in Restricted Mode (trust the workspace to use it)`;
  }
  const setting = input.setting?.trim();
  const fallback = defaultModelEntry().id;
  if (setting && setting !== fallback) return { spec: setting, baseDir: settingBase, source: 'settings', ...(note ? { note } : {}) };
  return { spec: fallback, baseDir: settingBase, source: 'default', ...(note ? { note } : {}) };
}

/** A model folder ready to load. */
export interface LocatedModel {
  dir: string;
  /** true: the *_quantized graphs; undefined: full precision, or quantized when the folder only has those. */
  quantized: boolean | undefined;
  /** How the model was named (for the report). */
  id: string;
  /** The registry entry, for registry models. */
  entry?: RegistryEntry;
}

/**
 * Fetches a registry model that is not in the cache: returns its folder, or undefined when the user declined. The
 * caller decides about consent and shows progress; core/modelDownload.ts downloadModel does the work.
 */
export type ObtainModel = (entry: RegistryEntry, cacheDir: string, signal?: AbortSignal) => Promise<string | undefined>;

export interface LocateOptions {
  quantized?: boolean;
  /** Model cache folder (default: $CLIP_LENS_CACHE or the user cache folder). */
  cacheDir?: string;
  /** Called only when a registry model is missing from the cache. Without it, a missing model is an error. */
  obtain?: ObtainModel;
  signal?: AbortSignal;
}

/** Where the chosen model is; downloads (through `obtain`) only when a registry model is not cached. */
export async function locateModel(choice: ModelChoice, options: LocateOptions = {}): Promise<LocatedModel | undefined> {
  const resolved = resolveModelSpec(choice.spec, choice.baseDir);
  if (resolved.kind === 'path') return { dir: resolved.dir, quantized: options.quantized ? true : undefined, id: choice.spec };
  let entry: RegistryEntry = resolved.entry;
  if (options.quantized && !entry.quantized) {
    const q = quantizedVariant(entry);
    if (!q) throw new ClipLensError('model-no-quantized', `model '${entry.id}' has no quantized variant`);
    entry = q;
  }
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  if ((await checkCachedModel(entry, cacheDir)) === null) return { dir: cachedModelDir(entry, cacheDir), quantized: entry.quantized, id: choice.spec, entry };
  if (!options.obtain) throw new ClipLensError('model-not-downloaded', `model '${entry.id}' is not downloaded (clip-lens model download ${entry.id})`);
  const dir = await options.obtain(entry, cacheDir, options.signal);
  return dir === undefined ? undefined : { dir, quantized: entry.quantized, id: choice.spec, entry };
}

export interface LoadModelOptions {
  threads?: number;
  executionProviders?: string[];
}

/**
 * Loads a located model (onnxruntime-node and sharp are imported here, on first use). Its thread count also applies
 * to the shared ONNX Runtime sessions of the zero-shot head, kNN products and linear probe (onnxMatMul.ts).
 */
export async function loadModel(located: Pick<LocatedModel, 'dir' | 'quantized'>, options: LoadModelOptions = {}): Promise<ClipModel> {
  setOnnxThreads(options.threads);
  const { ClipModel } = await import('./runtime.js');
  return ClipModel.load(located.dir, { quantized: located.quantized, threads: options.threads, ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}) });
}

// ---------------------------------------------------------------------------------------------------------------------
// The run plan

/** What the caller asks for. `options` win over `.clip-lens.json`, which wins over `settings`. */
export interface RunRequest {
  /** Dataset folder or label file. */
  target: string;
  /** Explicit choices (CLI flags). */
  options?: {
    model?: string;
    /**
     * Two models in one go (the CLI's --model A --model B): the report is the first's, with a `comparison` against
     * the second (as --baseline with the second's report) and `models`. Wins over `model`.
     */
    models?: string[];
    /** The second model's precision (default: the first's). */
    comparedPrecision?: Precision;
    /** Folder a relative --model is resolved against (default: the current folder). */
    modelBaseDir?: string;
    labelFile?: string;
    imageColumn?: string;
    labelColumn?: string;
    splitColumn?: string;
    topK?: number;
    templates?: string | string[];
    /** Which predictor finds label errors (predictors.ts). */
    predictor?: PredictorName;
    /** fp32 | int8 | auto (see core/precision.ts). */
    precision?: Precision;
    /** A clip-retrieval folder (img_emb/, metadata/) whose embeddings replace the images' (relative to the cwd). */
    embeddings?: string;
    /** Images embedded locally to check the given embeddings (default DEFAULT_VERIFY; 0: no check). */
    verify?: number;
  };
  /** Defaults from the caller's settings (the editor's). */
  settings?: {
    model?: string;
    modelBaseDir?: string;
    /** CLIP_LENS_MODEL (the editor honours it). */
    environmentModel?: string;
    topK?: number;
    predictor?: PredictorName;
    templates?: string | string[];
    warnings?: WarningThresholds;
    precision?: Precision;
  };
  /** False in an untrusted workspace (see chooseModelSpec). */
  trusted?: boolean;
  /**
   * Evaluate only the first of "models" of the config (check and baseline: the gate and the ratchet judge the
   * report, which is the first model's).
   */
  firstModelOnly?: boolean;
  /** The older switch for int8 (--quantized, clipLens.quantized): precision int8 unless a precision is given. */
  quantized?: boolean;
  /** Embedding cache root; null disables it; undefined: the user's cache folder. */
  cacheDir?: string | null;
  batchSize?: number;
  probabilities?: boolean;
  /** Extra K values for Recall@K. */
  ks?: number[];
  /**
   * What an invalid `.clip-lens.json` does: 'fail' (default) stops the run with a ClipLensError naming its first
   * problem's line; 'list' runs with the valid keys and lists the problems in the report's errors.
   */
  configProblems?: 'fail' | 'list';
  /**
   * Folder a relative "model" of the config is resolved against (default: the dataset root). `check --staged`
   * evaluates a temporary checkout of the staged files, but the model folder is in the working tree.
   */
  projectDir?: string;
  /** The config as already read by the caller (check reads it first to skip datasets without thresholds). */
  config?: { config: ProjectConfig; file?: string; problems: ConfigProblem[] };
  signal?: AbortSignal;
}

export interface RunPlan {
  target: string;
  /** The folder holding the dataset and its `.clip-lens.json`. */
  root: string;
  dataset: Dataset;
  /** The config as read (valid keys only). */
  config: ProjectConfig;
  configFile?: string;
  configProblems: ConfigProblem[];
  model: ModelChoice;
  /** The int8 graphs are wanted (precision int8). */
  quantized: boolean;
  /** Requested precision: option > .clip-lens.json > --quantized/setting > fp32. */
  precision: Precision;
  labels: { file?: string; imageColumn?: string; labelColumn?: string; splitColumn?: string };
  topK?: number;
  templates?: string | string[];
  /** Which predictor finds label errors: option, else config, else settings, else 'auto'. */
  predictor?: PredictorName;
  warnings?: WarningThresholds;
  gate?: GateConfig;
  ks: number[];
  cacheDir?: string | null;
  batchSize?: number;
  probabilities: boolean;
  configPolicy: 'fail' | 'list';
  /** Embeddings computed elsewhere (option --embeddings or config "embeddings"), and how many images to check. */
  embeddings?: { input: EmbeddingsInput; verify: number };
  /** The second model of a two-model run (option models, else config "models"), evaluated over the same image pass. */
  compared?: { model: ModelChoice; precision: Precision; quantized: boolean };
}

/** The folder holding the dataset (and its `.clip-lens.json`): the target itself, or a label file's folder. */
export async function datasetRootOf(target: string): Promise<string> {
  const st = await fs.promises.stat(target).catch(() => null);
  if (!st) throw new ClipLensError('dataset-missing', 'no such file or folder', { file: target });
  return st.isDirectory() ? path.resolve(target) : path.dirname(path.resolve(target));
}

/**
 * The error an invalid config stops a run with: "<file>:<line>:<column>: <key>: <problem> (and N more problems)".
 * `shown` is the file as the message names it; `file` (default `shown`) the path the error points at.
 */
export function configError(shown: string, problems: readonly ConfigProblem[], file: string = shown): ClipLensError {
  const first = problems[0] as ConfigProblem;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length === 2 ? '' : 's'})` : '';
  const err = new ClipLensError('config-invalid', `${formatConfigProblem(shown, first)}${more}`);
  return Object.assign(err, { file, line: first.line });
}

/** A problem that decides how the dataset is read: a syntax error (key '') or the "labels" section. */
function blocksDatasetRead(p: ConfigProblem): boolean {
  return p.key === '' || p.key === 'labels' || p.key.startsWith('labels.');
}

/** Per key, the config's warning thresholds win over the settings' (goodAccuracy never below lowAccuracy). */
export function mergeWarningThresholds<T extends WarningThresholds>(fromConfig: WarningThresholds | undefined, fromSettings: T): T {
  const out = { ...fromSettings, ...(fromSettings.recallAtK ? { recallAtK: { ...fromSettings.recallAtK } } : {}) } as T;
  if (!fromConfig) return out;
  for (const key of Object.keys(fromConfig) as (keyof WarningThresholds)[]) {
    const v = fromConfig[key];
    if (v !== undefined) (out as unknown as Record<string, unknown>)[key] = typeof v === 'object' ? { ...v } : v;
  }
  if (out.goodAccuracy !== undefined && out.lowAccuracy !== undefined && out.goodAccuracy < out.lowAccuracy) out.goodAccuracy = out.lowAccuracy;
  return out;
}

/**
 * When the only "class" is a folder that has class folders itself (the parent of the dataset was chosen), the folder
 * to evaluate instead; '' otherwise.
 */
async function oneFolderHint(dataset: Dataset): Promise<string> {
  if (datasetFormat(dataset.format).hasLabelFile || dataset.classes.length !== 1) return '';
  const only = path.join(dataset.root, dataset.classes[0]!);
  const entries = await fs.promises.readdir(only, { withFileTypes: true }).catch(() => []);
  const sub = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).length;
  return sub >= 2 ? `; its only folder '${dataset.classes[0]}' has ${sub} folders itself, so it looks like the dataset: evaluate ${only}` : '';
}

/** Resolves a request into a plan. Reads the config and the dataset; never touches a model. */
export async function planRun(request: RunRequest): Promise<RunPlan> {
  const target = path.resolve(request.target);
  const root = await datasetRootOf(target);
  const read = request.config ?? (await readProjectConfig(root));
  const config = read.config;
  const configFile = read.file ?? path.join(root, CONFIG_FILE_NAME);
  const policy = request.configProblems ?? 'fail';
  const problems = read.problems;
  if (policy === 'fail' && problems.length > 0 && problems.some(blocksDatasetRead)) throw configError(configFile, problems);

  const o = request.options ?? {};
  const s = request.settings ?? {};
  const lc = config.labels ?? {};
  const labels = {
    file: o.labelFile !== undefined ? path.resolve(o.labelFile) : lc.file !== undefined && target === root ? path.resolve(root, lc.file) : undefined,
    imageColumn: o.imageColumn ?? lc.imageColumn,
    labelColumn: o.labelColumn ?? lc.labelColumn,
    splitColumn: o.splitColumn ?? lc.splitColumn,
  };
  // 1. The dataset: readable and non-empty (from the metadata of outside embeddings, when given).
  // A folder holding img_emb/ (clip-retrieval output) is such a folder itself.
  const embeddingsDir =
    o.embeddings !== undefined ? path.resolve(o.embeddings) : config.embeddings !== undefined ? path.resolve(root, config.embeddings) : target === root && isEmbeddingsDir(root) ? root : undefined;
  let embeddings: RunPlan['embeddings'];
  let dataset: Dataset;
  if (embeddingsDir !== undefined) {
    const read = await readEmbeddingsDir(embeddingsDir, { labelFile: labels.file, imageColumn: labels.imageColumn, labelColumn: labels.labelColumn, splitColumn: labels.splitColumn, signal: request.signal });
    dataset = read.dataset;
    embeddings = { input: read.input, verify: o.verify ?? DEFAULT_VERIFY };
  } else {
    if (o.verify !== undefined) throw new ClipLensError('verify-without-embeddings', '--verify checks outside embeddings: give --embeddings DIR, a folder holding img_emb/, or "embeddings" in .clip-lens.json', { file: target });
    dataset = await readDataset(target, { ...labels, labelFile: labels.file, signal: request.signal });
  }
  // 2. The config: valid.
  if (policy === 'fail' && problems.length > 0) throw configError(configFile, problems);
  // 3. What the evaluation needs before a model: two classes, templates that resolve.
  if (dataset.classes.length < 2) {
    const n = dataset.classes.length;
    // The problems that left too few classes are named: "found 0 classes" alone hides the cause (docs/robustness.md);
    // a chosen folder that is one level off names the folder to evaluate.
    throw new ClipLensError('dataset-too-few-classes', `found ${n} class${n === 1 ? '' : 'es'}; zero-shot evaluation needs at least 2${summarizeProblems(dataset.problems)}${await oneFolderHint(dataset)}`, { file: dataset.labelFile ?? dataset.root });
  }
  const templates = o.templates ?? config.templates ?? s.templates;
  await resolveTemplates(templates, dataset.root);

  if (o.models !== undefined && o.models.length !== 2) throw new ClipLensError('models-count', `two models are compared in one go, got ${o.models.length}`);
  const model = chooseModelSpec({
    option: o.models?.[0] ?? o.model,
    optionBaseDir: o.modelBaseDir,
    environment: s.environmentModel,
    projectModel: config.model ?? config.models?.[0],
    projectDir: request.projectDir ?? root,
    setting: s.model,
    settingBaseDir: s.modelBaseDir,
    trusted: request.trusted,
  });
  const warnings = s.warnings ? mergeWarningThresholds(config.warnings, s.warnings) : config.warnings;
  const precision: Precision = o.precision ?? config.precision ?? (request.quantized ? 'int8' : s.precision) ?? 'fp32';
  const compared = request.firstModelOnly && !o.models ? undefined : comparedModel(o, config, model, request.projectDir ?? root, request.trusted);
  if (compared && embeddingsDir !== undefined) {
    throw new ClipLensError('models-with-embeddings', 'two models cannot be compared on embeddings computed elsewhere (--embeddings or "embeddings" of .clip-lens.json): evaluate the images, or one model', { file: embeddingsDir });
  }
  const comparedPrecision: Precision = o.comparedPrecision ?? precision;
  if (compared && sameModel(model, compared) && comparedPrecision === precision) {
    throw new ClipLensError('models-same', `the two models are the same (${model.spec}, ${precision}): name two models, or one model in two precisions (--precision fp32 --precision int8)`);
  }
  return {
    target,
    root,
    dataset,
    config,
    ...(read.file ? { configFile: read.file } : {}),
    configProblems: problems,
    model,
    quantized: precision === 'int8',
    precision,
    labels,
    topK: o.topK ?? config.topK ?? s.topK,
    templates,
    predictor: o.predictor ?? config.predictor ?? s.predictor,
    warnings,
    gate: config.gate,
    ks: [...new Set([...gateKs(config.gate), ...(request.ks ?? [])])].sort((a, b) => a - b),
    cacheDir: request.cacheDir,
    batchSize: request.batchSize,
    probabilities: Boolean(request.probabilities),
    configPolicy: policy,
    ...(embeddings ? { embeddings } : {}),
    ...(compared ? { compared: { model: compared, precision: comparedPrecision, quantized: comparedPrecision === 'int8' } } : {}),
  };
}

/** The second model: option models[1], else config "models"[1] when the first came from the config. */
function comparedModel(o: NonNullable<RunRequest['options']>, config: ProjectConfig, first: ModelChoice, projectDir: string, trusted: boolean | undefined): ModelChoice | undefined {
  if (o.models) return { spec: o.models[1] as string, baseDir: o.modelBaseDir ?? process.cwd(), source: 'option' };
  const spec = config.models?.[1];
  if (first.source !== 'project' || spec === undefined) return undefined;
  if (trusted === false && isModelFolder(spec, projectDir)) {
    first.note = `the model folder "${spec}" named by ${path.join(projectDir, CONFIG_FILE_NAME)} is not used in Restricted Mode (trust the workspace to compare with it)`;
    return undefined;
  }
  return { spec, baseDir: projectDir, source: 'project' };
}

function sameModel(a: ModelChoice, b: ModelChoice): boolean {
  const where = (c: ModelChoice) => (isModelFolder(c.spec, c.baseDir) ? path.resolve(c.baseDir, c.spec) : c.spec);
  return where(a) === where(b);
}

export interface RunOutcome {
  report: EvalReport;
  /** The gate's verdict when the config sets thresholds. */
  gate: GateResult | null;
}

export interface ExecuteOptions {
  model: ClipModel;
  /** How the model was named (default: the plan's choice). */
  modelId?: string;
  /** The ratchet (gate.maxDrop, core/baseline.ts): how the dataset root is shown in its messages, and where its notes go. */
  ratchet?: { shownRoot?: string; notes?: string[] };
  /** Which precision ran and why (auto: the measured agreement); in the report as `precision`. */
  precision?: PrecisionChoice;
  signal?: AbortSignal;
  onProgress?: (p: EvaluateProgress) => void;
  /** Results while running (evaluate.ts onProvisional): reports over the images done so far, before the final one. */
  onProvisional?: (report: EvalReport) => void;
  /** evaluate.ts judgementBudgetBytes: above it the judgement streams (tests force either path). */
  judgementBudgetBytes?: number;
  /** The image phase (default: its own pass; executeRuns: a participant of the pass shared by both models). */
  images?: RunImagesFn;
  /** Release the text tower once the prompts are embedded (evaluate.ts EvaluateOptions.releaseTextTower). */
  releaseTextTower?: boolean;
}

/** Evaluates the planned dataset with a loaded model; the gate is applied when the config sets thresholds. */
export async function executeRun(plan: RunPlan, options: ExecuteOptions): Promise<RunOutcome> {
  const { evaluateDataset } = await import('./evaluate.js');
  let checked: Awaited<ReturnType<typeof verifyEmbeddings>> | undefined;
  const outside = plan.embeddings;
  let notOnDisk: { images: number; folders: number; example: string } | undefined;
  if (outside) {
    await checkEmbeddingWidth(options.model, outside.input, options.modelId ?? plan.model.spec);
    if (outside.verify > 0) checked = await verifyEmbeddings(options.model, plan.dataset, outside.input, outside.verify, options.signal);
    memMark(`run: embeddings width checked${outside.verify > 0 ? ', verify done' : ''}`);
  }
  const report = await evaluateDataset(plan.target, {
    model: options.model,
    modelId: options.modelId ?? plan.model.spec,
    dataset: plan.dataset,
    projectConfig: { ...plan.config, topK: plan.topK, templates: plan.templates, warnings: plan.warnings },
    topK: plan.topK,
    templates: plan.templates,
    predictor: plan.predictor,
    ks: plan.ks,
    cacheDir: plan.cacheDir,
    batchSize: plan.batchSize,
    probabilities: plan.probabilities,
    signal: options.signal,
    onProgress: options.onProgress,
    releaseTextTower: options.releaseTextTower,
    ...(options.onProvisional ? { onProvisional: options.onProvisional } : {}),
    ...(options.images ? { runImages: options.images } : {}),
    ...(options.judgementBudgetBytes !== undefined ? { judgementBudgetBytes: options.judgementBudgetBytes } : {}),
    ...(outside
      ? {
          imageEmbeddings: {
            forEach: (onRow, onBad, signal, onChunk) => forEachEmbedding(outside.input, onRow, onBad, signal, onChunk),
            onImagesNotOnDisk: (n) => {
              notOnDisk = { images: n.images, folders: n.folders, example: path.relative(plan.dataset.root, n.example ?? plan.dataset.root).split(path.sep).join('/') };
            },
          },
        }
      : {}),
  });
  // A large evaluation's embedding rows (a GB at a million samples) are garbage now: freed before the report is written
  // (the helper threads, which saw them in shared memory, stopped first unless another evaluation is using them: they
  // restart on demand), and given back before it is (the write encodes the sidecar on a worker beside the JSON).
  if (plan.dataset.samples.length > INLINE_SAMPLES_LIMIT) {
    await stopIdleHelpers();
    await releaseGarbageThoroughly('the evaluation');
  }
  if (options.precision) report.precision = options.precision;
  if (outside) {
    const { input } = outside;
    report.embeddings = {
      dir: input.dir,
      shards: input.shards.length,
      rows: input.rows,
      dtype: input.dtype,
      verified: checked && 'verified' in checked ? checked.verified : null,
      ...(checked && 'skipped' in checked ? { verifySkipped: checked.skipped } : outside.verify === 0 ? { verifySkipped: '--verify 0' } : {}),
      ...(notOnDisk ? { imagesNotOnDisk: notOnDisk } : {}),
    };
  }
  if (plan.configPolicy === 'list') {
    for (const p of plan.configProblems) report.errors.push({ code: 'config-invalid', message: `${p.key ? `${p.key}: ` : ''}${p.message}`, file: CONFIG_FILE_NAME, line: p.line });
  }
  const gate = plan.gate && hasThresholds(plan.gate) ? evaluateGate(report, plan.gate, { warnings: plan.warnings }) : null;
  if (gate) await checkRatchet(gate, report, plan.gate, { root: plan.root, ...options.ratchet });
  return { report, gate };
}

/** What one model of a two-model run needs: the loaded model, its name, its precision. */
/** The second model of executeRuns: its own progress callback too (the signal is the first's). */
export type ComparedModelRun = Pick<ExecuteOptions, 'model' | 'modelId' | 'precision' | 'onProgress'>;

/**
 * Two models in one go (eval --model A --model B, config "models"): both evaluations run through executeRun at once,
 * each image read and decoded once for both (evaluate.ts shareImagePass), each model with its own cache entries. The
 * outcome is the first model's (its gate included) with `comparison` = compare(second, first), the second as the
 * reference as with --baseline, and `models` naming both with their headline metrics.
 */
export async function executeRuns(
  plan: RunPlan,
  first: ExecuteOptions,
  second: ComparedModelRun,
): Promise<RunOutcome & { compared: EvalReport; images: { reads: number; decodes: number } }> {
  if (plan.embeddings) throw new ClipLensError('models-with-embeddings', 'two models cannot be compared on embeddings computed elsewhere', { file: plan.embeddings.input.dir });
  const { shareImagePass } = await import('./evaluate.js');
  const pass = shareImagePass(2);
  const runs = [
    executeRun(plan, { ...first, images: pass.participants[0] }),
    // The gate judges the report, which is the first model's.
    executeRun({ ...plan, gate: undefined }, { ...second, signal: first.signal, images: pass.participants[1] }),
  ].map((p) => p.catch((e: unknown) => {
    pass.abandon(e);
    throw e;
  }));
  const settled = await Promise.allSettled(runs);
  const failed = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  // The cause, not the cancellation it caused in the other evaluation.
  if (failed.length > 0) throw (failed.find((f) => !(f.reason instanceof CancelledError)) ?? failed[0] as PromiseRejectedResult).reason;
  const [a, b] = settled.map((r) => (r as PromiseFulfilledResult<RunOutcome>).value) as [RunOutcome, RunOutcome];
  attachModelComparison(a.report, b.report);
  return { ...a, compared: b.report, images: { ...pass.stats } };
}

/** How a model is named in a comparison: its id, with its precision when int8. */
export function modelRunName(report: EvalReport): string {
  return `${report.model.id}${report.model.quantized ? ' (int8)' : ''}`;
}

/** A model's line of `models`: what ran and its headline metrics. */
export function modelRun(report: EvalReport): ModelRun {
  const m = report.metrics;
  return {
    id: report.model.id,
    dir: report.model.dir,
    quantized: report.model.quantized,
    imageSize: report.model.imageSize,
    top1Accuracy: m?.top1Accuracy ?? null,
    balancedAccuracy: m?.balancedAccuracy ?? null,
    macroF1: m?.macro.f1 ?? null,
    labelIssues: report.labelIssues.length,
    imagesComputed: report.timing.imagesComputed,
    imagesFromCache: report.timing.imagesFromCache,
  };
}

/** `report` (the first model's) gets `models` and its `comparison` against `other` (the second model's). */
export function attachModelComparison(report: EvalReport, other: EvalReport): void {
  report.models = [modelRun(report), modelRun(other)];
  report.comparison = compareRuns(makeBaseline(other), makeBaseline(report), [modelRunName(other), modelRunName(report)]);
}

export interface RunEvaluationOptions extends LocateOptions, LoadModelOptions {
  onProgress?: (p: EvaluateProgress) => void;
  /** Progress of the second model of a two-model run (`onProgress` gets the first model's). */
  onComparedProgress?: (p: EvaluateProgress) => void;
  /** Called with the plan before the model is located (e.g. to log it). */
  onPlan?: (plan: RunPlan) => void;
}

/** Plans, locates and loads the model, evaluates, disposes the model. Undefined when `obtain` declined a download. */
export async function runEvaluation(request: RunRequest, options: RunEvaluationOptions = {}): Promise<(RunOutcome & { plan: RunPlan }) | undefined> {
  memMark('run: start');
  const plan = await planRun(request);
  memMark('run: planned (dataset / labels read)');
  options.onPlan?.(plan);
  const signal = options.signal ?? request.signal;
  const located = await locateModel(plan.model, { ...options, quantized: plan.quantized, signal });
  if (!located) return undefined;
  const compared = plan.compared;
  const locatedOther = compared ? await locateModel(compared.model, { ...options, quantized: compared.quantized, signal }) : undefined;
  if (compared && !locatedOther) return undefined;
  const { model, precision } = await loadWithPrecision(plan, located, { ...options, signal });
  memMark('run: model loaded');
  try {
    if (!compared || !locatedOther) {
      // The model is disposed right after: its text tower is not needed once the prompts are embedded.
      const outcome = await executeRun(plan, { model, modelId: located.id, precision, signal: request.signal, onProgress: options.onProgress, releaseTextTower: true });
      return { ...outcome, plan };
    }
    const other = await loadWithPrecision({ ...plan, precision: compared.precision, quantized: compared.quantized }, locatedOther, { ...options, signal });
    try {
      const outcome = await executeRuns(plan, { model, modelId: located.id, precision, signal: request.signal, onProgress: options.onProgress }, { model: other.model, modelId: locatedOther.id, precision: other.precision, onProgress: options.onComparedProgress });
      return { ...outcome, plan };
    } finally {
      await other.model.dispose();
    }
  } finally {
    await model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Precision (fp32 | int8 | auto)

async function isFile(file: string): Promise<boolean> {
  return fs.promises.stat(file).then((st) => st.isFile(), () => false);
}

/** The folders holding each graph pair of a located model (a registry model's int8 pair is its own download). */
export async function graphFolders(located: LocatedModel, cacheDir?: string): Promise<{ fp32?: string; int8?: string }> {
  const has = async (dir: string, suffix: string) =>
    (await isFile(path.join(dir, 'onnx', `vision_model${suffix}.onnx`))) && (await isFile(path.join(dir, 'onnx', `text_model${suffix}.onnx`)));
  const out: { fp32?: string; int8?: string } = {};
  if (await has(located.dir, '')) out.fp32 = located.dir;
  if (await has(located.dir, '_quantized')) out.int8 = located.dir;
  if (!out.int8 && located.entry && !located.entry.quantized) {
    const q = quantizedVariant(located.entry);
    const root = cacheDir ?? defaultCacheDir();
    if (q && (await checkCachedModel(q, root)) === null) out.int8 = cachedModelDir(q, root);
  }
  return out;
}

/**
 * Loads the model in the plan's precision. fp32 and int8 load one graph pair; auto loads both, embeds a sample of
 * the dataset (PRECISION_RULES.sampleSize images, spread over it) and its class prompts with each, keeps int8 only
 * when they agree, and releases the other.
 */
export async function loadWithPrecision(
  plan: RunPlan,
  located: LocatedModel,
  options: LoadModelOptions & { cacheDir?: string; signal?: AbortSignal } = {},
): Promise<{ model: ClipModel; precision: PrecisionChoice }> {
  if (plan.precision !== 'auto') {
    const model = await loadModel({ dir: located.dir, quantized: plan.precision === 'int8' ? true : located.quantized }, options);
    const used = model.files.quantized ? 'int8' : 'fp32';
    return { model, precision: { requested: plan.precision, used, reason: used === plan.precision ? `${used} requested` : `the model has only ${used} graphs` } };
  }
  const folders = await graphFolders(located, options.cacheDir);
  if (!folders.int8 || !folders.fp32) {
    const model = await loadModel({ dir: located.dir, quantized: folders.int8 && !folders.fp32 ? true : false }, options);
    const hint = located.entry && !located.entry.quantized && quantizedVariant(located.entry) ? ` (clip-lens model download ${quantizedVariant(located.entry)?.id} to compare)` : '';
    return { model, precision: folders.fp32 ? { requested: 'auto', used: 'fp32', reason: `the model has no int8 graphs${hint}` } : { requested: 'auto', used: 'int8', reason: 'the model has only int8 graphs' } };
  }
  const fp32 = await loadModel({ dir: folders.fp32, quantized: false }, options);
  let int8: ClipModel;
  try {
    int8 = await loadModel({ dir: folders.int8, quantized: true }, options);
  } catch (e) {
    await fp32.dispose();
    throw e;
  }
  try {
    const choice = await comparePrecisions(plan, fp32, int8, options.signal);
    const [keep, drop] = choice.used === 'int8' ? [int8, fp32] : [fp32, int8];
    await drop.dispose();
    return { model: keep, precision: choice };
  } catch (e) {
    await Promise.all([fp32.dispose(), int8.dispose()]);
    throw e;
  }
}

/** auto's decision with both graph pairs loaded: a sample of the plan's dataset and its prompts through each. */
export async function comparePrecisions(plan: RunPlan, fp32: ClipModel, int8: ClipModel, signal?: AbortSignal): Promise<PrecisionChoice> {
  const templates = await resolveTemplates(plan.templates, plan.dataset.root);
  const prompts = plan.dataset.classes.map((c) => promptsForClass(c, templates.templates, plan.config.prompts));
  const samples = sampleIndices(plan.dataset.samples.length, PRECISION_RULES.sampleSize).map((i) => path.join(plan.dataset.root, (plan.dataset.samples[i] as { path: string }).path));
  const agreement = await measureAgreement(fp32, int8, samples, prompts, signal);
  return choosePrecision('auto', true, { ...agreement, ...(agreement.worstImage ? { worstImage: path.relative(plan.dataset.root, agreement.worstImage).split(path.sep).join('/') } : {}) });
}

// ---------------------------------------------------------------------------------------------------------------------
// Embedding files (clip-lens embed)

export interface EmbedFilesOptions {
  model: ClipModel;
  /** Embedding cache root; null disables it; undefined: the user's cache folder. */
  cacheDir?: string | null;
  batchSize?: number;
  signal?: AbortSignal;
  /** Called once per file, in input order: its embedding (a view, valid during the call) or why it failed. */
  onResult: (index: number, result: { embedding: Float32Array } | { error: Error }) => void;
  /** Files done so far (in any order). */
  onProgress?: (done: number, total: number) => void;
  /** A problem that does not stop the run (the cache cannot be opened: the run goes on without it). */
  onWarning?: (message: string) => void;
}

/**
 * Embeds image files with the evaluation's pipeline (reading and hashing here, decoding on libuv's threads, inference
 * in the model's worker with the next batch decoded meanwhile, the embedding cache) and hands the results back in
 * input order.
 */
export async function embedFiles(files: readonly string[], options: EmbedFilesOptions): Promise<{ computed: number; fromCache: number; failed: number }> {
  const { runImages, openImageCache } = await import('./evaluate.js');
  const { model } = options;
  const dataset: Dataset = { root: '', format: 'class-folders', classes: [], samples: files.map((f) => ({ path: path.resolve(f), label: '' })), problems: [] };
  const problems: DatasetProblem[] = [];
  const cache = options.cacheDir === null ? null : await openImageCache(options.cacheDir, model, problems);
  for (const p of problems) options.onWarning?.(ClipLensError.format(p.message, { file: p.file }));
  // Results arrive out of order (cache hits before the batch in flight): hold them until their turn.
  const pending = new Map<number, { embedding: Float32Array } | { error: Error }>();
  let nextOut = 0;
  let done = 0;
  const counts = { computed: 0, fromCache: 0, failed: 0 };
  const settle = (index: number, result: { embedding: Float32Array } | { error: Error }) => {
    done++;
    if (index !== nextOut) {
      pending.set(index, 'embedding' in result ? { embedding: Float32Array.from(result.embedding) } : result);
      return;
    }
    options.onResult(index, result);
    nextOut++;
    for (let r = pending.get(nextOut); r !== undefined; r = pending.get(nextOut)) {
      pending.delete(nextOut);
      options.onResult(nextOut, r);
      nextOut++;
    }
  };
  try {
    await runImages({
      dataset,
      model,
      imageCache: cache,
      batchSize: Math.max(1, options.batchSize ?? 32),
      signal: options.signal,
      onHash: () => undefined,
      onCached: (i, e) => {
        counts.fromCache++;
        settle(i, { embedding: e });
      },
      onComputed: (i, e) => {
        counts.computed++;
        settle(i, { embedding: e });
      },
      onFailed: (i, e) => {
        if (e instanceof CancelledError) throw e;
        counts.failed++;
        settle(i, { error: e instanceof Error ? e : new Error(String(e)) });
      },
      onBatchDone: () => options.onProgress?.(done, files.length),
    });
  } finally {
    // flush() never throws; a cache that could not be written is one warning, the embeddings are still printed.
    await cache?.flush();
    if (cache?.writeError) options.onWarning?.(ClipLensError.format(`cache disabled: ${cache.writeError}; embeddings are not saved`, { file: options.cacheDir ?? undefined }));
  }
  return counts;
}
