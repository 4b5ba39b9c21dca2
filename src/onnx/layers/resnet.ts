/**
 * diffusers resnet pieces shared by the VAE temporal decoder and the UNet: ResnetBlock2D,
 * TemporalResnetBlock, AlphaBlender, SpatioTemporalResBlock, Upsample2D, Downsample2D (docs/pipeline.md §7.5, §8.3).
 * `temb` is optional everywhere: the VAE has no time embedding.
 */
import type { GraphBuilder, Value } from '../graph.js';
import {
  add,
  conv2d,
  conv3dTemporal,
  groupNorm,
  linear,
  mul,
  silu,
  transpose,
  unsqueeze,
  upsampleNearest2x,
} from './basic.js';
import { rearrange } from './rearrange.js';

export interface ResnetBlockOptions {
  inChannels: number;
  outChannels: number;
  eps: number;
  groups?: number;
  /**
   * Time embedding, added after conv1 through SiLU → `time_emb_proj`: [N, tembChannels] for the 2D block,
   * one per frame [B, F, tembChannels] for the temporal one.
   */
  temb?: Value;
  tembChannels?: number;
}

/** diffusers ResnetBlock2D (time_embedding_norm "default", output_scale_factor 1). Names: norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut. */
export function resnetBlock2D(g: GraphBuilder, x: Value, prefix: string, o: ResnetBlockOptions): Value {
  const groups = o.groups ?? 32;
  let h = silu(g, groupNorm(g, x, `${prefix}.norm1`, { channels: o.inChannels, groups, eps: o.eps }));
  h = conv2d(g, h, `${prefix}.conv1`, { inChannels: o.inChannels, outChannels: o.outChannels, kernel: 3 });
  if (o.temb) {
    const t = linear(
      g,
      silu(g, o.temb),
      `${prefix}.time_emb_proj`,
      requireTembChannels(o.tembChannels, prefix),
      o.outChannels,
    );
    h = add(g, h, unsqueeze(g, t, [2, 3]));
  }
  h = silu(g, groupNorm(g, h, `${prefix}.norm2`, { channels: o.outChannels, groups, eps: o.eps }));
  h = conv2d(g, h, `${prefix}.conv2`, { inChannels: o.outChannels, outChannels: o.outChannels, kernel: 3 });
  const shortcut =
    o.inChannels === o.outChannels
      ? x
      : conv2d(g, x, `${prefix}.conv_shortcut`, {
          inChannels: o.inChannels,
          outChannels: o.outChannels,
          kernel: 1,
          padding: 0,
        });
  return add(g, shortcut, h, `${prefix}/out`);
}

/** diffusers TemporalResnetBlock on [B, C, F, h, w]: GroupNorm statistics span all frames; Conv3d (3,1,1). */
export function temporalResnetBlock(g: GraphBuilder, x: Value, prefix: string, o: ResnetBlockOptions): Value {
  const groups = o.groups ?? 32;
  let h = silu(g, groupNorm(g, x, `${prefix}.norm1`, { channels: o.inChannels, groups, eps: o.eps }));
  h = conv3dTemporal(g, h, `${prefix}.conv1`, { inChannels: o.inChannels, outChannels: o.outChannels });
  if (o.temb) {
    const t = linear(
      g,
      silu(g, o.temb),
      `${prefix}.time_emb_proj`,
      requireTembChannels(o.tembChannels, prefix),
      o.outChannels,
    ); // [B,F,C]
    h = add(g, h, unsqueeze(g, transpose(g, t, [0, 2, 1]), [3, 4])); // [B,C,F,1,1]
  }
  h = silu(g, groupNorm(g, h, `${prefix}.norm2`, { channels: o.outChannels, groups, eps: o.eps }));
  h = conv3dTemporal(g, h, `${prefix}.conv2`, { inChannels: o.outChannels, outChannels: o.outChannels });
  const shortcut =
    o.inChannels === o.outChannels
      ? x
      : g.op(
          'Conv',
          [
            x,
            g.weight(`${prefix}.conv_shortcut.weight`, [o.outChannels, o.inChannels, 1, 1, 1]),
            g.weight(`${prefix}.conv_shortcut.bias`, [o.outChannels]),
          ],
          { kernel_shape: [1, 1, 1] },
          { name: `${prefix}.conv_shortcut` },
        );
  return add(g, shortcut, h, `${prefix}/out`);
}

export type MergeStrategy = 'learned' | 'learned_with_images' | 'fixed';

/**
 * diffusers AlphaBlender (`<prefix>.mix_factor`, shape [1]): α = σ(mix_factor) ('learned'; also
 * 'learned_with_images' since SVD's image_only_indicator is all zeros) or mix_factor ('fixed');
 * with switchSpatialToTemporalMix α becomes 1−α; out = α·spatial + (1−α)·temporal.
 */
export function alphaBlender(
  g: GraphBuilder,
  spatial: Value,
  temporal: Value,
  prefix: string,
  o: { mergeStrategy: MergeStrategy; switchSpatialToTemporalMix?: boolean },
): Value {
  // α is computed from the [1]-shaped weight in float32 (ORT's CPU EP has no fp16 Sigmoid to fold with),
  // then cast to the activations' dtype.
  const m = g.cast(g.weight(`${prefix}.mix_factor`, [1]), 'float32');
  let alpha = o.mergeStrategy === 'fixed' ? m : g.op('Sigmoid', [m], {}, { name: `${prefix}/alpha` });
  const one = g.scalar(1, 'float32');
  if (o.switchSpatialToTemporalMix) alpha = g.op('Sub', [one, alpha]);
  const beta = g.cast(g.op('Sub', [one, alpha]), spatial.dtype);
  alpha = g.cast(alpha, spatial.dtype);
  return add(g, mul(g, spatial, alpha), mul(g, temporal, beta), `${prefix}/mix`);
}

/** [B·F, C, h, w] → [B, C, F, h, w]; `frames` is a 1-D int64 [1] tensor holding F. */
export function toVideo(g: GraphBuilder, x: Value, frames: Value, channels: number): Value {
  return rearrange(g, x, '(b f) c h w -> b c f h w', { f: frames, c: channels });
}

/** [B, C, F, h, w] → [B·F, C, h, w]. */
export function fromVideo(g: GraphBuilder, x: Value, channels: number): Value {
  return rearrange(g, x, 'b c f h w -> (b f) c h w', { c: channels });
}

export interface SpatioTemporalResBlockOptions {
  inChannels: number;
  outChannels: number;
  /** F, as a 1-D int64 [1] tensor (rows of x are B videos × F frames, video-major). */
  frames: Value;
  /** Spatial GroupNorm eps. */
  eps: number;
  /** Temporal GroupNorm eps (VAE: 1e-5; UNet: same as eps). */
  temporalEps?: number;
  groups?: number;
  /** [B·F, tembChannels]; omitted in the VAE. */
  temb?: Value;
  tembChannels?: number;
  mergeStrategy: MergeStrategy;
  switchSpatialToTemporalMix?: boolean;
}

/**
 * diffusers SpatioTemporalResBlock on [B·F, Cin, h, w] → [B·F, Cout, h, w]:
 * spatial ResnetBlock2D → to [B, C, F, h, w] → TemporalResnetBlock → AlphaBlender(spatial, temporal) → back.
 * Names: spatial_res_block, temporal_res_block, time_mixer.
 */
export function spatioTemporalResBlock(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  o: SpatioTemporalResBlockOptions,
): Value {
  const c = o.outChannels;
  const s = resnetBlock2D(g, x, `${prefix}.spatial_res_block`, {
    inChannels: o.inChannels,
    outChannels: c,
    eps: o.eps,
    groups: o.groups,
    temb: o.temb,
    tembChannels: o.tembChannels,
  });
  const s5 = toVideo(g, s, o.frames, c);
  const temb5 = o.temb
    ? rearrange(g, o.temb, '(b f) c -> b f c', { f: o.frames, c: requireTembChannels(o.tembChannels, prefix) })
    : undefined;
  const t = temporalResnetBlock(g, s5, `${prefix}.temporal_res_block`, {
    inChannels: c,
    outChannels: c,
    eps: o.temporalEps ?? o.eps,
    groups: o.groups,
    temb: temb5,
    tembChannels: o.tembChannels,
  });
  const mixed = alphaBlender(g, s5, t, `${prefix}.time_mixer`, {
    mergeStrategy: o.mergeStrategy,
    switchSpatialToTemporalMix: o.switchSpatialToTemporalMix,
  });
  return fromVideo(g, mixed, c);
}

/** diffusers Upsample2D with use_conv: nearest ×2 then `<prefix>.conv` 3×3. */
export function upsample2D(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  o: { channels: number; outChannels?: number },
): Value {
  return conv2d(g, upsampleNearest2x(g, x), `${prefix}.conv`, {
    inChannels: o.channels,
    outChannels: o.outChannels ?? o.channels,
    kernel: 3,
  });
}

/**
 * diffusers Downsample2D with use_conv: `<prefix>.conv` 3×3 stride 2. padding 1 (UNet) is symmetric;
 * padding 0 (VAE encoder) first zero-pads right and bottom by one pixel, as diffusers does.
 */
export function downsample2D(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  o: { channels: number; outChannels?: number; padding: 0 | 1 },
): Value {
  let h = x;
  if (o.padding === 0)
    h = g.op('Pad', [x, g.int64([0, 0, 0, 0, 0, 0, 1, 1])], { mode: 'constant' }, { name: `${prefix}/pad` });
  return conv2d(g, h, `${prefix}.conv`, {
    inChannels: o.channels,
    outChannels: o.outChannels ?? o.channels,
    kernel: 3,
    stride: 2,
    padding: o.padding,
  });
}

function requireTembChannels(c: number | undefined, prefix: string): number {
  if (!c) throw new Error(`${prefix}: temb given without tembChannels`);
  return c;
}
