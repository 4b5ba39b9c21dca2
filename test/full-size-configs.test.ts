/**
 * The full-size SVD configs in models/configs/{svd,svd-xt,svd-xt-1-1} against docs/pipeline.md §5.1, §7.2, §7.7, §8.1
 * and §9, and the streaming random-checkpoint writer (on the tiny configs: cheap, no big allocations).
 * The parameter counts are the analytic ones of docs/pipeline.md §7.7, so they check the config files and the graph
 * builders' weight lists together. (test/vae-graph.test.ts and test/clip-graph.test.ts check the same
 * totals for inline configs; here the inputs are the shipped config files, and the UNet is new.)
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseClipVisionConfig } from '../src/encoders/clipConfig.js';
import { detectVariant, manifestFromConfigs, readDiffusersConfigs } from '../src/models/diffusersConfig.js';
import { inspectCheckpoint } from '../src/models/inspect.js';
import { manifestSchema } from '../src/models/manifest.js';
import {
  checkpointTensorLists,
  parameterCount,
  readCheckpointConfigs,
  writeRandomCheckpointDirStreaming,
  writeRandomSafetensorsStreaming,
} from '../src/models/randomCheckpoint.js';
import { dryWeights } from '../src/onnx/weights.js';
import { openCheckpoint, readTensorF32 } from '../src/safetensors/index.js';
import { defineUnetGraph } from '../src/unet/build.js';
import { parseUnetConfig, planDownBlocks, planUpBlocks } from '../src/unet/config.js';
import { parseVaeConfig } from '../src/vae/config.js';

const VARIANTS = [
  { name: 'svd', frames: 14 },
  { name: 'svd-xt', frames: 25 },
  { name: 'svd-xt-1-1', frames: 25 },
] as const;
const dirOf = (variant: string) => join('models', 'configs', variant);

describe.each(VARIANTS)('models/configs/$name', ({ name, frames }) => {
  const configs = readDiffusersConfigs(dirOf(name));

  it('parses, and gives a valid manifest with the docs/pipeline.md §10 defaults', () => {
    const m = manifestSchema.parse(manifestFromConfigs(configs, { variant: name }));
    expect(m.defaults).toMatchObject({
      frames,
      width: 1024,
      height: 576,
      fps: 7,
      motionBucketId: 127,
      condAug: 0.02,
      minGuidance: 1,
      maxGuidance: 3,
      steps: 25,
    });
    expect(detectVariant(configs)).toBe(frames === 14 ? 'svd' : 'svd-xt');
    expect(m.vae).toMatchObject({ scalingFactor: 0.18215, spatialScaleFactor: 8, latentChannels: 4 });
    expect(m.unet).toMatchObject({ inChannels: 8, outChannels: 4, latentMultiple: 8 });
    expect(m.imageEncoder).toMatchObject({
      imageSize: 224,
      embedDim: 1024,
      imageMean: [0.48145466, 0.4578275, 0.40821073],
      imageStd: [0.26862954, 0.26130258, 0.27577711],
    });
    // §5.1: the schedule comes only from these values
    expect(m.scheduler).toMatchObject({
      predictionType: 'v_prediction',
      sigmaMin: 0.002,
      sigmaMax: 700,
      timestepSpacing: 'leading',
      timestepType: 'continuous',
    });
    expect(configs.scheduler.use_karras_sigmas).toBe(true);
  });

  it('has the UNet structure of docs/pipeline.md §7.2/§7.4 and the VAE/CLIP settings of §8.1/§9', () => {
    const unet = parseUnetConfig(configs.unet);
    expect(planDownBlocks(unet).map((b) => [b.outChannels, b.hasCrossAttention, b.resample])).toEqual([
      [320, true, true],
      [640, true, true],
      [1280, true, true],
      [1280, false, false],
    ]);
    expect(planUpBlocks(unet).map((b) => b.heads)).toEqual([20, 20, 10, 5]);
    expect(configs.unet.num_frames).toBe(frames);
    expect(parseVaeConfig(configs.vae)).toMatchObject({
      blockOutChannels: [128, 256, 512, 512],
      layersPerBlock: 2,
      latentChannels: 4,
    });
    expect(parseClipVisionConfig(configs.imageEncoder)).toMatchObject({
      hiddenSize: 1280,
      intermediateSize: 5120,
      numHiddenLayers: 32,
      numAttentionHeads: 16,
      patchSize: 14,
      imageSize: 224,
      projectionDim: 1024,
      hiddenAct: 'gelu',
      layerNormEps: 1e-5,
    });
  });

  it('lists exactly the docs/pipeline.md §7.7 parameter counts for a full checkpoint', () => {
    const lists = checkpointTensorLists(configs);
    expect(parameterCount(lists.unet)).toBe(1_524_623_082);
    const unetPart = (prefix: string) => parameterCount(lists.unet.filter((r) => r.name.startsWith(prefix)));
    expect([unetPart('down_blocks.'), unetPart('mid_block.'), unetPart('up_blocks.')]).toEqual([
      479_185_614, 185_571_843, 855_155_541,
    ]);
    expect(
      parameterCount(lists.vae.filter((r) => r.name.startsWith('encoder.') || r.name.startsWith('quant_conv.'))),
    ).toBe(34_163_592 + 72);
    expect(parameterCount(lists.vae.filter((r) => r.name.startsWith('decoder.')))).toBe(63_579_183);
    expect(parameterCount(lists.vae)).toBe(97_742_847);
    expect(parameterCount(lists.imageEncoder)).toBe(632_076_800);
  });
});

describe('the UNet shortcut build against the full checkpoint (svd-xt)', () => {
  it('reads every checkpoint tensor except to_q/to_k/norm2 of the single-token cross-attentions, which it skips by name', () => {
    const configs = readDiffusersConfigs(dirOf('svd-xt'));
    const full = checkpointTensorLists(configs).unet;
    const { g, skipped } = defineUnetGraph(parseUnetConfig(configs.unet), dryWeights(), {
      dtype: 'float16',
      target: 'cpu',
    });
    const read = new Set(g.requests.map((r) => r.name));
    const skip = new Set(skipped);
    expect([...read].filter((n) => skip.has(n))).toEqual([]);
    expect(new Set([...read, ...skip])).toEqual(new Set(full.map((r) => r.name)));
    expect(skipped.every((n) => /\.(attn2\.to_[qk]\.weight|norm2\.(weight|bias))$/.test(n))).toBe(true);
    // one spatial + one temporal cross-attention per transformer: 16 transformers (3×2 down, 1 mid, 3×3 up)
    expect(skipped.filter((n) => n.endsWith('attn2.to_q.weight'))).toHaveLength(2 * 16);
    const skippedParams = parameterCount(full.filter((r) => skip.has(r.name)));
    expect(
      parameterCount(g.requests.filter((r, i, a) => a.findIndex((x) => x.name === r.name) === i)) + skippedParams,
    ).toBe(1_524_623_082);
  });
});

describe('writeRandomSafetensorsStreaming / writeRandomCheckpointDirStreaming', () => {
  const dir = mkdtempSync(join(tmpdir(), 'svd-stream-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a checkpoint that holds exactly the listed tensors and passes inspect', () => {
    const configs = readCheckpointConfigs(join('models', 'configs', 'tiny'));
    const out = join(dir, 'tiny-streamed');
    const progress: number[] = [];
    const result = writeRandomCheckpointDirStreaming(out, configs, {
      seed: 5,
      onProgress: (p) => progress.push(p.bytes / p.totalBytes),
    });
    expect(progress.at(-1)).toBe(1);
    const lists = checkpointTensorLists(configs);
    for (const [component, dirName] of [
      ['unet', 'unet'],
      ['vae', 'vae'],
      ['imageEncoder', 'image_encoder'],
    ] as const) {
      const file = result.files[component]!;
      expect(file.path).toMatch(/\.fp16\.safetensors$/);
      expect(statSync(file.path).size).toBe(file.bytes);
      const ckpt = openCheckpoint(join(out, dirName), { variant: 'fp16' });
      expect([...ckpt.tensors.keys()].sort()).toEqual(lists[component].map((r) => r.name).sort());
      for (const r of lists[component]) {
        const info = ckpt.tensors.get(r.name)!;
        expect(info.dtype).toBe('F16');
        expect(info.shape).toEqual(r.shape);
      }
      expect(file.parameters).toBe(parameterCount(lists[component]));
    }
    const report = inspectCheckpoint(out, { variant: 'fp16' });
    expect(report.ok).toBe(true);
    expect(report.components.flatMap((c) => c.unexpected)).toEqual([]);
    expect(JSON.parse(readFileSync(join(out, 'unet', 'config.json'), 'utf8'))).toEqual(configs.unet);
  });

  it('fills tensors with the randomTensors distributions, deterministically per seed', () => {
    const requests = [
      { name: 'a.norm1.weight', shape: [512] },
      { name: 'a.conv1.weight', shape: [64, 32, 3, 3] },
      { name: 'a.conv1.bias', shape: [64] },
    ];
    const write = (name: string, seed: number) => {
      writeRandomSafetensorsStreaming(join(dir, name), requests, seed, 'F16');
      return openCheckpoint(join(dir, name));
    };
    const a = write('a.safetensors', 1);
    const stats = (name: string) => {
      const v = readTensorF32(a.tensors.get(name)!);
      const mean = v.reduce((s, x) => s + x, 0) / v.length;
      const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
      return { mean, sd, finite: v.every(Number.isFinite) };
    };
    const norm = stats('a.norm1.weight');
    expect(norm.finite).toBe(true);
    expect(Math.abs(norm.mean - 1)).toBeLessThan(0.03);
    expect(Math.abs(norm.sd - 0.1)).toBeLessThan(0.02);
    const conv = stats('a.conv1.weight');
    expect(Math.abs(conv.sd * Math.sqrt(32 * 9) - 1)).toBeLessThan(0.05);
    expect(readFileSync(join(dir, 'a.safetensors'))).toEqual(readFileSync(write('a2.safetensors', 1).files[0]));
    expect(readFileSync(join(dir, 'a.safetensors'))).not.toEqual(readFileSync(write('b.safetensors', 2).files[0]));
  });
});
