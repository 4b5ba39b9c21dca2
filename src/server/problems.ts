/**
 * Any error → one HttpError (status, code, message, field issues). Our typed errors already carry safe,
 * specific messages; anything else becomes a plain 500 whose details go to the server log, not the client.
 */
import {
  AbortError,
  ImageLoadError,
  InvalidRequestError,
  MemoryBudgetError,
  ProviderError,
  SvdError,
  type FieldIssue,
} from '../errors.js';
import { HttpError } from './http.js';
import { QueueFullError, ShuttingDownError, type Job } from './jobs.js';
import { QueueUnavailableError } from './queue/connection.js';

/**
 * `meta` is the job's (when the error is a job's): an image error then names the client's own image field, and
 * a field error found by the job names the client's wire field when the dialect stored its names (`fieldNames`).
 */
export function toHttpError(err: unknown, log?: (m: string) => void, meta?: Record<string, unknown>): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof InvalidRequestError && isNameMap(meta?.fieldNames)) err = renameIssues(err, meta.fieldNames);
  if (err instanceof QueueFullError) {
    return new HttpError(429, err.code, err.message, [], { 'retry-after': String(err.retryAfterSeconds) });
  }
  if (err instanceof QueueUnavailableError)
    return new HttpError(503, err.code, err.message, [], { 'retry-after': '5' });
  if (err instanceof ShuttingDownError)
    return new HttpError(503, err.code, err.message, [], { 'retry-after': '5', connection: 'close' });
  if (err instanceof MemoryBudgetError) return new HttpError(422, err.code, err.message, err.issues);
  if (err instanceof InvalidRequestError) return new HttpError(400, err.code, err.message, err.issues);
  if (err instanceof ImageLoadError)
    return imageError(err, typeof meta?.imageField === 'string' ? meta.imageField : 'image');
  if (err instanceof AbortError) return new HttpError(499, 'cancelled', err.message);
  if (err instanceof ProviderError) return new HttpError(err.retryable ? 503 : 502, err.code, err.message);
  if (err instanceof SvdError) return new HttpError(500, err.code, err.message);
  log?.(`internal error: ${err instanceof Error ? err.message : String(err)}`);
  return new HttpError(500, 'internal_error', 'internal server error');
}

/**
 * An image that failed after it was accepted (the pipeline could not decode it), named by the client's own
 * field (`image_url`, `input_image`, `input_reference`), which the dialect stored in the job's meta.
 */
function imageError(err: ImageLoadError, field: string): HttpError {
  return new HttpError(400, err.code, `${field}: ${err.detail}`, [{ field, message: err.detail }]);
}

/** The error a finished-but-unsuccessful job reports: its own typed error, or cancelled (499) / shutdown (503). */
export function jobError(job: Job, log?: (m: string) => void): HttpError {
  const f = job.failure;
  if (job.status === 'cancelled') {
    return f?.code === 'shutdown'
      ? new HttpError(503, 'shutting_down', f.message, [], { 'retry-after': '5' })
      : new HttpError(499, 'cancelled', f?.message ?? 'the job was cancelled');
  }
  if (f?.error !== undefined) return toHttpError(f.error, log, job.meta);
  return new HttpError(500, f?.code ?? 'internal_error', f?.message ?? 'the job failed');
}

function isNameMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && Object.values(v).every((n) => typeof n === 'string');
}

/** Renames our schema's field names in issues to a dialect's wire names (`motionBucketId` → `motion`). */
export function renameIssues(err: unknown, wireName: Record<string, string>): unknown {
  if (!(err instanceof InvalidRequestError)) return err;
  if (err instanceof MemoryBudgetError) return renameMemoryIssues(err, wireName);
  // two of our fields sent as one wire field (OpenAI's size = width and height) would repeat the same message:
  // keep one, without a value, which would be only half of what the client sent
  const issues: FieldIssue[] = [];
  for (const i of err.issues) {
    const field = wireName[i.field] ?? i.field;
    const twin = issues.findIndex((seen) => seen.field === field && seen.message === i.message);
    if (twin < 0) issues.push({ ...i, field });
    else issues[twin] = { field, message: i.message };
  }
  return new InvalidRequestError(issues);
}

/**
 * A memory refusal names only the fields this dialect lets a client set (Segmind's svd has frames but no size);
 * when it has none of them, one issue for the whole request says what does not fit.
 */
function renameMemoryIssues(err: MemoryBudgetError, wireName: Record<string, string>): MemoryBudgetError {
  const dialectNamed = Object.keys(wireName).length > 0;
  const settable = err.issues.filter((i) => !dialectNamed || wireName[i.field] !== undefined);
  const merged = new Map<string, FieldIssue>();
  for (const i of settable) {
    const field = wireName[i.field] ?? i.field; // OpenAI's width and height are both `size`: one issue
    const seen = merged.get(field);
    merged.set(field, seen ? { ...seen, message: `${seen.message}; ${i.message}` } : { ...i, field });
  }
  const issues = [...merged.values()];
  return new MemoryBudgetError(issues.length ? issues : [{ field: 'request', message: err.issues[0].message }]);
}
