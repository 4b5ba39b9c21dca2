/**
 * OpenAI's Videos API (docs/providers.md §3.2): `POST /v1/videos` (multipart with an `input_reference` file, or
 * JSON with `input_reference: {image_url}`), `GET /v1/videos[/{id}[/content]]`, `DELETE /v1/videos/{id}`,
 * with `Authorization: Bearer`. The `Video` object's `status` and `progress` follow the job; `prompt` is
 * accepted and echoed (SVD has no text input); `size` sets width×height (multiples of 64); `seconds` is the
 * video's length, made of as many chained clips as it takes (our `duration`, docs/providers.md §3.2). SVD
 * knobs ride along as extension fields.
 */
import { SVD_EXTENSION_FIELDS, requestFromExtensions, videoCreateBody } from '../../backends/openai/wire.js';
import { body, buildRequest, type Ctx } from '../context.js';
import { HttpError, parseJsonObject, sendFile, sendJson } from '../http.js';
import { imageFromClient } from '../imageInput.js';
import type { Job } from '../jobs.js';
import { isFormContentType, parseForm } from '../multipart.js';
import { jobError } from '../problems.js';
import type { Route } from '../router.js';
import { parseWire, unknownFields } from './fields.js';
import { openaiError } from './openaiFields.js';

/** Reads the body as JSON or a form. */
export async function readOpenAIBody(ctx: Ctx): Promise<Record<string, unknown>> {
  const bytes = await body(ctx);
  const ct = ctx.req.headers['content-type'];
  return isFormContentType(ct) ? parseForm(bytes, String(ct)) : parseJsonObject(bytes);
}

/** `input_reference` in any of its forms: an uploaded file, `{image_url}`, or a plain URL / data: URI. */
function imageOf(ref: unknown): unknown {
  if (ref instanceof Uint8Array || typeof ref === 'string') return ref;
  if (ref && typeof ref === 'object') {
    const o = ref as Record<string, unknown>;
    if (o.file_id !== undefined) {
      throw new HttpError(
        400,
        'unsupported_field',
        'input_reference.file_id: file ids are not supported here; send the image as a file or as image_url',
        [
          {
            field: 'input_reference.file_id',
            message: 'is not supported; send the image as a multipart file or as image_url',
          },
        ],
      );
    }
    return o.image_url;
  }
  return undefined;
}

/** Our field → the wire field a client sent it as (for errors at submit and in the job's failure). */
const CREATE_WIRE_NAMES: Record<string, string> = {
  ...SVD_EXTENSION_FIELDS,
  width: 'size',
  height: 'size',
  duration: 'seconds',
};

async function create(ctx: Ctx): Promise<void> {
  const raw = await readOpenAIBody(ctx);
  const w = parseWire(videoCreateBody, raw);
  const image = await imageFromClient(imageOf(w.input_reference), 'input_reference', ctx.state.limits);
  const size = w.size?.split('x').map(Number);
  // `seconds` longer than one clip (num_frames, else the model's, at fps) chains clips, as `duration` does
  // everywhere (docs/motion-controls.md §2); shorter, the one clip is trimmed to round(seconds · fps) frames.
  const request = buildRequest(
    ctx,
    { ...requestFromExtensions(w), image, width: size?.[0], height: size?.[1], duration: w.seconds },
    CREATE_WIRE_NAMES,
  );
  const job = await ctx.state.queue.submit(
    request,
    {
      dialect: 'openai',
      imageField: 'input_reference',
      model: w.model ?? 'svd',
      prompt: w.prompt ?? null,
      size: w.size ?? null,
      seconds: w.seconds === undefined ? null : String(w.seconds),
      fieldNames: CREATE_WIRE_NAMES,
      ignored: unknownFields(videoCreateBody, raw),
    },
    w.prompt ? { prompt: w.prompt } : undefined,
  );
  sendJson(ctx.res, 200, videoObject(job));
}

const STATUS = {
  queued: 'queued',
  running: 'in_progress',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'failed',
} as const;

/** OpenAI's `Video` object for a job. */
export function videoObject(job: Job): Record<string, unknown> {
  const md = job.result?.metadata ?? {};
  const size =
    typeof md.width === 'number' && typeof md.height === 'number' ? `${md.width}x${md.height}` : job.meta.size;
  const seconds =
    typeof md.frames === 'number' && typeof md.fps === 'number'
      ? String(+(md.frames / md.fps).toFixed(2))
      : job.meta.seconds;
  const err = job.status === 'failed' || job.status === 'cancelled' ? jobError(job) : undefined;
  return {
    id: videoId(job),
    object: 'video',
    model: job.meta.model,
    status: STATUS[job.status],
    progress: Math.round(job.progress.fraction * 100),
    created_at: Math.floor(job.createdAt / 1000),
    completed_at: job.completedAt ? Math.floor(job.completedAt / 1000) : null,
    expires_at: job.expiresAt ? Math.floor(job.expiresAt / 1000) : null,
    prompt: job.meta.prompt ?? null,
    seconds: seconds ?? null,
    size: size ?? null,
    remixed_from_video_id: null,
    error: err ? { code: err.code, message: err.message } : null,
    ...(job.result ? { seed: job.result.seed } : {}),
  };
}

function videoId(job: Job): string {
  return `video_${job.id.replace(/-/g, '')}`;
}

function jobOf(ctx: Ctx): Job {
  const m = /^video_([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$/.exec(ctx.params[0]);
  const job = m ? ctx.state.queue.get(m.slice(1).join('-')) : undefined;
  if (!job || job.meta.dialect !== 'openai')
    throw new HttpError(404, 'not_found', `No video found with id '${ctx.params[0].slice(0, 80)}'`);
  return job;
}

function retrieve(ctx: Ctx): void {
  sendJson(ctx.res, 200, videoObject(jobOf(ctx)));
}

function list(ctx: Ctx): void {
  const q = ctx.url.searchParams;
  const limit = Math.min(100, Math.max(1, Number(q.get('limit') ?? 20) || 20));
  let all = ctx.state.queue.list().filter((j) => j.meta.dialect === 'openai');
  if (q.get('order') !== 'asc') all = all.reverse();
  const after = q.get('after');
  if (after) all = all.slice(all.findIndex((j) => videoId(j) === after) + 1);
  const data = all.slice(0, limit).map(videoObject);
  sendJson(ctx.res, 200, {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: all.length > limit,
  });
}

async function content(ctx: Ctx): Promise<void> {
  const job = jobOf(ctx);
  const variant = ctx.url.searchParams.get('variant') ?? 'video';
  if (variant !== 'video') {
    throw new HttpError(
      400,
      'invalid_variant',
      `variant: only "video" is available here (got ${JSON.stringify(variant.slice(0, 40))})`,
      [{ field: 'variant', message: 'only "video" is available' }],
    );
  }
  if (job.status === 'queued' || job.status === 'running')
    throw new HttpError(
      400,
      'video_not_ready',
      `Video ${videoId(job)} is not ready yet (status ${STATUS[job.status]}, ${Math.round(job.progress.fraction * 100)}%)`,
    );
  if (job.status !== 'completed' || !job.result) throw jobError(job);
  await sendFile(ctx.req, ctx.res, await ctx.state.queue.resultFile(job), job.result.contentType, {
    'content-disposition': `inline; filename="${videoId(job)}.mp4"`,
  });
}

async function remove(ctx: Ctx): Promise<void> {
  const job = jobOf(ctx);
  await ctx.state.queue.delete(job.id);
  sendJson(ctx.res, 200, { id: videoId(job), object: 'video.deleted', deleted: true });
}

export const openaiRoutes: Route[] = [
  { method: 'POST', path: /^\/v1\/videos$/, handler: create, errors: openaiError },
  { method: 'GET', path: /^\/v1\/videos$/, handler: list, errors: openaiError },
  { method: 'GET', path: /^\/v1\/videos\/([^/]+)$/, handler: retrieve, errors: openaiError },
  { method: 'DELETE', path: /^\/v1\/videos\/([^/]+)$/, handler: remove, errors: openaiError },
  { method: 'GET', path: /^\/v1\/videos\/([^/]+)\/content$/, handler: content, errors: openaiError },
];
