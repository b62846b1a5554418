/**
 * Platform helpers without 'vscode' (unit-tested).
 */
import * as path from 'node:path';

/** The first `name` (plus Windows extensions) found in the PATH folders; pure apart from `isFile`. */
export function findOnPath(name: string, envPath: string | undefined, platform: NodeJS.Platform, isFile: (p: string) => boolean): string | undefined {
  const sep = platform === 'win32' ? ';' : ':';
  const exts = platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  const join = platform === 'win32' ? path.win32.join : path.posix.join;
  for (const dir of (envPath ?? '').split(sep)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      if (isFile(candidate)) return candidate;
    }
  }
  return undefined;
}
