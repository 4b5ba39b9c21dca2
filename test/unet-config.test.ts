/**
 * The UNet block plan (channels, layer counts, GroupNorm eps) against two independent oracles: the tensor
 * shapes stored in the tiny reference checkpoint, and the SVD-XT channel table of docs/pipeline.md §7.4.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../src/errors.js';
import { readSafetensorsHeader } from '../src/safetensors/index.js';
import {
  numAddedTimeIds,
  parseUnetConfig,
  planDownBlocks,
  planMidBlock,
  planUpBlocks,
  timeEmbedDim,
} from '../src/unet/config.js';

const TINY = 'test/fixtures/reference/tiny-svd/unet';

const SVD_XT = {
  in_channels: 8,
  out_channels: 4,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  down_block_types: [
    'CrossAttnDownBlockSpatioTemporal',
    'CrossAttnDownBlockSpatioTemporal',
    'CrossAttnDownBlockSpatioTemporal',
    'DownBlockSpatioTemporal',
  ],
  up_block_types: [
    'UpBlockSpatioTemporal',
    'CrossAttnUpBlockSpatioTemporal',
    'CrossAttnUpBlockSpatioTemporal',
    'CrossAttnUpBlockSpatioTemporal',
  ],
  num_attention_heads: [5, 10, 20, 20],
  cross_attention_dim: 1024,
  transformer_layers_per_block: 1,
  addition_time_embed_dim: 256,
  projection_class_embeddings_input_dim: 768,
};

describe('parseUnetConfig / block plan', () => {
  it('matches every resnet and transformer shape of the tiny reference checkpoint', () => {
    const config = parseUnetConfig(JSON.parse(readFileSync(`${TINY}/config.json`, 'utf8')));
    const { tensors } = readSafetensorsHeader(`${TINY}/diffusion_pytorch_model.safetensors`);
    const shape = (name: string): number[] => {
      const t = tensors.get(name);
      if (!t) throw new Error(`missing ${name}`);
      return t.shape;
    };
    expect(shape('time_embedding.linear_1.weight')).toEqual([timeEmbedDim(config), config.blockOutChannels[0]]);
    expect(shape('add_embedding.linear_1.weight')[1]).toBe(config.projectionClassEmbeddingsInputDim);
    expect(numAddedTimeIds(config)).toBe(3);
    const blocks = [...planDownBlocks(config), planMidBlock(config), ...planUpBlocks(config)];
    for (const b of blocks) {
      const resnets = b.name === 'mid_block' ? b.numLayers + 1 : b.numLayers;
      for (let j = 0; j < resnets; j++) {
        const conv1 = shape(`${b.name}.resnets.${j}.spatial_res_block.conv1.weight`);
        expect(conv1[0]).toBe(b.outChannels);
        expect(tensors.has(`${b.name}.resnets.${j + 1}.spatial_res_block.conv1.weight`)).toBe(j + 1 < resnets);
      }
      for (let j = 0; j < b.transformerDepths.length; j++) {
        expect(shape(`${b.name}.attentions.${j}.proj_in.weight`)).toEqual([b.outChannels, b.outChannels]);
        expect(shape(`${b.name}.attentions.${j}.transformer_blocks.0.attn2.to_v.weight`)[1]).toBe(b.crossAttentionDim);
      }
      expect(tensors.has(`${b.name}.attentions.0.norm.weight`)).toBe(b.hasCrossAttention);
      const sampler = b.name.startsWith('down') ? 'downsamplers' : 'upsamplers';
      expect(tensors.has(`${b.name}.${sampler}.0.conv.weight`)).toBe(b.resample);
    }
    // the input width of each resnet's first conv is what the skip concatenation must produce
    const ups = planUpBlocks(config);
    for (const b of ups) {
      for (let j = 0; j < b.numLayers; j++) {
        const main = j === 0 ? b.prevOutputChannels : b.outChannels;
        const skip = j === b.numLayers - 1 ? b.inChannels : b.outChannels;
        expect(shape(`${b.name}.resnets.${j}.spatial_res_block.conv1.weight`)[1]).toBe(main + skip);
      }
    }
  });

  it('reproduces the SVD-XT channel table and GroupNorm eps of docs/pipeline.md §7.4', () => {
    const c = parseUnetConfig(SVD_XT);
    const ups = planUpBlocks(c);
    const resnetInputs = ups.map((b) =>
      Array.from(
        { length: b.numLayers },
        (_, j) =>
          (j === 0 ? b.prevOutputChannels : b.outChannels) + (j === b.numLayers - 1 ? b.inChannels : b.outChannels),
      ),
    );
    expect(resnetInputs).toEqual([
      [2560, 2560, 2560],
      [2560, 2560, 1920],
      [1920, 1280, 960],
      [960, 640, 640],
    ]);
    expect(ups.map((b) => b.heads)).toEqual([20, 20, 10, 5]);
    expect(ups.map((b) => b.resample)).toEqual([true, true, true, false]);
    expect(ups.every((b) => b.resnetEps === 1e-6)).toBe(true);
    expect(planDownBlocks(c).map((b) => b.resnetEps)).toEqual([1e-6, 1e-6, 1e-6, 1e-5]);
    expect(planMidBlock(c).resnetEps).toBe(1e-5);
    expect(planMidBlock(c).heads).toBe(20);
  });

  it('expands per-level and nested transformer_layers_per_block like diffusers', () => {
    const c = parseUnetConfig({
      ...SVD_XT,
      block_out_channels: [32, 64, 96],
      layers_per_block: [1, 2, 1],
      num_attention_heads: [2, 4, 3],
      down_block_types: [
        'CrossAttnDownBlockSpatioTemporal',
        'CrossAttnDownBlockSpatioTemporal',
        'DownBlockSpatioTemporal',
      ],
      up_block_types: ['UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'],
      transformer_layers_per_block: [[1, 2], [2, 1, 3], 2],
    });
    expect(planDownBlocks(c).map((b) => b.transformerDepths)).toEqual([[1], [2, 1], []]);
    // up blocks read the reversed per-level list, with one more layer than the down level
    expect(planUpBlocks(c).map((b) => b.transformerDepths)).toEqual([[], [2, 1, 3], [1, 2]]);
    // the mid block takes the last level's entry (an int here)
    expect(planMidBlock(c).transformerDepths).toEqual([2]);
  });

  it('rejects unusable configs with every problem named', () => {
    let error: unknown;
    try {
      parseUnetConfig(
        {
          ...SVD_XT,
          block_out_channels: [320, 650, 1280, 1280],
          num_attention_heads: [5, 10, 7, 20],
          up_block_types: ['UpBlock3D'],
        },
        'x/unet/config.json',
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ModelFormatError);
    const message = (error as Error).message;
    expect(message).toContain('x/unet/config.json');
    expect(message).toContain('block_out_channels[1]');
    expect(message).toContain('num_attention_heads[2]');
    expect(message).toContain('up_block_types');
    // a nested depth list too short for an up block (layers_per_block + 1 transformers)
    expect(() =>
      parseUnetConfig({
        ...SVD_XT,
        transformer_layers_per_block: [
          [1, 1],
          [1, 1],
          [1, 1],
          [1, 1],
        ],
      }),
    ).toThrow(/transformer_layers_per_block\[\d\]: needs 3 depths/);
  });
});
