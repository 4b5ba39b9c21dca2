/**
 * VAE encoder and temporal decoder graphs, built from the tiny diffusers checkpoint and compared with
 * diffusers' own outputs (test/fixtures/reference/out), plus other configs from random weights.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../src/errors.js';
import { checkpointWeights } from '../src/onnx/weights.js';
import { writeRandomCheckpoint } from '../src/onnx/randomWeights.js';
import { float16ToFloat32, float32ToFloat16 } from '../src/tensor/float16.js';
import { readNpy } from '../src/tensor/npy.js';
import { relativeError } from '../src/tensor/compare.js';
import { buildVaeDecoderGraph, vaeDecoderWeights } from '../src/vae/decoderGraph.js';
import { buildVaeEncoderGraph, vaeEncoderWeights } from '../src/vae/encoderGraph.js';

const REF = join(import.meta.dirname, 'fixtures', 'reference');
const CKPT = join(REF, 'tiny-svd');
const out = mkdtempSync(join(tmpdir(), 'svd-vae-graph-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const npy = (name: string) => {
  const a = readNpy(join(REF, 'out', `${name}.npy`));
  return { data: a.data as Float32Array, shape: a.shape };
};

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 2 });
  try {
    return (await s.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await s.release();
  }
}

const f32 = (a: { data: Float32Array; shape: number[] }) => new ort.Tensor('float32', a.data, a.shape);
const allFinite = (d: ArrayLike<number>) => Array.prototype.every.call(d, (v: number) => Number.isFinite(v));

describe('VAE encoder graph (tiny reference checkpoint)', () => {
  const info = buildVaeEncoderGraph(CKPT, { outDir: join(out, 'ref') });

  it('reads every encoder tensor and references the checkpoint through a hard link', () => {
    expect(info.unusedWeights).toEqual([]);
    expect(info.weightFiles.map((f) => f.location)).toEqual(['weights/vae-diffusion_pytorch_model.safetensors']);
    console.log(`vae_encoder: ${info.nodeCount} nodes, ${info.weightBytes} weight bytes`);
  });

  it('sample → latent_mean matches diffusers image_latents_mode', async () => {
    const r = await run(info.path, { sample: f32(npy('vae_encoder_input')) });
    const want = npy('image_latents_mode');
    expect(r.latent_mean.dims).toEqual(want.shape);
    const err = relativeError(r.latent_mean.data as Float32Array, want.data);
    console.log(`vae_encoder relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  });
});

describe('VAE temporal decoder graph (tiny reference checkpoint)', () => {
  const info = buildVaeDecoderGraph(CKPT, { outDir: join(out, 'ref') });

  it('with layers_per_block 1 the mid-block attention is built but never applied, as in diffusers', () => {
    // diffusers runs zip(resnets[1:], attentions): one resnet → no attention. Its tensors stay unused.
    expect(info.unusedWeights.length).toBe(10);
    expect(info.unusedWeights.every((n) => n.startsWith('decoder.mid_block.attentions.0.'))).toBe(true);
    console.log(`vae_decoder: ${info.nodeCount} nodes, ${info.weightBytes} weight bytes`);
  });

  for (const k of [0, 1]) {
    it(`chunk ${k}: latent → frames matches diffusers' decode of that chunk`, async () => {
      const r = await run(info.path, { latent: f32(npy(`vae_decode_chunk${k}_input`)) });
      const want = npy(`vae_decode_chunk${k}_output`);
      expect(r.frames.dims).toEqual(want.shape);
      const err = relativeError(r.frames.data as Float32Array, want.data);
      console.log(`vae_decoder chunk ${k} relative error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
    });
  }

  it('takes any frame count; frames of one chunk influence each other (temporal conv + GN over frames)', async () => {
    const a = npy('vae_decode_chunk0_input');
    const b = npy('vae_decode_chunk1_input');
    const per = a.data.length / 2;
    const three = new Float32Array(3 * per);
    three.set(a.data);
    three.set(b.data.subarray(0, per), 2 * per);
    const r3 = await run(info.path, { latent: new ort.Tensor('float32', three, [3, ...a.shape.slice(1)]) });
    expect(r3.frames.dims).toEqual([3, 3, 64, 128]);
    expect(allFinite(r3.frames.data as Float32Array)).toBe(true);
    // the same two first frames decoded as a 2-frame chunk give different pixels
    const want2 = npy('vae_decode_chunk0_output');
    const first2 = (r3.frames.data as Float32Array).subarray(0, want2.data.length);
    expect(relativeError(first2, want2.data)).toBeGreaterThan(1e-3);
    const r1 = await run(info.path, {
      latent: new ort.Tensor('float32', a.data.slice(0, per), [1, ...a.shape.slice(1)]),
    });
    expect(r1.frames.dims).toEqual([1, 3, 64, 128]);
  });

  it('float16 graph (fp32 checkpoint, Cast nodes) takes and returns float16 and stays close', async () => {
    const half = buildVaeDecoderGraph(CKPT, { outDir: join(out, 'half'), dtype: 'float16' });
    const x = npy('vae_decode_chunk0_input');
    const r = await run(half.path, { latent: new ort.Tensor('float16', float32ToFloat16(x.data), x.shape) });
    expect(r.frames.type).toBe('float16');
    const err = relativeError(float16ToFloat32(r.frames.data as Uint16Array), npy('vae_decode_chunk0_output').data);
    console.log(`vae_decoder fp16 relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(5e-3);
  });

  it('a config that does not match the checkpoint → one CheckpointError listing every missing tensor', () => {
    const config = { ...JSON.parse(readFileSync(join(CKPT, 'vae', 'config.json'), 'utf8')), layers_per_block: 2 };
    let err: unknown;
    try {
      buildVaeDecoderGraph({ config, weights: checkpointWeights(join(CKPT, 'vae')) }, { outDir: join(out, 'bad') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    const problems = (err as CheckpointError).problems;
    // mid resnets.1 and a third resnet in each of the 2 up blocks, each with 17 tensors:
    // spatial and temporal (norm1, conv1, norm2, conv2) × (weight, bias) + time_mixer.mix_factor
    expect(problems.length).toBe(3 * 17);
    expect(problems).toContain(
      'decoder.mid_block.resnets.1.spatial_res_block.conv1.weight: missing (expected shape [64, 64, 3, 3])',
    );
    expect(problems).toContain('decoder.up_blocks.1.resnets.2.time_mixer.mix_factor: missing (expected shape [1])');
  });
});

describe('VAE graphs for another config (random weights)', () => {
  // 3 levels, 16 norm groups, 2 layers per block (so the decoder mid attention is used), 3 latent channels
  const config = {
    _class_name: 'AutoencoderKLTemporalDecoder',
    block_out_channels: [16, 32, 48],
    down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
    in_channels: 3,
    out_channels: 3,
    latent_channels: 3,
    layers_per_block: 2,
    norm_num_groups: 16,
  };
  const dir = join(out, 'other', 'vae');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeRandomCheckpoint(
    join(dir, 'diffusion_pytorch_model.safetensors'),
    [...vaeEncoderWeights(config), ...vaeDecoderWeights(config)],
    5,
  );

  it('the weight lists cover the module tree (decoder mid attention included)', () => {
    const names = vaeDecoderWeights(config).map((w) => w.name);
    expect(names).toContain('decoder.mid_block.attentions.0.to_q.weight');
    expect(names).toContain('decoder.mid_block.resnets.1.temporal_res_block.conv2.weight');
    expect(names).toContain('decoder.up_blocks.2.resnets.2.spatial_res_block.conv2.weight');
    expect(names).not.toContain('decoder.up_blocks.2.upsamplers.0.conv.weight');
    expect(vaeEncoderWeights(config).find((w) => w.name === 'encoder.conv_out.weight')!.shape).toEqual([6, 48, 3, 3]);
  });

  it('encoder: [2,3,32,48] → [2,3,8,12]; decoder: 3 frames [3,3,8,12] → [3,3,32,48]; finite', async () => {
    const enc = buildVaeEncoderGraph(join(out, 'other'), { outDir: join(out, 'other-out') });
    const dec = buildVaeDecoderGraph(join(out, 'other'), { outDir: join(out, 'other-out') });
    expect(enc.unusedWeights).toEqual([]);
    expect(dec.unusedWeights).toEqual([]);
    expect(enc.weightFiles[0].location).toBe(dec.weightFiles[0].location);
    const img = new Float32Array(2 * 3 * 32 * 48).map((_, i) => Math.sin(i * 0.37));
    const e = await run(enc.path, { sample: new ort.Tensor('float32', img, [2, 3, 32, 48]) });
    expect(e.latent_mean.dims).toEqual([2, 3, 8, 12]);
    expect(allFinite(e.latent_mean.data as Float32Array)).toBe(true);
    const lat = new Float32Array(3 * 3 * 8 * 12).map((_, i) => Math.cos(i * 0.11));
    const d = await run(dec.path, { latent: new ort.Tensor('float32', lat, [3, 3, 8, 12]) });
    expect(d.frames.dims).toEqual([3, 3, 32, 48]);
    expect(allFinite(d.frames.data as Float32Array)).toBe(true);
  });
});

describe('VAE weight lists for the real SVD config', () => {
  it('match the analytic parameter counts of docs/pipeline.md §7.7 (encoder + quant_conv 34,163,664; decoder 63,579,183)', () => {
    const config = {
      in_channels: 3,
      out_channels: 3,
      latent_channels: 4,
      block_out_channels: [128, 256, 512, 512],
      layers_per_block: 2,
      down_block_types: Array(4).fill('DownEncoderBlock2D'),
    };
    const count = (ws: { shape: number[] }[]) => ws.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
    expect(count(vaeEncoderWeights(config))).toBe(34_163_592 + 72);
    expect(count(vaeDecoderWeights(config))).toBe(63_579_183);
  });
});
