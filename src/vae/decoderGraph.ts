/**
 * The temporal VAE decoder graph (docs/pipeline.md §8.3): diffusers `TemporalDecoder` for ONE chunk of one video.
 *
 *   latent [n, L, h, w] → frames [n, 3, h·s, w·s]
 *
 * All n rows are the frames of one video (num_frames = n, read from the input shape, so any n works);
 * image_only_indicator is all zeros, which the "learned" AlphaBlender ignores anyway. The caller has
 * already divided the latents by scaling_factor (docs/pipeline.md §8.4).
 */
import type { BuildInfo } from '../onnx/save.js';
import type { GraphBuilder, Value } from '../onnx/graph.js';
import type { AttentionChoice, ComponentSource, GraphBuildOptions } from '../onnx/build.js';
import { listWeights } from '../onnx/randomWeights.js';
import type { WeightRequest } from '../onnx/weights.js';
import { conv2d, conv3dTemporal, groupNorm, shapeOf, silu } from '../onnx/layers/basic.js';
import { fromVideo, spatioTemporalResBlock, toVideo, upsample2D } from '../onnx/layers/resnet.js';
import { spatialSelfAttention } from '../onnx/layers/attention.js';
import { parseVaeConfig, type VaeConfig } from './config.js';
import { buildVaePart } from './build.js';

/** Every decoder resnet: spatial eps 1e-6, temporal eps 1e-5, "learned" mix with switched roles. */
function decoderResBlock(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  inChannels: number,
  outChannels: number,
  frames: Value,
  groups: number,
): Value {
  return spatioTemporalResBlock(g, x, prefix, {
    inChannels,
    outChannels,
    frames,
    eps: 1e-6,
    temporalEps: 1e-5,
    groups,
    mergeStrategy: 'learned',
    switchSpatialToTemporalMix: true,
  });
}

/** Adds the decoder to `g`: input `latent`, output `frames`. */
export function defineVaeDecoder(
  g: GraphBuilder,
  cfg: VaeConfig,
  attention: AttentionChoice = { impl: 'primitive' },
): void {
  const ch = cfg.blockOutChannels;
  const groups = cfg.normGroups;
  const last = ch[ch.length - 1];
  const latent = g.input('latent', ['num_frames', cfg.latentChannels, 'latent_height', 'latent_width']);
  const frames = shapeOf(g, latent, 0, 1); // F = n: the whole input is one video
  let h = conv2d(g, latent, 'decoder.conv_in', { inChannels: cfg.latentChannels, outChannels: last, kernel: 3 });

  // MidBlockTemporalDecoder has layers_per_block resnets and ONE attention, and runs
  // resnets[0], then zip(resnets[1:], attentions): attention + resnets[1] only. With layers_per_block 1
  // the attention is never applied (its weights exist but are unused); resnets beyond [1] are never applied.
  h = decoderResBlock(g, h, 'decoder.mid_block.resnets.0', last, last, frames, groups);
  if (cfg.layersPerBlock >= 2) {
    h = spatialSelfAttention(g, h, 'decoder.mid_block.attentions.0', {
      channels: last,
      heads: 1,
      groups,
      eps: 1e-6,
      softmaxFloat32: true,
      ...attention,
    });
    h = decoderResBlock(g, h, 'decoder.mid_block.resnets.1', last, last, frames, groups);
  }

  // up blocks: reversed channels, layers_per_block + 1 resnets each, upsample except after the last
  const reversed = [...ch].reverse();
  let out = reversed[0];
  reversed.forEach((blockChannels, i) => {
    const prefix = `decoder.up_blocks.${i}`;
    const input = out;
    out = blockChannels;
    for (let j = 0; j < cfg.layersPerBlock + 1; j++) {
      h = decoderResBlock(g, h, `${prefix}.resnets.${j}`, j === 0 ? input : out, out, frames, groups);
    }
    if (i < reversed.length - 1) h = upsample2D(g, h, `${prefix}.upsamplers.0`, { channels: out });
  });

  h = silu(g, groupNorm(g, h, 'decoder.conv_norm_out', { channels: ch[0], groups, eps: 1e-6 }));
  h = conv2d(g, h, 'decoder.conv_out', { inChannels: ch[0], outChannels: cfg.outChannels, kernel: 3 });
  // time_conv_out: Conv3d (3,1,1) across the chunk's frames, zero-padded at both ends
  const video = conv3dTemporal(g, toVideo(g, h, frames, cfg.outChannels), 'decoder.time_conv_out', {
    inChannels: cfg.outChannels,
    outChannels: cfg.outChannels,
  });
  g.output(fromVideo(g, video, cfg.outChannels), 'frames', ['num_frames', cfg.outChannels, 'height', 'width']);
}

/**
 * Builds `<outDir>/vae_decoder.onnx` from a checkpoint (root or `vae/` directory) or a {config, weights} pair.
 * Throws CheckpointError listing every missing or mis-shaped tensor.
 */
export function buildVaeDecoderGraph(source: ComponentSource, options: GraphBuildOptions): BuildInfo {
  return buildVaePart(
    {
      name: 'vae_decoder',
      docString: 'svd-runtime temporal VAE decoder',
      prefixes: ['decoder.'],
      define: defineVaeDecoder,
    },
    source,
    options,
  );
}

/** Every tensor the decoder graph of this config reads (name and shape). */
export function vaeDecoderWeights(config: Record<string, unknown>): WeightRequest[] {
  const cfg = parseVaeConfig(config);
  return listWeights((g) => defineVaeDecoder(g, cfg));
}
