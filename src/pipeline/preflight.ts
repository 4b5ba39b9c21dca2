/**
 * What can be checked in milliseconds before a model loads (which takes seconds to minutes, and may first build ONNX
 * graphs): that the input image can be read, that an ffmpeg exists for a video format, and that an explicit
 * `--device cuda` has the CUDA provider installed (and `--device webgpu` an adapter). Without this, a typo in the image path, a machine without ffmpeg or
 * without the CUDA provider would be reported only after the graphs were built and the model loaded or, for ffmpeg,
 * after the whole generation.
 */
import { customTrajectory } from '../camera/request.js';
import { ExecutionProviderError } from '../errors.js';
import { expectImageFormat } from '../image/decode.js';
import { readImageBytes } from '../image/source.js';
import { loadMaskImage } from '../motion/mask.js';
import type { GenerationRequest } from '../request/schema.js';
import { CUDA_INSTALL_HINT, findCudaProviderLibrary } from '../runtime/device.js';
import { VULKAN_INSTALL_HINT, webGpuAdapterOnce, type WebGpuQuery } from '../runtime/webgpu.js';
import { findFfmpeg } from '../video/ffmpeg.js';

export interface PreflightOptions {
  signal?: AbortSignal;
  /** Where the CUDA provider library is (default: looked up in onnxruntime-node's directory); for tests. */
  cudaLibrary?: () => string | undefined;
  /** The WebGPU adapter query (default: Dawn, once per process); for tests. */
  webgpuAdapter?: () => Promise<WebGpuQuery>;
}

/**
 * Throws the error the pipeline would throw later: ImageLoadError for an unreadable local image, data: URI or base64
 * (http(s) images are downloaded once, by the pipeline), FfmpegError when a video format has no ffmpeg,
 * ExecutionProviderError for `cuda`/`cuda:N` without the CUDA provider and for `webgpu` when Dawn finds no adapter
 * (`auto` falls back to CPU instead), and InvalidRequestError for a camera trajectory file that cannot be read or parsed.
 */
export async function checkBeforeModelLoad(
  request: Pick<GenerationRequest, 'image' | 'format' | 'device' | 'mask'> & Partial<Pick<GenerationRequest, 'camera'>>,
  options: PreflightOptions = {},
): Promise<void> {
  customTrajectory(request.camera); // a camera trajectory file that cannot be read or parsed
  const cuda = /^cuda(?::(\d+))?$/.exec(request.device ?? '');
  if (cuda && !(options.cudaLibrary ?? findCudaProviderLibrary)()) {
    const device = `cuda:${cuda[1] ?? 0}`;
    throw new ExecutionProviderError(
      device,
      `device ${device}: the CUDA execution provider is not installed; ${CUDA_INSTALL_HINT}; or pass --device cpu`,
    );
  }
  if (request.device === 'webgpu') {
    const { problem } = await (options.webgpuAdapter ?? webGpuAdapterOnce)();
    // only Dawn's definite "none" refuses early; a missing probe package leaves the decision to the session
    if (problem?.startsWith('no WebGPU adapter')) {
      throw new ExecutionProviderError(
        'webgpu',
        `device webgpu: ${problem}; ${VULKAN_INSTALL_HINT}; or pass --device cpu`,
      );
    }
  }
  if (request.format !== 'png') findFfmpeg();
  const image: unknown = request.image;
  if (typeof image === 'string' && !/^https?:\/\//i.test(image)) {
    const { bytes, label } = await readImageBytes(image, { signal: options.signal });
    expectImageFormat(bytes, label);
  }
  // a motion mask is decoded whole (it is small and read again later): a bad one is an error on `mask`
  const mask: unknown = request.mask;
  if (mask instanceof Uint8Array || (typeof mask === 'string' && !/^https?:\/\//i.test(mask))) {
    await loadMaskImage(mask, { signal: options.signal });
  }
}
