/** Default output names. */
import { basename, extname } from 'node:path';
import type { OutputFormat } from '../request/types.js';

/**
 * `<image stem>-<seed>.<ext>` in the working directory (`<stem>-<seed>-frames` for png frames); the stem
 * is `svd` when the image is not a local path (URL, data: URI, base64, bytes).
 */
export function defaultOutputPath(image: string | undefined, format: OutputFormat, seed: number): string {
  const isPath =
    image !== undefined && image.length < 4096 && !/^(https?:|data:|file:)/i.test(image) && /[./\\]/.test(image);
  const stem = isPath ? basename(image, extname(image)).replace(/[^\w.-]+/g, '_') || 'svd' : 'svd';
  return format === 'png' ? `${stem}-${seed}-frames` : `${stem}-${seed}.${format}`;
}
