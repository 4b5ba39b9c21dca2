/**
 * Where the shared job queue lives: a `redis://[user:password@]host[:port][/db]` URL (or `rediss://` for TLS),
 * the Redis connections BullMQ and we use, and the names of everything we keep there. The URL may carry a
 * password, so it is only ever shown through `redactQueueUrl`.
 */
import { Redis } from 'ioredis';
import { InvalidRequestError, SvdError } from '../../errors.js';

/** The BullMQ queue every API server and worker of one deployment shares. */
export const QUEUE_NAME = 'generate';
/** Prefix of every key, BullMQ's and ours, so one Redis can also hold other data. */
export const KEY_PREFIX = 'svd';

/** Our own keys next to BullMQ's: result bytes, cancel marks, worker heartbeats and the cancel channel. */
export const keys = {
  result: (jobId: string) => `${KEY_PREFIX}:result:${jobId}`,
  cancel: (jobId: string) => `${KEY_PREFIX}:cancel:${jobId}`,
  worker: (name: string) => `${KEY_PREFIX}:worker:${name}`,
  workerPattern: `${KEY_PREFIX}:worker:*`,
  cancelChannel: `${KEY_PREFIX}:cancel`,
};

/** Redis cannot be reached (or refused us): a 503 to clients, a clear line on the command line. */
export class QueueUnavailableError extends SvdError {
  constructor(message: string) {
    super('queue_unavailable', message);
  }
}

/** Checks the URL's shape; the error names `field` (the flag or option) and never echoes a password. */
export function checkQueueUrl(url: string, field = 'queue'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidRequestError([
      { field, message: 'must be a URL like redis://host:6379 or redis://:password@host:6379/0' },
    ]);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new InvalidRequestError([{ field, value: u.protocol, message: 'must start with redis:// or rediss://' }]);
  }
  if (u.pathname !== '' && u.pathname !== '/' && !/^\/\d{1,2}$/.test(u.pathname)) {
    throw new InvalidRequestError([{ field, message: 'the path must be a database number, e.g. redis://host:6379/0' }]);
  }
  return url;
}

/** The URL as it may be printed: the password replaced by `***`. */
export function redactQueueUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid queue URL)';
  }
}

/**
 * A Redis connection for BullMQ and our keys. `maxRetriesPerRequest: null` is what BullMQ workers need
 * (blocking commands wait out a Redis restart instead of failing); `failFast` is for an API server, whose
 * clients should get a 503 rather than hang while Redis is away.
 */
export function connectRedis(url: string, role: string, o: { failFast?: boolean } = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: o.failFast ? 2 : null,
    connectionName: `svd-${role}`,
    lazyConnect: true,
  });
  // ioredis reconnects on its own; without a listener an error event would crash the process.
  redis.on('error', () => {});
  return redis;
}

/** Connects and pings within `timeoutMs`, or throws QueueUnavailableError naming the (redacted) URL. */
export async function openRedis(
  url: string,
  role: string,
  o: { failFast?: boolean; timeoutMs?: number } = {},
): Promise<Redis> {
  const redis = connectRedis(url, role, o);
  const timeoutMs = o.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)),
      ),
    ]);
    return redis;
  } catch (err) {
    redis.disconnect();
    const why = err instanceof Error ? err.message : String(err);
    // ioredis messages name host and port at most; the URL we print is redacted.
    throw new QueueUnavailableError(`cannot reach the job queue at ${redactQueueUrl(url)}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
}

/** What an API server tells clients while Redis is away; the host stays out of it (the server log names it). */
export const QUEUE_DOWN_MESSAGE = 'the job queue (Redis) cannot be reached; try again in a few seconds';

/** Whether a Redis connection is usable now, and the last connection error while it is not. */
export interface QueueLink {
  readonly up: boolean;
  readonly cause: string | undefined;
  /** Stops watching (before closing the connection on purpose, which is no outage). */
  stop(): void;
}

/**
 * Follows a connection through outages: ioredis reconnects on its own, and this logs one line when the
 * connection is lost (with the cause, e.g. `connect ECONNREFUSED 10.0.0.5:6379`) and one when it is back,
 * instead of one per failed attempt. `whileDown` says what that means for the reader (jobs refused, ...);
 * `onBack` runs when the connection is usable again after an outage.
 */
export function watchQueueLink(
  redis: Redis,
  url: string,
  log: ((line: string) => void) | undefined,
  whileDown: string,
  onBack?: () => void,
): QueueLink {
  let downSince: number | undefined;
  let cause: string | undefined;
  const onError = (err: Error) => {
    cause = err.message;
  };
  const onClose = () => {
    if (downSince !== undefined) return;
    downSince = Date.now();
    log?.(`lost the job queue at ${redactQueueUrl(url)}${cause ? ` (${cause})` : ''}; reconnecting; ${whileDown}`);
  };
  const onReady = () => {
    if (downSince === undefined) return;
    const seconds = ((Date.now() - downSince) / 1000).toFixed(1);
    log?.(`the job queue at ${redactQueueUrl(url)} is back after ${seconds} s`);
    downSince = undefined;
    cause = undefined;
    onBack?.();
  };
  redis.on('error', onError);
  redis.on('close', onClose);
  redis.on('ready', onReady);
  return {
    get up() {
      return redis.status === 'ready';
    },
    get cause() {
      return cause;
    },
    stop() {
      redis.off('error', onError);
      redis.off('close', onClose);
      redis.off('ready', onReady);
    },
  };
}
