/** The local pipeline on the embedded tiny model: results, reuse, seeds, progress, abort, errors. */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AbortError, InvalidRequestError } from '../src/errors.js';
import { createPipeline, resolveForModel, type SvdPipeline } from '../src/pipeline/pipeline.js';
import { InProcessOrtHost, WorkerOrtHost } from '../src/runtime/ortHost.js';
import { probeVideo } from '../src/video/index.js';
import type { ProgressEvent } from '../src/request/types.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';
import { buildTinyModel } from './helpers/tinyModel.js';

let pipeline: SvdPipeline;
let cacheDir: string;
let pipelineDir: string;
let out: string;
const fast = { image: REFERENCE_IMAGE, frames: 4, steps: 3 } as const;

beforeAll(async () => {
  const built = await buildTinyModel();
  cacheDir = built.cacheDir;
  pipelineDir = built.modelDir;
  out = mkdtempSync(join(tmpdir(), 'svd-out-'));
  pipeline = await createPipeline({ modelDir: built.modelDir, device: 'cpu', log: () => {} });
});
afterAll(async () => {
  await pipeline?.close();
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

describe('local pipeline (embedded tiny model)', () => {
  it('uses the manifest defaults of the tiny model', () => {
    expect(pipeline.manifest.defaults).toMatchObject({
      frames: 14,
      width: 128,
      height: 64,
      fps: 7,
      motionBucketId: 127,
      steps: 25,
    });
    expect(pipeline.provider).toBe('cpu');
  });

  it('writes an MP4 with the asked frame count and fps, reports seed, timings and per-step progress', async () => {
    const events: ProgressEvent[] = [];
    const output = join(out, 'a.mp4');
    const r = await pipeline.generate({ ...fast, fps: 9, seed: 11, output }, { onProgress: (e) => events.push(e) });
    expect(r.outputPath).toBe(output);
    const info = await probeVideo(output);
    expect(info).toMatchObject({ frames: 4, fps: 9, codec: 'h264', width: 128, height: 64 });
    expect(r.seed).toBe(11);
    expect(r.stepTimings).toHaveLength(3);
    expect(Object.keys(r.timings)).toEqual(
      expect.arrayContaining(['preprocess', 'encode', 'denoise', 'decode', 'video', 'total']),
    );
    expect(events.filter((e) => e.stage === 'denoise' && e.step! > 0).map((e) => e.step)).toEqual([1, 2, 3]);
  });

  it('is deterministic per seed, differs across seeds, and reports a random seed when none is given', async () => {
    const a = await pipeline.generate({ ...fast, seed: 5 }, { skipVideo: true });
    const b = await pipeline.generate({ ...fast, seed: 5 }, { skipVideo: true });
    const c = await pipeline.generate({ ...fast, seed: 6 }, { skipVideo: true });
    expect(Buffer.compare(Buffer.from(a.frames[3]), Buffer.from(b.frames[3]))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.frames[3]), Buffer.from(c.frames[3]))).not.toBe(0);
    const d = await pipeline.generate({ ...fast, steps: 1 }, { skipVideo: true });
    expect(Number.isInteger(d.seed) && d.seed >= 0).toBe(true);
  });

  it('changes the pixels when the decode chunk size changes (temporal decoding is per chunk)', async () => {
    const all = await pipeline.generate({ ...fast, seed: 3 }, { skipVideo: true });
    const chunked = await pipeline.generate({ ...fast, seed: 3, decodeChunkSize: 1 }, { skipVideo: true });
    expect(chunked.metadata.decodeChunkSize).toBe(1);
    expect(Buffer.compare(Buffer.from(all.frames[0]), Buffer.from(chunked.frames[0]))).not.toBe(0);
  });

  it('runs without guidance when maxGuidance is 1: one UNet batch, the same result as the CFG formula with scale 1', async () => {
    // With scale 1 everywhere, CFG gives uncond + 1·(cond − uncond) = cond, so the guided run (batch of 2) and
    // the unguided one (batch of 1, cond only) must agree up to float rounding; a wrong half, a zeroed
    // embedding or a missing image latent in the unguided batch would not.
    const unguided = await pipeline.generate(
      { ...fast, seed: 3, minGuidance: 1, maxGuidance: 1, steps: 2 },
      { skipVideo: true },
    );
    const guided = await pipeline.generate(
      { ...fast, seed: 3, minGuidance: 1, maxGuidance: 1.0001, steps: 2 },
      { skipVideo: true },
    );
    const other = await pipeline.generate(
      { ...fast, seed: 3, minGuidance: 1, maxGuidance: 3, steps: 2 },
      { skipVideo: true },
    );
    expect(unguided.frames).toHaveLength(4);
    const maxDiff = (a: Uint8Array[], b: Uint8Array[]) =>
      Math.max(...a.map((f, k) => Math.max(...f.map((v, i) => Math.abs(v - b[k][i])))));
    expect(maxDiff(unguided.frames, guided.frames)).toBeLessThanOrEqual(1);
    expect(maxDiff(unguided.frames, other.frames)).toBeGreaterThan(1);
  });

  it('takes the number of steps from the model manifest when the request gives none', () => {
    const fourSteps = { ...pipeline.manifest, defaults: { ...pipeline.manifest.defaults, steps: 4 } };
    expect(resolveForModel({ image: REFERENCE_IMAGE }, fourSteps).steps).toBe(4);
    expect(resolveForModel({ image: REFERENCE_IMAGE, steps: 2 }, fourSteps).steps).toBe(2);
  });

  it('stops between steps on abort and leaves no output file', async () => {
    const controller = new AbortController();
    const output = join(out, 'aborted.mp4');
    const run = pipeline.generate(
      { ...fast, steps: 20, output },
      {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.stage === 'denoise' && e.step === 2) controller.abort();
        },
      },
    );
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(out).filter((n) => n.includes('aborted'))).toEqual([]);
  });

  it('refuses sizes the model cannot take, naming the field', async () => {
    await expect(pipeline.generate({ ...fast, width: 100, height: 64 }, { skipVideo: true })).rejects.toThrow(
      /width: must be a multiple of 64/,
    );
    const err = await pipeline.generate({ ...fast, steps: 0, fps: 99 }, { skipVideo: true }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues.map((i: { field: string }) => i.field).sort()).toEqual(['fps', 'steps']);
  });

  it('hosts onnxruntime in a worker thread by default (the main thread stays free for progress, HTTP, abort), in-process on request', async () => {
    const inWorker = vi.spyOn(WorkerOrtHost.prototype, 'createSession');
    const inProcess = vi.spyOn(InProcessOrtHost.prototype, 'createSession');
    try {
      const byDefault = await createPipeline({ modelDir: pipelineDir, device: 'cpu', log: () => {} });
      await byDefault.close();
      expect([inWorker.mock.calls.length, inProcess.mock.calls.length]).toEqual([4, 0]);
      const onMain = await createPipeline({ modelDir: pipelineDir, device: 'cpu', inWorker: false, log: () => {} });
      await onMain.close();
      expect([inWorker.mock.calls.length, inProcess.mock.calls.length]).toEqual([4, 4]);
    } finally {
      inWorker.mockRestore();
      inProcess.mockRestore();
    }
  });

  it('reports a missing image as a clear error', async () => {
    await expect(pipeline.generate({ ...fast, image: join(out, 'nope.png') }, { skipVideo: true })).rejects.toThrow(
      /nope\.png/,
    );
  });
});
