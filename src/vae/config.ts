/**
 * vae/config.json of AutoencoderKLTemporalDecoder (docs/pipeline.md §8.1), with diffusers' defaults for absent keys.
 */
import { ConfigReader } from '../onnx/build.js';

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  /** GroupNorm groups everywhere (diffusers: 32; `norm_num_groups` when a config has it). */
  normGroups: number;
  /** quant_conv (1×1, 2L → 2L) after the encoder; AutoencoderKLTemporalDecoder always has one. */
  useQuantConv: boolean;
  /** Whether the encoder's mid block has its attention (diffusers `mid_block_add_attention`, default true). */
  midBlockAddAttention: boolean;
  scalingFactor: number;
}

export function parseVaeConfig(config: Record<string, unknown>, path = 'vae/config.json'): VaeConfig {
  const r = new ConfigReader(config, path);
  const blockOutChannels = r.ints('block_out_channels', [64]);
  const normGroups = r.int('norm_num_groups', 32);
  for (const c of blockOutChannels)
    r.check(c % normGroups === 0, 'block_out_channels', `${c} is not divisible by ${normGroups} norm groups`);
  if (r.has('down_block_types')) {
    const types = r.strings('down_block_types');
    r.check(
      types.length === blockOutChannels.length,
      'down_block_types',
      `has ${types.length} entries but block_out_channels has ${blockOutChannels.length}`,
    );
    r.check(
      types.every((t) => t === 'DownEncoderBlock2D'),
      'down_block_types',
      'only DownEncoderBlock2D is supported',
    );
  }
  return {
    inChannels: r.int('in_channels', 3),
    outChannels: r.int('out_channels', 3),
    latentChannels: r.int('latent_channels', 4),
    blockOutChannels,
    layersPerBlock: r.int('layers_per_block', 1),
    normGroups,
    useQuantConv: r.bool('use_quant_conv', true),
    midBlockAddAttention: r.bool('mid_block_add_attention', true),
    scalingFactor: r.number('scaling_factor', 0.18215),
  };
}
