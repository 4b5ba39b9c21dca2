/**
 * Latent blending used by the motion controls, all in the latent space of the denoising loop
 * (latents = x0 + σ·ε in the Karras/EDM parametrisation the Euler scheduler uses, docs/pipeline.md §5):
 *
 * - `blendStillRegion`: the still part of every frame is pulled towards the conditioning image's latent
 *   noised to the current σ (inpainting-style latent blending, docs/motion-controls.md §1).
 * - `steerTowardsFrame`: the clean estimate of the last frames is moved towards a target frame's clean
 *   estimate, keeping each frame's own noise (the loop closure, §3).
 *
 * Layout everywhere: latents [1, F, C, h, w] flattened, one frame = C·plane values, plane = h·w.
 */

export interface LatentLayout {
  frames: number;
  channels: number;
  /** h·w */
  plane: number;
}

/**
 * In place: x[f,c,p] ← (1 − m[p])·x[f,c,p] + m[p]·(z[c,p] + σ·ε[c,p]) for every frame f.
 * `target` z is the clean image latent [C, h, w] (already multiplied by the VAE scaling factor), `noise` ε one
 * frame of unit noise [C, h, w] shared by all frames, so the still region is the same in every frame.
 * At σ = 0 (after the last step) a fully still cell is exactly z.
 */
export function blendStillRegion(
  latents: Float32Array,
  target: Float32Array,
  noise: Float32Array,
  sigma: number,
  weights: Float32Array,
  layout: LatentLayout,
): void {
  const { frames, channels, plane } = layout;
  if (target.length !== channels * plane || noise.length !== channels * plane || weights.length !== plane) {
    throw new RangeError(
      `still-region blend: target ${target.length}, noise ${noise.length}, mask ${weights.length} values ` +
        `for C=${channels}, plane=${plane}`,
    );
  }
  for (let f = 0; f < frames; f++) {
    const base = f * channels * plane;
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < plane; p++) {
        const m = weights[p];
        if (m === 0) continue;
        const i = c * plane + p;
        const still = target[i] + sigma * noise[i];
        latents[base + i] = m === 1 ? still : (1 - m) * latents[base + i] + m * still;
      }
    }
  }
}

/**
 * Loop weights for the last `count` of `frames` frames: w = j/(count+1) for j = 1..count, 0 before. The
 * last frame is not the target itself (w < 1): the frame after it, when the video wraps, is.
 */
export function loopWeights(frames: number, count: number): Float32Array /* [F] */ {
  const n = Math.max(0, Math.min(count, frames - 1));
  const w = new Float32Array(frames);
  for (let j = 1; j <= n; j++) w[frames - n - 1 + j] = j / (n + 1);
  return w;
}

/** How many final frames the loop closure steers: a third of the clip, at least 1, at most F − 1. */
export function loopFrameCount(frames: number): number {
  return Math.max(0, Math.min(frames - 1, Math.max(1, Math.round(frames / 3))));
}

/**
 * In place: x[f] ← x[f] + w[f]·(D_target − D[f]) — the clean estimate D of frame f is moved towards
 * `target` (one frame [C, h, w]) while its noise x − D is kept. With D taken after the Euler step
 * (x = D + σ_next·d), the result is still a sample at σ_next; at σ = 0 it is (1 − w)·D[f] + w·target.
 */
export function steerTowardsFrame(
  latents: Float32Array,
  denoised: Float32Array,
  target: Float32Array,
  weights: Float32Array,
  layout: LatentLayout,
): void {
  const per = layout.channels * layout.plane;
  if (target.length !== per || weights.length !== layout.frames || denoised.length !== latents.length) {
    throw new RangeError(
      `loop steer: target ${target.length} (want ${per}), weights ${weights.length} (want ${layout.frames})`,
    );
  }
  for (let f = 0; f < layout.frames; f++) {
    const w = weights[f];
    if (w === 0) continue;
    const base = f * per;
    for (let i = 0; i < per; i++) latents[base + i] += w * (target[i] - denoised[base + i]);
  }
}

/** One frame [C, h, w] of a [F, C, h, w] tensor (a copy). */
export function frameOf(latents: Float32Array, frame: number, layout: LatentLayout): Float32Array {
  const per = layout.channels * layout.plane;
  return latents.slice(frame * per, (frame + 1) * per);
}
