/** `svd generate <image>`: one video from one image, locally or through a hosted API. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { createPipeline, type GenerateResult } from '../../pipeline/pipeline.js';
import { npyDumper, readNoiseDir } from '../../pipeline/debug.js';
import { resolveModelDir } from '../../models/resolve.js';
import { createProgressReporter } from '../progress.js';
import { addRequestFlags, requestFromFlags, withFlagNames } from '../requestFlags.js';

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('make a video from an image')
    .argument('<image>', 'input image: file path, http(s) URL, data: URI or base64 (PNG, JPEG, WebP)');
  addRequestFlags(cmd)
    .option('--noise <dir>', 'debugging: read init_noise.npy and aug_noise.npy from DIR instead of drawing noise')
    .option('--dump <dir>', 'debugging: write every intermediate as .npy into DIR')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (image: string, opts: Record<string, any>) => {
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const request = requestFromFlags(image, opts);
        const modelDir = await resolveModelDir(request.model, { log: (m) => process.stderr.write(`${m}\n`) });
        const pipeline = await createPipeline({ modelDir, device: request.device });
        try {
          const result = await pipeline.generate(request, {
            signal: controller.signal,
            onProgress: opts.json ? undefined : createProgressReporter(),
            noise: opts.noise ? readNoiseDir(resolve(opts.noise)) : undefined,
            dump: opts.dump ? npyDumper(resolve(opts.dump)) : undefined,
          });
          printResult(result, Boolean(opts.json));
        } finally {
          await pipeline.close();
        }
      } catch (err) {
        throw withFlagNames(err);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

function printResult(r: GenerateResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ output: r.outputPath, seed: r.seed, backend: r.backend, format: r.format, width: r.width, height: r.height, frames: r.frames.length, fps: r.fps, timings: r.timings, stepTimings: r.stepTimings, metadata: r.metadata })}\n`);
    return;
  }
  const ms = (x: number | undefined) => (x === undefined ? '-' : `${Math.round(x)} ms`);
  const steps = r.stepTimings;
  const mean = steps.length ? steps.reduce((a, b) => a + b, 0) / steps.length : 0;
  process.stdout.write(
    [
      `seed: ${r.seed}`,
      `output: ${r.outputPath}`,
      `video: ${r.frames.length} frames, ${r.width}x${r.height}, ${r.fps} fps, ${r.format}`,
      `device: ${r.metadata.provider}`,
      `timings: load ${ms(r.timings.load)}, preprocess ${ms(r.timings.preprocess)}, encode ${ms(r.timings.encode)}, ` +
        `unet ${steps.length} steps ${ms(r.timings.denoise)} (mean ${ms(mean)}/step: ${steps.map((s) => Math.round(s)).join(', ')}), ` +
        `decode ${ms(r.timings.decode)}, video ${ms(r.timings.video)}, total ${ms(r.timings.total)}`,
    ].join('\n') + '\n',
  );
}
