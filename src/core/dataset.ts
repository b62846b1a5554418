/**
 * Dataset readers. Nothing here writes to the dataset.
 *
 * readDataset(target) decides the format:
 * - target is a file -> a label file (CSV/TSV/JSONL, by extension); the dataset root is the file's folder.
 * - options.labelFile -> that label file (relative to the folder, or absolute); the root is the folder.
 * - the folder holds exactly one file named as in LABEL_FILE_NAMES (`metadata.jsonl`, `labels.csv`, `annotations.tsv`, ...,
 *   case-insensitive) -> that label file. Several such files -> ClipLensError('label-file-ambiguous'): pass labelFile.
 * - otherwise class folders.
 * (`labels` in .clip-lens.json is applied by the caller, which passes it as options.)
 *
 * Class folders: `root/<class>/**` -> label `<class>`. Images in subfolders of a class folder are included recursively and
 * keep the label of the class folder. Images directly in the root (or in a split folder) have no class: they are
 * skipped with a DatasetProblem 'unlabeled-image'.
 * Split level: when every top-level folder is a split name (SPLIT_FOLDER_NAMES: train/training, val/valid/validation,
 * test/testing, dev; case-insensitive), the layout is `root/<split>/<class>/**`, the format is 'class-folders-split' and
 * `sample.split` is the split folder's name as written. When only some top-level folders are split names, all are classes
 * and a DatasetProblem 'mixed-split-folders' says so.
 * A class folder without images stays a class (it is a candidate label) and gets a DatasetProblem 'empty-class'.
 *
 * Label files (parsed by labelFile.ts): image paths are relative to the label file's folder (the Hugging Face imagefolder
 * convention), or to the root when the label file lies outside the root; `\` is read as `/`. Absolute paths, URLs and paths leaving the dataset root are refused ('path-refused'),
 * a referenced file that does not exist is 'image-missing', a path without an image extension is 'not-an-image'; each such
 * problem names the label file and line. An image listed twice keeps its first line; later lines are reported as
 * 'duplicate-line' (same label and split) or 'conflicting-label' (different label or split).
 *
 * Images: IMAGE_EXTENSIONS, case-insensitive (formats sharp cannot decode, e.g. BMP, still count as samples and fail
 * later with a per-sample error, rather than silently vanish). Hidden entries (name starting with `.`) and system entries
 * (SYSTEM_NAMES: `__MACOSX`, `Thumbs.db`, `desktop.ini`, ...) are skipped; other non-image files inside class folders
 * are counted in one 'non-image-skipped' problem.
 *
 * Symbolic links that stay inside the dataset root are followed; links whose target (real path) leaves the root are
 * never followed: each is one 'link-outside-root' problem naming the link and its target, whether it is a class
 * folder, a subfolder, an image file or a path in a label file (a label-file path through such a link is refused the
 * same way). Every folder is read at most once, by its real path (the real path of a plain folder is its parent's
 * real path plus its name; only links cost a realpath call), so loops cannot hang the walk. Links are resolved after
 * all plain folders, in path order, so which path a linked folder is reported under does not depend on timing.
 *
 * Order: classes sorted by code point (compareCodePoints: UTF-8 byte order, not locale order); class-folder samples
 * sorted by path the same way; label-file samples in file order.
 */
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { CancelledError, ClipLensError, throwIfAborted } from './errors';
import { labelFileExtensionsText, labelFileKind } from './datasetFormat';
import { invalidUtf8Lines, parseLabelFile, shorten, type LabelColumnOptions } from './labelFile';
import { describeEntry, FILE_LIMITS, readRegularFile } from './fileSystem';
import type { Dataset, DatasetProblem, Sample } from './types';

/** Image file extensions (lower case, with the dot). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.bmp',
]);

/** Top-level folder names (lower case) that mark a split level. */
export const SPLIT_FOLDER_NAMES: ReadonlySet<string> = new Set([
  'train', 'training', 'val', 'valid', 'validation', 'test', 'testing', 'dev',
]);

/** Label file names looked for in a dataset folder (compared case-insensitively). */
export const LABEL_FILE_NAMES: readonly string[] = ['metadata', 'labels', 'annotations'].flatMap((b) =>
  ['.jsonl', '.csv', '.tsv'].map((e) => b + e),
);

/** File and folder names that are never part of a dataset (compared case-insensitively); dot-names are skipped too. */
export const SYSTEM_NAMES: ReadonlySet<string> = new Set([
  '__macosx', 'thumbs.db', 'ehthumbs.db', 'desktop.ini', '$recycle.bin', 'system volume information', '@eadir',
]);

/** Label files larger than this are refused (they are read whole, as text). */
export const MAX_LABEL_FILE_BYTES = FILE_LIMITS.labelFile;

export interface ReadDatasetOptions extends LabelColumnOptions {
  /** Label file, relative to the target folder or absolute. */
  labelFile?: string;
  signal?: AbortSignal;
}

/** Problems shown in a fatal one-line error, at most. */
const PROBLEMS_IN_ERROR = 3;

/** "; 5 problems in the dataset: line 2: ...; line 3: ...; and 3 more" (empty without problems), each cut short. */
export function summarizeProblems(problems: readonly DatasetProblem[]): string {
  if (problems.length === 0) return '';
  const shown = problems.slice(0, PROBLEMS_IN_ERROR).map((p) => {
    const where = p.line !== undefined ? `line ${p.line}` : p.file !== undefined ? shorten(p.file, 60) : '';
    return `${where ? `${where}: ` : ''}${shorten(p.message, 170)}`;
  });
  const more = problems.length - shown.length;
  return `; ${problems.length} problem${problems.length === 1 ? '' : 's'} in the dataset: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
}

/** True for names the walk skips: hidden (leading `.`) and system names. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || SYSTEM_NAMES.has(name.toLowerCase());
}

/** True when the file name has an image extension. */
export function isImageFile(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && IMAGE_EXTENSIONS.has(name.slice(dot).toLowerCase());
}

/** Compare strings by Unicode code point (= UTF-8 byte order), not UTF-16 unit or locale order. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800-DFFF) encode code points >= U+10000, so they sort after U+E000-FFFF.
    if (x >= 0xd800) x = x < 0xe000 ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    return x - y;
  }
  return a.length - b.length;
}

/** Read a dataset (see the module comment for the formats and rules). */
export async function readDataset(target: string, options: ReadDatasetOptions = {}): Promise<Dataset> {
  const abs = path.resolve(target);
  const info = await statOrThrow(abs, 'dataset-not-found', 'no such file or folder');
  throwIfAborted(options.signal);
  if (info.isFile()) {
    if (!labelFileKind(abs)) {
      throw new ClipLensError(
        'dataset-unsupported',
        `not a dataset: give a folder of class folders, or a ${labelFileExtensionsText()} label file`,
        { file: abs },
      );
    }
    return readLabelFileDataset(path.dirname(abs), abs, options);
  }
  if (!info.isDirectory()) throw new ClipLensError('dataset-unsupported', 'not a file or folder', { file: abs });
  if (options.labelFile !== undefined) {
    const lf = path.resolve(abs, options.labelFile);
    const lfInfo = await statOrThrow(lf, 'label-file-not-found', 'label file not found');
    if (!lfInfo.isFile()) throw new ClipLensError('label-file-not-found', 'the label file is not a file', { file: lf });
    return readLabelFileDataset(abs, lf, options);
  }
  const entries = await readDirOrThrow(abs);
  const labelFiles = entries
    .filter((e) => LABEL_FILE_NAMES.includes(e.name.toLowerCase()) && (e.isFile() || e.isSymbolicLink()))
    .map((e) => e.name)
    .sort(compareCodePoints);
  if (labelFiles.length > 1) {
    throw new ClipLensError(
      'label-file-ambiguous',
      `several label files (${labelFiles.join(', ')}); choose one with the labelFile option (--labels) or "labels.file" in .clip-lens.json`,
      { file: abs },
    );
  }
  if (labelFiles.length === 1) return readLabelFileDataset(abs, path.join(abs, labelFiles[0]!), options);
  return readClassFolders(abs, entries, options.signal);
}

async function statOrThrow(file: string, code: string, what: string) {
  try {
    return await stat(file);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    throw new ClipLensError(code, errno === 'ENOENT' ? what : `cannot read: ${(e as Error).message}`, { file });
  }
}

async function readDirOrThrow(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new ClipLensError('dataset-unreadable', `cannot list the folder: ${(e as Error).message}`, { file: dir });
  }
}

/** POSIX path of `abs` relative to `root`, or the absolute path when it lies outside. */
function displayPath(root: string, abs: string): string {
  const rel = path.relative(root, abs);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return abs;
  return rel.split(path.sep).join('/');
}

// ---------------------------------------------------------------------------------------------------------------------
// Class folders

/** Where a top-level entry of a class (or split) folder resolved to. */
interface TopFolder {
  name: string;
  abs: string;
  real: string;
}

async function readClassFolders(root: string, rootEntries: Dirent[], signal?: AbortSignal): Promise<Dataset> {
  const problems: DatasetProblem[] = [];
  const rootReal = await realpath(root);
  const visited = new Set<string>([rootReal]);
  const top = await topFolders(rootReal, '', rootEntries, problems, visited, root, rootReal);
  throwIfAborted(signal);

  const splitNames = top.folders.filter((f) => SPLIT_FOLDER_NAMES.has(f.name.toLowerCase()));
  const isSplit = top.folders.length > 0 && splitNames.length === top.folders.length;
  if (!isSplit && splitNames.length > 0) {
    problems.push({
      code: 'mixed-split-folders',
      message: `${splitNames.map((f) => f.name).join(', ')} look like split folders but ${top.folders
        .filter((f) => !SPLIT_FOLDER_NAMES.has(f.name.toLowerCase()))
        .map((f) => f.name)
        .slice(0, 3)
        .join(', ')} do not; all top-level folders are read as classes`,
    });
  }

  // (split, class folder) pairs to walk.
  const classDirs: { split?: string; cls: TopFolder; relPrefix: string }[] = [];
  if (isSplit) {
    for (const s of top.folders) {
      const sub = await topFolders(s.real, s.name, await listDir(s.abs, s.name, problems), problems, visited, s.abs, rootReal);
      for (const c of sub.folders) classDirs.push({ split: s.name, cls: c, relPrefix: `${s.name}/${c.name}` });
    }
  } else {
    for (const c of top.folders) classDirs.push({ cls: c, relPrefix: c.name });
  }

  const samples: Sample[] = [];
  const classes = new Set<string>();
  const nonImages = { count: 0, first: '' };
  const imagesPerClass = new Map<string, number>();
  const firstFolder = new Map<string, string>();
  const walker = new Walker(rootReal, visited, problems, nonImages, signal);
  for (const cd of classDirs) {
    classes.add(cd.cls.name);
    if (!firstFolder.has(cd.cls.name)) firstFolder.set(cd.cls.name, cd.relPrefix);
    walker.add(cd.cls.abs, cd.cls.real, cd.relPrefix, (rel) => {
      samples.push(cd.split !== undefined ? { path: rel, label: cd.cls.name, split: cd.split } : { path: rel, label: cd.cls.name });
      imagesPerClass.set(cd.cls.name, (imagesPerClass.get(cd.cls.name) ?? 0) + 1);
    });
  }
  await walker.run();

  if (samples.length === 0) {
    // Images directly in the folder: it is probably one class folder of a dataset; name the dataset to evaluate.
    const loose = rootEntries.filter((e) => e.isFile() && isImageFile(e.name)).length;
    const hint = classDirs.length === 0 && loose > 0 ? `; it holds ${loose} image${loose === 1 ? '' : 's'} itself, so it looks like one class folder: evaluate its parent folder ${path.dirname(root)}` : '';
    throw new ClipLensError(
      'dataset-empty',
      classDirs.length === 0
        ? `no class folders found: expected <root>/<class>/<image> (or a label file such as labels.csv or metadata.jsonl)${hint}`
        : 'no images found in the class folders',
      { file: root },
    );
  }
  const sortedClasses = [...classes].sort(compareCodePoints);
  for (const c of sortedClasses) {
    if (!imagesPerClass.has(c)) {
      const folder = firstFolder.get(c)!;
      problems.push({ code: 'empty-class', message: `class folder "${folder}" has no images (it is still a class)`, file: folder });
    }
  }
  if (nonImages.count > 0) {
    problems.push({
      code: 'non-image-skipped',
      message: `${nonImages.count} file${nonImages.count === 1 ? '' : 's'} without an image extension skipped in class folders (e.g. ${nonImages.first})`,
      file: nonImages.first,
      path: nonImages.first,
    });
  }
  samples.sort((a, b) => compareCodePoints(a.path, b.path));
  // Problems found by concurrent reads arrive in any order; sort them by file (stable) for a reproducible result.
  problems.sort((a, b) => compareCodePoints(a.file ?? '', b.file ?? ''));
  return {
    root,
    format: isSplit ? 'class-folders-split' : 'class-folders',
    classes: sortedClasses,
    samples,
    problems,
  };
}

async function listDir(abs: string, rel: string, problems: DatasetProblem[]): Promise<Dirent[]> {
  try {
    return await readdir(abs, { withFileTypes: true });
  } catch (e) {
    problems.push({ code: 'unreadable-folder', message: `cannot list the folder: ${(e as Error).message}`, file: rel, path: rel });
    return [];
  }
}

/**
 * The folders among `entries` of the folder `parentReal` (shown as `relBase`), following links to folders, skipping
 * ignored names and folders already visited. Image files found here are unlabeled and reported.
 */
async function topFolders(
  parentReal: string,
  relBase: string,
  entries: Dirent[],
  problems: DatasetProblem[],
  visited: Set<string>,
  parentAbs: string,
  rootReal: string,
): Promise<{ folders: TopFolder[] }> {
  const folders: TopFolder[] = [];
  // Plain entries first, then links, so a plain folder is never reported as "already read" because a link reached it.
  const sorted = [...entries].sort(
    (a, b) => Number(a.isSymbolicLink()) - Number(b.isSymbolicLink()) || compareCodePoints(a.name, b.name),
  );
  for (const e of sorted) {
    if (isIgnoredName(e.name)) continue;
    const rel = relBase === '' ? e.name : `${relBase}/${e.name}`;
    const abs = path.join(parentAbs, e.name);
    let kind: 'dir' | 'file' | 'other' = e.isDirectory() ? 'dir' : e.isFile() ? 'file' : 'other';
    let real = path.join(parentReal, e.name);
    if (e.isSymbolicLink()) {
      try {
        const st = await stat(abs);
        kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
        real = await realpath(abs);
      } catch {
        problems.push({ code: 'broken-link', message: `broken symbolic link skipped: ${rel}`, file: rel, path: rel });
        continue;
      }
      if (!isInside(rootReal, real)) {
        problems.push(outsideProblem(rel, real));
        continue;
      }
    }
    if (kind === 'dir') {
      if (visited.has(real)) {
        problems.push({ code: 'symlink-skipped', message: `${rel} links to a folder that is already read; skipped`, file: rel, path: rel });
        continue;
      }
      visited.add(real);
      folders.push({ name: e.name, abs, real });
    } else if (kind === 'other' && isImageFile(e.name)) {
      problems.push(notRegularProblem(rel, e.isSymbolicLink() ? await stat(abs) : e));
    } else if (kind === 'file' && isImageFile(e.name)) {
      problems.push({
        code: 'unlabeled-image',
        message: `${rel} is not inside a class folder, so it has no label; skipped`,
        file: rel,
        path: rel,
      });
    }
  }
  folders.sort((a, b) => compareCodePoints(a.name, b.name));
  return { folders };
}

/** A folder to walk: absolute path, real path, path relative to the root, and where its images go. */
interface WalkJob {
  abs: string;
  real: string;
  rel: string;
  emit: (rel: string) => void;
}

/**
 * Walks class folders recursively with a few readdir calls in flight. Plain subfolders are walked at once; linked
 * folders are held back and resolved after everything else, in path order, so the walk is deterministic.
 */
class Walker {
  private static readonly CONCURRENCY = 8;
  private queue: WalkJob[] = [];
  private links: { abs: string; rel: string; emit: (rel: string) => void }[] = [];

  constructor(
    private readonly rootReal: string,
    private readonly visited: Set<string>,
    private readonly problems: DatasetProblem[],
    private readonly nonImages: { count: number; first: string },
    private readonly signal?: AbortSignal,
  ) {}

  add(abs: string, real: string, rel: string, emit: (rel: string) => void): void {
    this.queue.push({ abs, real, rel, emit });
  }

  async run(): Promise<void> {
    for (;;) {
      await this.drain();
      if (this.links.length === 0) return;
      const links = this.links.sort((a, b) => compareCodePoints(a.rel, b.rel));
      this.links = [];
      for (const l of links) await this.resolveLink(l);
    }
  }

  /** Read queued folders (and the subfolders they add) with up to CONCURRENCY readdir calls in flight. */
  private drain(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let active = 0;
      let failed = false;
      const pump = () => {
        if (failed) return;
        if (this.signal?.aborted) {
          failed = true;
          reject(new CancelledError());
          return;
        }
        while (active < Walker.CONCURRENCY && this.queue.length > 0) {
          const job = this.queue.pop()!;
          active++;
          this.readFolder(job).then(
            () => {
              active--;
              pump();
            },
            (e: unknown) => {
              failed = true;
              reject(e);
            },
          );
        }
        if (active === 0 && this.queue.length === 0) resolve();
      };
      pump();
    });
  }

  private async readFolder(job: WalkJob): Promise<void> {
    const entries = await listDir(job.abs, job.rel, this.problems);
    for (const e of entries) {
      const name = e.name;
      if (isIgnoredName(name)) continue;
      const rel = `${job.rel}/${name}`;
      if (e.isFile()) {
        this.file(name, rel, job.emit);
      } else if (e.isDirectory()) {
        const real = path.join(job.real, name);
        if (this.visited.has(real)) {
          this.problems.push({ code: 'symlink-skipped', message: `${rel} was already read through a link; skipped`, file: rel, path: rel });
          continue;
        }
        this.visited.add(real);
        this.queue.push({ abs: path.join(job.abs, name), real, rel, emit: job.emit });
      } else if (e.isSymbolicLink()) {
        this.links.push({ abs: path.join(job.abs, name), rel, emit: job.emit });
      } else if (isImageFile(name)) {
        this.problems.push(notRegularProblem(rel, e));
      }
    }
  }

  private file(name: string, rel: string, emit: (rel: string) => void): void {
    if (isImageFile(name)) {
      emit(rel);
    } else {
      if (this.nonImages.count === 0 || compareCodePoints(rel, this.nonImages.first) < 0) this.nonImages.first = rel;
      this.nonImages.count++;
    }
  }

  private async resolveLink(l: { abs: string; rel: string; emit: (rel: string) => void }): Promise<void> {
    throwIfAborted(this.signal);
    let st;
    let real: string;
    try {
      st = await stat(l.abs);
      real = await realpath(l.abs);
    } catch {
      this.problems.push({ code: 'broken-link', message: `broken symbolic link skipped: ${l.rel}`, file: l.rel, path: l.rel });
      return;
    }
    if (!isInside(this.rootReal, real)) {
      this.problems.push(outsideProblem(l.rel, real));
      return;
    }
    if (st.isFile()) {
      this.file(path.basename(l.abs), l.rel, l.emit);
    } else if (!st.isDirectory()) {
      if (isImageFile(l.rel)) this.problems.push(notRegularProblem(l.rel, st));
    } else {
      if (this.visited.has(real)) {
        this.problems.push({
          code: 'symlink-skipped',
          message: `${l.rel} links to a folder that is already read (a loop or a second path to it); skipped`,
          file: l.rel,
          path: l.rel,
        });
        return;
      }
      this.visited.add(real);
      this.queue.push({ abs: l.abs, real, rel: l.rel, emit: l.emit });
    }
  }
}

/** Whether the real path `real` is `rootReal` or inside it. */
function isInside(rootReal: string, real: string): boolean {
  const rel = path.relative(rootReal, real);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/** 'link-outside-root': a link whose target leaves the dataset root; it is never followed (one problem per link). */
function outsideProblem(rel: string, target: string): DatasetProblem {
  return {
    code: 'link-outside-root',
    message: `${shorten(rel)} is a symbolic link to ${shorten(target)}, outside the dataset root; not followed`,
    file: rel,
    path: rel,
  };
}

/** 'not-a-regular-file': an entry named like an image that is a FIFO, a device or a socket (never opened). */
function notRegularProblem(rel: string, entry: Parameters<typeof describeEntry>[0]): DatasetProblem {
  return { code: 'not-a-regular-file', message: `${shorten(rel)} is ${describeEntry(entry)}, not an image file; skipped`, file: rel, path: rel };
}

// ---------------------------------------------------------------------------------------------------------------------
// Label files

async function readLabelFileDataset(root: string, labelFile: string, options: ReadDatasetOptions): Promise<Dataset> {
  const kind = labelFileKind(labelFile);
  if (!kind) {
    throw new ClipLensError('label-file-unsupported', `label files must end in ${labelFileExtensionsText()}`, { file: labelFile });
  }
  const bytes = await readRegularFile(labelFile, { maxBytes: MAX_LABEL_FILE_BYTES, code: 'label-file-unreadable', what: 'the label file' });
  throwIfAborted(options.signal);
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new ClipLensError('label-file-encoding', 'the label file is UTF-16 text; save it as UTF-8', { file: labelFile });
  }
  const shown = displayPath(root, labelFile);
  const parsed = parseLabelFile(bytes.toString('utf8'), kind, shown, { ...options, invalidUtf8Lines: invalidUtf8Lines(bytes, kind) });
  const problems = parsed.problems;
  // Paths are relative to the label file's folder; for a label file outside the root, relative to the root.
  const baseRel = shown === labelFile ? '' : path.posix.dirname(shown).replace(/^\.$/, '');

  // Resolve paths, refuse unsafe ones, drop duplicates.
  const firstByPath = new Map<string, { line: number; label: string; split?: string }>();
  const candidates: Sample[] = [];
  for (const entry of parsed.entries) {
    const where = { file: shown, line: entry.line };
    const resolved = resolveEntryPath(baseRel, entry.image);
    if ('refused' in resolved) {
      problems.push({ code: 'path-refused', message: `${JSON.stringify(shorten(entry.image))}: ${resolved.refused}`, ...where });
      continue;
    }
    const rel = resolved.rel;
    const first = firstByPath.get(rel);
    if (first) {
      const same = first.label === entry.label && first.split === entry.split;
      problems.push({
        code: same ? 'duplicate-line' : 'conflicting-label',
        message: same
          ? `${shorten(rel)} is listed again (first on line ${first.line}); this line is ignored`
          : `${shorten(rel)} is listed again with ${describe(entry)} (line ${first.line} has ${describe(first)}); the first line is used`,
        path: rel,
        ...where,
      });
      continue;
    }
    firstByPath.set(rel, entry);
    if (!isImageFile(rel)) {
      problems.push({ code: 'not-an-image', message: `${shorten(rel)} does not have an image file extension`, path: rel, ...where });
      continue;
    }
    const sample: Sample = { path: rel, label: entry.label, source: { file: shown, line: entry.line } };
    if (entry.split !== undefined) sample.split = entry.split;
    candidates.push(sample);
  }

  // Check that the images exist: one readdir per folder, a stat only for names not found that way.
  const existing = await existingFiles(root, candidates.map((s) => s.path), options.signal);
  const samples: Sample[] = [];
  for (const s of candidates) {
    const state = existing.get(s.path);
    if (state === 'file') {
      samples.push(s);
    } else if (typeof state === 'object' && 'outside' in state) {
      problems.push({
        code: 'link-outside-root',
        message: `${shorten(s.path)} leads through a symbolic link to ${shorten(state.outside)}, outside the dataset root; not followed`,
        file: s.source!.file,
        line: s.source!.line,
        path: s.path,
      });
    } else if (typeof state === 'object') {
      problems.push({ ...notRegularProblem(s.path, state), file: s.source!.file, line: s.source!.line });
    } else {
      problems.push({
        code: 'image-missing',
        message: state === 'dir' ? `${shorten(s.path)} is a folder, not an image` : `image not found: ${shorten(s.path)}`,
        file: s.source!.file,
        line: s.source!.line,
        path: s.path,
      });
    }
  }
  if (samples.length === 0 && problems.length === 0) {
    throw new ClipLensError('dataset-empty', 'the label file lists no images', { file: labelFile });
  }
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const classes = [...new Set(samples.map((s) => s.label))].sort(compareCodePoints);
  return { root, format: 'label-file', labelFile, classes, samples, problems };
}

function describe(e: { label: string; split?: string }): string {
  return `label "${shorten(e.label)}"${e.split !== undefined ? ` (split "${shorten(e.split)}")` : ''}`;
}

/**
 * Resolve a label-file image path to a POSIX path relative to the root, or say why it is refused. `baseRel` is the
 * folder the paths are relative to, as a POSIX path relative to the root ('' for the root itself).
 */
export function resolveEntryPath(baseRel: string, image: string): { rel: string } | { refused: string } {
  const p = image.replace(/\\/g, '/');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) return { refused: 'URLs are not supported; use a path relative to the label file' };
  if (p.startsWith('/') || /^[a-z]:/i.test(p)) {
    return { refused: 'absolute paths are refused; use a path relative to the label file' };
  }
  const joined = baseRel === '' ? p : `${baseRel}/${p}`;
  // Normalise only when needed (`.`/`..` segments, `//`): most lines are plain paths and this runs once per line.
  const rel = /(?:^|\/)\.\.?(?:\/|$)|\/\//.test(joined) ? path.posix.normalize(joined) : joined;
  if (rel === '.' || rel === '..' || rel.startsWith('../')) return { refused: 'the path leaves the dataset root' };
  return { rel };
}

/** What a label-file path is: a file, a folder, missing, or another kind of entry (a FIFO, a device: its stats). */
type EntryState = 'file' | 'dir' | 'missing' | import('node:fs').Stats | { outside: string };

/** For each relative path its EntryState. Reads each parent folder once; stats only unmatched names. */
async function existingFiles(
  root: string,
  rels: string[],
  signal?: AbortSignal,
): Promise<Map<string, EntryState>> {
  const byDir = new Map<string, string[]>();
  for (const rel of rels) {
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    let list = byDir.get(dir);
    if (!list) byDir.set(dir, (list = []));
    list.push(rel);
  }
  const out = new Map<string, EntryState>();
  const dirs = [...byDir.keys()];
  const rootReal = await realpath(root).catch(() => root);
  const check = async (dir: string) => {
    const names = new Map<string, Dirent>();
    const abs = path.join(root, ...dir.split('/'));
    try {
      for (const e of await readdir(abs, { withFileTypes: true })) names.set(e.name, e);
    } catch {
      // Missing or unreadable folder: every name in it falls through to stat below.
    }
    // A folder reached through a link that leaves the root: nothing in it is read.
    if (names.size > 0 && dir !== '') {
      const real = await realpath(abs).catch(() => abs);
      if (!isInside(rootReal, real)) {
        for (const rel of byDir.get(dir)!) out.set(rel, { outside: real });
        return;
      }
    }
    for (const rel of byDir.get(dir)!) {
      const e = names.get(rel.slice(rel.lastIndexOf('/') + 1));
      if (e && e.isFile()) out.set(rel, 'file');
      else if (e && e.isDirectory()) out.set(rel, 'dir');
      else {
        const file = path.join(root, ...rel.split('/'));
        const real = await realpath(file).catch(() => null);
        out.set(rel, real !== null && !isInside(rootReal, real) ? { outside: real } : await statKind(file));
      }
    }
  };
  let next = 0;
  const worker = async () => {
    while (next < dirs.length) {
      throwIfAborted(signal);
      await check(dirs[next++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, dirs.length) }, worker));
  return out;
}

/** The EntryState by stat (follows links; also catches case-insensitive file systems' matches). */
async function statKind(abs: string): Promise<EntryState> {
  try {
    const st = await stat(abs);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st;
  } catch {
    return 'missing';
  }
}
