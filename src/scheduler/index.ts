/**
 * The sampler of the SVD pipeline: diffusers' EulerDiscreteScheduler (Karras sigmas, v-prediction,
 * continuous timesteps) and the per-frame CFG ramp. Pure functions on numbers and Float32Array; no I/O.
 *
 * Typical loop (docs/pipeline.md §1):
 *   const { sigmas, timesteps, initNoiseSigma } = setTimesteps(cfg, steps);
 *   latents = noise · initNoiseSigma
 *   for i: v = applyGuidance(unet(scaleModelInput(latents, σ_i) ⊕ image latents, timesteps[i]), ramp, F, C·h·w)
 *          latents = eulerStep(latents, v, sigmas[i], sigmas[i+1], cfg.predictionType)
 */
export {
  parseSchedulerConfig,
  type SchedulerConfig,
  type PredictionType,
  type TimestepSpacing,
  type TimestepType,
  type BetaSchedule,
} from './config.js';
export {
  sigmasKarras,
  timestepsContinuous,
  timestepsDiscrete,
  trainingSigmas,
  initNoiseSigma,
  setTimesteps,
  linspaceFloat32,
  type KarrasOptions,
} from './sigmas.js';
export { inputDivisor, cIn, cSkip, cOut, scaleModelInput, predictOriginalSample, eulerStep } from './euler.js';
export { guidanceRamp, applyGuidance } from './guidance.js';
