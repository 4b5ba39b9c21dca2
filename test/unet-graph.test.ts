/**
 * The UNet graph built from the tiny reference checkpoint, run in onnxruntime-node on CPU, against the
 * outputs diffusers 0.27.2 recorded (step0/step3_unet_output); and a graph of a different config (3 levels,
 * per-level heads/layers, nested transformer depths, odd non-square latents) from seeded random weights.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, ModelNotFoundError } from '../src/errors.js';
import { randomTensors, seededNormal, writeRandomCheckpoint } from '../src/onnx/randomWeights.js';
import { dryWeights } from '../src/onnx/weights.js';
import { writeSafetensors } from '../src/safetensors/writer.js';
import { relativeError } from '../src/tensor/compare.js';
import { float16ToFloat32, float32ToFloat16 } from '../src/tensor/float16.js';
import { readNpy } from '../src/tensor/npy.js';
import {
  buildUnetGraph,
  defineUnetGraph,
  parseUnetConfig,
  unetNodeCounts,
  unetWeights,
  type UnetBuildOptions,
} from '../src/unet/index.js';

const REF = 'test/fixtures/reference';
/** One intra-op thread: the graphs are tiny, and the test machine's cores are shared. */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1 };
const dir = mkdtempSync(join(tmpdir(), 'svd-unet-graph-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (name: string): ort.Tensor => {
  const a = readNpy(`${REF}/out/${name}.npy`);
  return new ort.Tensor('float32', a.data as Float32Array, a.shape);
};

function referenceFeeds(step: number, half = false): Record<string, ort.Tensor> {
  const io = (name: string): ort.Tensor => {
    const t = f32(name);
    return half ? new ort.Tensor('float16', float32ToFloat16(t.data as Float32Array), t.dims) : t;
  };
  return {
    sample: io(`step${step}_unet_sample`),
    timestep: f32(`step${step}_unet_timestep`), // float32 in every build
    encoder_hidden_states: io('unet_encoder_hidden_states'),
    added_time_ids: io('unet_added_time_ids'),
  };
}

/** The reference run used diffusers 0.27.2, whose temporal cross-attention context order we reproduce for it. */
const REF_ORDER = { temporalContextOrder: 'diffusers-0.27' } as const;

async function build(
  name: string,
  checkpoint: string,
  options: Omit<UnetBuildOptions, 'outDir'> = {},
): Promise<ort.InferenceSession> {
  const info = buildUnetGraph(checkpoint, { ...options, outDir: join(dir, name) });
  expect(info.unexpectedWeights).toEqual([]);
  return ort.InferenceSession.create(info.path, SESSION_OPTIONS);
}

describe('UNet graph vs diffusers (tiny reference checkpoint, CPU)', () => {
  const checkpoint = `${REF}/tiny-svd`;

  it('fp32 matches step0 and step3 unet outputs within 1e-4 relative error', async () => {
    const session = await build('fp32', checkpoint, REF_ORDER);
    for (const step of [0, 3]) {
      const out = (await session.run(referenceFeeds(step))).noise_pred;
      const ref = readNpy(`${REF}/out/step${step}_unet_output.npy`);
      expect(out.dims).toEqual(ref.shape);
      const err = relativeError(out.data as Float32Array, ref.data as Float32Array);
      console.log(`unet fp32 step${step}: relative error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
    }
  });

  it('the cuda build (MultiHeadAttention) computes the same on CPU', async () => {
    const session = await build('fp32-mha', checkpoint, { ...REF_ORDER, target: 'cuda' });
    const out = (await session.run(referenceFeeds(0))).noise_pred;
    const err = relativeError(
      out.data as Float32Array,
      readNpy(`${REF}/out/step0_unet_output.npy`).data as Float32Array,
    );
    console.log(`unet fp32 (MultiHeadAttention) step0: relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  });

  it('every attention formulation (MatMul/Softmax, query-chunked Loop, MultiHeadAttention) gives the same output', async () => {
    const outputs: Record<string, Float32Array> = {};
    // 2 KiB of scores: a few query rows per chunk at this size, so the Loop really runs several chunks (and the
    // feed-forwards, chunked with the same budget, one token per chunk)
    const choices = {
      primitive: { impl: 'primitive' },
      chunked: { impl: 'chunked', maxScoreBytes: 2048 },
      mha: { impl: 'mha' },
    } as const;
    for (const [name, attention] of Object.entries(choices)) {
      const session = await build(`fp32-attn-${name}`, checkpoint, { ...REF_ORDER, attention });
      outputs[name] = (await session.run(referenceFeeds(0))).noise_pred.data as Float32Array;
    }
    for (const name of ['chunked', 'mha']) {
      const err = relativeError(outputs[name], outputs.primitive);
      console.log(`unet fp32 attention '${name}' vs 'primitive': relative error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(5e-6); // float rounding only (measured 9.3e-7 for both)
    }
  });

  it("matches diffusers' own ONNX export at other latent sizes", async () => {
    // the traced export baked B·F = 8 into its attention reshapes, so only h and w can change
    const ours = await build('fp32-sizes', checkpoint, REF_ORDER);
    const theirs = await ort.InferenceSession.create(`${REF}/tiny-svd-onnx/unet.onnx`, SESSION_OPTIONS);
    const normal = seededNormal(5);
    const fill = (n: number) => Float32Array.from({ length: n }, normal);
    const [b, f, h, w] = [2, 4, 6, 10];
    const feeds = {
      sample: new ort.Tensor('float32', fill(b * f * 8 * h * w), [b, f, 8, h, w]),
      timestep: new ort.Tensor('float32', Float32Array.of(-0.4), []),
      encoder_hidden_states: new ort.Tensor('float32', fill(b * 32), [b, 1, 32]),
      added_time_ids: new ort.Tensor('float32', Float32Array.of(6, 127, 0.02, 6, 127, 0.02), [b, 3]),
    };
    const a = (await ours.run(feeds)).noise_pred;
    const t = (await theirs.run(feeds)).noise_pred;
    expect(a.dims).toEqual(t.dims);
    expect(relativeError(a.data as Float32Array, t.data as Float32Array)).toBeLessThan(1e-4);
  });

  it('fp16 build takes and returns float16 (timestep float32) and stays close', async () => {
    const session = await build('fp16', checkpoint, { ...REF_ORDER, dtype: 'float16' });
    const out = (await session.run(referenceFeeds(0, true))).noise_pred;
    expect(out.type).toBe('float16');
    const err = relativeError(
      float16ToFloat32(out.data as Uint16Array),
      readNpy(`${REF}/out/step0_unet_output.npy`).data as Float32Array,
    );
    console.log(`unet fp16 step0: relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-2);
  });

  it('records the shortcut cross-attention tensors as skipped, and the shortcut saves nodes', () => {
    const info = buildUnetGraph(checkpoint, { outDir: join(dir, 'fp32-again') });
    expect(info.skippedWeights.some((n) => n.endsWith('temporal_transformer_blocks.0.attn2.to_q.weight'))).toBe(true);
    expect(info.skippedWeights.some((n) => n.endsWith('transformer_blocks.0.norm2.bias'))).toBe(true);
    expect(info.unusedWeights.sort()).toEqual([...info.skippedWeights].sort());
    const counts = unetNodeCounts(info.config);
    console.log(
      `unet node count (tiny reference): ${counts.shortcut} with the cross-attention shortcut, ${counts.literal} without`,
    );
    expect(counts.shortcut).toBe(info.nodeCount);
    expect(counts.shortcut).toBeLessThan(counts.literal);
  });

  it('a config that does not fit the checkpoint fails with every mismatch listed and writes nothing', () => {
    const ckpt = join(dir, 'mismatch', 'unet');
    mkdirSync(ckpt, { recursive: true });
    const raw = JSON.parse(readFileSync(`${checkpoint}/unet/config.json`, 'utf8'));
    writeFileSync(join(ckpt, 'config.json'), JSON.stringify({ ...raw, layers_per_block: 3, cross_attention_dim: 48 }));
    copyFileSync(
      `${checkpoint}/unet/diffusion_pytorch_model.safetensors`,
      join(ckpt, 'diffusion_pytorch_model.safetensors'),
    );
    const out = join(dir, 'mismatch-out');
    let error: unknown;
    try {
      buildUnetGraph(join(dir, 'mismatch'), { outDir: out });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CheckpointError);
    const message = (error as Error).message;
    expect(message).toContain('down_blocks.0.resnets.2.spatial_res_block.conv1.weight: missing');
    expect(message).toMatch(/attn2\.to_v\.weight: expected shape \[32, 48\]/);
    expect(existsSync(join(out, 'unet.onnx'))).toBe(false);
    expect(() => buildUnetGraph(join(dir, 'nowhere'), { outDir: out })).toThrow(ModelNotFoundError);
  });
});

describe('UNet graph of another config from random weights', () => {
  const raw = {
    _class_name: 'UNetSpatioTemporalConditionModel',
    in_channels: 6,
    out_channels: 3,
    block_out_channels: [32, 64, 96],
    layers_per_block: [1, 2, 1],
    num_attention_heads: [2, 4, 3],
    transformer_layers_per_block: [[1, 2], [2, 1, 3], 2],
    cross_attention_dim: 24,
    addition_time_embed_dim: 8,
    projection_class_embeddings_input_dim: 24,
    down_block_types: [
      'CrossAttnDownBlockSpatioTemporal',
      'CrossAttnDownBlockSpatioTemporal',
      'DownBlockSpatioTemporal',
    ],
    up_block_types: ['UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'],
    num_frames: 3,
  };
  const config = parseUnetConfig(raw);
  const ckpt = join(dir, 'random-ckpt');
  let shortcut: ort.InferenceSession;

  beforeAll(async () => {
    // every tensor diffusers stores, to_q/to_k/norm2 of the cross-attentions included
    const requests = unetWeights(raw);
    mkdirSync(join(ckpt, 'unet'), { recursive: true });
    writeFileSync(join(ckpt, 'unet', 'config.json'), JSON.stringify(raw));
    writeRandomCheckpoint(join(ckpt, 'unet', 'diffusion_pytorch_model.safetensors'), requests, 7);
    shortcut = await build('random', ckpt, REF_ORDER);
  });

  function feeds(batch: number, frames: number, h: number, w: number, seed: number): Record<string, ort.Tensor> {
    const normal = seededNormal(seed);
    const fill = (n: number) => Float32Array.from({ length: n }, normal);
    return {
      sample: new ort.Tensor('float32', fill(batch * frames * 6 * h * w), [batch, frames, 6, h, w]),
      timestep: new ort.Tensor('float32', Float32Array.of(0.7), []),
      encoder_hidden_states: new ort.Tensor('float32', fill(batch * 24), [batch, 1, 24]),
      added_time_ids: new ort.Tensor(
        'float32',
        Float32Array.from({ length: batch * 3 }, (_, i) => [6, 127, 0.02][i % 3]),
        [batch, 3],
      ),
    };
  }

  it('runs on odd, non-square latents (sizes not divisible by 2^levels) and at a second size', async () => {
    for (const [b, f, h, w] of [
      [2, 3, 5, 7],
      [1, 2, 8, 4],
    ]) {
      const out = (await shortcut.run(feeds(b, f, h, w, 1))).noise_pred;
      expect(out.dims).toEqual([b, f, 3, h, w]);
      const data = out.data as Float32Array;
      expect(data.every(Number.isFinite)).toBe(true);
      expect(data.some((v) => v !== 0)).toBe(true);
    }
  });

  it('the single-token shortcut equals literal cross-attention', async () => {
    const literal = await build('random-literal', ckpt, { ...REF_ORDER, literalCrossAttention: true });
    const input = feeds(2, 3, 5, 7, 2);
    const a = (await shortcut.run(input)).noise_pred.data as Float32Array;
    const b = (await literal.run(input)).noise_pred.data as Float32Array;
    expect(relativeError(a, b)).toBeLessThan(1e-5);
  });

  it('a float16 build uses the fp16 safetensors when the checkpoint has them', async () => {
    const requests = unetWeights(raw);
    writeSafetensors(join(ckpt, 'unet', 'diffusion_pytorch_model.fp16.safetensors'), randomTensors(requests, 7, 'F16'));
    try {
      const info = buildUnetGraph(ckpt, { outDir: join(dir, 'random-fp16'), dtype: 'float16' });
      expect(info.weightFiles.map((w) => w.source)).toEqual([
        join(ckpt, 'unet', 'diffusion_pytorch_model.fp16.safetensors'),
      ]);
      // no per-weight Cast: exactly the Casts of the same graph over placeholder weights (which never get one)
      const ownCasts = defineUnetGraph(config, dryWeights(), { dtype: 'float16', target: 'cpu' }).g.nodes.filter(
        (n) => n.opType === 'Cast',
      ).length;
      expect(info.opCounts.Cast ?? 0).toBe(ownCasts);
      // (running a float16 graph is covered by the reference test above)
    } finally {
      rmSync(join(ckpt, 'unet', 'diffusion_pytorch_model.fp16.safetensors'));
    }
  });

  it('per-video and diffusers-0.27 temporal context orders agree for one video and differ for two', async () => {
    const perVideo = await build('random-per-video', ckpt); // the default order
    const one = feeds(1, 3, 5, 7, 3);
    expect(
      relativeError(
        (await perVideo.run(one)).noise_pred.data as Float32Array,
        (await shortcut.run(one)).noise_pred.data as Float32Array,
      ),
    ).toBeLessThan(1e-6);
    const two = feeds(2, 3, 5, 7, 3);
    expect(
      relativeError(
        (await perVideo.run(two)).noise_pred.data as Float32Array,
        (await shortcut.run(two)).noise_pred.data as Float32Array,
      ),
    ).toBeGreaterThan(1e-4);
  });
});
