/**
 * fal's SVD endpoints (docs/providers.md §2.6): the input each one takes and how our request maps
 * onto it. `steps` is sent only when the caller set it, because our default (25) is above fast-svd-lcm's
 * limit (20) and each endpoint has its own default.
 */
import { z } from 'zod';
import type { GenerationRequest, GenerationRequestInput } from '../../request/schema.js';
import type { RemoteParams } from '../options.js';
import { defined, intIn, numIn, type EndpointSpec } from '../endpoint.js';

export const FAL_MODELS = ['fal-ai/stable-video', 'fal-ai/fast-svd-lcm', 'fal-ai/svd'] as const;
export type FalModel = (typeof FAL_MODELS)[number];

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

const url = z.string().min(1, { error: 'is required' });
const seed = z.number().int().min(0, { error: 'must be 0 or more' }).optional();

/** "High Quality Stable Video Diffusion": SVD 1.1 (25 frames), fps default 25. */
export const falStableVideo: FalEndpoint = {
  provider: 'fal',
  id: 'fal-ai/stable-video',
  modelId: 'fal-ai/stable-video',
  uses: ['motionBucketId', 'condAug', 'fps', 'seed', 'frames'],
  usesRemote: [],
  fixedFrames: [25],
  schema: z.object({
    image_url: url,
    motion_bucket_id: intIn(1, 255).optional(),
    cond_aug: numIn(0, 10).optional(),
    fps: z.number().int().min(1, { error: 'must be at least 1' }).optional(),
    seed,
  }),
  fieldOf: { image_url: 'image', motion_bucket_id: 'motionBucketId', cond_aug: 'condAug', fps: 'fps', seed: 'seed' },
  build: ({ req, seed, image }) => defined({ image_url: image, motion_bucket_id: req.motionBucketId, cond_aug: req.condAug, fps: req.fps, seed }),
};

/** "Stable Video Diffusion Turbo": SVD 1.1 + LCM, 25 frames, steps 1–20 (default 4), fps default 10. */
export const falFastSvdLcm: FalEndpoint = {
  provider: 'fal',
  id: 'fal-ai/fast-svd-lcm',
  modelId: 'fal-ai/fast-svd-lcm',
  uses: ['motionBucketId', 'condAug', 'fps', 'seed', 'steps', 'frames'],
  usesRemote: [],
  fixedFrames: [25],
  schema: z.object({
    image_url: url,
    motion_bucket_id: intIn(1, 255).optional(),
    cond_aug: numIn(0, 10).optional(),
    steps: intIn(1, 20).optional(),
    fps: z.number().int().min(1, { error: 'must be at least 1' }).optional(),
    seed,
  }),
  fieldOf: { image_url: 'image', motion_bucket_id: 'motionBucketId', cond_aug: 'condAug', steps: 'steps', fps: 'fps', seed: 'seed' },
  build: ({ req, input, seed, image }) => defined({
    image_url: image, motion_bucket_id: req.motionBucketId, cond_aug: req.condAug, steps: input.steps, fps: req.fps, seed,
  }),
};

/**
 * `fal-ai/svd` (marked Private on fal, §0): motion mask and per-frame depth maps. The frame count follows
 * the number of depth maps; fps is not in its documented input.
 */
export const falSvd: FalEndpoint = {
  provider: 'fal',
  id: 'fal-ai/svd',
  modelId: 'fal-ai/svd',
  uses: ['motionBucketId', 'condAug', 'seed', 'steps', 'mask'],
  usesRemote: ['maskImage', 'controlMaps'],
  schema: z.object({
    image_url: url,
    mask_image_url: z.string().optional(),
    control_maps_data_url: z.string().optional(),
    motion_bucket_id: intIn(1, 255).optional(),
    cond_aug: numIn(0, 10).optional(),
    steps: intIn(1, 100).optional(),
    seed,
  }),
  fieldOf: {
    image_url: 'image', mask_image_url: 'mask', control_maps_data_url: 'remote.controlMaps',
    motion_bucket_id: 'motionBucketId', cond_aug: 'condAug', steps: 'steps', seed: 'seed',
  },
  build: ({ req, input, seed, image, mask, controlMaps }) => defined({
    image_url: image, mask_image_url: mask, control_maps_data_url: controlMaps,
    motion_bucket_id: req.motionBucketId, cond_aug: req.condAug, steps: input.steps, seed,
  }),
};

export const FAL_ENDPOINTS: Record<FalModel, FalEndpoint> = {
  'fal-ai/stable-video': falStableVideo,
  'fal-ai/fast-svd-lcm': falFastSvdLcm,
  'fal-ai/svd': falSvd,
};
