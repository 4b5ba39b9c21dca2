/**
 * `buildUnetGraph`: diffusers `unet/` (config.json + safetensors) → `<outDir>/unet.onnx`, with the weights
 * referenced in place (hard-linked into `<outDir>/weights/`, see src/onnx/save.ts).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CheckpointError, ModelNotFoundError } from '../errors.js';
import { GraphBuilder, type ComputeDtype, type WeightStorage } from '../onnx/graph.js';
import { saveGraph, type BuildInfo } from '../onnx/save.js';
import { checkpointWeights, dryWeights, type WeightSource } from '../onnx/weights.js';
import { parseUnetConfig, type UnetConfig } from './config.js';
import type { TemporalContextOrder } from './context.js';
import { buildUnet, type UnetGraphOptions } from './unet.js';

export interface UnetPrecision {
  /** Activation and weight dtype. float16 keeps `timestep` in float32 (its sinusoid is computed in float32). */
  dtype: ComputeDtype;
  /**
   * 'cpu': standard ONNX ops only. 'cuda': self-attention as com.microsoft MultiHeadAttention, so the CUDA EP
   * runs fused attention instead of materialising [N, heads, hw, hw] scores (ORT also runs it on CPU in fp32).
   */
  target: 'cpu' | 'cuda';
}

export interface BuildUnetOptions extends Partial<UnetPrecision> {
  /** A diffusers checkpoint directory (containing `unet/`) or its `unet/` directory itself. */
  checkpoint: string;
  /** Output directory; the graph is written to `<outDir>/<fileName>`. */
  outDir: string;
  fileName?: string;
  /** Use `*.<variant>.safetensors`; default: 'fp16' files for a float16 build when they exist. */
  variant?: string;
  /** How weights whose stored dtype differs from `dtype` are kept (default 'reference': in place + Cast). */
  weightStorage?: WeightStorage;
  /** Default 'diffusers-0.27' (the reference run's behaviour); see TemporalContextOrder. */
  temporalContextOrder?: TemporalContextOrder;
  /** Build the cross-attentions literally instead of with the exact single-token shortcut (measurements only). */
  literalCrossAttention?: boolean;
}

export interface UnetBuildResult extends BuildInfo {
  config: UnetConfig;
  precision: UnetPrecision;
  /** Checkpoint tensors left out on purpose (to_q/to_k/norm2 of every single-token cross-attention). */
  skippedWeights: string[];
  /** Checkpoint tensors the graph neither used nor skipped on purpose: a sign of a config/checkpoint mismatch. */
  unexpectedWeights: string[];
}

/** Finds `unet/` inside a checkpoint directory, or accepts the unet directory itself. */
export function resolveUnetDir(checkpoint: string): string {
  const abs = resolve(checkpoint);
  if (existsSync(join(abs, 'unet', 'config.json'))) return join(abs, 'unet');
  if (existsSync(join(abs, 'config.json'))) return abs;
  throw new ModelNotFoundError(abs, 'no unet/config.json here (expected a diffusers checkpoint directory or its unet/ folder)');
}

/** Reads and validates `<unetDir>/config.json`. */
export function readUnetConfig(unetDir: string): UnetConfig {
  const path = join(unetDir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CheckpointError(path, `cannot read the UNet config (${(err as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(path, 'the UNet config is not a JSON object');
  return parseUnetConfig(raw as Record<string, unknown>, path);
}

/** Graph options implied by a precision choice. */
export function graphOptionsFor(p: UnetPrecision): { opsets?: Record<string, number>; graph: UnetGraphOptions } {
  if (p.target === 'cuda') return { opsets: { 'com.microsoft': 1 }, graph: { attentionImpl: 'mha' } };
  // fp16 scores of long pixel sequences can overflow the softmax's exp; diffusers' SDPA accumulates in fp32 too
  return { graph: { attentionImpl: 'primitive', softmaxFloat32: p.dtype === 'float16' } };
}

/** Graph choices that are not precision: see UnetGraphOptions. */
export type UnetVariantOptions = Pick<UnetGraphOptions, 'temporalContextOrder' | 'literalCrossAttention'>;

/** Builds the UNet graph on a fresh GraphBuilder (no saving): for dry runs and node counts. */
export function defineUnetGraph(
  config: UnetConfig,
  weights: WeightSource,
  precision: UnetPrecision,
  variant: UnetVariantOptions = {},
  weightStorage: WeightStorage = 'reference',
): { g: GraphBuilder; skipped: string[] } {
  const opts = graphOptionsFor(precision);
  const g = new GraphBuilder({ name: 'unet', dtype: precision.dtype, weights, weightStorage, ...(opts.opsets ? { opsets: opts.opsets } : {}) });
  const { skipped } = buildUnet(g, config, { ...opts.graph, ...variant });
  return { g, skipped };
}

/** Node count of the graph a config gives, with the exact cross-attention shortcut and with literal cross-attention. */
export function unetNodeCounts(config: UnetConfig, precision: UnetPrecision = { dtype: 'float32', target: 'cpu' }): { shortcut: number; literal: number } {
  const count = (literal: boolean): number => defineUnetGraph(config, dryWeights(), precision, { literalCrossAttention: literal }).g.nodes.length;
  return { shortcut: count(false), literal: count(true) };
}

function hasVariantFiles(dir: string, variant: string): boolean {
  return readdirSync(dir).some((n) => n.endsWith(`.${variant}.safetensors`) || n.endsWith(`.${variant}.safetensors.index.json`));
}

/**
 * Builds `<outDir>/unet.onnx` from a diffusers checkpoint. Throws ModelNotFoundError (no unet/), or
 * CheckpointError (bad config, or missing / mis-shaped tensors — all listed at once); nothing is written then.
 *
 * @example
 *   const info = buildUnetGraph({ checkpoint: 'models/svd-xt', outDir: 'out/svd-xt', dtype: 'float16', target: 'cuda' });
 *   console.log(info.path, info.nodeCount, info.weightBytes);
 */
export function buildUnetGraph(options: BuildUnetOptions): UnetBuildResult {
  const unetDir = resolveUnetDir(options.checkpoint);
  const config = readUnetConfig(unetDir);
  const precision: UnetPrecision = { dtype: options.dtype ?? 'float32', target: options.target ?? 'cpu' };
  const variant = options.variant ?? (precision.dtype === 'float16' && hasVariantFiles(unetDir, 'fp16') ? 'fp16' : undefined);
  const weights = checkpointWeights(unetDir, variant ? { variant } : {});
  const { g, skipped } = defineUnetGraph(
    config,
    weights,
    precision,
    { literalCrossAttention: options.literalCrossAttention, temporalContextOrder: options.temporalContextOrder },
    options.weightStorage,
  );
  const info = saveGraph(g, options.outDir, options.fileName ?? 'unet.onnx', {
    docString: `UNetSpatioTemporalConditionModel from ${basename(resolve(options.checkpoint))} (${precision.dtype}, ${precision.target})`,
  });
  const skippedSet = new Set(skipped);
  return {
    ...info,
    config,
    precision,
    skippedWeights: skipped,
    unexpectedWeights: info.unusedWeights.filter((n) => !skippedSet.has(n)),
  };
}
