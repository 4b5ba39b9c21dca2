/**
 * Motion mask, chained clips and loops on the embedded tiny model (docs/motion-controls.md). The tiny model
 * has random weights, so its "motion" is large frame-to-frame change: a good background for showing that
 * the still region does not change and that a loop closes.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, InvalidRequestError } from '../src/errors.js';
import { loopJump } from '../src/motion/clips.js';
import { createPipeline, type SvdPipeline } from '../src/pipeline/pipeline.js';
import type { ProgressEvent } from '../src/request/types.js';
import { probeVideo } from '../src/video/index.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';
import { buildTinyModel } from './helpers/tinyModel.js';

const W = 128,
  H = 64;
let pipeline: SvdPipeline;
let cacheDir: string;
let out: string;
const base = { image: REFERENCE_IMAGE, frames: 8, steps: 4, seed: 7 } as const;

async function maskPng(
  width: number,
  height: number,
  value: (x: number, y: number) => number,
): Promise<Uint8Array<ArrayBuffer>> {
  const raw = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw[y * width + x] = value(x, y);
  return Uint8Array.from(
    await sharp(raw, { raw: { width, height, channels: 1 } })
      .png()
      .toBuffer(),
  );
}

/** Mean |frame − first frame| over frames 1.. and the pixel columns [x0, x1), in 0..255 units. */
function changeFromFirst(frames: Uint8Array[], x0: number, x1: number): number {
  let sum = 0,
    n = 0;
  for (let f = 1; f < frames.length; f++) {
    for (let y = 0; y < H; y++) {
      for (let i = (y * W + x0) * 3; i < (y * W + x1) * 3; i++) sum += Math.abs(frames[f][i] - frames[0][i]);
    }
    n += H * (x1 - x0) * 3;
  }
  return sum / n;
}

function maxDiffFromFirst(frames: Uint8Array[]): number {
  let max = 0;
  for (const f of frames) for (let i = 0; i < f.length; i++) max = Math.max(max, Math.abs(f[i] - frames[0][i]));
  return max;
}

beforeAll(async () => {
  const built = await buildTinyModel();
  cacheDir = built.cacheDir;
  out = mkdtempSync(join(tmpdir(), 'svd-motion-'));
  pipeline = await createPipeline({ modelDir: built.modelDir, device: 'cpu', log: () => {} });
});
afterAll(async () => {
  await pipeline?.close();
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

describe('motion mask', () => {
  it('all white: every latent frame is the image latent, every frame equals the first (tolerance 0)', async () => {
    const latents: Record<string, Float32Array> = {};
    const r = await pipeline.generate(
      { ...base, mask: await maskPng(16, 8, () => 255) },
      {
        skipVideo: true,
        dump: async (name, data) => {
          latents[name] = data as Float32Array;
        },
      },
    );
    expect(r.metadata.maskCoverage).toBe(1);
    const last = latents[`latents_${base.steps - 1}`];
    const per = last.length / base.frames;
    for (let f = 1; f < base.frames; f++) expect(last.subarray(f * per, (f + 1) * per)).toEqual(last.subarray(0, per));
    expect(maxDiffFromFirst(r.frames)).toBe(0);
    // without the mask the same seed changes the frames a lot (mean change measured ≈ 50 levels)
    const free = await pipeline.generate(base, { skipVideo: true });
    expect(changeFromFirst(free.frames, 0, W)).toBeGreaterThan(20);
  });

  it('half white: still half changes far less than moving half (ratio ≈ 49 printed, > 25 asserted)', async () => {
    const r = await pipeline.generate(
      { ...base, mask: await maskPng(W, H, (x) => (x < W / 2 ? 255 : 0)) },
      { skipVideo: true },
    );
    const still = changeFromFirst(r.frames, 0, W / 2);
    const moving = changeFromFirst(r.frames, W / 2, W);
    console.log(
      `half mask, mean change from frame 0 (levels): still half ${still.toFixed(3)}, ` +
        `moving half ${moving.toFixed(2)}, ratio ${(moving / still).toFixed(0)}`,
    );
    expect(moving).toBeGreaterThan(20);
    expect(moving / still).toBeGreaterThan(25);
  });

  it('all black changes nothing: bit-identical to no mask (blend and composite are no-ops at 0)', async () => {
    const plain = await pipeline.generate(base, { skipVideo: true });
    const black = await pipeline.generate({ ...base, mask: await maskPng(8, 8, () => 0) }, { skipVideo: true });
    expect(black.frames.map((f) => Buffer.from(f).toString('base64'))).toEqual(
      plain.frames.map((f) => Buffer.from(f).toString('base64')),
    );
  });

  it('takes a mask of another size and aspect (resized, not refused), as a path, base64 or bytes', async () => {
    const path = join(out, 'odd-mask.png');
    const png = await maskPng(30, 7, (x) => (x < 15 ? 255 : 0));
    writeFileSync(path, png);
    const byPath = await pipeline.generate({ ...base, steps: 2, mask: path }, { skipVideo: true });
    const byBase64 = await pipeline.generate(
      { ...base, steps: 2, mask: Buffer.from(png).toString('base64') },
      { skipVideo: true },
    );
    expect(byPath.metadata.maskCoverage).toBeCloseTo(0.5, 1);
    expect(Buffer.compare(Buffer.from(byPath.frames[5]), Buffer.from(byBase64.frames[5]))).toBe(0);
  });

  it('names the mask field for a missing or broken mask image', async () => {
    for (const mask of [join(out, 'no-such-mask.png'), new Uint8Array([1, 2, 3, 4, 5])]) {
      const err = await pipeline.generate({ ...base, steps: 1, mask }, { skipVideo: true }).catch((e) => e);
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect(err.issues[0].field).toBe('mask');
      expect(err.message).toMatch(/^mask: mask image /);
    }
  });
});

describe('chained clips', () => {
  it('chains clips into F + (N − 1)(F − K) frames, clip 0 = the plain video, seeds and progress over all', async () => {
    const events: ProgressEvent[] = [];
    const output = join(out, 'chain.mp4');
    const r = await pipeline.generate(
      { ...base, frames: 6, steps: 3, clips: 3, overlap: 2, output },
      { onProgress: (e) => events.push(e) },
    );
    expect(r.frames).toHaveLength(14);
    expect(r.metadata).toMatchObject({
      frames: 14,
      clips: 3,
      overlap: 2,
      framesPerClip: 6,
      clipSeeds: [7, 2654435776, 1013904249],
    });
    expect(await probeVideo(output)).toMatchObject({ frames: 14, width: W, height: H });
    const plain = await pipeline.generate({ ...base, frames: 6, steps: 3 }, { skipVideo: true });
    for (let f = 0; f < 4; f++) expect(Buffer.compare(Buffer.from(plain.frames[f]), Buffer.from(r.frames[f]))).toBe(0);
    const steps = events.filter((e) => e.stage === 'denoise' && e.step! > 0);
    expect(steps.map((e) => `${e.clip}/${e.totalClips}:${e.step}`)).toEqual([
      '1/3:1',
      '1/3:2',
      '1/3:3',
      '2/3:1',
      '2/3:2',
      '2/3:3',
      '3/3:1',
      '3/3:2',
      '3/3:3',
    ]);
    const fractions = steps.map((e) => e.fraction!);
    expect(fractions[fractions.length - 1]).toBe(1);
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThan(fractions[i - 1]);
    expect(r.stepTimings).toHaveLength(9);
  });

  it('a duration picks the clip count, trims to round(duration · fps) frames, keepFrames: false none', async () => {
    const output = join(out, 'duration.mp4');
    const r = await pipeline.generate(
      { ...base, frames: 6, steps: 2, duration: 2, fps: 8, output },
      { keepFrames: false },
    );
    expect(r.metadata).toMatchObject({ frames: 16, clips: 5, overlap: 3 }); // 6 + 4·3 = 18 ≥ 16
    expect(r.frames).toEqual([]);
    expect(await probeVideo(output)).toMatchObject({ frames: 16, fps: 8 });
  });

  it('cancels between steps of a later clip and leaves no video', async () => {
    const controller = new AbortController();
    const output = join(out, 'cancelled.mp4');
    const run = pipeline.generate(
      { ...base, frames: 6, steps: 3, clips: 3, overlap: 2, output },
      {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.stage === 'denoise' && e.clip === 2 && e.step === 1) controller.abort();
        },
      },
    );
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(out).filter((n) => n.includes('cancelled'))).toEqual([]);
  });

  it('refuses impossible chains naming the field', async () => {
    const err = await pipeline.generate({ ...base, clips: 2, overlap: 8 }, { skipVideo: true }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues[0].field).toBe('overlap');
    const both = await pipeline.generate({ ...base, clips: 2, duration: 3 }, { skipVideo: true }).catch((e) => e);
    expect(both.issues[0].field).toBe('duration');
  });
});

describe('loop', () => {
  it('reduces the jump from the last frame to the first, one clip and chained (measured numbers printed)', async () => {
    for (const chain of [{}, { frames: 6, clips: 3, overlap: 2 }]) {
      const plain = loopJump((await pipeline.generate({ ...base, frames: 12, ...chain }, { skipVideo: true })).frames);
      const looped = loopJump(
        (await pipeline.generate({ ...base, frames: 12, ...chain, loop: true }, { skipVideo: true })).frames,
      );
      const label = 'clips' in chain ? '3 clips of 6' : '1 clip of 12';
      console.log(
        `loop jump, ${label} (levels): without ${plain.jump.toFixed(1)} ` +
          `(ratio ${plain.ratio.toFixed(2)} of the mean step), ` +
          `with ${looped.jump.toFixed(1)} (ratio ${looped.ratio.toFixed(2)})`,
      );
      expect(looped.jump).toBeLessThan(0.8 * plain.jump);
      expect(looped.ratio).toBeLessThan(plain.ratio);
      expect(looped.ratio).toBeLessThan(1);
    }
  });
});
