/**
 * Segmind's three image-to-video endpoints as documented (docs/providers.md §1.2–1.4): the body
 * each one takes, with its ranges, and how our request maps onto it.
 */
import { z } from 'zod';
import { CAMERA_MOTIONS, PIXVERSE_MOTION_MODES, PIXVERSE_QUALITIES, PIXVERSE_STYLES, type RemoteParams } from '../options.js';
import { defined, intIn, numIn, oneOf, type EndpointSpec } from '../endpoint.js';
import type { GenerationRequest } from '../../request/schema.js';

export const SEGMIND_SLUGS = ['svd', 'motionctrl-svd', 'pixverse-image2video'] as const;
export type SegmindSlug = (typeof SEGMIND_SLUGS)[number];

export interface SegmindEndpoint extends EndpointSpec {
  slug: SegmindSlug;
  /** How the endpoint takes the image: bare base64 is accepted, or only a URL. */
  image: 'url-or-base64' | 'url';
  build(req: GenerationRequest, remote: RemoteParams, seed: number, image: string, base64: boolean): Record<string, unknown>;
}

const imageField = z.string({ error: 'is required' }).min(1, { error: 'is required' });

/** `POST /v1/svd`: motion 1–180 (narrower than SVD's 1–255), cond_aug 0–1, frames 14 or 25. */
export const segmindSvd: SegmindEndpoint = {
  provider: 'segmind',
  id: 'svd',
  slug: 'svd',
  image: 'url-or-base64',
  uses: ['fps', 'motionBucketId', 'seed', 'condAug', 'frames', 'resize'],
  usesRemote: [],
  schema: z.object({
    image: imageField,
    fps: intIn(1, 60).optional(),
    motion: intIn(1, 180).optional(),
    seed: intIn(-1, 999_999_999_999_999).optional(),
    cond_aug: numIn(0, 1).optional(),
    frames: oneOf([14, 25]).optional(),
    resize_method: oneOf(['maintain_aspect_ratio', 'crop_to_16_9']).optional(),
    base64: z.boolean(),
  }),
  fieldOf: { image: 'image', fps: 'fps', motion: 'motionBucketId', seed: 'seed', cond_aug: 'condAug', frames: 'frames', resize_method: 'resize' },
  build: (req, _remote, seed, image, base64) => defined({
    image,
    fps: req.fps,
    motion: req.motionBucketId,
    seed,
    cond_aug: req.condAug,
    frames: req.frames,
    resize_method: req.resize,
    base64,
  }),
};

/**
 * `POST /v1/motionctrl-svd`: a camera preset plus SVD knobs with narrower ranges (motion bucket 127–255,
 * fps 5–30). Required fields fall back to the documented defaults. MotionCtrl-SVD makes 14 frames (§5.5).
 */
export const segmindMotionCtrl: SegmindEndpoint = {
  provider: 'segmind',
  id: 'motionctrl-svd',
  slug: 'motionctrl-svd',
  image: 'url-or-base64',
  uses: ['fps', 'motionBucketId', 'seed', 'condAug', 'decodeChunkSize', 'resize', 'frames'],
  usesRemote: ['cameraMotion', 'motionSpeed'],
  fixedFrames: [14],
  schema: z.object({
    input_image: imageField,
    motion: oneOf(CAMERA_MOTIONS),
    motion_bucket_id: intIn(127, 255),
    fps: intIn(5, 30),
    cond_aug: numIn(0, 1),
    seed: z.number().int().optional(),
    decoding_t: z.number().int().min(1, { error: 'must be at least 1' }).optional(),
    maintain_aspect_ratio: z.boolean({ error: 'must be maintain_aspect_ratio or crop_to_16_9' }).optional(),
    motion_speed: numIn(0, 10).optional(),
    base64: z.boolean(),
  }),
  fieldOf: {
    input_image: 'image', motion: 'remote.cameraMotion', motion_bucket_id: 'motionBucketId', fps: 'fps', cond_aug: 'condAug',
    seed: 'seed', decoding_t: 'decodeChunkSize', maintain_aspect_ratio: 'resize', motion_speed: 'remote.motionSpeed',
  },
  build: (req, remote, seed, image, base64) => defined({
    input_image: image,
    motion: remote.cameraMotion ?? 'CW',
    motion_bucket_id: req.motionBucketId ?? 127,
    fps: req.fps ?? 7,
    cond_aug: req.condAug ?? 0.02,
    seed,
    decoding_t: req.decodeChunkSize,
    // MotionCtrl's choice is "keep original spatial ratio" or "center crop to 576x1024" (docs/providers.md §1.3).
    maintain_aspect_ratio: req.resize === undefined ? undefined : req.resize === 'maintain_aspect_ratio' ? true : req.resize === 'crop_to_16_9' ? false : (req.resize as unknown as boolean),
    motion_speed: remote.motionSpeed,
    base64,
  }),
};

/**
 * `POST /v1/pixverse-image2video`: a text-guided model, not SVD; the image must be a URL. Documented rules:
 * fast motion only at 5 s, 1080p only at 5 s and not fast. It answers like svd (video bytes).
 */
export const segmindPixverse: SegmindEndpoint = {
  provider: 'segmind',
  id: 'pixverse-image2video',
  slug: 'pixverse-image2video',
  image: 'url',
  uses: ['seed', 'duration'],
  usesRemote: ['prompt', 'negativePrompt', 'duration', 'quality', 'motionMode', 'style'],
  schema: z.object({
    image_url: z.string().regex(/^https?:\/\//i, { error: 'must be an http(s) URL' }),
    prompt: z.string({ error: 'is required (a prompt describing the animation)' }).max(2048, { error: 'must be at most 2048 characters' }),
    negative_prompt: z.string().max(2048, { error: 'must be at most 2048 characters' }).optional(),
    duration: oneOf([5, 8]),
    quality: oneOf(PIXVERSE_QUALITIES),
    motion_mode: oneOf(PIXVERSE_MOTION_MODES),
    style: oneOf(PIXVERSE_STYLES).optional(),
    seed: intIn(0, 2_147_483_647).optional(),
  }).superRefine((b, ctx) => {
    if (b.motion_mode === 'fast' && b.duration !== 5) ctx.addIssue({ code: 'custom', path: ['motion_mode'], message: 'fast is only available with duration 5' });
    if (b.quality === '1080p' && b.duration !== 5) ctx.addIssue({ code: 'custom', path: ['duration'], message: 'must be 5 with quality 1080p' });
    if (b.quality === '1080p' && b.motion_mode === 'fast') ctx.addIssue({ code: 'custom', path: ['motion_mode'], message: 'fast is not available with quality 1080p' });
  }),
  fieldOf: {
    image_url: 'image', prompt: 'remote.prompt', negative_prompt: 'remote.negativePrompt', duration: 'remote.duration',
    quality: 'remote.quality', motion_mode: 'remote.motionMode', style: 'remote.style', seed: 'seed',
  },
  build: (req, remote, seed, image) => defined({
    image_url: image,
    prompt: remote.prompt,
    negative_prompt: remote.negativePrompt,
    duration: remote.duration ?? req.duration ?? 5,
    quality: remote.quality ?? '540p',
    motion_mode: remote.motionMode ?? 'normal',
    style: remote.style,
    seed,
  }),
};

export const SEGMIND_ENDPOINTS: Record<SegmindSlug, SegmindEndpoint> = {
  svd: segmindSvd,
  'motionctrl-svd': segmindMotionCtrl,
  'pixverse-image2video': segmindPixverse,
};
