/**
 * image_encoder/config.json of transformers' CLIPVisionModelWithProjection (docs/pipeline.md §9). Absent keys take
 * transformers' CLIPVisionConfig defaults — note hidden_act defaults to "quick_gelu" there, while SVD's
 * config says "gelu".
 */
import { ConfigReader } from '../onnx/build.js';

export interface ClipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numChannels: number;
  imageSize: number;
  patchSize: number;
  projectionDim: number;
  hiddenAct: string;
  layerNormEps: number;
}

const ACTIVATIONS = ['gelu', 'quick_gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu', 'silu'];

export function parseClipVisionConfig(
  config: Record<string, unknown>,
  path = 'image_encoder/config.json',
): ClipVisionConfig {
  // a full CLIPConfig nests the tower under vision_config; the SVD image_encoder config is flat
  const flat = (
    config.vision_config && typeof config.vision_config === 'object'
      ? { ...config, ...(config.vision_config as object) }
      : config
  ) as Record<string, unknown>;
  const r = new ConfigReader(flat, path);
  const cfg: ClipVisionConfig = {
    hiddenSize: r.int('hidden_size', 768),
    intermediateSize: r.int('intermediate_size', 3072),
    numHiddenLayers: r.int('num_hidden_layers', 12),
    numAttentionHeads: r.int('num_attention_heads', 12),
    numChannels: r.int('num_channels', 3),
    imageSize: r.int('image_size', 224),
    patchSize: r.int('patch_size', 32),
    projectionDim: r.int('projection_dim', 512),
    hiddenAct: r.string('hidden_act', 'quick_gelu'),
    layerNormEps: r.number('layer_norm_eps', 1e-5),
  };
  r.check(
    cfg.hiddenSize % cfg.numAttentionHeads === 0,
    'num_attention_heads',
    `${cfg.numAttentionHeads} does not divide hidden_size ${cfg.hiddenSize}`,
  );
  r.check(
    cfg.imageSize % cfg.patchSize === 0,
    'patch_size',
    `${cfg.patchSize} does not divide image_size ${cfg.imageSize}`,
  );
  r.check(
    ACTIVATIONS.includes(cfg.hiddenAct),
    'hidden_act',
    `${JSON.stringify(cfg.hiddenAct)} is not supported (allowed: ${ACTIVATIONS.join(', ')})`,
  );
  return cfg;
}
