/**
 * `buildUnetGraph`: diffusers `unet/` (config.json + safetensors) → `<outDir>/unet.onnx`, with the weights
 * referenced in place (hard-linked into `<outDir>/weights/`, see src/onnx/save.ts). Same calling convention
 * as the VAE and CLIP builders (src/onnx/build.ts).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  attentionOpsets,
  defaultAttention,
  resolveComponent,
  type AttentionChoice,
  type ComponentSource,
  type GraphBuildOptions,
} from '../onnx/build.js';
import { GraphBuilder, type FloatDtype, type GraphTarget, type WeightStorage } from '../onnx/graph.js';
import { listWeights } from '../onnx/randomWeights.js';
import { saveGraph, type BuildInfo } from '../onnx/save.js';
import { dryWeights, type WeightRequest, type WeightSource } from '../onnx/weights.js';
import { preferredWeightVariant } from '../safetensors/reader.js';
import { parseUnetConfig, type UnetConfig } from './config.js';
import { defineUnet, type UnetGraphOptions } from './unet.js';

export interface UnetPrecision {
  /** Activation and weight dtype. float16 keeps `timestep` in float32 (its sinusoid is computed in float32). */
  dtype: FloatDtype;
  /**
   * 'cpu' or 'cuda': 'cuda' builds GroupNorm as InstanceNormalization (the CUDA EP has no GroupNormalization
   * kernel; layers/basic.ts). Attention follows `attention` (default `defaultAttention(target)`).
   */
  target: GraphTarget;
  attention?: AttentionChoice;
}

export type UnetVariantOptions = Pick<UnetGraphOptions, 'temporalContextOrder' | 'literalCrossAttention' | 'camera'>;

export interface UnetBuildOptions extends GraphBuildOptions, UnetVariantOptions {}

export interface UnetBuildResult extends BuildInfo {
  config: UnetConfig;
  precision: UnetPrecision;
  /** Checkpoint tensors left out on purpose (to_q, to_k, norm2 of every single-token cross-attention). */
  skippedWeights: string[];
  /** Checkpoint tensors the graph neither used nor skipped on purpose: a sign of a config/checkpoint mismatch. */
  unexpectedWeights: string[];
  /** MotionCtrl's camera module: the `camera_pose` width (12), or null for a plain SVD UNet. */
  cameraPoseDim: number | null;
}

/** Graph options implied by a precision choice. */
export function graphOptionsFor(p: UnetPrecision): { opsets?: Record<string, number>; graph: UnetGraphOptions } {
  const a = p.attention ?? defaultAttention(p.target);
  const opsets = attentionOpsets(a);
  // fp16 scores of long pixel sequences can overflow the softmax's exp; diffusers' SDPA accumulates in fp32 too
  // (MultiHeadAttention's kernels accumulate in float32 themselves)
  const graph: UnetGraphOptions = { attentionImpl: a.impl, softmaxFloat32: a.impl !== 'mha' && p.dtype === 'float16' };
  if (a.maxScoreBytes) graph.maxScoreBytes = a.maxScoreBytes;
  return { ...(Object.keys(opsets).length ? { opsets } : {}), graph };
}

/** The UNet graph on a fresh GraphBuilder, not saved: for dry runs and node counts. */
export function defineUnetGraph(
  config: UnetConfig,
  weights: WeightSource,
  precision: UnetPrecision,
  variant: UnetVariantOptions = {},
  weightStorage?: WeightStorage,
): { g: GraphBuilder; skipped: string[] } {
  const opts = graphOptionsFor(precision);
  const g = new GraphBuilder({
    name: 'unet',
    dtype: precision.dtype,
    weights,
    ...(weightStorage ? { weightStorage } : {}),
    target: precision.target,
    ...(opts.opsets ? { opsets: opts.opsets } : {}),
  });
  const { skipped } = defineUnet(g, config, { ...opts.graph, ...variant });
  return { g, skipped };
}

/** Node count of the graph a config gives, with the exact cross-attention shortcut and with literal cross-attention. */
export function unetNodeCounts(
  config: UnetConfig,
  precision: UnetPrecision = { dtype: 'float32', target: 'cpu' },
): { shortcut: number; literal: number } {
  const count = (literal: boolean): number =>
    defineUnetGraph(config, dryWeights(), precision, { literalCrossAttention: literal }).g.nodes.length;
  return { shortcut: count(false), literal: count(true) };
}

/**
 * Every tensor a diffusers checkpoint of this config holds (name and shape), including the cross-attention
 * tensors the built graph skips: what a random test checkpoint must contain. `camera` adds MotionCtrl's
 * cc_projection of every temporal transformer block.
 */
export function unetWeights(
  config: Record<string, unknown>,
  options: Pick<UnetGraphOptions, 'camera'> = {},
): WeightRequest[] {
  const cfg = parseUnetConfig(config);
  return listWeights((g) => void defineUnet(g, cfg, { literalCrossAttention: true, ...options }));
}

/** The weight files a build reads from a checkpoint directory when none are named (see preferredWeightVariant). */
function defaultVariant(source: ComponentSource, dtype: FloatDtype): string | undefined {
  if (typeof source !== 'string') return undefined;
  const root = resolve(source);
  return preferredWeightVariant([existsSync(join(root, 'config.json')) ? root : join(root, 'unet')], dtype);
}

/**
 * Builds `<outDir>/unet.onnx` (IO: sample, timestep, encoder_hidden_states, added_time_ids → noise_pred) from a
 * checkpoint root, its `unet/` directory, or a {config, weights} pair. A float16 build reads `*.fp16.safetensors`
 * when present (else Casts the stored weights). Throws ModelNotFoundError (no unet/config.json),
 * ModelFormatError (unusable config), or CheckpointError listing every missing or mis-shaped tensor; nothing
 * is written then.
 *
 * @example
 *   const info = buildUnetGraph('models/svd-xt', { outDir: 'out/svd-xt', dtype: 'float16', target: 'cuda' });
 *   console.log(info.path, info.nodeCount, info.weightBytes, info.unexpectedWeights);
 */
export function buildUnetGraph(source: ComponentSource, options: UnetBuildOptions): UnetBuildResult {
  const precision: UnetPrecision = {
    dtype: options.dtype ?? 'float32',
    target: options.target ?? 'cpu',
    ...(options.attention ? { attention: options.attention } : {}),
  };
  const c = resolveComponent(source, 'unet', options.variant ?? defaultVariant(source, precision.dtype));
  const config = parseUnetConfig(c.config, c.configPath);
  // a diffusers-layout MotionCtrl conversion carries cc_projection tensors: build its camera input too
  const camera = options.camera ?? cameraModuleOf(c.weights);
  const { g, skipped } = defineUnetGraph(
    config,
    c.weights,
    precision,
    {
      literalCrossAttention: options.literalCrossAttention,
      temporalContextOrder: options.temporalContextOrder,
      camera,
    },
    options.weightStorage,
  );
  const info = saveGraph(g, options.outDir, options.fileName ?? 'unet.onnx', {
    docString: `svd-runtime UNetSpatioTemporalConditionModel (${precision.dtype}, target ${precision.target})`,
  });
  const skippedSet = new Set(skipped);
  return {
    ...info,
    config,
    precision,
    skippedWeights: skipped,
    unexpectedWeights: info.unusedWeights.filter((n) => !skippedSet.has(n)),
    cameraPoseDim: camera?.poseDim ?? null,
  };
}

/** MotionCtrl's camera module in a checkpoint: the pose width of its cc_projection weights [C, C + P], if any. */
function cameraModuleOf(weights: WeightSource): { poseDim: number } | undefined {
  const name = weights.names().find((n) => n.endsWith('.cc_projection.weight'));
  const found = name === undefined ? undefined : weights.lookup(name);
  if (found?.kind !== 'found' || found.info.shape.length !== 2) return undefined;
  return { poseDim: found.info.shape[1] - found.info.shape[0] };
}
