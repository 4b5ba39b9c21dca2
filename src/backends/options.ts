/**
 * Options of the hosted-API backends: how to reach a provider (key, base URL, deadline, retries) and the
 * provider-only request fields our generation schema lacks (`RemoteParams`: prompt, quality, ...).
 *
 * `RemoteParams` is one flat, validated object so that `--backend auto` can take the same flags whatever
 * provider it lands on; each endpoint declares which of its fields it uses, and the rest are reported in
 * `metadata.ignored`. The provider's own ranges live next to each endpoint (its wire schema), not here.
 */
import { z } from 'zod';
import { InvalidRequestError, ProviderError } from '../errors.js';
import { fieldIssuesFromZod } from '../request/schema.js';
import type { GenerationRequestInput } from '../request/schema.js';
import type { RetryPolicy } from '../net/retry.js';
import type { Backend, BackendResult, GenerateCallOptions } from './types.js';
import type { OutputFormat } from '../request/types.js';

export const REMOTE_BACKENDS = ['segmind', 'fal', 'voltage', 'openai'] as const;
export type RemoteBackendName = (typeof REMOTE_BACKENDS)[number];

export const PIXVERSE_QUALITIES = ['360p', '540p', '720p', '1080p'] as const;
export const PIXVERSE_MOTION_MODES = ['normal', 'fast'] as const;
export const PIXVERSE_STYLES = ['anime', '3d_animation', 'clay', 'comic', 'cyberpunk'] as const;

const imageRef = z.union([z.string().min(1, { error: 'must not be empty' }), z.instanceof(Uint8Array)], {
  error: 'must be a file path, an http(s) URL, a data: URI, base64 text or bytes',
});

export const remoteParamsSchema = z.strictObject({
  /** Provider endpoint or model id: a Segmind slug, a fal model id, an OpenAI/VoltageGPU `model`. */
  model: z.string().min(1, { error: 'must not be empty' }).optional(),
  /** Text prompt (PixVerse, VoltageGPU, OpenAI videos). SVD itself has no text input. */
  prompt: z.string().min(1, { error: 'must not be empty' }).optional(),
  negativePrompt: z.string().min(1, { error: 'must not be empty' }).optional(),
  /** Video length in seconds (PixVerse `duration`, OpenAI `seconds`). */
  duration: z
    .number({ error: 'must be a whole number of seconds' })
    .int({ error: 'must be a whole number of seconds' })
    .positive({ error: 'must be a positive number of seconds' })
    .optional(),
  quality: z.enum(PIXVERSE_QUALITIES, { error: `must be one of ${PIXVERSE_QUALITIES.join(', ')}` }).optional(),
  motionMode: z.enum(PIXVERSE_MOTION_MODES, { error: `must be one of ${PIXVERSE_MOTION_MODES.join(', ')}` }).optional(),
  style: z.enum(PIXVERSE_STYLES, { error: `must be one of ${PIXVERSE_STYLES.join(', ')}` }).optional(),
  /** Motion mask: black moves, white stays still (fal-ai/svd `mask_image_url`). */
  maskImage: imageRef.optional(),
  /** Archive of one depth map per frame (fal-ai/svd `control_maps_data_url`). */
  controlMaps: imageRef.optional(),
});
export type RemoteParamsInput = z.input<typeof remoteParamsSchema>;
export type RemoteParams = z.output<typeof remoteParamsSchema>;

/** Validates provider-only fields; issues are named `remote.<field>`. */
export function parseRemoteParams(input: unknown): RemoteParams {
  const result = remoteParamsSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new InvalidRequestError(
      fieldIssuesFromZod(result.error, input).map((i) => ({ ...i, field: `remote.${i.field}` })),
    );
  }
  return result.data;
}

/** Turns a finished file into another container (e.g. the video module's ffmpeg); providers return mp4 only. */
export type Transcode = (
  input: string,
  output: string,
  format: Exclude<OutputFormat, 'mp4'>,
  signal?: AbortSignal,
) => Promise<void>;

/** How to reach a provider; everything optional, environment variables fill the gaps. */
export interface RemoteBackendOptions {
  /** API key; default from the provider's environment variable. Never logged, never in error messages. */
  apiKey?: string;
  /** Overrides the provider's base URL and its environment variable (the CLI's `--base-url`). */
  baseUrl?: string;
  /** Environment to read keys and URLs from; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Provider-only request fields applied to every call (a call's own `remote` is merged over them). */
  remote?: RemoteParamsInput;
  /** Bound on a whole job: submit, queue, retries, polling and download. Default 15 minutes. */
  deadlineMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Status poll interval for queue/async APIs. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Needed for `format` other than mp4. */
  transcode?: Transcode;
  /** Informational messages (retries). Default: silent. */
  log?: (message: string) => void;
  /** fal: queue base URL (`FAL_QUEUE_URL`); with `baseUrl` alone, both fal URLs use `baseUrl`. */
  queueUrl?: string;
  /** fal: `queue` (default; progress, cancel) or `sync` (one blocking call to fal.run). */
  falMode?: 'queue' | 'sync';
  /** Segmind: asset upload URL (`SEGMIND_UPLOAD_URL`) used when pixverse needs a URL for a local image. */
  uploadUrl?: string;
  /** Segmind: ask for base64 JSON instead of raw bytes. */
  segmindBase64?: boolean;
  /** OpenAI-style servers: also send the SVD knobs (num_frames, fps, motion_bucket_id, ...) as extra fields. */
  svdExtensions?: boolean;
  /**
   * Let result URLs the provider returns point at loopback/private addresses on other hosts than the
   * configured endpoints (local mocks). Default false: such URLs are refused like a server client's.
   */
  allowPrivateUrls?: boolean;
  /** Largest result video accepted, in bytes. Default: sized from the job (see resultSizeLimit). */
  maxDownloadBytes?: number;
}

/** A hosted backend: a Backend whose calls may also carry provider-only fields. */
export interface RemoteBackend extends Backend {
  readonly name: RemoteBackendName;
  generate(request: GenerationRequestInput, options?: GenerateCallOptions): Promise<BackendResult>;
}

interface ProviderEnv {
  keyVars: readonly string[];
  baseVar: string;
  defaultBase: string;
}

/** Environment variables and default base URLs (base URLs include the version prefix, like each SDK's). */
export const PROVIDER_ENV: Record<RemoteBackendName, ProviderEnv> = {
  segmind: { keyVars: ['SEGMIND_API_KEY'], baseVar: 'SEGMIND_BASE_URL', defaultBase: 'https://api.segmind.com/v1' },
  fal: { keyVars: ['FAL_KEY'], baseVar: 'FAL_BASE_URL', defaultBase: 'https://fal.run' },
  voltage: { keyVars: ['VOLTAGE_API_KEY'], baseVar: 'VOLTAGE_BASE_URL', defaultBase: 'https://api.voltagegpu.com/v1' },
  openai: { keyVars: ['OPENAI_API_KEY'], baseVar: 'OPENAI_BASE_URL', defaultBase: 'https://api.openai.com/v1' },
};
export const FAL_QUEUE_DEFAULT = 'https://queue.fal.run';
export const SEGMIND_UPLOAD_DEFAULT = 'https://workflows-api.segmind.com/upload-asset';

/** The key from the option or the environment; fal also accepts `FAL_KEY_ID` + `FAL_KEY_SECRET`. */
export function findApiKey(
  provider: RemoteBackendName,
  options: Pick<RemoteBackendOptions, 'apiKey' | 'env'>,
): string | undefined {
  if (options.apiKey) return options.apiKey;
  const env = options.env ?? process.env;
  for (const v of PROVIDER_ENV[provider].keyVars) if (env[v]) return env[v];
  if (provider === 'fal' && env.FAL_KEY_ID && env.FAL_KEY_SECRET) return `${env.FAL_KEY_ID}:${env.FAL_KEY_SECRET}`;
  return undefined;
}

/** Like findApiKey, but a missing key is an error that names the variable to set. */
export function requireApiKey(
  provider: RemoteBackendName,
  options: Pick<RemoteBackendOptions, 'apiKey' | 'env'>,
): string {
  const key = findApiKey(provider, options);
  if (key) return key;
  throw new ProviderError({
    provider,
    providerMessage: `no API key: set ${PROVIDER_ENV[provider].keyVars[0]} or pass --api-key`,
    retryable: false,
    code: 'missing_api_key',
  });
}

/** The base URL without a trailing slash: option, then environment, then the provider's default. */
export function baseUrlFor(
  provider: RemoteBackendName,
  options: Pick<RemoteBackendOptions, 'baseUrl' | 'env'>,
): string {
  const env = options.env ?? process.env;
  return trimSlash(options.baseUrl || env[PROVIDER_ENV[provider].baseVar] || PROVIDER_ENV[provider].defaultBase);
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
