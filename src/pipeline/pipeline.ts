/**
 * The local SVD pipeline, a port of diffusers' StableVideoDiffusionPipeline.__call__ (docs/pipeline.md §1):
 *
 *   image → preprocess (two branches) → CLIP embedding ┐
 *                                     → VAE latent     ├→ denoise loop (Euler + UNet + CFG ramp) → chunked decode → frames → video
 *   fps / motion bucket / cond_aug → added_time_ids    ┘
 *
 * `createPipeline` opens the model once; `generate` can be called many times on it. `runPipeline` reads
 * like the algorithm: one call per stage (encode.ts, latents.ts, denoise.ts, decode.ts), each wrapped by
 * the StageRunner for abort checks, progress and timing.
 */
import { randomInt } from 'node:crypto';
import { InvalidRequestError, type FieldIssue } from '../errors.js';
import { parseRequest, resolveRequest, MAX_SEED, type GenerationRequestInput, type ResolvedRequest } from '../request/schema.js';
import type { BackendResult, RunOptions } from '../request/types.js';
import type { ModelManifest } from '../models/manifest.js';
import { setTimesteps } from '../scheduler/index.js';
import { writeVideo, defaultOutputPath } from '../video/index.js';
import { buildConditioning, addedTimeIds } from './conditioning.js';
import { decodeLatents, fixedDecoderRule } from './decode.js';
import { denoise } from './denoise.js';
import { encodeImage, preprocessImage } from './encode.js';
import { drawNoise, latentShape, prepareLatents } from './latents.js';
import { openModelSessions, type ModelSessions, type ModelSessionsOptions } from './session.js';
import { StageRunner } from './stages.js';
import type { DebugDump, InjectedNoise } from './debug.js';

export interface PipelineOptions extends ModelSessionsOptions {
  /** Model directory (see README, "Model directory"). */
  modelDir: string;
  /** Informational messages (fallbacks, retries). Default: stderr. */
  log?: (message: string) => void;
}

export interface GenerateOptions extends RunOptions {
  /** Use these unit-normal draws instead of the seeded generator (debugging contract, `--noise`). */
  noise?: InjectedNoise;
  /** Receives every intermediate (debugging contract, `--dump`). */
  dump?: DebugDump;
  /** Skip writing a video; the frames are still returned. */
  skipVideo?: boolean;
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
        // the call that paid for loading the model reports it, inside its total too
        result.timings.load = loadMs;
        result.timings.total += loadMs;
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
  const fixed = fixedDecoderRule(manifest.vae.decoderFixedFrames, req.frames, input.decodeChunkSize);
  issues.push(...fixed.issues);
  if (fixed.decodeChunkSize !== undefined) req.decodeChunkSize = fixed.decodeChunkSize;
  if (issues.length) throw new InvalidRequestError(issues);
  return req;
}

async function runPipeline(s: ModelSessions, input: GenerationRequestInput, o: GenerateOptions, log: (m: string) => void): Promise<GenerateResult> {
  const { manifest } = s.model;
  const { imageEncoder, vaeEncoder, unet, vaeDecoder } = s.runners;
  const tStart = performance.now();
  const req = resolveForModel(input, manifest);
  const stages = new StageRunner(o.signal, o.onProgress);
  const dump = o.dump;

  const image = await stages.run('preprocess', () => preprocessImage(req, manifest, o.signal));
  const { width: W, height: H } = image;
  const shape = latentShape(manifest, req.frames, W, H);
  const noise = drawNoise(req.seed, image, shape, o.noise);

  const { embeds, imageLatent } = await stages.run('encode', () =>
    encodeImage({ imageEncoder, vaeEncoder }, image, req.condAug, noise.augNoise, shape, dump));

  const conditioning = buildConditioning(embeds, req);
  await dump?.('added_time_ids', addedTimeIds(req.fps, req.motionBucketId, req.condAug), [1, 3]);
  const { sigmas, timesteps, initNoiseSigma } = setTimesteps(manifest.scheduler, req.steps);
  await dump?.('sigmas', sigmas, [sigmas.length]);
  await dump?.('timesteps', timesteps, [timesteps.length]);
  const initial = prepareLatents(noise.initNoise, initNoiseSigma);

  const latents = await stages.run('denoise', () => denoise({
    unet, unetInChannels: manifest.unet.inChannels, predictionType: manifest.scheduler.predictionType,
    latents: initial, imageLatent, shape, conditioning, sigmas, timesteps,
    hooks: {
      beforeStep: () => stages.beginStep(),
      afterStep: async (i, x) => {
        stages.endStep(i + 1, req.steps);
        await dump?.(`latents_${i}`, x, [1, shape.frames, shape.channels, shape.height, shape.width]);
      },
    },
  }), { step: 0, totalSteps: req.steps });

  const chosen = input.decodeChunkSize !== undefined || manifest.defaults.decodeChunkSize !== undefined;
  const decoded = await stages.run('decode', () => decodeLatents({
    vaeDecoder, manifest, latents, shape, decodeChunkSize: req.decodeChunkSize, chosen,
    device: s.device, signal: o.signal, log, dump,
  }));

  let outputPath = '';
  if (!o.skipVideo) {
    outputPath = await stages.run('video', () => writeVideo(decoded.frames, {
      width: W, height: H, fps: req.fps, format: req.format, signal: o.signal,
      output: req.output ?? defaultOutputPath(typeof req.image === 'string' ? req.image : undefined, req.format, req.seed),
    }));
  }
  const t = stages.timings;
  return {
    outputPath, format: req.format, seed: req.seed, backend: 'local',
    timings: {
      preprocess: t.preprocess ?? 0, encode: t.encode ?? 0, denoise: t.denoise ?? 0, decode: t.decode ?? 0,
      video: t.video ?? 0, total: performance.now() - tStart,
    },
    stepTimings: stages.stepTimings,
    metadata: {
      provider: s.device.provider, fallbackReason: s.device.fallbackReason, decodeChunkSize: decoded.chunkSize,
      width: W, height: H, frames: req.frames,
    },
    frames: decoded.frames, width: W, height: H, fps: req.fps, request: req,
  };
}
