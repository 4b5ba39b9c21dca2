/** Files that appear whole or not at all: written to a temp file next to the target, then renamed. */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { partialPathFor, sweepStalePartialsSync } from './partial.js';

/** Writes every byte; one writeSync call takes at most 2 GiB − 1 and may write less. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, Math.min(1 << 30, bytes.byteLength - done));
}

/**
 * Creates `path` through a hidden partial file and a rename, so an error or a crash never leaves a partial
 * file at `path` (and what a killed process left there is swept, see partial.ts); `fill` writes the content
 * through the descriptor it is given.
 */
export function writeFileAtomically(path: string, fill: (fd: number) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  sweepStalePartialsSync(dirname(path));
  const tmp = partialPathFor(path);
  const fd = openSync(tmp, 'w');
  try {
    fill(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw err;
  }
}
