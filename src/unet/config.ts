/**
 * `unet/config.json` of a UNetSpatioTemporalConditionModel, normalised to per-level arrays, and the block
 * plan diffusers derives from it (channels, layer counts, heads, GroupNorm eps per block — docs/pipeline.md §7.2, §7.4).
 * Pure: no graph, no files beyond the JSON object handed in.
 */
import { ModelFormatError } from '../errors.js';

export type DownBlockType = 'CrossAttnDownBlockSpatioTemporal' | 'DownBlockSpatioTemporal';
export type UpBlockType = 'CrossAttnUpBlockSpatioTemporal' | 'UpBlockSpatioTemporal';

const DOWN_TYPES: readonly DownBlockType[] = ['CrossAttnDownBlockSpatioTemporal', 'DownBlockSpatioTemporal'];
const UP_TYPES: readonly UpBlockType[] = ['CrossAttnUpBlockSpatioTemporal', 'UpBlockSpatioTemporal'];

/**
 * transformer_layers_per_block for one level: an int (the same for every transformer of the level) or a
 * list with one depth per transformer (the "nested" form of diffusers).
 */
export type TransformerDepths = number | number[];

/** The config with every per-level option expanded to one entry per level (index = down level). */
export interface UnetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  downBlockTypes: DownBlockType[];
  upBlockTypes: UpBlockType[];
  layersPerBlock: number[];
  numAttentionHeads: number[];
  crossAttentionDim: number[];
  transformerLayersPerBlock: TransformerDepths[];
  additionTimeEmbedDim: number;
  projectionClassEmbeddingsInputDim: number;
}

/** diffusers' constructor defaults, used for keys a config omits. */
const DEFAULTS = {
  in_channels: 8,
  out_channels: 4,
  block_out_channels: [320, 640, 1280, 1280],
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
  addition_time_embed_dim: 256,
  projection_class_embeddings_input_dim: 768,
  layers_per_block: 2,
  cross_attention_dim: 1024,
  transformer_layers_per_block: 1,
  num_attention_heads: [5, 10, 20, 20],
} as const;

const GROUPS = 32;

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/**
 * Validates and normalises a parsed `unet/config.json`. `source` names the file in errors.
 * Throws ModelFormatError naming the file and listing every problem found.
 */
export function parseUnetConfig(raw: Record<string, unknown>, source = 'unet/config.json'): UnetConfig {
  const problems: string[] = [];
  const get = (key: keyof typeof DEFAULTS): unknown =>
    raw[key] === undefined || raw[key] === null ? DEFAULTS[key] : raw[key];

  const posInt = (key: keyof typeof DEFAULTS): number => {
    const v = get(key);
    if (!isPosInt(v)) problems.push(`${key}: must be a positive integer (got ${JSON.stringify(v)})`);
    return v as number;
  };
  const blockOutChannels = get('block_out_channels') as number[];
  if (!Array.isArray(blockOutChannels) || blockOutChannels.length === 0 || !blockOutChannels.every(isPosInt)) {
    throw new ModelFormatError(
      source,
      `block_out_channels: must be a non-empty list of positive integers (got ${JSON.stringify(blockOutChannels)})`,
    );
  }
  const levels = blockOutChannels.length;

  // int → same for every level; list → one per level (diffusers checks the length the same way)
  const perLevel = (key: keyof typeof DEFAULTS): number[] => {
    const v = get(key);
    if (isPosInt(v)) return Array(levels).fill(v);
    if (Array.isArray(v) && v.length === levels && v.every(isPosInt)) return v as number[];
    problems.push(
      `${key}: must be a positive integer or a list of ${levels} positive integers, one per level (got ${JSON.stringify(v)})`,
    );
    return Array(levels).fill(1);
  };

  const blockTypes = <T extends string>(key: 'down_block_types' | 'up_block_types', allowed: readonly T[]): T[] => {
    const v = get(key);
    if (!Array.isArray(v) || v.length !== levels) {
      problems.push(
        `${key}: must list ${levels} block types, one per entry of block_out_channels (got ${JSON.stringify(v)})`,
      );
      return [];
    }
    v.forEach((t, i) => {
      if (!allowed.includes(t as T))
        problems.push(`${key}[${i}]: "${t}" is not supported; allowed: ${allowed.join(', ')}`);
    });
    return v as T[];
  };

  const transformerDepths = (): TransformerDepths[] => {
    const v = get('transformer_layers_per_block');
    if (isPosInt(v)) return Array(levels).fill(v);
    const ok =
      Array.isArray(v) &&
      v.length === levels &&
      v.every((e) => isPosInt(e) || (Array.isArray(e) && e.length > 0 && e.every(isPosInt)));
    if (!ok) {
      problems.push(
        `transformer_layers_per_block: must be a positive integer, or a list of ${levels} entries (one per level), ` +
          `each a positive integer or a list of positive integers (got ${JSON.stringify(v)})`,
      );
      return Array(levels).fill(1);
    }
    return (v as TransformerDepths[]).map((e) => (Array.isArray(e) ? [...e] : e));
  };

  const config: UnetConfig = {
    inChannels: posInt('in_channels'),
    outChannels: posInt('out_channels'),
    blockOutChannels: [...blockOutChannels],
    downBlockTypes: blockTypes('down_block_types', DOWN_TYPES),
    upBlockTypes: blockTypes('up_block_types', UP_TYPES),
    layersPerBlock: perLevel('layers_per_block'),
    numAttentionHeads: perLevel('num_attention_heads'),
    crossAttentionDim: perLevel('cross_attention_dim'),
    transformerLayersPerBlock: transformerDepths(),
    additionTimeEmbedDim: posInt('addition_time_embed_dim'),
    projectionClassEmbeddingsInputDim: posInt('projection_class_embeddings_input_dim'),
  };

  blockOutChannels.forEach((c, i) => {
    if (c % GROUPS !== 0)
      problems.push(`block_out_channels[${i}]: ${c} is not a multiple of ${GROUPS} (GroupNorm uses ${GROUPS} groups)`);
    const heads = config.numAttentionHeads[i];
    if (heads && c % heads !== 0)
      problems.push(`num_attention_heads[${i}]: ${heads} does not divide the level's ${c} channels`);
  });
  if (new Set(config.crossAttentionDim).size > 1) {
    // diffusers accepts this in the constructor, but one encoder_hidden_states tensor cannot feed them all
    problems.push(
      `cross_attention_dim: levels differ (${JSON.stringify(config.crossAttentionDim)}); SVD passes one encoder_hidden_states to every level`,
    );
  }
  if (config.additionTimeEmbedDim && config.projectionClassEmbeddingsInputDim % config.additionTimeEmbedDim !== 0) {
    problems.push(
      `projection_class_embeddings_input_dim: ${config.projectionClassEmbeddingsInputDim} ` +
        `must be a multiple of addition_time_embed_dim ${config.additionTimeEmbedDim} (one sinusoid per added time id)`,
    );
  }
  if (problems.length === 0) {
    // diffusers indexes the nested form per transformer; a short list fails there with an IndexError
    for (const block of [...planDownBlocks(config), planMidBlock(config), ...planUpBlocks(config)]) {
      if (block.hasCrossAttention && block.transformerDepths.some((d) => !isPosInt(d))) {
        problems.push(
          `transformer_layers_per_block[${block.level}]: needs ${block.numLayers} depths for ${block.name} ` +
            `(got ${JSON.stringify(config.transformerLayersPerBlock[block.level])})`,
        );
      }
    }
  }
  if (problems.length)
    throw new ModelFormatError(source, `cannot build the UNet from this config:\n  ${problems.join('\n  ')}`);
  return config;
}

/** Number of ids in `added_time_ids` (3 for SVD: fps−1, motion_bucket_id, cond_aug). */
export function numAddedTimeIds(c: UnetConfig): number {
  return c.projectionClassEmbeddingsInputDim / c.additionTimeEmbedDim;
}

/** Width of the time embedding every resnet sees: 4 × block_out_channels[0]. */
export function timeEmbedDim(c: UnetConfig): number {
  return c.blockOutChannels[0] * 4;
}

/** What one down/mid/up block is made of, as diffusers' constructors compute it. */
export interface BlockPlan {
  /** Weight prefix, e.g. `down_blocks.0`, `mid_block`, `up_blocks.1`. */
  name: string;
  /** The down level whose config entries apply (for error messages). */
  level: number;
  hasCrossAttention: boolean;
  /** Resnet count (up blocks: layers_per_block + 1). */
  numLayers: number;
  inChannels: number;
  outChannels: number;
  /** Up blocks: channels of the previous up block's output (the first resnet's main input). */
  prevOutputChannels: number;
  /** Depth of the transformer after each resnet (empty without cross-attention). */
  transformerDepths: number[];
  heads: number;
  crossAttentionDim: number;
  /** GroupNorm eps of the block's resnets (docs/pipeline.md §7.4: diffusers hard-codes these per block class). */
  resnetEps: number;
  /** Down blocks: Downsample2D at the end; up blocks: Upsample2D at the end. */
  resample: boolean;
}

function depthsFor(d: TransformerDepths, numLayers: number): number[] {
  return Array.isArray(d) ? Array.from({ length: numLayers }, (_, i) => d[i]) : Array(numLayers).fill(d);
}

/** diffusers `get_down_block` as called by the SVD UNet. */
export function planDownBlocks(c: UnetConfig): BlockPlan[] {
  const n = c.blockOutChannels.length;
  return c.downBlockTypes.map((type, i) => {
    const cross = type === 'CrossAttnDownBlockSpatioTemporal';
    return {
      name: `down_blocks.${i}`,
      level: i,
      hasCrossAttention: cross,
      numLayers: c.layersPerBlock[i],
      inChannels: i === 0 ? c.blockOutChannels[0] : c.blockOutChannels[i - 1],
      outChannels: c.blockOutChannels[i],
      prevOutputChannels: 0,
      transformerDepths: cross ? depthsFor(c.transformerLayersPerBlock[i], c.layersPerBlock[i]) : [],
      heads: c.numAttentionHeads[i],
      crossAttentionDim: c.crossAttentionDim[i],
      // CrossAttnDownBlockSpatioTemporal hard-codes 1e-6, DownBlockSpatioTemporal 1e-5 (resnet_eps is ignored)
      resnetEps: cross ? 1e-6 : 1e-5,
      resample: i < n - 1,
    };
  });
}

/** UNetMidBlockSpatioTemporal: resnet, then one transformer + resnet (num_layers = 1), eps 1e-5. */
export function planMidBlock(c: UnetConfig): BlockPlan {
  const last = c.blockOutChannels.length - 1;
  const channels = c.blockOutChannels[last];
  return {
    name: 'mid_block',
    level: last,
    hasCrossAttention: true,
    numLayers: 1,
    inChannels: channels,
    outChannels: channels,
    prevOutputChannels: channels,
    transformerDepths: depthsFor(c.transformerLayersPerBlock[last], 1),
    heads: c.numAttentionHeads[last],
    crossAttentionDim: c.crossAttentionDim[last],
    resnetEps: 1e-5,
    resample: false,
  };
}

/** diffusers `get_up_block` as called by the SVD UNet (per-level options reversed). */
export function planUpBlocks(c: UnetConfig): BlockPlan[] {
  const n = c.blockOutChannels.length;
  const rev = <T>(a: T[]): T[] => [...a].reverse();
  const channels = rev(c.blockOutChannels);
  const layers = rev(c.layersPerBlock);
  const heads = rev(c.numAttentionHeads);
  const crossDims = rev(c.crossAttentionDim);
  const depths = rev(c.transformerLayersPerBlock);
  let outputChannels = channels[0];
  return c.upBlockTypes.map((type, i) => {
    const cross = type === 'CrossAttnUpBlockSpatioTemporal';
    const prevOutputChannels = outputChannels;
    outputChannels = channels[i];
    const numLayers = layers[i] + 1;
    return {
      name: `up_blocks.${i}`,
      level: n - 1 - i,
      hasCrossAttention: cross,
      numLayers,
      inChannels: channels[Math.min(i + 1, n - 1)],
      outChannels: outputChannels,
      prevOutputChannels,
      transformerDepths: cross ? depthsFor(depths[i], numLayers) : [],
      heads: heads[i],
      crossAttentionDim: crossDims[i],
      // get_up_block does not forward resnet_eps, so the up block classes' default 1e-6 applies
      resnetEps: 1e-6,
      resample: i < n - 1,
    };
  });
}
