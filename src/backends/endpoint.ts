/**
 * What every hosted endpoint declares, and the checks built on it. Each endpoint writes its documented
 * body as a zod schema (ranges, enums, cross-field rules); our request is mapped onto it and checked
 * before any network call, so "frames 16 on Segmind svd" fails with our field name, the value and the
 * provider's range. Fields the endpoint does not use are listed, not silently dropped.
 */
import type { z } from 'zod';
import { InvalidRequestError, type FieldIssue } from '../errors.js';
import type { GenerationRequestInput } from '../request/schema.js';
import type { RemoteParams, RemoteParamsInput } from './options.js';

export type RequestField = keyof GenerationRequestInput;
export type RemoteField = keyof RemoteParams;

export interface EndpointSpec {
  provider: string;
  /** Short id for messages and metadata, e.g. `svd`, `fal-ai/stable-video`. */
  id: string;
  /** Our request fields this endpoint honours (`image`, `output`, `format` are always honoured). */
  uses: readonly RequestField[];
  /** Provider-only fields it honours (`model` is always honoured: it picked the endpoint). */
  usesRemote: readonly RemoteField[];
  /** The documented request body. */
  schema: z.ZodType;
  /** Wire field → our field, for errors (`motion` → `motionBucketId`). */
  fieldOf: Record<string, string>;
  /** Frame counts the endpoint makes, when it has no frames field (MotionCtrl-SVD: 14). */
  fixedFrames?: readonly number[];
}

/**
 * Checks a mapped body against the endpoint's schema; each failure becomes an issue on *our* field, with
 * our value and the provider's allowed range (`frames: must be 14 or 25 on segmind svd (got 16)`).
 */
export function checkBody<T>(spec: EndpointSpec, body: T, ours: Record<string, unknown>): T {
  const result = spec.schema.safeParse(body);
  const issues: FieldIssue[] = [];
  const frames = ours.frames;
  if (spec.fixedFrames && typeof frames === 'number' && !spec.fixedFrames.includes(frames)) {
    issues.push({
      field: 'frames',
      value: frames,
      message: `must be ${spec.fixedFrames.join(' or ')} on ${spec.provider} ${spec.id} (it makes ${spec.fixedFrames.join(' or ')} frames)`,
    });
  }
  if (result.success) {
    if (issues.length) throw new InvalidRequestError(issues);
    return body;
  }
  const seen = new Set<string>();
  for (const issue of result.error.issues) {
    const wire = issue.path.map(String).join('.');
    const field = spec.fieldOf[wire] ?? wire;
    if (seen.has(field)) continue;
    seen.add(field);
    const sentAs = field.split('.').pop() === wire ? '' : ` (sent as \`${wire}\`)`;
    const value = field in ours ? ours[field] : (body as Record<string, unknown>)[wire];
    issues.push({ field, value, message: `${issue.message} on ${spec.provider} ${spec.id}${sentAs}` });
  }
  throw new InvalidRequestError(issues);
}

/** Our request and the provider-only fields in one record keyed by our field names (`remote.prompt`). */
export function ourValues(req: object, remote: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...req };
  for (const [k, v] of Object.entries(remote)) out[`remote.${k}`] = v;
  return out;
}

/** Fields the caller set that this endpoint does not use, as `steps`, `remote.prompt`. */
export function ignoredFields(
  spec: EndpointSpec,
  request: GenerationRequestInput,
  remote: RemoteParamsInput,
): string[] {
  const always = new Set<string>(['image', 'output', 'format', ...spec.uses]);
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(request)) {
    if (value === undefined || always.has(key)) continue;
    if (key === 'device' && value === 'auto') continue;
    ignored.push(key);
  }
  const usedRemote = new Set<string>(['model', ...spec.usesRemote]);
  for (const [key, value] of Object.entries(remote)) {
    if (value !== undefined && !usedRemote.has(key)) ignored.push(`remote.${key}`);
  }
  return ignored;
}

/** Copies only defined entries, so optional fields are left to the provider's defaults. */
export function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
