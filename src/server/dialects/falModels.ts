/**
 * The fal SVD endpoints this server answers as (docs/providers.md §2.6), parsed with fal's wire schemas
 * (src/backends/fal/wire.ts). Fields a client leaves out take the local model's defaults, not the hosted
 * model's (fal-ai/fast-svd-lcm defaults to 4 steps because it is an LCM model; ours is not).
 */
import { FAL_FIELDS, FAL_INPUTS, requestFromFalInput, type FalInput, type FalInputModel } from '../../backends/fal/wire.js';
import type { GenerationRequestInput } from '../../request/schema.js';
import { buildRequest, type Ctx } from '../context.js';
import { HttpError } from '../http.js';
import { imageFromClient } from '../imageInput.js';
import { parseWire, wireNamesOf } from './fields.js';

/** Model aliases served (`fal-ai/<alias>`). */
export type FalAlias = FalInputModel extends `fal-ai/${infer A}` ? A : never;

export function isFalAlias(alias: string): alias is FalAlias {
  return Object.hasOwn(FAL_INPUTS, `fal-ai/${alias}`);
}

/** Validates a fal input and reads its image; throws InvalidRequestError / HttpError named by fal field. */
export async function falRequest(ctx: Ctx, alias: FalAlias, input: Record<string, unknown>): Promise<GenerationRequestInput> {
  const w = parseWire(FAL_INPUTS[`fal-ai/${alias}`], input) as FalInput;
  for (const field of ['mask_image_url', 'control_maps_data_url'] as const) {
    if (w[field] !== undefined && w[field] !== null) {
      const message = 'is not supported by this server (motion masks and depth maps need fal\'s hosted model)';
      throw new HttpError(422, 'unsupported_field', `${field}: ${message}`, [{ field, message }]);
    }
  }
  const image = await imageFromClient(w.image_url, 'image_url', { ...ctx.state.limits, ownUpload: (u) => ctx.state.uploads.bytesForUrl(u) });
  return buildRequest(ctx, { ...requestFromFalInput(w), image }, wireNamesOf(FAL_FIELDS));
}
