/**
 * What the dialects share around the providers' wire schemas (which live with each provider, in
 * src/backends/<provider>/wire.ts): parsing a client's body into InvalidRequestError issues named by wire
 * field, the fields a body has that the schema does not know, and naming our fields back by wire name.
 */
import type { z } from 'zod';
import { InvalidRequestError } from '../../errors.js';
import { fieldIssuesFromZod } from '../../request/schema.js';

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

/** Wire field → our field, turned around: our field → the wire field a client sent it as. */
export function wireNamesOf(fieldOf: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(fieldOf).map(([wire, ours]) => [ours, wire]));
}
