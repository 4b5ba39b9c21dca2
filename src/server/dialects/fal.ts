/**
 * fal.ai's protocol (docs/providers.md §2): the queue (`POST /fal-ai/<alias>` → `request_id`, `status_url`,
 * `response_url`, `cancel_url`; status with per-step logs; result; `PUT …/cancel`), the blocking form
 * (fal.run, here under `/run/fal-ai/<alias>`), the storage upload its clients use for Blobs, and fal's
 * server-proxy convention (`x-fal-target-url`), which is how the official client is pointed at this server:
 * `fal.config({ proxyUrl: { url: '<base>/api/fal/proxy', when: 'always' }, credentials: KEY })`.
 * Outputs are `{ video: File, seed }` with URLs on this server. Errors: 422 `{detail: [{loc, msg, type}]}`
 * for fields, `{detail, error_type}` (+ `X-Fal-Error-Type`) otherwise.
 */
import { body, fileUrl, findJob, waitForJob, type Ctx } from '../context.js';
import { HttpError, parseJsonObject, readBody, sendJson, sendText } from '../http.js';
import type { Job } from '../jobs.js';
import { jobError } from '../problems.js';
import { streamEvents } from '../events.js';
import { matchRoute, type ErrorWriter, type Route } from '../router.js';
import { falRequest, isFalAlias, type FalAlias } from './falModels.js';

const ERROR_TYPES: Record<number, string> = {
  400: 'bad_request',
  499: 'client_cancelled',
  500: 'internal_error',
  503: 'runner_scheduling_failure',
  504: 'request_timeout',
};

export const falError: ErrorWriter = (ctx, err) => {
  if (err.issues.length && (err.status === 400 || err.status === 422)) {
    const detail = err.issues.map((i) => ({
      loc: ['body', ...i.field.split('.')],
      msg: i.message,
      type: 'value_error',
    }));
    sendJson(ctx.res, 422, { detail }, err.headers);
    return;
  }
  const type = ERROR_TYPES[err.status];
  sendJson(ctx.res, err.status, type ? { detail: err.message, error_type: type } : { detail: err.message }, {
    ...err.headers,
    ...(type ? { 'x-fal-error-type': type } : {}),
  });
};

function aliasOf(alias: string, sub?: string): FalAlias {
  if (!isFalAlias(alias) || (sub && sub !== '/')) {
    throw new HttpError(
      404,
      'not_found',
      `fal-ai/${alias}${sub ?? ''} is not served here; ` +
        `this server has fal-ai/svd, fal-ai/stable-video, fal-ai/fast-svd-lcm and fal-ai/fast-svd (image to video)`,
    );
  }
  return alias;
}

function urls(ctx: Ctx, job: Job) {
  const app = `${ctx.base}/${String(job.meta.app)}/requests/${job.id}`;
  return { request_id: job.id, response_url: app, status_url: `${app}/status`, cancel_url: `${app}/cancel` };
}

function logsOf(job: Job) {
  return job.logs.map((l) => ({ message: l.message, level: 'INFO', source: 'USER', timestamp: l.timestamp }));
}

/** The queue status object: IN_QUEUE with its position, IN_PROGRESS with logs, COMPLETED (with `error` when it failed). */
export function falStatus(ctx: Ctx, job: Job, withLogs: boolean): Record<string, unknown> {
  const base = urls(ctx, job);
  if (job.status === 'queued')
    return { status: 'IN_QUEUE', queue_position: Math.max(0, ctx.state.queue.position(job)), ...base };
  if (job.status === 'running') return { status: 'IN_PROGRESS', logs: withLogs ? logsOf(job) : null, ...base };
  const done: Record<string, unknown> = {
    status: 'COMPLETED',
    logs: withLogs ? logsOf(job) : null,
    ...base,
    metrics: job.startedAt && job.completedAt ? { inference_time: (job.completedAt - job.startedAt) / 1000 } : {},
  };
  if (job.status !== 'completed') {
    const err = jobError(job);
    done.error = err.message;
    done.error_type = ERROR_TYPES[err.status] ?? 'internal_error';
  }
  return done;
}

function output(ctx: Ctx, job: Job): Record<string, unknown> {
  const r = job.result!;
  const file = { url: fileUrl(ctx, r), content_type: r.contentType, file_name: r.fileName, file_size: r.size };
  // fal-ai/svd documents its output under `image`; the other SVD endpoints under `video`. Both are given.
  return { video: file, ...(job.meta.app === 'fal-ai/svd' ? { image: file } : {}), seed: r.seed };
}

async function submitJob(ctx: Ctx, aliasParam: string, sub: string | undefined): Promise<Job> {
  const alias = aliasOf(aliasParam, sub);
  const request = await falRequest(ctx, alias, parseJsonObject(await body(ctx)));
  return ctx.state.queue.submit(request, { dialect: 'fal', imageField: 'image_url', app: `fal-ai/${alias}` });
}

async function submit(ctx: Ctx): Promise<void> {
  const job = await submitJob(ctx, ctx.params[0], ctx.params[1]);
  // fal answers a submit with IN_QUEUE even when the job starts at once; the next status poll tells the rest.
  const position = Math.max(0, ctx.state.queue.position(job));
  sendJson(
    ctx.res,
    200,
    { status: 'IN_QUEUE', queue_position: position, ...urls(ctx, job), logs: null, metrics: {} },
    { 'x-fal-request-id': job.id },
  );
}

async function runSync(ctx: Ctx): Promise<void> {
  const job = await submitJob(ctx, ctx.params[0], ctx.params[1]);
  await waitForJob(ctx, job);
  if (job.status !== 'completed') throw jobError(job, ctx.state.log);
  sendJson(ctx.res, 200, output(ctx, job), { 'x-fal-request-id': job.id });
}

function jobFor(ctx: Ctx): Job {
  const job = findJob(ctx, ctx.params[1]);
  if (job.meta.app !== `fal-ai/${ctx.params[0]}`)
    throw new HttpError(404, 'not_found', `no request ${ctx.params[1]} for fal-ai/${ctx.params[0]}`);
  return job;
}

function status(ctx: Ctx): void {
  const job = jobFor(ctx);
  const withLogs = ['1', 'true'].includes(ctx.url.searchParams.get('logs') ?? '');
  sendJson(ctx.res, job.status === 'queued' || job.status === 'running' ? 202 : 200, falStatus(ctx, job, withLogs), {
    'x-fal-request-id': job.id,
  });
}

/** Server-Sent Events of status objects until COMPLETED (fal's `…/status/stream`). */
async function statusStream(ctx: Ctx): Promise<void> {
  const job = jobFor(ctx);
  const withLogs = ['1', 'true'].includes(ctx.url.searchParams.get('logs') ?? '');
  await streamEvents(ctx, job, () => falStatus(ctx, job, withLogs));
}

function result(ctx: Ctx): void {
  const job = jobFor(ctx);
  if (job.status === 'queued' || job.status === 'running')
    throw new HttpError(400, 'in_progress', 'Request is still in progress');
  if (job.status !== 'completed') throw jobError(job, ctx.state.log);
  sendJson(ctx.res, 200, output(ctx, job), { 'x-fal-request-id': job.id });
}

function cancel(ctx: Ctx): void {
  const job = (() => {
    try {
      return jobFor(ctx);
    } catch {
      return undefined;
    }
  })();
  if (!job) {
    sendJson(ctx.res, 404, { status: 'NOT_FOUND' });
    return;
  }
  const outcome = ctx.state.queue.cancel(job.id);
  if (outcome === 'cancelled') sendJson(ctx.res, 202, { status: 'CANCELLATION_REQUESTED' });
  else sendJson(ctx.res, 400, { status: 'ALREADY_COMPLETED' });
}

async function uploadInitiate(ctx: Ctx): Promise<void> {
  const input = parseJsonObject(await body(ctx));
  const contentType = typeof input.content_type === 'string' ? input.content_type : 'application/octet-stream';
  const token = ctx.state.uploads.initiate(contentType);
  sendJson(ctx.res, 200, {
    upload_url: `${ctx.base}/fal/storage/upload/${token}`,
    file_url: `${ctx.base}/fal/files/${token}`,
  });
}

async function uploadPut(ctx: Ctx): Promise<void> {
  // Uploads are job inputs (images), so the image limit applies, not the general body limit.
  const bytes = await readBody(ctx.req, Math.min(ctx.state.maxBodyBytes, ctx.state.limits.maxBytes));
  const ct = ctx.req.headers['content-type'];
  if (!ctx.state.uploads.put(ctx.params[0], new Uint8Array(bytes), typeof ct === 'string' ? ct : undefined)) {
    throw new HttpError(404, 'not_found', 'unknown or expired upload URL');
  }
  sendText(ctx.res, 200, '', 'text/plain');
}

function uploadGet(ctx: Ctx): void {
  const item = ctx.state.uploads.get(ctx.params[0]);
  if (!item?.bytes) throw new HttpError(404, 'not_found', 'unknown or expired file');
  ctx.res.writeHead(200, {
    'content-type': item.contentType,
    'content-length': item.bytes.length,
    'x-content-type-options': 'nosniff',
  });
  ctx.res.end(item.bytes);
}

const ID = '([^/]+)';
const ALIAS = '([a-z0-9][a-z0-9.-]*)';

/** The routes reachable directly and through the proxy (paths as on queue.fal.run, fal.run under /run, rest.fal.ai under /fal). */
const falApiRoutes: Route[] = [
  { method: 'GET', path: new RegExp(`^/fal-ai/${ALIAS}/requests/${ID}/status$`), handler: status, errors: falError },
  {
    method: 'GET',
    path: new RegExp(`^/fal-ai/${ALIAS}/requests/${ID}/status/stream$`),
    handler: statusStream,
    errors: falError,
  },
  { method: 'GET', path: new RegExp(`^/fal-ai/${ALIAS}/requests/${ID}$`), handler: result, errors: falError },
  { method: 'PUT', path: new RegExp(`^/fal-ai/${ALIAS}/requests/${ID}/cancel$`), handler: cancel, errors: falError },
  { method: 'POST', path: new RegExp(`^/fal-ai/${ALIAS}(/[a-z0-9/-]*)?$`), handler: submit, errors: falError },
  { method: 'POST', path: new RegExp(`^/run/fal-ai/${ALIAS}(/[a-z0-9/-]*)?$`), handler: runSync, errors: falError },
  { method: 'POST', path: /^\/fal\/storage\/upload\/initiate$/, handler: uploadInitiate, errors: falError },
];

/** fal's server-proxy convention: the real fal URL rides in `x-fal-target-url`; we answer it ourselves. */
async function proxy(ctx: Ctx): Promise<void> {
  const target = ctx.req.headers['x-fal-target-url'];
  let url: URL;
  try {
    url = new URL(String(target));
  } catch {
    throw new HttpError(400, 'bad_request', 'x-fal-target-url header is missing or not a URL');
  }
  const prefix = { 'queue.fal.run': '', 'fal.run': '/run', 'rest.fal.ai': '/fal', 'rest.alpha.fal.ai': '/fal' }[
    url.hostname
  ];
  if (prefix === undefined)
    throw new HttpError(
      412,
      'bad_request',
      `x-fal-target-url host ${url.hostname} is not a fal host this server answers for`,
    );
  const path = `${prefix}${url.pathname}`;
  const m = matchRoute(falApiRoutes, ctx.req.method ?? 'GET', path);
  if (!m || !('route' in m))
    throw new HttpError(
      m ? 405 : 404,
      'not_found',
      `${ctx.req.method} ${url.hostname}${url.pathname} is not served here`,
    );
  await m.route.handler({ ...ctx, url: new URL(`${path}${url.search}`, ctx.base), params: m.params });
}

export const falRoutes: Route[] = [
  ...falApiRoutes,
  {
    method: 'PUT',
    path: /^\/fal\/storage\/upload\/([0-9a-f]{32})$/,
    handler: uploadPut,
    errors: falError,
    public: true,
  },
  { method: 'GET', path: /^\/fal\/files\/([0-9a-f]{32})$/, handler: uploadGet, errors: falError, public: true },
  ...['GET', 'POST', 'PUT'].map((method) => ({
    method,
    path: /^\/api\/fal\/proxy$/,
    handler: proxy,
    errors: falError,
  })),
];
