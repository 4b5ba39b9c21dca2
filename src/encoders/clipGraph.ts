/**
 * The CLIP image encoder graph (docs/pipeline.md §9): transformers' CLIPVisionModelWithProjection.
 *
 *   pixel_values [B, 3, S, S] (already resized and normalised) → image_embeds [B, projection_dim]
 *
 * patch Conv (no bias) → [CLS] + patches + position embedding → pre_layrnorm → pre-LN encoder layers
 * → CLS token → post_layernorm → visual_projection (no bias).
 */
import { type BuildInfo, saveGraph } from '../onnx/save.js';
import { GraphBuilder, type Value } from '../onnx/graph.js';
import { resolveComponent, type ComponentSource, type GraphBuildOptions } from '../onnx/build.js';
import { listWeights } from '../onnx/randomWeights.js';
import type { WeightRequest } from '../onnx/weights.js';
import { activation, add, layerNorm, linear, reshape, shapeConcat, shapeOf } from '../onnx/layers/basic.js';
import { rearrange } from '../onnx/layers/rearrange.js';
import { attention } from '../onnx/layers/attention.js';
import { parseClipVisionConfig, type ClipVisionConfig } from './clipConfig.js';

/** CLIPEncoderLayer: x += attn(LN1(x)); x += fc2(act(fc1(LN2(x)))). */
function encoderLayer(g: GraphBuilder, x: Value, prefix: string, cfg: ClipVisionConfig): Value {
  const d = cfg.hiddenSize;
  const eps = cfg.layerNormEps;
  const h = layerNorm(g, x, `${prefix}.layer_norm1`, { channels: d, eps });
  const q = linear(g, h, `${prefix}.self_attn.q_proj`, d, d);
  const k = linear(g, h, `${prefix}.self_attn.k_proj`, d, d);
  const v = linear(g, h, `${prefix}.self_attn.v_proj`, d, d);
  const a = attention(g, q, k, v, { heads: cfg.numAttentionHeads, headDim: d / cfg.numAttentionHeads });
  const x1 = add(g, x, linear(g, a, `${prefix}.self_attn.out_proj`, d, d), `${prefix}/attn_residual`);
  const m = linear(
    g,
    layerNorm(g, x1, `${prefix}.layer_norm2`, { channels: d, eps }),
    `${prefix}.mlp.fc1`,
    d,
    cfg.intermediateSize,
  );
  const y = linear(g, activation(g, m, cfg.hiddenAct), `${prefix}.mlp.fc2`, cfg.intermediateSize, d);
  return add(g, x1, y, `${prefix}/mlp_residual`);
}

/** Adds the image encoder to `g`: input `pixel_values`, output `image_embeds`. */
export function defineClipImageEncoder(g: GraphBuilder, cfg: ClipVisionConfig): void {
  const d = cfg.hiddenSize;
  const p = cfg.patchSize;
  const grid = cfg.imageSize / p;
  const positions = grid * grid + 1;
  const pixels = g.input('pixel_values', ['batch', cfg.numChannels, cfg.imageSize, cfg.imageSize]);

  // patch embedding: stride-p conv without bias → [B, d, g, g] → [B, g², d]
  const w = g.weight('vision_model.embeddings.patch_embedding.weight', [d, cfg.numChannels, p, p]);
  const patches = g.op(
    'Conv',
    [pixels, w],
    { kernel_shape: [p, p], strides: [p, p] },
    { name: 'vision_model.embeddings.patch_embedding' },
  );
  const tokens = rearrange(g, patches, 'n d h w -> n (h w) d');
  // class token, broadcast over the batch, goes first
  const cls = reshape(g, g.weight('vision_model.embeddings.class_embedding', [d]), [1, 1, d]);
  const clsBatch = g.op('Expand', [cls, shapeConcat(g, [shapeOf(g, pixels, 0, 1), [1, d]])], {}, { name: 'cls' });
  let x = g.op('Concat', [clsBatch, tokens], { axis: 1 }, { name: 'embeddings' });
  x = add(g, x, g.weight('vision_model.embeddings.position_embedding.weight', [positions, d]), 'position_embedding');

  // transformers' spelling: "pre_layrnorm"
  x = layerNorm(g, x, 'vision_model.pre_layrnorm', { channels: d, eps: cfg.layerNormEps });
  for (let i = 0; i < cfg.numHiddenLayers; i++) x = encoderLayer(g, x, `vision_model.encoder.layers.${i}`, cfg);

  const pooled = g.op('Gather', [x, g.int64([0])], { axis: 1 }, { name: 'cls_token' }); // [B, 1, d]
  const normed = layerNorm(g, reshape(g, pooled, [0, d]), 'vision_model.post_layernorm', {
    channels: d,
    eps: cfg.layerNormEps,
  });
  const embeds = linear(g, normed, 'visual_projection', d, cfg.projectionDim, { bias: false });
  g.output(embeds, 'image_embeds', ['batch', cfg.projectionDim]);
}

/**
 * Builds `<outDir>/image_encoder.onnx` from a checkpoint (root or `image_encoder/` directory) or a
 * {config, weights} pair. Throws CheckpointError listing every missing or mis-shaped tensor.
 */
export function buildClipImageEncoderGraph(source: ComponentSource, options: GraphBuildOptions): BuildInfo {
  const c = resolveComponent(source, 'image_encoder', options.variant);
  const cfg = parseClipVisionConfig(c.config, c.configPath);
  const g = new GraphBuilder({
    name: 'image_encoder',
    dtype: options.dtype ?? 'float32',
    weights: c.weights,
    weightStorage: options.weightStorage,
    target: options.target,
  });
  defineClipImageEncoder(g, cfg);
  const info = saveGraph(g, options.outDir, options.fileName ?? 'image_encoder.onnx', {
    docString: `svd-runtime CLIP image encoder (target ${options.target ?? 'cpu'})`,
  });
  // position_ids is a buffer some older checkpoints carry; it is not a weight
  return { ...info, unusedWeights: info.unusedWeights.filter((n) => !n.endsWith('embeddings.position_ids')) };
}

/** Every tensor the image encoder graph of this config reads (name and shape). */
export function clipImageEncoderWeights(config: Record<string, unknown>): WeightRequest[] {
  const cfg = parseClipVisionConfig(config);
  return listWeights((g) => defineClipImageEncoder(g, cfg));
}
