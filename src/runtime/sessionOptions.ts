/**
 * The onnxruntime session options each execution provider and graph dtype gets: the one place they are chosen.
 * Callers (benchmarks, `--threads`) layer their own choices over these.
 *
 * Why level 'all' everywhere (bench/RESULTS.md §7, full-size SVD-XT UNet on the CPU EP): the graphs built for
 * CPU and CUDA store each weight in the dtype and layout its kernel uses (weightStorage 'convert', builder
 * version 4), so constant folding makes no copies; MLAS prepacking and the NCHWc conv layout then replace the
 * weight they read rather than add to it, and they are what make a step fast (without prepacking a step took
 * 3.3× as long). Lower levels or disabled optimizers saved no memory on converted weights.
 */
import type { FloatDtype } from '../tensor/float16.js';
import type { Provider } from './device.js';
import type { SessionSpec } from './ortHost.js';

export type SessionDefaults = Partial<Omit<SessionSpec, 'path' | 'executionProviders'>>;

/** The session options a graph of `dtype` gets on `provider`. */
export function sessionDefaults(provider: Provider, dtype: FloatDtype): SessionDefaults {
  const spec: SessionDefaults = { graphOptimizationLevel: 'all' };
  // onnxruntime warns at session creation that shape ops stay on CPU: expected, not the user's concern
  if (provider === 'webgpu') spec.logSeverityLevel = 3;
  void dtype; // float16 and float32 graphs measured best with the same options (RESULTS.md §7)
  return spec;
}
