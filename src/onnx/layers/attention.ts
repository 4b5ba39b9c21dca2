/**
 * Multi-head attention from primitives (MatMul / Softmax), and the diffusers `Attention` module as the
 * VAE uses it (group norm in front, residual connection around).
 */
import type { GraphBuilder, Value } from '../graph.js';
import { add, groupNorm, linear, reshape, shapeConcat, shapeOf, transpose } from './basic.js';
import { rearrange } from './rearrange.js';

/**
 * How softmax(q·kᵀ)·v is laid out in the graph. All three give the same numbers (within float rounding);
 * they differ in how much memory the scores take:
 * - 'primitive': MatMul/Softmax/MatMul over all queries at once; materialises [B, H, Sq, Sk] scores
 *   (quadratic in the sequence: 85 GB for SVD-XT's first spatial attention at 576×1024, 25 frames, CFG).
 * - 'mha': com.microsoft MultiHeadAttention. onnxruntime's CPU EP runs it as flash attention (memory linear
 *   in the sequence, measured in bench/RESULTS.md §6), the CUDA EP with its fused kernels. The builder must
 *   import the 'com.microsoft' opset.
 * - 'chunked': standard ops only: an ONNX Loop over query chunks, each chunk's scores at most
 *   `maxScoreBytes` (for EPs without MultiHeadAttention or with a per-buffer binding limit).
 */
export type AttentionFormulation = 'primitive' | 'mha' | 'chunked';

/** Default score budget of 'chunked' attention: one chunk's score tensor, in bytes. */
export const DEFAULT_MAX_SCORE_BYTES = 128 * 2 ** 20;

export interface AttentionOptions {
  heads: number;
  headDim: number;
  /** Softmax scale; default 1/sqrt(headDim). */
  scale?: number;
  /** Default 'primitive'. */
  impl?: AttentionFormulation;
  /**
   * 'chunked' only: the most bytes one chunk's score tensor ([B, H, chunk, Sk] in the softmax's dtype) may
   * take; the chunk is max(1, ⌊maxScoreBytes / (B·H·Sk·bytes)⌋) query rows, computed in the graph from the
   * run's shapes. Peak attention memory is about 3× this (scores, probabilities, their float32 casts).
   * Default DEFAULT_MAX_SCORE_BYTES.
   */
  maxScoreBytes?: number;
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
    return g.op(
      'MultiHeadAttention',
      [q, k, v],
      { num_heads: o.heads, scale: { kind: 'float', value: scale } },
      { domain: 'com.microsoft', name: 'mha' },
    );
  }
  const heads = { h: o.heads, d: o.headDim };
  const qh = rearrange(
    g,
    g.op('Mul', [q, g.scalar(scale, q.dtype)], {}, { name: 'q_scaled' }),
    'b s (h d) -> b h s d',
    heads,
  );
  const kt = rearrange(g, k, 'b s (h d) -> b h d s', heads);
  const vh = rearrange(g, v, 'b s (h d) -> b h s d', heads);
  const out = o.impl === 'chunked' ? chunkedCore(g, qh, kt, vh, o) : attentionCore(g, qh, kt, vh, o); // [B,H,Sq,D]
  return rearrange(g, out, 'b h s d -> b s (h d)');
}

/** softmax(qh·kt)·vh for qh [B,H,S,D], kt [B,H,D,Sk], vh [B,H,Sk,D] → [B,H,S,D]. */
function attentionCore(g: GraphBuilder, qh: Value, kt: Value, vh: Value, o: AttentionOptions): Value {
  let scores = g.op('MatMul', [qh, kt], {}, { name: 'scores' });
  const upcast = o.softmaxFloat32 && scores.dtype !== 'float32';
  if (upcast) scores = g.cast(scores, 'float32');
  let probs = g.op('Softmax', [scores], { axis: -1 });
  if (upcast) probs = g.cast(probs, qh.dtype);
  return g.op('MatMul', [probs, vh], {}, { name: 'attn' });
}

/**
 * attentionCore over chunks of query rows in an ONNX Loop. Every row's arithmetic is the one of the
 * unchunked graph, so results match it. Rows are padded up to a whole number of chunks (a Loop's scan
 * outputs must all have one shape) and the padding is sliced off after.
 */
function chunkedCore(g: GraphBuilder, qh: Value, kt: Value, vh: Value, o: AttentionOptions): Value {
  const maxBytes = o.maxScoreBytes ?? DEFAULT_MAX_SCORE_BYTES;
  if (!(maxBytes >= 1) || !Number.isFinite(maxBytes))
    throw new Error(`graph ${g.name}: maxScoreBytes must be a positive number, got ${maxBytes}`);
  const scoreBytes = o.softmaxFloat32 || qh.dtype === 'float32' ? 4 : 2;
  const batch = shapeOf(g, qh, 0, 1); // [1] B
  const rows = shapeOf(g, qh, 2, 3); // [1] Sq
  const keys = shapeOf(g, kt, 3, 4); // [1] Sk
  const rowBytes = g.op('Mul', [g.op('Mul', [batch, keys]), g.int64([o.heads * scoreBytes])]);
  const fit = g.op('Max', [g.op('Div', [g.int64([Math.floor(maxBytes)]), rowBytes]), g.int64([1])]);
  const chunk = g.op('Min', [fit, rows], {}, { name: 'attn_chunk' }); // [1] query rows per iteration
  const count = g.op(
    'Div',
    [g.op('Sub', [g.op('Add', [rows, chunk]), g.int64([1])]), chunk],
    {},
    { name: 'attn_chunks' },
  );
  const padRows = g.op('Sub', [g.op('Mul', [count, chunk]), rows]);
  const pads = shapeConcat(g, [[0, 0, 0, 0, 0, 0], padRows, [0]]);
  const padded = g.op('Pad', [qh, pads], {}, { name: 'q_padded' }); // [B,H,count·chunk,D]
  const body = g.subgraph(
    g.fresh('attn_chunk_body'),
    [
      { name: 'chunk_index', dtype: 'int64', shape: [] },
      { name: 'cond', dtype: 'bool', shape: [] },
    ],
    (b, [i, cond]) => {
      const start = b.op('Mul', [b.op('Unsqueeze', [i, b.int64([0])]), chunk]);
      const q = b.op('Slice', [padded, start, b.op('Add', [start, chunk]), b.int64([2])], {}, { name: 'q_chunk' });
      return [b.op('Identity', [cond]), attentionCore(b, q, kt, vh, o)];
    },
  );
  const trips = g.op('Squeeze', [count, g.int64([0])]);
  const [stacked] = g.opMulti('Loop', [trips, null], 1, { body }, { name: 'attn_loop', dtype: qh.dtype }); // [count,B,H,chunk,D]
  const joined = reshape(g, transpose(g, stacked, [1, 2, 0, 3, 4]), [0, 0, -1, o.headDim]); // [B,H,count·chunk,D]
  return g.op('Slice', [joined, g.int64([0]), rows, g.int64([2])], {}, { name: 'attn_rows' });
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
  o: { channels: number; heads: number; groups?: number; eps: number; softmaxFloat32?: boolean } & Pick<
    AttentionOptions,
    'impl' | 'maxScoreBytes'
  >,
): Value {
  const c = o.channels;
  const h = groupNorm(g, x, `${prefix}.group_norm`, { channels: c, groups: o.groups, eps: o.eps });
  const tokens = transpose(g, reshape(g, h, [0, c, -1]), [0, 2, 1]); // [N, hw, C]
  const q = linear(g, tokens, `${prefix}.to_q`, c, c);
  const k = linear(g, tokens, `${prefix}.to_k`, c, c);
  const v = linear(g, tokens, `${prefix}.to_v`, c, c);
  const a = attention(g, q, k, v, {
    heads: o.heads,
    headDim: c / o.heads,
    impl: o.impl,
    maxScoreBytes: o.maxScoreBytes,
    softmaxFloat32: o.softmaxFloat32,
  });
  const out = linear(g, a, `${prefix}.to_out.0`, c, c);
  const back = reshape(g, transpose(g, out, [0, 2, 1]), shapeOf(g, x)); // [N, C, h, w]
  return add(g, back, x, `${prefix}/residual`);
}
