/**
 * The WebGPU graph target and the binding-limit guard, checked without a GPU: static tensor sizes of our own
 * graphs, the guard refusing a run whose tensors exceed a (lowered) limit, the decode chunk taken from the
 * limit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../src/models/build.js';
import { readGraph } from '../src/onnx/read.js';
import { tensorSizes } from '../src/onnx/tensorSizes.js';
import { BindingGuard, BindingLimitError, framesWithinLimit } from '../src/runtime/bindingGuard.js';
import { chooseDecodeChunk } from '../src/pipeline/decode.js';
import { cfgSplitExact, chooseCfgBatch, unetInputDims } from '../src/pipeline/denoise.js';
import { guardAxes } from '../src/pipeline/session.js';
import { readModelDirectory } from '../src/models/load.js';
import { REFERENCE_CHECKPOINT } from './helpers/reference.js';

const MiB = 2 ** 20;
const ROOT = join(import.meta.dirname, '..');
const UNET_DIMS = {
  sample: [2, 4, 8, 32, 64],
  timestep: [],
  encoder_hidden_states: [2, 1, 32],
  added_time_ids: [2, 3],
};

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'svd-webgpu-graphs-'));
  // MatMul/Softmax attention: the formulation that materialises the scores (1 GiB at the reference call)
  await buildModel({
    checkpoint: REFERENCE_CHECKPOINT,
    outDir: join(dir, 'cpu'),
    target: 'cpu',
    attention: { impl: 'primitive' },
  });
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

  it('the webgpu target chunks the attention (Loop) so nothing exceeds 128 MiB at the reference size', () => {
    const report = tensorSizes(readGraph(join(dir, 'webgpu', 'unet.onnx')), UNET_DIMS);
    expect(report.unknown).toEqual([]);
    expect(report.tensors[0].bytes).toBeLessThanOrEqual(128 * MiB);
    // level 0: 128 MiB / (8 sequences · 2048 keys · 8 heads · 4 bytes) = 256 query rows per iteration
    expect(report.tensors.filter((t) => t.op === 'Softmax').map((t) => t.shape)).toContainEqual([8, 8, 256, 2048]);
    expect(report.tensors.find((t) => t.op === 'Loop')?.shape).toEqual([8, 8, 8, 256, 4]);
  });
});

describe('feed-forward in token chunks (webgpu target)', () => {
  it('keeps the GEGLU projection within the 128 MiB budget where it would be 144 MiB', () => {
    // 384×192 px, 4 frames, CFG: the level-0 projection is [8 · 18432 tokens, 256] float32 = 144 MiB unchunked
    const dims = unetInputDims({ frames: 4, channels: 4, height: 96, width: 192 }, 8, 32, 2, null);
    const cpu = tensorSizes(readGraph(join(dir, 'cpu', 'unet.onnx')), dims);
    expect(cpu.tensors.find((t) => t.name.includes('ff.net.0.proj'))?.bytes).toBe(144 * MiB);
    const webgpu = tensorSizes(readGraph(join(dir, 'webgpu', 'unet.onnx')), dims);
    expect(webgpu.unknown).toEqual([]);
    expect(webgpu.tensors[0].bytes).toBeLessThanOrEqual(128 * MiB);
    expect(webgpu.tensors.some((t) => t.op === 'Loop' && t.name.includes('/ff_loop'))).toBe(true);
  });
});

describe('binding-limit guard', () => {
  it('refuses the CPU-target UNet at 128 MiB, naming the tensor and its size', () => {
    const guard = new BindingGuard(join(dir, 'cpu', 'unet.onnx'), { limit: 128 * MiB });
    const err = (() => {
      try {
        guard.check(UNET_DIMS);
      } catch (e) {
        return e;
      }
    })() as BindingLimitError;
    expect(err).toBeInstanceOf(BindingLimitError);
    expect(err.code).toBe('webgpu_binding_limit');
    expect(err.message).toMatch(
      /refusing to run on WebGPU with sample \[2,4,8,32,64\].*binding limit of 128 MiB.*scores_\d+ \(MatMul\) \[8,8,2048,2048\] float32 = 1024 MiB/,
    );
  });

  it('passes the webgpu-target UNet at 128 MiB and refuses it at a lowered limit of 16 MiB', () => {
    const path = join(dir, 'webgpu', 'unet.onnx');
    expect(() => new BindingGuard(path, { limit: 128 * MiB }).check(UNET_DIMS)).not.toThrow();
    expect(() => new BindingGuard(path, { limit: 16 * MiB }).check(UNET_DIMS)).toThrow(BindingLimitError);
  });

  it('accepts the split CFG batch (two batch-1 calls) that a lowered limit refuses jointly, and says so', () => {
    const path = join(dir, 'webgpu', 'unet.onnx');
    const manifest = readModelDirectory(join(dir, 'webgpu')).manifest;
    const graph = readGraph(path);
    // small enough that the attention scores stay under the graph's 128 MiB score budget: every tensor scales with B
    const dimsAt = (batch: number) =>
      unetInputDims({ frames: 2, channels: 4, height: 8, width: 16 }, 8, 32, batch, null);
    const largest = (batch: number) => tensorSizes(graph, dimsAt(batch)).tensors[0].bytes;
    const limit = largest(1); // the batch-1 call just fits, the batch-2 call does not
    expect(largest(2)).toBe(2 * limit);
    const guard = new BindingGuard(path, { limit, axes: guardAxes('unet', manifest) });
    const err = (() => {
      try {
        guard.check(dimsAt(2));
      } catch (e) {
        return e as BindingLimitError;
      }
    })();
    expect(err).toBeInstanceOf(BindingLimitError);
    expect(err!.message).toMatch(/With cfgBatch split \(one video per call, the same result\) this run fits\./);
    expect(() => guard.check(dimsAt(1))).not.toThrow();
    const oversized = (rows: number) => guard.oversized(dimsAt(rows)).length;
    expect(cfgSplitExact(manifest)).toBe(true);
    expect(chooseCfgBatch({ asked: 'auto', guided: true, exact: true, oversized }).mode).toBe('split');
    // at the real 128 MiB limit: 640×320 px, 4 frames needs the split (up-path concat [8, 96, 160, 320] = 150 MiB)
    const real = new BindingGuard(path, { limit: 128 * MiB, axes: guardAxes('unet', manifest) });
    const at = (batch: number) =>
      unetInputDims({ frames: 4, channels: 4, height: 160, width: 320 }, 8, 32, batch, null);
    expect(real.oversized(at(2)).length).toBeGreaterThan(0);
    expect(real.oversized(at(1))).toEqual([]);
  });

  it('a refusal names the largest size and frame count that fit this adapter, and they do fit', () => {
    const path = join(dir, 'webgpu', 'unet.onnx');
    const manifest = readModelDirectory(join(dir, 'webgpu')).manifest;
    const axes = guardAxes('unet', manifest)!;
    const guard = new BindingGuard(path, { limit: 128 * MiB, axes });
    // 1024×512 px, 4 frames, CFG batch: far over 128 MiB even split
    const asked = { batch: 2, width: 1024, height: 512, frames: 4 };
    const message = (() => {
      try {
        guard.check(axes.dims(asked));
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(message).not.toMatch(/With cfgBatch split/);
    const m = new RegExp(
      'The largest size that fits this adapter at 4 frames is (\\d+)x(\\d+)\\. ' +
        'At 1024x512 (at most (\\d+) frames fit|not even 1 of the frames fits)\\.',
    ).exec(message ?? '');
    expect(m, message).not.toBeNull();
    const [width, height] = [Number(m![1]), Number(m![2])];
    expect(height).toBe(Math.floor(width / 2 / 64) * 64); // the same aspect ratio, in multiples of 64 px
    expect(guard.oversized(axes.dims({ ...asked, width, height }))).toEqual([]);
    // the next size up the search looks at (64 px wider, the same aspect ratio) does not fit
    const wider = { ...asked, width: width + 64, height: Math.floor((width + 64) / 2 / 64) * 64 };
    expect(guard.oversized(axes.dims(wider)).length).toBeGreaterThan(0);
    if (m![4]) {
      const frames = Number(m![4]);
      expect(guard.oversized(axes.dims({ ...asked, frames }))).toEqual([]);
      expect(guard.oversized(axes.dims({ ...asked, frames: frames + 1 })).length).toBeGreaterThan(0);
    }
  });

  it('sizes the decode chunk from the limit', () => {
    const guard = new BindingGuard(join(dir, 'cpu', 'vae_decoder.onnx'), { limit: 8 * MiB });
    // largest decoder tensor: [n, 64, 64, 128] float32 = 2 MiB per frame
    expect(framesWithinLimit(guard, { latent: [1, 4, 32, 64] }, 14)).toBe(4);
    const base = {
      resolved: 14,
      chosen: false,
      frames: 14,
      freeMiB: null,
      width: 128,
      height: 64,
      dtype: 'float32' as const,
    };
    expect(chooseDecodeChunk({ ...base, provider: 'webgpu', framesWithinBindingLimit: 4 }).chunk).toBe(4);
    expect(chooseDecodeChunk({ ...base, provider: 'webgpu', framesWithinBindingLimit: 0 }).chunk).toBe(1);
    expect(
      chooseDecodeChunk({ ...base, chosen: true, resolved: 2, provider: 'webgpu', framesWithinBindingLimit: 4 }).chunk,
    ).toBe(2);
  });
});

describe('child-process onnxruntime host (WebGPU sessions run there)', () => {
  it('runs a session and lets the process end normally after close (was exit code 13: unsettled await)', () => {
    const script = join(dir, 'child-host.mts');
    writeFileSync(
      script,
      [
        `import { writeFileSync } from 'node:fs';`,
        `import { ChildProcessOrtHost } from ${JSON.stringify(join(ROOT, 'src/runtime/ortHost.ts'))};`,
        `import { tinyAddModel } from ${JSON.stringify(join(ROOT, 'src/runtime/providers.ts'))};`,
        `writeFileSync(${JSON.stringify(join(dir, 'add.onnx'))}, tinyAddModel());`,
        `const host = new ChildProcessOrtHost();`,
        `const s = await host.createSession({ path: ${JSON.stringify(join(dir, 'add.onnx'))}, executionProviders: ['cpu'] });`,
        `const r = await s.run({ x: { type: 'float32', data: Float32Array.of(1.5), dims: [1] } });`,
        `await s.release();`,
        `await host.close();`,
        `console.log('closed', r.y.data[0]);`,
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('closed 3');
    expect(r.status).toBe(0);
  });
});
