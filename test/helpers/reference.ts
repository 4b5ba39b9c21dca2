/** Access to the diffusers reference run copied into test/fixtures/reference (see its README). */
import { join } from 'node:path';
import { readNpy } from '../../src/tensor/npy.js';

export const REFERENCE_DIR = join(import.meta.dirname, '..', 'fixtures', 'reference');
export const REFERENCE_CHECKPOINT = join(REFERENCE_DIR, 'tiny-svd');
export const REFERENCE_ONNX = join(REFERENCE_DIR, 'tiny-svd-onnx');
export const REFERENCE_IMAGE = join(REFERENCE_DIR, 'input_64x128.png');

/** The call diffusers made (out/index.json "call"). */
export const REFERENCE_CALL = {
  width: 128,
  height: 64,
  frames: 4,
  steps: 4,
  fps: 7,
  motionBucketId: 127,
  condAug: 0.02,
  decodeChunkSize: 2,
  minGuidance: 1.0,
  maxGuidance: 3.0,
} as const;

/**
 * The recorded runs: `out` is diffusers 0.27.2 as released (its temporal cross-attention context interleaves the CFG
 * batch); `out-fixed-context` is the same call with diffusers' later per-video context (PR #7268, v0.28), our default.
 */
export type ReferenceRun = 'out' | 'out-fixed-context';

export function ref(name: string, run: ReferenceRun = 'out'): { data: Float32Array; shape: number[] } {
  const arr = readNpy(join(REFERENCE_DIR, run, `${name}.npy`));
  const data = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data as ArrayLike<number>);
  return { data, shape: arr.shape };
}

export { relativeError as relErr, maxAbsDiff } from '../../src/tensor/compare.js';
