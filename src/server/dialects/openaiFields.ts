/**
 * What OpenAI-style video bodies share: the error shape `{error: {message, type, param, code}}` and the
 * SVD extension fields (`num_frames`, `motion_bucket_id`, ...) that SVD-aware clients send next to the
 * standard ones — the same names our own OpenAI backend sends (backends/openai/videos.ts).
 */
import { z } from 'zod';
import { sendJson } from '../http.js';
import type { ErrorWriter } from '../router.js';
import { looseNumber } from '../http.js';

const TYPES: Record<number, string> = { 401: 'invalid_request_error', 404: 'invalid_request_error', 413: 'invalid_request_error', 429: 'rate_limit_error', 499: 'invalid_request_error' };
const CODES: Record<number, string> = { 401: 'invalid_api_key', 429: 'rate_limit_exceeded', 413: 'request_too_large' };

export const openaiError: ErrorWriter = (ctx, err) => {
  const type = TYPES[err.status] ?? (err.status >= 500 ? 'server_error' : 'invalid_request_error');
  sendJson(ctx.res, err.status, {
    error: { message: err.message, type, param: err.issues[0]?.field ?? null, code: CODES[err.status] ?? err.code },
  }, err.headers);
};

const num = z.preprocess(looseNumber, z.number({ error: 'must be a number' })).optional();

/** SVD knobs beyond the OpenAI fields; ranges are checked by our request schema, named back to these. */
export const svdExtensionFields = {
  num_frames: num,
  fps: num,
  motion_bucket_id: num,
  cond_aug: num,
  seed: num,
  num_inference_steps: num,
  min_guidance_scale: num,
  max_guidance_scale: num,
  decode_chunk_size: num,
};

export type SvdExtensions = { [K in keyof typeof svdExtensionFields]?: number };

/** Our request fields from the extension fields. */
export function fromExtensions(w: SvdExtensions): Record<string, unknown> {
  return {
    frames: w.num_frames, fps: w.fps, motionBucketId: w.motion_bucket_id, condAug: w.cond_aug,
    seed: w.seed === -1 ? undefined : w.seed, steps: w.num_inference_steps, minGuidance: w.min_guidance_scale,
    maxGuidance: w.max_guidance_scale, decodeChunkSize: w.decode_chunk_size,
  };
}

export const EXTENSION_WIRE_NAMES: Record<string, string> = {
  frames: 'num_frames', fps: 'fps', motionBucketId: 'motion_bucket_id', condAug: 'cond_aug', seed: 'seed',
  steps: 'num_inference_steps', minGuidance: 'min_guidance_scale', maxGuidance: 'max_guidance_scale', decodeChunkSize: 'decode_chunk_size',
};
