/**
 * bin/svd.js in a clone runs the TypeScript sources, never a (possibly stale) dist/; the published package,
 * which has no sources, runs dist/. Checked on a copy of bin/svd.js in a scratch package whose src/ and dist/
 * entry points say which one ran.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
let dir: string;

function runBin(env: Record<string, string> = {}): string {
  return execFileSync(process.execPath, [join(dir, 'bin', 'svd.js')], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'svd-bin-'));
  for (const sub of ['bin', 'src/cli', 'dist/cli']) mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(join(ROOT, 'bin', 'svd.js'), join(dir, 'bin', 'svd.js'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const entry = (which: string) =>
    `export async function main(): Promise<number> { console.log('${which}'); return 0; }\n`;
  writeFileSync(join(dir, 'src', 'cli', 'main.ts'), entry('sources'));
  writeFileSync(join(dir, 'dist', 'cli', 'main.js'), entry('dist').replace(': Promise<number>', ''));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bin/svd.js', () => {
  it('runs the sources in a clone even when dist/ exists', () => {
    expect(runBin().trim()).toBe('sources');
  });

  it('runs dist/ when asked (SVD_USE_DIST=1) and when there are no sources (the published package)', () => {
    expect(runBin({ SVD_USE_DIST: '1' }).trim()).toBe('dist');
    rmSync(join(dir, 'src'), { recursive: true });
    expect(runBin().trim()).toBe('dist');
  });
});
