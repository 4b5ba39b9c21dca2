/**
 * What every model graph builder shares: locating a component (its config.json and safetensors) from a
 * checkpoint directory, the build options, and typed reads of config fields.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ModelFormatError, ModelNotFoundError } from '../errors.js';
import type { FloatDtype, GraphTarget, WeightStorage } from './graph.js';
import type { AttentionFormulation } from './layers/attention.js';
import { checkpointWeights, type WeightSource } from './weights.js';

export interface GraphBuildOptions {
  /** Directory the .onnx (and `weights/` links, `.data` side files) is written to. */
  outDir: string;
  /** Compute dtype; the graph's inputs and outputs have it too. Default float32. */
  dtype?: FloatDtype;
  /**
   * Execution provider the graph is meant for (default 'cpu'); recorded in the model. 'cuda' swaps ops the
   * CUDA EP has no kernel for (GroupNormalization → InstanceNormalization, layers/basic.ts) and lets the UNet
   * use com.microsoft MultiHeadAttention.
   */
  target?: GraphTarget;
  /** How weights are stored: default `defaultWeightStorage(target)` (graph.ts). */
  weightStorage?: WeightStorage;
  /** Checkpoint variant to read, e.g. 'fp16' for `*.fp16.safetensors`. */
  variant?: string;
  /** Output file name; each builder has its fixed default. */
  fileName?: string;
  /** How the UNet's and the VAE's self-attentions are formulated; default `defaultAttention(target)`. */
  attention?: AttentionChoice;
}

/** An attention formulation and, for 'chunked', the score budget (see AttentionOptions in layers/attention.ts). */
export interface AttentionChoice {
  impl: AttentionFormulation;
  maxScoreBytes?: number;
}

/**
 * MultiHeadAttention on the CPU and CUDA targets: onnxruntime's CPU EP runs it as flash attention (memory linear
 * in the sequence, faster than MatMul/Softmax; bench/RESULTS.md §6) and the CUDA EP with fused kernels.
 * WebGPU: query chunks whose scores stay within 128 MiB, WebGPU's default (and lavapipe's) storage-buffer binding
 * limit, so the graph is exact on every adapter; onnxruntime's WebGPU MultiHeadAttention differs from the CPU EP
 * by 2-4e-2 relative even on small inputs (docs/webgpu.md, "Attention").
 */
export function defaultAttention(target: GraphTarget): AttentionChoice {
  if (target === 'webgpu') return { impl: 'chunked', maxScoreBytes: WEBGPU_MAX_SCORE_BYTES };
  return { impl: 'mha' };
}

/** Score budget of the WebGPU target's chunked attention: WebGPU's default maxStorageBufferBindingSize. */
export const WEBGPU_MAX_SCORE_BYTES = 128 * 2 ** 20;

/** The opset imports an attention choice needs, to merge into a GraphBuilder's `opsets`. */
export function attentionOpsets(choice: AttentionChoice): Record<string, number> {
  return choice.impl === 'mha' ? { 'com.microsoft': 1 } : {};
}

/** A component given directly: its parsed config.json and a weight source (checkpoint or dry run). */
export interface ComponentInput {
  config: Record<string, unknown>;
  weights: WeightSource;
  /** For error messages. */
  configPath?: string;
}

/** A checkpoint root (with `<component>/config.json`), a component directory, or a ComponentInput. */
export type ComponentSource = string | ComponentInput;

export interface ResolvedComponent {
  config: Record<string, unknown>;
  configPath: string;
  weights: WeightSource;
}

/** Finds `<dir>/config.json` or `<dir>/<component>/config.json` and opens the weights next to it. */
export function resolveComponent(source: ComponentSource, component: string, variant?: string): ResolvedComponent {
  if (typeof source !== 'string') {
    return {
      config: source.config,
      configPath: source.configPath ?? `${component}/config.json`,
      weights: source.weights,
    };
  }
  const root = resolve(source);
  const dir = existsSync(join(root, 'config.json')) ? root : join(root, component);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) {
    throw new ModelNotFoundError(
      root,
      `no ${component}/config.json here (expected a diffusers checkpoint or its ${component}/ directory)`,
    );
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new ModelFormatError(configPath, `not valid JSON (${(err as Error).message})`);
  }
  return { config, configPath, weights: checkpointWeights(dir, { variant }) };
}

/** Typed reads of config.json fields; a wrong type → ModelFormatError naming the file, the key and what is allowed. */
export class ConfigReader {
  constructor(
    readonly config: Record<string, unknown>,
    readonly path: string,
  ) {}

  private fail(key: string, allowed: string): never {
    throw new ModelFormatError(this.path, `${key}: expected ${allowed}, got ${JSON.stringify(this.config[key])}`);
  }

  has(key: string): boolean {
    return this.config[key] !== undefined && this.config[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.has(key) ? this.config[key] : fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) this.fail(key, 'a positive integer');
    return v;
  }

  number(key: string, fallback?: number): number {
    const v = this.has(key) ? this.config[key] : fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number');
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.has(key) ? this.config[key] : fallback;
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.has(key) ? this.config[key] : fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  ints(key: string, fallback?: number[]): number[] {
    const v = this.has(key) ? this.config[key] : fallback;
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x > 0)) {
      this.fail(key, 'a non-empty list of positive integers');
    }
    return v as number[];
  }

  strings(key: string, fallback?: string[]): string[] {
    const v = this.has(key) ? this.config[key] : fallback;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(key, 'a list of strings');
    return v as string[];
  }

  /** Throws ModelFormatError unless `ok`. */
  check(ok: boolean, key: string, message: string): void {
    if (!ok) throw new ModelFormatError(this.path, `${key}: ${message}`);
  }
}

/** Keeps only the unused names under the given prefixes (a component file holds several graphs' weights). */
export function unusedUnder(unused: string[], prefixes: string[]): string[] {
  return unused.filter((n) => prefixes.some((p) => n.startsWith(p)));
}
