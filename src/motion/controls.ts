/**
 * The motion controls as one object the denoising loop calls: `initial` adjusts the starting latents,
 * `afterStep` adjusts the latents after each Euler step (docs/motion-controls.md). With neither a mask nor
 * a loop it is never created, so a plain request runs exactly as before.
 */
import { blendStillRegion, steerTowardsFrame, type LatentLayout } from './blend.js';

export interface StillRegion {
  /** Still weight per latent cell [h·w] (1 = follows the image). */
  weights: Float32Array;
  /** The clean conditioning-image latent [C, h, w], times the VAE scaling factor (the space the loop runs in). */
  target: Float32Array;
  /** One frame of unit noise [C, h, w] shared by all frames. */
  noise: Float32Array;
}

export interface LoopClosure {
  /** Per-frame weight [F] (see loopWeights). */
  weights: Float32Array;
  /** Clean latent of the video's first frame [C, h, w]; absent: this clip's own frame 0, as estimated at each step. */
  target?: Float32Array;
}

export interface MotionControlInput {
  sigmas: Float32Array /* [steps + 1], σ_0 > … > σ_steps = 0 */;
  layout: LatentLayout;
  still?: StillRegion;
  loop?: LoopClosure;
}

export interface MotionControls {
  /** The initial latents (noise · σ_0) with the still region set to the image noised to σ_0 (in place). */
  initial(latents: Float32Array, initNoiseSigma: number): Float32Array;
  /** After step i: latents at σ_{i+1}, adjusted in place and returned. */
  afterStep(i: number, latents: Float32Array): Float32Array;
}

export function createMotionControls(c: MotionControlInput): MotionControls {
  let previous: Float32Array | undefined; // x_i, what went into step i
  const per = c.layout.channels * c.layout.plane;
  return {
    initial(latents, initNoiseSigma) {
      if (c.still) blendStillRegion(latents, c.still.target, c.still.noise, initNoiseSigma, c.still.weights, c.layout);
      previous = latents.slice();
      return latents;
    },
    afterStep(i, latents) {
      if (c.loop && previous) {
        // The Euler step moved x_i = D + σ_i·d to x_{i+1} = D + σ_{i+1}·d,
        // so D = (σ_i·x_{i+1} − σ_{i+1}·x_i) / (σ_i − σ_{i+1}).
        const s = c.sigmas[i],
          t = c.sigmas[i + 1];
        const denoised = new Float32Array(latents.length);
        for (let k = 0; k < latents.length; k++) denoised[k] = (s * latents[k] - t * previous[k]) / (s - t);
        steerTowardsFrame(latents, denoised, c.loop.target ?? denoised.slice(0, per), c.loop.weights, c.layout);
      }
      if (c.still) blendStillRegion(latents, c.still.target, c.still.noise, c.sigmas[i + 1], c.still.weights, c.layout);
      previous = latents.slice();
      return latents;
    },
  };
}
