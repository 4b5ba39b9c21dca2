/** Tiny media for provider mocks: a real 2×2 PNG and fake-but-sniffable video files. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A valid 2×2 RGB PNG (red row, green row). */
export const TINY_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEUlEQVR4nGP4z8AARGDiPwMAHfAD/aAzCYkAAAAASUVORK5CYII=',
  'base64',
);

/** An ISO-BMFF `ftyp` box followed by filler: starts like an mp4, a few hundred bytes long. */
export function fakeMp4(size = 600, fill = 0x5a): Buffer {
  const ftyp = Buffer.from([0, 0, 0, 0x18, ...Buffer.from('ftypmp42'), 0, 0, 0, 0, ...Buffer.from('mp42isom')]);
  return Buffer.concat([ftyp, Buffer.alloc(Math.max(0, size - ftyp.length), fill)]);
}

export const FAKE_MP4 = fakeMp4();

/** A fresh temp directory (tests remove it). */
export function tempDir(prefix = 'svd-backends-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes TINY_PNG into `dir` and returns its path. */
export function writeTinyPng(dir: string, name = 'input.png'): string {
  const p = join(dir, name);
  writeFileSync(p, TINY_PNG);
  return p;
}
