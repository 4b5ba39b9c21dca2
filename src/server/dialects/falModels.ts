/**
 * The fal SVD endpoints this server answers as (docs/providers.md §2.6), parsed with fal's wire schemas
 * (src/backends/fal/wire.ts). Fields a client leaves out take the local model's defaults, not the hosted
 * model's (fal-ai/fast-svd-lcm defaults to 4 steps because it is an LCM model; ours is not).
 */
import {
  FAL_FIELDS,
  FAL_INPUTS,
  requestFromFalInput,
  type FalInput,
  type FalInputModel,
} from '../../backends/fal/wire.js';
import { intRange, loose } from '../../request/fields.js';
import type { GenerationRequestInput } from '../../request/schema.js';
import { buildRequest, type Ctx } from '../context.js';
import { HttpError } from '../http.js';
import { imageFromClient } from '../imageInput.js';
import { parseWire, wireNamesOf } from './fields.js';

/** What this server takes per model: fal's inputs, except where our full sampler does more. */
const SERVED = {
  ...FAL_INPUTS,
  // fal's hosted stable-video takes no steps; ours runs the full sampler, so `steps` is honoured (README), not dropped
  'fal-ai/stable-video': FAL_INPUTS['fal-ai/stable-video'].extend({ steps: loose(intRange(1, 100)).optional() }),
};

/** Model aliases served (`fal-ai/<alias>`). */
export type FalAlias = FalInputModel extends `fal-ai/${infer A}` ? A : never;

export function isFalAlias(alias: string): alias is FalAlias {
  return Object.hasOwn(SERVED, `fal-ai/${alias}`);
}

/** Validates a fal input and reads its images; throws InvalidRequestError / HttpError named by fal field. */
export async function falRequest(
  ctx: Ctx,
  alias: FalAlias,
  input: Record<string, unknown>,
): Promise<GenerationRequestInput> {
  const w = parseWire(SERVED[`fal-ai/${alias}`], input) as FalInput;
  if (w.control_maps_data_url !== undefined && w.control_maps_data_url !== null) {
    const message = "is not supported by this server (per-frame depth maps need fal's hosted model)";
    const field = 'control_maps_data_url';
    throw new HttpError(422, 'unsupported_field', `${field}: ${message}`, [{ field, message }]);
  }
  const limits = { ...ctx.state.limits, ownUpload: (u: URL) => ctx.state.uploads.bytesForUrl(u) };
  const image = await imageFromClient(w.image_url, 'image_url', limits);
  // fal's motion mask (white stays still, black moves) is our `mask`; see docs/motion-controls.md.
  const hasMask = w.mask_image_url !== undefined && w.mask_image_url !== null && w.mask_image_url !== '';
  const mask = hasMask ? await imageFromClient(w.mask_image_url, 'mask_image_url', limits) : undefined;
  return buildRequest(ctx, { ...requestFromFalInput(w), image, mask }, wireNamesOf(FAL_FIELDS));
}
