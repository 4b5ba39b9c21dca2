/**
 * The CLIP branch of SVD's image preprocessing (docs/pipeline.md §2.2, diffusers `_encode_image` with its
 * `_resize_with_antialiasing`): RGB uint8 → [0,1] → ×2−1 → Gaussian blur (sigma per axis from the
 * downscale factor, odd kernel, reflect padding, width pass then height pass) → bicubic resize
 * (A = −0.75, align_corners=True, border indices clamped) → (x+1)/2 → (x − mean)/std per channel.
 *
 * No image library reproduces this (docs/runtime.md §4), so it is done here in float32 arithmetic
 * (Math.fround after each operation, in torch's order). The blur is only evaluated where the bicubic
 * resize reads it, which keeps large inputs cheap without changing any value.
 */

const f = Math.fround;

export interface ClipPreprocessOptions {
  /** Output side (the image encoder's `image_size`, 224 for SVD). */
  size: number;
  /** Per-channel normalisation from `feature_extractor/preprocessor_config.json` (`image_mean`, `image_std`). */
  mean: readonly number[];
  std: readonly number[];
}

/**
 * RGB uint8 HWC (`width`×`height`) → CLIP `pixel_values` [1, 3, size, size] float32.
 * @example clipPreprocess(img.rgb, img.width, img.height, { size: 224, mean: [0.4815, 0.4578, 0.4082], std: [0.2686, 0.2613, 0.2758] })
 */
export function clipPreprocess(
  rgb: Uint8Array,
  width: number,
  height: number,
  options: ClipPreprocessOptions,
): Float32Array /* [1,3,S,S] */ {
  const { size, mean, std } = options;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image size must be positive whole numbers (got ${width}×${height})`);
  }
  if (rgb.length !== width * height * 3)
    throw new RangeError(`RGB buffer has ${rgb.length} bytes; ${width}×${height}×3 = ${width * height * 3} expected`);
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive whole number (got ${size})`);
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => !(s > 0)))
    throw new RangeError('mean and std must have 3 values each, std > 0');

  // pil_to_numpy (u8/255, float32) then ×2 − 1, laid out CHW.
  const plane = width * height;
  const chw = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) chw[c * plane + i] = f(f(rgb[i * 3 + c] / 255) * 2) - 1;
  }
  const resized = resizeWithAntialiasing(chw, 3, height, width, size, size);
  const out = new Float32Array(resized.length);
  const outPlane = size * size;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]);
    const s = f(std[c]);
    for (let i = c * outPlane; i < (c + 1) * outPlane; i++) out[i] = f(f(f(resized[i] + 1) / 2) - m) / s;
  }
  return out;
}

/** Blur parameters of `_resize_with_antialiasing` for a (h, w) → (outH, outW) resize, per axis [height, width]. */
export function antialiasBlur(
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
): { sigmas: [number, number]; kernelSizes: [number, number] } {
  const sigma = (factor: number) => Math.max((factor - 1) / 2, 0.001);
  const kernel = (s: number) => {
    const k = Math.trunc(Math.max(2 * 2 * s, 3));
    return k % 2 === 0 ? k + 1 : k;
  };
  const sy = sigma(height / outHeight);
  const sx = sigma(width / outWidth);
  return { sigmas: [sy, sx], kernelSizes: [kernel(sy), kernel(sx)] };
}

/** Normalised 1-D Gaussian taps at offsets i − size//2, in float32 as the sigma tensor's dtype. */
export function gaussianKernel1d(size: number, sigma: number): Float32Array {
  const s = f(sigma);
  const twoSigma2 = f(2 * f(s * s));
  const taps = new Float32Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = i - Math.floor(size / 2);
    taps[i] = f(Math.exp(f(-(x * x) / twoSigma2)));
    sum = f(sum + taps[i]);
  }
  for (let i = 0; i < size; i++) taps[i] = f(taps[i] / sum);
  return taps;
}

/**
 * diffusers `_resize_with_antialiasing` on a CHW float32 image: separable Gaussian blur (width pass
 * first, reflect padding) followed by bicubic align_corners=True interpolation to outH×outW.
 */
export function resizeWithAntialiasing(
  chw: Float32Array,
  channels: number,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
): Float32Array /* [C,outH,outW] */ {
  const { sigmas, kernelSizes } = antialiasBlur(height, width, outHeight, outWidth);
  const kx = gaussianKernel1d(kernelSizes[1], sigmas[1]);
  const ky = gaussianKernel1d(kernelSizes[0], sigmas[0]);
  const padX = (kx.length - 1) >> 1;
  const padY = (ky.length - 1) >> 1;
  const taps = { x: bicubicTaps(width, outWidth), y: bicubicTaps(height, outHeight) };

  // Only the blurred pixels that the bicubic stage reads are computed: the sampled columns, and
  // (for the width pass) every row that the height pass of a sampled row touches.
  const cols = uniqueSorted(taps.x.index);
  const rows = uniqueSorted(taps.y.index);
  const colSlot = slotsOf(cols, width);
  const rowSlot = slotsOf(rows, height);

  // Source indices of every blur tap, reflected once up front: [sampled column, tap] and [sampled row, tap].
  const colTaps = new Int32Array(cols.length * kx.length);
  cols.forEach((c, j) => {
    for (let k = 0; k < kx.length; k++) colTaps[j * kx.length + k] = reflect(c + k - padX, width);
  });
  const rowTaps = new Int32Array(rows.length * ky.length);
  rows.forEach((r, i) => {
    for (let k = 0; k < ky.length; k++) rowTaps[i * ky.length + k] = reflect(r + k - padY, height);
  });
  const rowNeeded = new Uint8Array(height);
  for (const r of rowTaps) rowNeeded[r] = 1;

  const out = new Float32Array(channels * outHeight * outWidth);
  const blurX = new Float32Array(height * cols.length); // width pass, at sampled columns
  const blurXY = new Float32Array(rows.length * cols.length); // then the height pass, at sampled rows
  const nx = kx.length;
  const ny = ky.length;
  for (let c = 0; c < channels; c++) {
    const src = chw.subarray(c * height * width, (c + 1) * height * width);
    for (let y = 0; y < height; y++) {
      if (!rowNeeded[y]) continue;
      const line = y * width;
      for (let j = 0; j < cols.length; j++) {
        let acc = 0;
        for (let k = 0, t = j * nx; k < nx; k++, t++) acc = f(acc + f(kx[k] * src[line + colTaps[t]]));
        blurX[y * cols.length + j] = acc;
      }
    }
    for (let i = 0; i < rows.length; i++) {
      for (let j = 0; j < cols.length; j++) {
        let acc = 0;
        for (let k = 0, t = i * ny; k < ny; k++, t++) acc = f(acc + f(ky[k] * blurX[rowTaps[t] * cols.length + j]));
        blurXY[i * cols.length + j] = acc;
      }
    }
    // Bicubic: for each of the 4 source rows, the weighted sum over 4 columns; then weight by the row taps.
    const dst = c * outHeight * outWidth;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        let acc = 0;
        for (let a = 0; a < 4; a++) {
          const rowBase = rowSlot[taps.y.index[oy * 4 + a]] * cols.length;
          let rowSum = 0;
          for (let b = 0; b < 4; b++) {
            const v = blurXY[rowBase + colSlot[taps.x.index[ox * 4 + b]]];
            rowSum = b === 0 ? f(v * taps.x.weight[ox * 4]) : f(rowSum + f(v * taps.x.weight[ox * 4 + b]));
          }
          acc = a === 0 ? f(rowSum * taps.y.weight[oy * 4]) : f(acc + f(rowSum * taps.y.weight[oy * 4 + a]));
        }
        out[dst + oy * outWidth + ox] = acc;
      }
    }
  }
  return out;
}

/**
 * PyTorch bicubic (A = −0.75) with align_corners=True along one axis: for each output index its 4
 * source indices (clamped to the border) and weights, flattened [out, 4].
 *
 * Precision follows what reproduces the diffusers reference best (measured on its CLIP input: 1.8e-7
 * relative vs 1.1e-6 for all-float32): the scale (in−1)/(out−1) is float32, the source position
 * scale·o is kept in float64, its fraction t is rounded to float32, and the cubic polynomials use fused
 * multiply-adds in float32 (as torch's AVX2 kernels are compiled).
 */
export function bicubicTaps(inSize: number, outSize: number): { index: Int32Array; weight: Float32Array } {
  const A = -0.75;
  const fma = (a: number, b: number, c: number) => f(a * b + c); // a·b is exact in float64 for float32 inputs
  const near = (x: number) => fma(f(fma(A + 2, x, -(A + 3)) * x), x, 1); // |x| ≤ 1
  const far = (x: number) => fma(fma(fma(A, x, -5 * A), x, 8 * A), x, -4 * A); // 1 < |x| < 2
  const scale = outSize > 1 ? f((inSize - 1) / (outSize - 1)) : 0;
  const index = new Int32Array(outSize * 4);
  const weight = new Float32Array(outSize * 4);
  for (let o = 0; o < outSize; o++) {
    const real = scale * o;
    const i0 = Math.min(Math.floor(real), inSize - 1);
    const t = f(Math.min(Math.max(real - i0, 0), 1));
    const w = [far(f(t + 1)), near(t), near(f(1 - t)), far(f(f(1 - t) + 1))];
    for (let k = 0; k < 4; k++) {
      index[o * 4 + k] = Math.min(Math.max(i0 - 1 + k, 0), inSize - 1);
      weight[o * 4 + k] = w[k];
    }
  }
  return { index, weight };
}

/** Reflect padding (edge not repeated): −1 → 1, n → n−2; repeats for offsets beyond one period. */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

function uniqueSorted(values: Int32Array): Int32Array {
  return Int32Array.from(new Set(values)).sort();
}

function slotsOf(sorted: Int32Array, n: number): Int32Array {
  const slot = new Int32Array(n).fill(-1);
  sorted.forEach((v, i) => (slot[v] = i));
  return slot;
}
