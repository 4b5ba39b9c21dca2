/**
 * diffusers `unet_3d_blocks.py`, the SpatioTemporal members: CrossAttnDownBlockSpatioTemporal /
 * DownBlockSpatioTemporal, UNetMidBlockSpatioTemporal, CrossAttnUpBlockSpatioTemporal /
 * UpBlockSpatioTemporal. The BlockPlan (config.ts) carries each block's sizes and GroupNorm eps.
 */
import type { Value } from '../onnx/graph.js';
import { conv2d, shapeConcat, shapeOf } from '../onnx/layers/basic.js';
import { downsample2D, spatioTemporalResBlock } from '../onnx/layers/resnet.js';
import type { BlockPlan } from './config.js';
import type { UnetContext } from './context.js';
import { transformerSpatioTemporalModel } from './transformerSpatioTemporal.js';

/** A tensor kept for the up path, with its channel count. */
export interface Skip {
  value: Value;
  channels: number;
}

function resnet(
  ctx: UnetContext,
  x: Value,
  prefix: string,
  inChannels: number,
  outChannels: number,
  eps: number,
): Value {
  return spatioTemporalResBlock(ctx.g, x, prefix, {
    inChannels,
    outChannels,
    frames: ctx.video.frames,
    eps,
    temb: ctx.video.temb,
    tembChannels: ctx.video.timeEmbedDim,
    mergeStrategy: 'learned_with_images',
  });
}

function transformer(ctx: UnetContext, x: Value, block: BlockPlan, j: number): Value {
  return transformerSpatioTemporalModel(ctx, x, `${block.name}.attentions.${j}`, {
    channels: block.outChannels,
    heads: block.heads,
    depth: block.transformerDepths[j],
    crossDim: block.crossAttentionDim,
  });
}

/** A down block: (resnet [→ transformer]) × numLayers [→ Downsample2D]; every stage's output becomes a skip. */
export function downBlock(ctx: UnetContext, x: Value, block: BlockPlan): { out: Value; skips: Skip[] } {
  const skips: Skip[] = [];
  let h = x;
  for (let j = 0; j < block.numLayers; j++) {
    h = resnet(
      ctx,
      h,
      `${block.name}.resnets.${j}`,
      j === 0 ? block.inChannels : block.outChannels,
      block.outChannels,
      block.resnetEps,
    );
    if (block.hasCrossAttention) h = transformer(ctx, h, block, j);
    skips.push({ value: h, channels: block.outChannels });
  }
  if (block.resample) {
    h = downsample2D(ctx.g, h, `${block.name}.downsamplers.0`, { channels: block.outChannels, padding: 1 });
    skips.push({ value: h, channels: block.outChannels });
  }
  return { out: h, skips };
}

/** UNetMidBlockSpatioTemporal: resnet, then (transformer → resnet) per layer. */
export function midBlock(ctx: UnetContext, x: Value, block: BlockPlan): Value {
  const c = block.outChannels;
  let h = resnet(ctx, x, `${block.name}.resnets.0`, c, c, block.resnetEps);
  for (let j = 0; j < block.numLayers; j++) {
    h = transformer(ctx, h, block, j);
    h = resnet(ctx, h, `${block.name}.resnets.${j + 1}`, c, c, block.resnetEps);
  }
  return h;
}

/**
 * An up block: per layer, concatenate [h, last skip] on channels → resnet [→ transformer]; then
 * Upsample2D to the spatial size of `upsampleTo` (the next up block's first skip), which is what diffusers'
 * `forward_upsample_size` does for sizes not divisible by 2^levels and equals ×2 otherwise.
 */
export function upBlock(
  ctx: UnetContext,
  x: Value,
  skips: Skip[],
  block: BlockPlan,
  upsampleTo: Value | undefined,
): Value {
  const { g } = ctx;
  let h = x;
  let channels = block.prevOutputChannels;
  for (let j = 0; j < block.numLayers; j++) {
    const skip = skips.pop();
    if (!skip) throw new Error(`${block.name}: ran out of skip connections (block plan bug)`);
    h = g.op('Concat', [h, skip.value], { axis: 1 }, { name: `${block.name}.resnets.${j}/cat` });
    h = resnet(ctx, h, `${block.name}.resnets.${j}`, channels + skip.channels, block.outChannels, block.resnetEps);
    channels = block.outChannels;
    if (block.hasCrossAttention) h = transformer(ctx, h, block, j);
  }
  if (block.resample) {
    if (!upsampleTo) throw new Error(`${block.name}: upsampling needs the target size (block plan bug)`);
    h = upsample2DToSize(ctx, h, `${block.name}.upsamplers.0`, block.outChannels, upsampleTo);
  }
  return h;
}

/**
 * diffusers Upsample2D (use_conv) called with `output_size`: nearest interpolation of [N, C, h, w] to the
 * spatial size of `like`, then `<prefix>.conv` 3×3. torch's "nearest" picks source index floor(i·in/out),
 * which is ONNX Resize nearest / asymmetric / floor; with out = 2·in that is plain ×2 repetition.
 */
export function upsample2DToSize(ctx: UnetContext, x: Value, prefix: string, channels: number, like: Value): Value {
  const { g } = ctx;
  const sizes = shapeConcat(g, [shapeOf(g, x, 0, 2), shapeOf(g, like, 2, 4)]);
  const up = g.op(
    'Resize',
    [x, null, null, sizes],
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
    { name: `${prefix}/resize` },
  );
  return conv2d(g, up, `${prefix}.conv`, { inChannels: channels, outChannels: channels, kernel: 3 });
}
