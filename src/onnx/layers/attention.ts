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
  /**
   * Split the queries into this many equal chunks, each attending to all keys, so no
   * scores tensor is larger than 1/queryChunks of [B, H, Sq, Sk] (WebGPU binds each tensor whole and cannot
   * bind more than its limit, docs/webgpu.md). Sq must be divisible by it at run time; the caller picks a
   * divisor that every allowed size has. Exact: each query's softmax row is unchanged.
   */
  queryChunks?: number;
}

/**
 * softmax(q·kᵀ·scale)·v with q [B, Sq, H·D], k and v [B, Sk, H·D] → [B, Sq, H·D].
 * The scale is applied to q before the product, which keeps fp16 scores in range.
 */
export function attention(g: GraphBuilder, q: Value, k: Value, v: Value, o: AttentionOptions): Value {
  const scale = o.scale ?? 1 / Math.sqrt(o.headDim);
  let attend: (q: Value) => Value;
  if (o.impl === 'mha') {
    if (!g.opsets['com.microsoft']) throw new Error(`graph ${g.name}: impl 'mha' needs the com.microsoft opset`);
    attend = (qc) => g.op('MultiHeadAttention', [qc, k, v], { num_heads: o.heads, scale: { kind: 'float', value: scale } }, { domain: 'com.microsoft', name: 'mha' });
  } else {
    const split = [0, 0, o.heads, o.headDim];
    const kt = transpose(g, reshape(g, k, split), [0, 2, 3, 1]); // [B,H,D,Sk]
    const vh = transpose(g, reshape(g, v, split), [0, 2, 1, 3]); // [B,H,Sk,D]
    attend = (qc) => attendAll(g, qc, kt, vh, scale, o);
  }
  const chunks = o.queryChunks ?? 1;
  if (chunks <= 1) return attend(q);
  // [B, Sq, HD] → [B, chunks, Sq/chunks, HD]: the chunk axis has a fixed length, so every slice of it is valid.
  // One Slice per chunk rather than one Split, and Concat in groups: a WebGPU kernel binds each input and
  // output as its own storage buffer, at most 16 per shader (maxStorageBuffersPerShaderStage).
  const hd = o.heads * o.headDim;
  const folded = reshape(g, q, [0, chunks, -1, hd], 'q_chunks');
  const outs: Value[] = [];
  for (let c = 0; c < chunks; c++) {
    const part = g.op('Slice', [folded, g.int64([c]), g.int64([c + 1]), g.int64([1])], {}, { name: 'q_chunk' });
    outs.push(attend(reshape(g, part, [0, -1, hd])));
  }
  return concatGrouped(g, outs, 1); // [B, Sq, HD]
}

/** softmax(q·scale·kt)·vh for q [B, Sq, H·D] against prepared kt [B,H,D,Sk] and vh [B,H,Sk,D] → [B, Sq, H·D]. */
function attendAll(g: GraphBuilder, q: Value, kt: Value, vh: Value, scale: number, o: AttentionOptions): Value {
  const qh = transpose(g, reshape(g, g.op('Mul', [q, g.scalar(scale, q.dtype)], {}, { name: 'q_scaled' }), [0, 0, o.heads, o.headDim]), [0, 2, 1, 3]); // [B,H,Sq,D]
  let scores = g.op('MatMul', [qh, kt], {}, { name: 'scores' });
  const upcast = o.softmaxFloat32 && scores.dtype !== 'float32';
  if (upcast) scores = g.cast(scores, 'float32');
  let probs = g.op('Softmax', [scores], { axis: -1 });
  if (upcast) probs = g.cast(probs, q.dtype);
  const out = g.op('MatMul', [probs, vh], {}, { name: 'attn' }); // [B,H,Sq,D]
  return reshape(g, transpose(g, out, [0, 2, 1, 3]), [0, 0, o.heads * o.headDim]);
}

/** Concat along `axis` in groups of at most 8 inputs (see the storage-buffer note above). */
function concatGrouped(g: GraphBuilder, values: Value[], axis: number): Value {
  if (values.length === 1) return values[0];
  const groups: Value[] = [];
  for (let i = 0; i < values.length; i += 8) {
    const group = values.slice(i, i + 8);
    groups.push(group.length === 1 ? group[0] : g.op('Concat', group, { axis }, { name: 'attn_chunks' }));
  }
  return concatGrouped(g, groups, axis);
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
