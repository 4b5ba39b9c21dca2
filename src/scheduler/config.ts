/**
 * The diffusers `scheduler/scheduler_config.json` of an SVD checkpoint, read into the few fields the
 * EulerDiscreteScheduler port uses (docs/pipeline.md §5.1). Settings we do not implement are refused with an
 * error naming the key, rather than silently sampling with a different schedule.
 */
import { ModelFormatError } from '../errors.js';

export type PredictionType = 'v_prediction' | 'epsilon';
export type TimestepSpacing = 'leading' | 'linspace' | 'trailing';
export type TimestepType = 'continuous' | 'discrete';
export type BetaSchedule = 'linear' | 'scaled_linear';

/** What `sigmasKarras`, the timestep functions and `eulerStep` need. Defaults are diffusers' defaults. */
export interface SchedulerConfig {
  predictionType: PredictionType;
  sigmaMin: number;
  sigmaMax: number;
  /** Karras ρ; diffusers hard-codes 7. */
  rho: number;
  /** Only decides `init_noise_sigma` (docs/pipeline.md §5.3). */
  timestepSpacing: TimestepSpacing;
  /** `continuous` (t = 0.25·ln σ) applies only with v_prediction, as in diffusers; otherwise discrete. */
  timestepType: TimestepType;
  /** The training noise table, used only for discrete timesteps. */
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
}

/** Keys whose value must be the one given here (diffusers default or what SVD uses), or absent where noted. */
const REQUIRED_VALUES: [key: string, allowed: unknown, absentOk: boolean][] = [
  ['use_karras_sigmas', true, false],
  ['final_sigmas_type', 'zero', true],
  ['use_exponential_sigmas', false, true],
  ['use_beta_sigmas', false, true],
  ['rescale_betas_zero_snr', false, true],
  ['trained_betas', null, true],
  ['interpolation_type', 'linear', true],
];

/**
 * Validates a parsed `scheduler_config.json` and returns the typed config.
 * `source` (the file path) is named in errors. Throws ModelFormatError naming the key and what is allowed.
 */
export function parseSchedulerConfig(json: unknown, source: string): SchedulerConfig {
  const fail = (key: string, allowed: string, got: unknown): never => {
    throw new ModelFormatError(source, `${key} must be ${allowed} (got ${JSON.stringify(got)})`);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('(file)', 'a JSON object', json);
  const c = json as Record<string, unknown>;
  if (c._class_name !== undefined && c._class_name !== 'EulerDiscreteScheduler')
    fail('_class_name', '"EulerDiscreteScheduler"', c._class_name);
  for (const [key, allowed, absentOk] of REQUIRED_VALUES) {
    if (c[key] === undefined && absentOk) continue;
    if (c[key] !== allowed) fail(key, JSON.stringify(allowed) + (absentOk ? ' or absent' : ''), c[key]);
  }
  const oneOf = <T extends string>(key: string, options: readonly T[], fallback: T): T => {
    const v = c[key] ?? fallback;
    if (!options.includes(v as T)) fail(key, `one of ${options.map((o) => `"${o}"`).join(', ')}`, v);
    return v as T;
  };
  const positive = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(key, 'a positive number', v);
    return v as number;
  };
  const cfg: SchedulerConfig = {
    predictionType: oneOf('prediction_type', ['v_prediction', 'epsilon'] as const, 'epsilon'),
    sigmaMin: positive('sigma_min'),
    sigmaMax: positive('sigma_max'),
    rho: 7,
    timestepSpacing: oneOf('timestep_spacing', ['leading', 'linspace', 'trailing'] as const, 'linspace'),
    timestepType: oneOf('timestep_type', ['continuous', 'discrete'] as const, 'discrete'),
    numTrainTimesteps: positive('num_train_timesteps', 1000),
    betaStart: positive('beta_start', 0.0001),
    betaEnd: positive('beta_end', 0.02),
    betaSchedule: oneOf('beta_schedule', ['linear', 'scaled_linear'] as const, 'linear'),
  };
  if (!Number.isInteger(cfg.numTrainTimesteps) || cfg.numTrainTimesteps < 2)
    fail('num_train_timesteps', 'a whole number ≥ 2', cfg.numTrainTimesteps);
  if (cfg.sigmaMin >= cfg.sigmaMax) fail('sigma_min', `smaller than sigma_max (${cfg.sigmaMax})`, cfg.sigmaMin);
  return cfg;
}
