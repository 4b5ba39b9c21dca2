/**
 * The image side of the pipeline (diffusers `_encode_image` and `_encode_vae_image`): the two
 * preprocessing branches, the CLIP image embedding and the VAE latent of the noise-augmented image.
 */
import { clipPreprocess } from '../encoders/clipPreprocess.js';
import { loadImage, prepareImage, type PreparedImage, type RgbImage } from '../image/index.js';
import type { ModelManifest } from '../models/manifest.js';
import type { ResolvedRequest } from '../request/schema.js';
import type { DebugDump } from './debug.js';
import type { LatentShape } from './latents.js';
import type { ModelRunner } from './session.js';

export interface ConditioningImage {
  /** Size of the VAE branch, which is the size of the video. */
  width: number;
  height: number;
  /** Side S of the CLIP branch. */
  clipSize: number;
  clipPixels: Float32Array /* [1, 3, S, S], normalised with the encoder's mean and std */;
  vaePixels: Float32Array /* [1, 3, H, W] in [−1, 1] */;
  /** The VAE branch as RGB24 [H, W, 3] (what a motion mask's still region shows). */
  rgb: Uint8Array;
  /** Size of the image as loaded, before the resize policy (a motion mask is cropped like it). */
  source: { width: number; height: number };
}

/** Loads the image once, then builds the CLIP branch (S², antialiased) and the VAE branch (W×H in [−1, 1]). */
export async function preprocessImage(
  req: Pick<ResolvedRequest, 'image' | 'width' | 'height' | 'resize'>,
  manifest: ModelManifest,
  signal?: AbortSignal,
): Promise<ConditioningImage> {
  const image = await loadImage(req.image, { signal });
  const prepared = await prepareImage(image, { width: req.width, height: req.height, resize: req.resize });
  return conditioningImage(prepared, image, manifest);
}

/** A chained clip's conditioning image: a frame of the previous clip, at the video's size (docs/motion-controls.md §2). */
export async function frameConditioningImage(
  frame: Uint8Array,
  width: number,
  height: number,
  manifest: ModelManifest,
): Promise<ConditioningImage> {
  const image = { rgb: frame, width, height };
  return conditioningImage(await prepareImage(image, { width, height, resize: 'stretch' }), image, manifest);
}

function conditioningImage(prepared: PreparedImage, source: RgbImage, manifest: ModelManifest): ConditioningImage {
  const enc = manifest.imageEncoder;
  const { rgb, width, height } = prepared.clipSource;
  const clipPixels = clipPreprocess(rgb, width, height, {
    size: enc.imageSize,
    mean: enc.imageMean,
    std: enc.imageStd,
  });
  return {
    width: prepared.width,
    height: prepared.height,
    clipSize: enc.imageSize,
    clipPixels,
    vaePixels: prepared.vaeInput,
    rgb: prepared.vaeImage.rgb,
    source: { width: source.width, height: source.height },
  };
}

export interface ImageEncoding {
  embeds: Float32Array /* [1, D] CLIP image embedding */;
  imageLatent: Float32Array /* [1, C, h, w] VAE posterior mean, not scaled by the scaling factor */;
}

/**
 * CLIP image embedding, and the VAE posterior mean of the image with `condAug · augNoise` added
 * (diffusers adds the augmentation noise before encoding and does not scale this latent).
 */
export async function encodeImage(
  runners: { imageEncoder: ModelRunner; vaeEncoder: ModelRunner },
  image: ConditioningImage,
  condAug: number,
  augNoise: Float32Array /* [1, 3, H, W] */,
  latent: LatentShape,
  dump?: DebugDump,
): Promise<ImageEncoding> {
  const { imageEncoder, vaeEncoder } = runners;
  const S = image.clipSize;
  await dump?.('clip_pixel_values', image.clipPixels, [1, 3, S, S]);
  const pixelValues = imageEncoder.tensor('pixel_values', image.clipPixels, [1, 3, S, S]);
  const embeds = (await imageEncoder.run({ pixel_values: pixelValues })).data;
  await dump?.('image_embeddings', embeds, [1, 1, embeds.length]);
  const { vaePixels, width: W, height: H } = image;
  const augmented = new Float32Array(vaePixels.length);
  for (let i = 0; i < augmented.length; i++) augmented[i] = vaePixels[i] + condAug * augNoise[i];
  const encoded = await vaeEncoder.run({ sample: vaeEncoder.tensor('sample', augmented, [1, 3, H, W]) });
  await dump?.('image_latents', encoded.data, [1, latent.channels, latent.height, latent.width]);
  return { embeds, imageLatent: encoded.data };
}
