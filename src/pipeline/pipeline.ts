/**
 * The local SVD pipeline, a port of diffusers' StableVideoDiffusionPipeline.__call__ (spec §1):
 *
 *   image → preprocess (two branches) → CLIP embedding ┐
 *                                     → VAE latent     ├→ denoise loop (Euler + UNet + CFG ramp) → chunked decode → frames → video
 *   fps / motion bucket / cond_aug → added_time_ids    ┘
 *
 * `createPipeline` opens the model once; `generate` can be called many times on it.
 */
import { randomInt } from 'node:crypto';
import { InvalidRequestError, throwIfAborted, type FieldIssue } from '../errors.js';
import { parseRequest, resolveRequest, MAX_SEED, type GenerationRequestInput, type ResolvedRequest } from '../request/schema.js';
import type { BackendResult, GenerateCallOptions, ProgressEvent } from '../backends/types.js';
import type { ModelManifest } from '../models/manifest.js';
import { clipPreprocess } from '../encoders/clipPreprocess.js';
import { loadImage, prepareImage } from '../image/index.js';
import { createRng, gaussianNoise } from '../tensor/random.js';
import { setTimesteps, inputDivisor, eulerStep, guidanceRamp, applyGuidance } from '../scheduler/index.js';
import { framesToUint8, writeVideo, defaultOutputPath } from '../video/index.js';
import { addedTimeIds, buildUnetSample, repeatRows } from './conditioning.js';
import { chooseDecodeChunk, decodeChunked } from './decode.js';
import { gpuFreeMemoryMiB } from '../runtime/gpu.js';
import { framesWithinLimit } from '../runtime/bindingGuard.js';
import { openModelSessions, type ModelSessions, type ModelSessionsOptions } from './session.js';
import type { DebugDump, InjectedNoise } from './debug.js';

export interface PipelineOptions extends ModelSessionsOptions {
  /** Model directory (see README, "Model directory"). */
  modelDir: string;
  /** Informational messages (fallbacks, retries). Default: stderr. */
  log?: (message: string) => void;
}

export interface GenerateOptions extends GenerateCallOptions {
  /** Use these unit-normal draws instead of the seeded generator (debugging contract, `--noise`). */
  noise?: InjectedNoise;
  /** Receives every intermediate (debugging contract, `--dump`). */
  dump?: DebugDump;
  /** Skip writing a video; the frames are still returned. */
  skipVideo?: boolean;
}

export interface Timings {
  load?: number;
  preprocess: number;
  encode: number;
  /** One entry per UNet step (ms). */
  steps: number[];
  decode: number;
  video: number;
  total: number;
}

export interface GenerateResult extends BackendResult {
  /** RGB24, row-major HWC, one array per frame. */
  frames: Uint8Array[];
  width: number;
  height: number;
  fps: number;
  request: ResolvedRequest;
  stepTimings: number[];
}

export interface SvdPipeline {
  readonly manifest: ModelManifest;
  /** The execution provider in use ('cuda', 'webgpu' or 'cpu'). */
  readonly provider: string;
  generate(request: GenerationRequestInput, options?: GenerateOptions): Promise<GenerateResult>;
  close(): Promise<void>;
}

/** Opens a model directory and returns a reusable pipeline. */
export async function createPipeline(options: PipelineOptions): Promise<SvdPipeline> {
  const t0 = performance.now();
  const log = options.log ?? ((m: string) => process.stderr.write(`svd: ${m}\n`));
  const sessions = await openModelSessions(options.modelDir, { ...options, warn: options.warn ?? log });
  const loadMs = performance.now() - t0;
  let first = true;
  return {
    manifest: sessions.model.manifest,
    provider: sessions.device.provider,
    async generate(request, opts = {}) {
      const result = await runPipeline(sessions, request, opts, log);
      if (first) {
        result.timings.load = loadMs;
        first = false;
      }
      return result;
    },
    close: () => sessions.close(),
  };
}

/** Validates and resolves a request against a model's defaults and limits (no model needs to be loaded). */
export function resolveForModel(input: GenerationRequestInput, manifest: ModelManifest, seed = () => randomInt(0, MAX_SEED)): ResolvedRequest {
  const req = resolveRequest(parseRequest(input), manifest.defaults, seed);
  const issues: FieldIssue[] = [];
  const cell = manifest.vae.spatialScaleFactor * manifest.unet.latentMultiple;
  for (const field of ['width', 'height'] as const) {
    if (req[field] % cell !== 0) issues.push({ field, value: req[field], message: `must be a multiple of ${cell} for this model` });
  }
  const fixed = manifest.vae.decoderFixedFrames;
  if (fixed !== null) {
    if (input.decodeChunkSize !== undefined && input.decodeChunkSize !== fixed) {
      issues.push({ field: 'decodeChunkSize', value: input.decodeChunkSize, message: `must be ${fixed}: this model's VAE decoder graph takes exactly ${fixed} frames per call` });
    }
    if (req.frames % fixed !== 0) {
      issues.push({ field: 'frames', value: req.frames, message: `must be a multiple of ${fixed}: this model's VAE decoder graph takes exactly ${fixed} frames per call` });
    }
    req.decodeChunkSize = fixed;
  }
  if (issues.length) throw new InvalidRequestError(issues);
  return req;
}

async function runPipeline(s: ModelSessions, input: GenerationRequestInput, o: GenerateOptions, log: (m: string) => void): Promise<GenerateResult> {
  const { manifest } = s.model;
  const { imageEncoder, vaeEncoder, unet, vaeDecoder } = s.runners;
  const tStart = performance.now();
  const req = resolveForModel(input, manifest);
  const progress = (e: ProgressEvent) => o.onProgress?.(e);
  const dump = o.dump;
  throwIfAborted(o.signal);

  // 1. Preprocess: load the image once, then the CLIP branch (224², antialiased) and the VAE branch (W×H in [−1,1]).
  progress({ stage: 'preprocess', fraction: 0 });
  let t = performance.now();
  const image = await loadImage(req.image, { signal: o.signal });
  const prepared = await prepareImage(image, { width: req.width, height: req.height, resize: req.resize });
  const { width: W, height: H } = prepared;
  const enc = manifest.imageEncoder;
  const clipPixels = clipPreprocess(prepared.clipSource.rgb, prepared.clipSource.width, prepared.clipSource.height, {
    size: enc.imageSize, mean: enc.imageMean, std: enc.imageStd,
  }); /* [1,3,S,S] */
  const vaeImage = prepared.vaeInput; /* [1,3,H,W] */
  const preprocessMs = performance.now() - t;
  await dump?.('clip_pixel_values', clipPixels, [1, 3, enc.imageSize, enc.imageSize]);

  // 2. Noise, in diffusers' draw order: augmentation noise first, then the initial latents (spec §4).
  const F = req.frames;
  const scale = manifest.vae.spatialScaleFactor;
  const h = H / scale, w = W / scale, C = manifest.vae.latentChannels, plane = h * w;
  const rng = createRng(req.seed);
  const augNoise = o.noise?.augNoise ?? gaussianNoise(rng, 3 * H * W); /* [1,3,H,W] */
  const initNoise = o.noise?.initNoise ?? gaussianNoise(rng, F * C * plane); /* [1,F,C,h,w] */
  checkNoise(augNoise, 3 * H * W, 'aug_noise', [1, 3, H, W]);
  checkNoise(initNoise, F * C * plane, 'init_noise', [1, F, C, h, w]);

  // 3. Encode: CLIP image embedding and the VAE posterior mean of the noise-augmented image (not scaled, spec §2.4).
  progress({ stage: 'encode', fraction: 0 });
  t = performance.now();
  const embeds = (await imageEncoder.run({ pixel_values: imageEncoder.tensor('pixel_values', clipPixels, [1, 3, enc.imageSize, enc.imageSize]) })).data; /* [1,D] */
  const D = embeds.length;
  await dump?.('image_embeddings', embeds, [1, 1, D]);
  const augmented = new Float32Array(vaeImage.length);
  for (let i = 0; i < augmented.length; i++) augmented[i] = vaeImage[i] + req.condAug * augNoise[i];
  const imageLatent = (await vaeEncoder.run({ sample: vaeEncoder.tensor('sample', augmented, [1, 3, H, W]) })).data; /* [1,C,h,w] */
  const encodeMs = performance.now() - t;
  await dump?.('image_latents', imageLatent, [1, C, h, w]);
  throwIfAborted(o.signal);

  // 4. Conditioning for the CFG batch [uncond, cond]: zero embedding and zero image latent for uncond (spec §6).
  const guided = req.maxGuidance > 1;
  const batch = guided ? 2 : 1;
  const timeIds = addedTimeIds(req.fps, req.motionBucketId, req.condAug);
  await dump?.('added_time_ids', timeIds, [1, 3]);
  const context = new Float32Array(batch * D);
  context.set(embeds, (batch - 1) * D);
  const contextTensor = unet.tensor('encoder_hidden_states', context, [batch, 1, D]);
  const timeIdsTensor = unet.tensor('added_time_ids', repeatRows(timeIds, batch), [batch, 3]);
  const ramp = guidanceRamp(req.minGuidance, req.maxGuidance, F);

  // 5. Scheduler: Karras sigmas, continuous timesteps, initial latents scaled by init_noise_sigma (spec §5).
  const { sigmas, timesteps, initNoiseSigma: sigma0 } = setTimesteps(manifest.scheduler, req.steps);
  await dump?.('sigmas', sigmas, [sigmas.length]);
  await dump?.('timesteps', timesteps, [timesteps.length]);
  let latents: Float32Array = new Float32Array(initNoise.length); /* [1,F,C,h,w] */
  for (let i = 0; i < latents.length; i++) latents[i] = initNoise[i] * sigma0;

  // 6. Denoise.
  const stepTimings: number[] = [];
  const latentChannelsIn = manifest.unet.inChannels - C;
  progress({ stage: 'denoise', step: 0, totalSteps: req.steps, fraction: 0 });
  for (let i = 0; i < req.steps; i++) {
    throwIfAborted(o.signal);
    t = performance.now();
    const sigma = sigmas[i];
    const sample = buildUnetSample({
      latents, imageLatent, frames: F, latentChannels: C, imageChannels: latentChannelsIn, plane,
      inputDivisor: inputDivisor(sigma), guided,
    });
    const out = await unet.run({
      sample: unet.tensor('sample', sample, [batch, F, manifest.unet.inChannels, h, w]),
      timestep: unet.tensor('timestep', Float32Array.of(timesteps[i]), []),
      encoder_hidden_states: contextTensor,
      added_time_ids: timeIdsTensor,
    }); /* [B,F,C,h,w] */
    const v = guided ? applyGuidance(out.data, ramp, F, C * plane) : out.data;
    latents = eulerStep(latents, v, sigma, sigmas[i + 1], manifest.scheduler.predictionType);
    stepTimings.push(performance.now() - t);
    await dump?.(`latents_${i}`, latents, [1, F, C, h, w]);
    progress({ stage: 'denoise', step: i + 1, totalSteps: req.steps, fraction: (i + 1) / req.steps });
  }

  // 7. Decode in chunks: latents / scaling_factor → [F,C,h,w] → frames [F,3,H,W] (spec §8.4).
  throwIfAborted(o.signal);
  const { chunk } = manifest.vae.decoderFixedFrames !== null
    ? { chunk: req.decodeChunkSize }
    : chooseDecodeChunk({
      resolved: req.decodeChunkSize, chosen: input.decodeChunkSize !== undefined || manifest.defaults.decodeChunkSize !== undefined, frames: F,
      provider: s.device.provider, freeMiB: s.device.provider === 'cuda' ? await gpuFreeMemoryMiB(s.device.deviceId) : null,
      framesWithinBindingLimit: vaeDecoder.guard ? framesWithinLimit(vaeDecoder.guard, { latent: [1, C, h, w] }, F) : undefined,
      width: W, height: H, dtype: vaeDecoder.inputType('latent'),
    });
  progress({ stage: 'decode', fraction: 0 });
  t = performance.now();
  const inv = 1 / manifest.vae.scalingFactor;
  const scaled = new Float32Array(latents.length);
  for (let i = 0; i < scaled.length; i++) scaled[i] = latents[i] * inv;
  const decoded = await decodeChunked({
    latents: scaled, frames: F, channels: C, height: h, width: w,
    chunkSize: chunk, fixedFrames: manifest.vae.decoderFixedFrames,
    runChunk: (latent) => vaeDecoder.run({ latent }),
    toInput: (data, dims) => vaeDecoder.tensor('latent', data, dims),
    signal: o.signal, onRetry: log,
  });
  const decodeMs = performance.now() - t;
  await dump?.('decoded', decoded.decoded, decoded.dims);
  const frames = framesToUint8(decoded.decoded, F, H, W);
  if (dump) {
    const all = new Uint8Array(F * H * W * 3);
    frames.forEach((f: Uint8Array, k: number) => all.set(f, k * H * W * 3));
    await dump('frames', all, [F, H, W, 3]);
  }

  // 8. Video.
  throwIfAborted(o.signal);
  t = performance.now();
  let outputPath = '';
  if (!o.skipVideo) {
    progress({ stage: 'video', fraction: 0 });
    outputPath = req.output ?? defaultOutputPath(typeof req.image === 'string' ? req.image : undefined, req.format, req.seed);
    outputPath = await writeVideo(frames, { width: W, height: H, fps: req.fps, format: req.format, output: outputPath, signal: o.signal });
  }
  const videoMs = performance.now() - t;
  const timings: Timings = {
    preprocess: preprocessMs, encode: encodeMs, steps: stepTimings, decode: decodeMs, video: videoMs,
    total: performance.now() - tStart,
  };
  return {
    outputPath, format: req.format, seed: req.seed, backend: 'local',
    timings: { preprocess: timings.preprocess, encode: timings.encode, denoise: sum(stepTimings), decode: timings.decode, video: timings.video, total: timings.total },
    stepTimings,
    metadata: { provider: s.device.provider, fallbackReason: s.device.fallbackReason, decodeChunkSize: decoded.chunkSize, width: W, height: H, frames: F },
    frames, width: W, height: H, fps: req.fps, request: req,
  };
}

function checkNoise(data: Float32Array, expected: number, name: string, shape: number[]): void {
  if (data.length !== expected) {
    throw new InvalidRequestError([{ field: name, value: `${data.length} values`, message: `must have shape [${shape.join(',')}] (${expected} values) for this request` }]);
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
