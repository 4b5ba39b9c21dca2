/**
 * Reading a diffusers-layout checkpoint's configs (model_index.json, unet/, vae/, image_encoder/,
 * scheduler/, feature_extractor/) into the manifest fields the runtime needs. Shared by the ONNX
 * importer and the graph builder, so both describe a checkpoint the same way.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelNotFoundError, ModelFormatError } from '../errors.js';
import { parseSchedulerConfig } from '../scheduler/index.js';
import { DIFFUSERS_CALL_DEFAULTS, MANIFEST_FORMAT, MANIFEST_VERSION, type ModelManifestInput } from './manifest.js';

export interface DiffusersConfigs {
  dir: string;
  unet: Record<string, any>;
  vae: Record<string, any>;
  imageEncoder: Record<string, any>;
  scheduler: Record<string, any>;
  /** Absent in some fine-tunes; CLIP's standard normalisation is used then. */
  featureExtractor: Record<string, any> | undefined;
}

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

function readJson(path: string, what: string): Record<string, any> {
  if (!existsSync(path))
    throw new ModelNotFoundError(path, `missing ${what} (expected a diffusers-layout checkpoint directory)`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelFormatError(path, `not valid JSON (${(err as Error).message})`);
  }
}

export function readDiffusersConfigs(dir: string): DiffusersConfigs {
  const fe = join(dir, 'feature_extractor', 'preprocessor_config.json');
  return {
    dir,
    unet: readJson(join(dir, 'unet', 'config.json'), 'UNet config'),
    vae: readJson(join(dir, 'vae', 'config.json'), 'VAE config'),
    imageEncoder: readJson(join(dir, 'image_encoder', 'config.json'), 'image encoder config'),
    scheduler: readJson(join(dir, 'scheduler', 'scheduler_config.json'), 'scheduler config'),
    featureExtractor: existsSync(fe) ? readJson(fe, 'feature extractor config') : undefined,
  };
}

/** 2^(levels−1): pixels per latent cell per side (8 for SVD's 4-level VAE). */
export function vaeScaleFactor(vae: Record<string, any>): number {
  return 2 ** ((vae.block_out_channels as number[]).length - 1);
}

/** Guesses the published variant from the configs; fine-tunes of the same shape get the same defaults. */
export function detectVariant(c: DiffusersConfigs): string {
  const channels = c.unet.block_out_channels as number[];
  if (channels?.[0] === 320 && channels.length === 4) return c.unet.num_frames === 14 ? 'svd' : 'svd-xt';
  return 'custom';
}

export interface ManifestOverrides {
  variant?: string;
  width?: number;
  height?: number;
  decodeChunkSize?: number;
  decoderFixedFrames?: number | null;
  source?: Record<string, unknown>;
  files?: ModelManifestInput['files'];
}

/**
 * Manifest fields derived from the checkpoint configs. Defaults follow diffusers' pipeline (docs/pipeline.md §10):
 * DIFFUSERS_CALL_DEFAULTS, frames = unet.num_frames, 1024×576 for SVD-size models. Smaller (test) models get
 * a small default size so they run in seconds.
 */
export function manifestFromConfigs(c: DiffusersConfigs, o: ManifestOverrides = {}): ModelManifestInput {
  const scale = vaeScaleFactor(c.vae);
  const levels = (c.unet.block_out_channels as number[]).length;
  const realSize = scale === 8 && (c.unet.block_out_channels as number[])[0] >= 320;
  const height = o.height ?? (realSize ? 576 : Math.max(64, (c.unet.sample_size ?? 32) * scale));
  const width = o.width ?? (realSize ? 1024 : height * 2);
  const fe = c.featureExtractor;
  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    variant: o.variant ?? detectVariant(c),
    source: o.source ?? {},
    files: o.files ?? {
      imageEncoder: 'image_encoder.onnx',
      vaeEncoder: 'vae_encoder.onnx',
      unet: 'unet.onnx',
      vaeDecoder: 'vae_decoder.onnx',
    },
    scheduler: parseSchedulerConfig(c.scheduler, join(c.dir, 'scheduler', 'scheduler_config.json')),
    vae: {
      scalingFactor: c.vae.scaling_factor ?? 0.18215,
      spatialScaleFactor: scale,
      latentChannels: c.vae.latent_channels ?? 4,
      decoderFixedFrames: o.decoderFixedFrames ?? null,
    },
    imageEncoder: {
      imageSize: c.imageEncoder.image_size ?? 224,
      imageMean: fe?.image_mean ?? CLIP_MEAN,
      imageStd: fe?.image_std ?? CLIP_STD,
      embedDim: c.imageEncoder.projection_dim,
    },
    unet: {
      inChannels: c.unet.in_channels,
      outChannels: c.unet.out_channels,
      latentMultiple: 2 ** (levels - 1),
    },
    defaults: {
      ...DIFFUSERS_CALL_DEFAULTS,
      frames: c.unet.num_frames ?? 14,
      width,
      height,
      ...(o.decodeChunkSize ? { decodeChunkSize: o.decodeChunkSize } : {}),
    },
  };
}
