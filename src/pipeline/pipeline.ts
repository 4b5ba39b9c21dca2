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
import { cameraIssues, cameraPoseBatch } from '../camera/request.js';
import { InvalidRequestError, type FieldIssue } from '../errors.js';
import {
  parseRequest,
  resolveRequest,
  MAX_SEED,
  type GenerationRequestInput,
  type ResolvedRequest,
} from '../request/schema.js';
import type { BackendResult, ProgressEvent, RunOptions } from '../request/types.js';
import type { ModelManifest } from '../models/manifest.js';
import { setTimesteps } from '../scheduler/index.js';
import { writeVideo, defaultOutputPath, FrameQueue } from '../video/index.js';
import { frameOf, loopFrameCount, loopWeights, type LatentLayout } from '../motion/blend.js';
import { ClipJoiner, clipSeed, conditioningFrameIndex, lastClipFrames, type ClipPlan } from '../motion/clips.js';
import { createMotionControls, type LoopClosure } from '../motion/controls.js';
import { compositeStill, loadMaskImage, motionMaskGrids } from '../motion/mask.js';
import { autoCfgBatch, autoDecodeChunk, type MemoryContext } from './admission.js';
import { buildConditioning, addedTimeIds, repeatRows } from './conditioning.js';
import { decodeLatents, fixedDecoderRule } from './decode.js';
import { cfgSplitExact, chooseCfgBatch, denoise, unetInputDims } from './denoise.js';
import { encodeImage, frameConditioningImage, preprocessImage, type ConditioningImage } from './encode.js';
import { drawNoise, frameSize, latentShape, prepareLatents, type LatentShape } from './latents.js';
import { openModelSessions, type ModelRunner, type ModelSessions, type ModelSessionsOptions } from './session.js';
import { StageRunner } from './stages.js';
import type { DebugDump, InjectedNoise } from './debug.js';

export interface PipelineOptions extends ModelSessionsOptions {
  /** Model directory (see README, "Model directory"). */
  modelDir: string;
  /** Informational messages (fallbacks, retries). Default: stderr. */
  log?: (message: string) => void;
  /**
   * Release each model's session once a generation is done with it (encoders after encoding, the UNet before
   * decoding, the decoder at the end), so that peak memory is the largest stage's, not the sum of all four
   * (bench/RESULTS.md §10). The next generation opens them again: for one-shot pipelines (`svd generate`).
   */
  releaseBetweenStages?: boolean;
}

export interface GenerateOptions extends RunOptions {
  /** Use these unit-normal draws instead of the seeded generator (debugging contract, `--noise`). */
  noise?: InjectedNoise;
  /** Receives every intermediate (debugging contract, `--dump`). */
  dump?: DebugDump;
  /** Skip writing a video; the frames are still returned. */
  skipVideo?: boolean;
  /**
   * Return the frames in the result (default true). `false` keeps memory at one clip's worth for chained
   * clips: frames then only go to the video file.
   */
  keepFrames?: boolean;
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
      const result = await runPipeline(sessions, request, opts, log, options.releaseBetweenStages === true);
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
export function resolveForModel(
  input: GenerationRequestInput,
  manifest: ModelManifest,
  seed = () => randomInt(0, MAX_SEED),
  memory?: MemoryContext,
): ResolvedRequest {
  const req = resolveRequest(parseRequest(input), manifest.defaults, seed);
  const issues: FieldIssue[] = [];
  const cell = manifest.vae.spatialScaleFactor * manifest.unet.latentMultiple;
  for (const field of ['width', 'height'] as const) {
    if (req[field] % cell !== 0)
      issues.push({ field, value: req[field], message: `must be a multiple of ${cell} for this model` });
  }
  issues.push(...cameraIssues(req, { variant: manifest.variant, cameraPoseDim: manifest.unet.cameraPoseDim }));
  const asked = typeof input.decodeChunkSize === 'number' ? input.decodeChunkSize : undefined;
  const fixed = fixedDecoderRule(manifest.vae.decoderFixedFrames, req.frames, asked);
  issues.push(...fixed.issues);
  if (req.cfgBatch === 'split' && !cfgSplitExact(manifest)) {
    issues.push({
      field: 'cfgBatch',
      value: req.cfgBatch,
      message:
        "this model's UNet mixes the two videos of the CFG batch (not built with the per-video temporal " +
        'context); use joint',
    });
  }
  if (issues.length) throw new InvalidRequestError(issues);
  if (memory) req.cfgBatch = autoCfgBatch(req, manifest, memory);
  if (fixed.decodeChunkSize !== undefined) req.decodeChunkSize = fixed.decodeChunkSize;
  else if (req.decodeChunkAuto) req.decodeChunkSize = autoDecodeChunk(req, manifest, memory);
  return req;
}

async function runPipeline(
  s: ModelSessions,
  input: GenerationRequestInput,
  o: GenerateOptions,
  log: (m: string) => void,
  releaseBetweenStages: boolean,
): Promise<GenerateResult> {
  const { manifest } = s.model;
  const { vaeEncoder } = s.runners;
  const tStart = performance.now();
  const req = resolveForModel(input, manifest);
  // before any model runs: a trajectory file that cannot be read fails here
  const cameraPose =
    manifest.unet.cameraPoseDim !== null ? cameraPoseBatch(req, req.frames, 1) : undefined; /* [1, F, 12] */
  const plan: ClipPlan = {
    clips: req.clips,
    overlap: req.overlap,
    framesPerClip: req.frames,
    totalFrames: req.totalFrames,
  };
  let clip = 0;
  const stages = new StageRunner(o.signal, o.onProgress && ((e) => o.onProgress!(clipProgress(e, clip, plan.clips))));
  const dump = o.dump;

  const image = await stages.run('preprocess', () => preprocessImage(req, manifest, o.signal));
  const { width: W, height: H } = image;
  const shape = latentShape(manifest, req.frames, W, H);
  const schedule = setTimesteps(manifest.scheduler, req.steps);
  await dump?.('added_time_ids', addedTimeIds(req.fps, req.motionBucketId, req.condAug), [1, 3]);
  await dump?.('sigmas', schedule.sigmas, [schedule.sigmas.length]);
  await dump?.('timesteps', schedule.timesteps, [schedule.timesteps.length]);
  const mask =
    req.mask === undefined
      ? undefined
      : await stages.run('encode', () => prepareMotionMask(req, image, shape, manifest, vaeEncoder, o.signal));

  // Chained clips (docs/motion-controls.md §2): frames go to the writer as each clip ends; only K are held back.
  const queue = o.skipVideo ? undefined : new FrameQueue();
  const stem = typeof req.image === 'string' ? req.image : undefined;
  const outputPath = req.output ?? defaultOutputPath(stem, req.format, req.seed);
  const writing =
    queue &&
    writeVideo(queue, {
      width: W,
      height: H,
      fps: req.fps,
      format: req.format,
      signal: o.signal,
      output: outputPath,
    });
  writing?.catch(() => {}); // awaited below; this only keeps an early failure from being reported as unhandled
  const joiner = new ClipJoiner(plan.overlap, plan.totalFrames);
  const kept: Uint8Array[] = [];
  const emit = (frames: Uint8Array[]) => {
    queue?.push(frames);
    if (o.keepFrames !== false) kept.push(...frames);
  };
  const clipSeeds: number[] = [];
  let chunkSize = 0;
  let cfgBatch: 'joint' | 'split' = 'joint';
  try {
    let conditioning = image;
    let previousFrames: Uint8Array[] = [];
    let firstFrameLatent: Float32Array | undefined;
    for (clip = 0; clip < plan.clips; clip++) {
      const last = clip === plan.clips - 1;
      const seed = clipSeed(req.seed, clip);
      clipSeeds.push(seed);
      if (clip > 0) {
        const frame = previousFrames[conditioningFrameIndex(plan.framesPerClip, plan.overlap)];
        conditioning = await stages.run('preprocess', () => frameConditioningImage(frame, W, H, manifest));
      }
      const loop = req.loop && last ? { weights: loopTail(plan, req.frames), target: firstFrameLatent } : undefined;
      const result = await runClip(s, {
        req,
        input,
        image: conditioning,
        shape,
        schedule,
        seed,
        mask,
        loop,
        cameraPose,
        stages,
        log,
        first: clip === 0,
        release: releaseBetweenStages && last,
        noise: clip === 0 ? o.noise : undefined,
        dump: clip === 0 ? dump : undefined,
        signal: o.signal,
      });
      chunkSize = result.chunkSize;
      cfgBatch = result.cfgBatch;
      if (mask) compositeStill(result.frames, image.rgb, mask.pixels);
      if (req.loop && clip === 0 && plan.clips > 1) firstFrameLatent = frameOf(result.latents, 0, latentLayout(shape));
      previousFrames = result.frames;
      emit(joiner.push(result.frames));
    }
    emit(joiner.finish());
    queue?.end();
  } catch (err) {
    queue?.fail(err);
    await writing?.catch(() => {});
    throw err;
  }
  const written = writing ? await stages.run('video', () => writing) : '';

  const t = stages.timings;
  return {
    outputPath: written,
    format: req.format,
    seed: req.seed,
    backend: 'local',
    timings: {
      preprocess: t.preprocess ?? 0,
      encode: t.encode ?? 0,
      denoise: t.denoise ?? 0,
      decode: t.decode ?? 0,
      video: t.video ?? 0,
      total: performance.now() - tStart,
    },
    stepTimings: stages.stepTimings,
    metadata: {
      provider: s.device.provider,
      fallbackReason: s.device.fallbackReason,
      decodeChunkSize: chunkSize,
      cfgBatch,
      width: W,
      height: H,
      frames: plan.totalFrames,
      ...(plan.clips > 1
        ? { clips: plan.clips, overlap: plan.overlap, framesPerClip: plan.framesPerClip, clipSeeds }
        : {}),
      ...(mask ? { maskCoverage: Number(mask.coverage.toFixed(4)) } : {}),
      ...(req.loop ? { loop: true } : {}),
    },
    frames: kept,
    width: W,
    height: H,
    fps: req.fps,
    request: req,
  };
}

interface ClipArgs {
  req: ResolvedRequest;
  input: GenerationRequestInput;
  image: ConditioningImage;
  shape: LatentShape;
  schedule: ReturnType<typeof setTimesteps>;
  seed: number;
  mask?: MotionMask;
  loop?: LoopClosure;
  /** MotionCtrl models: the clip's relative camera poses [1, F, 12] (every clip repeats the motion). */
  cameraPose?: Float32Array;
  stages: StageRunner;
  log: (m: string) => void;
  first: boolean;
  /** Release each session once this clip is done with it (the last clip of a generation). */
  release: boolean;
  noise?: InjectedNoise;
  dump?: DebugDump;
  signal?: AbortSignal;
}

/** One UNet run of F frames: noise, encode, conditioning, initial latents, denoise, decode. */
async function runClip(
  s: ModelSessions,
  a: ClipArgs,
): Promise<{ frames: Uint8Array[]; latents: Float32Array; chunkSize: number; cfgBatch: 'joint' | 'split' }> {
  const { manifest } = s.model;
  const { imageEncoder, vaeEncoder, unet, vaeDecoder } = s.runners;
  const { req, shape, stages, dump } = a;
  const { sigmas, timesteps, initNoiseSigma } = a.schedule;
  const noise = drawNoise(a.seed, a.image, shape, a.noise);

  const { embeds, imageLatent } = await stages.run('encode', () =>
    encodeImage({ imageEncoder, vaeEncoder }, a.image, req.condAug, noise.augNoise, shape, dump),
  );
  if (a.release) await Promise.all([imageEncoder.release(), vaeEncoder.release()]);

  const conditioning = buildConditioning(embeds, req);
  if (a.cameraPose) conditioning.cameraPose = repeatRows(a.cameraPose, conditioning.batch);
  let initial = prepareLatents(noise.initNoise, initNoiseSigma);
  // The motion controls exist only when asked for: a plain request runs exactly as diffusers does.
  const layout = latentLayout(shape);
  const controls =
    a.mask || a.loop
      ? createMotionControls({
          sigmas,
          layout,
          loop: a.loop,
          still: a.mask && {
            weights: a.mask.latent,
            target: a.mask.target,
            noise: noise.initNoise.slice(0, frameSize(shape)),
          },
        })
      : undefined;
  if (controls) initial = controls.initial(initial, initNoiseSigma);

  const cfg = chooseCfgBatch({
    asked: req.cfgBatch,
    guided: conditioning.guided,
    exact: cfgSplitExact(manifest),
    oversized:
      unet.guard &&
      ((rows) => {
        const { inChannels, cameraPoseDim } = manifest.unet;
        const dims = unetInputDims(shape, inChannels, manifest.imageEncoder.embedDim, rows, cameraPoseDim);
        return unet.guard!.oversized(dims).length;
      }),
  });
  if (a.first && cfg.mode === 'split' && req.cfgBatch === 'auto') {
    a.log(`the UNet runs the CFG batch as two batch-1 calls (same result): ${cfg.reason}`);
  }
  const latents = await stages.run(
    'denoise',
    () =>
      denoise({
        unet,
        unetInChannels: manifest.unet.inChannels,
        predictionType: manifest.scheduler.predictionType,
        latents: initial,
        imageLatent,
        shape,
        conditioning,
        sigmas,
        timesteps,
        cfgBatch: cfg.mode,
        hooks: {
          beforeStep: () => stages.beginStep(),
          adjustLatents: controls && ((i, x) => controls.afterStep(i, x)),
          afterStep: async (i, x) => {
            stages.endStep(i + 1, req.steps);
            await dump?.(`latents_${i}`, x, [1, shape.frames, shape.channels, shape.height, shape.width]);
          },
        },
      }),
    { step: 0, totalSteps: req.steps },
  );
  if (a.release) await unet.release();

  const chosen = a.input.decodeChunkSize !== undefined || manifest.defaults.decodeChunkSize !== undefined;
  const decoded = await stages.run('decode', () =>
    decodeLatents({
      vaeDecoder,
      manifest,
      latents,
      shape,
      decodeChunkSize: req.decodeChunkSize,
      chosen,
      device: s.device,
      signal: a.signal,
      log: a.log,
      dump,
    }),
  );
  if (a.release) await vaeDecoder.release();
  return { frames: decoded.frames, latents, chunkSize: decoded.chunkSize, cfgBatch: cfg.mode };
}

interface MotionMask {
  /** Still weights on the latent grid [h·w] and on the video's pixels [H·W]. */
  latent: Float32Array;
  pixels: Float32Array;
  /** The clean image latent [C, h, w] times the VAE scaling factor. */
  target: Float32Array;
  coverage: number;
}

/** The mask on both grids, and the still target: the VAE latent of the image without augmentation noise. */
async function prepareMotionMask(
  req: ResolvedRequest,
  image: ConditioningImage,
  shape: LatentShape,
  manifest: ModelManifest,
  vaeEncoder: ModelRunner,
  signal?: AbortSignal,
): Promise<MotionMask> {
  const maskImage = await loadMaskImage(req.mask!, { signal });
  const scale = manifest.vae.spatialScaleFactor;
  const grids = motionMaskGrids(maskImage, image.source, req, shape.width, shape.height, scale);
  const sample = vaeEncoder.tensor('sample', image.vaePixels, [1, 3, image.height, image.width]);
  const clean = (await vaeEncoder.run({ sample })).data;
  const target = new Float32Array(frameSize(shape));
  for (let i = 0; i < target.length; i++) target[i] = clean[i] * manifest.vae.scalingFactor;
  return { latent: grids.latent.weights, pixels: grids.pixels.weights, target, coverage: grids.latent.coverage };
}

/** The loop weights of the last clip: over the frames that reach the video (a `duration` may trim some). */
function loopTail(plan: ClipPlan, frames: number): Float32Array {
  const used = lastClipFrames(plan);
  const weights = new Float32Array(frames);
  weights.set(loopWeights(used, loopFrameCount(used)));
  return weights;
}

function latentLayout(shape: LatentShape): LatentLayout {
  return { frames: shape.frames, channels: shape.channels, plane: shape.height * shape.width };
}

/** With chained clips, progress names the clip and `fraction` of a denoising step covers all clips. */
function clipProgress(e: ProgressEvent, clip: number, clips: number): ProgressEvent {
  if (clips === 1) return e;
  const fraction = e.stage === 'denoise' && e.fraction !== undefined ? (clip + e.fraction) / clips : e.fraction;
  return { ...e, clip: clip + 1, totalClips: clips, fraction };
}
