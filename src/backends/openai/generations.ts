/**
 * VoltageGPU's `POST /v1/video/generations` (docs/providers.md §3.1), a community convention also used by
 * Xinference and relays: a JSON body with `model`, `prompt`, `num_frames`, `fps`, `width`, `height`, answered
 * with `{data: [{url} | {b64_json}]}`. The image field is not documented; we send it as `image` (URL or
 * data: URI). SVD makes 14–25 frames at up to 1024 px a side there.
 */
import { baseUrlFor, requireApiKey, type RemoteBackend, type RemoteBackendOptions } from '../options.js';
import { checkBody, defined, ignoredFields, ourValues, type EndpointSpec } from '../endpoint.js';
import { VIDEO_GENERATION_FIELDS, voltageGenerationBody } from './wire.js';
import { asUrlOrDataUri, readImageMedia } from '../media.js';
import { badResponse, httpJson } from '../http.js';
import { decodeBase64Video, downloadVideo, saveBytes } from '../download.js';
import { chosenSeed, runRemoteJob, type Job, type JobOutcome } from '../job.js';

export const VOLTAGE_DEFAULT_MODEL = 'stabilityai/stable-video-diffusion-img2vid-xt-1-1';

export const voltageGenerations: EndpointSpec = {
  provider: 'voltage',
  id: '/video/generations',
  uses: ['frames', 'fps', 'width', 'height', 'seed', 'motionBucketId'],
  usesRemote: ['prompt'],
  schema: voltageGenerationBody,
  fieldOf: VIDEO_GENERATION_FIELDS,
};

/** A VoltageGPU (or compatible) backend. Throws ProviderError `missing_api_key` without VOLTAGE_API_KEY. */
export function createVoltageBackend(options: RemoteBackendOptions = {}): RemoteBackend {
  const apiKey = requireApiKey('voltage', options);
  const baseUrl = baseUrlFor('voltage', options);
  return {
    name: 'voltage',
    generate: (request, call = {}) =>
      runRemoteJob('voltage', options, [apiKey], request, call, chosenSeed, (job) => runVoltage(job, apiKey, baseUrl)),
  };
}

async function runVoltage(job: Job, apiKey: string, baseUrl: string): Promise<JobOutcome> {
  const { req, remote } = job;
  const body = checkBody(
    voltageGenerations,
    defined({
      model: remote.model ?? VOLTAGE_DEFAULT_MODEL,
      prompt: remote.prompt,
      image: asUrlOrDataUri(await readImageMedia(req.image)),
      num_frames: req.frames,
      fps: req.fps,
      width: req.width,
      height: req.height,
      seed: job.seed,
      motion_bucket_id: req.motionBucketId,
    }),
    ourValues(req, remote),
  );
  const metadata: Record<string, unknown> = {
    endpoint: '/video/generations',
    model: body.model,
    ignored: ignoredFields(voltageGenerations, job.input, job.remoteInput),
  };
  job.onProgress({ stage: 'remote', message: 'voltage: generating (the call returns when the video is ready)' });
  const t = performance.now();
  const answer = await httpJson<{ data?: { url?: string; b64_json?: string }[] }>(
    job.ctx,
    `${baseUrl}/video/generations`,
    {
      method: 'POST',
      action: 'POST /video/generations',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    },
  );
  job.timings.remote = performance.now() - t;
  const item = answer.data?.[0];
  const d = performance.now();
  let saved: Awaited<ReturnType<typeof saveBytes>>;
  if (item?.url) saved = await downloadVideo(job.ctx, item.url, job.videoPath, job.onProgress);
  else if (item?.b64_json) saved = await saveBytes(job.ctx, decodeBase64Video(item.b64_json), job.videoPath);
  else throw badResponse(job.ctx, 'video/generations answered without data[0].url or data[0].b64_json');
  job.timings.download = performance.now() - d;
  return { saved, seed: job.seed!, metadata };
}
