/**
 * How onnxruntime-node 1.30 resolves external data `location`s (the reason saveGraph hard-links checkpoint
 * files into the model directory): relative to the .onnx file's directory, refusing '..', absolute paths,
 * and symlinks that point outside; a hard link inside the directory works.
 */
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeModel } from '../src/onnx/model.js';

const root = mkdtempSync(join(tmpdir(), 'svd-onnx-ext-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const N = 300; // 1200 bytes: above the inline threshold, as real weights are
const PAD = 37; // unaligned offset, like a tensor inside a safetensors file
const ckptFile = join(root, 'ckpt', 'w.safetensors');
const modelDir = join(root, 'model');
mkdirSync(join(root, 'ckpt'));
mkdirSync(join(modelDir, 'weights'), { recursive: true });
const values = Float32Array.from({ length: N }, (_, i) => i * 0.25 - 3);
const blob = new Uint8Array(PAD + N * 4);
blob.set(new Uint8Array(values.buffer), PAD);
writeFileSync(ckptFile, blob);
symlinkSync(ckptFile, join(modelDir, 'weights', 'symlink.bin'));
linkSync(ckptFile, join(modelDir, 'weights', 'hardlink.bin'));

async function tryLocation(location: string): Promise<Float32Array> {
  const path = join(modelDir, 'm.onnx');
  writeFileSync(
    path,
    encodeModel({
      irVersion: 10,
      opsets: [{ domain: '', version: 21 }],
      producerName: 'test',
      graph: {
        name: 'g',
        nodes: [{ opType: 'Add', inputs: ['x', 'W'], outputs: ['y'] }],
        initializers: [{ name: 'W', dtype: 'float32', dims: [N], external: { location, offset: PAD, length: N * 4 } }],
        inputs: [{ name: 'x', dtype: 'float32', shape: [N] }],
        outputs: [{ name: 'y', dtype: 'float32', shape: [N] }],
      },
    }),
  );
  const s = await ort.InferenceSession.create(path);
  const out = await s.run({ x: new ort.Tensor('float32', new Float32Array(N).fill(1), [N]) });
  await s.release();
  return out.y.data as Float32Array;
}

describe('ORT external data locations', () => {
  it('refuses a location that escapes the model directory', async () => {
    await expect(tryLocation('../ckpt/w.safetensors')).rejects.toThrow(/escapes model directory/);
  });
  it('refuses an absolute location', async () => {
    await expect(tryLocation(ckptFile)).rejects.toThrow(/Absolute path not allowed/);
  });
  it('refuses a symlink inside the model directory that points outside it', async () => {
    await expect(tryLocation('weights/symlink.bin')).rejects.toThrow(/escapes model directory/);
  });
  it('accepts a hard link inside the model directory, at an unaligned offset', async () => {
    const y = await tryLocation('weights/hardlink.bin');
    expect(Array.from(y.slice(0, 3))).toEqual([1 - 3, 1 - 2.75, 1 - 2.5]);
    expect(y[N - 1]).toBe(1 + values[N - 1]);
  });
});
