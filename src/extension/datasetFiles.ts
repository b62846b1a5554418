/**
 * Which files of an evaluated dataset matter when they change (watcher.ts). Pure, unit-tested.
 */
import * as path from 'node:path';
import { isIgnoredName, isImageFile } from '../core/dataset';
import { CONFIG_FILE_NAME } from '../core/projectConfig';

export type ChangeKind = 'labels' | 'config' | 'images';

/** What a changed path means for a dataset: its label file, its config, an image in it, or nothing. */
export function classifyChange(result: { root: string; report: { dataset: { labelFile?: string } } }, fsPath: string): ChangeKind | null {
  const rel = path.relative(result.root, fsPath);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const labelFile = result.report.dataset.labelFile;
  if (labelFile && path.resolve(labelFile) === path.resolve(fsPath)) return 'labels';
  if (rel === CONFIG_FILE_NAME) return 'config';
  if (rel.split(path.sep).some(isIgnoredName)) return null;
  return isImageFile(path.basename(fsPath)) ? 'images' : null;
}


/** A comparable form of a file path: resolved, and case-folded on Windows (VS Code lower-cases drive letters). */
export function pathKey(p: string, platform: NodeJS.Platform = process.platform): string {
  const r = platform === 'win32' ? path.win32.resolve(p) : path.resolve(p);
  return platform === 'win32' ? r.toLowerCase() : r;
}

/** True when two paths name the same file (see pathKey). */
export function samePath(a: string, b: string, platform: NodeJS.Platform = process.platform): boolean {
  return pathKey(a, platform) === pathKey(b, platform);
}
