/**
 * Chunked temporal VAE decoding (docs/pipeline.md §8.4). Each chunk is decoded as its own short video: temporal
 * convolutions and temporal GroupNorm statistics see only the chunk, so the chunk size changes the
 * pixels — it is part of the request (`decodeChunkSize`, Segmind's `decoding_t`), not a tuning knob.
 * On CUDA, an out-of-memory failure is retried with half the chunk, and the caller is told.
 *
 * Every decision about the chunk size lives here: the request's check against a decoder graph that
 * takes a fixed number of frames (`fixedDecoderRule`), the size a run uses (`chooseDecodeChunk`) and
 * the out-of-memory retry (`decodeChunked`).
 */
import { SvdError, throwIfAborted, type FieldIssue } from '../errors.js';
import type { ModelManifest } from '../models/manifest.js';
import { framesWithinLimit } from '../runtime/bindingGuard.js';
import { defaultDecodeChunkSize, gpuFreeMemoryMiB } from '../runtime/gpu.js';
import type { TensorData } from '../runtime/tensor.js';
import { framesToUint8 } from '../video/frames.js';
import type { DebugDump } from './debug.js';
import type { LatentShape } from './latents.js';
import type { ModelRunner } from './session.js';
import type { FloatDtype } from '../tensor/float16.js';
import type { Provider } from '../runtime/device.js';

export interface DecodeArgs {
  latents: Float32Array /* [F, C, h, w], already divided by the VAE scaling factor */;
  frames: number;
  channels: number;
  height: number /* latent h */;
  width: number /* latent w */;
  chunkSize: number;
  /** Decoder graph that accepts only this many frames per call, or null. */
  fixedFrames: number | null;
  /** Runs the decoder on one chunk [n, C, h, w] → [n, 3, H, W]. */
  runChunk: (latent: TensorData) => Promise<{ data: Float32Array; dims: number[] }>;
  toInput: (data: Float32Array, dims: number[]) => TensorData;
  signal?: AbortSignal;
  /** Called when a chunk ran out of memory and is retried smaller. */
  onRetry?: (message: string) => void;
}

export interface DecodeResult {
  decoded: Float32Array /* [F, 3, H, W] */;
  dims: [number, number, number, number];
  /** The chunk size finally used (smaller than asked after an out-of-memory retry). */
  chunkSize: number;
}

const OUT_OF_MEMORY =
  /out of memory|Failed to allocate memory|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|bad_alloc/i;

export async function decodeChunked(a: DecodeArgs): Promise<DecodeResult> {
  const per = a.channels * a.height * a.width;
  let chunk = a.chunkSize;
  let out: Float32Array | undefined;
  let outPer = 0;
  let outDims: [number, number, number, number] = [a.frames, 3, 0, 0];
  for (let start = 0; start < a.frames; ) {
    throwIfAborted(a.signal);
    const n = Math.min(chunk, a.frames - start);
    const input = a.toInput(a.latents.subarray(start * per, (start + n) * per), [n, a.channels, a.height, a.width]);
    let result: { data: Float32Array; dims: number[] };
    try {
      result = await a.runChunk(input);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (OUT_OF_MEMORY.test(message) && chunk > 1 && a.fixedFrames === null) {
        const smaller = Math.max(1, Math.floor(chunk / 2));
        a.onRetry?.(
          `VAE decoding ran out of memory with ${chunk} frames per chunk; retrying with ${smaller} ` +
            `(pass --decode-chunk-size ${smaller} to start there; note the chunk size changes the pixels slightly)`,
        );
        chunk = smaller;
        continue;
      }
      throw err;
    }
    const [rows, ch, hh, ww] = result.dims;
    if (rows !== n) throw new SvdError('decoder_output', `VAE decoder returned ${rows} frames for a chunk of ${n}`);
    if (!out) {
      outPer = ch * hh * ww;
      out = new Float32Array(a.frames * outPer);
      outDims = [a.frames, ch, hh, ww];
    }
    out.set(result.data, start * outPer);
    start += n;
  }
  return { decoded: out!, dims: outDims, chunkSize: chunk };
}

export interface ChunkChoice {
  /** The chunk size the request resolved to (the request's, else the model's, else all frames). */
  resolved: number;
  /** A decoder graph that takes exactly this many frames per call (traced exports), else null/absent. */
  fixedFrames?: number | null;
  /** True when the request or the model chose it; then it is kept as it is. */
  chosen: boolean;
  frames: number;
  provider: Provider;
  /** Free GPU memory (nvidia-smi), null when unknown. */
  freeMiB: number | null;
  /** WebGPU: the most frames per call whose tensors all fit the adapter's binding limit (0: not even one). */
  framesWithinBindingLimit?: number;
  width: number;
  height: number;
  dtype: FloatDtype;
}

/**
 * The decode chunk size: what the request or the model chose, else on CUDA what fits in free GPU memory
 * (so a 25-frame XT decode does not start by running out of memory), on WebGPU the most frames whose
 * tensors fit one storage-buffer binding (runtime/bindingGuard.ts), else all frames at once (diffusers).
 */
export function chooseDecodeChunk(c: ChunkChoice): { chunk: number; reason: string } {
  if (c.fixedFrames) return { chunk: c.fixedFrames, reason: `the decoder graph takes exactly ${c.fixedFrames} frames` };
  if (c.chosen) return { chunk: c.resolved, reason: 'requested or model default' };
  if (c.provider === 'webgpu' && c.framesWithinBindingLimit !== undefined) {
    // 0 frames fit: keep 1 and let the binding guard refuse the run with its explanation
    return {
      chunk: Math.max(1, Math.min(c.resolved, c.framesWithinBindingLimit)),
      reason: 'fits the WebGPU binding limit',
    };
  }
  if (c.provider === 'cuda' && c.freeMiB !== null) {
    return {
      chunk: Math.min(c.frames, defaultDecodeChunkSize(c.freeMiB, c.width, c.height, c.dtype)),
      reason: `fits ${c.freeMiB} MiB of free GPU memory`,
    };
  }
  return { chunk: c.resolved, reason: 'all frames' };
}

/**
 * A decoder graph with a fixed frame axis (`vae.decoderFixedFrames`) decides the chunk size: a request
 * may not ask for another one, and its frame count must be a multiple of it.
 */
export function fixedDecoderRule(
  fixedFrames: number | null,
  frames: number,
  requestedChunk: number | undefined,
): { issues: FieldIssue[]; decodeChunkSize?: number } {
  if (fixedFrames === null) return { issues: [] };
  const why = `this model's VAE decoder graph takes exactly ${fixedFrames} frames per call`;
  const issues: FieldIssue[] = [];
  if (requestedChunk !== undefined && requestedChunk !== fixedFrames) {
    issues.push({ field: 'decodeChunkSize', value: requestedChunk, message: `must be ${fixedFrames}: ${why}` });
  }
  if (frames % fixedFrames !== 0)
    issues.push({ field: 'frames', value: frames, message: `must be a multiple of ${fixedFrames}: ${why}` });
  return { issues, decodeChunkSize: fixedFrames };
}

export interface DecodeLatentsArgs {
  vaeDecoder: ModelRunner;
  manifest: ModelManifest;
  latents: Float32Array /* [1, F, C, h, w] */;
  shape: LatentShape;
  /** The chunk size the request resolved to, and whether the request or the model chose it. */
  decodeChunkSize: number;
  chosen: boolean;
  device: { provider: Provider; deviceId: number };
  signal?: AbortSignal;
  log?: (message: string) => void;
  dump?: DebugDump;
}

export interface DecodedVideo {
  /** RGB24, row-major HWC, one array per frame. */
  frames: Uint8Array[];
  /** The chunk size finally used. */
  chunkSize: number;
}

/** latents / scaling_factor → chunked decode → [F, 3, H, W] → RGB24 frames (diffusers `decode_latents` + postprocess). */
export async function decodeLatents(a: DecodeLatentsArgs): Promise<DecodedVideo> {
  const { manifest, shape, vaeDecoder } = a;
  const W = shape.width * manifest.vae.spatialScaleFactor;
  const H = shape.height * manifest.vae.spatialScaleFactor;
  const { chunk } = chooseDecodeChunk({
    resolved: a.decodeChunkSize,
    chosen: a.chosen,
    fixedFrames: manifest.vae.decoderFixedFrames,
    frames: shape.frames,
    provider: a.device.provider,
    freeMiB: a.device.provider === 'cuda' ? await gpuFreeMemoryMiB(a.device.deviceId) : null,
    framesWithinBindingLimit: vaeDecoder.guard
      ? framesWithinLimit(vaeDecoder.guard, { latent: [1, shape.channels, shape.height, shape.width] }, shape.frames)
      : undefined,
    width: W,
    height: H,
    dtype: vaeDecoder.inputType('latent'),
  });
  const inv = 1 / manifest.vae.scalingFactor;
  const scaled = new Float32Array(a.latents.length);
  for (let i = 0; i < scaled.length; i++) scaled[i] = a.latents[i] * inv;
  const decoded = await decodeChunked({
    latents: scaled,
    frames: shape.frames,
    channels: shape.channels,
    height: shape.height,
    width: shape.width,
    chunkSize: chunk,
    fixedFrames: manifest.vae.decoderFixedFrames,
    runChunk: (latent) => vaeDecoder.run({ latent }),
    toInput: (data, dims) => vaeDecoder.tensor('latent', data, dims),
    signal: a.signal,
    onRetry: a.log,
  });
  await a.dump?.('decoded', decoded.decoded, decoded.dims);
  const frames = framesToUint8(decoded.decoded, shape.frames, H, W);
  if (a.dump) {
    const all = new Uint8Array(shape.frames * H * W * 3);
    frames.forEach((f, k) => all.set(f, k * H * W * 3));
    await a.dump('frames', all, [shape.frames, H, W, 3]);
  }
  return { frames, chunkSize: decoded.chunkSize };
}
