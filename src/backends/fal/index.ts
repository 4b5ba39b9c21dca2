/**
 * fal.ai (docs/providers.md §2): `Authorization: Key <FAL_KEY>`, images as data: URIs, output `{video: File, seed}`.
 * The queue (default) gives progress from logs and remote cancel; `falMode: 'sync'` makes one blocking call
 * to fal.run. The model is chosen from the request: a mask or depth maps → fal-ai/svd, else
 * fal-ai/stable-video; `remote.model` names one explicitly.
 */
import { InvalidRequestError } from '../../errors.js';
import {
  FAL_QUEUE_DEFAULT,
  baseUrlFor,
  requireApiKey,
  trimSlash,
  type RemoteBackend,
  type RemoteBackendOptions,
  type RemoteParams,
} from '../options.js';
import { checkBody, ignoredFields, ourValues } from '../endpoint.js';
import { asUrlOrDataUri, readFileMedia, readImageMedia } from '../media.js';
import { badResponse, httpJson } from '../http.js';
import { downloadVideo } from '../download.js';
import { chosenSeed, runRemoteJob, type Job, type JobOutcome } from '../job.js';
import { FAL_ENDPOINTS, FAL_MODELS, type FalEndpoint, type FalModel } from './wire.js';
import { runFalQueue } from './queue.js';

/** The fal model for a request, and why. */
export function pickFalEndpoint(
  remote: RemoteParams,
  request: { mask?: unknown } = {},
): { endpoint: FalEndpoint; reason: string } {
  if (remote.model) {
    if (!FAL_MODELS.includes(remote.model as FalModel)) {
      throw new InvalidRequestError([
        { field: 'remote.model', value: remote.model, message: `must be one of ${FAL_MODELS.join(', ')} for fal` },
      ]);
    }
    return { endpoint: FAL_ENDPOINTS[remote.model as FalModel], reason: 'named by remote model' };
  }
  if (request.mask !== undefined || remote.maskImage !== undefined || remote.controlMaps !== undefined) {
    return { endpoint: FAL_ENDPOINTS['fal-ai/svd'], reason: 'a motion mask or depth maps were given' };
  }
  return { endpoint: FAL_ENDPOINTS['fal-ai/stable-video'], reason: 'plain image-to-video' };
}

/** The queue URL: `queueUrl`, then an explicit `baseUrl` (one server for both), then FAL_QUEUE_URL, then the default. */
export function falQueueUrl(o: Pick<RemoteBackendOptions, 'queueUrl' | 'baseUrl' | 'env'>): string {
  return trimSlash(o.queueUrl || o.baseUrl || (o.env ?? process.env).FAL_QUEUE_URL || FAL_QUEUE_DEFAULT);
}

/** A fal backend. Throws ProviderError `missing_api_key` when no key is given or in FAL_KEY. */
export function createFalBackend(options: RemoteBackendOptions = {}): RemoteBackend {
  const apiKey = requireApiKey('fal', options);
  const urls = { syncUrl: baseUrlFor('fal', options), queueUrl: falQueueUrl(options) };
  return {
    name: 'fal',
    generate: (request, call = {}) =>
      runRemoteJob('fal', options, [apiKey], request, call, chosenSeed, (job) =>
        runFal(job, { ...options, ...urls, apiKey }),
      ),
  };
}

async function runFal(
  job: Job,
  o: RemoteBackendOptions & { apiKey: string; syncUrl: string; queueUrl: string },
): Promise<JobOutcome> {
  const { endpoint, reason } = pickFalEndpoint(job.remote, job.req);
  const seed = job.seed!;
  const image = asUrlOrDataUri(await readImageMedia(job.req.image));
  // the request's `mask` (the same field the local pipeline honours), or the older `remote.maskImage`
  const maskField = job.req.mask !== undefined ? 'mask' : 'remote.maskImage';
  const maskRef = job.req.mask ?? job.remote.maskImage;
  const mask = maskRef === undefined ? undefined : asUrlOrDataUri(await readImageMedia(maskRef, maskField));
  const controlMaps =
    job.remote.controlMaps === undefined
      ? undefined
      : asUrlOrDataUri(await readFileMedia(job.remote.controlMaps, 'remote.controlMaps'));
  const input = checkBody(
    endpoint,
    endpoint.build({ req: job.req, input: job.input, remote: job.remote, seed, image, mask, controlMaps }),
    ourValues(job.req, job.remote),
  );
  const mode = o.falMode ?? 'queue';
  const metadata: Record<string, unknown> = {
    endpoint: endpoint.modelId,
    endpointReason: reason,
    mode,
    ignored: ignoredFields(endpoint, job.input, job.remoteInput),
  };

  const t = performance.now();
  let result: unknown;
  if (mode === 'sync') {
    job.onProgress({
      stage: 'remote',
      message: `fal ${endpoint.modelId}: generating (the call returns when the video is ready)`,
    });
    result = await httpJson(job.ctx, `${o.syncUrl}/${endpoint.modelId}`, {
      method: 'POST',
      action: `POST /${endpoint.modelId}`,
      headers: { authorization: `Key ${o.apiKey}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(input),
    });
  } else {
    const q = await runFalQueue(job.ctx, {
      queueUrl: o.queueUrl,
      modelId: endpoint.modelId,
      apiKey: o.apiKey,
      input,
      pollIntervalMs: o.pollIntervalMs ?? 1000,
      onProgress: job.onProgress,
    });
    result = q.result;
    metadata.requestId = q.requestId;
  }
  job.timings.remote = performance.now() - t;

  // SVD endpoints answer {video: File, seed}; fal-ai/svd's page names the file `image`.
  const out = (result ?? {}) as { video?: { url?: string }; image?: { url?: string }; seed?: number };
  const videoUrl = out.video?.url ?? out.image?.url;
  if (!videoUrl) throw badResponse(job.ctx, `${endpoint.modelId} answered without a video URL`);
  const d = performance.now();
  const saved = await downloadVideo(job.ctx, videoUrl, job.videoPath, job.onProgress);
  job.timings.download = performance.now() - d;
  return { saved, seed: typeof out.seed === 'number' ? out.seed : seed, metadata };
}
