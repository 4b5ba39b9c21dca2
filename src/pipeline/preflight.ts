/**
 * What can be checked in milliseconds before a model loads (which takes seconds to minutes): that the input image
 * can be read and decoded as far as its bytes go, and that an ffmpeg exists for a video format. Without this, a
 * typo in the image path or a machine without ffmpeg would be reported only after the model loaded or, for ffmpeg,
 * after the whole generation.
 */
import { readImageBytes } from '../image/source.js';
import { loadMaskImage } from '../motion/mask.js';
import type { GenerationRequest } from '../request/schema.js';
import { findFfmpeg } from '../video/ffmpeg.js';

/**
 * Throws the error the pipeline would throw later: ImageLoadError for an unreadable local image, data: URI or base64
 * (http(s) images are downloaded once, by the pipeline), FfmpegError when a video format has no ffmpeg.
 */
export async function checkBeforeModelLoad(request: Pick<GenerationRequest, 'image' | 'format' | 'mask'>, signal?: AbortSignal): Promise<void> {
  if (request.format !== 'png') findFfmpeg();
  const image: unknown = request.image;
  if (typeof image === 'string' && !/^https?:\/\//i.test(image)) await readImageBytes(image, { signal });
  // a motion mask is decoded whole (it is small and read again later): a bad one is an error on `mask`
  const mask: unknown = request.mask;
  if (mask instanceof Uint8Array || (typeof mask === 'string' && !/^https?:\/\//i.test(mask))) await loadMaskImage(mask, { signal });
}
