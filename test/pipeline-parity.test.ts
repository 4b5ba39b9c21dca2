/**
 * The whole local pipeline against diffusers' own runs (test/fixtures/reference): with the reference's
 * two noise draws injected, every intermediate of the debugging contract must match within 1e-4
 * relative error and the uint8 frames within ±1 level. Two recorded runs: `out` (diffusers 0.27.2, whose temporal
 * cross-attention context interleaves the CFG batch; reproduced by the 'diffusers-0.27' build option and by its own
 * ONNX export) and `out-fixed-context` (the same call with the per-video context of diffusers >= 0.28 and sgm,
 * which our graphs build by default).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../src/models/build.js';
import { importOnnx } from '../src/models/importOnnx.js';
import { createPipeline, type SvdPipeline } from '../src/pipeline/pipeline.js';
import { expectParity, runReferenceCall } from './helpers/parity.js';
import { REFERENCE_CALL, REFERENCE_CHECKPOINT, REFERENCE_ONNX, type ReferenceRun } from './helpers/reference.js';

describe.each<[string, 'build-0.27' | 'import' | 'build', ReferenceRun]>([
  ['graphs built by our builder from the reference safetensors, 0.27 context (out)', 'build-0.27', 'out'],
  ['the reference ONNX export, imported (out)', 'import', 'out'],
  ['graphs built with the default per-video context (out-fixed-context)', 'build', 'out-fixed-context'],
])('pipeline parity with diffusers: %s', (_label, how, run) => {
  let dir: string;
  let pipeline: SvdPipeline;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svd-parity-'));
    const modelDir = join(dir, 'model');
    // diffusers 0.27.2 made `out`: its temporal cross-attention context layout is reproduced on request
    if (how === 'build-0.27')
      await buildModel({ checkpoint: REFERENCE_CHECKPOINT, outDir: modelDir, temporalContextOrder: 'diffusers-0.27' });
    else if (how === 'build') await buildModel({ checkpoint: REFERENCE_CHECKPOINT, outDir: modelDir });
    else await importOnnx({ onnxDir: REFERENCE_ONNX, configDir: REFERENCE_CHECKPOINT, outDir: modelDir });
    pipeline = await createPipeline({ modelDir, device: 'cpu', log: () => {} });
  });
  afterAll(async () => {
    await pipeline?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reproduces every intermediate and the final frames', async () => {
    const { dumped, result } = await runReferenceCall(pipeline);
    const errors = expectParity(dumped, run);
    expect(result.seed).toBe(42);
    expect(result.frames).toHaveLength(REFERENCE_CALL.frames);
    console.log(`parity (${how} vs ${run}):`, JSON.stringify(errors));
  });
});
