/**
 * Input images: load from any supported source, apply the resize policy, and produce what both
 * preprocessing branches need (docs/pipeline.md §2).
 *
 *   const image = await loadImage('cat.jpg');                       // RGB24, EXIF-oriented
 *   const p = await prepareImage(image, { width: 1024, height: 576, resize: 'stretch' });
 *   clipPreprocess(p.clipSource.rgb, p.clipSource.width, p.clipSource.height, {...}); p.vaeInput // [1,3,H,W]
 */
import { decodeImage, DEFAULT_MAX_PIXELS, type RgbImage } from './decode.js';
import { readImageBytes, type ImageSourceOptions } from './source.js';
import { resizeForVae, type ResizeOptions } from './resize.js';
import { toVaeInput } from './vaeInput.js';

export {
  decodeImage,
  sniffImageFormat,
  IMAGE_FORMATS,
  DEFAULT_MAX_PIXELS,
  type RgbImage,
  type ImageFormat,
} from './decode.js';
export {
  readImageBytes,
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_IMAGE_TIMEOUT_MS,
  type ImageSourceOptions,
  type ImageBytes,
} from './source.js';
export {
  targetSize,
  fitAspect,
  coverCrop,
  resizeForVae,
  SIDE_MULTIPLE,
  type ResizeMode,
  type ResizeOptions,
  type CropBox,
} from './resize.js';
export { toVaeInput } from './vaeInput.js';

export interface LoadImageOptions extends ImageSourceOptions {
  /** Largest decoded image in pixels (default 8192²). */
  maxPixels?: number;
}

/**
 * Loads an image from a local path, file:/http(s) URL, `data:` URI, bare base64 text or encoded bytes
 * into RGB24 (EXIF orientation applied, alpha dropped). PNG, JPEG and WebP only.
 * Throws ImageLoadError naming the source, or AbortError when `signal` fires.
 */
export async function loadImage(source: string | Uint8Array, options: LoadImageOptions = {}): Promise<RgbImage> {
  const { bytes, label } = await readImageBytes(source, options);
  return decodeImage(bytes, label, { maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS });
}

export interface PreparedImage {
  /** Final size of the VAE branch (and of the video). */
  width: number;
  height: number;
  /** The VAE-branch image after the resize policy. */
  vaeImage: RgbImage;
  /** [1, 3, H, W] float32 in [−1, 1]. */
  vaeInput: Float32Array;
  /**
   * What the CLIP branch sees. `stretch` follows diffusers exactly: the original image (the pipeline is
   * given the image as is). The crop policies model an image prepared before the call, so CLIP sees the
   * prepared image.
   */
  clipSource: RgbImage;
}

/** Applies the resize policy and builds the VAE input; see PreparedImage for what CLIP gets. */
export async function prepareImage(image: RgbImage, options: ResizeOptions): Promise<PreparedImage> {
  const vaeImage = await resizeForVae(image, options);
  return {
    width: vaeImage.width,
    height: vaeImage.height,
    vaeImage,
    vaeInput: toVaeInput(vaeImage.rgb, vaeImage.width, vaeImage.height),
    clipSource: options.resize === 'stretch' ? image : vaeImage,
  };
}
