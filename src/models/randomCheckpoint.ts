/**
 * Seeded random checkpoints in diffusers layout, for any set of configs: the embedded tiny model, the
 * tests' other-config checkpoints and the full-size build benchmarks. The tensors written are exactly
 * those the graph builder asks for under the configs (a dry run), so they always build.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeAll, writeFileAtomically } from '../io/atomicFile.js';
import { join } from 'node:path';
import { clipImageEncoderWeights } from '../encoders/clipGraph.js';
import { randomTensors } from '../onnx/randomWeights.js';
import { dryWeights, type WeightRequest } from '../onnx/weights.js';
import { float32ToFloat16 } from '../tensor/float16.js';
import { defineUnetGraph } from '../unet/build.js';
import { parseUnetConfig } from '../unet/config.js';
import { vaeDecoderWeights } from '../vae/decoderGraph.js';
import { vaeEncoderWeights } from '../vae/encoderGraph.js';
import { writeDirectoryAtomically } from '../io/stagingDir.js';

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
 * random weights (F32, or F16 as `*.fp16.safetensors` when `dtype` is 'F16'); one tensor in memory at a time.
 */
export function writeRandomCheckpointDir(
  outDir: string,
  configs: RandomCheckpointConfigs,
  seed: number,
  dtype: 'F32' | 'F16' = 'F32',
): void {
  writeRandomCheckpointDirStreaming(outDir, configs, { seed, dtype });
}

// ---------------------------------------------------------------------------------------------------------
// Streaming writer, for checkpoints of any size: the SVD UNet alone is 1.5 G parameters (3 GB in F16), far
// too much to hold in memory at once. Every shape is known from a dry run, so
// the safetensors header is written first and then each tensor is generated, converted and written alone.

export type CheckpointComponent = keyof typeof COMPONENT_FILES;

/**
 * The tensors a diffusers checkpoint holds for these configs, per component: for the UNet the literal
 * build's requests (the exact single-token cross-attention shortcut skips to_q/to_k/norm2, but a real
 * checkpoint stores them), for the VAE the encoder (+ quant_conv) and temporal decoder, for the image
 * encoder the whole CLIP vision tower + projection. Names are unique, in request order.
 */
export function checkpointTensorLists(
  configs: Pick<RandomCheckpointConfigs, 'unet' | 'vae' | 'imageEncoder'>,
): Record<CheckpointComponent, WeightRequest[]> {
  const unet = defineUnetGraph(
    parseUnetConfig(configs.unet),
    dryWeights(),
    { dtype: 'float32', target: 'cpu' },
    { literalCrossAttention: true },
  );
  const unique = (rs: WeightRequest[]) => {
    const seen = new Set<string>();
    return rs.filter((r) => !seen.has(r.name) && seen.add(r.name));
  };
  return {
    unet: unique(unet.g.requests),
    vae: unique([...vaeEncoderWeights(configs.vae), ...vaeDecoderWeights(configs.vae)]),
    imageEncoder: unique(clipImageEncoderWeights(configs.imageEncoder)),
  };
}

/** Number of elements of a list of tensors. */
export function parameterCount(requests: readonly WeightRequest[]): number {
  return requests.reduce((a, r) => a + r.shape.reduce((x, y) => x * y, 1), 0);
}

export interface StreamProgress {
  file: string;
  /** Tensors written so far in this file, and the file's total. */
  tensors: number;
  totalTensors: number;
  bytes: number;
  totalBytes: number;
}

export interface StreamedFile {
  path: string;
  tensors: number;
  parameters: number;
  /** File size in bytes (header included). */
  bytes: number;
}

/** A per-tensor seed: mixes the file seed with the tensor's index so that tensors are independent streams. */
function tensorSeed(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.imul(h, 0x27d4eb2f) >>> 0;
}

/**
 * Writes a random safetensors file for `requests` one tensor at a time: the header first (every shape is
 * known), then each tensor's bytes, so memory stays at one tensor (plus its converted copy) whatever the
 * file size. Values follow `randomTensors` (norm scales ≈ 1, weights N(0, 1/fan_in), …), each tensor from
 * its own seeded stream. F16 bytes are written in the machine's byte order (little-endian on x86/arm).
 * Written to a temporary name and renamed, so a failure leaves no partial file.
 */
export function writeRandomSafetensorsStreaming(
  path: string,
  requests: readonly WeightRequest[],
  seed: number,
  dtype: 'F16' | 'F32' = 'F16',
  onProgress?: (p: StreamProgress) => void,
): StreamedFile {
  const size = dtype === 'F16' ? 2 : 4;
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const r of requests) {
    const bytes = r.shape.reduce((a, b) => a * b, 1) * size;
    header[r.name] = { dtype, shape: r.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header);
  // the header is padded with spaces so that the data starts 8-byte aligned (as the safetensors library does)
  const jsonBytes = Buffer.byteLength(json);
  const headerBytes = Buffer.from(json + ' '.repeat(Math.ceil(jsonBytes / 8) * 8 - jsonBytes), 'utf8');
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(headerBytes.length));
  const totalBytes = 8 + headerBytes.length + offset;

  writeFileAtomically(path, (fd) => {
    writeAll(fd, lengthBytes);
    writeAll(fd, headerBytes);
    let written = 8 + headerBytes.length;
    requests.forEach((r, i) => {
      const values = randomTensors([r], tensorSeed(seed, i), 'F32')[r.name].data as Float32Array;
      const data = dtype === 'F16' ? float32ToFloat16(values) : values;
      writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      written += data.byteLength;
      onProgress?.({ file: path, tensors: i + 1, totalTensors: requests.length, bytes: written, totalBytes });
    });
  });
  return { path, tensors: requests.length, parameters: offset / size, bytes: totalBytes };
}

/** writeSync in ≤ 1 GiB pieces until everything is written (writeSync may write less than asked). */

export interface StreamingCheckpointOptions {
  seed: number;
  /** Default 'F16' (files named `*.fp16.safetensors`, as the Hub's fp16 variant); 'F32' → `*.safetensors`. */
  dtype?: 'F16' | 'F32';
  /** Components whose weights are written (default all three); the configs are always written. */
  components?: CheckpointComponent[];
  /** model_index.json to write (default: the standard SVD pipeline index). */
  modelIndex?: Record<string, unknown>;
  onProgress?: (p: StreamProgress) => void;
}

export interface StreamedCheckpoint {
  dir: string;
  files: Partial<Record<CheckpointComponent, StreamedFile>>;
  parameters: number;
  bytes: number;
}

/**
 * Like `writeRandomCheckpointDir`, for checkpoints of any size: writes `<outDir>/` (configs, model_index.json
 * and one safetensors file per component holding everything `checkpointTensorLists` lists) with at most one
 * tensor in memory. Staged in a sibling directory and renamed into place at the end.
 *
 * @example
 *   writeRandomCheckpointDirStreaming('/tmp/svd-xt-random', readCheckpointConfigs('models/configs/svd-xt'), { seed: 1 });
 */
export function writeRandomCheckpointDirStreaming(
  outDir: string,
  configs: RandomCheckpointConfigs,
  options: StreamingCheckpointOptions,
): StreamedCheckpoint {
  const dtype = options.dtype ?? 'F16';
  const wanted = new Set<CheckpointComponent>(options.components ?? ['unet', 'vae', 'imageEncoder']);
  return writeDirectoryAtomically(outDir, (staging) => {
    const json = (rel: string, value: unknown) => {
      mkdirSync(join(staging, rel, '..'), { recursive: true });
      writeFileSync(join(staging, rel), `${JSON.stringify(value, null, 2)}\n`);
    };
    json('model_index.json', options.modelIndex ?? SVD_MODEL_INDEX);
    json('unet/config.json', configs.unet);
    json('vae/config.json', configs.vae);
    json('image_encoder/config.json', configs.imageEncoder);
    json('scheduler/scheduler_config.json', configs.scheduler);
    if (configs.featureExtractor) json('feature_extractor/preprocessor_config.json', configs.featureExtractor);
    const lists = checkpointTensorLists(configs);
    const suffix = dtype === 'F16' ? '.fp16.safetensors' : '.safetensors';
    const files: StreamedCheckpoint['files'] = {};
    let k = 0;
    for (const [component, [dir, stem]] of Object.entries(COMPONENT_FILES) as Array<
      [CheckpointComponent, readonly [string, string]]
    >) {
      const seed = options.seed + 1000 * k++;
      if (!wanted.has(component)) continue;
      const file = writeRandomSafetensorsStreaming(
        join(staging, dir, `${stem}${suffix}`),
        lists[component],
        seed,
        dtype,
        options.onProgress,
      );
      files[component] = { ...file, path: join(outDir, dir, `${stem}${suffix}`) };
    }
    const all = Object.values(files);
    return {
      dir: outDir,
      files,
      parameters: all.reduce((a, f) => a + f.parameters, 0),
      bytes: all.reduce((a, f) => a + f.bytes, 0),
    };
  });
}

const SVD_MODEL_INDEX = {
  _class_name: 'StableVideoDiffusionPipeline',
  feature_extractor: ['transformers', 'CLIPImageProcessor'],
  image_encoder: ['transformers', 'CLIPVisionModelWithProjection'],
  scheduler: ['diffusers', 'EulerDiscreteScheduler'],
  unet: ['diffusers', 'UNetSpatioTemporalConditionModel'],
  vae: ['diffusers', 'AutoencoderKLTemporalDecoder'],
};
