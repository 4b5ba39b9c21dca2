/**
 * OpenAI's Videos API (docs/providers.md §3.2) and servers that copy it: `POST /videos` (multipart, like the
 * official SDK), poll `GET /videos/{id}`, download `GET /videos/{id}/content`. A prompt is required.
 * With `svdExtensions`, the SVD knobs travel as extra form fields for SVD-serving compatible servers
 * (OpenAI itself would reject them); without it they are reported as ignored.
 */
import { z } from 'zod';
import { InvalidRequestError, ProviderError } from '../../errors.js';
import { baseUrlFor, requireApiKey, type RemoteBackend, type RemoteBackendOptions } from '../options.js';
import { checkBody, defined, ignoredFields, ourValues, type EndpointSpec } from '../endpoint.js';
import { readImageMedia } from '../media.js';
import { badResponse, bestEffort, httpJson, httpRequest, sleep } from '../http.js';
import { redact } from '../providerErrors.js';
import { saveResponseBody } from '../download.js';
import { chosenSeed, runRemoteJob, type Job, type JobOutcome } from '../job.js';
import { SVD_EXTENSION_FIELDS, VIDEO_CREATE_FIELDS, videoCreateBody } from './wire.js';

export const OPENAI_DEFAULT_MODEL = 'sora-2';

function spec(extensions: boolean): EndpointSpec {
  return {
    provider: 'openai',
    id: '/videos',
    uses: [
      'width',
      'height',
      'duration',
      ...(extensions ? (Object.keys(SVD_EXTENSION_FIELDS) as (keyof typeof SVD_EXTENSION_FIELDS)[]) : []),
    ],
    usesRemote: ['prompt', 'duration'],
    // OpenAI requires a prompt; SVD-compatible servers (svdExtensions) do not, SVD has no text input.
    schema: extensions
      ? videoCreateBody
      : videoCreateBody.extend({
          prompt: z.string({
            error: 'is required by the OpenAI videos API (SVD-compatible servers: set svdExtensions)',
          }),
        }),
    fieldOf: VIDEO_CREATE_FIELDS,
  };
}

/** An OpenAI videos backend. Throws ProviderError `missing_api_key` when no key is given or in OPENAI_API_KEY. */
export function createOpenAIBackend(options: RemoteBackendOptions = {}): RemoteBackend {
  const apiKey = requireApiKey('openai', options);
  const baseUrl = baseUrlFor('openai', options);
  const extensions = options.svdExtensions ?? false;
  return {
    name: 'openai',
    generate: (request, call = {}) =>
      runRemoteJob(
        'openai',
        options,
        [apiKey],
        request,
        call,
        (req) => (extensions ? chosenSeed(req) : undefined),
        (job) => runOpenAI(job, { ...options, apiKey, baseUrl, extensions }),
      ),
  };
}

interface VideoObject {
  id?: string;
  status?: string;
  progress?: number;
  error?: { code?: string; message?: string } | null;
}

async function runOpenAI(
  job: Job,
  o: RemoteBackendOptions & { apiKey: string; baseUrl: string; extensions: boolean },
): Promise<JobOutcome> {
  const endpoint = spec(o.extensions);
  const { req, remote } = job;
  if ((req.width === undefined) !== (req.height === undefined)) {
    throw new InvalidRequestError([
      {
        field: req.width === undefined ? 'width' : 'height',
        message: 'is needed too: the OpenAI videos API takes a size (width x height)',
      },
    ]);
  }
  const fields = checkBody(
    endpoint,
    defined({
      model: remote.model ?? OPENAI_DEFAULT_MODEL,
      prompt: remote.prompt,
      seconds: (remote.duration ?? req.duration) === undefined ? undefined : String(remote.duration ?? req.duration),
      size: req.width === undefined ? undefined : `${req.width}x${req.height}`,
    }),
    ourValues(req, remote),
  ) as Record<string, string>;
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (o.extensions) {
    const values: Record<string, unknown> = { ...req, seed: job.seed, steps: job.input.steps };
    for (const [ours, wire] of Object.entries(SVD_EXTENSION_FIELDS)) {
      if (values[ours] !== undefined) form.append(wire, String(values[ours]));
    }
  }
  const media = await readImageMedia(req.image);
  if (media.kind === 'url') form.append('input_reference[image_url]', media.url);
  else form.append('input_reference', new Blob([media.bytes], { type: media.mime }), media.name);

  const headers = { authorization: `Bearer ${o.apiKey}` };
  const metadata: Record<string, unknown> = {
    endpoint: '/videos',
    model: fields.model,
    ignored: ignoredFields(endpoint, job.input, job.remoteInput),
  };
  const t = performance.now();
  let video = await httpJson<VideoObject>(job.ctx, `${o.baseUrl}/videos`, {
    method: 'POST',
    action: 'POST /videos',
    headers,
    body: form,
  });
  if (!video.id) throw badResponse(job.ctx, 'POST /videos answered without a video id');
  const id = video.id;
  metadata.videoId = id;
  const videoUrl = `${o.baseUrl}/videos/${encodeURIComponent(id)}`;
  try {
    for (;;) {
      if (typeof video.progress === 'number')
        job.onProgress({ stage: 'remote', fraction: video.progress / 100, message: video.status });
      if (video.status === 'completed') break;
      if (video.status === 'failed') {
        const msg = redact(
          `${video.error?.code ? `${video.error.code}: ` : ''}${video.error?.message ?? 'no reason given'}`,
          job.ctx.secrets,
        );
        throw new ProviderError({
          provider: 'openai',
          providerMessage: msg,
          retryable: false,
          code: 'provider_job_failed',
          message: `openai: the video job failed: ${msg}`,
        });
      }
      await sleep(job.ctx, o.pollIntervalMs ?? 1000);
      video = await httpJson<VideoObject>(job.ctx, videoUrl, { method: 'GET', action: 'GET /videos/{id}', headers });
    }
    job.timings.remote = performance.now() - t;
    const d = performance.now();
    const res = await httpRequest(job.ctx, `${videoUrl}/content`, {
      method: 'GET',
      action: 'GET /videos/{id}/content',
      headers: { ...headers, accept: 'application/binary' },
    });
    const saved = await saveResponseBody(job.ctx, res, job.videoPath, job.onProgress);
    job.timings.download = performance.now() - d;
    return { saved, seed: job.seed ?? -1, metadata };
  } catch (err) {
    // OpenAI has no cancel; deleting the job is the documented way to drop it.
    if (job.ctx.signal.aborted) await bestEffort(videoUrl, { method: 'DELETE', headers });
    throw err;
  }
}
