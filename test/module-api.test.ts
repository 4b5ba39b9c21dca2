/** The module API as an embedding program uses it. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidRequestError, createLocalBackend, generateVideo, probeVideo } from '../src/index.js';

const out = mkdtempSync(join(tmpdir(), 'svd-module-'));
process.env.SVD_CACHE_DIR = join(out, 'cache');
afterAll(() => rmSync(out, { recursive: true, force: true }));
const image = join(import.meta.dirname, '..', 'examples', 'input.png');

describe('module API', () => {
  it('generateVideo makes a video from image bytes and returns frames, file, seed and timings', async () => {
    const { readFileSync } = await import('node:fs');
    const r = await generateVideo(
      { image: readFileSync(image), frames: 3, steps: 2, seed: 9, output: join(out, 'm.webm'), format: 'webm' },
      { log: () => {} },
    );
    expect(r.seed).toBe(9);
    expect(r.frames).toHaveLength(3);
    expect(r.frames[0]).toHaveLength(128 * 64 * 3);
    expect(await probeVideo(r.outputPath)).toMatchObject({ frames: 3, codec: 'vp9' });
    expect(r.timings.total).toBeGreaterThan(0);
    // the first call loaded the model: its total covers the load and every stage (they run one after the other)
    const { load, preprocess, encode, denoise, decode, video, total } = r.timings;
    expect(load).toBeGreaterThan(0);
    expect(total).toBeGreaterThanOrEqual(load + preprocess + encode + denoise + decode + video);
  });

  it('refuses a bad request with typed field errors before any model work', async () => {
    const err = await generateVideo({ image: '', steps: 500 } as never).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues.map((i: { field: string }) => i.field).sort()).toEqual(['image', 'steps']);
  });

  it('the local backend keeps the model loaded between calls', async () => {
    const backend = createLocalBackend({ log: () => {} });
    try {
      const p1 = await backend.pipeline();
      const a = await backend.generate({ image, frames: 2, steps: 1, output: join(out, 'a.mp4') });
      const p2 = await backend.pipeline();
      expect(p2).toBe(p1);
      expect(a.backend).toBe('local');
      expect(existsSync(a.outputPath)).toBe(true);
    } finally {
      await backend.close();
    }
  });
});
