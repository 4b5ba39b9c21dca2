/**
 * Directories that appear whole or not at all: built in a hidden partial directory next to the target
 * (io/partial.ts naming, so what a killed process left is swept), then swapped in by one rename. A build,
 * import or checkpoint writer interrupted halfway never leaves a half directory at the target.
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { partialPathFor, sweepStalePartialsSync } from './partial.js';

/**
 * Runs `fill(staging)` to write the directory's content into a fresh staging directory, then replaces
 * `target` (and whatever was there) with it. On an error the staging directory is removed and `target`
 * is left as it was.
 *
 * @example
 *   writeDirectoryAtomically('out/model', (dir) => writeFileSync(join(dir, 'model.json'), '{}'));
 */
export function writeDirectoryAtomically<T>(target: string, fill: (staging: string) => T): T {
  const parent = dirname(resolve(target));
  mkdirSync(parent, { recursive: true });
  sweepStalePartialsSync(parent);
  const staging = partialPathFor(resolve(target));
  mkdirSync(staging);
  try {
    const result = fill(staging);
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
    return result;
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}
