/**
 * Classifier-free guidance with SVD's per-frame linear ramp (docs/pipeline.md §6): frame 0 gets the minimum scale,
 * the last frame the maximum, and the guided output is v_u + g_f·(v_c − v_u). Float32 arithmetic as torch.
 */
import { linspaceFloat32 } from './sigmas.js';

const f = Math.fround;

/** Per-frame guidance scales `torch.linspace(min, max, frames)` in float32. */
export function guidanceRamp(min: number, max: number, frames: number): Float32Array /* [F] */ {
  if (!Number.isInteger(frames) || frames < 1)
    throw new RangeError(`frames must be a whole number ≥ 1 (got ${frames})`);
  return linspaceFloat32(min, max, frames);
}

/**
 * Combines the CFG batch of a UNet output, [2, F, …] with the unconditional half first (diffusers'
 * `noise_pred.chunk(2)`), into the guided output [1, F, …]. `frameSize` is the number of values per
 * frame (channels · h · w).
 */
export function applyGuidance(
  unetOutput: Float32Array /* [2,F,C,h,w] */,
  ramp: Float32Array,
  frames: number,
  frameSize: number,
): Float32Array /* [1,F,C,h,w] */ {
  const half = frames * frameSize;
  if (unetOutput.length !== 2 * half) {
    throw new RangeError(
      `UNet output has ${unetOutput.length} values; expected 2·${frames}·${frameSize} = ${2 * half} (uncond + cond)`,
    );
  }
  if (ramp.length !== frames)
    throw new RangeError(`guidance ramp has ${ramp.length} values; expected one per frame (${frames})`);
  const out = new Float32Array(half);
  for (let fr = 0; fr < frames; fr++) {
    const g = ramp[fr];
    const start = fr * frameSize;
    for (let i = start; i < start + frameSize; i++) {
      const u = unetOutput[i];
      out[i] = u + f(g * f(unetOutput[half + i] - u));
    }
  }
  return out;
}
