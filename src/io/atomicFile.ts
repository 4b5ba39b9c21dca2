/** Files that appear whole or not at all: written to a temp file next to the target, then renamed. */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { partialPathFor, sweepStalePartialsSync } from './partial.js';

/** Writes every byte; one writeSync call takes at most 2 GiB − 1 and may write less. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength; )
    done += writeSync(fd, bytes, done, Math.min(1 << 30, bytes.byteLength - done));
}

/**
 * Creates `path` through a hidden partial file beside it and a rename, so an error or a crash never leaves a
 * partial file at `path` (and what a killed process left there is swept, see partial.ts). `make(partial)`
 * creates the partial file in any way (write, hard link, copy). The directory must exist.
 */
export function createFileAtomically(path: string, make: (partial: string) => void): void {
  sweepStalePartialsSync(dirname(path));
  const tmp = partialPathFor(path);
  try {
    make(tmp);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Like createFileAtomically, creating the directory; `fill` writes the content through the descriptor it is given. */
export function writeFileAtomically(path: string, fill: (fd: number) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  createFileAtomically(path, (tmp) => {
    const fd = openSync(tmp, 'w');
    try {
      fill(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/** Writes `bytes` (or text) to `path` atomically; the directory must exist. */
export function writeBytesAtomically(path: string, bytes: Uint8Array | string): void {
  createFileAtomically(path, (tmp) => {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
    } finally {
      closeSync(fd);
    }
  });
}
