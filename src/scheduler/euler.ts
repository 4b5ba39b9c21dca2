/**
 * One step of diffusers' EulerDiscreteScheduler with SVD's settings (docs/pipeline.md §5.4–5.5): no churn (γ = 0, so
 * σ̂ = σ and no noise is drawn), float32 arithmetic reproduced with Math.fround after every operation, in
 * diffusers' order, so results agree with torch to the last bit or so.
 *
 * Shapes are free: every function works element-wise on latents of any layout ([1,F,4,h,w] in SVD).
 */
import type { PredictionType } from './config.js';

const f = Math.fround;

/** sqrt(σ² + 1) in float32: what scale_model_input divides by. */
export function inputDivisor(sigma: number): number {
  return f(Math.sqrt(f(f(sigma * sigma) + 1)));
}

/** c_in = 1/sqrt(σ²+1): the UNet sees latents · c_in (docs/pipeline.md §5.4). */
export function cIn(sigma: number): number {
  return f(1 / inputDivisor(sigma));
}

/** c_skip = 1/(σ²+1): weight of the noisy sample in the denoised estimate (v_prediction). */
export function cSkip(sigma: number): number {
  return f(1 / f(f(sigma * sigma) + 1));
}

/** c_out = −σ/sqrt(σ²+1): weight of the model output v in the denoised estimate (v_prediction). */
export function cOut(sigma: number): number {
  return f(-sigma / inputDivisor(sigma));
}

/** scale_model_input: `latents / sqrt(σ²+1)` (a new array; the image latents are concatenated after this). */
export function scaleModelInput(latents: Float32Array, sigma: number): Float32Array {
  const d = inputDivisor(sigma);
  const out = new Float32Array(latents.length);
  for (let i = 0; i < out.length; i++) out[i] = latents[i] / d;
  return out;
}

/**
 * The denoised estimate D (diffusers' `pred_original_sample`) from the noisy latents x and the guided model output:
 * v_prediction: D = v·(−σ/sqrt(σ²+1)) + x/(σ²+1);  epsilon: D = x − σ·ε.
 */
export function predictOriginalSample(
  latents: Float32Array,
  modelOutput: Float32Array,
  sigma: number,
  predictionType: PredictionType = 'v_prediction',
): Float32Array {
  checkLengths(latents, modelOutput);
  const out = new Float32Array(latents.length);
  const denoise = denoiser(sigma, predictionType);
  for (let i = 0; i < out.length; i++) out[i] = denoise(latents[i], modelOutput[i]);
  return out;
}

/**
 * One Euler step from σ to σ_next: d = (x − D)/σ, x_next = x + d·(σ_next − σ). Returns the new latents
 * (diffusers' `prev_sample`); at the last step (σ_next = 0) that is D itself up to rounding.
 */
export function eulerStep(
  latents: Float32Array,
  modelOutput: Float32Array,
  sigma: number,
  sigmaNext: number,
  predictionType: PredictionType = 'v_prediction',
): Float32Array {
  checkLengths(latents, modelOutput);
  const s = f(sigma);
  const dt = f(f(sigmaNext) - s);
  const denoise = denoiser(s, predictionType);
  const out = new Float32Array(latents.length);
  for (let i = 0; i < out.length; i++) {
    const x = latents[i];
    const derivative = f(f(x - denoise(x, modelOutput[i])) / s);
    out[i] = x + f(derivative * dt);
  }
  return out;
}

/** D(x, model output) for one element, with the σ-dependent factors computed once. */
function denoiser(sigma: number, predictionType: PredictionType): (x: number, m: number) => number {
  const s = f(sigma);
  if (predictionType === 'epsilon') return (x, eps) => f(x - f(s * eps));
  const out = cOut(s);
  const skipDivisor = f(f(s * s) + 1);
  return (x, v) => f(f(v * out) + f(x / skipDivisor));
}

function checkLengths(latents: Float32Array, modelOutput: Float32Array): void {
  if (latents.length !== modelOutput.length) {
    throw new RangeError(`model output has ${modelOutput.length} values, latents have ${latents.length}`);
  }
}
