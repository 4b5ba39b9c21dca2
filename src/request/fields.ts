/**
 * The one family of zod field helpers: our request schema, the remote-only fields and every provider's wire
 * schema (used by the hosted backends and by the server dialects alike) build their ranges from these, so a
 * bad value reads the same everywhere: "must be from 1 to 180", "must be one of 14, 25".
 */
import { z } from 'zod';

/** A whole number in [min, max]. */
export const intRange = (min: number, max: number) =>
  z
    .number({ error: `must be a number from ${min} to ${max}` })
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be from ${min} to ${max}` })
    .max(max, { error: `must be from ${min} to ${max}` });

/** A finite number in [min, max]. */
export const numRange = (min: number, max: number) =>
  z
    .number({ error: `must be a number from ${min} to ${max}` })
    .refine(Number.isFinite, { error: `must be a finite number from ${min} to ${max}` })
    .pipe(
      z
        .number()
        .min(min, { error: `must be from ${min} to ${max}` })
        .max(max, { error: `must be from ${min} to ${max}` }),
    );

/** One of a few literal values (strings or numbers), message listing them. */
export const oneOf = <const T extends string | number>(values: readonly T[]) =>
  z.custom<T>((v) => values.includes(v as T), { error: `must be one of ${values.join(', ')}` });

/** A non-empty string. */
export const nonEmpty = () => z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' });

/** `"14"` → 14: hosted APIs' own examples send numbers as text, and multipart forms send nothing else. */
export function looseNumber(v: unknown): unknown {
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return v;
}

/** `"true"`, `"1"` → true; `"false"`, `"0"` → false (form fields). */
export function looseBoolean(v: unknown): unknown {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return v;
}

/** A number field of a wire body, which may arrive as text. */
export const loose = <T extends z.ZodType>(schema: T) => z.preprocess(looseNumber, schema);

/** A boolean field of a wire body, which may arrive as text. */
export const looseBool = () => z.preprocess(looseBoolean, z.boolean({ error: 'must be true or false' }));
