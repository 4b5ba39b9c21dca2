/**
 * The motion mask (fal's `mask_image_url` convention: white stays still, black moves) brought onto the
 * latent grid: luminance → the same crop as the conditioning image → area-averaged down to h×w latent
 * cells → feathered with a small Gaussian so the still region fades out over a few cells instead of
 * ending in a seam. See docs/motion-controls.md for how the weights are used during denoising.
 *
 * Everything here but `loadMotionMask` is a pure function on Float32Array.
 */
import { ImageLoadError, InvalidRequestError } from '../errors.js';
import { loadImage, targetSize, type CropBox, type ResizeOptions, type RgbImage } from '../image/index.js';

/** Standard deviation of the feathering Gaussian, in latent cells (one cell is 8×8 pixels in SVD). */
export const MASK_FEATHER_CELLS = 1;

/** Per-pixel stillness in [0, 1]: Rec. 601 luma / 255 (white = 1 = still). */
export function maskLuminance(rgb: Uint8Array, width: number, height: number): Float32Array /* [H·W] */ {
  const n = width * height;
  if (rgb.length !== n * 3) throw new RangeError(`mask has ${rgb.length} bytes; ${width}×${height}×3 expected`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]) / 255;
  return out;
}

/**
 * Area-average resampling of the `box` of a `width`×`height` single-channel image onto an `outW`×`outH`
 * grid: each output cell is the mean of the source area it covers, fractional pixels weighted by
 * coverage. Works for shrinking and enlarging (an enlarged cell covers part of one pixel).
 */
export function resampleArea(
  src: Float32Array,
  width: number,
  height: number,
  box: CropBox,
  outW: number,
  outH: number,
): Float32Array /* [outH·outW] */ {
  const out = new Float32Array(outW * outH);
  const sx = box.width / outW,
    sy = box.height / outH;
  for (let y = 0; y < outH; y++) {
    const y0 = box.top + y * sy,
      y1 = y0 + sy;
    for (let x = 0; x < outW; x++) {
      const x0 = box.left + x * sx,
        x1 = x0 + sx;
      let sum = 0,
        area = 0;
      for (let py = Math.floor(y0); py < Math.min(Math.ceil(y1), height); py++) {
        const wy = Math.min(y1, py + 1) - Math.max(y0, py);
        if (wy <= 0) continue;
        for (let px = Math.floor(x0); px < Math.min(Math.ceil(x1), width); px++) {
          const wx = Math.min(x1, px + 1) - Math.max(x0, px);
          if (wx <= 0) continue;
          sum += src[py * width + px] * wx * wy;
          area += wx * wy;
        }
      }
      out[y * outW + x] = area > 0 ? sum / area : 0;
    }
  }
  return out;
}

/** Separable Gaussian blur (σ in cells, edges clamped); σ = 0 returns a copy. Values stay within the input's range. */
export function featherMask(
  mask: Float32Array,
  width: number,
  height: number,
  sigma = MASK_FEATHER_CELLS,
): Float32Array {
  if (!(sigma > 0)) return Float32Array.from(mask);
  const radius = Math.ceil(3 * sigma);
  const kernel = new Float32Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) total += kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma));
  for (let k = 0; k < kernel.length; k++) kernel[k] /= total;
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  const rows = new Float32Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius] * mask[y * width + clamp(x + k, width)];
      rows[y * width + x] = s;
    }
  }
  const out = new Float32Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius] * rows[clamp(y + k, height) * width + x];
      out[y * width + x] = s;
    }
  }
  return out;
}

/**
 * The crop of the mask that matches the crop the resize policy takes from the conditioning image. A mask
 * of another size than the image is treated as stretched over the whole image (resized, not refused).
 */
export function maskCrop(
  mask: { width: number; height: number },
  image: { width: number; height: number },
  resize: ResizeOptions,
): CropBox {
  const crop = targetSize(image.width, image.height, resize).crop;
  if (!crop) return { left: 0, top: 0, width: mask.width, height: mask.height };
  const kx = mask.width / image.width,
    ky = mask.height / image.height;
  return { left: crop.left * kx, top: crop.top * ky, width: crop.width * kx, height: crop.height * ky };
}

export interface GridMask {
  /** Still weight per cell, [height·width] in [0, 1] (1 = follows the conditioning image). */
  weights: Float32Array;
  width: number;
  height: number;
  /** Mean weight: the still fraction of the frame. */
  coverage: number;
}

/**
 * A decoded mask image on a `width`×`height` grid (the latent grid, or the video's pixels), cropped like
 * `image` by the resize policy, feathered with a Gaussian of `feather` grid cells.
 */
export function maskToGrid(
  mask: RgbImage,
  image: { width: number; height: number },
  resize: ResizeOptions,
  width: number,
  height: number,
  feather = MASK_FEATHER_CELLS,
): GridMask {
  const luma = maskLuminance(mask.rgb, mask.width, mask.height);
  const grid = resampleArea(luma, mask.width, mask.height, maskCrop(mask, image, resize), width, height);
  const weights = featherMask(grid, width, height, feather);
  let sum = 0;
  for (const v of weights) sum += v;
  return { weights, width, height, coverage: sum / weights.length };
}

/** The mask on the latent grid (w×h cells) and on the video's pixels (scale·w × scale·h), feathered alike. */
export function motionMaskGrids(
  mask: RgbImage,
  image: { width: number; height: number },
  resize: ResizeOptions,
  latentW: number,
  latentH: number,
  scale: number,
): { latent: GridMask; pixels: GridMask } {
  return {
    latent: maskToGrid(mask, image, resize, latentW, latentH),
    pixels: maskToGrid(mask, image, resize, latentW * scale, latentH * scale, MASK_FEATHER_CELLS * scale),
  };
}

/**
 * In place: frame ← (1 − M)·frame + M·still for each RGB24 frame, M the pixel mask. Pins the still region to
 * the conditioning image after decoding; the temporal VAE decoder would otherwise let identical latent frames
 * drift apart (most visibly the first frame, which sits at the edge of its temporal convolutions).
 */
export function compositeStill(frames: Uint8Array[], still: Uint8Array, weights: Float32Array): void {
  if (still.length !== weights.length * 3)
    throw new RangeError(`still image has ${still.length} bytes for a ${weights.length}-pixel mask`);
  for (const frame of frames) {
    for (let p = 0; p < weights.length; p++) {
      const m = weights[p];
      if (m === 0) continue;
      for (let c = 3 * p; c < 3 * p + 3; c++) frame[c] = Math.round((1 - m) * frame[c] + m * still[c]);
    }
  }
}

/**
 * Loads the `mask` field (path, URL, data: URI, base64 or bytes, like `image`). A mask that cannot be read
 * is an InvalidRequestError on `field`, so every front end names it as its user spelled it.
 */
export async function loadMaskImage(
  source: string | Uint8Array,
  options: { signal?: AbortSignal; field?: string } = {},
): Promise<RgbImage> {
  const field = options.field ?? 'mask';
  try {
    return await loadImage(source, { signal: options.signal });
  } catch (err) {
    if (!(err instanceof ImageLoadError)) throw err;
    throw new InvalidRequestError([{ field, message: err.message.replace(/^image /, 'mask image ') }]);
  }
}
