/**
 * diffusers `embeddings.py` pieces the UNet uses: the sinusoidal `Timesteps` projection and the
 * `TimestepEmbedding` MLP (docs/pipeline.md §7.3).
 */
import type { GraphBuilder, Value } from '../onnx/graph.js';
import { linear, silu } from '../onnx/layers/basic.js';

/**
 * The frequencies ω_k = exp(−ln(10000)·k/half), k = 0..half−1, rounded step by step to float32 the way
 * torch computes them (`-log(10000) * arange(half, float32) / half`, then exp), so t·ω matches bit for bit.
 */
export function sinusoidFrequencies(dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  const step = Math.fround(-Math.log(10000));
  const out = new Float32Array(half);
  for (let k = 0; k < half; k++) out[k] = Math.exp(Math.fround(Math.fround(step * k) / half));
  return out;
}

/**
 * diffusers `Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)`: t [M] (any float dtype) →
 * [cos(t·ω), sin(t·ω)] [M, dim], computed in float32 and cast to the graph dtype (diffusers casts
 * `t_emb` to the sample dtype). An odd `dim` gets a trailing zero column, as in diffusers.
 */
export function timestepSinusoid(g: GraphBuilder, t: Value, dim: number): Value {
  const half = Math.floor(dim / 2);
  const freqs = g.constant(sinusoidFrequencies(dim), [1, half], 'float32');
  const t32 = g.cast(t, 'float32');
  const args = g.op('Mul', [g.op('Unsqueeze', [t32, g.int64([1])]), freqs], {}, { name: 'timestep_args' }); // [M, half]
  const parts = [g.op('Cos', [args]), g.op('Sin', [args])];
  let emb = g.op('Concat', parts, { axis: 1 }, { name: 'timestep_sinusoid' });
  if (dim % 2 === 1)
    emb = g.op('Pad', [emb, g.int64([0, 0, 0, 1])], { mode: 'constant' }, { name: 'timestep_sinusoid_pad' });
  return g.cast(emb, g.dtype);
}

/** diffusers `TimestepEmbedding`: `linear_1` (in → hidden) → SiLU → `linear_2` (hidden → out). */
export function timestepEmbedding(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  o: { inDim: number; hiddenDim: number; outDim?: number },
): Value {
  const h = silu(g, linear(g, x, `${prefix}.linear_1`, o.inDim, o.hiddenDim));
  return linear(g, h, `${prefix}.linear_2`, o.hiddenDim, o.outDim ?? o.hiddenDim);
}
