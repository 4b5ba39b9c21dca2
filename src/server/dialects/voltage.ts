/**
 * The community `POST /v1/video/generations` shape (VoltageGPU; docs/providers.md §3.1): a JSON body
 * with `model`, `prompt`, `num_frames`, `fps`, `width`, `height` and the image (`image` or `image_url`: URL,
 * data: URI or base64), answered when the video is ready with `{created, data: [{url}]}` — or
 * `[{b64_json}]` with `response_format: "b64_json"`. OpenAI-style errors.
 */
import { readFile } from 'node:fs/promises';
import { SVD_EXTENSION_FIELDS, requestFromExtensions, videoGenerationBody } from '../../backends/openai/wire.js';
import { body, buildRequest, fileUrl, waitForJob, type Ctx } from '../context.js';
import { parseJsonObject, sendJson } from '../http.js';
import { imageFromClient } from '../imageInput.js';
import { jobError } from '../problems.js';
import type { Route } from '../router.js';
import { parseWire } from './fields.js';
import { openaiError } from './openaiFields.js';

async function generate(ctx: Ctx): Promise<void> {
  const w = parseWire(videoGenerationBody, parseJsonObject(await body(ctx)));
  const field = w.image !== undefined ? 'image' : 'image_url';
  const image = await imageFromClient(w.image ?? w.image_url, field, ctx.state.limits);
  const request = buildRequest(
    ctx,
    { ...requestFromExtensions(w), image, width: w.width, height: w.height },
    {
      ...SVD_EXTENSION_FIELDS,
      width: 'width',
      height: 'height',
    },
  );
  const job = await ctx.state.queue.submit(
    request,
    { dialect: 'voltage', imageField: field, model: w.model ?? 'svd' },
    w.prompt ? { prompt: w.prompt } : undefined,
  );
  await waitForJob(ctx, job);
  if (job.status !== 'completed' || !job.result) throw jobError(job, ctx.state.log);
  const created = Math.floor(job.createdAt / 1000);
  if (w.response_format === 'b64_json') {
    const { seed } = job.result; // read before the delete, which drops the job's result
    const b64 = (await readFile(await ctx.state.queue.resultFile(job))).toString('base64');
    await ctx.state.queue.delete(job.id);
    sendJson(ctx.res, 200, { created, data: [{ b64_json: b64 }], seed });
    return;
  }
  sendJson(ctx.res, 200, { created, data: [{ url: fileUrl(ctx, job.result) }], seed: job.result.seed });
}

export const voltageRoutes: Route[] = [
  { method: 'POST', path: /^\/v1\/video\/generations$/, handler: generate, errors: openaiError },
];
