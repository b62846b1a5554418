/** Small file-system queries shared by core, the CLI and the extension. */
import * as fs from 'node:fs';

/**
 * Whether something is at `p`. By default a symbolic link counts as itself (lstat: a dangling link exists, so
 * nothing is written over it); `followSymlinks` asks about what the link points to (stat).
 */
export async function pathExists(p: string, options: { followSymlinks?: boolean } = {}): Promise<boolean> {
  try {
    await (options.followSymlinks ? fs.promises.stat(p) : fs.promises.lstat(p));
    return true;
  } catch {
    return false;
  }
}
