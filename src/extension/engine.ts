/**
 * Runs evaluations for the editor.
 *
 * - One shared model per model spec (folder + variant + threads + execution providers), loaded on first use and
 *   released after `clipLens.releaseModelAfterMinutes` without use (ModelPool).
 * - Runs are serialised per dataset (KeyedRunner): a second request from a command while one runs is refused with a
 *   message offering to cancel it; automatic re-runs queue behind it and collapse into one.
 * - Inference runs in the model's worker thread and image decoding on libuv's pool (see core/runtime.ts), so the
 *   extension host only reads files and gathers results; a cancellable notification shows counts and the rate.
 * - Registry models are downloaded only after the user agreed (size shown), with a cancellable progress notification.
 * - The heavy core modules (sharp, onnxruntime-node) are imported on first use, never at activation.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError, ClipLensError } from '../core/errors';
import type { ClipModel } from '../core/runtime';
import type { EvaluateProgress } from '../core/evaluate';
import { executionProviders } from '../core/executionProviders';
import { CONFIG_FILE_NAME } from '../core/projectConfig';
import type { RegistryEntry } from '../core/modelRegistry';
import { DEFAULT_BASE_URL, defaultCacheDir, downloadModel, MIRROR_ENV } from '../core/modelDownload';
import { defaultEmbeddingCacheDir } from '../core/embeddingCache';
import { comparePrecisions, executeRun, executeRuns, graphFolders, loadModel, locateModel, planRun, type LocatedModel, type RunOutcome, type RunPlan } from '../core/run';
import type { PrecisionChoice } from '../core/precision';
import type { EvalReport } from '../core/report';
import type { SearchResult } from '../core/search';
import { effectiveThreads, type Settings } from './config';
import { KeyedRunner, ModelPool, type Lease } from './enginePool';
import { datasetName, downloadMessage, formatBytes, formatDuration, pct, runName, runsProgress } from './format';
import type { DatasetResult, ReportStore } from './store';
import { describeModelSource, MODEL_ENV } from './trust';
import { COMMANDS } from './commandIds';
import { pathKey } from './datasetFiles';
import { datasetRootOf } from '../core/run';
import { CONFIG_INVALID, projectModelError } from './runChecksModel';

export interface RunningState {
  root: string;
  message: string;
  /** 0..1 during the image phase. */
  fraction?: number;
}

export interface EngineDeps {
  store: ReportStore;
  log: vscode.LogOutputChannel;
  settings: () => Settings;
}

/** How an evaluation was asked for: by the user (a busy dataset is refused) or by a file change (queued). */
export type Trigger = 'user' | 'auto';

interface PoolKey {
  dir: string;
  quantized: boolean | undefined;
  threads: number;
  providers: string[];
}

export { datasetRootOf } from '../core/run';

/** `~` and relative paths of the cacheDirectory setting, resolved. */
export function resolveCacheSetting(value: string): string | undefined {
  if (!value) return undefined;
  const expanded = value === '~' || value.startsWith('~/') || value.startsWith('~\\') ? path.join(os.homedir(), value.slice(1)) : value;
  return path.resolve(os.homedir(), expanded);
}

export class Engine implements vscode.Disposable {
  private readonly runner = new KeyedRunner();
  private readonly pool: ModelPool<ClipModel>;
  private readonly running = new Map<string, RunningState>();
  private readonly runningChanged = new vscode.EventEmitter<RunningState | { root: string; done: true }>();
  readonly onDidChangeRunning = this.runningChanged.event;
  /** Downloads (and their prompts) in progress, by registry id: concurrent runs share them. */
  private readonly downloads = new Map<string, Promise<string | undefined>>();
  /** The last failure of an automatic re-run per dataset, so a failure repeated on every save is shown once. */
  private readonly lastAutoError = new Map<string, string>();
  /** CUDA failed to create a session in this window: use the CPU from now on. */
  private cudaFailed = false;
  /** auto precision, decided once per dataset and graph pair in this session (measuring costs 2 x 64 images). */
  private readonly precisionChoices = new Map<string, PrecisionChoice>();

  constructor(private readonly deps: EngineDeps) {
    this.pool = new ModelPool<ClipModel>({
      load: async (key) => {
        const k = JSON.parse(key) as PoolKey;
        this.deps.log.info(`loading the model ${k.dir}${k.quantized ? ' (quantized)' : ''} with ${k.threads} thread${k.threads === 1 ? '' : 's'} on ${k.providers.join(', ')}`);
        return loadModel({ dir: k.dir, quantized: k.quantized }, { threads: k.threads, executionProviders: k.providers });
      },
      dispose: async (model, key) => {
        this.deps.log.info(`released the model ${(JSON.parse(key) as PoolKey).dir}`);
        await model.dispose();
      },
      idleMs: () => this.deps.settings().releaseModelAfterMinutes * 60_000,
    });
  }

  isRunning(root: string): boolean {
    return this.runner.isRunning(pathKey(root));
  }

  runningState(root: string): RunningState | undefined {
    return this.running.get(pathKey(root));
  }

  /** Every dataset being evaluated. */
  get runningStates(): RunningState[] {
    return [...this.running.values()];
  }

  /** Any dataset being evaluated, for the status bar. */
  get anyRunning(): RunningState | undefined {
    return this.running.values().next().value;
  }

  cancel(root: string): void {
    this.runner.cancel(pathKey(root));
  }

  /**
   * Evaluates a dataset folder or label file, updates the store and returns the report; undefined when the run was
   * refused, cancelled, declined (download) or failed (the user was told why).
   */
  async evaluate(target: string, trigger: Trigger): Promise<EvalReport | undefined> {
    let root: string;
    try {
      root = await datasetRootOf(target);
    } catch (e) {
      this.reportError(e, target);
      return undefined;
    }
    const key = pathKey(root);
    const result = await this.runner.run(key, (signal) => this.runOnce(target, root, signal, trigger), trigger === 'user' ? 'refuse' : 'queue').catch((e: unknown) => {
      if (trigger === 'auto' && e instanceof ClipLensError && e.code === CONFIG_INVALID) {
        // A half-typed config (auto-save): its diagnostic says what is wrong; the re-run waits until it is valid.
        this.deps.log.warn(`${datasetName(root)}: not re-evaluated: ${e.message}`);
        vscode.window.setStatusBarMessage(`$(warning) CLIP Lens: ${CONFIG_FILE_NAME} of ${datasetName(root)} has a problem; re-run waits until it is fixed`, 8000);
      } else if (e instanceof CancelledError) {
        this.deps.log.info(`${datasetName(root)}: evaluation cancelled`);
        vscode.window.setStatusBarMessage(`CLIP Lens: evaluation of ${datasetName(root)} cancelled`, 4000);
      } else if (trigger === 'auto' && this.lastAutoError.get(key) === (e as Error)?.message) {
        // The same failure as the last automatic re-run: logged, not shown again on every save.
        this.deps.log.error(`${datasetName(root)}: ${(e as Error).message}`);
        vscode.window.setStatusBarMessage(`$(error) CLIP Lens: re-evaluating ${datasetName(root)} failed (see the log)`, 5000);
      } else {
        if (trigger === 'auto') this.lastAutoError.set(key, (e as Error)?.message);
        this.reportError(e, target);
      }
      return { status: 'failed' as const };
    });
    if (result.status === 'done') this.lastAutoError.delete(key);
    if (result.status === 'busy') {
      void vscode.window.showInformationMessage(`CLIP Lens is already evaluating '${datasetName(root)}'.`, 'Cancel That Run').then((a) => {
        if (a) this.cancel(root);
      });
      return undefined;
    }
    return result.status === 'done' ? result.value : undefined;
  }

  private setRunning(state: RunningState | undefined, root: string): void {
    if (state) {
      this.running.set(pathKey(root), state);
      this.runningChanged.fire(state);
    } else {
      this.running.delete(pathKey(root));
      this.runningChanged.fire({ root, done: true });
    }
  }

  private async runOnce(target: string, root: string, runSignal: AbortSignal, trigger: Trigger): Promise<EvalReport | undefined> {
    const settings = this.deps.settings();
    const name = datasetName(root);
    const log = this.deps.log;
    this.setRunning({ root, message: 'Starting…' }, root);
    let showedProvisional = false;
    try {
      const trusted = vscode.workspace.isTrusted;
      const cacheSetting = trusted ? resolveCacheSetting(settings.cacheDirectory) : resolveCacheSetting(this.userCacheDirectory());
      const modelCacheDir = cacheSetting ?? defaultCacheDir();
      const embeddingCacheDir = cacheSetting ?? defaultEmbeddingCacheDir();
      // One plan from .clip-lens.json and the settings (the config wins), the dataset read, before any model.
      this.setRunning({ root, message: 'Reading the dataset…' }, root);
      const plan = await planRun({
        target,
        settings: {
          model: settings.model,
          modelBaseDir: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir(),
          environmentModel: process.env[MODEL_ENV],
          topK: settings.topK,
          predictor: settings.predictor,
          templates: settings.templates,
          warnings: settings.thresholds,
          precision: settings.precision,
        },
        trusted,
        quantized: settings.quantized,
        cacheDir: embeddingCacheDir,
        batchSize: settings.batchSize,
        // Order of checks: an invalid config stops the run at its line (never the defaults in its place, never a
        // download); it is a diagnostic on .clip-lens.json, and automatic re-runs wait quietly until it is valid.
        configProblems: 'fail',
        signal: runSignal,
      });
      const config = plan.config;
      const configFile = plan.configFile ?? path.join(root, CONFIG_FILE_NAME);
      const choice = plan.model;
      if (choice.note) log.warn(`${name}: ${choice.note}`);
      // A "model" folder in the config that is not there: an error on that key, before any model or download.
      if (choice.source === 'project' && plan.configFile) {
        const text = await fs.promises.readFile(plan.configFile, 'utf8');
        const key = plan.config.models ? 'models' : 'model';
        const bad = projectModelError(plan.configFile, text, choice.spec, key) ?? (plan.compared?.model.source === 'project' ? projectModelError(plan.configFile, text, plan.compared.model.spec, key) : undefined);
        if (bad) throw bad;
      }

      const obtain = (entry: RegistryEntry, cacheDir: string, signal?: AbortSignal) => this.obtainModel(entry, cacheDir, signal ?? runSignal);
      const model = await locateModel(choice, { quantized: plan.quantized, cacheDir: modelCacheDir, obtain, signal: runSignal });
      if (!model) return undefined;
      // "models" of .clip-lens.json: the second model too, evaluated over the same image pass (core executeRuns);
      // the report is the first model's, with its comparison against the second, and the panel opens with it.
      const compared = plan.compared;
      const otherModel = compared ? await locateModel(compared.model, { quantized: compared.quantized, cacheDir: modelCacheDir, obtain, signal: runSignal }) : undefined;
      if (compared && !otherModel) return undefined;
      const threads = effectiveThreads(settings.threads, os.availableParallelism());
      let providers = ['cpu'];
      if (settings.executionProvider !== 'cpu' && !this.cudaFailed) {
        const ep = executionProviders(settings.executionProvider);
        providers = ep.providers;
        if (ep.note) log.warn(ep.note);
      }

      const run = async (prov: string[]): Promise<RunOutcome> => {
        const { key, precision } = await this.precisionFor(plan, model, modelCacheDir, { threads, providers: prov }, runSignal);
        const lease: Lease<ClipModel> = await this.pool.acquire(JSON.stringify(key));
        let other: Lease<ClipModel> | undefined;
        try {
          // Results while running: the views fill in as batches finish (not saved; the final result replaces them).
          const onProvisional = (report: EvalReport) => {
            this.deps.store.set({ root, target, report, gate: null, config, configFile, modelChoice: choice, stale: false, resolved: new Map() });
            showedProvisional = true;
          };
          if (compared && otherModel) {
            const second = await this.precisionFor({ ...plan, precision: compared.precision, quantized: compared.quantized }, otherModel, modelCacheDir, { threads, providers: prov }, runSignal);
            other = await this.pool.acquire(JSON.stringify(second.key));
            const otherLease = other;
            // Both models' progress: each evaluation reports its own, named as the comparison names it.
            const names = [runName(choice.spec, precision.used), runName(compared.model.spec, second.precision.used)];
            return await this.withEvaluationProgress(root, name, trigger, runSignal, names, (signal, onProgress) =>
              executeRuns(
                plan,
                { model: lease.model, modelId: choice.spec, precision, signal, onProgress: onProgress(0) },
                { model: otherLease.model, modelId: compared.model.spec, precision: second.precision, onProgress: onProgress(1) },
              ),
            );
          }
          return await this.withEvaluationProgress(root, name, trigger, runSignal, [choice.spec], (signal, onProgress) =>
            executeRun(plan, { model: lease.model, modelId: choice.spec, precision, signal, onProgress: onProgress(0), onProvisional }),
          );
        } catch (e) {
          if (prov.includes('cuda') && e instanceof ClipLensError && e.code === 'model-unloadable') {
            lease.release();
            await this.pool.evict(JSON.stringify(key));
            throw new CudaFailure(e);
          }
          throw e;
        } finally {
          lease.release();
          other?.release();
        }
      };
      let outcome: RunOutcome;
      try {
        outcome = await run(providers);
      } catch (e) {
        if (!(e instanceof CudaFailure)) throw e;
        this.cudaFailed = true;
        log.warn(`CUDA could not run the model (${e.original.message}); using the CPU for the rest of this session`);
        void vscode.window.showWarningMessage('CLIP Lens: CUDA could not run the model; evaluating on the CPU instead. See the log for details.', 'Show Log').then((a) => {
          if (a) log.show(true);
        });
        outcome = await run(['cpu']);
      }
      const { report, gate } = outcome;
      const result: DatasetResult = {
        root,
        target,
        report,
        gate,
        config,
        configFile,
        modelChoice: choice,
        stale: false,
        resolved: new Map(),
      };
      this.deps.store.persist(result);
      this.deps.store.set(result);
      const t = report.timing;
      log.info(
        `${name}: ${report.dataset.counts.evaluated} of ${report.dataset.counts.samples} images evaluated (${t.imagesComputed} inferred, ${t.imagesFromCache} from the cache) in ${formatDuration(t.totalMs)}` +
          `${report.metrics ? `; top-1 ${pct(report.metrics.top1Accuracy)}` : ''}; ${report.labelIssues.length} likely label errors` +
          `${gate ? `; gate ${gate.passed ? 'passed' : `failed (${gate.summary.failed} of ${gate.summary.total})`}` : ''}; model ${choice.spec} from ${describeModelSource(choice.source)}${trigger === 'auto' ? ' (automatic re-run)' : ''}`,
      );
      return report;
    } catch (e) {
      // Cancelled: the last provisional view stays, marked "cancelled at N of M"; failed: the result from before.
      if (showedProvisional) this.deps.store.endProvisional(root, e instanceof CancelledError ? 'cancelled' : 'failed');
      throw e;
    } finally {
      this.setRunning(undefined, root);
    }
  }

  /** The user-level cacheDirectory (workspace values are ignored in Restricted Mode). */
  /**
   * The pool key of the graphs to run and the precision report: fp32 / int8 as planned; auto leases both pairs (the
   * pool keeps them for the idle-release period, like any model), compares them on a sample of the dataset, and
   * remembers the choice for this dataset and these graphs.
   */
  private async precisionFor(plan: RunPlan, located: LocatedModel, cacheDir: string, run: { threads: number; providers: string[] }, signal: AbortSignal): Promise<{ key: PoolKey; precision: PrecisionChoice }> {
    const keyOf = (dir: string, quantized: boolean | undefined): PoolKey => ({ dir, quantized, threads: run.threads, providers: run.providers });
    if (plan.precision !== 'auto') {
      return { key: keyOf(located.dir, located.quantized), precision: { requested: plan.precision, used: plan.precision === 'int8' ? 'int8' : 'fp32', reason: `${plan.precision} requested` } };
    }
    const folders = await graphFolders(located, cacheDir);
    if (!folders.fp32 || !folders.int8) {
      const int8Only = !folders.fp32 && Boolean(folders.int8);
      return { key: keyOf(located.dir, int8Only ? true : false), precision: { requested: 'auto', used: int8Only ? 'int8' : 'fp32', reason: int8Only ? 'the model has only int8 graphs' : 'the model has no int8 graphs' } };
    }
    const fp32Key = keyOf(folders.fp32, false);
    const int8Key = keyOf(folders.int8, true);
    const memo = `${plan.root}\0${JSON.stringify(fp32Key)}\0${JSON.stringify(int8Key)}`;
    let choice = this.precisionChoices.get(memo);
    if (!choice) {
      this.setRunning({ root: plan.root, message: 'Comparing fp32 and int8 on a sample…' }, plan.root);
      const a = await this.pool.acquire(JSON.stringify(fp32Key));
      try {
        const b = await this.pool.acquire(JSON.stringify(int8Key));
        try {
          choice = await comparePrecisions(plan, a.model, b.model, signal);
        } finally {
          b.release();
        }
      } finally {
        a.release();
      }
      this.precisionChoices.set(memo, choice);
      this.deps.log.info(`${datasetName(plan.root)}: precision ${choice.used} (auto: ${choice.reason})`);
    }
    return { key: choice.used === 'int8' ? int8Key : fp32Key, precision: choice };
  }

  private userCacheDirectory(): string {
    const v = vscode.workspace.getConfiguration('clipLens').inspect<string>('cacheDirectory');
    return typeof v?.globalValue === 'string' ? v.globalValue : '';
  }

  /**
   * Runs an evaluation with progress: a cancellable notification when the user asked for it, the window's progress
   * area for automatic re-runs (no notification on every save; the status-bar item cancels). `models` names the
   * models evaluated at once; `onProgress(i)` is model i's progress callback, and the line shows every model's.
   */
  private async withEvaluationProgress(
    root: string,
    name: string,
    trigger: Trigger,
    runSignal: AbortSignal,
    models: string[],
    body: (signal: AbortSignal, onProgress: (model: number) => (p: EvaluateProgress) => void) => Promise<RunOutcome>,
  ): Promise<RunOutcome> {
    const location = trigger === 'user' ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window;
    return vscode.window.withProgress(
      { location, title: trigger === 'user' ? `CLIP Lens: ${name}` : `CLIP Lens: re-evaluating ${name}`, cancellable: trigger === 'user' },
      async (progress, token) => {
        const controller = new AbortController();
        const abort = () => controller.abort();
        if (runSignal.aborted) abort();
        runSignal.addEventListener('abort', abort, { once: true });
        const sub = token.onCancellationRequested(abort);
        let reported = 0;
        let lastUpdate = 0;
        const latest: (EvaluateProgress | undefined)[] = models.map(() => undefined);
        const onProgress = (model: number) => (p: EvaluateProgress) => {
          latest[model] = p;
          const now = Date.now();
          // Notifications and the status bar are updated at most 10 times a second.
          if (p.phase === 'images' && p.done < p.total && now - lastUpdate < 100) return;
          lastUpdate = now;
          const { message, fraction } = runsProgress(models.map((m, i) => ({ name: m, progress: latest[i] })));
          let increment: number | undefined;
          if (fraction !== undefined) {
            const target = Math.floor(fraction * 100);
            if (target > reported) {
              increment = target - reported;
              reported = target;
            }
          }
          progress.report({ message, increment });
          this.setRunning({ root, message, fraction }, root);
        };
        try {
          return await body(controller.signal, onProgress);
        } finally {
          sub.dispose();
          runSignal.removeEventListener('abort', abort);
        }
      },
    );
  }

  /** core/run.ts's ObtainModel for the editor: asks first (size shown); concurrent runs share one prompt and download. */
  private async obtainModel(entry: RegistryEntry, cacheDir: string, signal: AbortSignal): Promise<string | undefined> {
    const key = `${cacheDir}\0${entry.id}`;
    let pending = this.downloads.get(key);
    if (!pending) {
      pending = this.askAndDownload(entry, cacheDir, signal).finally(() => this.downloads.delete(key));
      this.downloads.set(key, pending);
    }
    return pending;
  }

  private async askAndDownload(entry: RegistryEntry, cacheDir: string, signal: AbortSignal): Promise<string | undefined> {
    const server = (process.env[MIRROR_ENV] || DEFAULT_BASE_URL).replace(/\/+$/, '');
    const choice = await vscode.window.showInformationMessage(
      `CLIP Lens needs the model '${entry.id}' (about ${formatBytes(entry.approxBytes)}). Download it now?`,
      {
        modal: true,
        detail: `${entry.description}.\n\nFrom ${server}/${entry.repo} into ${path.join(cacheDir, 'models')}; checked against pinned SHA-256 sums. Downloaded once, then shared with the clip-lens command line.\n\nLicense: ${entry.license}.`,
      },
      'Download',
      'Select Another Model…',
    );
    if (choice === 'Select Another Model…') {
      void vscode.commands.executeCommand(COMMANDS.selectModel);
      return undefined;
    }
    if (choice !== 'Download') return undefined;
    this.deps.log.info(`downloading ${entry.id} from ${server}/${entry.repo} into ${cacheDir}`);
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `CLIP Lens: downloading ${entry.id}`, cancellable: true },
      async (progress, token) => {
        const controller = new AbortController();
        const abort = () => controller.abort();
        const sub = token.onCancellationRequested(abort);
        signal.addEventListener('abort', abort, { once: true });
        const finished = new Map<string, number>();
        let reported = 0;
        let last = 0;
        try {
          const dir = await downloadModel(entry, {
            cacheDir,
            signal: controller.signal,
            onProgress: (p) => {
              finished.set(p.file, p.bytes);
              const now = Date.now();
              if (now - last < 200) return;
              last = now;
              let before = 0;
              for (const [f, b] of finished) if (f !== p.file) before += b;
              const fraction = Math.min(1, (before + p.bytes) / entry.approxBytes);
              const targetPct = Math.floor(fraction * 100);
              const increment = targetPct > reported ? targetPct - reported : undefined;
              if (increment) reported = targetPct;
              progress.report({ message: downloadMessage(p, before, entry.approxBytes), increment });
            },
          });
          this.deps.log.info(`downloaded ${entry.id} into ${dir}`);
          return dir;
        } catch (e) {
          if (e instanceof CancelledError) {
            this.deps.log.info(`download of ${entry.id} cancelled (what was fetched is kept and resumed next time)`);
            throw e;
          }
          throw e;
        } finally {
          sub.dispose();
          signal.removeEventListener('abort', abort);
        }
      },
    );
  }

  /** Tells the user about a failed run, with a way to the file at fault when there is one. */
  reportError(e: unknown, target: string): void {
    const log = this.deps.log;
    if (e instanceof ClipLensError) {
      log.error(`${e.code}: ${e.message}`);
      const actions: string[] = [];
      if (e.file && fs.existsSync(e.file) && fs.statSync(e.file).isFile()) actions.push('Open File');
      // A bad "model" in .clip-lens.json is fixed there (Open File goes to its line), not in the setting it overrides.
      if (e.code.startsWith('model-') && !(e.file && path.basename(e.file) === CONFIG_FILE_NAME)) actions.push('Select Model');
      actions.push('Show Log');
      void vscode.window.showErrorMessage(`CLIP Lens: ${e.message}`, ...actions).then(async (a) => {
        if (a === 'Open File' && e.file) {
          const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(e.file));
          const line = Math.max(0, (e.line ?? 1) - 1);
          await vscode.window.showTextDocument(doc, { selection: new vscode.Range(line, 0, line, 0) });
        } else if (a === 'Select Model') void vscode.commands.executeCommand(COMMANDS.selectModel);
        else if (a === 'Show Log') log.show(true);
      });
      return;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    log.error(`evaluating ${target} failed: ${err.stack ?? err.message}`);
    void vscode.window.showErrorMessage(`CLIP Lens: evaluating ${path.basename(target)} failed: ${err.message}`, 'Show Log').then((a) => {
      if (a) log.show(true);
    });
  }

  /**
   * Ranks an evaluated dataset's images by CLIP similarity to `text` with the model of its evaluation; the image
   * embeddings come from the cache that evaluation filled. Undefined when cancelled or declined (download).
   */
  async search(result: DatasetResult, text: string, top: number): Promise<SearchResult | undefined> {
    const settings = this.deps.settings();
    const cacheSetting = vscode.workspace.isTrusted ? resolveCacheSetting(settings.cacheDirectory) : resolveCacheSetting(this.userCacheDirectory());
    const controller = new AbortController();
    const model = await locateModel(result.modelChoice, {
      quantized: settings.quantized,
      cacheDir: cacheSetting ?? defaultCacheDir(),
      obtain: (entry, cacheDir, signal) => this.obtainModel(entry, cacheDir, signal ?? controller.signal),
      signal: controller.signal,
    });
    if (!model) return undefined;
    const threads = effectiveThreads(settings.threads, os.availableParallelism());
    const key: PoolKey = { dir: model.dir, quantized: model.quantized, threads, providers: ['cpu'] };
    const lease: Lease<ClipModel> = await this.pool.acquire(JSON.stringify(key));
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `CLIP Lens: searching ${datasetName(result.root)}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          const { searchDataset } = await import('../core/search.js');
          const r = await searchDataset(result.target, text, {
            model: lease.model,
            cacheDir: cacheSetting ?? defaultEmbeddingCacheDir(),
            top,
            signal: controller.signal,
            onProgress: (done, total) => progress.report({ message: `${done} of ${total} images` }),
          });
          this.deps.log.info(`${datasetName(result.root)}: searched for ${JSON.stringify(text)}: ${r.hits.length} results, ${r.imagesComputed} images inferred, ${r.imagesFromCache} from the cache`);
          return r;
        },
      );
    } catch (e) {
      if (e instanceof CancelledError) return undefined;
      throw e;
    } finally {
      lease.release();
    }
  }

  /** Models loaded now (for the log and tests). */
  get loadedModels(): string[] {
    return this.pool.keys.map((k) => (JSON.parse(k) as PoolKey).dir);
  }

  /** Releases the models not in use now (e.g. after the model settings changed). */
  releaseIdleModels(): Promise<void> {
    return this.pool.evictIdle();
  }

  async shutdown(): Promise<void> {
    this.runner.cancelAll();
    await this.pool.dispose();
  }

  dispose(): void {
    void this.shutdown();
    this.runningChanged.dispose();
  }
}

class CudaFailure extends Error {
  constructor(readonly original: ClipLensError) {
    super(original.message);
  }
}
