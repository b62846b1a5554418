/**
 * Where a fix puts things, as pure functions (unit-tested): the folder an image moves to when its class changes in a
 * class-folder dataset.
 */
import type { DatasetFormat } from '../core/types';
import { datasetFormat } from '../core/datasetFormat';

export class FixError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FixError';
  }
}

/**
 * The dataset-relative path an image gets when moved from its class folder to another class's folder: the image
 * goes directly into the target class folder (`cat/sub/x.jpg` -> `dog/x.jpg`), under the same split folder when the
 * dataset has a split level (`train/cat/x.jpg` -> `train/dog/x.jpg`). Throws FixError when the path is not inside
 * the folder of `fromClass` or the class names are unusable as folder names.
 */
export function folderMoveTarget(samplePath: string, format: DatasetFormat, fromClass: string, toClass: string): string {
  const classAt = datasetFormat(format).classFolderIndex;
  if (classAt === null) throw new FixError('a label-file dataset is fixed by changing its label, not by moving the image');
  if (toClass === fromClass) throw new FixError(`the image is already in '${fromClass}'`);
  if (!toClass || /[\\/]/.test(toClass) || toClass === '.' || toClass === '..') throw new FixError(`'${toClass}' cannot be a folder name`);
  const parts = samplePath.split('/');
  if (parts.length < classAt + 2 || parts[classAt] !== fromClass) {
    throw new FixError(`${samplePath} is not in the folder of class '${fromClass}'`);
  }
  const name = parts[parts.length - 1];
  return [...parts.slice(0, classAt), toClass, name].join('/');
}
