/**
 * Segmind's wire format, the one place it is written (docs/providers.md §1.2–1.4): the body each
 * image-to-video endpoint takes, with its documented ranges and defaults, and how our request maps onto
 * it and back. The hosted backend checks what it sends against these schemas; the server's Segmind
 * dialect (src/server/dialects/segmind.ts) parses what clients send with the same schemas.
 */
import { z } from 'zod';
import { CAMERA_PRESETS } from '../../camera/trajectory.js';
import { PIXVERSE_MOTION_MODES, PIXVERSE_QUALITIES, PIXVERSE_STYLES, type RemoteParams } from '../options.js';
import { defined, type EndpointSpec } from '../endpoint.js';
import { intRange, loose, looseBool, numRange, oneOf } from '../../request/fields.js';
import type { GenerationRequest, GenerationRequestInput, RESIZE_MODES } from '../../request/schema.js';

export const SEGMIND_SLUGS = ['svd', 'motionctrl-svd', 'pixverse-image2video'] as const;
export type SegmindSlug = (typeof SEGMIND_SLUGS)[number];

export interface SegmindEndpoint extends EndpointSpec {
  slug: SegmindSlug;
  /** How the endpoint takes the image: bare base64 is accepted, or only a URL. */
  image: 'url-or-base64' | 'url';
  build(
    req: GenerationRequest,
    remote: RemoteParams,
    seed: number,
    image: string,
    base64: boolean,
  ): Record<string, unknown>;
}

const imageField = z
  .string({ error: 'is required: an http(s) URL, a data: URI or base64 image data' })
  .min(1, { error: 'is required: an http(s) URL, a data: URI or base64 image data' });
/** Segmind seeds go up to 15 digits; −1 asks for a random one. */
const segmindSeed = loose(intRange(-1, 999_999_999_999_999));
const SEGMIND_RESIZE = [
  'maintain_aspect_ratio',
  'crop_to_16_9',
] as const satisfies readonly (typeof RESIZE_MODES)[number][];

/** `/v1/svd`'s body: motion 1–180 (narrower than SVD's 1–255), cond_aug 0–1, frames 14 or 25. */
export const svdBody = z.object({
  image: imageField,
  fps: loose(intRange(1, 60)).optional(),
  motion: loose(intRange(1, 180)).optional(),
  seed: segmindSeed.optional(),
  cond_aug: loose(numRange(0, 1)).optional(),
  frames: loose(oneOf([14, 25])).optional(),
  resize_method: oneOf(SEGMIND_RESIZE).optional(),
  base64: looseBool().optional(),
});

/** `/v1/svd` wire field → our field. */
export const SVD_FIELDS = {
  image: 'image',
  fps: 'fps',
  motion: 'motionBucketId',
  seed: 'seed',
  cond_aug: 'condAug',
  frames: 'frames',
  resize_method: 'resize',
} as const;

/** `/v1/motionctrl-svd`'s documented defaults for the fields it requires; MotionCtrl-SVD makes 14 frames (§5.5). */
export const MOTIONCTRL_DEFAULTS = {
  motion: 'CW',
  motion_bucket_id: 127,
  fps: 7,
  cond_aug: 0.02,
  seed: 985445,
  frames: 14,
} as const;

/** `/v1/motionctrl-svd`'s body: a camera preset plus SVD knobs with narrower ranges (motion bucket 127–255, fps 5–30). */
export const motionCtrlBody = z.object({
  input_image: imageField,
  motion: oneOf(CAMERA_PRESETS).optional(),
  motion_bucket_id: loose(intRange(127, 255)).optional(),
  fps: loose(intRange(5, 30)).optional(),
  cond_aug: loose(numRange(0, 1)).optional(),
  seed: segmindSeed.optional(),
  decoding_t: loose(intRange(1, 128)).optional(),
  maintain_aspect_ratio: looseBool().optional(),
  motion_speed: loose(numRange(0, 10)).optional(),
  base64: looseBool().optional(),
});

/** `/v1/motionctrl-svd` wire field → our field. */
export const MOTIONCTRL_FIELDS = {
  input_image: 'image',
  motion: 'camera',
  motion_bucket_id: 'motionBucketId',
  fps: 'fps',
  cond_aug: 'condAug',
  seed: 'seed',
  decoding_t: 'decodeChunkSize',
  maintain_aspect_ratio: 'resize',
  motion_speed: 'motionSpeed',
} as const;

/** Seeds wider than ours (Segmind allows up to 999999999999999) are folded into 0..2^32-1; -1 means random. */
export function foldSeed(seed: number | undefined): number | undefined {
  if (seed === undefined || seed === -1) return undefined;
  return seed >= 0 && seed <= 0xffffffff ? seed : ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32;
}

/** Our request fields from a parsed `/v1/svd` body (the image is read by the caller). */
export function requestFromSvdBody(w: z.output<typeof svdBody>): Omit<GenerationRequestInput, 'image'> {
  return {
    fps: w.fps,
    motionBucketId: w.motion,
    seed: foldSeed(w.seed),
    condAug: w.cond_aug,
    frames: w.frames,
    resize: w.resize_method,
  };
}

/**
 * Our request fields from a parsed `/v1/motionctrl-svd` body, its documented defaults filled in: `motion` is our
 * `camera` preset and `motion_speed` our `motionSpeed` (docs/camera-motion.md).
 */
export function requestFromMotionCtrlBody(w: z.output<typeof motionCtrlBody>): Omit<GenerationRequestInput, 'image'> {
  return {
    frames: MOTIONCTRL_DEFAULTS.frames,
    fps: w.fps,
    motionBucketId: w.motion_bucket_id,
    condAug: w.cond_aug,
    seed: w.seed === undefined ? MOTIONCTRL_DEFAULTS.seed : foldSeed(w.seed),
    decodeChunkSize: w.decoding_t,
    resize: w.maintain_aspect_ratio === false ? 'crop_to_16_9' : 'maintain_aspect_ratio',
    camera: w.motion ?? MOTIONCTRL_DEFAULTS.motion,
    motionSpeed: w.motion_speed,
  };
}

/** `POST /v1/svd`. */
export const segmindSvd: SegmindEndpoint = {
  provider: 'segmind',
  id: 'svd',
  slug: 'svd',
  image: 'url-or-base64',
  uses: ['fps', 'motionBucketId', 'seed', 'condAug', 'frames', 'resize'],
  usesRemote: [],
  schema: svdBody,
  fieldOf: SVD_FIELDS,
  build: (req, _remote, seed, image, base64) =>
    defined({
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

/** `POST /v1/motionctrl-svd`: required fields fall back to the documented defaults. */
export const segmindMotionCtrl: SegmindEndpoint = {
  provider: 'segmind',
  id: 'motionctrl-svd',
  slug: 'motionctrl-svd',
  image: 'url-or-base64',
  uses: ['fps', 'motionBucketId', 'seed', 'condAug', 'decodeChunkSize', 'resize', 'frames', 'camera', 'motionSpeed'],
  usesRemote: [],
  fixedFrames: [MOTIONCTRL_DEFAULTS.frames],
  schema: motionCtrlBody,
  fieldOf: MOTIONCTRL_FIELDS,
  build: (req, _remote, seed, image, base64) =>
    defined({
      input_image: image,
      // a trajectory file or inline poses cannot be sent: the wire check names `camera` and the presets
      motion: req.camera ?? MOTIONCTRL_DEFAULTS.motion,
      motion_bucket_id: req.motionBucketId ?? MOTIONCTRL_DEFAULTS.motion_bucket_id,
      fps: req.fps ?? MOTIONCTRL_DEFAULTS.fps,
      cond_aug: req.condAug ?? MOTIONCTRL_DEFAULTS.cond_aug,
      seed,
      decoding_t: req.decodeChunkSize,
      // MotionCtrl's choice is "keep original spatial ratio" or "center crop to 576x1024" (docs/providers.md §1.3).
      maintain_aspect_ratio:
        req.resize === undefined
          ? undefined
          : req.resize === 'maintain_aspect_ratio'
            ? true
            : req.resize === 'crop_to_16_9'
              ? false
              : (req.resize as unknown as boolean),
      motion_speed: req.motionSpeed,
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
  schema: z
    .object({
      image_url: z.string().regex(/^https?:\/\//i, { error: 'must be an http(s) URL' }),
      prompt: z
        .string({ error: 'is required (a prompt describing the animation)' })
        .max(2048, { error: 'must be at most 2048 characters' }),
      negative_prompt: z.string().max(2048, { error: 'must be at most 2048 characters' }).optional(),
      duration: loose(oneOf([5, 8])),
      quality: oneOf(PIXVERSE_QUALITIES),
      motion_mode: oneOf(PIXVERSE_MOTION_MODES),
      style: oneOf(PIXVERSE_STYLES).optional(),
      seed: loose(intRange(0, 2_147_483_647)).optional(),
    })
    .superRefine((b, ctx) => {
      if (b.motion_mode === 'fast' && b.duration !== 5)
        ctx.addIssue({ code: 'custom', path: ['motion_mode'], message: 'fast is only available with duration 5' });
      if (b.quality === '1080p' && b.duration !== 5)
        ctx.addIssue({ code: 'custom', path: ['duration'], message: 'must be 5 with quality 1080p' });
      if (b.quality === '1080p' && b.motion_mode === 'fast')
        ctx.addIssue({ code: 'custom', path: ['motion_mode'], message: 'fast is not available with quality 1080p' });
    }),
  fieldOf: {
    image_url: 'image',
    prompt: 'remote.prompt',
    negative_prompt: 'remote.negativePrompt',
    duration: 'remote.duration',
    quality: 'remote.quality',
    motion_mode: 'remote.motionMode',
    style: 'remote.style',
    seed: 'seed',
  },
  build: (req, remote, seed, image) =>
    defined({
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
