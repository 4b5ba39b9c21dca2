/** `startServer` options, their defaults, and the checks made before anything listens. */
import { InvalidRequestError } from '../errors.js';
import type { Backend } from '../backends/types.js';
import type { BackendName } from '../backends/select.js';
import type { RemoteBackendOptions } from '../backends/options.js';
import { parseRequest, type GenerationRequestInput } from '../request/schema.js';
import { defaultServerMaxMemory } from '../pipeline/admission.js';
import { isLoopbackHost } from './auth.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from './imageInput.js';
import { checkQueueUrl } from './queue/connection.js';

export interface ServerOptions {
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1; anything but loopback needs `apiKey`. */
  host?: string;
  /** The key clients must present (`x-api-key`, `Authorization: Key …` or `Authorization: Bearer …`). Never logged. */
  apiKey?: string;
  /** Model of the local backend (registry name, directory or repo id); default: the embedded tiny model. */
  model?: string;
  /** Device of the local backend: auto | cpu | cuda | cuda:N | webgpu. Default auto. */
  device?: string;
  /** Who makes the videos: `local` (default), a hosted provider by name (keys from its environment variable), or a Backend object. */
  backend?: BackendName | Backend;
  /** How a hosted backend is reached (key, base URL, ...); default: each provider's environment variables. */
  remote?: RemoteBackendOptions;
  /**
   * A shared job queue, `redis://[:password@]host[:port][/db]`: jobs are queued in Redis and run by
   * `svd worker` processes (see README "Several GPUs, several machines"); `model`, `device` and `backend`
   * are then the workers' business. Default: the embedded in-process queue.
   */
  queueUrl?: string;
  /** Jobs that may wait behind the running one before new ones get 429. Default 16. */
  queueSize?: number;
  /** Seconds a finished job's result and video are kept. Default 3600. */
  resultTtlSeconds?: number;
  /** Let image URLs point at loopback/private/link-local addresses. Default false. */
  allowPrivateUrls?: boolean;
  /** Largest request body accepted (413 beyond). Default 32 MiB. */
  maxBodyBytes?: number;
  /** Largest image accepted, inline or downloaded. Default 20 MiB. */
  maxImageBytes?: number;
  /** Largest image accepted in pixels (width × height, read from its header at submit). Default 4096×4096. */
  maxImagePixels?: number;
  /**
   * Memory a local job may use, in bytes: a job whose estimated peak (src/models/memory.ts) exceeds it is refused
   * at submit with 422, naming the fields to change. Default `defaultServerMaxMemory()`, 75 % of the machine's RAM.
   */
  maxMemory?: number;
  /** Time limit for downloading an image URL. Default 30 s. */
  imageTimeoutMs?: number;
  /** Request fields used when a client leaves them out (e.g. `{ steps: 4 }`); validated against the schema at start. */
  defaults?: Partial<Omit<GenerationRequestInput, 'image' | 'output' | 'model' | 'device' | 'format'>>;
  /** Where finished videos are written (in a fresh folder, deleted on close). Default: the system temp dir. */
  workDir?: string;
  /** Base of the links handed out (status/result/video URLs), e.g. behind a reverse proxy. Default: from the Host header. */
  publicUrl?: string;
  /** One line per request and event; never contains keys. Default: silent. */
  log?: (line: string) => void;
}

export interface ResolvedServerOptions
  extends Required<
    Omit<ServerOptions, 'apiKey' | 'model' | 'publicUrl' | 'backend' | 'log' | 'workDir' | 'remote' | 'queueUrl'>
  > {
  queueUrl?: string;
  remote: RemoteBackendOptions;
  apiKey?: string;
  workDir?: string;
  model?: string;
  publicUrl?: string;
  backend: BackendName | Backend;
  log: (line: string) => void;
}

/** Fills defaults and refuses unsafe or invalid settings (InvalidRequestError naming the option). */
export function resolveServerOptions(o: ServerOptions): ResolvedServerOptions {
  const r: ResolvedServerOptions = {
    port: o.port ?? 8080,
    host: o.host ?? '127.0.0.1',
    apiKey: o.apiKey || undefined,
    model: o.model,
    device: o.device ?? 'auto',
    backend: o.backend ?? 'local',
    remote: o.remote ?? {},
    queueUrl: o.queueUrl || undefined,
    queueSize: o.queueSize ?? 16,
    resultTtlSeconds: o.resultTtlSeconds ?? 3600,
    allowPrivateUrls: o.allowPrivateUrls ?? false,
    maxBodyBytes: o.maxBodyBytes ?? 32 * 1024 * 1024,
    maxImageBytes: o.maxImageBytes ?? 20 * 1024 * 1024,
    maxImagePixels: o.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
    imageTimeoutMs: o.imageTimeoutMs ?? 30_000,
    maxMemory: o.maxMemory ?? defaultServerMaxMemory(),
    defaults: o.defaults ?? {},
    publicUrl: o.publicUrl,
    workDir: o.workDir,
    log: o.log ?? (() => {}),
  };
  const issues = [];
  if (!r.apiKey && !isLoopbackHost(r.host)) {
    issues.push({
      field: 'host',
      value: r.host,
      message:
        'without an API key the server only listens on loopback (127.0.0.1, ::1, localhost); set an API key to listen on other interfaces',
    });
  }
  const int = (field: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max)
      issues.push({ field, value: v, message: `must be a whole number from ${min} to ${max}` });
  };
  int('port', r.port, 0, 65535);
  int('queueSize', r.queueSize, 0, 100_000);
  int('resultTtlSeconds', r.resultTtlSeconds, 1, 30 * 24 * 3600);
  int('maxBodyBytes', r.maxBodyBytes, 1024, 2 ** 31);
  int('maxImageBytes', r.maxImageBytes, 1024, 2 ** 31);
  int('maxImagePixels', r.maxImagePixels, 64 * 64, 2 ** 31);
  int('imageTimeoutMs', r.imageTimeoutMs, 100, 600_000);
  int('maxMemory', r.maxMemory, 2 ** 20, Number.MAX_SAFE_INTEGER);
  if (r.publicUrl !== undefined && !/^https?:\/\/[^/]+/.test(r.publicUrl))
    issues.push({ field: 'publicUrl', value: r.publicUrl, message: 'must be an http(s) URL' });
  if (r.queueUrl !== undefined) {
    try {
      checkQueueUrl(r.queueUrl, 'queueUrl');
    } catch (err) {
      if (err instanceof InvalidRequestError) issues.push(...err.issues);
    }
    if (typeof r.backend !== 'string' || r.backend !== 'local') {
      issues.push({
        field: 'backend',
        message: 'with a shared queue the workers run the local pipeline; hosted backends are not queued',
      });
    }
  }
  if (issues.length) throw new InvalidRequestError(issues);
  // Bad defaults fail now, not on every request.
  try {
    parseRequest({ ...r.defaults, image: 'x' });
  } catch (err) {
    if (err instanceof InvalidRequestError)
      throw new InvalidRequestError(err.issues.map((i) => ({ ...i, field: `defaults.${i.field}` })));
    throw err;
  }
  return r;
}
