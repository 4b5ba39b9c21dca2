/**
 * What travels through Redis between the API server and the workers, and nothing more: the validated
 * request (image as base64 — the server already fetched and checked it, so a worker never reads a path or
 * URL a client sent), the dialect facts a status report echoes, the result TTL; back come per-step progress,
 * the result's description (its bytes sit in their own key) or a failure already shaped as an HTTP problem.
 * No provider API key is ever part of a job: workers run the local pipeline only.
 */
import { HttpError } from '../http.js';
import type { JobFailure, JobProgress, JobResult } from '../jobs.js';
import type { GenerationRequestInput } from '../../request/schema.js';

export interface QueuedJobData {
  /** The request with `image` (and `mask`) replaced by `imageBase64` (`maskBase64`); model, output and device are the worker's own. */
  request: Omit<GenerationRequestInput, 'image' | 'mask' | 'output' | 'model' | 'device'> & {
    imageBase64: string;
    maskBase64?: string;
  };
  meta: Record<string, unknown>;
  resultTtlSeconds: number;
  createdAt: number;
}

/** A worker's progress report; `log` lines also go to the job's BullMQ log, so a restarted server sees them. */
export interface QueuedProgress extends JobProgress {
  log?: string;
  worker?: string;
}

/** A finished job: where to find the bytes is implied by the job id (keys.result). */
export type QueuedResult = Omit<JobResult, 'path'> & { worker: string };

export function encodeJobData(
  request: GenerationRequestInput,
  meta: Record<string, unknown>,
  resultTtlSeconds: number,
): QueuedJobData {
  const { image, mask, output: _o, model: _m, device: _d, ...rest } = request;
  if (!(image instanceof Uint8Array)) throw new Error('a queued job needs the image as bytes');
  if (mask !== undefined && !(mask instanceof Uint8Array))
    throw new Error('a queued job needs the motion mask as bytes');
  const maskBase64 = mask === undefined ? {} : { maskBase64: Buffer.from(mask).toString('base64') };
  return {
    request: { ...rest, imageBase64: Buffer.from(image).toString('base64'), ...maskBase64 },
    meta,
    resultTtlSeconds,
    createdAt: Date.now(),
  };
}

export function decodeRequest(data: QueuedJobData): GenerationRequestInput {
  const { imageBase64, maskBase64, ...rest } = data.request;
  const mask = maskBase64 === undefined ? {} : { mask: new Uint8Array(Buffer.from(maskBase64, 'base64')) };
  return { ...rest, image: new Uint8Array(Buffer.from(imageBase64, 'base64')), ...mask };
}

const FAILURE_TAG = 'svd-failure:';

/** A failure as BullMQ's `failedReason` text: our problem (status, code, message, fields) in JSON. */
export function encodeFailure(err: HttpError): string {
  return FAILURE_TAG + JSON.stringify({ status: err.status, code: err.code, message: err.message, issues: err.issues });
}

/**
 * BullMQ's `failedReason` back into our failure. Reasons we did not write come from BullMQ itself; the one
 * that matters is a job whose workers kept dying (`maxStalledCount` exceeded).
 */
export function decodeFailure(reason: string | undefined, attempts: number): JobFailure {
  if (reason?.startsWith(FAILURE_TAG)) {
    try {
      const f = JSON.parse(reason.slice(FAILURE_TAG.length)) as {
        status: number;
        code: string;
        message: string;
        issues?: [];
      };
      return { code: f.code, message: f.message, error: new HttpError(f.status, f.code, f.message, f.issues ?? []) };
    } catch {
      // fall through to the generic failure
    }
  }
  if (reason && /stalled/i.test(reason)) {
    const message =
      `the job was given up after ${attempts} attempt${attempts === 1 ? '' : 's'}: each time, the worker running it ` +
      'stopped without finishing (killed, crashed or lost its Redis connection)';
    return { code: 'worker_lost', message, error: new HttpError(500, 'worker_lost', message) };
  }
  const message = `the job failed in its worker: ${reason ?? 'unknown reason'}`;
  return { code: 'internal_error', message, error: new HttpError(500, 'internal_error', message) };
}
