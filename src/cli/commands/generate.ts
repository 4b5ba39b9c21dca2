/** `svd generate <image>`: one video from one image, locally or through a hosted API. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { createBackend, selectBackend } from '../../backends/index.js';
import type { BackendResult } from '../../request/types.js';
import { InvalidRequestError } from '../../errors.js';
import { modelPath } from '../../hub/index.js';
import { npyDumper, readNoiseDir } from '../../pipeline/debug.js';
import { parseMemorySize } from '../../pipeline/admission.js';
import { generateVideo } from '../../pipeline/local.js';
import type { GenerateResult } from '../../pipeline/pipeline.js';
import { parseRequest, type GenerationRequestInput } from '../../request/schema.js';
import { findCudaProviderLibrary } from '../../runtime/device.js';
import { createProgressReporter } from '../progress.js';
import { addRemoteFlags, remoteOptionsFromFlags, withRemoteFlagNames } from '../remoteFlags.js';
import { addRequestFlags, requestFromFlags, withFlagNames } from '../requestFlags.js';

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('make a video from an image')
    .argument('<image>', 'input image: file path, http(s) URL, data: URI or base64 (PNG, JPEG, WebP)');
  addRequestFlags(cmd);
  addRemoteFlags(cmd)
    .option(
      '--noise <dir>',
      'debugging (local): read init_noise.npy and aug_noise.npy from DIR instead of drawing noise',
    )
    .option('--dump <dir>', 'debugging (local): write every intermediate as .npy into DIR')
    .option('--json', 'print the result as JSON on stdout')
    .option('--force', 'run even when the memory estimate says the request will not fit in the memory available')
    .option('--max-memory <size>', 'RAM the run may use, e.g. 8G or 512M (default: what the machine has available now)')
    .action(async (image: string, opts: Record<string, any>) => {
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const request = requestFromFlags(image, opts);
        parseRequest(request); // every field error before anything loads or connects
        const { backend, options } = remoteOptionsFromFlags(opts);
        // --noise/--dump are local debugging tools; otherwise `auto`: local when sensible, else a provider with a key
        const choice = backend ?? (opts.noise || opts.dump ? 'local' : 'auto');
        const selection = await selectBackend({
          backend: choice,
          apiKey: options.apiKey,
          localAvailable: () => localIsGood(request.model),
        });
        if (selection.name !== 'local') {
          if (opts.noise || opts.dump)
            throw new InvalidRequestError([
              { field: opts.noise ? '--noise' : '--dump', message: 'is only available with --backend local' },
            ]);
          if (choice === 'auto') process.stderr.write(`backend: ${selection.name} (${selection.reason})\n`);
          const remote = createBackend(selection.name, options);
          const result = await remote.generate(request, {
            signal: controller.signal,
            onProgress: opts.json ? undefined : createProgressReporter(),
            remote: options.remote,
          });
          printRemote({ ...result, backend: selection.name, reason: selection.reason }, Boolean(opts.json));
          return;
        }
        const result = await generateVideo(request, {
          signal: controller.signal,
          onProgress: opts.json ? undefined : createProgressReporter(),
          noise: opts.noise ? readNoiseDir(resolve(opts.noise)) : undefined,
          dump: opts.dump ? npyDumper(resolve(opts.dump)) : undefined,
          force: Boolean(opts.force),
          ...(opts.maxMemory !== undefined ? { maxMemoryBytes: parseMemorySize(opts.maxMemory, '--max-memory') } : {}),
          keepFrames: false, // the video file has them; chained clips then hold one clip's frames at a time
        });
        printLocal(result, Boolean(opts.json));
      } catch (err) {
        throw withRemoteFlagNames(withFlagNames(err));
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

/** `auto` runs locally when that is sensible: the embedded tiny model, or a GPU with the model on disk. */
function localIsGood(model: GenerationRequestInput['model']): boolean {
  if (model === undefined || model === 'tiny') return true;
  if (!findCudaProviderLibrary()) return false;
  try {
    modelPath(model);
    return true;
  } catch {
    return false;
  }
}

function printLocal(r: GenerateResult, json: boolean): void {
  if (json) {
    const summary = {
      output: r.outputPath,
      seed: r.seed,
      backend: r.backend,
      format: r.format,
      width: r.width,
      height: r.height,
      frames: r.metadata.frames,
      fps: r.fps,
      timings: r.timings,
      stepTimings: r.stepTimings,
      metadata: r.metadata,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const ms = (x: number | undefined) => (x === undefined ? '-' : `${Math.round(x)} ms`);
  const steps = r.stepTimings;
  const mean = steps.length ? steps.reduce((a, b) => a + b, 0) / steps.length : 0;
  process.stdout.write(
    [
      `seed: ${r.seed}`,
      `output: ${r.outputPath}`,
      `video: ${String(r.metadata.frames)} frames, ${r.width}x${r.height}, ${r.fps} fps, ${r.format}`,
      ...(Array.isArray(r.metadata.clipSeeds)
        ? [`clips: ${r.metadata.clips} (overlap ${r.metadata.overlap}), seeds ${r.metadata.clipSeeds.join(', ')}`]
        : []),
      `device: ${r.metadata.provider}`,
      `timings: load ${ms(r.timings.load)}, preprocess ${ms(r.timings.preprocess)}, encode ${ms(r.timings.encode)}, ` +
        `unet ${steps.length} steps ${ms(r.timings.denoise)} (mean ${ms(mean)}/step: ${steps.map((s) => Math.round(s)).join(', ')}), ` +
        `decode ${ms(r.timings.decode)}, video ${ms(r.timings.video)}, total ${ms(r.timings.total)}`,
    ].join('\n') + '\n',
  );
}

function printRemote(r: BackendResult, json: boolean): void {
  if (json) {
    const summary = {
      output: r.outputPath,
      seed: r.seed,
      backend: r.backend,
      reason: r.reason,
      format: r.format,
      timings: r.timings,
      metadata: r.metadata,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const ignored =
    Array.isArray(r.metadata.ignored) && r.metadata.ignored.length
      ? `\nignored by the provider: ${(r.metadata.ignored as string[]).join(', ')}`
      : '';
  const endpoint = r.metadata.endpoint ? ` (${String(r.metadata.endpoint)})` : '';
  const timings = Object.entries(r.timings)
    .map(([k, v]) => `${k} ${Math.round(v)} ms`)
    .join(', ');
  process.stdout.write(
    `seed: ${r.seed}\noutput: ${r.outputPath}\nbackend: ${r.backend}${endpoint}\ntimings: ${timings}${ignored}\n`,
  );
}
