/**
 * Resize policies for the VAE branch (docs/pipeline.md §2.1). diffusers itself only stretches (PIL LANCZOS to W×H,
 * no crop); the other two policies prepare the image the way the hosted APIs and the SVD docs do
 * before calling the pipeline.
 *
 * - `stretch`: resize to width×height, aspect ratio not kept (diffusers). Unchanged when the size matches.
 * - `crop_to_16_9`: centre-crop to the aspect ratio of width×height (16:9 at the default 1024×576), then resize.
 * - `maintain_aspect_ratio`: pick the size with the image's aspect ratio whose area fits width·height
 *   (the model's pixel budget), sides multiples of 64; centre-crop the few pixels the rounding leaves, then resize.
 *
 * sharp's lanczos3 stands in for PIL's LANCZOS (docs/runtime.md §4: mean difference ≈ 0.4/255).
 */
import sharp from 'sharp';
import type { RgbImage } from './decode.js';

export type ResizeMode = 'stretch' | 'crop_to_16_9' | 'maintain_aspect_ratio';

export interface ResizeOptions {
  width: number;
  height: number;
  resize: ResizeMode;
}

/** Side granularity of `maintain_aspect_ratio` (the UNet needs latent sides that are multiples of 8). */
export const SIDE_MULTIPLE = 64;
const MAX_SIDE = 2048;

/** A crop rectangle in source pixels. */
export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The size the VAE branch will have for an image of imageWidth×imageHeight, and the centre crop applied
 * first (absent for `stretch`, and when no crop is needed). Pure: the request resolver uses it to show
 * the final size before anything runs.
 */
export function targetSize(
  imageWidth: number,
  imageHeight: number,
  options: ResizeOptions,
): { width: number; height: number; crop?: CropBox } {
  const { resize } = options;
  // diffusers floors the requested size to a multiple of the VAE scale factor (8).
  const width = Math.max(8, Math.floor(options.width / 8) * 8);
  const height = Math.max(8, Math.floor(options.height / 8) * 8);
  if (resize === 'stretch') return { width, height };
  const size =
    resize === 'maintain_aspect_ratio' ? fitAspect(imageWidth / imageHeight, width * height) : { width, height };
  const crop = coverCrop(imageWidth, imageHeight, size.width, size.height);
  return crop ? { ...size, crop } : size;
}

/**
 * The multiple-of-64 size closest in aspect ratio to `aspect` whose area is at most `budget`
 * (ties go to the larger area); sides between 64 and 2048.
 */
export function fitAspect(aspect: number, budget: number): { width: number; height: number } {
  const m = SIDE_MULTIPLE;
  const clampSide = (v: number) => Math.min(MAX_SIDE, Math.max(m, v));
  let best = { width: m, height: m };
  let bestScore = Infinity;
  const idealW = Math.sqrt(budget * aspect);
  for (const w of new Set([Math.floor(idealW / m) * m, Math.ceil(idealW / m) * m].map(clampSide))) {
    const idealH = w / aspect;
    for (const h of new Set([Math.floor(idealH / m) * m, Math.ceil(idealH / m) * m].map(clampSide))) {
      if (w * h > budget && !(w === m && h === m)) continue;
      const score = Math.abs(Math.log(w / h / aspect));
      if (score < bestScore - 1e-12 || (Math.abs(score - bestScore) <= 1e-12 && w * h > best.width * best.height)) {
        best = { width: w, height: h };
        bestScore = score;
      }
    }
  }
  return best;
}

/** The centred crop of a w×h image with the aspect ratio of tw×th, or undefined when none is needed. */
export function coverCrop(w: number, h: number, tw: number, th: number): CropBox | undefined {
  const target = tw / th;
  if (Math.abs(w / h - target) < 1e-9) return undefined;
  if (w / h > target) {
    const cw = Math.max(1, Math.min(w, Math.round(h * target)));
    return cw === w ? undefined : { left: Math.floor((w - cw) / 2), top: 0, width: cw, height: h };
  }
  const ch = Math.max(1, Math.min(h, Math.round(w / target)));
  return ch === h ? undefined : { left: 0, top: Math.floor((h - ch) / 2), width: w, height: ch };
}

/** Applies a resize policy to an RGB image (a new image; the input itself when nothing changes). */
export async function resizeForVae(image: RgbImage, options: ResizeOptions): Promise<RgbImage> {
  const t = targetSize(image.width, image.height, options);
  if (!t.crop && t.width === image.width && t.height === image.height) return image;
  let pipeline = sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (t.crop) pipeline = pipeline.extract(t.crop);
  const { data, info } = await pipeline
    .resize(t.width, t.height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}
