/**
 * Graph core: builds small graphs from safetensors written by our writer, runs them in onnxruntime-node
 * (sessions created from the file path, weights as external data inside the checkpoint) and compares with
 * the plain-JS reference layers in onnx-ref.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../src/errors.js';
import { checkpointWeights, dryWeights, GraphBuilder, saveGraph } from '../src/onnx/index.js';
import {
  attention,
  type AttentionOptions,
  conv2d,
  conv3dTemporal,
  fromVideo,
  gelu,
  groupNorm,
  layerNorm,
  linear,
  reshape,
  shapeOf,
  silu,
  toVideo,
  transpose,
} from '../src/onnx/layers/index.js';
import { readTensorF32, openCheckpoint, writeSafetensors, type SafetensorsDtype } from '../src/safetensors/index.js';
import * as ref from './onnx-ref.js';
import { float16ToFloat32, float32ToFloat16 } from '../src/tensor/float16.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-onnx-graph-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N = 2;
const C = 4;
const H = 6;
const W = 5;
const CO = 8;
const D = 6;

/** Weights of the test graph, as float64 reference tensors. */
function makeWeights(seed: number): Record<string, ref.T> {
  const r = ref.rng(seed);
  const t = (shape: number[], scale = 0.5, offset = 0) => ref.tensor(shape, () => offset + scale * r());
  return {
    'block.conv.weight': t([CO, C, 3, 3]),
    'block.conv.bias': t([CO]),
    'block.norm.weight': t([CO], 0.3, 1),
    'block.norm.bias': t([CO], 0.3),
    'block.ln.weight': t([CO], 0.3, 1),
    'block.ln.bias': t([CO], 0.3),
    'block.proj.weight': t([D, CO]),
    'block.proj.bias': t([D]),
    'block.tnorm.weight': t([CO], 0.3, 1),
    'block.tnorm.bias': t([CO], 0.3),
    'block.tconv.weight': t([CO, CO, 3, 1, 1]),
    'block.tconv.bias': t([CO]),
  };
}

function writeCheckpoint(path: string, weights: Record<string, ref.T>, dtype: SafetensorsDtype): void {
  const out: Parameters<typeof writeSafetensors>[1] = {};
  for (const [name, t] of Object.entries(weights))
    out[name] = { dtype, shape: t.shape, data: Float32Array.from(t.data) };
  writeSafetensors(path, out);
}

/** The graph under test: conv → GN → SiLU → tokens → LN → Linear → GELU, and a temporal branch. */
function defineGraph(g: GraphBuilder): void {
  const x = g.input('x', ['n', C, H, W]);
  const h = conv2d(g, x, 'block.conv', { inChannels: C, outChannels: CO, kernel: 3 });
  const a = silu(g, groupNorm(g, h, 'block.norm', { channels: CO, groups: 2, eps: 1e-5 }));
  const tokens = transpose(g, reshape(g, a, [0, CO, -1]), [0, 2, 1]);
  const y = gelu(g, linear(g, layerNorm(g, tokens, 'block.ln', { channels: CO, eps: 1e-5 }), 'block.proj', CO, D));
  g.output(y, 'y', ['n', H * W, D]);
  // temporal branch: all n rows are the frames of one video
  const frames = shapeOf(g, x, 0, 1);
  const v = toVideo(g, h, frames, CO);
  const z = conv3dTemporal(g, groupNorm(g, v, 'block.tnorm', { channels: CO, groups: 4, eps: 1e-6 }), 'block.tconv', {
    inChannels: CO,
    outChannels: CO,
  });
  g.output(fromVideo(g, z, CO), 'z', ['n', CO, H, W]);
}

function reference(w: Record<string, ref.T>, x: ref.T): { y: ref.T; z: ref.T } {
  const h = ref.conv2d(x, w['block.conv.weight'], w['block.conv.bias'], 1, 1);
  const a = ref.silu(ref.groupNorm(h, 2, 1e-5, w['block.norm.weight'], w['block.norm.bias']));
  // [n, C, hw] → [n, hw, C]
  const tokens = ref.tensor([N, H * W, CO], (i) => {
    const c = i % CO;
    const s = Math.floor(i / CO) % (H * W);
    const n = Math.floor(i / (CO * H * W));
    return a.data[(n * CO + c) * H * W + s];
  });
  const y = ref.gelu(
    ref.linear(
      ref.layerNorm(tokens, 1e-5, w['block.ln.weight'], w['block.ln.bias']),
      w['block.proj.weight'],
      w['block.proj.bias'],
    ),
  );
  // [n, C, h, w] → [1, C, n, h, w]
  const v = ref.tensor([1, CO, N, H, W], (i) => {
    const s = i % (H * W);
    const f = Math.floor(i / (H * W)) % N;
    const c = Math.floor(i / (H * W * N));
    return h.data[(f * CO + c) * H * W + s];
  });
  const zv = ref.conv3dTemporal(
    ref.groupNorm(v, 4, 1e-6, w['block.tnorm.weight'], w['block.tnorm.bias']),
    w['block.tconv.weight'],
    w['block.tconv.bias'],
  );
  const z = ref.tensor([N, CO, H, W], (i) => {
    const s = i % (H * W);
    const c = Math.floor(i / (H * W)) % CO;
    const f = Math.floor(i / (H * W * CO));
    return zv.data[(c * N + f) * H * W + s];
  });
  return { y, z };
}

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

const input = ref.tensor(
  [N, C, H, W],
  (() => {
    const r = ref.rng(7);
    return () => r();
  })(),
);

describe('graph core', () => {
  it('fp32 checkpoint → fp32 graph matches the JS reference (weights as external data into the checkpoint)', async () => {
    const weights = makeWeights(1);
    const ckpt = join(dir, 'f32', 'block', 'model.safetensors');
    mkdirSync(join(dir, 'f32', 'block'), { recursive: true });
    writeCheckpoint(ckpt, weights, 'F32');
    const g = new GraphBuilder({ name: 'test', dtype: 'float32', weights: checkpointWeights(ckpt) });
    defineGraph(g);
    const info = saveGraph(g, join(dir, 'f32', 'out'), 'test.onnx');
    expect(info.unusedWeights).toEqual([]);
    expect(info.weightFiles).toHaveLength(1);
    expect(info.weightFiles[0].mode).toBe('hardlink');
    // the conv weight (1152 bytes) is external, not inlined into the .onnx
    expect(readFileSync(info.path).byteLength).toBeLessThan(1152 + 4000);
    expect(info.opCounts.Cast ?? 0).toBe(0);

    const out = await run(info.path, { x: new ort.Tensor('float32', Float32Array.from(input.data), [N, C, H, W]) });
    const want = reference(weights, input);
    expect(out.y.dims).toEqual([N, H * W, D]);
    expect(out.z.dims).toEqual([N, CO, H, W]);
    const ey = ref.relErr(out.y.data as Float32Array, want.y.data);
    const ez = ref.relErr(out.z.data as Float32Array, want.z.data);
    console.log(`fp32 graph vs JS reference: y ${ey.toExponential(2)}, z ${ez.toExponential(2)}`);
    expect(ey).toBeLessThan(1e-5);
    expect(ez).toBeLessThan(1e-5);
  });

  it('fp16 checkpoint → fp32 graph through Cast nodes', async () => {
    const weights = makeWeights(2);
    const ckpt = join(dir, 'f16', 'model.safetensors');
    mkdirSync(join(dir, 'f16'), { recursive: true });
    writeCheckpoint(ckpt, weights, 'F16');
    // the reference uses the values the checkpoint actually holds (halves read back)
    const stored = openCheckpoint(ckpt);
    const held: Record<string, ref.T> = {};
    for (const [name, t] of Object.entries(weights)) {
      const v = readTensorF32(stored.tensors.get(name)!);
      for (let i = 0; i < v.length; i++)
        expect(Math.abs(v[i] - t.data[i])).toBeLessThanOrEqual(Math.abs(t.data[i]) * 2 ** -11 + 1e-7);
      held[name] = { data: Float64Array.from(v), shape: t.shape };
    }
    const g = new GraphBuilder({
      name: 'test16',
      dtype: 'float32',
      weights: checkpointWeights(ckpt),
      weightStorage: 'reference',
    });
    defineGraph(g);
    const info = saveGraph(g, join(dir, 'f16', 'out'), 'test.onnx');
    expect(info.opCounts.Cast).toBe(Object.keys(weights).length);
    const out = await run(info.path, { x: new ort.Tensor('float32', Float32Array.from(input.data), [N, C, H, W]) });
    const want = reference(held, input);
    expect(ref.relErr(out.y.data as Float32Array, want.y.data)).toBeLessThan(1e-5);
    expect(ref.relErr(out.z.data as Float32Array, want.z.data)).toBeLessThan(1e-5);
  });

  it("fp32 checkpoint → fp16 graph with weightStorage 'convert' writes one .data file and no Cast", async () => {
    const weights = makeWeights(3);
    const ckpt = join(dir, 'conv', 'model.safetensors');
    mkdirSync(join(dir, 'conv'), { recursive: true });
    writeCheckpoint(ckpt, weights, 'F32');
    const g = new GraphBuilder({
      name: 'half',
      dtype: 'float16',
      weights: checkpointWeights(ckpt),
      weightStorage: 'convert',
    });
    defineGraph(g);
    const info = saveGraph(g, join(dir, 'conv', 'out'), 'half.onnx');
    expect(info.opCounts.Cast ?? 0).toBe(0);
    expect(info.dataBytes).toBeGreaterThan(0);
    expect(info.weightFiles).toEqual([]);
    const out = await run(info.path, {
      x: new ort.Tensor('float16', float32ToFloat16(Float32Array.from(input.data)), [N, C, H, W]),
    });
    expect(out.y.type).toBe('float16');
    const want = reference(weights, input);
    // fp16 compute: loose but meaningful bound
    expect(ref.relErr(float16ToFloat32(out.y.data as Uint16Array), want.y.data)).toBeLessThan(5e-3);
    expect(ref.relErr(float16ToFloat32(out.z.data as Uint16Array), want.z.data)).toBeLessThan(5e-3);
  });

  it('collects every missing and mis-shaped weight into one CheckpointError and writes nothing', async () => {
    const weights = makeWeights(4);
    delete weights['block.ln.bias'];
    delete weights['block.tconv.weight'];
    weights['block.proj.weight'] = ref.tensor([D + 1, CO], () => 0.1);
    const ckpt = join(dir, 'bad', 'model.safetensors');
    mkdirSync(join(dir, 'bad'), { recursive: true });
    writeCheckpoint(ckpt, weights, 'F32');
    const g = new GraphBuilder({ name: 'bad', dtype: 'float32', weights: checkpointWeights(ckpt) });
    defineGraph(g);
    let err: unknown;
    try {
      saveGraph(g, join(dir, 'bad', 'out'), 'bad.onnx');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    const e = err as CheckpointError;
    expect(e.problems).toHaveLength(3);
    expect(e.message).toContain('block.ln.bias: missing (expected shape [8])');
    expect(e.message).toContain('block.tconv.weight: missing (expected shape [8, 8, 3, 1, 1])');
    expect(e.message).toContain('block.proj.weight: expected shape [6, 8], found [7, 8]');
    expect(existsSync(join(dir, 'bad', 'out', 'bad.onnx'))).toBe(false);
  });

  it('a dry weight source records every tensor a graph needs, with shapes', () => {
    const g = new GraphBuilder({ name: 'dry', dtype: 'float32', weights: dryWeights() });
    defineGraph(g);
    const want = makeWeights(0);
    expect(g.requests.map((r) => r.name).sort()).toEqual(Object.keys(want).sort());
    for (const r of g.requests) expect(r.shape).toEqual(want[r.name].shape);
    expect(() => saveGraph(g, join(dir, 'dry'), 'dry.onnx')).toThrow(/dry-run/);
  });

  it('multi-head attention: primitive and com.microsoft MultiHeadAttention both match the reference', async () => {
    const r = ref.rng(11);
    const heads = 2;
    const hd = 6;
    const q = ref.tensor([2, 5, heads * hd], () => r());
    const k = ref.tensor([2, 3, heads * hd], () => r());
    const v = ref.tensor([2, 3, heads * hd], () => r());
    const want = ref.attention(q, k, v, heads, 1 / Math.sqrt(hd));
    for (const impl of ['primitive', 'mha'] as const) {
      // a graph without weights still needs a real source to be saved: an empty checkpoint
      const emptyCkpt = join(dir, `empty-${impl}.safetensors`);
      writeSafetensors(emptyCkpt, {});
      const g = new GraphBuilder({
        name: `attn-${impl}`,
        dtype: 'float32',
        weights: checkpointWeights(emptyCkpt),
        opsets: { 'com.microsoft': 1 },
      });
      const qi = g.input('q', ['b', 's', heads * hd]);
      const ki = g.input('k', ['b', 't', heads * hd]);
      const vi = g.input('v', ['b', 't', heads * hd]);
      g.output(attention(g, qi, ki, vi, { heads, headDim: hd, impl }), 'o', ['b', 's', heads * hd]);
      const info = saveGraph(g, join(dir, `attn-${impl}`), 'attn.onnx');
      expect(info.opCounts.MultiHeadAttention ?? 0).toBe(impl === 'mha' ? 1 : 0);
      const f = (t: ref.T) => new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
      const out = await run(info.path, { q: f(q), k: f(k), v: f(v) });
      expect(ref.relErr(out.o.data as Float32Array, want.data)).toBeLessThan(1e-5);
    }
  });

  it('query-chunked attention (ONNX Loop) equals the unchunked graph for any budget, in fp32 and fp16', async () => {
    const r = ref.rng(12);
    const heads = 2;
    const hd = 4;
    const [b, s, t] = [3, 11, 7];
    const q = ref.tensor([b, s, heads * hd], () => r());
    const k = ref.tensor([b, t, heads * hd], () => r());
    const v = ref.tensor([b, t, heads * hd], () => r());
    const emptyCkpt = join(dir, 'empty-chunked.safetensors');
    writeSafetensors(emptyCkpt, {});
    const outputs = async (dtype: 'float32' | 'float16', name: string, o: Partial<AttentionOptions>) => {
      const g = new GraphBuilder({ name, dtype, weights: checkpointWeights(emptyCkpt) });
      const [qi, ki, vi] = ['q', 'k', 'v'].map((n) => g.input(n, ['b', n === 'q' ? 's' : 't', heads * hd]));
      g.output(attention(g, qi, ki, vi, { heads, headDim: hd, softmaxFloat32: dtype === 'float16', ...o }), 'o', [
        'b',
        's',
        heads * hd,
      ]);
      const info = saveGraph(g, join(dir, name), 'attn.onnx');
      expect(info.opCounts.Loop ?? 0).toBe(o.impl === 'chunked' ? 1 : 0);
      const feed = (x: ref.T) =>
        dtype === 'float16'
          ? new ort.Tensor('float16', float32ToFloat16(Float32Array.from(x.data)), x.shape)
          : new ort.Tensor('float32', Float32Array.from(x.data), x.shape);
      const out = (await run(info.path, { q: feed(q), k: feed(k), v: feed(v) })).o;
      expect(out.dims).toEqual([b, s, heads * hd]);
      return dtype === 'float16' ? float16ToFloat32(out.data as Uint16Array) : (out.data as Float32Array);
    };
    for (const dtype of ['float32', 'float16'] as const) {
      const whole = await outputs(dtype, `attn-whole-${dtype}`, { impl: 'primitive' });
      // one score row is b·heads·t·4 = 168 bytes: budgets of 1, 3, 4 (11 = 2·4 + 3, padded) and all 11 rows, and below one row
      for (const rows of [1, 3, 4, 11, 0.5]) {
        const got = await outputs(dtype, `attn-chunked-${dtype}-${rows}`, {
          impl: 'chunked',
          maxScoreBytes: rows * 168,
        });
        const diff = Math.max(...got.map((x, i) => Math.abs(x - whole[i])));
        expect(diff, `${dtype}, ${rows} rows per chunk`).toBeLessThanOrEqual(dtype === 'float32' ? 1e-6 : 1e-3);
      }
    }
  });
});
