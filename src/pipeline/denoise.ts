/**
 * The denoising loop (diffusers' `for i, t in enumerate(timesteps)`): per step, scale the latents by
 * c_in and concatenate the image latent, run the UNet on the CFG batch, combine the two halves with the
 * per-frame guidance scale, and take one Euler step from σ_i to σ_{i+1}.
 *
 * The CFG batch runs as one batch-2 UNet call (diffusers) or as two batch-1 calls, uncond then cond
 * (`cfgBatch: split`). Every UNet layer treats the videos of a batch independently (convolutions, norms and
 * attentions are per video; the temporal cross-attention context too in a 'per-video' graph), so the split gives
 * the joint result to float rounding with half the activations: what lets a run fit a WebGPU adapter's binding
 * limit (docs/webgpu.md) or less memory.
 */
import type { CfgBatchMode } from '../request/schema.js';
import type { ModelManifest } from '../models/manifest.js';
import type { PredictionType } from '../scheduler/index.js';
import { applyGuidance, eulerStep, inputDivisor } from '../scheduler/index.js';
import { buildUnetSample, type Conditioning } from './conditioning.js';
import { frameSize, type LatentShape } from './latents.js';
import type { ModelRunner } from './session.js';

export interface DenoiseHooks {
  /** Before step `i` (0-based): the abort point. */
  beforeStep?: (i: number) => void;
  /**
   * After the Euler step of step `i`: returns the latents [1, F, C, h, w] the next step starts from
   * (e.g. with known latents blended in). Absent: the Euler step's latents as they are.
   */
  adjustLatents?: (i: number, latents: Float32Array) => Float32Array;
  /** After step `i` with its final latents (progress, debugging dumps). */
  afterStep?: (i: number, latents: Float32Array) => Promise<void> | void;
}

export interface DenoiseArgs {
  unet: ModelRunner;
  /** Channels the UNet takes: latent channels plus image-latent channels. */
  unetInChannels: number;
  predictionType: PredictionType;
  latents: Float32Array /* [1, F, C, h, w], already scaled by the initial sigma */;
  imageLatent: Float32Array /* [1, C, h, w] */;
  shape: LatentShape;
  conditioning: Conditioning;
  sigmas: Float32Array /* [steps + 1] */;
  timesteps: Float32Array /* [steps] */;
  /** One batch-2 UNet call per step, or two batch-1 calls (see chooseCfgBatch). Default joint. */
  cfgBatch?: 'joint' | 'split';
  hooks?: DenoiseHooks;
}

/** Runs every step and returns the final latents [1, F, C, h, w]. */
export async function denoise(a: DenoiseArgs): Promise<Float32Array> {
  const { unet, shape, conditioning: cond, sigmas, timesteps, hooks } = a;
  const { frames: F, channels: C, height: h, width: w } = shape;
  // the UNet calls of one step: the whole batch, or one call per video of it
  const calls = cond.guided && a.cfgBatch === 'split' ? [0, 1] : [undefined];
  const rows = (b: number | undefined) => (b === undefined ? cond.batch : 1);
  const video = (data: Float32Array, b: number | undefined) =>
    b === undefined ? data : data.subarray((b * data.length) / cond.batch, ((b + 1) * data.length) / cond.batch);
  const constant = calls.map((b) => ({
    encoder_hidden_states: unet.tensor('encoder_hidden_states', video(cond.context, b), [
      rows(b),
      1,
      cond.context.length / cond.batch,
    ]),
    added_time_ids: unet.tensor('added_time_ids', video(cond.timeIds, b), [rows(b), 3]),
    ...(cond.cameraPose
      ? {
          camera_pose: unet.tensor('camera_pose', video(cond.cameraPose, b), [
            rows(b),
            F,
            cond.cameraPose.length / (cond.batch * F),
          ]),
        }
      : {}),
  }));
  let latents = a.latents;
  for (let i = 0; i < timesteps.length; i++) {
    hooks?.beforeStep?.(i);
    const sigma = sigmas[i];
    const sample = buildUnetSample({
      latents,
      imageLatent: a.imageLatent,
      frames: F,
      latentChannels: C,
      imageChannels: a.unetInChannels - C,
      plane: h * w,
      inputDivisor: inputDivisor(sigma),
      guided: cond.guided,
    });
    const timestep = unet.tensor('timestep', Float32Array.of(timesteps[i]), []);
    const runCall = async (k: number, b: number | undefined) =>
      (
        await unet.run({
          sample: unet.tensor('sample', video(sample, b), [rows(b), F, a.unetInChannels, h, w]),
          timestep,
          ...constant[k],
        })
      ).data;
    let out: Float32Array; /* [B, F, C, h, w] */
    if (calls.length === 1) {
      out = await runCall(0, calls[0]); // joint: the UNet's output as it is, no copy
    } else {
      out = new Float32Array(cond.batch * F * C * h * w);
      for (const [k, b] of calls.entries()) out.set(await runCall(k, b), (b ?? 0) * F * C * h * w);
    }
    const v = cond.guided ? applyGuidance(out, cond.guidance, F, frameSize(shape)) : out;
    latents = eulerStep(latents, v, sigma, sigmas[i + 1], a.predictionType);
    if (hooks?.adjustLatents) latents = hooks.adjustLatents(i, latents);
    await hooks?.afterStep?.(i, latents);
  }
  return latents;
}

/**
 * Whether splitting the CFG batch gives the joint result: true for our graphs with the per-video temporal context;
 * a 'diffusers-0.27' graph mixes the two videos in its temporal cross-attention, and an imported export's layout
 * is unknown.
 */
export function cfgSplitExact(manifest: ModelManifest): boolean {
  return manifest.source.temporalContextOrder === 'per-video';
}

/** The UNet's input dims for a call of `batch` videos (what the WebGPU binding guard sizes). */
export function unetInputDims(
  shape: LatentShape,
  inChannels: number,
  contextDim: number,
  batch: number,
  cameraPoseDim: number | null,
): Record<string, number[]> {
  const { frames: F, height: h, width: w } = shape;
  return {
    sample: [batch, F, inChannels, h, w],
    timestep: [],
    encoder_hidden_states: [batch, 1, contextDim],
    added_time_ids: [batch, 3],
    ...(cameraPoseDim !== null ? { camera_pose: [batch, F, cameraPoseDim] } : {}),
  };
}

/**
 * How a guided run uses the UNet: as asked (`joint` or `split`; a split on a graph where it is not exact is refused
 * when the request is resolved), and for `auto` a split only when the batch-2 call would exceed the WebGPU binding
 * limit while the batch-1 call fits (the memory check has already turned `auto` into `split` when memory needs it).
 */
export function chooseCfgBatch(c: {
  asked: CfgBatchMode;
  guided: boolean;
  exact: boolean;
  /** Tensors over the binding limit at a batch of `rows` videos (WebGPU); absent elsewhere. */
  oversized?: (rows: number) => number;
}): { mode: 'joint' | 'split'; reason: string } {
  if (!c.guided) return { mode: 'joint', reason: 'no guidance: one video per call' };
  if (c.asked !== 'auto') return { mode: c.asked, reason: 'requested' };
  if (c.exact && c.oversized && c.oversized(2) > 0 && c.oversized(1) === 0) {
    return { mode: 'split', reason: "the batch-2 UNet call would exceed the WebGPU adapter's binding limit" };
  }
  return { mode: 'joint', reason: 'fits' };
}
