/** The motion controls' pure math: mask resampling, feathering, latent blends, clip plans, cross-fade, loop jump. */
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/errors.js';
import {
  compositeStill,
  featherMask,
  maskCrop,
  maskLuminance,
  maskToGrid,
  motionMaskGrids,
  resampleArea,
} from '../src/motion/mask.js';
import { blendStillRegion, loopFrameCount, loopWeights, steerTowardsFrame } from '../src/motion/blend.js';
import {
  ClipJoiner,
  chainedFrames,
  clipSeed,
  conditioningFrameIndex,
  crossFade,
  loopJump,
  planClips,
} from '../src/motion/clips.js';

const rgb = (w: number, h: number, value: (x: number, y: number) => number) => {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.fill(value(x, y), (y * w + x) * 3, (y * w + x) * 3 + 3);
  return out;
};

describe('motion mask on the latent grid', () => {
  it('reads white as 1 (still) and black as 0 (moves)', () => {
    expect(
      [...maskLuminance(Uint8Array.of(255, 255, 255, 0, 0, 0, 255, 0, 0), 3, 1)].map((v) => +v.toFixed(3)),
    ).toEqual([1, 0, 0.299]);
  });

  it('area-averages when shrinking and covers fractional pixels', () => {
    const src = Float32Array.from([0, 1, 1, 1]); // 4×1
    expect([...resampleArea(src, 4, 1, { left: 0, top: 0, width: 4, height: 1 }, 2, 1)]).toEqual([0.5, 1]);
    expect(
      [...resampleArea(src, 4, 1, { left: 0, top: 0, width: 4, height: 1 }, 3, 1)].map((v) => +v.toFixed(4)),
    ).toEqual([0.25, 1, 1]);
    // enlarging: each cell takes the pixel it lies in
    expect([...resampleArea(Float32Array.from([0, 1]), 2, 1, { left: 0, top: 0, width: 2, height: 1 }, 4, 1)]).toEqual([
      0, 0, 1, 1,
    ]);
  });

  it('feathers a hard edge into a ramp, keeps flat regions and the range', () => {
    const hard = Float32Array.from({ length: 16 }, (_, i) => (i % 8 < 4 ? 1 : 0)); // 8×2, left half still
    const soft = featherMask(hard, 8, 2, 1);
    const row = [...soft.slice(0, 8)];
    expect(row[0]).toBeGreaterThan(0.99);
    expect(row[7]).toBeLessThan(0.01);
    for (let x = 1; x < 8; x++) expect(row[x]).toBeLessThanOrEqual(row[x - 1] + 1e-7);
    expect(row[3]).toBeGreaterThan(0.5);
    expect(row[4]).toBeLessThan(0.5);
    expect([...featherMask(new Float32Array(12).fill(1), 4, 3, 1)].every((v) => Math.abs(v - 1) < 1e-6)).toBe(true);
  });

  it('crops the mask like the image; a mask of another size is stretched over the image', () => {
    const crop = maskCrop(
      { width: 200, height: 100 },
      { width: 200, height: 100 },
      { width: 64, height: 64, resize: 'crop_to_16_9' },
    );
    expect(crop).toEqual({ left: 50, top: 0, width: 100, height: 100 });
    const half = maskCrop(
      { width: 100, height: 50 },
      { width: 200, height: 100 },
      { width: 64, height: 64, resize: 'crop_to_16_9' },
    );
    expect(half).toEqual({ left: 25, top: 0, width: 50, height: 50 });
    expect(
      maskCrop({ width: 7, height: 3 }, { width: 200, height: 100 }, { width: 128, height: 64, resize: 'stretch' }),
    ).toEqual({ left: 0, top: 0, width: 7, height: 3 });
  });

  it('brings a left-white mask of any size onto a 16×8 grid with a feathered seam', () => {
    const mask = { rgb: rgb(30, 10, (x) => (x < 15 ? 255 : 0)), width: 30, height: 10 };
    const m = maskToGrid(mask, { width: 256, height: 128 }, { width: 128, height: 64, resize: 'stretch' }, 16, 8);
    expect(m.weights).toHaveLength(128);
    expect(m.coverage).toBeCloseTo(0.5, 2);
    expect(m.weights[0]).toBeGreaterThan(0.99);
    expect(m.weights[15]).toBeLessThan(0.01);
    expect(m.weights[7]).toBeGreaterThan(0.5);
    expect(m.weights[7]).toBeLessThan(0.95);
    const grids = motionMaskGrids(
      mask,
      { width: 256, height: 128 },
      { width: 128, height: 64, resize: 'stretch' },
      16,
      8,
      8,
    );
    expect(grids.pixels).toMatchObject({ width: 128, height: 64 });
    expect(grids.pixels.weights[64 * 128 - 1]).toBeLessThan(0.01);
    // the pixel mask is the latent one at 8× the resolution: the same ramp, 8 pixels per cell
    expect(grids.pixels.weights[7 * 8 + 4]).toBeCloseTo(grids.latent.weights[7], 1);
  });

  it('composites the still image into decoded frames by the pixel mask', () => {
    const frames = [Uint8Array.of(0, 0, 0, 100, 100, 100)];
    compositeStill(frames, Uint8Array.of(200, 200, 200, 50, 50, 50), Float32Array.of(1, 0.5));
    expect([...frames[0]]).toEqual([200, 200, 200, 75, 75, 75]);
  });
});

describe('latent blends', () => {
  const layout = { frames: 2, channels: 1, plane: 3 };

  it('still region: full weight becomes the noised target in every frame, zero weight is untouched', () => {
    const latents = Float32Array.from([1, 2, 3, 4, 5, 6]);
    blendStillRegion(
      latents,
      Float32Array.of(10, 10, 10),
      Float32Array.of(1, -1, 0),
      0.5,
      Float32Array.of(1, 0.5, 0),
      layout,
    );
    expect([...latents]).toEqual([10.5, (2 + 9.5) / 2, 3, 10.5, (5 + 9.5) / 2, 6]);
    const last = Float32Array.from([1, 2, 3, 4, 5, 6]);
    blendStillRegion(last, Float32Array.of(7, 8, 9), Float32Array.of(1, 1, 1), 0, Float32Array.of(1, 1, 1), layout);
    expect([...last]).toEqual([7, 8, 9, 7, 8, 9]);
  });

  it('loop weights rise over the last frames and stop short of 1', () => {
    expect([...loopWeights(6, 2)].map((v) => +v.toFixed(4))).toEqual([0, 0, 0, 0, 0.3333, 0.6667]);
    expect([...loopWeights(2, 5)]).toEqual([0, 0.5]);
    expect(loopFrameCount(14)).toBe(5);
    expect(loopFrameCount(4)).toBe(1);
    expect(loopFrameCount(1)).toBe(0);
  });

  it('loop steer moves the clean estimate and keeps the noise', () => {
    const denoised = Float32Array.from([0, 0, 0, 4, 4, 4]);
    const latents = Float32Array.from([1, 1, 1, 5, 5, 5]); // noise part: 1
    steerTowardsFrame(latents, denoised, Float32Array.of(8, 8, 8), Float32Array.of(0, 0.5), layout);
    expect([...latents]).toEqual([1, 1, 1, 7, 7, 7]); // D 4 → 6, noise 1 kept
  });
});

describe('chained clips', () => {
  it('plans clips from a count or a duration', () => {
    expect(planClips({ frames: 14, fps: 7 })).toEqual({ clips: 1, overlap: 0, framesPerClip: 14, totalFrames: 14 });
    expect(planClips({ frames: 14, fps: 7, clips: 3 })).toEqual({
      clips: 3,
      overlap: 3,
      framesPerClip: 14,
      totalFrames: 36,
    });
    expect(planClips({ frames: 14, fps: 7, clips: 2, overlap: 1 }).totalFrames).toBe(27);
    expect(planClips({ frames: 14, fps: 7, duration: 5 })).toEqual({
      clips: 3,
      overlap: 3,
      framesPerClip: 14,
      totalFrames: 35,
    });
    expect(planClips({ frames: 14, fps: 7, duration: 1 })).toEqual({
      clips: 1,
      overlap: 0,
      framesPerClip: 14,
      totalFrames: 7,
    });
    expect(planClips({ frames: 4, fps: 7, clips: 2 }).overlap).toBe(3);
    expect(chainedFrames(25, 4, 3)).toBe(91);
  });

  it('refuses plans that cannot work, naming the field', () => {
    const fieldOf = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidRequestError);
        return (err as InvalidRequestError).issues[0].field;
      }
      return undefined;
    };
    expect(fieldOf(() => planClips({ frames: 4, fps: 7, clips: 2, overlap: 4 }))).toBe('overlap');
    expect(fieldOf(() => planClips({ frames: 1, fps: 7, clips: 2 }))).toBe('clips');
    expect(fieldOf(() => planClips({ frames: 4, fps: 60, duration: 600 }))).toBe('duration');
  });

  it('derives distinct per-clip seeds, clip 0 keeping the request seed', () => {
    expect(clipSeed(42, 0)).toBe(42);
    const seeds = [0, 1, 2, 3].map((k) => clipSeed(2 ** 32 - 1, k));
    expect(new Set(seeds).size).toBe(4);
    expect(seeds.every((s) => Number.isInteger(s) && s >= 0 && s < 2 ** 32)).toBe(true);
    expect(conditioningFrameIndex(14, 3)).toBe(11);
    expect(conditioningFrameIndex(14, 1)).toBe(13);
  });

  it('cross-fades K frames linearly from the old clip to the new one', () => {
    const faded = crossFade([Uint8Array.of(0), Uint8Array.of(0)], [Uint8Array.of(90), Uint8Array.of(90)]);
    expect(faded.map((f) => f[0])).toEqual([30, 60]);
  });

  it('joins clips clip by clip into F + (N − 1)(F − K) frames and trims to the duration', () => {
    const clip = (v: number) => Array.from({ length: 5 }, (_, i) => Uint8Array.of(v + i));
    const j = new ClipJoiner(2, chainedFrames(5, 3, 2));
    const out = [...j.push(clip(0)), ...j.push(clip(100)), ...j.push(clip(200)), ...j.finish()].map((f) => f[0]);
    expect(out).toHaveLength(11);
    expect(out.slice(0, 3)).toEqual([0, 1, 2]);
    expect(out[3]).toBe(Math.round((2 / 3) * 3 + (1 / 3) * 100));
    expect(out.slice(-2)).toEqual([203, 204]);
    const trimmed = new ClipJoiner(2, 7);
    expect([...trimmed.push(clip(0)), ...trimmed.push(clip(100)), ...trimmed.finish()]).toHaveLength(7);
  });

  it('measures a loop jump against the mean step between frames', () => {
    const ramp = [0, 10, 20, 30].map((v) => Uint8Array.of(v, v));
    expect(loopJump(ramp)).toEqual({ jump: 30, meanStep: 10, ratio: 3 });
    const closed = [0, 10, 20, 10].map((v) => Uint8Array.of(v, v));
    expect(loopJump(closed).ratio).toBe(1);
  });
});
