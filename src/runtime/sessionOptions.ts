/**
 * The onnxruntime session options each execution provider and graph dtype gets: the one place they are chosen.
 * Callers (benchmarks, `--threads`) layer their own choices over these.
 *
 * Optimization level (bench/RESULTS.md §7, full-size SVD-XT UNet on the CPU EP). The graphs svd-runtime builds
 * store each weight in the dtype and layout its kernel uses (weightStorage 'convert'), so constant folding makes no
 * copies; MLAS prepacking and the NCHWc conv layout of level 'all' replace the weight they read instead of adding to
 * it (1.03× the float32 weight bytes after load and two steps), and they make a step fast: 1.8-2.3 s, against
 * 4.4-6.0 s without NCHWc or at level 'disabled' and 7-10 s without prepacking, for the same memory. float16 graphs
 * on the CPU EP: 'all' is the fastest too but holds float32 copies for the kernels the CPU EP only has in float32
 * (3.7× their bytes on a 2/5-width UNet, against 2.0× at 'basic' or 'disabled', up to 2× slower); CPU graphs are
 * float32 by default, so float16 there is a choice made for other reasons and keeps the fast level.
 *
 * CPU memory (bench/RESULTS.md §10): the arena stays on and memory patterns are off. With patterns, onnxruntime's
 * first run allocates each tensor from the arena, and from the second run on it asks for one block the size of the
 * whole plan, which cannot reuse the first run's free chunks, so the arena holds both (UNet arena 2.0 GiB held for
 * 0.86 GiB in use). Without the arena every tensor is a malloc of its own, and glibc's heaps grew past 4 GiB in the
 * first UNet step where the arena holds 1.0 GiB.
 */
import type { FloatDtype } from '../tensor/float16.js';
import type { Provider } from './device.js';
import type { SessionSpec } from './ortHost.js';

export type SessionDefaults = Partial<Omit<SessionSpec, 'path' | 'executionProviders'>>;

type Level = NonNullable<SessionSpec['graphOptimizationLevel']>;

const OPTIMIZATION_LEVEL: Record<Provider, Record<FloatDtype, Level>> = {
  cpu: { float32: 'all', float16: 'all' },
  // CUDA, WebGPU: the level the pipeline has always used; not re-measured (no GPU here; lavapipe, RESULTS.md §7)
  cuda: { float32: 'all', float16: 'all' },
  webgpu: { float32: 'all', float16: 'all' },
};

/** Memory options of every CPU session (explained above). */
export const CPU_MEMORY_OPTIONS = { enableCpuMemArena: true, enableMemPattern: false } as const;

/** The session options a graph of `dtype` gets on `provider`. */
export function sessionDefaults(provider: Provider, dtype: FloatDtype): SessionDefaults {
  const spec: SessionDefaults = { graphOptimizationLevel: OPTIMIZATION_LEVEL[provider][dtype] };
  if (provider === 'cpu') Object.assign(spec, CPU_MEMORY_OPTIONS);
  // onnxruntime warns at session creation that shape ops stay on CPU: expected, not the user's concern
  if (provider === 'webgpu') spec.logSeverityLevel = 3;
  return spec;
}
