/**
 * Multi-head attention from primitives (MatMul / Softmax), and the diffusers `Attention` module as the
 * VAE uses it (group norm in front, residual connection around).
 */
import type { GraphBuilder, Value } from '../graph.js';
import { add, groupNorm, linear, reshape, shapeOf, transpose } from './basic.js';

export interface AttentionOptions {
  heads: number;
  headDim: number;
  /** Softmax scale; default 1/sqrt(headDim). */
  scale?: number;
  /**
   * 'primitive' (default): MatMul/Softmax, runs everywhere.
   * 'mha': com.microsoft MultiHeadAttention (lets the CUDA EP use its fused kernels; also runs on CPU in
   * fp32); the builder must import the 'com.microsoft' opset.
   */
  impl?: 'primitive' | 'mha';
  /** Compute the softmax in float32 even in an fp16 graph (diffusers' upcast_softmax). */
  softmaxFloat32?: boolean;
}

/**
 * softmax(q·kᵀ·scale)·v with q [B, Sq, H·D], k and v [B, Sk, H·D] → [B, Sq, H·D].
 * The scale is applied to q before the product, which keeps fp16 scores in range.
 */
export function attention(g: GraphBuilder, q: Value, k: Value, v: Value, o: AttentionOptions): Value {
  const scale = o.scale ?? 1 / Math.sqrt(o.headDim);
  if (o.impl === 'mha') {
    if (!g.opsets['com.microsoft']) throw new Error(`graph ${g.name}: impl 'mha' needs the com.microsoft opset`);
    return g.op('MultiHeadAttention', [q, k, v], { num_heads: o.heads, scale: { kind: 'float', value: scale } }, { domain: 'com.microsoft', name: 'mha' });
  }
  const split = [0, 0, o.heads, o.headDim];
  const qh = transpose(g, reshape(g, g.op('Mul', [q, g.scalar(scale, q.dtype)], {}, { name: 'q_scaled' }), split), [0, 2, 1, 3]); // [B,H,Sq,D]
  const kt = transpose(g, reshape(g, k, split), [0, 2, 3, 1]); // [B,H,D,Sk]
  const vh = transpose(g, reshape(g, v, split), [0, 2, 1, 3]); // [B,H,Sk,D]
  let scores = g.op('MatMul', [qh, kt], {}, { name: 'scores' });
  const upcast = o.softmaxFloat32 && scores.dtype !== 'float32';
  if (upcast) scores = g.cast(scores, 'float32');
  let probs = g.op('Softmax', [scores], { axis: -1 });
  if (upcast) probs = g.cast(probs, q.dtype);
  const out = g.op('MatMul', [probs, vh], {}, { name: 'attn' }); // [B,H,Sq,D]
  return reshape(g, transpose(g, out, [0, 2, 1, 3]), [0, 0, o.heads * o.headDim]);
}

/**
 * diffusers `Attention` as used by the VAE mid blocks (self-attention over the h·w pixels of a
 * [N, C, h, w] map): GroupNorm (`group_norm`), q/k/v Linear with bias (`to_q`, `to_k`, `to_v`),
 * `to_out.0`, residual add; output_scale 1.
 */
export function spatialSelfAttention(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  o: { channels: number; heads: number; groups?: number; eps: number; impl?: 'primitive' | 'mha'; softmaxFloat32?: boolean },
): Value {
  const c = o.channels;
  const h = groupNorm(g, x, `${prefix}.group_norm`, { channels: c, groups: o.groups, eps: o.eps });
  const tokens = transpose(g, reshape(g, h, [0, c, -1]), [0, 2, 1]); // [N, hw, C]
  const q = linear(g, tokens, `${prefix}.to_q`, c, c);
  const k = linear(g, tokens, `${prefix}.to_k`, c, c);
  const v = linear(g, tokens, `${prefix}.to_v`, c, c);
  const a = attention(g, q, k, v, { heads: o.heads, headDim: c / o.heads, impl: o.impl, softmaxFloat32: o.softmaxFloat32 });
  const out = linear(g, a, `${prefix}.to_out.0`, c, c);
  const back = reshape(g, transpose(g, out, [0, 2, 1]), shapeOf(g, x)); // [N, C, h, w]
  return add(g, back, x, `${prefix}/residual`);
}
