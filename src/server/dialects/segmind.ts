/**
 * Segmind's v1 serverless API (docs/providers.md §1): `POST /v1/svd` and `POST /v1/motionctrl-svd`
 * with `x-api-key`, answered with the video bytes (`video/mp4`) or, with `base64: true`, JSON `{image}`
 * (the key Segmind's own MCP client reads). Errors are `{error: "..."}` with Segmind's status codes. The call
 * blocks until the video is made; a client that hangs up cancels its job.
 */
import { readFile } from 'node:fs/promises';
import {
  MOTIONCTRL_FIELDS,
  SVD_FIELDS,
  motionCtrlBody,
  requestFromMotionCtrlBody,
  requestFromSvdBody,
  svdBody,
} from '../../backends/segmind/wire.js';
import { body, buildRequest, waitForJob, type Ctx } from '../context.js';
import { boundedName } from '../../errors.js';
import { headerSafe, HttpError, parseJsonObject, sendFile, sendJson } from '../http.js';
import { imageFromClient } from '../imageInput.js';
import { jobError } from '../problems.js';
import type { ErrorWriter, Route } from '../router.js';
import { parseWire, unknownFields, wireNamesOf } from './fields.js';

const segmindError: ErrorWriter = (ctx, err) => {
  sendJson(ctx.res, err.status, { error: err.message }, err.headers);
};

async function svd(ctx: Ctx): Promise<void> {
  const raw = parseJsonObject(await body(ctx));
  const w = parseWire(svdBody, raw);
  const image = await imageFromClient(w.image, 'image', ctx.state.limits);
  const request = buildRequest(ctx, { ...requestFromSvdBody(w), image }, wireNamesOf(SVD_FIELDS));
  await run(
    ctx,
    request,
    { endpoint: 'svd', imageField: 'image' },
    undefined,
    unknownFields(svdBody, raw),
    w.base64 ?? false,
  );
}

async function motionCtrl(ctx: Ctx): Promise<void> {
  const raw = parseJsonObject(await body(ctx));
  const w = parseWire(motionCtrlBody, raw);
  const image = await imageFromClient(w.input_image, 'input_image', ctx.state.limits);
  const request = buildRequest(ctx, { ...requestFromMotionCtrlBody(w), image }, wireNamesOf(MOTIONCTRL_FIELDS));
  // a model without MotionCtrl's camera module refuses the request, naming the model to use
  await run(
    ctx,
    request,
    { endpoint: 'motionctrl-svd', imageField: 'input_image' },
    undefined,
    unknownFields(motionCtrlBody, raw),
    w.base64 ?? false,
  );
}

async function run(
  ctx: Ctx,
  request: ReturnType<typeof buildRequest>,
  meta: Record<string, unknown>,
  remote: Record<string, unknown> | undefined,
  ignored: string[],
  base64: boolean,
): Promise<void> {
  const { queue } = ctx.state;
  // Ignored names are the client's own text: encoded for the header (CR/LF, non-Latin-1) before any work starts.
  const ignoredHeader = ignored.length ? headerSafe(ignored.map(boundedName).join(', ')) : undefined;
  const job = await queue.submit(request, { dialect: 'segmind', ...meta }, remote);
  await waitForJob(ctx, job);
  if (job.status !== 'completed' || !job.result) throw jobError(job, ctx.state.log);
  const r = job.result;
  const headers: Record<string, string> = {
    'x-request-id': job.id,
    'x-svd-seed': String(r.seed),
    'x-generation-time': (((job.completedAt ?? Date.now()) - (job.startedAt ?? job.createdAt)) / 1000).toFixed(2),
  };
  if (ignoredHeader) headers['x-svd-ignored-fields'] = ignoredHeader;
  try {
    const path = await queue.resultFile(job);
    if (base64) {
      const ignoredFields = ignored.length ? { ignored_fields: ignored.map(boundedName) } : {};
      sendJson(ctx.res, 200, { image: (await readFile(path)).toString('base64'), ...ignoredFields }, headers);
    } else await sendFile(ctx.req, ctx.res, path, r.contentType, headers);
  } finally {
    // A sync answer is the only way to get this video; nothing will ask for it again.
    await queue.delete(job.id);
  }
}

async function notServed(ctx: Ctx): Promise<void> {
  throw new HttpError(
    404,
    'not_found',
    `model ${ctx.params[0]} is not served here; this server has svd and motionctrl-svd`,
  );
}

export const segmindRoutes: Route[] = [
  { method: 'POST', path: /^\/v1\/svd$/, handler: svd, errors: segmindError },
  { method: 'POST', path: /^\/v1\/motionctrl-svd$/, handler: motionCtrl, errors: segmindError },
  { method: 'POST', path: /^\/v1\/([a-z0-9][a-z0-9.-]*)$/, handler: notServed, errors: segmindError },
];
