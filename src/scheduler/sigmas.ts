/**
 * `EulerDiscreteScheduler.set_timesteps` for SVD's configuration (docs/pipeline.md §5.2–5.3): Karras sigmas,
 * timesteps and the initial noise scale. diffusers builds the sigmas in float64 (numpy) and keeps them
 * as float32; everything after that is float32 torch arithmetic, reproduced here with Math.fround.
 */
import type { BetaSchedule, SchedulerConfig, TimestepSpacing } from './config.js';

const f = Math.fround;

export interface KarrasOptions {
  sigmaMin: number;
  sigmaMax: number;
  rho: number;
}

/**
 * Karras et al. (2022) noise levels from σ_max down to σ_min, then a final 0 (`final_sigmas_type = "zero"`):
 * σ_i = (σ_max^(1/ρ) + i/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ in float64, rounded to float32.
 * Returns n+1 values.
 */
export function sigmasKarras(steps: number, { sigmaMin, sigmaMax, rho }: KarrasOptions): Float32Array /* [steps+1] */ {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a whole number ≥ 1 (got ${steps})`);
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  const out = new Float32Array(steps + 1); // last stays 0
  // numpy.linspace(0, 1, n): i·(1/(n−1)) with the last value forced to exactly 1; n = 1 gives [0].
  const step = steps > 1 ? 1 / (steps - 1) : 0;
  for (let i = 0; i < steps; i++) {
    const ramp = steps > 1 && i === steps - 1 ? 1 : i * step;
    out[i] = (maxInvRho + ramp * (minInvRho - maxInvRho)) ** rho;
  }
  return out;
}

/** Continuous timesteps for v_prediction: t_i = 0.25·ln σ_i in float32, for every σ but the final 0. */
export function timestepsContinuous(sigmas: Float32Array): Float32Array /* [steps] */ {
  const out = new Float32Array(sigmas.length - 1);
  for (let i = 0; i < out.length; i++) out[i] = f(0.25 * f(Math.log(sigmas[i])));
  return out;
}

/**
 * The training noise table σ_k = sqrt((1 − ᾱ_k)/ᾱ_k), k = 0 … N−1 (ascending), from the betas, in float32
 * as diffusers' __init__ computes it. Only discrete timesteps use it.
 */
export function trainingSigmas(cfg: {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
}): Float32Array {
  const n = cfg.numTrainTimesteps;
  const [a, b] =
    cfg.betaSchedule === 'scaled_linear'
      ? [Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd)]
      : [cfg.betaStart, cfg.betaEnd];
  const betas = linspaceFloat32(a, b, n);
  if (cfg.betaSchedule === 'scaled_linear') for (let i = 0; i < n; i++) betas[i] = f(betas[i] * betas[i]);
  const out = new Float32Array(n);
  let cumprod = 1;
  for (let i = 0; i < n; i++) {
    cumprod = f(cumprod * f(1 - betas[i]));
    out[i] = f(Math.sqrt(f(f(1 - cumprod) / cumprod)));
  }
  return out;
}

/**
 * Discrete timesteps (every prediction type other than v_prediction + continuous): each σ is placed on
 * the training table by linear interpolation in log σ between its two neighbours (diffusers `_sigma_to_t`),
 * giving a fractional training-step index; clamped to [0, N−1].
 */
export function timestepsDiscrete(sigmas: Float32Array, training: Float32Array): Float32Array /* [steps] */ {
  const logs = Float32Array.from(training, (s) => Math.log(s));
  const n = logs.length;
  const out = new Float32Array(sigmas.length - 1);
  for (let i = 0; i < out.length; i++) {
    const logSigma = Math.log(Math.max(sigmas[i], 1e-10));
    let low = 0; // the last index whose log σ is ≤ ours, capped at N−2
    for (let k = 0; k < n; k++) if (logSigma - logs[k] >= 0) low = k;
    low = Math.min(low, n - 2);
    const w = Math.min(1, Math.max(0, (logs[low] - logSigma) / (logs[low] - logs[low + 1])));
    out[i] = (1 - w) * low + w * (low + 1);
  }
  return out;
}

/**
 * The factor the unit-normal initial latents are multiplied by (docs/pipeline.md §5.3): max σ for `linspace`/`trailing`
 * spacing, else sqrt(max σ² + 1) in float32 (SVD: "leading" → 700.00073).
 */
export function initNoiseSigma(sigmas: Float32Array, timestepSpacing: TimestepSpacing | string): number {
  let max = -Infinity;
  for (const s of sigmas) if (s > max) max = s;
  if (timestepSpacing === 'linspace' || timestepSpacing === 'trailing') return max;
  return f(Math.sqrt(f(f(max * max) + 1)));
}

/** `set_timesteps(steps)`: sigmas (with the final 0), the timesteps the UNet sees and init_noise_sigma. */
export function setTimesteps(
  cfg: SchedulerConfig,
  steps: number,
): { sigmas: Float32Array; timesteps: Float32Array; initNoiseSigma: number } {
  const sigmas = sigmasKarras(steps, cfg);
  const timesteps =
    cfg.timestepType === 'continuous' && cfg.predictionType === 'v_prediction'
      ? timestepsContinuous(sigmas)
      : timestepsDiscrete(sigmas, trainingSigmas(cfg));
  return { sigmas, timesteps, initNoiseSigma: initNoiseSigma(sigmas, cfg.timestepSpacing) };
}

/**
 * `torch.linspace(start, end, n)` for float32 (ATen's CPU kernel): step = (end − start)/(n−1) in float32;
 * the first half counts up from `start`, the second half down from `end`, so both ends are exact.
 */
export function linspaceFloat32(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (n === 0) return out;
  const s = f(start);
  const e = f(end);
  if (n === 1) {
    out[0] = s;
    return out;
  }
  const step = f(f(e - s) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f(s + f(step * i)) : f(e - f(step * (n - 1 - i)));
  return out;
}
