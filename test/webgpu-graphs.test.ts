/**
 * The WebGPU graph target and the binding-limit guard, checked without a GPU: static tensor sizes of our own
 * graphs, the guard refusing a run whose tensors exceed a (lowered) limit, the decode chunk taken from the
 * limit, and query-chunked attention equal to the unchunked one on the CPU provider.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../src/models/build.js';
import { attention } from '../src/onnx/layers/attention.js';
import { GraphBuilder } from '../src/onnx/graph.js';
import { readGraph } from '../src/onnx/read.js';
import { saveGraph } from '../src/onnx/save.js';
import { tensorSizes } from '../src/onnx/tensorSizes.js';
import { dryWeights } from '../src/onnx/weights.js';
import { BindingGuard, BindingLimitError, framesWithinLimit } from '../src/runtime/bindingGuard.js';
import { InProcessOrtHost } from '../src/runtime/ortHost.js';
import { chooseDecodeChunk } from '../src/pipeline/decode.js';
import { relErr, REFERENCE_CHECKPOINT } from './helpers/reference.js';

const MiB = 2 ** 20;
const UNET_DIMS = { sample: [2, 4, 8, 32, 64], timestep: [], encoder_hidden_states: [2, 1, 32], added_time_ids: [2, 3] };

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'svd-webgpu-graphs-'));
  await buildModel({ checkpoint: REFERENCE_CHECKPOINT, outDir: join(dir, 'cpu'), target: 'cpu' });
  await buildModel({ checkpoint: REFERENCE_CHECKPOINT, outDir: join(dir, 'webgpu'), target: 'webgpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('static tensor sizes', () => {
  it('sizes every tensor of our graphs at the reference call (128×64, 4 frames, CFG) and finds the attention scores', () => {
    const report = tensorSizes(readGraph(join(dir, 'cpu', 'unet.onnx')), UNET_DIMS);
    expect(report.unknown).toEqual([]);
    // the level-0 self-attention: 2 videos × 4 frames, 8 heads, 2048 × 2048 tokens, float32 = 1 GiB
    expect(report.tensors[0]).toMatchObject({ op: 'MatMul', shape: [8, 8, 2048, 2048], bytes: 1024 * MiB });
    const dec = tensorSizes(readGraph(join(dir, 'cpu', 'vae_decoder.onnx')), { latent: [2, 4, 32, 64] });
    expect(dec.unknown).toEqual([]);
    expect(dec.tensors[0].shape).toEqual([2, 64, 64, 128]);
  });

  it('the webgpu target splits the attention so nothing exceeds 128 MiB at the reference size', () => {
    const report = tensorSizes(readGraph(join(dir, 'webgpu', 'unet.onnx')), UNET_DIMS);
    expect(report.unknown).toEqual([]);
    // 32 query chunks at level 0: [8, 8, 64, 2048] float32 = 32 MiB
    expect(report.tensors[0].bytes).toBeLessThanOrEqual(128 * MiB);
    expect(report.tensors.filter((t) => t.op === 'Softmax').map((t) => t.shape)).toContainEqual([8, 8, 64, 2048]);
  });
});

describe('binding-limit guard', () => {
  it('refuses the CPU-target UNet at 128 MiB, naming the tensor and its size', () => {
    const guard = new BindingGuard(join(dir, 'cpu', 'unet.onnx'), { limit: 128 * MiB });
    const err = (() => { try { guard.check(UNET_DIMS); } catch (e) { return e; } })() as BindingLimitError;
    expect(err).toBeInstanceOf(BindingLimitError);
    expect(err.code).toBe('webgpu_binding_limit');
    expect(err.message).toMatch(/refusing to run on WebGPU with sample \[2,4,8,32,64\].*binding limit of 128 MiB.*scores_\d+ \(MatMul\) \[8,8,2048,2048\] float32 = 1024 MiB/);
  });

  it('passes the webgpu-target UNet at 128 MiB and refuses it at a lowered limit of 16 MiB', () => {
    const path = join(dir, 'webgpu', 'unet.onnx');
    expect(() => new BindingGuard(path, { limit: 128 * MiB }).check(UNET_DIMS)).not.toThrow();
    expect(() => new BindingGuard(path, { limit: 16 * MiB }).check(UNET_DIMS)).toThrow(BindingLimitError);
  });

  it('sizes the decode chunk from the limit', () => {
    const guard = new BindingGuard(join(dir, 'cpu', 'vae_decoder.onnx'), { limit: 8 * MiB });
    // largest decoder tensor: [n, 64, 64, 128] float32 = 2 MiB per frame
    expect(framesWithinLimit(guard, { latent: [1, 4, 32, 64] }, 14)).toBe(4);
    const base = { resolved: 14, chosen: false, frames: 14, freeMiB: null, width: 128, height: 64, dtype: 'float32' as const };
    expect(chooseDecodeChunk({ ...base, provider: 'webgpu', framesWithinBindingLimit: 4 }).chunk).toBe(4);
    expect(chooseDecodeChunk({ ...base, provider: 'webgpu', framesWithinBindingLimit: 0 }).chunk).toBe(1);
    expect(chooseDecodeChunk({ ...base, chosen: true, resolved: 2, provider: 'webgpu', framesWithinBindingLimit: 4 }).chunk).toBe(2);
  });
});

describe('query-chunked attention', () => {
  it('equals the unchunked attention (CPU provider), with 2 and 16 chunks', async () => {
    const [N, S, heads, D] = [2, 64, 2, 8];
    const rnd = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 2);
    const feeds = { q: rnd(N * S * heads * D, 1), k: rnd(N * S * heads * D, 2), v: rnd(N * S * heads * D, 3) };
    const host = new InProcessOrtHost();
    const outputs: Float32Array[] = [];
    for (const chunks of [1, 2, 16]) {
      const g = new GraphBuilder({ name: 'attn', dtype: 'float32', weights: { ...dryWeights(), dry: false } });
      const [q, k, v] = ['q', 'k', 'v'].map((n) => g.input(n, ['n', 's', heads * D]));
      g.output(attention(g, q, k, v, { heads, headDim: D, queryChunks: chunks }), 'y', ['n', 's', heads * D]);
      const info = saveGraph(g, join(dir, `attn-${chunks}`), 'attn.onnx');
      const s = await host.createSession({ path: info.path, executionProviders: ['cpu'] });
      const r = await s.run(Object.fromEntries(Object.entries(feeds).map(([k2, data]) => [k2, { type: 'float32' as const, data, dims: [N, S, heads * D] }])));
      outputs.push(r.y.data as Float32Array);
      await s.release();
    }
    expect(relErr(outputs[1], outputs[0])).toBeLessThan(1e-6);
    expect(relErr(outputs[2], outputs[0])).toBeLessThan(1e-6);
  });
});
