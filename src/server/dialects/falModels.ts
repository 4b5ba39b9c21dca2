/**
 * The fal SVD endpoints this server answers as (docs/providers.md §2.6) and how each one's input maps
 * onto our request. Fields a client leaves out take the local model's defaults, not the hosted model's
 * (fal-ai/fast-svd-lcm defaults to 4 steps because it is an LCM model; ours is not).
 */
import { z } from 'zod';
import { MAX_SEED, type GenerationRequestInput } from '../../request/schema.js';
import { buildRequest, type Ctx } from '../context.js';
import { HttpError } from '../http.js';
import { imageFromClient } from '../imageInput.js';
import { parseWire, wireImage, wireInt, wireNumber } from './fields.js';

const common = {
  image_url: wireImage,
  motion_bucket_id: wireInt(1, 255).optional(),
  cond_aug: wireNumber(0, 10).optional(),
  fps: wireInt(1, 60).optional(),
  seed: wireInt(0, MAX_SEED).optional(),
};

/** Input schema per model alias (`fal-ai/<alias>`). */
export const FAL_INPUTS = {
  svd: z.object({ ...common, steps: wireInt(1, 100).optional(), mask_image_url: z.unknown().optional(), control_maps_data_url: z.unknown().optional() }),
  'stable-video': z.object(common),
  'fast-svd-lcm': z.object({ ...common, steps: wireInt(1, 20).optional() }),
  'fast-svd': z.object({ ...common, steps: wireInt(1, 100).optional() }),
} as const;

export type FalAlias = keyof typeof FAL_INPUTS;

export function isFalAlias(alias: string): alias is FalAlias {
  return Object.hasOwn(FAL_INPUTS, alias);
}

const WIRE_NAMES = { image: 'image_url', mask: 'mask_image_url', motionBucketId: 'motion_bucket_id', condAug: 'cond_aug', fps: 'fps', seed: 'seed', steps: 'steps' };

/** Validates a fal input and reads its image; throws InvalidRequestError / HttpError named by fal field. */
export async function falRequest(ctx: Ctx, alias: FalAlias, input: Record<string, unknown>): Promise<GenerationRequestInput> {
  const w = parseWire(FAL_INPUTS[alias], input) as z.output<(typeof FAL_INPUTS)['svd']>;
  if (w.control_maps_data_url !== undefined && w.control_maps_data_url !== null) {
    const message = "is not supported by this server (per-frame depth maps need fal's hosted model)";
    throw new HttpError(422, 'unsupported_field', `control_maps_data_url: ${message}`, [{ field: 'control_maps_data_url', message }]);
  }
  const limits = { ...ctx.state.limits, ownUpload: (u: URL) => ctx.state.uploads.bytesForUrl(u) };
  const image = await imageFromClient(w.image_url, 'image_url', limits);
  // fal's motion mask (white stays still, black moves) is our `mask`; see docs/motion-controls.md.
  const hasMask = w.mask_image_url !== undefined && w.mask_image_url !== null && w.mask_image_url !== '';
  const mask = hasMask ? await imageFromClient(w.mask_image_url, 'mask_image_url', limits) : undefined;
  return buildRequest(ctx, {
    image, mask, motionBucketId: w.motion_bucket_id, condAug: w.cond_aug, fps: w.fps, seed: w.seed, steps: w.steps,
  }, WIRE_NAMES);
}
