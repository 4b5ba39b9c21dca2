/**
 * Segmind serverless v1 (docs/providers.md §1): one blocking `POST /v1/<slug>` with `x-api-key`, answered with the
 * video bytes, or JSON when `base64: true`. The endpoint is chosen from the request: a camera preset →
 * motionctrl-svd, a prompt → pixverse-image2video, else svd; `remote.model` names one explicitly.
 */
import { InvalidRequestError } from '../../errors.js';
import {
  baseUrlFor,
  requireApiKey,
  type RemoteBackend,
  type RemoteBackendOptions,
  type RemoteParams,
} from '../options.js';
import { checkBody, ignoredFields, ourValues } from '../endpoint.js';
import { readImageMedia, asUrlOrBase64 } from '../media.js';
import { httpRequest } from '../http.js';
import { chosenSeed, runRemoteJob, type Job, type JobOutcome } from '../job.js';
import { SEGMIND_ENDPOINTS, SEGMIND_SLUGS, type SegmindEndpoint, type SegmindSlug } from './wire.js';
import { saveSegmindAnswer } from './answer.js';
import { uploadToSegmindStorage, segmindUploadUrl } from './upload.js';

/** The endpoint for a request, and why. */
export function pickSegmindEndpoint(
  remote: RemoteParams,
  req: { camera?: unknown } = {},
): { endpoint: SegmindEndpoint; reason: string } {
  if (remote.model) {
    const slug = remote.model.replace(/^\/?(v1\/)?/, '') as SegmindSlug;
    if (!SEGMIND_SLUGS.includes(slug)) {
      throw new InvalidRequestError([
        {
          field: 'remote.model',
          value: remote.model,
          message: `must be one of ${SEGMIND_SLUGS.join(', ')} for segmind`,
        },
      ]);
    }
    return { endpoint: SEGMIND_ENDPOINTS[slug], reason: 'named by remote model' };
  }
  if (req.camera !== undefined)
    return { endpoint: SEGMIND_ENDPOINTS['motionctrl-svd'], reason: 'a camera motion was given' };
  if (remote.prompt) return { endpoint: SEGMIND_ENDPOINTS['pixverse-image2video'], reason: 'a prompt was given' };
  return { endpoint: SEGMIND_ENDPOINTS.svd, reason: 'plain image-to-video' };
}

/** A Segmind backend. Throws ProviderError `missing_api_key` when no key is given or in SEGMIND_API_KEY. */
export function createSegmindBackend(options: RemoteBackendOptions = {}): RemoteBackend {
  const apiKey = requireApiKey('segmind', options);
  const baseUrl = baseUrlFor('segmind', options);
  return {
    name: 'segmind',
    generate: (request, call = {}) =>
      runRemoteJob('segmind', options, [apiKey], request, call, chosenSeed, (job) =>
        runSegmind(job, { ...options, apiKey, baseUrl }),
      ),
  };
}

async function runSegmind(
  job: Job,
  o: RemoteBackendOptions & { apiKey: string; baseUrl: string },
): Promise<JobOutcome> {
  const { endpoint, reason } = pickSegmindEndpoint(job.remote, job.req);
  const base64 = o.segmindBase64 ?? false;
  const seed = job.seed!;
  const media = await readImageMedia(job.req.image);
  // Check the body before any upload or call; an upload's URL stands in until it exists.
  const imageForCheck =
    media.kind === 'url' || endpoint.image !== 'url' ? asUrlOrBase64(media) : 'https://upload.pending/image';
  checkBody(endpoint, endpoint.build(job.req, job.remote, seed, imageForCheck, base64), ourValues(job.req, job.remote));

  const metadata: Record<string, unknown> = {
    endpoint: endpoint.slug,
    endpointReason: reason,
    ignored: ignoredFields(endpoint, job.input, job.remoteInput),
  };
  let image = asUrlOrBase64(media);
  if (endpoint.image === 'url' && media.kind === 'bytes') {
    job.onProgress({ stage: 'remote', message: 'uploading the image to Segmind storage' });
    const t = performance.now();
    image = await uploadToSegmindStorage(job.ctx, segmindUploadUrl(o), o.apiKey, media);
    job.timings.upload = performance.now() - t;
    metadata.uploadedImage = image;
  }
  const body = endpoint.build(job.req, job.remote, seed, image, base64);

  job.onProgress({
    stage: 'remote',
    message: `segmind ${endpoint.slug}: generating (the call returns when the video is ready)`,
  });
  const t = performance.now();
  const res = await httpRequest(job.ctx, `${o.baseUrl}/${endpoint.slug}`, {
    method: 'POST',
    action: `POST /${endpoint.slug}`,
    headers: { 'x-api-key': o.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  job.timings.remote = performance.now() - t;
  const credits = res.headers.get('x-remaining-credits');
  if (credits !== null) metadata.remainingCredits = Number(credits);

  const d = performance.now();
  const saved = await saveSegmindAnswer(job.ctx, res, job.videoPath, job.onProgress);
  job.timings.download = performance.now() - d;
  return { saved, seed, metadata };
}
