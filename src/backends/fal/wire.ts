/**
 * fal's wire format for its SVD endpoints, the one place it is written (docs/providers.md §2.6): the input
 * each model takes, with its ranges, and how our request maps onto it. The hosted backend checks what it
 * sends against these schemas; the server's fal dialect (src/server/dialects/falModels.ts) parses what
 * clients send with the same ones. `steps` is sent only when the caller set it, because each endpoint has
 * its own default and fast-svd-lcm's limit (20) is below SVD's usual 25.
 */
import { z } from 'zod';
import { intRange, loose, numRange } from '../../request/fields.js';
import { MAX_SEED, type GenerationRequest, type GenerationRequestInput } from '../../request/schema.js';
import type { RemoteParams } from '../options.js';
import { defined, type EndpointSpec } from '../endpoint.js';

/** The models our hosted backend calls. */
export const FAL_MODELS = ['fal-ai/stable-video', 'fal-ai/fast-svd-lcm', 'fal-ai/svd'] as const;
export type FalModel = (typeof FAL_MODELS)[number];

const common = {
  image_url: z
    .string({ error: 'is required: an http(s) URL, a data: URI or base64 image data' })
    .min(1, { error: 'is required: an http(s) URL, a data: URI or base64 image data' }),
  motion_bucket_id: loose(intRange(1, 255)).optional(),
  cond_aug: loose(numRange(0, 10)).optional(),
  fps: loose(intRange(1, 60)).optional(),
  seed: loose(intRange(0, MAX_SEED)).optional(),
};

/**
 * The input of each SVD model; `fal-ai/fast-svd` (probably retired) is answered by our server only.
 * `fal-ai/svd` (marked Private on fal) adds a motion mask and per-frame depth maps; its frame count
 * follows the number of depth maps.
 */
export const FAL_INPUTS = {
  'fal-ai/stable-video': z.object(common),
  'fal-ai/fast-svd-lcm': z.object({ ...common, steps: loose(intRange(1, 20)).optional() }),
  'fal-ai/fast-svd': z.object({ ...common, steps: loose(intRange(1, 100)).optional() }),
  'fal-ai/svd': z.object({
    ...common,
    steps: loose(intRange(1, 100)).optional(),
    mask_image_url: z.string({ error: 'must be a URL or a data: URI' }).nullish(),
    control_maps_data_url: z.string({ error: 'must be a URL or a data: URI' }).nullish(),
  }),
} as const;
export type FalInputModel = keyof typeof FAL_INPUTS;
export type FalInput = z.output<(typeof FAL_INPUTS)['fal-ai/svd']>;

/** fal input field → our field. */
export const FAL_FIELDS = {
  image_url: 'image',
  motion_bucket_id: 'motionBucketId',
  cond_aug: 'condAug',
  fps: 'fps',
  seed: 'seed',
  steps: 'steps',
  mask_image_url: 'mask',
  control_maps_data_url: 'remote.controlMaps',
} as const;

/** Our request fields from a parsed fal input (the image is read by the caller). */
export function requestFromFalInput(w: FalInput): Omit<GenerationRequestInput, 'image'> {
  return { motionBucketId: w.motion_bucket_id, condAug: w.cond_aug, fps: w.fps, seed: w.seed, steps: w.steps };
}

export interface FalInputs {
  req: GenerationRequest;
  input: GenerationRequestInput;
  remote: RemoteParams;
  seed: number;
  /** URL or data: URI of the image, mask and depth-map archive. */
  image: string;
  mask?: string;
  controlMaps?: string;
}

export interface FalEndpoint extends EndpointSpec {
  modelId: FalModel;
  build(inputs: FalInputs): Record<string, unknown>;
}

/** "High Quality Stable Video Diffusion": SVD 1.1 (25 frames), fps default 25, no steps. */
export const falStableVideo: FalEndpoint = {
  provider: 'fal',
  id: 'fal-ai/stable-video',
  modelId: 'fal-ai/stable-video',
  uses: ['motionBucketId', 'condAug', 'fps', 'seed', 'frames'],
  usesRemote: [],
  fixedFrames: [25],
  schema: FAL_INPUTS['fal-ai/stable-video'],
  fieldOf: FAL_FIELDS,
  build: ({ req, seed, image }) =>
    defined({ image_url: image, motion_bucket_id: req.motionBucketId, cond_aug: req.condAug, fps: req.fps, seed }),
};

/** "Stable Video Diffusion Turbo": SVD 1.1 + LCM, 25 frames, steps 1–20 (default 4), fps default 10. */
export const falFastSvdLcm: FalEndpoint = {
  provider: 'fal',
  id: 'fal-ai/fast-svd-lcm',
  modelId: 'fal-ai/fast-svd-lcm',
  uses: ['motionBucketId', 'condAug', 'fps', 'seed', 'steps', 'frames'],
  usesRemote: [],
  fixedFrames: [25],
  schema: FAL_INPUTS['fal-ai/fast-svd-lcm'],
  fieldOf: FAL_FIELDS,
  build: ({ req, input, seed, image }) =>
    defined({
      image_url: image,
      motion_bucket_id: req.motionBucketId,
      cond_aug: req.condAug,
      steps: input.steps,
      fps: req.fps,
      seed,
    }),
};

/** `fal-ai/svd`: motion mask and per-frame depth maps; fps is not in its documented input, so it is not sent. */
export const falSvd: FalEndpoint = {
  provider: 'fal',
  id: 'fal-ai/svd',
  modelId: 'fal-ai/svd',
  uses: ['motionBucketId', 'condAug', 'seed', 'steps', 'mask'],
  usesRemote: ['maskImage', 'controlMaps'],
  schema: FAL_INPUTS['fal-ai/svd'],
  fieldOf: FAL_FIELDS,
  build: ({ req, input, seed, image, mask, controlMaps }) =>
    defined({
      image_url: image,
      mask_image_url: mask,
      control_maps_data_url: controlMaps,
      motion_bucket_id: req.motionBucketId,
      cond_aug: req.condAug,
      steps: input.steps,
      seed,
    }),
};

export const FAL_ENDPOINTS: Record<FalModel, FalEndpoint> = {
  'fal-ai/stable-video': falStableVideo,
  'fal-ai/fast-svd-lcm': falFastSvdLcm,
  'fal-ai/svd': falSvd,
};
