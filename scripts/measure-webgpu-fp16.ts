/**
 * fp16 on WebGPU against fp32, on the tiny reference checkpoint (test/fixtures/reference): how far fp16 graphs
 * (shader-f16) move each component and the whole pipeline from diffusers' own fp32 run. Needs a WebGPU adapter
 * (Mesa lavapipe here: a few minutes per pipeline at load ~2 on two cores; run it under a memory guard).
 *
 *   npx tsx scripts/measure-webgpu-fp16.ts [--dtypes float16,float32] [--dir /tmp/svd-measure-fp16]
 *
 * Per dtype: each graph on diffusers' recorded inputs (the UNet on step 0's whole CFG batch), then the reference
 * call through the pipeline with the reference noise injected: every intermediate against diffusers (relative
 * error) and the 8-bit frames (largest level difference). One JSON line per measure on stdout.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildModel } from '../src/models/build.js';
import { createPipeline } from '../src/pipeline/pipeline.js';
import { openModelSessions } from '../src/pipeline/session.js';
import type { FloatDtype } from '../src/tensor/float16.js';
import { maxAbsDiff, relativeError } from '../src/tensor/compare.js';
import { REFERENCE_CALL, REFERENCE_CHECKPOINT, REFERENCE_IMAGE, ref } from '../test/helpers/reference.js';

const RUN = 'out-fixed-context';
const { values: opts } = parseArgs({
  options: {
    dtypes: { type: 'string', default: 'float16,float32' },
    dir: { type: 'string', default: '/tmp/svd-measure-fp16' },
    'skip-pipeline': { type: 'boolean', default: false },
  },
});
const report = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

for (const dtype of opts.dtypes.split(',') as FloatDtype[]) {
  const modelDir = join(opts.dir, dtype);
  mkdirSync(opts.dir, { recursive: true });
  await buildModel({ checkpoint: REFERENCE_CHECKPOINT, outDir: modelDir, target: 'webgpu', dtype, log: () => {} });
  await measureComponents(dtype, modelDir);
  const pipeline = await createPipeline({ modelDir, device: 'webgpu', log: () => {} });
  const t0 = performance.now();
  const dumped = new Map<string, Float32Array | Uint8Array>();
  if (!opts['skip-pipeline']) {
    const result = await pipeline.generate(
      { image: REFERENCE_IMAGE, ...REFERENCE_CALL, seed: 42, device: 'webgpu' },
      {
        noise: { initNoise: ref('initial_noise', RUN).data, augNoise: ref('noise_aug_noise', RUN).data },
        dump: (name, data) => void dumped.set(name, data.slice()),
        skipVideo: true,
      },
    );
    const compare = (name: string, refName: string) =>
      report({
        dtype,
        measure: `pipeline ${name} vs ${refName}`,
        relErr: relativeError(dumped.get(name)!, ref(refName, RUN).data),
      });
    compare('image_embeddings', 'image_embeds');
    compare('image_latents', 'image_latents_mode');
    for (let i = 0; i < REFERENCE_CALL.steps; i++) compare(`latents_${i}`, `step${i}_latents`);
    const expected = ref('frames_np', RUN).data.map((v) => Math.round(v * 255));
    const frames = dumped.get('frames')!;
    let over1 = 0;
    for (let i = 0; i < frames.length; i++) if (Math.abs(frames[i] - expected[i]) > 1) over1++;
    report({
      dtype,
      measure: 'pipeline frames vs round(frames_np·255)',
      maxLevelDiff: maxAbsDiff(frames, expected),
      valuesOver1Level: over1,
      values: frames.length,
      ms: Math.round(performance.now() - t0),
      stepMs: result.stepTimings.map(Math.round),
    });
  }
  await pipeline.close();
}

/** Each graph on diffusers' recorded inputs; the UNet on step 0's whole CFG batch. */
async function measureComponents(dtype: FloatDtype, modelDir: string): Promise<void> {
  const s = await openModelSessions(modelDir, { device: 'webgpu', warn: () => {} });
  try {
    const r = s.runners;
    const input = (runner: typeof r.unet, name: string, refName: string) =>
      runner.tensor(name, ref(refName, RUN).data, ref(refName, RUN).shape);
    const one = async (graph: string, run: () => Promise<{ data: Float32Array }>, refName: string) => {
      const t = performance.now();
      const out = await run();
      const expected = ref(refName, RUN).data;
      report({
        dtype,
        measure: `${graph} vs ${refName}`,
        relErr: relativeError(out.data, expected),
        maxAbs: maxAbsDiff(out.data, expected),
        finite: out.data.every(Number.isFinite),
        ms: Math.round(performance.now() - t),
      });
    };
    await one(
      'clip',
      () => r.imageEncoder.run({ pixel_values: input(r.imageEncoder, 'pixel_values', 'clip_pixel_values') }),
      'image_embeds',
    );
    await one(
      'vae encoder',
      () => r.vaeEncoder.run({ sample: input(r.vaeEncoder, 'sample', 'vae_encoder_input') }),
      'image_latents_mode',
    );
    await one(
      'vae decoder chunk 0',
      () => r.vaeDecoder.run({ latent: input(r.vaeDecoder, 'latent', 'vae_decode_chunk0_input') }),
      'vae_decode_chunk0_output',
    );
    await one(
      'unet step 0 (CFG batch 2)',
      () =>
        r.unet.run({
          sample: input(r.unet, 'sample', 'step0_unet_sample'),
          timestep: r.unet.tensor('timestep', Float32Array.of(ref('step0_unet_timestep', RUN).data[0]), []),
          encoder_hidden_states: input(r.unet, 'encoder_hidden_states', 'unet_encoder_hidden_states'),
          added_time_ids: input(r.unet, 'added_time_ids', 'unet_added_time_ids'),
        }),
      'step0_unet_output',
    );
  } finally {
    await s.close();
  }
}
