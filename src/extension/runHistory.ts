/**
 * The recent runs of each dataset, kept in the extension's storage across sessions (runHistoryModel.ts has the
 * rules): `record` after each evaluation, `list` and `load` for "Compare with...". Writes are queued per dataset;
 * a failure is a warning in the log, never an error of the run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { makeBaseline, readBaseline, serializeBaseline, type Baseline } from '../core/baseline';
import { makeDirectory } from '../core/fileSystem';
import type { EvalReport } from '../core/report';
import { addRun, entryOf, HISTORY_INDEX, HISTORY_LIMIT, historyFolderName, parseHistoryIndex, strayFiles, type HistoryEntry, type HistoryIndex } from './runHistoryModel';

export class RunHistory {
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly log: Pick<vscode.LogOutputChannel, 'warn'>,
    private readonly limit = HISTORY_LIMIT,
  ) {}

  private folder(root: string): string {
    return path.join(this.dir, historyFolderName(path.resolve(root)));
  }

  private async readIndex(root: string): Promise<HistoryIndex | undefined> {
    const text = await fs.promises.readFile(path.join(this.folder(root), HISTORY_INDEX), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : parseHistoryIndex(text, path.resolve(root));
  }

  /** Keeps a finished run (in the background; `flush` waits for it). */
  record(report: EvalReport): void {
    const root = path.resolve(report.dataset.root);
    this.queue = this.queue
      .then(async () => {
        const folder = this.folder(root);
        await makeDirectory(folder);
        const run = makeBaseline(report);
        const entry = entryOf(run, report.createdAt);
        await writeAtomic(path.join(folder, entry.file), serializeBaseline(run));
        const { index, remove } = addRun(await this.readIndex(root), root, entry, this.limit);
        await writeAtomic(path.join(folder, HISTORY_INDEX), JSON.stringify(index, null, 1));
        for (const f of [...remove, ...strayFiles(index, await fs.promises.readdir(folder))]) await fs.promises.rm(path.join(folder, f), { force: true });
      })
      .catch((e: unknown) => this.log.warn(`could not keep the run in the history (${this.dir}): ${(e as Error).message}`));
  }

  /** The kept runs of a dataset, newest first. */
  async list(root: string): Promise<HistoryEntry[]> {
    await this.queue;
    return (await this.readIndex(root))?.runs ?? [];
  }

  /** A kept run as a baseline. */
  async load(root: string, entry: HistoryEntry): Promise<Baseline> {
    return readBaseline(path.join(this.folder(root), entry.file), `the run of ${entry.createdAt}`);
  }

  flush(): Promise<void> {
    return this.queue;
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await fs.promises.writeFile(tmp, text);
  await fs.promises.rename(tmp, file);
}
