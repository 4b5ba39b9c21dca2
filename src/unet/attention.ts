/**
 * diffusers `attention.py` as SVD's UNet uses it: `Attention` (q/k/v without bias, `to_out.0` with bias,
 * scale 1/sqrt(head_dim)), `FeedForward` (GEGLU, ×4), `BasicTransformerBlock` and
 * `TemporalBasicTransformerBlock` (pre-LayerNorm, eps 1e-5) — docs/pipeline.md §7.6.
 */
import type { Value } from '../onnx/graph.js';
import { attention, DEFAULT_MAX_SCORE_BYTES } from '../onnx/layers/attention.js';
import {
  add,
  geglu,
  gelu,
  layerNorm,
  linear,
  mul,
  reshape,
  shapeConcat,
  shapeOf,
  transpose,
} from '../onnx/layers/basic.js';
import { mapRowChunks } from '../onnx/layers/rowChunks.js';
import { rearrange } from '../onnx/layers/rearrange.js';
import type { UnetContext } from './context.js';

const LN_EPS = 1e-5;

export interface AttentionShape {
  /** Query/hidden width (inner dim = heads × headDim = channels for SVD). */
  dim: number;
  heads: number;
  headDim: number;
}

/**
 * diffusers `FeedForward(dim, dim_out, activation_fn="geglu")`: `net.0` GEGLU dim → 4·dim, `net.2` Linear → dimOut.
 * With 'chunked' attention (the WebGPU target) it runs over token chunks within the same byte budget: it is
 * token-wise, so the result is the same, and its GEGLU projection [tokens, 8·dim] is the UNet's largest tensor.
 */
export function feedForward(ctx: UnetContext, x: Value, prefix: string, dim: number, dimOut = dim): Value {
  const { g } = ctx;
  const inner = dim * 4;
  if (ctx.attention.impl !== 'chunked') {
    const h = geglu(g, x, `${prefix}.net.0`, dim, inner);
    return linear(g, h, `${prefix}.net.2`, inner, dimOut);
  }
  // the weights belong to the enclosing graph; the Loop body reads them
  const proj = {
    w: g.weightTransposed(`${prefix}.net.0.proj.weight`, [2 * inner, dim]),
    b: g.weight(`${prefix}.net.0.proj.bias`, [2 * inner]),
  };
  const out = {
    w: g.weightTransposed(`${prefix}.net.2.weight`, [dimOut, inner]),
    b: g.weight(`${prefix}.net.2.bias`, [dimOut]),
  };
  const tokens = reshape(g, x, [-1, dim]);
  const y = mapRowChunks(
    g,
    tokens,
    {
      rowBytes: 2 * inner * (x.dtype === 'float16' ? 2 : 4),
      maxBytes: ctx.attention.maxScoreBytes ?? DEFAULT_MAX_SCORE_BYTES,
      outCols: dimOut,
      name: `${prefix}/ff`,
    },
    (b, rows) => {
      const h = add(b, b.op('MatMul', [rows, proj.w], {}, { name: `${prefix}.net.0.proj` }), proj.b);
      const [hidden, gate] = b.opMulti(
        'Split',
        [h],
        2,
        { axis: -1, num_outputs: 2 },
        { name: `${prefix}.net.0/split` },
      );
      const geglu = mul(b, hidden, gelu(b, gate), `${prefix}.net.0/geglu`);
      return add(b, b.op('MatMul', [geglu, out.w], {}, { name: `${prefix}.net.2` }), out.b);
    },
  );
  return reshape(g, y, shapeConcat(g, [shapeOf(g, x, 0, -1), [dimOut]]), `${prefix}/ff_restore`);
}

/** Self-attention over the middle axis of x [B, S, dim]. */
export function selfAttention(ctx: UnetContext, x: Value, prefix: string, s: AttentionShape): Value {
  const { g } = ctx;
  const inner = s.heads * s.headDim;
  const q = linear(g, x, `${prefix}.to_q`, s.dim, inner, { bias: false });
  const k = linear(g, x, `${prefix}.to_k`, s.dim, inner, { bias: false });
  const v = linear(g, x, `${prefix}.to_v`, s.dim, inner, { bias: false });
  const a = attention(g, q, k, v, { heads: s.heads, headDim: s.headDim, ...ctx.attention });
  return linear(g, a, `${prefix}.to_out.0`, inner, s.dim);
}

/**
 * Cross-attention whose context is a single token: softmax over one key is exactly 1, so every query
 * gets `to_out(to_v(context))` (docs/pipeline.md §7.6). Returns that vector with the context's shape [.., 1, dim];
 * the caller adds it to the hidden states by broadcasting. to_q and to_k (and the block's norm2, which
 * only feeds the query) are recorded in `ctx.skipped` instead of being loaded.
 */
export function singleTokenCrossAttention(
  ctx: UnetContext,
  context: Value,
  prefix: string,
  s: AttentionShape & { crossDim: number },
): Value {
  const inner = s.heads * s.headDim;
  ctx.skipped.push(`${prefix}.to_q.weight`, `${prefix}.to_k.weight`);
  const v = linear(ctx.g, context, `${prefix}.to_v`, s.crossDim, inner, { bias: false });
  return linear(ctx.g, v, `${prefix}.to_out.0`, inner, s.dim);
}

/** The same cross-attention built literally (q, k, softmax over the one key); only for measurements. */
function literalCrossAttention(
  ctx: UnetContext,
  x: Value,
  context: Value,
  prefix: string,
  s: AttentionShape & { crossDim: number },
): Value {
  const { g } = ctx;
  const inner = s.heads * s.headDim;
  const q = linear(g, x, `${prefix}.to_q`, s.dim, inner, { bias: false });
  const k = linear(g, context, `${prefix}.to_k`, s.crossDim, inner, { bias: false });
  const v = linear(g, context, `${prefix}.to_v`, s.crossDim, inner, { bias: false });
  const a = attention(g, q, k, v, { heads: s.heads, headDim: s.headDim, ...ctx.attention });
  return linear(g, a, `${prefix}.to_out.0`, inner, s.dim);
}

export interface TransformerBlockOptions extends AttentionShape {
  crossDim: number;
}

/**
 * diffusers `BasicTransformerBlock` (layer_norm, self-attention, cross-attention, GEGLU feed-forward) on
 * x [B·F, h·w, dim]; the cross-attention context is `ctx.video.frameContext` [B·F, 1, D].
 */
export function basicTransformerBlock(ctx: UnetContext, x: Value, prefix: string, o: TransformerBlockOptions): Value {
  const { g } = ctx;
  let h = add(
    g,
    x,
    selfAttention(ctx, layerNorm(g, x, `${prefix}.norm1`, { channels: o.dim, eps: LN_EPS }), `${prefix}.attn1`, o),
  );
  h = add(g, h, crossAttention(ctx, h, ctx.video.frameContext, prefix, o));
  return add(
    g,
    h,
    feedForward(ctx, layerNorm(g, h, `${prefix}.norm3`, { channels: o.dim, eps: LN_EPS }), `${prefix}.ff`, o.dim),
  );
}

/**
 * diffusers `TemporalBasicTransformerBlock` (time_mix_inner_dim = dim, so every sub-block is residual):
 * attention runs across the F frames of each pixel. Input and output are [B, F, h·w, dim]; inside, the
 * layout is [B, h·w, F, dim], over which the cross-attention result ([B, 1, 1, dim] or [B, h·w, 1, dim])
 * broadcasts.
 */
export function temporalBasicTransformerBlock(
  ctx: UnetContext,
  x: Value,
  prefix: string,
  o: TransformerBlockOptions,
): Value {
  const { g } = ctx;
  const y = transpose(g, x, [0, 2, 1, 3]); // [B, hw, F, dim]
  let h = add(
    g,
    y,
    feedForward(ctx, layerNorm(g, y, `${prefix}.norm_in`, { channels: o.dim, eps: LN_EPS }), `${prefix}.ff_in`, o.dim),
  );
  // self-attention over frames: sequences are the B·hw pixels
  const n1 = layerNorm(g, h, `${prefix}.norm1`, { channels: o.dim, eps: LN_EPS });
  const seq = rearrange(g, n1, 'b s f d -> (b s) f d');
  const a1 = rearrange(g, selfAttention(ctx, seq, `${prefix}.attn1`, o), '(b s) f d -> b s f d', {
    s: shapeOf(g, h, 1, 2),
  });
  h = add(g, h, a1);
  if (ctx.video.cameraPose) h = cameraProjection(ctx, h, prefix, o.dim);
  h = add(g, h, temporalCrossAttention(ctx, h, prefix, o));
  h = add(
    g,
    h,
    feedForward(ctx, layerNorm(g, h, `${prefix}.norm3`, { channels: o.dim, eps: LN_EPS }), `${prefix}.ff`, o.dim),
  );
  return transpose(g, h, [0, 2, 1, 3]); // [B, F, hw, dim]
}

/**
 * MotionCtrl's camera motion control module (docs/camera-motion.md): between the temporal self-attention and
 * the cross-attention, each pixel's frame sequence h [B, hw, F, dim] gets its video's poses [B, F, P] appended
 * on the channel axis and is projected back, `cc_projection`: Linear(dim + P → dim), with no residual around it
 * (MotionCtrl initialises it to the identity on the hidden part and zero on the pose part).
 */
function cameraProjection(ctx: UnetContext, h: Value, prefix: string, dim: number): Value {
  const { g } = ctx;
  const { value: pose, poseDim } = ctx.video.cameraPose!;
  const perPixel = g.op('Expand', [
    g.op('Unsqueeze', [pose, g.int64([1])]),
    shapeConcat(g, [shapeOf(g, h, 0, 3), [poseDim]]),
  ]);
  const joined = g.op('Concat', [h, perPixel], { axis: -1 }, { name: `${prefix}.cc_projection/concat` }); // hidden first, pose after
  return linear(g, joined, `${prefix}.cc_projection`, dim + poseDim, dim);
}

/**
 * `attn2` of the temporal block. Its context is the first frame's token of a video, i.e. the video's own
 * encoder_hidden_states row, but which video's row each pixel sequence gets depends on the diffusers version
 * (see `TemporalContextOrder`). Result: [B, 1, 1, dim] or [B, hw, 1, dim], broadcast over frames.
 */
function temporalCrossAttention(ctx: UnetContext, h: Value, prefix: string, o: TransformerBlockOptions): Value {
  const video = ctx.video.videoContext; // [B, 1, D]
  if (!ctx.literalCrossAttention) {
    ctx.skipped.push(`${prefix}.norm2.weight`, `${prefix}.norm2.bias`);
    // the projection is row-wise, so projecting the B tokens first and arranging them after is exact
    return arrangeTemporalContext(ctx, singleTokenCrossAttention(ctx, video, `${prefix}.attn2`, o), h);
  }
  return crossAttention(ctx, h, arrangeTemporalContext(ctx, video, h), prefix, o);
}

/**
 * Lays out per-video rows t [B, 1, X] for the temporal layout h [B, hw, F, C]:
 * 'per-video' → [B, 1, 1, X] (sequence (b, s) sees video b; sgm, diffusers ≥ 0.28);
 * 'diffusers-0.27' → [B, hw, 1, X] where sequence (b, s) sees video (b·hw + s) mod B, because diffusers ≤ 0.27
 * broadcast the context as (hw, B) but flattened the hidden states as (B, hw) (fixed by diffusers PR #7268).
 */
function arrangeTemporalContext(ctx: UnetContext, t: Value, h: Value): Value {
  const { g } = ctx;
  if (ctx.temporalContextOrder === 'per-video') return g.op('Unsqueeze', [t, g.int64([1])]);
  const hw = shapeOf(g, h, 1, 2);
  const tiled = g.op('Tile', [t, shapeConcat(g, [hw, [1, 1]])], {}, { name: 'time_context' }); // [hw·B, 1, X], row r = t[r mod B]
  return rearrange(g, tiled, '(n s) o x -> n s o x', { s: hw }); // [B, hw, 1, X]
}

/** `attn2` with a given context token: the exact shortcut, or (for measurements) the literal computation. */
function crossAttention(ctx: UnetContext, h: Value, context: Value, prefix: string, o: TransformerBlockOptions): Value {
  if (!ctx.literalCrossAttention) {
    ctx.skipped.push(`${prefix}.norm2.weight`, `${prefix}.norm2.bias`);
    return singleTokenCrossAttention(ctx, context, `${prefix}.attn2`, o);
  }
  const { g } = ctx;
  const n2 = layerNorm(g, h, `${prefix}.norm2`, { channels: o.dim, eps: LN_EPS });
  // attention wants [sequences, tokens, dim]: fold n2's leading axes, and repeat the context token per sequence
  const q = reshape(g, n2, shapeConcat(g, [[-1], shapeOf(g, n2, -2)]));
  const lead = shapeOf(g, n2, 0, -2);
  const kv = g.op('Expand', [context, shapeConcat(g, [lead, shapeOf(g, context, -2)])]);
  const kv3 = reshape(g, kv, shapeConcat(g, [[-1], shapeOf(g, context, -2)]));
  return reshape(g, literalCrossAttention(ctx, q, kv3, `${prefix}.attn2`, o), shapeOf(g, n2));
}
