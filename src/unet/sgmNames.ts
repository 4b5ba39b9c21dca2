/**
 * Stability's sgm (generative-models) names of the SVD UNet's tensors, as original checkpoints and MotionCtrl's
 * `motionctrl_svd.ckpt` hold them (`model.diffusion_model.input_blocks.1.1.time_stack.0.cc_projection.weight`),
 * mapped to the diffusers names our builder asks for (docs/camera-motion.md, "Checkpoint names"). The builder
 * keeps its one naming; a checkpoint in sgm layout is read through `sgmUnetWeights`.
 */
import type { SafetensorsCheckpoint } from '../safetensors/reader.js';
import type { WeightSource } from '../onnx/weights.js';
import { planDownBlocks, planMidBlock, planUpBlocks, type UnetConfig } from './config.js';

/** Where the UNet lives inside an sgm DiffusionEngine state dict. */
export const SGM_UNET_PREFIX = 'model.diffusion_model.';

/** diffusers block prefix → sgm module prefix, and what kind of module it is (for the names inside). */
interface BlockMapping {
  diffusers: string;
  sgm: string;
  kind: 'resnet' | 'transformer' | 'plain';
}

/** The module-level correspondence for a config (sgm numbers blocks in order: resnets, transformers, resamplers). */
export function sgmBlockMappings(config: UnetConfig): BlockMapping[] {
  const m: BlockMapping[] = [
    { diffusers: 'time_embedding.linear_1', sgm: 'time_embed.0', kind: 'plain' },
    { diffusers: 'time_embedding.linear_2', sgm: 'time_embed.2', kind: 'plain' },
    { diffusers: 'add_embedding.linear_1', sgm: 'label_emb.0.0', kind: 'plain' },
    { diffusers: 'add_embedding.linear_2', sgm: 'label_emb.0.2', kind: 'plain' },
    { diffusers: 'conv_in', sgm: 'input_blocks.0.0', kind: 'plain' },
    { diffusers: 'conv_norm_out', sgm: 'out.0', kind: 'plain' },
    { diffusers: 'conv_out', sgm: 'out.2', kind: 'plain' },
  ];
  let k = 1;
  for (const b of planDownBlocks(config)) {
    for (let j = 0; j < b.numLayers; j++, k++) {
      m.push({ diffusers: `${b.name}.resnets.${j}`, sgm: `input_blocks.${k}.0`, kind: 'resnet' });
      if (b.hasCrossAttention)
        m.push({ diffusers: `${b.name}.attentions.${j}`, sgm: `input_blocks.${k}.1`, kind: 'transformer' });
    }
    if (b.resample)
      m.push({ diffusers: `${b.name}.downsamplers.0.conv`, sgm: `input_blocks.${k++}.0.op`, kind: 'plain' });
  }
  const mid = planMidBlock(config);
  m.push({ diffusers: `${mid.name}.resnets.0`, sgm: 'middle_block.0', kind: 'resnet' });
  m.push({ diffusers: `${mid.name}.attentions.0`, sgm: 'middle_block.1', kind: 'transformer' });
  m.push({ diffusers: `${mid.name}.resnets.1`, sgm: 'middle_block.2', kind: 'resnet' });
  k = 0;
  for (const b of planUpBlocks(config)) {
    for (let j = 0; j < b.numLayers; j++, k++) {
      m.push({ diffusers: `${b.name}.resnets.${j}`, sgm: `output_blocks.${k}.0`, kind: 'resnet' });
      if (b.hasCrossAttention)
        m.push({ diffusers: `${b.name}.attentions.${j}`, sgm: `output_blocks.${k}.1`, kind: 'transformer' });
      if (b.resample && j === b.numLayers - 1) {
        m.push({
          diffusers: `${b.name}.upsamplers.0.conv`,
          sgm: `output_blocks.${k}.${b.hasCrossAttention ? 2 : 1}.conv`,
          kind: 'plain',
        });
      }
    }
  }
  return m;
}

/** Inside a SpatioTemporalResBlock: diffusers' spatial/temporal res blocks are sgm's ResBlock and its `time_stack`. */
function resnetInner(rest: string): string | undefined {
  const layer: Record<string, string> = {
    norm1: 'in_layers.0',
    conv1: 'in_layers.2',
    time_emb_proj: 'emb_layers.1',
    norm2: 'out_layers.0',
    conv2: 'out_layers.3',
    conv_shortcut: 'skip_connection',
  };
  if (rest === 'time_mixer.mix_factor') return rest;
  const r = /^(spatial_res_block|temporal_res_block)\.([a-z_0-9]+)\.(weight|bias)$/.exec(rest);
  if (!r || !layer[r[2]]) return undefined;
  return `${r[1] === 'temporal_res_block' ? 'time_stack.' : ''}${layer[r[2]]}.${r[3]}`;
}

/** Inside a TransformerSpatioTemporalModel: temporal blocks are sgm's `time_stack`, the embedding MLP is numbered. */
function transformerInner(rest: string): string {
  return rest
    .replace(/^temporal_transformer_blocks\./, 'time_stack.')
    .replace(/^time_pos_embed\.linear_1\./, 'time_pos_embed.0.')
    .replace(/^time_pos_embed\.linear_2\./, 'time_pos_embed.2.');
}

/** A function mapping each diffusers UNet tensor name to its sgm name (without the engine prefix), or undefined. */
export function diffusersToSgm(config: UnetConfig): (name: string) => string | undefined {
  // longest prefix first, so `down_blocks.0.resnets.1` never matches `down_blocks.0.resnets.10`'s rule
  const blocks = sgmBlockMappings(config).sort((a, b) => b.diffusers.length - a.diffusers.length);
  return (name) => {
    for (const b of blocks) {
      if (!name.startsWith(`${b.diffusers}.`)) continue;
      const rest = name.slice(b.diffusers.length + 1);
      if (b.kind === 'plain') return `${b.sgm}.${rest}`;
      const inner = b.kind === 'resnet' ? resnetInner(rest) : transformerInner(rest);
      return inner === undefined ? undefined : `${b.sgm}.${inner}`;
    }
    return undefined;
  };
}

/**
 * The UNet tensors of an sgm-layout checkpoint (a `.ckpt` or `.safetensors` with `model.diffusion_model.*`),
 * looked up by diffusers name. `names()` lists the checkpoint's UNet tensors under their diffusers names (or
 * `sgm:<name>` when unmapped), so the builder's "unexpected weights" check works as for diffusers checkpoints.
 *
 * @example
 *   const weights = sgmUnetWeights(openTorchCheckpoint(p), parseUnetConfig(config), allNames);
 *   buildUnetGraph({ config, weights }, o);
 */
export function sgmUnetWeights(
  ckpt: SafetensorsCheckpoint,
  config: UnetConfig,
  diffusersNames: string[],
  prefix = SGM_UNET_PREFIX,
): WeightSource {
  const toSgm = diffusersToSgm(config);
  const reverse = new Map<string, string>();
  for (const n of diffusersNames) {
    const s = toSgm(n);
    if (s) reverse.set(prefix + s, n);
  }
  return {
    description: `${ckpt.files.join(', ')} (sgm layout, ${prefix}*)`,
    dry: false,
    lookup(name) {
      const s = toSgm(name);
      const info = s === undefined ? undefined : ckpt.tensors.get(prefix + s);
      return info ? { kind: 'found', info } : { kind: 'missing' };
    },
    names: () => [...ckpt.tensors.keys()].filter((n) => n.startsWith(prefix)).map((n) => reverse.get(n) ?? `sgm:${n}`),
  };
}

/** True when a checkpoint's tensor names are sgm's (an SVD DiffusionEngine or its bare UNet). */
export function looksLikeSgmUnet(names: Iterable<string>, prefix = SGM_UNET_PREFIX): boolean {
  for (const n of names) if (n.startsWith(`${prefix}input_blocks.`)) return true;
  return false;
}
