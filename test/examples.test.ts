/** The `examples/` scripts run as a user runs them (`npx tsx examples/<name>.ts out.mp4`) and write their videos. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeVideo } from '../src/video/index.js';
import { buildTinyModel } from './helpers/tinyModel.js';

const ROOT = join(import.meta.dirname, '..');
let cacheDir: string;
let out: string;

beforeAll(async () => {
  cacheDir = (await buildTinyModel()).cacheDir; // built once here, so the scripts only load it
  out = mkdtempSync(join(tmpdir(), 'svd-examples-'));
});
afterAll(() => {
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

function run(script: string, output: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', script), output], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, SVD_CACHE_DIR: cacheDir },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('examples/', () => {
  it.each([
    ['motion-mask.ts', 8, /still fraction 0\.5/],
    ['long-video.ts', 20, /20 frames from 3 clips, seeds \[1,/],
    ['loop.ts', 12, /with loop: +jump/],
  ])('%s writes its demo video', async (script, frames, says) => {
    const output = join(out, script.replace('.ts', '.mp4'));
    const r = run(script, output);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(says);
    expect(await probeVideo(output)).toMatchObject({ frames, width: 128, height: 64 });
  });
});
