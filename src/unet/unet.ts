/**
 * diffusers `UNetSpatioTemporalConditionModel.forward` as an ONNX graph (docs/pipeline.md §7): embeddings, conv_in,
 * down blocks, mid block, up blocks, conv_norm_out → SiLU → conv_out. Knows nothing about files.
 */
import type { GraphBuilder, Value } from '../onnx/graph.js';
import type { AttentionFormulation } from '../onnx/layers/attention.js';
import { conv2d, groupNorm, reshape, shapeConcat, shapeOf, silu } from '../onnx/layers/basic.js';
import { rearrange } from '../onnx/layers/rearrange.js';
import { downBlock, midBlock, upBlock, type Skip } from './blocks.js';
import {
  numAddedTimeIds,
  planDownBlocks,
  planMidBlock,
  planUpBlocks,
  timeEmbedDim,
  type UnetConfig,
} from './config.js';
import type { TemporalContextOrder, UnetContext } from './context.js';
import { timestepEmbedding, timestepSinusoid } from './embeddings.js';

/** The graph's fixed IO names (model manifest GRAPH_CONTRACT.unet). */
export const UNET_IO = {
  sample: 'sample',
  timestep: 'timestep',
  encoderHiddenStates: 'encoder_hidden_states',
  addedTimeIds: 'added_time_ids',
  /** MotionCtrl-SVD only: per-frame camera poses [B, F, 12]. */
  cameraPose: 'camera_pose',
  output: 'noise_pred',
} as const;

export interface UnetGraphOptions {
  /** Attention formulation (default 'primitive'; see AttentionFormulation). */
  attentionImpl?: AttentionFormulation;
  /** Score budget of 'chunked' attention. */
  maxScoreBytes?: number;
  /** Softmax in float32 inside fp16 graphs ('primitive' and 'chunked' attention). */
  softmaxFloat32?: boolean;
  /** Default 'per-video' (sgm, docs/pipeline.md §7.6, diffusers ≥ 0.28); 'diffusers-0.27' reproduces that release's run (see TemporalContextOrder). */
  temporalContextOrder?: TemporalContextOrder;
  /** Build the single-token cross-attentions literally (for node-count / equivalence measurements). */
  literalCrossAttention?: boolean;
  /** MotionCtrl's camera module: adds the `camera_pose` input [B, F, poseDim] and a cc_projection per temporal block. */
  camera?: { poseDim: number };
}

/**
 * Declares the inputs, builds the whole UNet on `g` and declares `noise_pred`.
 * IO: sample [B, F, Cin, h, w], timestep float32 0-d, encoder_hidden_states [B, 1, D],
 * added_time_ids [B, nIds] (+ camera_pose [B, F, poseDim] with `options.camera`) → noise_pred [B, F, Cout, h, w]
 * (B = 2·batch with CFG; B, F, h, w dynamic).
 * Returns the checkpoint tensors deliberately left out (see UnetContext.skipped).
 */
export function defineUnet(g: GraphBuilder, config: UnetConfig, options: UnetGraphOptions = {}): { skipped: string[] } {
  const sample = g.input(UNET_IO.sample, ['batch', 'frames', config.inChannels, 'height', 'width']);
  const timestep = g.input(UNET_IO.timestep, [], 'float32');
  // parseUnetConfig guarantees one cross_attention_dim for all levels
  const encoderHiddenStates = g.input(UNET_IO.encoderHiddenStates, ['batch', 1, config.crossAttentionDim[0]]);
  const addedTimeIds = g.input(UNET_IO.addedTimeIds, ['batch', numAddedTimeIds(config)]);
  const cameraPose = options.camera
    ? g.input(UNET_IO.cameraPose, ['batch', 'frames', options.camera.poseDim])
    : undefined;
  const out = unetSpatioTemporal(
    g,
    config,
    { sample, timestep, encoderHiddenStates, addedTimeIds, cameraPose },
    options,
  );
  g.output(out.noisePred, UNET_IO.output, ['batch', 'frames', config.outChannels, 'height', 'width']);
  return { skipped: out.skipped };
}

export interface UnetInputs {
  sample: Value;
  timestep: Value;
  encoderHiddenStates: Value;
  addedTimeIds: Value;
  /** [B, F, poseDim]; required when `options.camera` is set. */
  cameraPose?: Value;
}

/** The forward pass on given values. */
export function unetSpatioTemporal(
  g: GraphBuilder,
  config: UnetConfig,
  inputs: UnetInputs,
  options: UnetGraphOptions = {},
): { noisePred: Value; skipped: string[] } {
  const c0 = config.blockOutChannels[0];
  const embedDim = timeEmbedDim(config);
  const batch = shapeOf(g, inputs.sample, 0, 1); // [1] int64: B
  const frames = shapeOf(g, inputs.sample, 1, 2); // [1] int64: F

  // 1. time: the scalar timestep broadcast to the batch, plus the added time ids (docs/pipeline.md §7.3)
  const t = g.op('Expand', [inputs.timestep, batch], {}, { name: 'timesteps' }); // [B] float32
  let emb = timestepEmbedding(g, timestepSinusoid(g, t, c0), 'time_embedding', { inDim: c0, hiddenDim: embedDim });
  const ids = reshape(g, inputs.addedTimeIds, [-1]);
  const idEmb = rearrange(g, timestepSinusoid(g, ids, config.additionTimeEmbedDim), '(b n) d -> b (n d)', { b: batch });
  emb = g.op(
    'Add',
    [
      emb,
      timestepEmbedding(g, idEmb, 'add_embedding', {
        inDim: config.projectionClassEmbeddingsInputDim,
        hiddenDim: embedDim,
      }),
    ],
    {},
    { name: 'emb' },
  );

  // repeat_interleave over frames: rows become b0f0, b0f1, …, b1f0, …
  const perFrame = (v: Value, tail: number[]): Value => {
    const expanded = g.op('Expand', [
      g.op('Unsqueeze', [v, g.int64([1])]),
      shapeConcat(g, [batch, frames, tail.map(() => 1)]),
    ]);
    return reshape(g, expanded, [-1, ...tail]);
  };
  const ctx: UnetContext = {
    g,
    video: {
      frames,
      frameIndex: g.op(
        'Range',
        [g.scalar(0, 'float32'), g.cast(g.op('Squeeze', [frames, g.int64([0])]), 'float32'), g.scalar(1, 'float32')],
        {},
        { name: 'frame_index' },
      ),
      temb: perFrame(emb, [embedDim]),
      timeEmbedDim: embedDim,
      frameContext: perFrame(inputs.encoderHiddenStates, [1, config.crossAttentionDim[0]]),
      videoContext: inputs.encoderHiddenStates,
      ...(options.camera && inputs.cameraPose
        ? { cameraPose: { value: inputs.cameraPose, poseDim: options.camera.poseDim } }
        : {}),
    },
    attention: {
      impl: options.attentionImpl ?? 'primitive',
      softmaxFloat32: options.softmaxFloat32 ?? false,
      ...(options.maxScoreBytes ? { maxScoreBytes: options.maxScoreBytes } : {}),
    },
    literalCrossAttention: options.literalCrossAttention ?? false,
    temporalContextOrder: options.temporalContextOrder ?? 'per-video',
    skipped: [],
  };

  // 2. [B, F, C, h, w] → [B·F, C, h, w] → conv_in
  const flat = rearrange(g, inputs.sample, 'b f c h w -> (b f) c h w');
  let h = conv2d(g, flat, 'conv_in', { inChannels: config.inChannels, outChannels: c0, kernel: 3 });

  // 3. down, keeping every stage's output for the up path
  const skips: Skip[] = [{ value: h, channels: c0 }];
  for (const block of planDownBlocks(config)) {
    const r = downBlock(ctx, h, block);
    h = r.out;
    skips.push(...r.skips);
  }

  // 4. mid, 5. up: each up block takes numLayers skips from the end; its upsampler aims at the next skip's size
  h = midBlock(ctx, h, planMidBlock(config));
  for (const block of planUpBlocks(config)) {
    const mine = skips.splice(skips.length - block.numLayers, block.numLayers);
    h = upBlock(ctx, h, mine, block, skips.at(-1)?.value);
  }

  // 6. out, back to [B, F, Cout, h, w]
  h = silu(g, groupNorm(g, h, 'conv_norm_out', { channels: c0, groups: 32, eps: 1e-5 }));
  h = conv2d(g, h, 'conv_out', { inChannels: c0, outChannels: config.outChannels, kernel: 3 });
  const noisePred = rearrange(g, h, '(b f) c h w -> b f c h w', { b: batch, f: frames });
  return { noisePred, skipped: [...new Set(ctx.skipped)] };
}
