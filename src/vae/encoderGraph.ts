/**
 * The VAE encoder graph (docs/pipeline.md §8.2): diffusers `Encoder` + `quant_conv`, returning the posterior mean
 * (the first latent_channels of the 2·latent_channels moments; the pipeline uses `latent_dist.mode()`).
 *
 *   sample [B, 3, H, W] → latent_mean [B, L, H/s, W/s]      (s = 2^(levels−1))
 */
import type { BuildInfo } from '../onnx/save.js';
import type { GraphBuilder } from '../onnx/graph.js';
import type { AttentionChoice, ComponentSource, GraphBuildOptions } from '../onnx/build.js';
import { listWeights } from '../onnx/randomWeights.js';
import type { WeightRequest } from '../onnx/weights.js';
import { conv2d, groupNorm, silu } from '../onnx/layers/basic.js';
import { downsample2D, resnetBlock2D } from '../onnx/layers/resnet.js';
import { spatialSelfAttention } from '../onnx/layers/attention.js';
import { parseVaeConfig, type VaeConfig } from './config.js';
import { buildVaePart } from './build.js';

/** diffusers' Encoder uses eps 1e-6 for every resnet, the mid attention and the output norm. */
const EPS = 1e-6;

/** Adds the encoder to `g`: input `sample`, output `latent_mean`. */
export function defineVaeEncoder(
  g: GraphBuilder,
  cfg: VaeConfig,
  attention: AttentionChoice = { impl: 'primitive' },
): void {
  const ch = cfg.blockOutChannels;
  const groups = cfg.normGroups;
  const sample = g.input('sample', ['batch', cfg.inChannels, 'height', 'width']);
  let h = conv2d(g, sample, 'encoder.conv_in', { inChannels: cfg.inChannels, outChannels: ch[0], kernel: 3 });

  let out = ch[0];
  ch.forEach((blockChannels, i) => {
    const prefix = `encoder.down_blocks.${i}`;
    const input = out;
    out = blockChannels;
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      h = resnetBlock2D(g, h, `${prefix}.resnets.${j}`, {
        inChannels: j === 0 ? input : out,
        outChannels: out,
        eps: EPS,
        groups,
      });
    }
    // diffusers pads right/bottom by one and convolves with padding 0 (Downsample2D padding=0)
    if (i < ch.length - 1) h = downsample2D(g, h, `${prefix}.downsamplers.0`, { channels: out, padding: 0 });
  });

  // UNetMidBlock2D: resnet → attention (one head over h·w) → resnet
  const last = ch[ch.length - 1];
  h = resnetBlock2D(g, h, 'encoder.mid_block.resnets.0', { inChannels: last, outChannels: last, eps: EPS, groups });
  if (cfg.midBlockAddAttention) {
    h = spatialSelfAttention(g, h, 'encoder.mid_block.attentions.0', {
      channels: last,
      heads: 1,
      groups,
      eps: EPS,
      softmaxFloat32: true,
      ...attention,
    });
  }
  h = resnetBlock2D(g, h, 'encoder.mid_block.resnets.1', { inChannels: last, outChannels: last, eps: EPS, groups });

  h = silu(g, groupNorm(g, h, 'encoder.conv_norm_out', { channels: last, groups, eps: EPS }));
  const moments = 2 * cfg.latentChannels;
  h = conv2d(g, h, 'encoder.conv_out', { inChannels: last, outChannels: moments, kernel: 3 });
  if (cfg.useQuantConv) h = conv2d(g, h, 'quant_conv', { inChannels: moments, outChannels: moments, kernel: 1 });

  // posterior mean = first L channels (DiagonalGaussianDistribution chunks mean, logvar on dim 1)
  const mean = g.op(
    'Slice',
    [h, g.int64([0]), g.int64([cfg.latentChannels]), g.int64([1])],
    {},
    { name: 'latent_mean' },
  );
  g.output(mean, 'latent_mean', ['batch', cfg.latentChannels, 'latent_height', 'latent_width']);
}

/**
 * Builds `<outDir>/vae_encoder.onnx` from a checkpoint (root or `vae/` directory) or a {config, weights} pair.
 * Throws CheckpointError listing every missing or mis-shaped tensor.
 */
export function buildVaeEncoderGraph(source: ComponentSource, options: GraphBuildOptions): BuildInfo {
  return buildVaePart(
    {
      name: 'vae_encoder',
      docString: 'svd-runtime VAE encoder',
      prefixes: ['encoder.', 'quant_conv.'],
      define: defineVaeEncoder,
    },
    source,
    options,
  );
}

/** Every tensor the encoder graph of this config reads (name and shape). */
export function vaeEncoderWeights(config: Record<string, unknown>): WeightRequest[] {
  const cfg = parseVaeConfig(config);
  return listWeights((g) => defineVaeEncoder(g, cfg));
}
