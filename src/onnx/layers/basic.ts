/**
 * Basic layers shared by every model graph. Each takes the diffusers weight prefix of its module
 * (e.g. `decoder.conv_in`) and appends the standard suffixes (`.weight`, `.bias`), so the graph's
 * initializer names are the checkpoint's own tensor names.
 */
import { attr, type GraphBuilder, type Value } from '../graph.js';

// ---- shape plumbing -------------------------------------------------------------------------

export function reshape(g: GraphBuilder, x: Value, dims: number[] | Value, name = 'Reshape'): Value {
  return g.op('Reshape', [x, Array.isArray(dims) ? g.int64(dims) : dims], {}, { name });
}

export function transpose(g: GraphBuilder, x: Value, perm: number[], name = 'Transpose'): Value {
  return g.op('Transpose', [x], { perm }, { name });
}

/** `Shape(x)[start:end]` as a 1-D int64 tensor. */
export function shapeOf(g: GraphBuilder, x: Value, start?: number, end?: number): Value {
  const attrs: Record<string, number> = {};
  if (start !== undefined) attrs.start = start;
  if (end !== undefined) attrs.end = end;
  return g.op('Shape', [x], attrs, { name: `${x.name}/shape` });
}

/** Concatenates 1-D int64 pieces (Values or literal numbers) into a shape tensor. */
export function shapeConcat(g: GraphBuilder, parts: Array<Value | number[]>): Value {
  const vals = parts.map((p) => (Array.isArray(p) ? g.int64(p) : p));
  return g.op('Concat', vals, { axis: 0 }, { name: 'shape' });
}

export function unsqueeze(g: GraphBuilder, x: Value, axes: number[]): Value {
  return g.op('Unsqueeze', [x, g.int64(axes)]);
}

export function add(g: GraphBuilder, a: Value, b: Value, name = 'Add'): Value {
  return g.op('Add', [a, b], {}, { name });
}

export function mul(g: GraphBuilder, a: Value, b: Value, name = 'Mul'): Value {
  return g.op('Mul', [a, b], {}, { name });
}

// ---- activations ----------------------------------------------------------------------------

/** SiLU / swish: x·σ(x). */
export function silu(g: GraphBuilder, x: Value): Value {
  return g.op('Mul', [x, g.op('Sigmoid', [x])], {}, { name: 'silu' });
}

/** Exact (erf) GELU, ONNX Gelu-20. */
export function gelu(g: GraphBuilder, x: Value): Value {
  return g.op('Gelu', [x]);
}

/** transformers' "quick_gelu": x·σ(1.702x). */
export function quickGelu(g: GraphBuilder, x: Value): Value {
  const s = g.op('Sigmoid', [mul(g, x, g.scalar(1.702, x.dtype))]);
  return g.op('Mul', [x, s], {}, { name: 'quick_gelu' });
}

/** Activation by its transformers/diffusers name. */
export function activation(g: GraphBuilder, x: Value, name: string): Value {
  switch (name) {
    case 'gelu':
      return gelu(g, x);
    case 'quick_gelu':
      return quickGelu(g, x);
    case 'silu':
    case 'swish':
      return silu(g, x);
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
      return g.op('Gelu', [x], { approximate: 'tanh' });
    case 'relu':
      return g.op('Relu', [x]);
    default:
      throw new Error(`unsupported activation ${JSON.stringify(name)}`);
  }
}

// ---- parametric layers ----------------------------------------------------------------------

/**
 * torch Linear on the last axis: x·Wᵀ (+ b). W stays [out, in] as stored in the checkpoint; the
 * transpose is a graph node that ORT folds into a constant at load, so nothing is copied on disk.
 */
export function linear(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  inFeatures: number,
  outFeatures: number,
  options: { bias?: boolean } = {},
): Value {
  const wt = g.weightTransposed(`${prefix}.weight`, [outFeatures, inFeatures]); // [in, out]
  let y = g.op('MatMul', [x, wt], {}, { name: prefix });
  if (options.bias ?? true) y = add(g, y, g.weight(`${prefix}.bias`, [outFeatures]), `${prefix}/bias`);
  return y;
}

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride?: number;
  /** Symmetric zero padding; default kernel/2 (same size at stride 1). */
  padding?: number;
  bias?: boolean;
}

/** torch Conv2d (square kernel, symmetric padding). */
export function conv2d(g: GraphBuilder, x: Value, prefix: string, o: Conv2dOptions): Value {
  const p = o.padding ?? Math.floor(o.kernel / 2);
  const w = g.weight(`${prefix}.weight`, [o.outChannels, o.inChannels, o.kernel, o.kernel]);
  const b = (o.bias ?? true) ? g.weight(`${prefix}.bias`, [o.outChannels]) : null;
  return g.op(
    'Conv',
    b ? [x, w, b] : [x, w],
    {
      kernel_shape: [o.kernel, o.kernel],
      strides: [o.stride ?? 1, o.stride ?? 1],
      pads: [p, p, p, p],
    },
    { name: prefix },
  );
}

/**
 * torch Conv3d over [B, C, F, h, w] with kernel (k, 1, 1) and padding (k/2, 0, 0): mixes frames only,
 * zero-padded at the first and last frame (SVD's temporal convs, kernel 3; docs/pipeline.md §7.5, §8.3).
 */
export function conv3dTemporal(
  g: GraphBuilder,
  x: Value,
  prefix: string,
  o: { inChannels: number; outChannels: number; kernel?: number; bias?: boolean },
): Value {
  const k = o.kernel ?? 3;
  const p = Math.floor(k / 2);
  const w = g.weight(`${prefix}.weight`, [o.outChannels, o.inChannels, k, 1, 1]);
  const b = (o.bias ?? true) ? g.weight(`${prefix}.bias`, [o.outChannels]) : null;
  return g.op(
    'Conv',
    b ? [x, w, b] : [x, w],
    {
      kernel_shape: [k, 1, 1],
      strides: [1, 1, 1],
      pads: [p, 0, 0, p, 0, 0],
    },
    { name: prefix },
  );
}

// ---- group normalization ----------------------------------------------------------------------
//
// Which normalisation ops onnxruntime's CUDA EP implements (checked against microsoft/onnxruntime
// docs/OperatorKernels.md, "Operators implemented by CUDAExecutionProvider", at commit 001d12d2623f; the
// table is generated from the registered kernels):
//   * ai.onnx GroupNormalization (18 and 21): NO kernel in the CUDA EP, and none in the CPU EP either
//     (microsoft/onnxruntime#24538 "Implement GroupNormalization-21", #20211). It still runs because ORT
//     inlines a function op that no EP claims into its ONNX function body (graph_partitioner.cc,
//     InlineNodes / InlineFunctionsAOT: "expand any nodes that have an ONNX function definition but no
//     matching ORT kernel"). Measured on our VAE decoder (ORT 1.30 CPU, optimizedModelFilePath): each
//     GroupNormalization-21 becomes ~30 nodes (2 ReduceMean, 5 Cast, 7 Reshape, Sub/Div/Sqrt/Mul/Add);
//     on CUDA those run as some ten separate full-tensor kernels, partly in float32.
//   * ai.onnx InstanceNormalization: CUDA 6+, float / double / float16 (core/providers/cuda/nn/
//     instance_norm.cc: cuDNN batch-norm statistics in float32 even for float16 data, then its own apply
//     kernel). CPU: float only (6–21, 22+); ORT's CPU EP inserts Casts around a float16 one.
//     The CUDA kernel clamps epsilon to CUDNN_BN_MIN_EPSILON (ClampCudnnBatchNormEpsilon); cuDNN 8/9
//     headers define that as 0.0 (it was 1e-5 in old cuDNN), so SVD's 1e-6 is kept. UNVERIFIED on a GPU.
//   * com.microsoft GroupNorm: CUDA only (float, float16; no CPU kernel). contrib_ops/cuda/diffusion/
//     group_norm.cc: NHWC only ("only the channels_last layout is supported"), input must be 4-D, gamma
//     and beta must be float32, `activation` attribute required; older releases also only num_groups = 32
//     and batch ≤ 32 (group_norm_impl.cu). Useless for the 5-D temporal norms, and NCHW graphs would need a
//     Transpose pair around each use.
//   * ai.onnx LayerNormalization: CUDA 17+ (float, float16, bfloat16, double; stats float) — what we emit.
//   * ai.onnx Gelu: CUDA 20+ (float, float16, bfloat16; core/providers/cuda/tensor/gelu.cc handles
//     approximate 'none' and 'tanh') — Gelu-20 is fine on CUDA, no com.microsoft Gelu needed.
//   * com.microsoft MultiHeadAttention: CUDA 1+ (float, float16, bfloat16); CPU float only.
//   * ai.onnx Conv (3-D too, via cuDNN): CUDA [11, 21] float / float16 / double, 22+ adds bfloat16.
//   * ai.onnx Resize: CUDA 19+ (also 18, [13, 17], [11, 12]) float / float16 / double / int32 / uint8.
// So for target 'cuda' a GroupNorm is written as Reshape → InstanceNormalization → Reshape → per-channel
// Mul/Add: one fused normalisation kernel with float32 statistics instead of the inlined function body.

/** How `groupNorm` is expressed in ONNX. */
export type GroupNormImpl =
  /** ai.onnx GroupNormalization-21 (CPU target; ORT inlines its function body). */
  | 'groupNormalization'
  /** Reshape [N, G, -1] → InstanceNormalization → per-channel affine (CUDA target; see above). */
  | 'instanceNormalization';

export interface GroupNormOptions {
  channels: number;
  groups?: number;
  eps: number;
  /** Default: 'instanceNormalization' when `g.target` is 'cuda', else 'groupNormalization'. */
  impl?: GroupNormImpl;
  /**
   * instanceNormalization only: normalise in float32 (Cast in and out) in a float16 graph. Default false:
   * ORT's CUDA kernel already keeps the statistics in float32 (see above), so the Casts would only add two
   * passes over the tensor.
   */
  normFloat32?: boolean;
}

/**
 * torch GroupNorm (affine, per-channel scale/bias). Works for any rank ≥ 3: on a 5-D [B, C, F, h, w]
 * tensor the statistics span the frames too, as in the temporal blocks. The ops depend on the graph's
 * target (see the notes above); the weights read are the same either way.
 */
export function groupNorm(g: GraphBuilder, x: Value, prefix: string, o: GroupNormOptions): Value {
  const scale = g.weight(`${prefix}.weight`, [o.channels]);
  const bias = g.weight(`${prefix}.bias`, [o.channels]);
  const groups = o.groups ?? 32;
  const impl = o.impl ?? (g.target === 'cuda' ? 'instanceNormalization' : 'groupNormalization');
  if (impl === 'groupNormalization') {
    return g.op(
      'GroupNormalization',
      [x, scale, bias],
      { num_groups: groups, epsilon: attr.float(o.eps) },
      { name: prefix },
    );
  }
  // [N, C, ...] → [N, G, C/G·...]: one InstanceNormalization "channel" per group, statistics over the rest
  const normDtype = o.normFloat32 ? 'float32' : x.dtype;
  const grouped = g.cast(reshape(g, x, [0, groups, -1], `${prefix}/groups`), normDtype);
  const ones = g.constant(new Array<number>(groups).fill(1), [groups], normDtype);
  const zeros = g.constant(new Array<number>(groups).fill(0), [groups], normDtype);
  const normed = g.cast(
    g.op('InstanceNormalization', [grouped, ones, zeros], { epsilon: attr.float(o.eps) }, { name: prefix }),
    x.dtype,
  );
  // affine on [N, C, rest] with [C, 1] weights: the same graph for 4-D and 5-D inputs
  const perChannel = [o.channels, 1];
  const channels = reshape(g, normed, [0, o.channels, -1], `${prefix}/channels`);
  const y = add(
    g,
    mul(g, channels, reshape(g, scale, perChannel), `${prefix}/scale`),
    reshape(g, bias, perChannel),
    `${prefix}/bias`,
  );
  return reshape(g, y, shapeOf(g, x), `${prefix}/restore`);
}

/** torch LayerNorm over the last axis. */
export function layerNorm(g: GraphBuilder, x: Value, prefix: string, o: { channels: number; eps: number }): Value {
  const scale = g.weight(`${prefix}.weight`, [o.channels]);
  const bias = g.weight(`${prefix}.bias`, [o.channels]);
  return g.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: attr.float(o.eps) }, { name: prefix });
}

/** diffusers GEGLU (`<prefix>.proj`: dimIn → 2·dimOut): hidden·GELU(gate), hidden first. */
export function geglu(g: GraphBuilder, x: Value, prefix: string, dimIn: number, dimOut: number): Value {
  const h = linear(g, x, `${prefix}.proj`, dimIn, dimOut * 2);
  const [hidden, gate] = g.opMulti('Split', [h], 2, { axis: -1, num_outputs: 2 }, { name: `${prefix}/split` });
  return mul(g, hidden, gelu(g, gate), `${prefix}/geglu`);
}

/** Nearest-neighbour ×2 upsampling of [N, C, h, w] (torch `interpolate(scale_factor=2, mode="nearest")`). */
export function upsampleNearest2x(g: GraphBuilder, x: Value): Value {
  const scales = g.constant([1, 1, 2, 2], [4], 'float32');
  return g.op(
    'Resize',
    [x, null, scales],
    {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    },
    { name: 'upsample' },
  );
}
