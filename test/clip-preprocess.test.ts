import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { antialiasBlur, bicubicTaps, clipPreprocess, gaussianKernel1d } from '../src/encoders/clipPreprocess.js';
import { maxAbsDiff, relativeError } from '../src/tensor/compare.js';
import { REFERENCE_DIR, REFERENCE_IMAGE, ref } from './helpers/reference.js';

const pre = JSON.parse(
  readFileSync(join(REFERENCE_DIR, 'tiny-svd/feature_extractor/preprocessor_config.json'), 'utf8'),
);
const OPTS = { size: 224, mean: pre.image_mean as number[], std: pre.image_std as number[] };

async function decode(path: string) {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/** A deterministic synthetic RGB image with edges, gradients and texture. */
function synthetic(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 255) / (width - 1);
      rgb[i + 1] = ((x >> 4) + (y >> 4)) % 2 ? 230 : 20;
      rgb[i + 2] = 128 + 127 * Math.sin((x * x + y * y) / 3000);
    }
  }
  return rgb;
}

describe('clipPreprocess', () => {
  it('matches diffusers on the reference image (64×128, an upscale to 224)', async () => {
    const img = await decode(REFERENCE_IMAGE);
    expect([img.width, img.height]).toEqual([128, 64]);
    const want = ref('clip_pixel_values');
    const got = clipPreprocess(img.rgb, img.width, img.height, OPTS);
    expect(want.shape).toEqual([1, 3, 224, 224]);
    const rel = relativeError(got, want.data);
    const max = maxAbsDiff(got, want.data);
    expect(rel).toBeLessThan(1e-6);
    expect(max).toBeLessThan(1e-5);
  });

  it('the blur parameters of the docs/pipeline.md §2.2 worked example: 576×1024 → sigmas (0.78571, 1.78571), kernels (3, 7)', () => {
    const { sigmas, kernelSizes } = antialiasBlur(576, 1024, 224, 224);
    expect(sigmas[0]).toBeCloseTo(0.78571, 5);
    expect(sigmas[1]).toBeCloseTo(1.78571, 5);
    expect(kernelSizes).toEqual([3, 7]);
    // upscaling: sigma 0.001, the minimal 3-tap kernel, which is effectively [0, 1, 0]
    const up = antialiasBlur(64, 128, 224, 224);
    expect(up.sigmas).toEqual([0.001, 0.001]);
    expect(up.kernelSizes).toEqual([3, 3]);
    expect(Array.from(gaussianKernel1d(3, 0.001))).toEqual([0, 1, 0]);
    // an even 4σ is bumped to odd: factor 5 → σ 2 → 8 → 9
    expect(antialiasBlur(1120, 224, 224, 224).kernelSizes).toEqual([9, 3]);
  });

  it('Gaussian taps are symmetric, normalised and peak in the middle', () => {
    const k = gaussianKernel1d(7, 1.7857142857142858);
    expect(k.length).toBe(7);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    for (let i = 0; i < 3; i++) expect(k[i]).toBeCloseTo(k[6 - i], 7);
    expect(k[3]).toBeGreaterThan(k[2]);
    expect(k[1] / k[3]).toBeCloseTo(Math.exp(-4 / (2 * 1.7857142857142858 ** 2)), 6);
  });

  it('bicubic align_corners taps: Keys cubic (A = −0.75) at o·fp32((in−1)/(out−1)), clamped at the border, weights sum to 1', () => {
    const { index, weight } = bicubicTaps(1024, 224);
    // output 0 reads source 0 with weight 1 (t = 0: weights [0, 1, 0, 0], clamped index −1 → 0)
    expect(Array.from(index.subarray(0, 4))).toEqual([0, 0, 1, 2]);
    expect(Array.from(weight.subarray(0, 4))).toEqual([0, 1, 0, 0]);
    const keys = (x: number) => {
      const a = -0.75;
      const ax = Math.abs(x);
      return ax <= 1
        ? (a + 2) * ax ** 3 - (a + 3) * ax ** 2 + 1
        : ax < 2
          ? a * ax ** 3 - 5 * a * ax ** 2 + 8 * a * ax - 4 * a
          : 0;
    };
    for (let o = 0; o < 224; o++) {
      const pos = Math.fround(1023 / 223) * o; // torch computes the scale in float32
      const i0 = Math.min(Math.floor(pos), 1023);
      let sum = 0;
      for (let k = 0; k < 4; k++) {
        const src = i0 - 1 + k;
        expect(index[o * 4 + k]).toBe(Math.min(Math.max(src, 0), 1023));
        expect(Math.abs(weight[o * 4 + k] - keys(pos - src))).toBeLessThan(1e-6);
        sum += weight[o * 4 + k];
      }
      expect(Math.abs(sum - 1)).toBeLessThan(2e-6);
    }
  });

  it('a large downscale (576×1024 synthetic) gives finite values in the normalised range, and a flat image maps to its colour', () => {
    const w = 1024;
    const h = 576;
    const out = clipPreprocess(synthetic(w, h), w, h, OPTS);
    expect(out.length).toBe(3 * 224 * 224);
    const lo = Math.min(...OPTS.mean.map((m, c) => (0 - m) / OPTS.std[c]));
    const hi = Math.max(...OPTS.mean.map((m, c) => (1 - m) / OPTS.std[c]));
    let ok = true;
    // Bicubic overshoots slightly past [0,1]; allow 10%.
    for (const v of out) if (!Number.isFinite(v) || v < lo - 0.5 || v > hi + 0.5) ok = false;
    expect(ok).toBe(true);
    // A flat image stays flat: blur and bicubic both preserve constants.
    const flat = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) flat.set([200, 100, 50], i * 3);
    const f = clipPreprocess(flat, w, h, OPTS);
    [200, 100, 50].forEach((v, c) => {
      const want = (v / 255 - OPTS.mean[c]) / OPTS.std[c];
      expect(
        maxAbsDiff(f.subarray(c * 224 * 224, (c + 1) * 224 * 224), new Float32Array(224 * 224).fill(want)),
      ).toBeLessThan(1e-5);
    });
  });

  it('evaluating the blur only where bicubic reads it equals blurring everything (brute-force check)', () => {
    // Independent straightforward implementation of the same definition, on a small odd-sized downscale.
    const w = 97;
    const h = 61;
    const size = 20;
    const rgb = synthetic(w, h);
    const got = clipPreprocess(rgb, w, h, { ...OPTS, size });
    const { sigmas, kernelSizes } = antialiasBlur(h, w, size, size);
    const kx = gaussianKernel1d(kernelSizes[1], sigmas[1]);
    const ky = gaussianKernel1d(kernelSizes[0], sigmas[0]);
    const refl = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
    const tx = bicubicTaps(w, size);
    const ty = bicubicTaps(h, size);
    const want = new Float32Array(3 * size * size);
    for (let c = 0; c < 3; c++) {
      const x0 = Float64Array.from({ length: w * h }, (_, i) => (rgb[i * 3 + c] / 255) * 2 - 1);
      const bx = new Float64Array(w * h);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (let k = 0; k < kx.length; k++) s += kx[k] * x0[y * w + refl(x + k - (kx.length >> 1), w)];
          bx[y * w + x] = s;
        }
      const bxy = new Float64Array(w * h);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (let k = 0; k < ky.length; k++) s += ky[k] * bx[refl(y + k - (ky.length >> 1), h) * w + x];
          bxy[y * w + x] = s;
        }
      for (let oy = 0; oy < size; oy++)
        for (let ox = 0; ox < size; ox++) {
          let s = 0;
          for (let a = 0; a < 4; a++)
            for (let b = 0; b < 4; b++) {
              s += ty.weight[oy * 4 + a] * tx.weight[ox * 4 + b] * bxy[ty.index[oy * 4 + a] * w + tx.index[ox * 4 + b]];
            }
          want[c * size * size + oy * size + ox] = ((s + 1) / 2 - OPTS.mean[c]) / OPTS.std[c];
        }
    }
    expect(relativeError(got, want)).toBeLessThan(1e-6);
  });

  it('refuses a buffer that does not match the size', () => {
    expect(() => clipPreprocess(new Uint8Array(10), 2, 2, OPTS)).toThrow(/2×2×3 = 12 expected/);
    expect(() => clipPreprocess(new Uint8Array(12), 2, 2, { ...OPTS, std: [1, 0, 1] })).toThrow(/std > 0/);
  });

  it('a 1×1 image works (reflect padding degenerates to the pixel itself)', () => {
    const out = clipPreprocess(Uint8Array.of(255, 0, 128), 1, 1, OPTS);
    expect(out[0]).toBeCloseTo((1 - OPTS.mean[0]) / OPTS.std[0], 5);
    expect(out[224 * 224 * 2 + 5000]).toBeCloseTo((128 / 255 - OPTS.mean[2]) / OPTS.std[2], 5);
  });
});
