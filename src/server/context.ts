/**
 * What every route handler gets: the request, the response, the parsed URL and route groups, and the
 * server's shared state (queue, limits, uploads). Also the one place where a dialect's mapped fields
 * become our validated generation request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseRequest, type GenerationRequestInput } from '../request/schema.js';
import { HttpError, readBody } from './http.js';
import type { ImageFetchLimits } from './imageInput.js';
import type { Job, JobQueue, JobResult } from './jobs.js';
import { renameIssues } from './problems.js';
import type { UploadStore } from './uploads.js';

export interface ServerState {
  queue: JobQueue;
  uploads: UploadStore;
  limits: ImageFetchLimits;
  maxBodyBytes: number;
  /** Request fields applied when a client does not set them (e.g. `steps` from `svd serve --steps`). */
  defaults: Partial<GenerationRequestInput>;
  device: string;
  /** The local model's own defaults (frames, fps, size, ...), when known: the web page shows them. */
  modelDefaults?: Record<string, unknown>;
  /** Which backend runs the jobs (`local`, `segmind`, ...). */
  backendName: string;
  authRequired: boolean;
  publicUrl?: string;
  /** `host:port` the server listens on; the base of links when a request has no usable Host header. */
  listenHost: string;
  log: (message: string) => void;
  /**
   * Refuses (MemoryBudgetError) a request whose estimated memory exceeds `--max-memory`; set once the local
   * backend's model is known (src/server/admission.ts). Returns the request to queue (with `cfgBatch: split`
   * when only the split CFG batch fits), or nothing for the request as it is.
   */
  admit?: (request: GenerationRequestInput) => GenerationRequestInput | undefined;
  /** Resolves when the server starts shutting down; long waits (sync calls, SSE) end then. */
  closing: Promise<void>;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** RegExp groups of the matched route. */
  params: string[];
  /** Base URL for links this response hands out. */
  base: string;
  state: ServerState;
}

/** Reads the body within the server's limit. */
export function body(ctx: Ctx): Promise<Buffer> {
  return readBody(ctx.req, ctx.state.maxBodyBytes);
}

/**
 * Our validated request from a dialect's mapped fields: server defaults underneath, the model, output and
 * device always the server's own. Field issues come back named as the client spelled them (`wireName`).
 */
export function buildRequest(
  ctx: Ctx,
  fields: Record<string, unknown>,
  wireName: Record<string, string>,
): GenerationRequestInput {
  const merged: Record<string, unknown> = { ...ctx.state.defaults };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) merged[k] = v;
  delete merged.model;
  delete merged.output;
  merged.format = 'mp4';
  merged.device = ctx.state.device;
  try {
    const request = parseRequest(merged);
    return ctx.state.admit?.(request) ?? request;
  } catch (err) {
    throw renameIssues(err, wireName);
  }
}

/** Looks a job up by id; unknown ids are a 404 (ids are random server-made tokens, never paths). */
export function findJob(ctx: Ctx, id: string): Job {
  const job = /^[0-9a-f-]{36}$/.test(id) ? ctx.state.queue.get(id) : undefined;
  if (!job)
    throw new HttpError(
      404,
      'not_found',
      `no job with id ${JSON.stringify(id.slice(0, 64))} (finished jobs are kept for a limited time)`,
    );
  return job;
}

/** The public URL of a finished job's video (a random-token capability URL, like a hosted API's CDN link). */
export function fileUrl(ctx: Ctx, result: JobResult): string {
  return `${ctx.base}/files/${result.fileToken}/${result.fileName}`;
}

/**
 * Waits for a job to end; a client that hangs up first cancels it (the sync dialects' semantics). When the
 * server shuts down first with a shared queue, the job goes on in its worker: the client gets a 503.
 */
export async function waitForJob(ctx: Ctx, job: Job): Promise<void> {
  let closing = false;
  const onClose = () => {
    if (!ctx.res.writableEnded && !closing) ctx.state.queue.cancel(job.id, 'the client disconnected');
  };
  ctx.res.on('close', onClose);
  try {
    // The embedded queue ends its jobs itself on close (after the grace period); a shared queue keeps them.
    const detached =
      ctx.state.queue.mode === 'redis'
        ? ctx.state.closing.then(() => void (closing = true))
        : new Promise<void>(() => {});
    await Promise.race([job.done, detached]);
  } finally {
    ctx.res.off('close', onClose);
  }
  if (job.status === 'queued' || job.status === 'running') {
    throw new HttpError(503, 'shutting_down', `the server is restarting; job ${job.id} goes on in the queue`, [], {
      'retry-after': '5',
    });
  }
}
