/**
 * diffusers `TransformerSpatioTemporalModel` (docs/pipeline.md §7.6): GroupNorm → proj_in → per depth d
 * [BasicTransformerBlock over pixels; + frame position embedding; TemporalBasicTransformerBlock over frames;
 * AlphaBlender] → proj_out → + residual.
 */
import type { Value } from '../onnx/graph.js';
import { add, groupNorm, linear, reshape, shapeOf } from '../onnx/layers/basic.js';
import { rearrange } from '../onnx/layers/rearrange.js';
import { alphaBlender } from '../onnx/layers/resnet.js';
import { basicTransformerBlock, temporalBasicTransformerBlock } from './attention.js';
import type { UnetContext } from './context.js';
import { timestepEmbedding, timestepSinusoid } from './embeddings.js';

export interface TransformerSpatioTemporalOptions {
  channels: number;
  heads: number;
  /** Number of (spatial, temporal) block pairs: transformer_layers_per_block for this transformer. */
  depth: number;
  crossDim: number;
}

/** x [B·F, C, h, w] → [B·F, C, h, w]. Names: norm, proj_in, transformer_blocks.d, temporal_transformer_blocks.d, time_pos_embed, time_mixer, proj_out. */
export function transformerSpatioTemporalModel(
  ctx: UnetContext,
  x: Value,
  prefix: string,
  o: TransformerSpatioTemporalOptions,
): Value {
  const { g } = ctx;
  const c = o.channels;
  // diffusers: attention_head_dim = C // heads, inner_dim = heads × head_dim (= C; the config check enforces it)
  const shape = { dim: c, heads: o.heads, headDim: c / o.heads, crossDim: o.crossDim };

  const normed = groupNorm(g, x, `${prefix}.norm`, { channels: c, groups: 32, eps: 1e-6 });
  const tokens = rearrange(g, normed, 'n c h w -> n (h w) c');
  let h = linear(g, tokens, `${prefix}.proj_in`, c, c); // [B·F, hw, C]

  // the frames' positional embedding (the same for every video): [1, F, 1, C]
  const posEmb = timestepEmbedding(g, timestepSinusoid(g, ctx.video.frameIndex, c), `${prefix}.time_pos_embed`, {
    inDim: c,
    hiddenDim: 4 * c,
    outDim: c,
  });
  const framePos = reshape(g, posEmb, [1, -1, 1, c]);

  for (let d = 0; d < o.depth; d++) {
    h = basicTransformerBlock(ctx, h, `${prefix}.transformer_blocks.${d}`, shape);
    const mix = add(g, rearrange(g, h, '(b f) s c -> b f s c', { f: ctx.video.frames }), framePos);
    const temporal = rearrange(
      g,
      temporalBasicTransformerBlock(ctx, mix, `${prefix}.temporal_transformer_blocks.${d}`, shape),
      'b f s c -> (b f) s c',
    );
    // image_only_indicator is all zeros in SVD, so "learned_with_images" blends with σ(mix_factor) everywhere
    h = alphaBlender(g, h, temporal, `${prefix}.time_mixer`, { mergeStrategy: 'learned_with_images' });
  }

  const out = linear(g, h, `${prefix}.proj_out`, c, c);
  const map = rearrange(g, out, 'n (h w) c -> n c h w', { h: shapeOf(g, x, 2, 3), w: shapeOf(g, x, 3, 4) });
  return add(g, map, x, `${prefix}/residual`);
}
