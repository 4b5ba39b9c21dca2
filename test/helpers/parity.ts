/** The reference call through our pipeline, and the intermediates it must reproduce (see pipeline-parity.test.ts). */
import { expect } from 'vitest';
import type { GenerateResult, SvdPipeline } from '../../src/pipeline/pipeline.js';
import type { GenerationRequestInput } from '../../src/request/schema.js';
import { REFERENCE_CALL, REFERENCE_IMAGE, maxAbsDiff, ref, relErr, type ReferenceRun } from './reference.js';

type Dumped = Map<string, { data: Float32Array | Uint8Array; shape: number[] }>;

/** Runs the reference call on a model directory with the reference noise, collecting the dump. */
export async function runReferenceCall(
  pipeline: SvdPipeline,
  extra: Partial<GenerationRequestInput> = {},
): Promise<{ dumped: Dumped; result: GenerateResult }> {
  const dumped: Dumped = new Map();
  const result = await pipeline.generate(
    { image: REFERENCE_IMAGE, ...REFERENCE_CALL, seed: 42, ...extra },
    {
      // the two random draws, identical in both recorded runs
      noise: { initNoise: ref('initial_noise').data, augNoise: ref('noise_aug_noise').data },
      dump: (name, data, shape) => {
        dumped.set(name, { data: data.slice(), shape });
      },
      skipVideo: true,
    },
  );
  return { dumped, result };
}

/** Asserts every intermediate; returns the measured relative errors for reporting. */
export function expectParity(dumped: Dumped, run: ReferenceRun = 'out'): Record<string, number> {
  const errors: Record<string, number> = {};
  const check = (name: string, refName: string, shape: number[], transform?: (x: Float32Array) => Float32Array) => {
    const ours = dumped.get(name);
    expect(ours, `dump ${name}`).toBeDefined();
    expect(ours!.shape).toEqual(shape);
    const reference = ref(refName, run).data;
    const err = relErr(ours!.data as Float32Array, transform ? transform(reference) : reference);
    errors[name] = err;
    expect(err, `${name} vs ${refName}`).toBeLessThan(1e-4);
  };
  const { frames: F, height: H, width: W, steps } = REFERENCE_CALL;
  const h = 32,
    w = 64;
  check('clip_pixel_values', 'clip_pixel_values', [1, 3, 224, 224]);
  check('image_embeddings', 'image_embeds', [1, 1, 32]);
  check('image_latents', 'image_latents_mode', [1, 4, h, w]);
  check('added_time_ids', 'added_time_ids', [1, 3], (x) => x.subarray(0, 3));
  check('sigmas', 'scheduler_sigmas', [steps + 1]);
  check('timesteps', 'scheduler_timesteps', [steps]);
  for (let i = 0; i < steps; i++) check(`latents_${i}`, `step${i}_latents`, [1, F, 4, h, w]);
  // diffusers records decoded frames as [1,3,F,H,W]; the contract dumps [F,3,H,W].
  check('decoded', 'decoded_frames', [F, 3, H, W], (x) => permuteCF(x, F, H * W));
  const frames = dumped.get('frames')!;
  expect(frames.shape).toEqual([F, H, W, 3]);
  const expected = ref('frames_np', run).data.map((v) => Math.round(v * 255));
  errors.frames_max_level_diff = maxAbsDiff(frames.data, expected);
  expect(errors.frames_max_level_diff).toBeLessThanOrEqual(1);
  return errors;
}

function permuteCF(x: Float32Array, F: number, plane: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let c = 0; c < 3; c++)
    for (let f = 0; f < F; f++) out.set(x.subarray((c * F + f) * plane, (c * F + f + 1) * plane), (f * 3 + c) * plane);
  return out;
}
