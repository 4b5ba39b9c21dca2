/**
 * Our own small API and the web page that uses it: `POST /api/jobs` (JSON or multipart, our schema's field
 * names), `GET /api/jobs/{id}`, `GET /api/jobs/{id}/events` (Server-Sent Events), `DELETE /api/jobs/{id}`
 * (cancel); the page's static files and `/schema.json` (the request schema's ranges, so the page never
 * hard-codes them); and `/files/{token}/{name}`, where every dialect's video links point.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { packageRoot } from '../../models/paths.js';
import { generationRequestSchema } from '../../request/schema.js';
import { InvalidRequestError } from '../../errors.js';
import { body, buildRequest, fileUrl, findJob, type Ctx } from '../context.js';
import { looseBoolean, looseNumber } from '../../request/fields.js';
import { HttpError, parseJsonObject, sendFile, sendJson } from '../http.js';
import { imageFromClient } from '../imageInput.js';
import type { Job } from '../jobs.js';
import { isFormContentType, parseForm } from '../multipart.js';
import { jobError } from '../problems.js';
import type { ErrorWriter, Route } from '../router.js';
import { streamEvents } from '../events.js';

const webError: ErrorWriter = (ctx, err) => {
  sendJson(ctx.res, err.status, { error: { code: err.code, message: err.message, issues: err.issues } }, err.headers);
};

/** The request fields a web client may set; the image is separate, the model/output/device are the server's. */
export const WEB_FIELDS = [
  'width',
  'height',
  'resize',
  'frames',
  'steps',
  'fps',
  'motionBucketId',
  'condAug',
  'seed',
  'minGuidance',
  'maxGuidance',
  'decodeChunkSize',
  'clips',
  'duration',
  'overlap',
  'loop',
] as const;
/** Image fields besides the values above: the conditioning image (required) and the motion mask. */
const WEB_IMAGES = ['image', 'mask'] as const;

/** The page's files, resolved from the package root so they are found from src/ (tsx) and dist/ alike. */
export function staticDir(): string {
  return join(packageRoot(), 'src', 'server', 'static');
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; " +
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const staticCache = new Map<string, Buffer>();

async function staticFile(ctx: Ctx): Promise<void> {
  const entry = STATIC[ctx.url.pathname];
  let bytes = staticCache.get(entry.file);
  if (!bytes) {
    try {
      bytes = await readFile(join(staticDir(), entry.file));
    } catch {
      throw new HttpError(500, 'static_missing', `the web page's ${entry.file} is missing from ${staticDir()}`);
    }
    staticCache.set(entry.file, bytes);
  }
  ctx.res.writeHead(200, { 'content-type': entry.type, 'content-length': bytes.length, ...PAGE_HEADERS });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : bytes);
}

/** JSON Schema of the fields the page offers, from the one request schema (ranges, enums, defaults). */
function schema(ctx: Ctx): void {
  const pick = Object.fromEntries(WEB_FIELDS.map((f) => [f, true])) as { [K in (typeof WEB_FIELDS)[number]]: true };
  const json = z.toJSONSchema(generationRequestSchema.pick(pick), { io: 'output', unrepresentable: 'any' }) as {
    properties: Record<string, Record<string, unknown>>;
  };
  // "multiple of 64" is a refinement, which JSON Schema output cannot see.
  for (const side of ['width', 'height']) json.properties[side].multipleOf = 64;
  sendJson(
    ctx.res,
    200,
    {
      request: json,
      authRequired: ctx.state.authRequired,
      maxBodyBytes: ctx.state.maxBodyBytes,
      maxImageBytes: ctx.state.limits.maxBytes,
      backend: ctx.state.backendName,
      // what an empty field means: the server's defaults over the model's (resize's is the schema's resolution default)
      defaults: { resize: 'stretch', ...ctx.state.modelDefaults, ...ctx.state.defaults },
    },
    { 'cache-control': 'no-cache' },
  );
}

async function create(ctx: Ctx): Promise<void> {
  const bytes = await body(ctx);
  const ct = ctx.req.headers['content-type'];
  const raw = isFormContentType(ct) ? await parseForm(bytes, String(ct)) : parseJsonObject(bytes);
  const known: readonly string[] = [...WEB_IMAGES, ...WEB_FIELDS];
  const unknown = Object.keys(raw).filter((k) => !known.includes(k));
  const allowed = `is not a known field (allowed: ${known.join(', ')})`;
  if (unknown.length) throw new InvalidRequestError(unknown.map((field) => ({ field, message: allowed })));
  const image = await imageFromClient(raw.image, 'image', ctx.state.limits);
  // an empty file part is a form sent without a mask
  const hasMask =
    raw.mask !== undefined && raw.mask !== '' && !(raw.mask instanceof Uint8Array && raw.mask.length === 0);
  const mask = hasMask ? await imageFromClient(raw.mask, 'mask', ctx.state.limits) : undefined;
  const fields: Record<string, unknown> = { image, mask };
  for (const f of WEB_FIELDS) {
    if (raw[f] === undefined || raw[f] === '') continue;
    fields[f] = f === 'resize' ? raw[f] : f === 'loop' ? looseBoolean(raw[f]) : looseNumber(raw[f]);
  }
  const request = buildRequest(ctx, fields, {});
  const job = await ctx.state.queue.submit(request, { dialect: 'web', imageField: 'image' });
  sendJson(ctx.res, 202, jobJson(ctx, job), { location: `/api/jobs/${job.id}` });
}

/** What our API says about a job. */
export function jobJson(ctx: Ctx, job: Job): Record<string, unknown> {
  const err = job.status === 'failed' || job.status === 'cancelled' ? jobError(job) : undefined;
  const r = job.result;
  return {
    id: job.id,
    status: job.status,
    queuePosition: job.status === 'queued' ? ctx.state.queue.position(job) : null,
    progress: job.progress,
    createdAt: job.createdAt,
    startedAt: job.startedAt ?? null,
    completedAt: job.completedAt ?? null,
    expiresAt: job.expiresAt ?? null,
    logs: job.logs.slice(-20),
    video: r
      ? { url: fileUrl(ctx, r), contentType: r.contentType, fileName: r.fileName, size: r.size, seed: r.seed }
      : null,
    error: err ? { code: err.code, message: err.message, issues: err.issues } : null,
  };
}

function get(ctx: Ctx): void {
  sendJson(ctx.res, 200, jobJson(ctx, findJob(ctx, ctx.params[0])));
}

async function events(ctx: Ctx): Promise<void> {
  const job = findJob(ctx, ctx.params[0]);
  await streamEvents(ctx, job, () => jobJson(ctx, job));
}

function cancel(ctx: Ctx): void {
  const job = findJob(ctx, ctx.params[0]);
  ctx.state.queue.cancel(job.id);
  sendJson(ctx.res, 200, jobJson(ctx, job));
}

/**
 * Liveness plus the queue: jobs per state and, with a shared queue, the workers alive. 200 while jobs can be
 * taken (`degraded` when no worker runs: they wait), 503 when the queue's Redis cannot be reached. Public,
 * so it names no model, host or job.
 */
async function health(ctx: Ctx): Promise<void> {
  const q = await ctx.state.queue.health();
  const status = !q.ok ? 'unavailable' : q.mode === 'redis' && q.workers.length === 0 ? 'degraded' : 'ok';
  sendJson(
    ctx.res,
    q.ok ? 200 : 503,
    {
      status,
      backend: ctx.state.backendName,
      queue: {
        mode: q.mode,
        ...q.counts,
        meanJobMs: q.meanJobMs ?? null,
        ...(q.message ? { message: q.message } : {}),
      },
      workers: q.workers.map((w) => ({
        name: w.name,
        device: w.device,
        concurrency: w.concurrency,
        busy: w.active.length,
        jobsDone: w.jobsDone,
      })),
    },
    { 'cache-control': 'no-store' },
  );
}

/** A finished video by its random file token; `?download=1` asks the browser to save it. */
async function file(ctx: Ctx): Promise<void> {
  const job = ctx.state.queue.byFileToken(ctx.params[0]);
  if (!job?.result) throw new HttpError(404, 'not_found', 'no such file (videos are kept for a limited time)');
  const disposition = ctx.url.searchParams.has('download') ? 'attachment' : 'inline';
  await sendFile(ctx.req, ctx.res, await ctx.state.queue.resultFile(job), job.result.contentType, {
    'content-disposition': `${disposition}; filename="${job.result.fileName}"`,
    'x-content-type-options': 'nosniff',
  });
}

export const webRoutes: Route[] = [
  ...Object.keys(STATIC).map((p) => ({
    method: 'GET',
    path: new RegExp(`^${p.replace(/\./g, '\\.')}$`),
    handler: staticFile,
    errors: webError,
    public: true,
  })),
  { method: 'GET', path: /^\/schema\.json$/, handler: schema, errors: webError, public: true },
  { method: 'GET', path: /^\/healthz$/, handler: health, errors: webError, public: true },
  { method: 'GET', path: /^\/files\/([0-9a-f]{32})\/[A-Za-z0-9._-]+$/, handler: file, errors: webError, public: true },
  { method: 'POST', path: /^\/api\/jobs$/, handler: create, errors: webError },
  { method: 'GET', path: /^\/api\/jobs\/([^/]+)$/, handler: get, errors: webError },
  { method: 'DELETE', path: /^\/api\/jobs\/([^/]+)$/, handler: cancel, errors: webError },
  { method: 'GET', path: /^\/api\/jobs\/([^/]+)\/events$/, handler: events, errors: webError },
];

export { webError };
