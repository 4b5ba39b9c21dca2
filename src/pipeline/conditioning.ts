/**
 * Conditioning tensors of the denoising loop (docs/pipeline.md §2.4, §3, §6, §7.1): the UNet input with the image
 * latent concatenated on channels, the CFG batch (unconditional first, zeros for the image branches) and
 * the micro-conditioning ids. Pure functions on Float32Array.
 */
import { guidanceRamp } from '../scheduler/guidance.js';

/** `[fps − 1, motion_bucket_id, cond_aug]`: SVD was conditioned on fps − 1 (docs/pipeline.md §3). */
export function addedTimeIds(fps: number, motionBucketId: number, condAug: number): Float32Array /* [3] */ {
  return Float32Array.of(fps - 1, motionBucketId, condAug);
}

/** Repeats a row `times` times along a new leading axis: [n] → [times, n]. */
export function repeatRows(row: Float32Array, times: number): Float32Array {
  const out = new Float32Array(row.length * times);
  for (let i = 0; i < times; i++) out.set(row, i * row.length);
  return out;
}

export interface UnetSampleArgs {
  latents: Float32Array /* [1, F, C, h, w] */;
  imageLatent: Float32Array /* [1, Ci, h, w] (posterior mean, not scaled) */;
  frames: number;
  latentChannels: number;
  imageChannels: number;
  plane: number /* h · w */;
  /** sqrt(σ²+1): the noisy latents are divided by it (c_in, docs/pipeline.md §5.4); the image latent is not scaled. */
  inputDivisor: number;
  /** With CFG the batch is [uncond, cond]; the unconditional half gets a zero image latent. */
  guided: boolean;
}

/** Builds the UNet `sample` [B, F, C + Ci, h, w] (B = 2 with CFG) in one pass, no intermediate copies. */
export function buildUnetSample(a: UnetSampleArgs): Float32Array {
  const { frames, latentChannels: c, imageChannels: ci, plane } = a;
  const perFrame = (c + ci) * plane;
  const batch = a.guided ? 2 : 1;
  const out = new Float32Array(batch * frames * perFrame);
  for (let b = 0; b < batch; b++) {
    const withImage = !a.guided || b === 1;
    for (let f = 0; f < frames; f++) {
      const base = (b * frames + f) * perFrame;
      const src = f * c * plane;
      for (let i = 0; i < c * plane; i++) out[base + i] = a.latents[src + i] / a.inputDivisor;
      if (withImage) out.set(a.imageLatent.subarray(0, ci * plane), base + c * plane);
    }
  }
  return out;
}

/** What the UNet is conditioned on besides the latents, for the whole CFG batch. */
export interface Conditioning {
  /** With classifier-free guidance the batch is [uncond, cond]; without it, [cond]. */
  guided: boolean;
  batch: number;
  context: Float32Array /* [B, 1, D]: zeros for uncond, the CLIP image embedding for cond */;
  timeIds: Float32Array /* [B, 3] */;
  /** Guidance scale per frame, linear from min to max (used only when guided). */
  guidance: Float32Array /* [F] */;
  /** MotionCtrl models only: the same relative camera poses for every row of the batch. */
  cameraPose?: Float32Array /* [B, F, 12] */;
}

/**
 * The CFG batch (docs/pipeline.md §6): guidance runs when the largest scale exceeds 1, as in diffusers'
 * `do_classifier_free_guidance`; the unconditional half gets a zero embedding (and a zero image latent,
 * see buildUnetSample); both halves get the same micro-conditioning.
 */
export function buildConditioning(
  embeds: Float32Array /* [1, D] */,
  r: { fps: number; motionBucketId: number; condAug: number; minGuidance: number; maxGuidance: number; frames: number },
): Conditioning {
  const guided = r.maxGuidance > 1;
  const batch = guided ? 2 : 1;
  const context = new Float32Array(batch * embeds.length);
  context.set(embeds, (batch - 1) * embeds.length);
  const timeIds = repeatRows(addedTimeIds(r.fps, r.motionBucketId, r.condAug), batch);
  return { guided, batch, context, timeIds, guidance: guidanceRamp(r.minGuidance, r.maxGuidance, r.frames) };
}
