/**
 * `svd models import-onnx`: contract checks on the ONNX files, and the measured decoder frame limit that
 * traced exports can carry (and that the pipeline must then respect).
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../src/onnx/graph.js';
import { reshape } from '../src/onnx/layers/basic.js';
import { saveGraph } from '../src/onnx/save.js';
import { checkpointWeights } from '../src/onnx/weights.js';
import { importOnnx } from '../src/models/importOnnx.js';
import { readModelDirectory } from '../src/models/load.js';
import { resolveForModel } from '../src/pipeline/pipeline.js';
import { REFERENCE_CHECKPOINT, REFERENCE_IMAGE, REFERENCE_ONNX } from './helpers/reference.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'svd-import-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the reference export with one file replaced by a graph defined here. */
function exportWith(name: string, file: string, define: (g: GraphBuilder) => void): string {
  const dir = join(work, name);
  cpSync(REFERENCE_ONNX, dir, { recursive: true });
  const g = new GraphBuilder({ name, dtype: 'float32', weights: checkpointWeights(join(REFERENCE_CHECKPOINT, 'vae')) });
  define(g);
  saveGraph(g, dir, file);
  return dir;
}

describe('import-onnx', () => {
  it('measures that the reference decoder takes any frame count (it agrees with a 4-frame decode)', async () => {
    const manifest = await importOnnx({
      onnxDir: REFERENCE_ONNX,
      configDir: REFERENCE_CHECKPOINT,
      outDir: join(work, 'ref'),
    });
    expect(manifest.vae.decoderFixedFrames).toBeNull();
    expect(manifest.defaults.frames).toBe(25);
    expect(manifest.vae.spatialScaleFactor).toBe(2);
    const dir = readModelDirectory(join(work, 'ref'));
    expect(existsSync(dir.paths.unet)).toBe(true);
    expect(JSON.parse(readFileSync(join(work, 'ref', 'model.json'), 'utf8')).source.importer).toMatch(/import-onnx/);
  });

  it('records a decoder that treats its input as videos of the traced length, and the request checks respect it', async () => {
    // frames = x − mean over consecutive pairs: a "decoder" whose frame count 2 is baked into a Reshape.
    const dir = exportWith('fixed', 'vae_decoder.onnx', (g) => {
      const latent = g.input('latent', ['frames', 4, 8, 8]);
      const pairs = reshape(g, latent, [-1, 2, 256]);
      const centred = g.op('Sub', [pairs, g.op('ReduceMean', [pairs, g.int64([1])], { keepdims: 1 })]);
      const back = reshape(g, centred, [-1, 4, 8, 8]);
      const rgb = g.op('Slice', [back, g.int64([0]), g.int64([3]), g.int64([1])]);
      g.output(rgb, 'frames', ['frames', 3, 8, 8]);
    });
    const manifest = await importOnnx({
      onnxDir: dir,
      configDir: REFERENCE_CHECKPOINT,
      outDir: join(work, 'fixed-model'),
    });
    expect(manifest.vae.decoderFixedFrames).toBe(2);
    expect(manifest.defaults.decodeChunkSize).toBe(2);
    const base = { image: REFERENCE_IMAGE, width: 128, height: 64 };
    expect(resolveForModel({ ...base, frames: 4 }, manifest).decodeChunkSize).toBe(2);
    expect(() => resolveForModel({ ...base, frames: 4, decodeChunkSize: 3 }, manifest)).toThrow(
      /decodeChunkSize: must be 2/,
    );
    expect(() => resolveForModel({ ...base, frames: 3 }, manifest)).toThrow(/frames: must be a multiple of 2/);
  });

  it('refuses a graph with a wrong input name, naming the file and the mismatch', async () => {
    const dir = exportWith('badname', 'vae_encoder.onnx', (g) => {
      const x = g.input('pixels', ['batch', 3, 'height', 'width']);
      g.output(g.op('Identity', [x]), 'latent_mean', ['batch', 3, 'height', 'width']);
    });
    await expect(
      importOnnx({ onnxDir: dir, configDir: REFERENCE_CHECKPOINT, outDir: join(work, 'bad') }),
    ).rejects.toThrow(
      /vae_encoder\.onnx: does not match the vaeEncoder contract:\s+missing input "sample".*\n.*unexpected input "pixels"/,
    );
    expect(existsSync(join(work, 'bad'))).toBe(false);
  });

  it('refuses a missing file and a missing config, naming them', async () => {
    const dir = join(work, 'missing');
    cpSync(REFERENCE_ONNX, dir, { recursive: true });
    rmSync(join(dir, 'unet.onnx'));
    await expect(
      importOnnx({ onnxDir: dir, configDir: REFERENCE_CHECKPOINT, outDir: join(work, 'm') }),
    ).rejects.toThrow(/unet\.onnx: missing unet graph/);
    await expect(importOnnx({ onnxDir: REFERENCE_ONNX, configDir: work, outDir: join(work, 'm') })).rejects.toThrow(
      /unet[/\\]config\.json: missing UNet config/,
    );
  });
});
