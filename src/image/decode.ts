/**
 * Decoding an encoded image into RGB24 the way diffusers sees a PIL image: EXIF orientation applied
 * (diffusers' `load_image` calls `exif_transpose`), alpha dropped without compositing (PIL
 * `convert('RGB')`), greyscale expanded to three channels. PNG, JPEG and WebP only.
 */
import sharp from 'sharp';
import { ImageLoadError } from '../errors.js';

/** An RGB24 image, row-major HWC (`rgb.length === width·height·3`). */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];
/** Largest decoded image accepted by default (pixels), so a small file cannot expand to gigabytes. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

/** The format from the file signature, or undefined for anything but PNG, JPEG and WebP. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  const at = (i: number, s: number[]) => s.every((b, k) => bytes[i + k] === b);
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (at(0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return 'webp';
  return undefined;
}

/** A name for common formats we refuse, for a friendlier message. */
function describeOther(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 16)).toString('latin1');
  if (head.startsWith('GIF8')) return 'a GIF';
  if (head.startsWith('BM')) return 'a BMP';
  if (head.startsWith('II*\0') || head.startsWith('MM\0*')) return 'a TIFF';
  if (head.slice(4, 12).startsWith('ftyp')) return 'a HEIF/AVIF';
  if (/^\s*</.test(head)) return 'text/markup (SVG or HTML?)';
  return 'not a recognised image';
}

/** The bytes' format; an ImageLoadError naming what they are instead when not PNG, JPEG or WebP. */
export function expectImageFormat(bytes: Uint8Array, label: string): ImageFormat {
  const format = sniffImageFormat(bytes);
  if (!format) throw new ImageLoadError(label, `is ${describeOther(bytes)}; allowed formats: PNG, JPEG, WebP`);
  return format;
}

/** Decodes PNG/JPEG/WebP bytes to RGB24 with EXIF orientation applied and alpha removed. */
export async function decodeImage(
  bytes: Uint8Array,
  label: string,
  options: { maxPixels?: number } = {},
): Promise<RgbImage> {
  const format = expectImageFormat(bytes, label);
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS })
      .autoOrient()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (err) {
    const reason = (err as Error).message ?? String(err);
    if (/pixel limit/i.test(reason))
      throw new ImageLoadError(label, `has more pixels than the limit of ${options.maxPixels ?? DEFAULT_MAX_PIXELS}`);
    throw new ImageLoadError(label, `cannot be decoded as ${format.toUpperCase()} (${reason.split('\n')[0]})`);
  }
}
