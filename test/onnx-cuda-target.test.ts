/**
 * `target: 'cuda'` graphs: GroupNorm is built as Reshape → InstanceNormalization → per-channel affine because
 * onnxruntime's CUDA EP has no GroupNormalization kernel (notes and sources above `groupNorm` in
 * src/onnx/layers/basic.ts). No GPU here: everything runs on the CPU EP, which also implements every op the
 * cuda graphs use. Checks: same outputs as the cpu-target build, no GroupNormalization left, only ops the CUDA
 * EP lists, float16 cuda builds run and stay close to float32, and the layer itself against a float64 reference.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { buildClipImageEncoderGraph } from '../src/encoders/clipGraph.js';
import type { GraphBuildOptions } from '../src/onnx/build.js';
import {
  checkpointWeights,
  GraphBuilder,
  groupNorm,
  saveGraph,
  type BuildInfo,
  type GroupNormOptions,
} from '../src/onnx/index.js';
import { writeSafetensors } from '../src/safetensors/index.js';
import { relativeError } from '../src/tensor/compare.js';
import { float16ToFloat32, float32ToFloat16 } from '../src/tensor/float16.js';
import { readNpy } from '../src/tensor/npy.js';
import { buildUnetGraph } from '../src/unet/index.js';
import { buildVaeDecoderGraph } from '../src/vae/decoderGraph.js';
import { buildVaeEncoderGraph } from '../src/vae/encoderGraph.js';
import * as ref from './onnx-ref.js';

const REF = join(import.meta.dirname, 'fixtures', 'reference');
const CKPT = join(REF, 'tiny-svd');
const dir = mkdtempSync(join(tmpdir(), 'svd-cuda-target-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Op types with a CUDA EP kernel that covers the version an opset-21 graph gets, for float and float16,
 * transcribed from microsoft/onnxruntime docs/OperatorKernels.md ("Operators implemented by
 * CUDAExecutionProvider", commit 001d12d2623f). All ai.onnx, except MultiHeadAttention (com.microsoft).
 * GroupNormalization is deliberately absent: the CUDA EP has no kernel for it.
 */
const CUDA_KERNELS = new Set([
  'Add',
  'Cast',
  'Concat',
  'Conv',
  'Cos',
  'Div',
  'Erf',
  'Expand',
  'Gather',
  'Gelu',
  'Identity',
  'InstanceNormalization',
  'LayerNormalization',
  'MatMul',
  'Mul',
  'MultiHeadAttention',
  'Pad',
  'Range',
  'Reshape',
  'Resize',
  'Shape',
  'Sigmoid',
  'Sin',
  'Slice',
  'Softmax',
  'Split',
  'Sqrt',
  'Squeeze',
  'Sub',
  'Tile',
  'Transpose',
  'Unsqueeze',
]);

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  try {
    const out = await session.run(feeds);
    return out[session.outputNames[0]] as ort.Tensor;
  } finally {
    await session.release();
  }
}

const npy = (name: string): ort.Tensor => {
  const a = readNpy(join(REF, 'out', `${name}.npy`));
  return new ort.Tensor('float32', a.data as Float32Array, a.shape);
};
/** float16 copies of the feeds, except `timestep`, which every build takes as float32. */
const toHalf = (feeds: Record<string, ort.Tensor>) =>
  Object.fromEntries(
    Object.entries(feeds).map(([k, t]) => [
      k,
      k === 'timestep' ? t : new ort.Tensor('float16', float32ToFloat16(t.data as Float32Array), t.dims),
    ]),
  );
const asFloat32 = (t: ort.Tensor): Float32Array =>
  t.type === 'float16' ? float16ToFloat32(t.data as Uint16Array) : (t.data as Float32Array);

interface Component {
  name: string;
  build: (options: GraphBuildOptions) => BuildInfo;
  feeds: () => Record<string, ort.Tensor>;
}

const COMPONENTS: Component[] = [
  {
    name: 'vae_decoder',
    build: (o) => buildVaeDecoderGraph(CKPT, o),
    feeds: () => ({ latent: npy('vae_decode_chunk0_input') }),
  },
  {
    name: 'vae_encoder',
    build: (o) => buildVaeEncoderGraph(CKPT, o),
    feeds: () => ({ sample: npy('vae_encoder_input') }),
  },
  {
    name: 'unet',
    // the reference run used diffusers 0.27.2, whose temporal cross-attention context order the reference needs
    build: (o) => buildUnetGraph(CKPT, { ...o, temporalContextOrder: 'diffusers-0.27' }),
    feeds: () => ({
      sample: npy('step0_unet_sample'),
      timestep: npy('step0_unet_timestep'),
      encoder_hidden_states: npy('unet_encoder_hidden_states'),
      added_time_ids: npy('unet_added_time_ids'),
    }),
  },
  {
    name: 'image_encoder',
    build: (o) => buildClipImageEncoderGraph(CKPT, o),
    feeds: () => ({ pixel_values: npy('clip_pixel_values') }),
  },
];

describe.each(COMPONENTS)('$name built for cuda (tiny reference checkpoint, run on CPU)', ({ name, build, feeds }) => {
  const cpu = build({ outDir: join(dir, name, 'cpu') });
  const cuda = build({ outDir: join(dir, name, 'cuda'), target: 'cuda' });
  let cpuOutput: Promise<ort.Tensor> | undefined;
  const expected = () => (cpuOutput ??= run(cpu.path, feeds()));

  it('has no GroupNormalization: one InstanceNormalization per GroupNorm of the cpu build instead', () => {
    const norms = cpu.opCounts.GroupNormalization ?? 0;
    console.log(`${name}: ${norms} GroupNorm(s); ${cpu.nodeCount} nodes for cpu, ${cuda.nodeCount} for cuda`);
    expect(cuda.opCounts.GroupNormalization).toBeUndefined();
    expect(cuda.opCounts.InstanceNormalization ?? 0).toBe(norms);
    expect(cpu.opCounts.InstanceNormalization).toBeUndefined();
    if (name !== 'image_encoder') expect(norms).toBeGreaterThan(0);
  });

  it('uses only ops the CUDA EP implements', () => {
    const missing = Object.keys(cuda.opCounts).filter((op) => !CUDA_KERNELS.has(op));
    expect(missing).toEqual([]);
  });

  it('computes what the cpu build computes (fp32, within 1e-5 relative)', async () => {
    const want = await expected();
    const got = await run(cuda.path, feeds());
    expect(got.dims).toEqual(want.dims);
    const err = relativeError(got.data as Float32Array, want.data as Float32Array);
    console.log(`${name}: cuda-target vs cpu-target fp32 relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
  });

  it('float16 cuda build runs on CPU and stays within 1e-2 of fp32', async () => {
    const half = build({ outDir: join(dir, name, 'cuda-fp16'), target: 'cuda', dtype: 'float16' });
    expect(half.opCounts.GroupNormalization).toBeUndefined();
    const got = await run(half.path, toHalf(feeds()));
    expect(got.type).toBe('float16');
    const err = relativeError(asFloat32(got), (await expected()).data as Float32Array);
    console.log(`${name}: cuda-target fp16 vs cpu-target fp32 relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-2);
  });
});

describe('groupNorm as InstanceNormalization (layer vs float64 reference)', () => {
  /** A GroupNorm-only graph over `shape`, weights from a fresh safetensors file; returns its output. */
  async function runGroupNorm(
    tag: string,
    x: ref.T,
    scale: ref.T,
    bias: ref.T,
    o: Omit<GroupNormOptions, 'channels'> & { dtype?: 'float32' | 'float16'; target?: 'cpu' | 'cuda' },
  ): Promise<{ out: Float32Array; ops: Record<string, number> }> {
    const c = x.shape[1];
    const root = join(dir, 'layer', tag);
    mkdirSync(root, { recursive: true });
    const ckpt = join(root, 'gn.safetensors');
    writeSafetensors(ckpt, {
      'gn.weight': { dtype: 'F32', shape: [c], data: Float32Array.from(scale.data) },
      'gn.bias': { dtype: 'F32', shape: [c], data: Float32Array.from(bias.data) },
    });
    const dtype = o.dtype ?? 'float32';
    // 'convert' stores the weights in the graph's dtype, so the only Casts are groupNorm's own
    const g = new GraphBuilder({
      name: 'gn',
      dtype,
      weights: checkpointWeights(ckpt),
      weightStorage: 'convert',
      target: o.target,
    });
    const input = g.input(
      'x',
      x.shape.map((_, i) => (i === 1 ? c : `d${i}`)),
    );
    g.output(groupNorm(g, input, 'gn', { ...o, channels: c }), 'y', [...input.shape!]);
    const info = saveGraph(g, join(root, 'out'), 'gn.onnx');
    const data = Float32Array.from(x.data);
    const feed =
      dtype === 'float16'
        ? new ort.Tensor('float16', float32ToFloat16(data), x.shape)
        : new ort.Tensor('float32', data, x.shape);
    return { out: asFloat32(await run(info.path, { x: feed })), ops: info.opCounts };
  }

  const weights = (c: number, seed: number) => {
    const r = ref.rng(seed);
    return { scale: ref.tensor([c], () => 1 + 0.3 * r()), bias: ref.tensor([c], () => 0.3 * r()) };
  };

  for (const shape of [
    [2, 8, 6, 5],
    [2, 8, 3, 4, 5],
  ]) {
    it(`${shape.length}-D ${JSON.stringify(shape)}: matches torch GroupNorm and GroupNormalization-21`, async () => {
      const r = ref.rng(3);
      const x = ref.tensor(shape, () => 2 * r() + 0.5);
      const { scale, bias } = weights(shape[1], 4);
      const want = ref.groupNorm(x, 4, 1e-6, scale, bias);
      const viaInstance = await runGroupNorm(`inst-${shape.length}d`, x, scale, bias, {
        groups: 4,
        eps: 1e-6,
        target: 'cuda',
      });
      const viaGroup = await runGroupNorm(`group-${shape.length}d`, x, scale, bias, { groups: 4, eps: 1e-6 });
      expect(viaInstance.ops.InstanceNormalization).toBe(1);
      expect(viaInstance.ops.GroupNormalization).toBeUndefined();
      expect(viaGroup.ops.GroupNormalization).toBe(1);
      expect(ref.relErr(viaInstance.out, want.data)).toBeLessThan(1e-6);
      expect(relativeError(viaInstance.out, viaGroup.out)).toBeLessThan(1e-6);
    });
  }

  it('the impl option overrides the target either way', async () => {
    const x = ref.tensor([1, 4, 3, 3], (i) => Math.sin(i));
    const { scale, bias } = weights(4, 5);
    const want = ref.groupNorm(x, 2, 1e-5, scale, bias);
    const a = await runGroupNorm('force-inst', x, scale, bias, { groups: 2, eps: 1e-5, impl: 'instanceNormalization' });
    const b = await runGroupNorm('force-group', x, scale, bias, {
      groups: 2,
      eps: 1e-5,
      impl: 'groupNormalization',
      target: 'cuda',
    });
    expect(a.ops.InstanceNormalization).toBe(1);
    expect(b.ops.GroupNormalization).toBe(1);
    expect(ref.relErr(a.out, want.data)).toBeLessThan(1e-6);
    expect(ref.relErr(b.out, want.data)).toBeLessThan(1e-6);
  });

  it('float16 over large groups with an offset mean: every variant stays at fp16 rounding level', async () => {
    // 4 groups of 16 channels × 4 frames × 32 × 32 = 65536 values each, mean ≈ 8: a float16 running sum would
    // overflow (65536 · 8 > 65504). On CPU, ORT runs a float16 InstanceNormalization through inserted Casts; the
    // CUDA kernel keeps its statistics in float32 too (instance_norm.cc), so this bounds the CUDA case as well.
    const shape = [1, 64, 4, 32, 32];
    const r = ref.rng(11);
    const x = ref.tensor(shape, (i) => 8 + 3 * r() + Math.sin(i / 97));
    const { scale, bias } = weights(64, 12);
    const want = ref.groupNorm(x, 4, 1e-6, scale, bias);
    // the float16 input itself is rounded; a float64 norm of the rounded input is the floor any variant can reach
    const halfX = float16ToFloat32(float32ToFloat16(Float32Array.from(x.data)));
    const rounded = ref.tensor(shape, (i) => halfX[i]);
    const floor = ref.relErr(Float32Array.from(ref.groupNorm(rounded, 4, 1e-6, scale, bias).data), want.data);
    const variants = {
      instanceNorm: await runGroupNorm('fp16-inst', x, scale, bias, {
        groups: 4,
        eps: 1e-6,
        dtype: 'float16',
        target: 'cuda',
      }),
      instanceNormFloat32: await runGroupNorm('fp16-inst32', x, scale, bias, {
        groups: 4,
        eps: 1e-6,
        dtype: 'float16',
        target: 'cuda',
        normFloat32: true,
      }),
      groupNormalization21: await runGroupNorm('fp16-group', x, scale, bias, {
        groups: 4,
        eps: 1e-6,
        dtype: 'float16',
      }),
    };
    const errors = Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, ref.relErr(v.out, want.data)]));
    console.log(
      `fp16 GroupNorm relative error vs float64: input-rounding floor ${floor.toExponential(2)}, ${JSON.stringify(errors, (_, v) => (typeof v === 'number' ? v.toExponential(2) : v))}`,
    );
    expect(variants.instanceNormFloat32.ops.Cast).toBe(2);
    expect(variants.instanceNorm.ops.Cast).toBeUndefined();
    for (const err of Object.values(errors)) expect(err).toBeLessThan(floor + 1e-3);
  });
});
