/**
 * The recent runs of each dataset kept across sessions for the panel's "Compare with..." (pure logic; runHistory.ts
 * does the I/O). A run is kept as its baseline (core/baseline.ts makeBaseline: headline, per class, per sample one
 * line; a few percent of the report), in a folder per dataset with a small index, newest first, at most
 * HISTORY_LIMIT runs: recording a run names the files to delete.
 */
import { createHash } from 'node:crypto';
import type { Baseline } from '../core/baseline';

/** Runs kept per dataset. */
export const HISTORY_LIMIT = 5;
export const HISTORY_INDEX = 'index.json';

export interface HistoryEntry {
  /** The baseline file, in the dataset's history folder. */
  file: string;
  /** The report's createdAt (identifies the run). */
  createdAt: string;
  model: string;
  quantized: boolean;
  templates: string;
  predictor: string;
  images: number;
  top1Accuracy: number | null;
}

export interface HistoryIndex {
  /** The dataset root, as a check that the folder is this dataset's. */
  root: string;
  /** Newest first. */
  runs: HistoryEntry[];
}

/** The folder of a dataset's history (a hash of its root: roots are paths). */
export function historyFolderName(root: string): string {
  return createHash('sha256').update(root).digest('hex').slice(0, 24);
}

/** The file a run is kept in: its time stamp, letters and digits only. */
export function runFileName(createdAt: string): string {
  return `run-${createdAt.replace(/[^0-9A-Za-z]/g, '')}.json`;
}

/** The index entry of a run. */
export function entryOf(run: Baseline, createdAt: string): HistoryEntry {
  return {
    file: runFileName(createdAt),
    createdAt,
    model: run.model.name,
    quantized: run.model.quantized,
    templates: run.templates.name,
    predictor: run.predictor,
    images: run.metrics?.n ?? 0,
    top1Accuracy: run.metrics?.top1Accuracy ?? null,
  };
}

/**
 * `entry` added (newest first; a run already there is replaced), at most `limit` runs: the new index and the files
 * of the runs dropped.
 */
export function addRun(index: HistoryIndex | undefined, root: string, entry: HistoryEntry, limit = HISTORY_LIMIT): { index: HistoryIndex; remove: string[] } {
  const others = (index?.root === root ? index.runs : []).filter((r) => r.createdAt !== entry.createdAt);
  const runs = [entry, ...others].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const kept = runs.slice(0, Math.max(1, limit));
  const keptFiles = new Set(kept.map((r) => r.file));
  const remove = [...new Set(runs.slice(kept.length).map((r) => r.file))].filter((f) => !keptFiles.has(f));
  return { index: { root, runs: kept }, remove };
}

function isEntry(v: unknown): v is HistoryEntry {
  if (v === null || typeof v !== 'object') return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.file === 'string' &&
    /^run-[0-9A-Za-z]+\.json$/.test(e.file) &&
    typeof e.createdAt === 'string' &&
    typeof e.model === 'string' &&
    typeof e.quantized === 'boolean' &&
    typeof e.templates === 'string' &&
    typeof e.predictor === 'string' &&
    typeof e.images === 'number' &&
    (e.top1Accuracy === null || typeof e.top1Accuracy === 'number')
  );
}

/**
 * A saved index, or undefined when it is not this dataset's or not an index at all. Malformed entries are dropped
 * (a file name that is not one this module makes never reaches the file system).
 */
export function parseHistoryIndex(text: string, root: string): HistoryIndex | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || (v as { root?: unknown }).root !== root || !Array.isArray((v as { runs?: unknown }).runs)) return undefined;
  return { root, runs: ((v as { runs: unknown[] }).runs).filter(isEntry) };
}

/** Files of a history folder that the index does not name (left by an interrupted write): to delete. */
export function strayFiles(index: HistoryIndex | undefined, names: readonly string[]): string[] {
  const keep = new Set([HISTORY_INDEX, ...(index?.runs ?? []).map((r) => r.file)]);
  return names.filter((n) => /^run-.*\.json(\.tmp)?$/.test(n) && !keep.has(n));
}

/** The picker's line for a run: when, which model, how it did. */
export function describeRun(e: HistoryEntry, formatDate: (iso: string) => string): { label: string; description: string } {
  const top1 = e.top1Accuracy === null ? '' : ` · top-1 ${(Math.round(e.top1Accuracy * 1000) / 10).toFixed(1)}%`;
  return {
    label: `$(history) Run of ${formatDate(e.createdAt)}`,
    description: `model ${e.model}${e.quantized ? ' (int8)' : ''}${top1} · ${e.images} images${e.templates !== 'simple' ? ` · templates ${e.templates}` : ''}${e.predictor !== 'zero-shot' ? ` · ${e.predictor}` : ''}`,
  };
}

/** The runs the picker offers for a report: all but the report itself and those already offered otherwise. */
export function runsToOffer(index: HistoryIndex | undefined, exclude: readonly string[]): HistoryEntry[] {
  const skip = new Set(exclude);
  return (index?.runs ?? []).filter((r) => !skip.has(r.createdAt));
}
