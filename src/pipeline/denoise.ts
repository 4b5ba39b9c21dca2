/**
 * The denoising loop (diffusers' `for i, t in enumerate(timesteps)`): per step, scale the latents by
 * c_in and concatenate the image latent, run the UNet on the CFG batch, combine the two halves with the
 * per-frame guidance scale, and take one Euler step from σ_i to σ_{i+1}.
 */
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
  hooks?: DenoiseHooks;
}

/** Runs every step and returns the final latents [1, F, C, h, w]. */
export async function denoise(a: DenoiseArgs): Promise<Float32Array> {
  const { unet, shape, conditioning: cond, sigmas, timesteps, hooks } = a;
  const { frames: F, channels: C, height: h, width: w } = shape;
  const context = unet.tensor('encoder_hidden_states', cond.context, [cond.batch, 1, cond.context.length / cond.batch]);
  const timeIds = unet.tensor('added_time_ids', cond.timeIds, [cond.batch, 3]);
  const cameraPose =
    cond.cameraPose &&
    unet.tensor('camera_pose', cond.cameraPose, [cond.batch, F, cond.cameraPose.length / (cond.batch * F)]);
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
    const out = await unet.run({
      sample: unet.tensor('sample', sample, [cond.batch, F, a.unetInChannels, h, w]),
      timestep: unet.tensor('timestep', Float32Array.of(timesteps[i]), []),
      encoder_hidden_states: context,
      added_time_ids: timeIds,
      ...(cameraPose ? { camera_pose: cameraPose } : {}),
    }); /* [B, F, C, h, w] */
    const v = cond.guided ? applyGuidance(out.data, cond.guidance, F, frameSize(shape)) : out.data;
    latents = eulerStep(latents, v, sigma, sigmas[i + 1], a.predictionType);
    if (hooks?.adjustLatents) latents = hooks.adjustLatents(i, latents);
    await hooks?.afterStep?.(i, latents);
  }
  return latents;
}
