/**
 * The OpenAI-style wire formats, the one place they are written: OpenAI's `POST /videos` create body
 * (docs/providers.md §3.2), the community `POST /video/generations` body that VoltageGPU uses (§3.1), and
 * the SVD extension fields (`num_frames`, `motion_bucket_id`, ...) that SVD-serving compatible servers take
 * next to the standard ones. The hosted backends (videos.ts, generations.ts) build and check their bodies
 * with these schemas; the server's openai and voltage dialects parse what clients send with the same ones.
 */
import { z } from 'zod';
import { intRange, loose, nonEmpty } from '../../request/fields.js';
import type { GenerationRequestInput } from '../../request/schema.js';

/** SVD knobs as extension fields: our field → wire field. */
export const SVD_EXTENSION_FIELDS = {
  frames: 'num_frames',
  fps: 'fps',
  motionBucketId: 'motion_bucket_id',
  condAug: 'cond_aug',
  seed: 'seed',
  steps: 'num_inference_steps',
  minGuidance: 'min_guidance_scale',
  maxGuidance: 'max_guidance_scale',
  decodeChunkSize: 'decode_chunk_size',
} as const;

const number = loose(z.number({ error: 'must be a number' })).optional();

/** The extension fields of a body; their ranges are our request schema's, named back to these wire names. */
export const svdExtensionFields = {
  num_frames: number,
  fps: number,
  motion_bucket_id: number,
  cond_aug: number,
  seed: number,
  num_inference_steps: number,
  min_guidance_scale: number,
  max_guidance_scale: number,
  decode_chunk_size: number,
};

export type SvdExtensions = { [K in keyof typeof svdExtensionFields]?: number };

/** Our request fields from the extension fields (seed −1: random). */
export function requestFromExtensions(w: SvdExtensions): Omit<GenerationRequestInput, 'image'> {
  return {
    frames: w.num_frames,
    fps: w.fps,
    motionBucketId: w.motion_bucket_id,
    condAug: w.cond_aug,
    seed: w.seed === -1 ? undefined : w.seed,
    steps: w.num_inference_steps,
    minGuidance: w.min_guidance_scale,
    maxGuidance: w.max_guidance_scale,
    decodeChunkSize: w.decode_chunk_size,
  };
}

const text = z.string({ error: 'must be a string' });

/** `POST /videos`: a prompt, the model, `seconds`, `size` (`WIDTHxHEIGHT`) and the image as `input_reference`. */
export const videoCreateBody = z.object({
  prompt: text.optional(),
  model: text.optional(),
  seconds: loose(
    z
      .number({ error: 'must be a number of seconds, e.g. "4"' })
      .positive({ error: 'must be a positive number of seconds' }),
  ).optional(),
  size: z
    .string()
    .regex(/^\d+x\d+$/, { error: 'must be WIDTHxHEIGHT, e.g. 1024x576 (multiples of 64)' })
    .optional(),
  input_reference: z.unknown().optional(),
  ...svdExtensionFields,
});

/** `POST /videos` field → our field (for errors). */
export const VIDEO_CREATE_FIELDS = {
  prompt: 'remote.prompt',
  seconds: 'remote.duration',
  size: 'width',
  model: 'remote.model',
} as const;

/** `POST /video/generations`: JSON with the model, a prompt, the image (`image` or `image_url`) and the size. */
export const videoGenerationBody = z.object({
  model: text.optional(),
  prompt: text.optional(),
  image: z.unknown().optional(),
  image_url: z.unknown().optional(),
  ...svdExtensionFields,
  width: number,
  height: number,
  response_format: z.enum(['url', 'b64_json'], { error: 'must be url or b64_json' }).optional(),
});

/** VoltageGPU's documented limits for SVD there: 14–25 frames, up to 1024 px a side (docs/providers.md §3.1). */
export const voltageGenerationBody = videoGenerationBody.extend({
  model: nonEmpty(),
  image: nonEmpty(),
  num_frames: intRange(14, 25).optional(),
  fps: intRange(1, 60).optional(),
  width: intRange(64, 1024).optional(),
  height: intRange(64, 1024).optional(),
  motion_bucket_id: intRange(1, 255).optional(),
});

/** `POST /video/generations` field → our field. */
export const VIDEO_GENERATION_FIELDS = {
  model: 'remote.model',
  image: 'image',
  prompt: 'remote.prompt',
  width: 'width',
  height: 'height',
  ...Object.fromEntries(Object.entries(SVD_EXTENSION_FIELDS).map(([ours, wire]) => [wire, ours])),
} as Record<string, string>;
