/**
 * The frame every hosted backend's `generate` runs in: validate the request and the provider-only fields,
 * decide the output path, open the job's deadline/abort context, let the provider do its calls, then
 * convert the container when asked and assemble the BackendResult.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { InvalidRequestError } from '../errors.js';
import { parseRequest, type GenerationRequest, type GenerationRequestInput } from '../request/schema.js';
import type { BackendResult, GenerateCallOptions, ProgressEvent } from './types.js';
import { createCallContext, type CallContext } from './http.js';
import {
  baseUrlFor,
  REMOTE_BACKENDS,
  parseRemoteParams,
  type RemoteBackendName,
  type RemoteBackendOptions,
  type RemoteParams,
  type RemoteParamsInput,
} from './options.js';
import type { SavedVideo } from './download.js';
import { defined } from './endpoint.js';

export interface Job {
  /** The request as the caller wrote it (to tell set fields from schema defaults). */
  input: GenerationRequestInput;
  req: GenerationRequest;
  remote: RemoteParams;
  remoteInput: RemoteParamsInput;
  ctx: CallContext;
  /** The seed chosen before the call (the caller's, or a random one), when the provider takes one. */
  seed?: number;
  /** Where the provider's mp4 goes. */
  videoPath: string;
  onProgress: (e: ProgressEvent) => void;
  /** Stage → milliseconds; providers add `remote`, `download`, ... */
  timings: Record<string, number>;
}

export interface JobOutcome {
  saved: SavedVideo;
  seed: number;
  metadata: Record<string, unknown>;
}

/** A seed for providers that take one; int32 fits every provider's range (PixVerse is the narrowest). */
export function randomSeed(): number {
  return randomInt(0, 2 ** 31 - 1);
}

/** The caller's seed, or a random one for "absent" and -1, so the seed used is always known and reported. */
export function chosenSeed(req: GenerationRequest): number {
  return req.seed === undefined || req.seed === -1 ? randomSeed() : req.seed;
}

/** `<image name>-<seed>.<ext>` in the working directory, like the local pipeline's default. */
export function defaultOutputPath(image: string | Uint8Array, format: string, tag: string): string {
  const fromPath =
    typeof image === 'string' && !image.startsWith('data:') && image.length < 1024
      ? basename(image.split(/[?#]/)[0], extname(image.split(/[?#]/)[0]))
      : '';
  const stem = /^[\w.-]{1,80}$/.test(fromPath) ? fromPath : 'video';
  return resolve(format === 'png' ? `${stem}-${tag}` : `${stem}-${tag}.${format}`);
}

/**
 * The largest result a job may download: every frame as raw RGB24 (no video encoding is larger than its
 * frames uncompressed) plus 64 MiB of slack. Providers return mp4 (other formats are made here, after the
 * download). Frames and size fall back to the largest SVD defaults (25 frames, 1024×576), or a duration at
 * 30 fps for providers that take seconds. 25 frames of 1024×576: 108 MiB.
 */
export function resultSizeLimit(req: GenerationRequest, remote: RemoteParams): number {
  const frames = Math.max(req.frames ?? 25, (remote.duration ?? req.duration ?? 0) * 30);
  const pixels = Math.max((req.width ?? 1024) * (req.height ?? 576), remote.quality === '1080p' ? 1920 * 1080 : 0);
  return 64 * 1024 * 1024 + frames * pixels * 3;
}

/** Origins of the endpoints the operator configured for this provider (option, environment or default). */
function configuredEndpoints(provider: string, options: RemoteBackendOptions): string[] {
  if (!(REMOTE_BACKENDS as readonly string[]).includes(provider)) return [];
  const env = options.env ?? process.env;
  return [
    baseUrlFor(provider as RemoteBackendName, options),
    options.queueUrl,
    env.FAL_QUEUE_URL,
    options.uploadUrl,
  ].filter((u): u is string => typeof u === 'string' && u !== '');
}

export async function runRemoteJob(
  provider: string,
  options: RemoteBackendOptions,
  secrets: string[],
  input: GenerationRequestInput,
  call: GenerateCallOptions,
  /** Decides the seed before the call (and so the default file name); undefined when the provider takes none. */
  seedFor: (req: GenerationRequest) => number | undefined,
  run: (job: Job) => Promise<JobOutcome>,
): Promise<BackendResult> {
  const started = performance.now();
  const req = parseRequest(input);
  // A call's own fields win; its undefined entries do not erase the backend's defaults.
  const remoteInput: RemoteParamsInput = { ...options.remote, ...defined(call.remote ?? {}) };
  const remote = parseRemoteParams(remoteInput);
  if (req.format !== 'mp4' && !options.transcode) {
    throw new InvalidRequestError([
      {
        field: 'format',
        value: req.format,
        message: `${provider} returns mp4; other formats need a transcoder (the local video module)`,
      },
    ]);
  }
  const seed = seedFor(req);
  const output = resolve(
    req.output ?? defaultOutputPath(req.image, req.format, String(seed ?? `${provider}-${Date.now()}`)),
  );
  const videoPath = req.format === 'mp4' ? output : `${output}.${randomBytes(4).toString('hex')}.remote.mp4`;
  const ctx = createCallContext({
    provider,
    secrets,
    userSignal: call.signal,
    deadlineMs: options.deadlineMs,
    retry: options.retry,
    log: options.log,
    trustedOrigins: configuredEndpoints(provider, options),
    allowPrivateUrls: options.allowPrivateUrls,
    maxDownloadBytes: options.maxDownloadBytes ?? resultSizeLimit(req, remote),
  });
  const timings: Record<string, number> = {};
  const onProgress = call.onProgress ?? (() => {});
  let outcome: JobOutcome;
  try {
    outcome = await run({ input, req, remote, remoteInput, ctx, seed, videoPath, onProgress, timings });
  } finally {
    ctx.dispose();
  }
  if (req.format !== 'mp4') {
    const t = performance.now();
    try {
      onProgress({ stage: 'video', message: `converting to ${req.format}` });
      await options.transcode!(outcome.saved.path, output, req.format, call.signal);
    } finally {
      await rm(outcome.saved.path, { force: true });
    }
    timings.video = performance.now() - t;
  }
  timings.total = performance.now() - started;
  return {
    outputPath: output,
    format: req.format,
    seed: outcome.seed,
    backend: provider,
    timings,
    metadata: { ...outcome.metadata, bytes: outcome.saved.bytes, contentType: outcome.saved.contentType },
  };
}
