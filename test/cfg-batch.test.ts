/**
 * The CFG batch split (`cfgBatch`, src/pipeline/denoise.ts): two batch-1 UNet calls give the batch-2 call's
 * result (the reference call on CPU, against diffusers too), the memory estimate halves the UNet's activations
 * for it, `auto` splits when only the split run fits, and a split is refused where it would not be exact.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBudgetError } from '../src/errors.js';
import { buildModel } from '../src/models/build.js';
import type { ModelManifest } from '../src/models/manifest.js';
import { estimateMemory, type MemoryRequest } from '../src/models/memory.js';
import { assertFitsMemory } from '../src/pipeline/admission.js';
import { chooseCfgBatch } from '../src/pipeline/denoise.js';
import { createPipeline, resolveForModel, type SvdPipeline } from '../src/pipeline/pipeline.js';
import { expectParity, runReferenceCall } from './helpers/parity.js';
import { REFERENCE_CHECKPOINT, relErr } from './helpers/reference.js';
import { SVD_XT_FACTS } from './helpers/memoryFacts.js';

const GiB = 2 ** 30;
const XT = SVD_XT_FACTS;
const BASE: MemoryRequest = { width: 1024, height: 576, frames: 25, decodeChunkSize: 8, guidance: true };

describe('the CFG batch split on CPU, on the reference call', () => {
  let dir: string;
  let pipeline: SvdPipeline;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svd-cfg-split-'));
    await buildModel({ checkpoint: REFERENCE_CHECKPOINT, outDir: join(dir, 'model') });
    pipeline = await createPipeline({ modelDir: join(dir, 'model'), device: 'cpu', log: () => {} });
  }, 120_000);
  afterAll(async () => {
    await pipeline?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('two batch-1 UNet calls give the batch-2 result within 1e-6, and diffusers within 1e-4 / ±1 level', async () => {
    const joint = await runReferenceCall(pipeline, { cfgBatch: 'joint' });
    const split = await runReferenceCall(pipeline, { cfgBatch: 'split' });
    expect(joint.result.metadata.cfgBatch).toBe('joint');
    expect(split.result.metadata.cfgBatch).toBe('split');
    const final = (r: typeof joint) => r.dumped.get('latents_3')!.data as Float32Array;
    const err = relErr(final(split), final(joint));
    console.log(`cfg split vs joint (CPU): final latents ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-6);
    expect(relErr(split.dumped.get('decoded')!.data, joint.dumped.get('decoded')!.data)).toBeLessThan(1e-6);
    expectParity(split.dumped, 'out-fixed-context');
  }, 120_000);
});

describe('cfgBatch in the request, the memory estimate and admission', () => {
  const manifest = (order?: string): ModelManifest => {
    const m = JSON.parse(
      readFileSync(join(import.meta.dirname, 'fixtures', 'memory-tiny-model.json'), 'utf8'),
    ) as ModelManifest;
    return { ...m, source: { ...m.source, ...(order ? { temporalContextOrder: order } : {}) } };
  };
  const perVideo = manifest('per-video');

  it('is joint, split or auto (default auto), and split is refused where the UNet mixes the two videos', () => {
    expect(resolveForModel({ image: 'x.png' }, perVideo, () => 1).cfgBatch).toBe('auto');
    expect(resolveForModel({ image: 'x.png', cfgBatch: 'split' }, perVideo, () => 1).cfgBatch).toBe('split');
    expect(() => resolveForModel({ image: 'x.png', cfgBatch: 'halves' as never }, perVideo)).toThrow(
      /cfgBatch: must be one of auto, joint, split/,
    );
    for (const m of [manifest('diffusers-0.27'), manifest()]) {
      expect(() => resolveForModel({ image: 'x.png', cfgBatch: 'split' }, m)).toThrow(
        /cfgBatch: this model's UNet mixes the two videos of the CFG batch/,
      );
    }
  });

  it('a split run counts one video of UNet activations', () => {
    const joint = estimateMemory(XT, BASE, 'cpu');
    const split = estimateMemory(XT, { ...BASE, cfgSplit: true }, 'cpu');
    expect(split.parts.unet).toBeCloseTo(joint.parts.unet / 2, -3);
    expect(split.hostBytes).toBeCloseTo(joint.hostBytes - joint.parts.unet / 2, -3);
    // without guidance there is nothing to split
    expect(estimateMemory(XT, { ...BASE, guidance: false, cfgSplit: true }, 'cpu').parts.unet).toBe(split.parts.unet);
  });

  it('auto splits when only the split run fits; a joint run that does not fit is refused naming split', () => {
    const req = { image: 'x.png', width: 512, height: 512, frames: 24, decodeChunkSize: 2 };
    const facts = { ...XT, computeWeightBytes: { unet: 0, imageEncoder: 0, vaeEncoder: 0, vaeDecoder: 0 } };
    const at = (r: Partial<MemoryRequest>) =>
      estimateMemory(facts, { ...BASE, width: 512, height: 512, frames: 24, decodeChunkSize: 2, ...r }, 'cpu')
        .hostBytes;
    const budget = { hostBytes: (at({}) + at({ cfgSplit: true })) / 2 };
    const memory = { provider: 'cpu' as const, budget, facts };
    expect(resolveForModel(req, perVideo, () => 1, memory).cfgBatch).toBe('split');
    expect(resolveForModel(req, perVideo, () => 1, { ...memory, budget: { hostBytes: 64 * GiB } }).cfgBatch).toBe(
      'auto',
    );
    expect(resolveForModel(req, manifest('diffusers-0.27'), () => 1, memory).cfgBatch).toBe('auto');
    const forcedJoint = resolveForModel({ ...req, cfgBatch: 'joint' }, perVideo, () => 1, memory);
    const err = (() => {
      try {
        assertFitsMemory(forcedJoint, perVideo, memory);
      } catch (e) {
        return e as MemoryBudgetError;
      }
    })();
    expect(err).toBeInstanceOf(MemoryBudgetError);
    expect(err!.issues.find((i) => i.field === 'cfgBatch')?.message).toMatch(/^split fits: .*half the UNet memory/);
    expect(() =>
      assertFitsMemory(
        resolveForModel(req, perVideo, () => 1, memory),
        perVideo,
        memory,
      ),
    ).not.toThrow();
  });

  it('auto splits only when the batch-2 call exceeds the binding limit and the batch-1 call fits', () => {
    const over = (limitRows: number) => (rows: number) => (rows > limitRows ? 3 : 0);
    const base = { guided: true, exact: true };
    expect(chooseCfgBatch({ ...base, asked: 'auto', oversized: over(1) }).mode).toBe('split');
    expect(chooseCfgBatch({ ...base, asked: 'auto', oversized: over(2) }).mode).toBe('joint');
    // neither fits: joint, and the guard refuses it naming what fits
    expect(chooseCfgBatch({ ...base, asked: 'auto', oversized: over(0) }).mode).toBe('joint');
    expect(chooseCfgBatch({ ...base, asked: 'auto' }).mode).toBe('joint');
    expect(chooseCfgBatch({ ...base, exact: false, asked: 'auto', oversized: over(1) }).mode).toBe('joint');
    expect(chooseCfgBatch({ ...base, asked: 'split' }).mode).toBe('split');
    expect(chooseCfgBatch({ ...base, guided: false, asked: 'split' }).mode).toBe('joint');
  });
});
