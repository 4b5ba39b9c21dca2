/** The checks that run before any model work (src/pipeline/preflight.ts), with the machine's facts injected. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExecutionProviderError, FfmpegError, ImageLoadError } from '../src/errors.js';
import { checkBeforeModelLoad } from '../src/pipeline/preflight.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';

const noCuda = () => undefined;
const withCuda = () => '/ort/libonnxruntime_providers_cuda.so';

describe('checkBeforeModelLoad', () => {
  it('an explicit cuda device without the CUDA provider fails at once, naming the device and the fix', async () => {
    const err = await checkBeforeModelLoad(
      { image: REFERENCE_IMAGE, format: 'png', device: 'cuda:1' },
      { cudaLibrary: noCuda },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect(err.message).toMatch(
      /^device cuda:1: the CUDA execution provider is not installed; .*svd setup cuda.*--device cpu/,
    );
    await expect(
      checkBeforeModelLoad({ image: REFERENCE_IMAGE, format: 'png', device: 'cuda' }, { cudaLibrary: noCuda }),
    ).rejects.toThrow(/device cuda:0/);
  });

  it('auto and cpu never need the CUDA provider; cuda passes when it is installed', async () => {
    for (const device of ['auto', 'cpu'])
      await checkBeforeModelLoad({ image: REFERENCE_IMAGE, format: 'png', device }, { cudaLibrary: noCuda });
    await checkBeforeModelLoad({ image: REFERENCE_IMAGE, format: 'png', device: 'cuda:0' }, { cudaLibrary: withCuda });
  });

  it('webgpu fails at once when Dawn finds no adapter, with the Vulkan install hint; an adapter (even emulated) passes', async () => {
    const none = async () => ({ problem: 'no WebGPU adapter (Dawn found no usable Vulkan, Metal or D3D12 device)' });
    const err = await checkBeforeModelLoad(
      { image: REFERENCE_IMAGE, format: 'png', device: 'webgpu' },
      { webgpuAdapter: none },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect(err.message).toMatch(/device webgpu: no WebGPU adapter .*mesa-vulkan-drivers.*--device cpu/);
    const unknown = async () => ({
      problem: 'the optional `webgpu` package (Dawn for Node) is not installed; vulkaninfo not found',
    });
    await checkBeforeModelLoad({ image: REFERENCE_IMAGE, format: 'png', device: 'webgpu' }, { webgpuAdapter: unknown });
  });

  it('a missing image file or bad base64 is an ImageLoadError; URLs are left to the pipeline', async () => {
    const missing = await checkBeforeModelLoad({
      image: join(import.meta.dirname, 'no-such.png'),
      format: 'png',
      device: 'cpu',
    }).catch((e) => e);
    expect(missing).toBeInstanceOf(ImageLoadError);
    await expect(
      checkBeforeModelLoad({ image: 'data:image/png;base64,AAAA', format: 'png', device: 'cpu' }),
    ).rejects.toBeInstanceOf(ImageLoadError);
    await checkBeforeModelLoad({ image: 'https://example.invalid/x.png', format: 'png', device: 'cpu' });
  });

  it('a video format without any ffmpeg is a FfmpegError; png needs none', async () => {
    const saved = { ...process.env };
    try {
      process.env.FFMPEG_PATH = join(import.meta.dirname, 'no-such-ffmpeg');
      await expect(
        checkBeforeModelLoad({ image: REFERENCE_IMAGE, format: 'mp4', device: 'cpu' }),
      ).rejects.toBeInstanceOf(FfmpegError);
      await checkBeforeModelLoad({ image: REFERENCE_IMAGE, format: 'png', device: 'cpu' });
    } finally {
      process.env.FFMPEG_PATH = saved.FFMPEG_PATH;
      if (saved.FFMPEG_PATH === undefined) delete process.env.FFMPEG_PATH;
    }
  });
});
