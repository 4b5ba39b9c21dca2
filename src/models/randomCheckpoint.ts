/**
 * Seeded random checkpoints in diffusers layout, for any set of configs: the embedded tiny model, the
 * tests' other-config checkpoints and the full-size build benchmarks. The tensors written are exactly
 * those the graph builder asks for under the configs (a dry run), so they always build.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clipImageEncoderWeights } from '../encoders/clipGraph.js';
import { writeRandomCheckpoint } from '../onnx/randomWeights.js';
import { dryWeights } from '../onnx/weights.js';
import { defineUnetGraph } from '../unet/build.js';
import { parseUnetConfig } from '../unet/config.js';
import { vaeDecoderWeights } from '../vae/decoderGraph.js';
import { vaeEncoderWeights } from '../vae/encoderGraph.js';

export interface RandomCheckpointConfigs {
  unet: Record<string, unknown>;
  vae: Record<string, unknown>;
  imageEncoder: Record<string, unknown>;
  scheduler: Record<string, unknown>;
  featureExtractor?: Record<string, unknown>;
}

const COMPONENT_FILES = {
  unet: ['unet', 'diffusion_pytorch_model'],
  vae: ['vae', 'diffusion_pytorch_model'],
  imageEncoder: ['image_encoder', 'model'],
} as const;

/** Reads the five configs of a diffusers-layout directory (weights not needed). */
export function readCheckpointConfigs(dir: string): RandomCheckpointConfigs {
  const read = (p: string) => JSON.parse(readFileSync(join(dir, p), 'utf8'));
  const fe = join(dir, 'feature_extractor', 'preprocessor_config.json');
  return {
    unet: read('unet/config.json'),
    vae: read('vae/config.json'),
    imageEncoder: read('image_encoder/config.json'),
    scheduler: read('scheduler/scheduler_config.json'),
    featureExtractor: existsSync(fe) ? read('feature_extractor/preprocessor_config.json') : undefined,
  };
}

/**
 * Writes `<outDir>/{unet,vae,image_encoder,scheduler,feature_extractor}` + model_index.json with seeded
 * random weights (F32, or F16 as `*.fp16.safetensors` when `dtype` is 'F16').
 */
export function writeRandomCheckpointDir(outDir: string, configs: RandomCheckpointConfigs, seed: number, dtype: 'F32' | 'F16' = 'F32'): void {
  const staging = `${outDir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const json = (rel: string, value: unknown) => {
    mkdirSync(join(staging, rel, '..'), { recursive: true });
    writeFileSync(join(staging, rel), `${JSON.stringify(value, null, 2)}\n`);
  };
  json('model_index.json', {
    _class_name: 'StableVideoDiffusionPipeline',
    feature_extractor: ['transformers', 'CLIPImageProcessor'],
    image_encoder: ['transformers', 'CLIPVisionModelWithProjection'],
    scheduler: ['diffusers', 'EulerDiscreteScheduler'],
    unet: ['diffusers', 'UNetSpatioTemporalConditionModel'],
    vae: ['diffusers', 'AutoencoderKLTemporalDecoder'],
  });
  json('unet/config.json', configs.unet);
  json('vae/config.json', configs.vae);
  json('image_encoder/config.json', configs.imageEncoder);
  json('scheduler/scheduler_config.json', configs.scheduler);
  if (configs.featureExtractor) json('feature_extractor/preprocessor_config.json', configs.featureExtractor);

  const unet = defineUnetGraph(parseUnetConfig(configs.unet), dryWeights(), { dtype: 'float32', target: 'cpu' });
  const requests = {
    unet: unet.g.requests,
    vae: [...vaeEncoderWeights(configs.vae), ...vaeDecoderWeights(configs.vae)],
    imageEncoder: clipImageEncoderWeights(configs.imageEncoder),
  };
  const suffix = dtype === 'F16' ? '.fp16.safetensors' : '.safetensors';
  let k = 0;
  for (const [component, [dir, stem]] of Object.entries(COMPONENT_FILES) as Array<[keyof typeof requests, readonly [string, string]]>) {
    const seen = new Set<string>();
    const unique = requests[component].filter((r) => !seen.has(r.name) && seen.add(r.name));
    writeRandomCheckpoint(join(staging, dir, `${stem}${suffix}`), unique, seed + 1000 * k++, dtype);
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, '..'), { recursive: true });
  renameSync(staging, outDir);
}

