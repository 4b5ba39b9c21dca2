/**
 * Wire-field validators shared by the dialects: each hosted API's documented ranges, tolerant of the way
 * its own examples spell values (Segmind's sample sends `"frames": "14"`; multipart forms send every
 * value as text). Failures become InvalidRequestError issues named by the wire field.
 */
import { z } from 'zod';
import { InvalidRequestError } from '../../errors.js';
import { fieldIssuesFromZod } from '../../request/schema.js';
import { looseBoolean, looseNumber } from '../http.js';

export const wireInt = (min: number, max: number) =>
  z.preprocess(looseNumber, z.number({ error: `must be a whole number from ${min} to ${max}` })
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be from ${min} to ${max}` })
    .max(max, { error: `must be from ${min} to ${max}` }));

export const wireNumber = (min: number, max: number) =>
  z.preprocess(looseNumber, z.number({ error: `must be a number from ${min} to ${max}` })
    .min(min, { error: `must be from ${min} to ${max}` })
    .max(max, { error: `must be from ${min} to ${max}` }));

/** One of the listed numbers (Segmind `frames`: 14 or 25). */
export const wireIntOneOf = (values: readonly number[]) =>
  z.preprocess(looseNumber, z.number().refine((v) => values.includes(v), { error: `must be one of ${values.join(', ')}` }));

export const wireEnum = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

export const wireBool = z.preprocess(looseBoolean, z.boolean({ error: 'must be true or false' }));

/** A required image field: URL, data: URI or base64 (what is inside is checked when it is read). */
export const wireImage = z.string({ error: 'is required: an http(s) URL, a data: URI or base64 image data' });

/** Validates a wire body (unknown fields pass through untouched); issues are named by wire field. */
export function parseWire<S extends z.ZodObject>(schema: S, body: Record<string, unknown>): z.output<S> {
  const result = schema.safeParse(body);
  if (!result.success) throw new InvalidRequestError(fieldIssuesFromZod(result.error, body));
  return result.data;
}

/** Fields of a body that the schema does not know (reported back, not an error: hosted APIs ignore them too). */
export function unknownFields(schema: z.ZodObject, body: Record<string, unknown>): string[] {
  return Object.keys(body).filter((k) => !(k in schema.shape));
}

/** Seeds wider than ours (Segmind allows up to 999999999999999) are folded into 0..2^32-1; -1 means random. */
export function foldSeed(seed: number | undefined): number | undefined {
  if (seed === undefined || seed === -1) return undefined;
  return seed >= 0 && seed <= 0xffffffff ? seed : ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32;
}
