/**
 * Full-size graphs with real tensors, kept cheap enough for CI: the SVD-XT VAE (98 M parameters, 196 MB in
 * F16) is written as a random fp16 checkpoint with the streaming writer, its encoder and temporal decoder
 * are built at full width, loaded in onnxruntime and run at a small spatial size (64×64 pixels, one
 * 8×8 latent frame). The UNet (1.5 G parameters) and CLIP (0.6 G) are too big for CI; their weight
 * lists are checked in full-size-configs.test.ts and their graphs by scripts/bench-build.ts.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkpointTensorLists,
  parameterCount,
  readCheckpointConfigs,
  writeRandomCheckpointDirStreaming,
} from '../src/models/randomCheckpoint.js';
import { readGraph } from '../src/onnx/read.js';
import type { BuildInfo } from '../src/onnx/save.js';
import { relativeError } from '../src/tensor/compare.js';
import { float16ToFloat32, float32ToFloat16 } from '../src/tensor/float16.js';
import { buildVaeDecoderGraph } from '../src/vae/decoderGraph.js';
import { buildVaeEncoderGraph } from '../src/vae/encoderGraph.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-full-size-'));
const ckpt = join(dir, 'svd-xt-vae');
const configs = readCheckpointConfigs(join('models', 'configs', 'svd-xt'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 2 });
  try {
    const out = await s.run(feeds);
    return out[s.outputNames[0]] as ort.Tensor;
  } finally {
    await s.release();
  }
}

const asFloat32 = (t: ort.Tensor) =>
  t.type === 'float16' ? float16ToFloat32(t.data as Uint16Array) : (t.data as Float32Array);

describe('full-size SVD-XT VAE from a streamed random fp16 checkpoint', () => {
  let encoder: BuildInfo;
  let decoder16: BuildInfo;
  let decoder32: BuildInfo;

  beforeAll(() => {
    writeRandomCheckpointDirStreaming(ckpt, configs, { seed: 11, components: ['vae'] });
    const common = { variant: 'fp16', target: 'cpu' } as const;
    encoder = buildVaeEncoderGraph(ckpt, { ...common, outDir: join(dir, 'fp16'), dtype: 'float16' });
    decoder16 = buildVaeDecoderGraph(ckpt, { ...common, outDir: join(dir, 'fp16'), dtype: 'float16' });
    decoder32 = buildVaeDecoderGraph(ckpt, { ...common, outDir: join(dir, 'fp32'), dtype: 'float32' });
  }, 120_000);

  it('fp16 graphs reference the fp16 tensors in place; the float32 decoder stores them converted, no Cast', () => {
    const lists = checkpointTensorLists(configs);
    const file = join(ckpt, 'vae', 'diffusion_pytorch_model.fp16.safetensors');
    expect(encoder.unusedWeights).toEqual([]);
    expect(decoder16.unusedWeights).toEqual([]);
    // every VAE parameter is used by exactly one of the two graphs, 2 bytes each
    expect(encoder.weightBytes + decoder16.weightBytes).toBe(2 * parameterCount(lists.vae));
    for (const info of [encoder, decoder16]) {
      expect(info.weightFiles).toHaveLength(1);
      const linked = join(info.path, '..', info.weightFiles[0].location);
      expect(statSync(linked).ino).toBe(statSync(file).ino);
    }
    // float32 from fp16 storage (the CPU default 'convert'): every weight converted once into the .data file
    expect(decoder32.weightFiles).toEqual([]);
    expect(decoder32.dataBytes).toBeGreaterThanOrEqual(2 * decoder32.weightBytes);
    const graph = readGraph(decoder32.path);
    const initializers = new Set(graph.initializers.map((t) => t.name));
    const castsOfWeights = graph.nodes.filter((n) => n.opType === 'Cast' && initializers.has(n.inputs[0]));
    expect(castsOfWeights).toEqual([]);
  });

  it('encodes a 64×64 image to a finite 8×8 latent', async () => {
    const img = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.013) * 0.8);
    const latent = await run(encoder.path, {
      sample: new ort.Tensor('float16', float32ToFloat16(img), [1, 3, 64, 64]),
    });
    expect(latent.dims).toEqual([1, 4, 8, 8]);
    expect(asFloat32(latent).every(Number.isFinite)).toBe(true);
  }, 60_000);

  it('decodes one 8×8 latent frame to 64×64 pixels, fp16 agreeing with the fp32 (converted) build', async () => {
    const lat = Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => Math.cos(i * 0.29) * 3);
    const half = asFloat32(
      await run(decoder16.path, { latent: new ort.Tensor('float16', float32ToFloat16(lat), [1, 4, 8, 8]) }),
    );
    const full = await run(decoder32.path, { latent: new ort.Tensor('float32', lat, [1, 4, 8, 8]) });
    expect(full.dims).toEqual([1, 3, 64, 64]);
    const ref = asFloat32(full);
    expect(ref.every(Number.isFinite)).toBe(true);
    expect(half.every(Number.isFinite)).toBe(true);
    // not a constant image: the 19 decoder resnets and the upsamplers did carry the latent through
    const mean = ref.reduce((a, v) => a + v, 0) / ref.length;
    expect(ref.reduce((a, v) => a + (v - mean) ** 2, 0) / ref.length).toBeGreaterThan(1e-6);
    const err = relativeError(half, ref);
    console.log(`full-size VAE decoder, one 8×8 frame: fp16 vs fp32 relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(2e-2);
  }, 60_000);
});
