/**
 * Lists the weights a graph definition needs (dry run) and fills them with seeded random values, so
 * tests and the tiny-checkpoint generator can make a checkpoint for any config without Python.
 */
import { writeSafetensors, type TensorToWrite } from '../safetensors/writer.js';
import { GraphBuilder, type FloatDtype } from './graph.js';
import { dryWeights, type WeightRequest } from './weights.js';

/** Every weight `define` asks for, with its expected shape, in request order. */
export function listWeights(define: (g: GraphBuilder) => void, dtype: FloatDtype = 'float32'): WeightRequest[] {
  const g = new GraphBuilder({ name: 'dry-run', dtype, weights: dryWeights(), opsets: { 'com.microsoft': 1 } });
  define(g);
  return g.requests;
}

/** mulberry32: a small, fast seeded generator of uniform numbers in [0, 1), good enough for test data. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded standard-normal generator (mulberry32 + Box–Muller). */
export function seededNormal(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Norm scales (weights of GroupNorm/LayerNorm), recognised by diffusers/transformers naming. */
const NORM_WEIGHT = /(norm[^.]*|layrnorm|layernorm)\.weight$/;

/**
 * Random tensors for `requests`: norm scales ≈ 1 ± 0.1, norm biases and mix factors ≈ ±0.1…0.5, other
 * weights N(0, 1/fan_in) so activations keep their scale through deep stacks, biases N(0, 0.02²).
 */
export function randomTensors(
  requests: WeightRequest[],
  seed: number,
  dtype: 'F32' | 'F16' = 'F32',
): Record<string, TensorToWrite> {
  const normal = seededNormal(seed);
  const out: Record<string, TensorToWrite> = {};
  for (const r of requests) {
    const count = r.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const fanIn = r.shape.length >= 2 ? r.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    let fill: () => number;
    if (NORM_WEIGHT.test(r.name)) fill = () => 1 + 0.1 * normal();
    else if (r.name.endsWith('mix_factor')) fill = () => 0.5 * normal();
    else if (r.shape.length === 1) fill = () => (/norm/.test(r.name) ? 0.1 : 0.02) * normal();
    else fill = () => normal() / Math.sqrt(fanIn);
    for (let i = 0; i < count; i++) data[i] = fill();
    out[r.name] = { dtype, shape: r.shape, data };
  }
  return out;
}

/** Writes a random checkpoint for `requests` to `path`. */
export function writeRandomCheckpoint(
  path: string,
  requests: WeightRequest[],
  seed: number,
  dtype: 'F32' | 'F16' = 'F32',
): void {
  writeSafetensors(path, randomTensors(requests, seed, dtype));
}
