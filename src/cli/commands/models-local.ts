/** `svd models build | inspect | import-onnx`: making model directories from checkpoints or ONNX exports. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { InvalidRequestError } from '../../errors.js';
import { buildModel, chooseWeightVariant } from '../../models/build.js';
import { importOnnx } from '../../models/importOnnx.js';
import { formatInspectReport, inspectCheckpoint } from '../../models/inspect.js';
import { getOrCreateModelsCommand } from './models-root.js';

const log = (m: string) => process.stderr.write(`${m}\n`);

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T))
    throw new InvalidRequestError([{ field: flag, value, message: `must be one of ${allowed.join(', ')}` }]);
  return value as T;
}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidRequestError([{ field: flag, value, message: 'must be a whole number ≥ 1' }]);
  return n;
}

export function registerModelsLocal(program: Command): void {
  const models = getOrCreateModelsCommand(program);

  models
    .command('build')
    .description(
      'build the four ONNX graphs of a diffusers checkpoint into a model directory (weights referenced, not copied)',
    )
    .argument('<diffusers-dir>', 'checkpoint directory with unet/, vae/, image_encoder/, scheduler/ (diffusers layout)')
    .requiredOption('--out <model-dir>', 'model directory to write')
    .option('--dtype <dtype>', 'fp32 | fp16 (fp16 reads *.fp16.safetensors when present)', 'fp32')
    .option(
      '--target <target>',
      'cpu | cuda | webgpu (cuda: fused MultiHeadAttention and InstanceNormalization-based GroupNorm, ' +
        'ops the CUDA EP implements; webgpu: attention in query chunks so no tensor exceeds the binding limit)',
      'cpu',
    )
    .option('--variant <name>', 'model variant name recorded in model.json (svd, svd-xt, ...); default: guessed')
    .option(
      '--temporal-context <order>',
      'per-video (default; as sgm and diffusers >= 0.28) | diffusers-0.27 (reproduces that release)',
      'per-video',
    )
    .option(
      '--unet-checkpoint <file>',
      'take the UNet from an sgm-layout checkpoint (.ckpt or .safetensors), ' +
        "e.g. MotionCtrl-SVD's motionctrl_svd.ckpt; " +
        '<diffusers-dir> gives unet/config.json, the VAE and the image encoder',
    )
    .action(
      async (
        dir: string,
        opts: {
          out: string;
          dtype: string;
          target: string;
          variant?: string;
          temporalContext: string;
          unetCheckpoint?: string;
        },
      ) => {
        const temporalContextOrder = oneOf('--temporal-context', opts.temporalContext, [
          'per-video',
          'diffusers-0.27',
        ] as const);
        const dtype = oneOf('--dtype', opts.dtype, ['fp32', 'fp16'] as const) === 'fp16' ? 'float16' : 'float32';
        const target = oneOf('--target', opts.target, ['cpu', 'cuda', 'webgpu'] as const);
        const unetCheckpoint = opts.unetCheckpoint === undefined ? undefined : resolve(opts.unetCheckpoint);
        const r = await buildModel({
          checkpoint: resolve(dir),
          outDir: resolve(opts.out),
          dtype,
          target,
          modelVariant: opts.variant,
          temporalContextOrder,
          unetCheckpoint,
          log,
        });
        if (r.manifest.unet.cameraPoseDim !== null)
          log("the UNet has MotionCtrl's camera module: generate with --camera <preset|file.json>");
        for (const [role, info] of Object.entries(r.graphs)) {
          log(
            `${role}: ${info.path} (${info.nodeCount} nodes, ${(info.weightBytes / 2 ** 20).toFixed(1)} MiB of weights referenced)`,
          );
        }
        process.stdout.write(`${resolve(opts.out)}\n`);
        log(`built in ${(r.ms / 1000).toFixed(1)} s`);
      },
    );

  models
    .command('inspect')
    .description(
      'list missing, unexpected and mis-shaped tensors of a diffusers checkpoint against what the builder expects',
    )
    .argument('<diffusers-dir>', 'checkpoint directory (diffusers layout)')
    .option(
      '--variant <name>',
      'weight files to read, e.g. fp16 for *.fp16.safetensors (default: as `models build` picks)',
    )
    .option('--json', 'print the report as JSON')
    .action((dir: string, opts: { json?: boolean; variant?: string }) => {
      // the same weight files the build would read (fp16-only checkpoints such as models/tiny-svd included)
      const report = inspectCheckpoint(resolve(dir), {
        variant: chooseWeightVariant(resolve(dir), 'float32', opts.variant),
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else
        process.stdout.write(
          `${formatInspectReport(report).join('\n')}\n${report.ok ? 'ok: the checkpoint builds' : 'the checkpoint cannot be built (see above)'}\n`,
        );
      if (!report.ok) process.exitCode = 1;
    });

  models
    .command('import-onnx')
    .description(
      'make a model directory from ONNX files exported by torch.onnx.export (onnx_index.json) plus the checkpoint configs',
    )
    .argument(
      '<onnx-dir>',
      'directory with image_encoder.onnx, vae_encoder.onnx, unet.onnx, vae_decoder.onnx (+ onnx_index.json)',
    )
    .requiredOption(
      '--config <diffusers-dir>',
      'the checkpoint the ONNX files were exported from (its config files are read)',
    )
    .requiredOption('--out <model-dir>', 'model directory to write')
    .option('--width <px>', 'default video width recorded in model.json')
    .option('--height <px>', 'default video height recorded in model.json')
    .action(async (onnxDir: string, opts: { config: string; out: string; width?: string; height?: string }) => {
      await importOnnx({
        onnxDir,
        configDir: opts.config,
        outDir: opts.out,
        log,
        width: positiveInt('--width', opts.width),
        height: positiveInt('--height', opts.height),
      });
      process.stdout.write(`${resolve(opts.out)}\n`);
    });
}
