/**
 * What every UNet block receives besides its hidden states: the per-frame conditioning computed once at the
 * top of the forward pass (docs/pipeline.md §7.1), plus the build's settings and its list of checkpoint tensors that are
 * deliberately not used.
 */
import type { GraphBuilder, Value } from '../onnx/graph.js';
import type { AttentionOptions } from '../onnx/layers/attention.js';

/**
 * The temporal transformer's cross-attention context. SVD (sgm) gives every pixel sequence of video b that
 * video's image embedding ('per-video'; also diffusers ≥ 0.28). diffusers ≤ 0.27 laid the context out as
 * (pixel, video) while the sequences are (video, pixel), so sequence (b, s) got video (b·hw + s) mod B
 * ('diffusers-0.27'; with CFG, B = 2, that alternates uncond/cond by pixel). diffusers PR #7268 fixed it.
 */
export type TemporalContextOrder = 'per-video' | 'diffusers-0.27';

export interface UnetContext {
  g: GraphBuilder;
  /** Rows of every [N, C, h, w] activation are N = B videos × F frames, video-major. */
  video: {
    /** F as a 1-D int64 [1] tensor. */
    frames: Value;
    /** Frame indices 0..F−1, float32 [F] (the temporal transformers' positional input). */
    frameIndex: Value;
    /** Time + added-time embedding repeated per frame: [B·F, timeEmbedDim]. */
    temb: Value;
    timeEmbedDim: number;
    /** encoder_hidden_states repeated per frame: [B·F, 1, D] (the spatial cross-attention context). */
    frameContext: Value;
    /** encoder_hidden_states as given, one token per video: [B, 1, D] (the temporal cross-attention context). */
    videoContext: Value;
    /**
     * MotionCtrl's per-frame camera poses [B, F, poseDim] (row-major 3×4 RT, docs/camera-motion.md); absent in a
     * plain SVD UNet. When set, every temporal transformer block has a `cc_projection`.
     */
    cameraPose?: { value: Value; poseDim: number };
  };
  /** How every attention is formulated (see AttentionOptions in onnx/layers/attention.ts). */
  attention: Pick<AttentionOptions, 'impl' | 'maxScoreBytes' | 'softmaxFloat32'>;
  /**
   * Checkpoint tensors the graph leaves out on purpose (the single-token cross-attention shortcut needs
   * neither to_q, to_k nor the LayerNorm in front of it). Listed so a checkpoint check can tell them from
   * misspelled names.
   */
  skipped: string[];
  /** Which video's token each temporal pixel sequence attends to (see TemporalContextOrder). */
  temporalContextOrder: TemporalContextOrder;
  /** Build the cross-attentions literally (softmax over one key) instead of the exact shortcut; for measurements. */
  literalCrossAttention: boolean;
}
