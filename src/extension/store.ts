/**
 * The latest evaluation of each dataset, shared by the trees, diagnostics, status bar, hovers and the report panel.
 *
 * Results are kept per dataset root and saved (as the report JSON plus a small index) in the extension's workspace
 * storage, so after a window reload the views, diagnostics and the restored report panel come back without running
 * anything. Saved results are marked "out of date" until the dataset is evaluated again.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { GateResult } from '../core/gate';
import type { ProjectConfig } from '../core/projectConfig';
import type { EvalReport } from '../core/report';
import { makeDirectory } from '../core/fileSystem';
import type { ModelChoice } from './trust';
import { writeReport } from './reportFile';
import type { RunHistory } from './runHistory';
import { attachSidecar, readReportFile } from '../core/reportSamples';
import { pathKey, samePath } from './datasetFiles';

/** How a sample was handled since its evaluation (DatasetResult.resolved). */
export type Resolution = 'fixed' | 'ignored' | 'removed';

export interface DatasetResult {
  /** Absolute dataset root (the folder holding `.clip-lens.json`). */
  root: string;
  /** What was evaluated: the root folder or a label file. */
  target: string;
  report: EvalReport;
  /** Gate outcome, when `.clip-lens.json` sets thresholds. */
  gate: GateResult | null;
  /** The project config as evaluated (labels columns, ignore list, gate). */
  config: ProjectConfig;
  /** Absolute `.clip-lens.json` path (whether or not it exists). */
  configFile: string;
  modelChoice: ModelChoice;
  /** The dataset changed since (file events) or the result was restored from a previous session. */
  stale: boolean;
  /**
   * Samples handled since the evaluation, hidden from the views until the next run: 'ignored' (added to the ignore
   * list; also hidden from diagnostics), 'fixed' (label changed or image moved; diagnostics follow the files) or
   * 'removed' (taken out of its split, "Remove Image from Split…": its leakage and duplicate diagnostics go at once).
   */
  resolved: Map<string, Resolution>;
  /** Where the report JSON is saved (the panel's reportRef). */
  reportFile?: string;
}

interface IndexEntry {
  root: string;
  target: string;
  file: string;
  createdAt: string;
  gate: GateResult | null;
  config: ProjectConfig;
  configFile: string;
  modelChoice: ModelChoice;
}

const INDEX_FILE = 'index.json';
/** Saved reports larger than this are not restored at startup (JSON.parse would block the extension host). */
const MAX_RESTORE_BYTES = 12 * 1024 * 1024;
/** Saved reports with more samples than this (in a sidecar) are not restored at startup either. */
const MAX_RESTORE_SAMPLES = 50_000;

export class ReportStore implements vscode.Disposable {
  private readonly results = new Map<string, DatasetResult>();
  private readonly changed = new vscode.EventEmitter<string | undefined>();
  /** Fires with the dataset root that changed (undefined: several). */
  readonly onDidChange = this.changed.event;
  private current: string | undefined;
  private saving: Promise<void> = Promise.resolve();
  /** The report each dataset had before its latest run (this session), for the panel's "Compare with...". */
  private readonly previousReports = new Map<string, EvalReport>();
  /** Per dataset with a run showing provisional results: the result from before that run (null: none). */
  private readonly beforeRun = new Map<string, DatasetResult | null>();

  constructor(
    private readonly storageDir: string | undefined,
    private readonly log: vscode.LogOutputChannel,
    /** The recent runs of each dataset across sessions (for "Compare with..."); none without storage. */
    readonly history?: RunHistory,
  ) {}

  /** Every result, the current one first. */
  all(): DatasetResult[] {
    const list = [...this.results.values()];
    return list.sort((a, b) => (pathKey(a.root) === this.current ? -1 : pathKey(b.root) === this.current ? 1 : a.root.localeCompare(b.root)));
  }

  get(root: string): DatasetResult | undefined {
    return this.results.get(pathKey(root));
  }

  /** The dataset the status bar shows: the last evaluated or selected one. */
  get currentResult(): DatasetResult | undefined {
    return this.current ? this.results.get(this.current) : undefined;
  }

  setCurrent(root: string): void {
    const r = pathKey(root);
    if (this.results.has(r) && this.current !== r) {
      this.current = r;
      this.changed.fire(r);
    }
  }

  set(result: DatasetResult): void {
    const root = path.resolve(result.root);
    const key = pathKey(root);
    const before = this.results.get(key);
    // A provisional result (a run going on, or cancelled) is never "the run before" of a comparison.
    if (before && !before.report.provisional && before.report.createdAt !== result.report.createdAt) this.previousReports.set(key, before.report);
    if (result.report.provisional) {
      if (!this.beforeRun.has(key)) this.beforeRun.set(key, before && !before.report.provisional ? before : null);
    } else this.beforeRun.delete(key);
    // Samples fixed or ignored while the run goes on stay handled through its later provisional results.
    const resolved = result.report.provisional && before?.report.provisional && before.report.createdAt === result.report.createdAt ? before.resolved : result.resolved;
    this.results.set(key, { ...result, root, resolved });
    this.current = key;
    this.changed.fire(root);
  }

  /**
   * A run that showed provisional results ended without a final one. Cancelled: its last provisional result stays,
   * marked "cancelled at N of M" (what it computed is in the embedding cache; it is not saved as the dataset's
   * result). Failed: the result from before the run comes back (or none).
   */
  endProvisional(root: string, how: 'cancelled' | 'failed'): void {
    const key = pathKey(path.resolve(root));
    const current = this.results.get(key);
    const before = this.beforeRun.get(key);
    // Cancelled: the result from before stays what is saved (and what a later failed run puts back).
    if (how === 'failed') this.beforeRun.delete(key);
    if (!current?.report.provisional) return;
    if (how === 'cancelled') {
      current.report = { ...current.report, provisional: { ...current.report.provisional, cancelled: true } };
    } else if (before) {
      this.results.set(key, before);
    } else {
      this.results.delete(key);
      if (this.current === key) this.current = this.results.keys().next().value;
    }
    this.changed.fire(current.root);
  }

  /** The report of the run before the latest one of a dataset, in this session. */
  previous(root: string): EvalReport | undefined {
    return this.previousReports.get(pathKey(path.resolve(root)));
  }

  /** Tells every view to redraw (e.g. a display setting changed). */
  notify(): void {
    this.changed.fire(undefined);
  }

  /** Marks a result out of date (files changed). */
  markStale(root: string): void {
    const r = this.results.get(pathKey(root));
    if (r && !r.stale) {
      r.stale = true;
      this.changed.fire(r.root);
    }
  }

  /** Records that a sample's issue was handled so views hide it until the next evaluation. */
  resolve(root: string, samplePath: string, how: Resolution): void {
    const r = this.results.get(pathKey(root));
    if (r && r.resolved.get(samplePath) !== how) {
      r.resolved.set(samplePath, how);
      this.changed.fire(r.root);
    }
  }

  /** Forgets that a sample's issue was handled (its fix was undone). */
  unresolve(root: string, samplePath: string): void {
    const r = this.results.get(pathKey(root));
    if (r && r.resolved.delete(samplePath)) this.changed.fire(r.root);
  }

  /** Sample paths removed from their split in this session (undone removals excluded). */
  removedPaths(result: DatasetResult): Set<string> {
    return new Set([...result.resolved].filter(([, how]) => how === 'removed').map(([p]) => p));
  }

  /** Sample paths ignored in this session. */
  ignoredPaths(result: DatasetResult): Set<string> {
    return new Set([...result.resolved].filter(([, how]) => how === 'ignored').map(([p]) => p));
  }

  /** Forgets a dataset (e.g. its folder was deleted). */
  remove(root: string): void {
    const r = pathKey(root);
    this.beforeRun.delete(r);
    if (this.results.delete(r)) {
      if (this.current === r) this.current = this.results.keys().next().value;
      this.changed.fire(undefined);
      this.queueSave(undefined);
    }
  }

  /** The result whose dataset contains an absolute path (the deepest root wins). */
  findContaining(fsPath: string): DatasetResult | undefined {
    const p = path.resolve(fsPath);
    let best: DatasetResult | undefined;
    for (const r of this.results.values()) {
      const rel = path.relative(r.root, p);
      if (rel.startsWith('..') || path.isAbsolute(rel)) continue;
      if (!best || r.root.length > best.root.length) best = r;
    }
    return best;
  }

  /** The result of the dataset whose label file this is. */
  findByLabelFile(fsPath: string): DatasetResult | undefined {
    const p = path.resolve(fsPath);
    for (const r of this.results.values()) if (r.report.dataset.labelFile && samePath(r.report.dataset.labelFile, p)) return r;
    return undefined;
  }

  /** The result whose `.clip-lens.json` this is. */
  findByConfigFile(fsPath: string): DatasetResult | undefined {
    const p = path.resolve(fsPath);
    for (const r of this.results.values()) if (samePath(r.configFile, p)) return r;
    return undefined;
  }

  /** Saves a result's report (in the background); returns the file it goes to (the panel's reportRef). */
  persist(result: DatasetResult): string | undefined {
    if (!this.storageDir) return undefined;
    const file = path.join(this.storageDir, `${createHash('sha256').update(result.root).digest('hex').slice(0, 24)}.json`);
    result.reportFile = file;
    this.queueSave({ file, report: result.report });
    this.history?.record(result.report);
    return file;
  }

  private queueSave(write: { file: string; report: EvalReport } | undefined): void {
    const dir = this.storageDir;
    if (!dir) return;
    this.saving = this.saving
      .then(async () => {
        await makeDirectory(dir);
        if (write) await writeReport(write.file, write.report);
        // The index as it is when written (a result is stored right after its report is queued).
        // A provisional result is never saved: its dataset keeps the saved result from before its run.
        const index: IndexEntry[] = [...this.results.values()]
          .map((r) => (r.report.provisional ? this.beforeRun.get(pathKey(r.root)) : r))
          .filter((r): r is DatasetResult => r?.reportFile !== undefined)
          .map((r) => ({
            root: r.root,
            target: r.target,
            file: r.reportFile as string,
            createdAt: r.report.createdAt,
            gate: r.gate,
            config: r.config,
            configFile: r.configFile,
            modelChoice: r.modelChoice,
          }));
        await writeAtomic(path.join(dir, INDEX_FILE), JSON.stringify(index));
        // Remove saved reports no dataset refers to any more.
        const keep = new Set([INDEX_FILE, ...index.map((e) => path.basename(e.file))]);
        for (const name of await fs.promises.readdir(dir)) {
          const owner = name.endsWith('.samples.parquet') ? `${name.slice(0, -'.samples.parquet'.length)}.json` : name;
          if ((name.endsWith('.json') || name.endsWith('.samples.parquet')) && !keep.has(owner)) await fs.promises.rm(path.join(dir, name), { force: true });
        }
      })
      .catch((e: unknown) => this.log.warn(`could not save the report in ${dir}: ${(e as Error).message}`));
  }

  /** Reads a saved report (the panel's loadReport); undefined when it is gone or unreadable. */
  async loadReport(file: string): Promise<EvalReport | undefined> {
    if (!this.storageDir || !samePath(path.dirname(file), this.storageDir)) return undefined;
    for (const r of this.results.values()) if (r.reportFile === file) return r.report;
    try {
      return await readReportFile(file);
    } catch {
      return undefined;
    }
  }

  /** Restores the results saved by an earlier session (as out of date), skipping datasets that no longer exist. */
  async restore(): Promise<void> {
    const dir = this.storageDir;
    if (!dir) return;
    let index: IndexEntry[];
    try {
      index = JSON.parse(await fs.promises.readFile(path.join(dir, INDEX_FILE), 'utf8')) as IndexEntry[];
      if (!Array.isArray(index)) return;
    } catch {
      return;
    }
    let restored = 0;
    for (const e of index) {
      if (this.results.has(pathKey(e.root))) continue;
      try {
        const [rootStat, fileStat] = await Promise.all([fs.promises.stat(e.root), fs.promises.stat(e.file)]);
        if (!rootStat.isDirectory() || fileStat.size > MAX_RESTORE_BYTES) continue;
        const report = JSON.parse(await fs.promises.readFile(e.file, 'utf8')) as EvalReport;
        // A large report's samples are in its sidecar: decoding it would block the extension host at startup too.
        if (!Array.isArray(report.samples) && report.dataset.counts.samples > MAX_RESTORE_SAMPLES) continue;
        await attachSidecar(report, e.file);
        if (this.results.has(pathKey(e.root))) continue; // evaluated meanwhile
        this.results.set(path.resolve(e.root), {
          root: path.resolve(e.root),
          target: e.target,
          report,
          gate: e.gate,
          config: e.config ?? {},
          configFile: e.configFile,
          modelChoice: e.modelChoice,
          stale: true,
          resolved: new Map(),
          reportFile: e.file,
        });
        this.current ??= pathKey(e.root);
        restored++;
      } catch {
        // The dataset or its saved report is gone: skip it.
      }
    }
    if (restored > 0) {
      this.log.info(`restored ${restored} earlier result${restored === 1 ? '' : 's'} (out of date until evaluated again)`);
      this.changed.fire(undefined);
    }
  }

  /** Waits for pending saves (deactivation). */
  async flush(): Promise<void> {
    await this.saving;
    await this.history?.flush();
  }

  dispose(): void {
    this.changed.dispose();
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.promises.writeFile(tmp, text);
  await fs.promises.rename(tmp, file);
}
