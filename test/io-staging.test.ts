/** Directories written whole or not at all (io/stagingDir.ts): the model build, the ONNX import and the checkpoint writer use it. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeBytesAtomically } from '../src/io/atomicFile.js';
import { writeDirectoryAtomically } from '../src/io/stagingDir.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'svd-staging-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeDirectoryAtomically', () => {
  it('replaces an existing directory with the new content and leaves no staging directory', () => {
    const target = join(dir, 'model');
    mkdirSync(target);
    writeFileSync(join(target, 'old.onnx'), 'old');
    const staged = writeDirectoryAtomically(target, (staging) => {
      expect(existsSync(join(target, 'old.onnx'))).toBe(true); // the old content stays until the swap
      writeFileSync(join(staging, 'model.json'), '{}');
      return staging;
    });
    expect(readdirSync(target)).toEqual(['model.json']);
    expect(existsSync(staged)).toBe(false);
    expect(readdirSync(dir)).toEqual(['model']);
  });

  it('keeps the target as it was and removes the staging directory when filling fails', () => {
    const target = join(dir, 'model');
    mkdirSync(target);
    writeFileSync(join(target, 'model.json'), 'kept');
    expect(() =>
      writeDirectoryAtomically(target, (staging) => {
        writeFileSync(join(staging, 'half.onnx'), 'half');
        throw new Error('build failed');
      }),
    ).toThrow('build failed');
    expect(readFileSync(join(target, 'model.json'), 'utf8')).toBe('kept');
    expect(readdirSync(dir)).toEqual(['model']);
  });

  it('creates missing parent directories', () => {
    const target = join(dir, 'a', 'b', 'model');
    writeDirectoryAtomically(target, (staging) => writeFileSync(join(staging, 'x'), '1'));
    expect(readFileSync(join(target, 'x'), 'utf8')).toBe('1');
  });
});

describe('writeBytesAtomically', () => {
  it('writes text or bytes whole and leaves no partial file beside it; the directory must exist', () => {
    mkdirSync(join(dir, 'refs'));
    const file = join(dir, 'refs', 'main');
    writeBytesAtomically(file, 'abc123');
    writeBytesAtomically(join(dir, 'b.bin'), new Uint8Array([1, 2, 3]));
    expect(readFileSync(file, 'utf8')).toBe('abc123');
    expect([...readFileSync(join(dir, 'b.bin'))]).toEqual([1, 2, 3]);
    expect(readdirSync(join(dir, 'refs'))).toEqual(['main']);
    expect(() => writeBytesAtomically(join(dir, 'missing', 'x'), 'x')).toThrow(/ENOENT/);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });
});
