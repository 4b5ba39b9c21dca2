/**
 * Checkpoints that are not the reference: other channel counts, levels, heads per level, transformer depth
 * per level, frame counts and sizes, written by our own random-checkpoint generator, built and run end to
 * end. And checkpoints with broken tensors, refused with every problem named.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../src/errors.js';
import { buildModel } from '../src/models/build.js';
import { inspectCheckpoint } from '../src/models/inspect.js';
import {
  readCheckpointConfigs,
  writeRandomCheckpointDir,
  type RandomCheckpointConfigs,
} from '../src/models/randomCheckpoint.js';
import { createPipeline } from '../src/pipeline/pipeline.js';
import { openCheckpoint, readTensorF32 } from '../src/safetensors/reader.js';
import { writeSafetensors } from '../src/safetensors/writer.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';

const TINY_CONFIGS = join(import.meta.dirname, '..', 'models', 'configs', 'tiny');
let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'svd-configs-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A 3-level UNet with per-level heads and transformer depths, a 3-level VAE (scale 4) and a wider CLIP. */
function otherConfigs(): RandomCheckpointConfigs {
  const c = readCheckpointConfigs(TINY_CONFIGS);
  return {
    ...c,
    unet: {
      ...c.unet,
      block_out_channels: [32, 64, 64],
      down_block_types: [
        'CrossAttnDownBlockSpatioTemporal',
        'CrossAttnDownBlockSpatioTemporal',
        'DownBlockSpatioTemporal',
      ],
      up_block_types: ['UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'],
      num_attention_heads: [2, 4, 4],
      transformer_layers_per_block: [1, 2, 1],
      layers_per_block: 1,
      cross_attention_dim: 48,
      num_frames: 5,
    },
    vae: {
      ...c.vae,
      block_out_channels: [32, 64, 64],
      down_block_types: Array(3).fill('DownEncoderBlock2D'),
      layers_per_block: 2,
    },
    imageEncoder: {
      ...c.imageEncoder,
      hidden_size: 48,
      num_attention_heads: 3,
      intermediate_size: 80,
      num_hidden_layers: 3,
      projection_dim: 48,
    },
  };
}

describe('other configs', () => {
  it('builds and runs a checkpoint of another shape end to end (5 frames, non-square, chunked decode)', async () => {
    const ckpt = join(work, 'other');
    writeRandomCheckpointDir(ckpt, otherConfigs(), 7);
    const model = join(work, 'other-model');
    const built = await buildModel({ checkpoint: ckpt, outDir: model });
    expect(built.manifest.defaults.frames).toBe(5);
    expect(built.manifest.vae.spatialScaleFactor).toBe(4);
    expect(built.manifest.imageEncoder.embedDim).toBe(48);
    expect(built.graphs.unet.unexpectedWeights).toEqual([]);
    const pipeline = await createPipeline({ modelDir: model, device: 'cpu', log: () => {} });
    try {
      const r = await pipeline.generate(
        { image: REFERENCE_IMAGE, width: 64, height: 128, steps: 2, decodeChunkSize: 2, seed: 1 },
        { skipVideo: true },
      );
      expect(r.frames).toHaveLength(5);
      expect(r.frames[4]).toHaveLength(64 * 128 * 3);
      expect(r.frames.some((f) => f.some((v) => v !== r.frames[0][0]))).toBe(true);
      await expect(
        pipeline.generate({ image: REFERENCE_IMAGE, width: 192, height: 64, frames: 3, steps: 1 }, { skipVideo: true }),
      ).resolves.toMatchObject({ width: 192, height: 64 });
    } finally {
      await pipeline.close();
    }
  });

  it('inspect and build name every missing and mis-shaped tensor, and write nothing', async () => {
    const ckpt = join(work, 'broken');
    writeRandomCheckpointDir(ckpt, readCheckpointConfigs(TINY_CONFIGS), 3);
    const file = join(ckpt, 'vae', 'diffusion_pytorch_model.safetensors');
    const ck = openCheckpoint(file);
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [name, info] of ck.tensors) {
      if (name === 'decoder.conv_in.bias') continue; // missing
      const shape = name === 'encoder.conv_out.weight' ? [info.shape[0], info.shape[1], 1, 9] : info.shape; // mis-shaped
      const data = readTensorF32(info);
      tensors[name] = {
        dtype: 'F32',
        shape,
        data:
          shape === info.shape
            ? data
            : data.subarray(
                0,
                shape.reduce((a, b) => a * b, 1),
              ),
      };
    }
    writeSafetensors(file, tensors);
    const report = inspectCheckpoint(ckpt);
    expect(report.ok).toBe(false);
    const vae = report.components.find((c) => c.component === 'vae')!;
    expect(vae.missing).toEqual([expect.stringMatching(/^decoder\.conv_in\.bias \[\d+\]$/)]);
    expect(vae.misshaped).toEqual([
      expect.stringMatching(/^encoder\.conv_out\.weight: expected \[8,32,3,3\], found \[8,32,1,9\]$/),
    ]);
    const err = await buildModel({ checkpoint: ckpt, outDir: join(work, 'never') }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toMatch(/missing: vae\/decoder\.conv_in\.bias/);
    expect(err.message).toMatch(/mis-shaped: vae\/encoder\.conv_out\.weight/);
    expect(() => readFileSync(join(work, 'never', 'model.json'))).toThrow();
  });

  it('refuses a truncated safetensors file, naming the file', async () => {
    const ckpt = join(work, 'truncated');
    writeRandomCheckpointDir(ckpt, readCheckpointConfigs(TINY_CONFIGS), 4);
    const file = join(ckpt, 'unet', 'diffusion_pytorch_model.safetensors');
    truncateSync(file, 5000);
    await expect(buildModel({ checkpoint: ckpt, outDir: join(work, 'never2') })).rejects.toThrow(
      /diffusion_pytorch_model\.safetensors/,
    );
    writeFileSync(file, Buffer.from([1, 2, 3]));
    await expect(buildModel({ checkpoint: ckpt, outDir: join(work, 'never2') })).rejects.toBeInstanceOf(
      CheckpointError,
    );
  });
});
