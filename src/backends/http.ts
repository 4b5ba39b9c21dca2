/**
 * The one HTTP path every hosted backend goes through: a job-wide deadline, the caller's AbortSignal,
 * retries with backoff and `Retry-After` on 429/502/503/504, and non-2xx answers turned into ProviderError
 * with keys redacted. Providers only build URLs, headers and bodies.
 */
import { AbortError, ProviderError } from '../errors.js';
import { networkCause } from '../net/cause.js';
import { startDeadline } from '../net/deadline.js';
import {
  backoffDelay,
  DEFAULT_RETRY,
  isRetryableStatus,
  parseRetryAfter,
  withRetries,
  type RetryPolicy,
} from '../net/retry.js';
import { providerErrorFromResponse, redact } from './providerErrors.js';

/** Everything one job's HTTP calls share. */
export interface CallContext {
  provider: string;
  /** Strings that must never reach a message (the API key). */
  secrets: string[];
  /** Aborted by the caller's signal or by the deadline. */
  signal: AbortSignal;
  userSignal?: AbortSignal;
  deadlineMs: number;
  deadlineAt: number;
  retry: RetryPolicy;
  log: (message: string) => void;
  random: () => number;
  /** Origins of the provider endpoints the operator configured: their result URLs may be on loopback (mocks). */
  trustedOrigins: string[];
  /** Let result URLs reach private/loopback addresses anywhere (local mocks on other ports). */
  allowPrivateUrls: boolean;
  /** Largest result download accepted, in bytes. */
  maxDownloadBytes: number;
  /** Stops the deadline timer; called when the job ends. */
  dispose(): void;
}

export const DEFAULT_DEADLINE_MS = 15 * 60_000;

export function createCallContext(init: {
  provider: string;
  secrets: string[];
  userSignal?: AbortSignal;
  deadlineMs?: number;
  retry?: Partial<RetryPolicy>;
  log?: (message: string) => void;
  random?: () => number;
  trustedOrigins?: string[];
  allowPrivateUrls?: boolean;
  maxDownloadBytes?: number;
}): CallContext {
  const deadlineMs = init.deadlineMs ?? DEFAULT_DEADLINE_MS;
  // Our own timer, not AbortSignal.timeout + any (collected on Node 20; see net/deadline.ts).
  const deadline = startDeadline(deadlineMs, init.userSignal);
  return {
    provider: init.provider,
    secrets: init.secrets.filter(Boolean),
    signal: deadline.signal,
    userSignal: init.userSignal,
    deadlineMs,
    deadlineAt: deadline.at,
    retry: { ...DEFAULT_RETRY, ...init.retry },
    log: init.log ?? (() => {}),
    random: init.random ?? Math.random,
    trustedOrigins: (init.trustedOrigins ?? []).map(originOf).filter((o): o is string => o !== undefined),
    allowPrivateUrls: init.allowPrivateUrls ?? false,
    maxDownloadBytes: init.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES,
    dispose: () => deadline.dispose(),
  };
}

/** A result download larger than this is refused unless the job sizes its own limit (download.ts). */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024;

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** Why the job's signal fired: the caller aborted (AbortError) or the deadline passed (ProviderError). */
export function stopReason(ctx: CallContext): AbortError | ProviderError {
  if (ctx.userSignal?.aborted) return new AbortError();
  return new ProviderError({
    provider: ctx.provider,
    providerMessage: `no result within the deadline of ${ctx.deadlineMs} ms`,
    retryable: true,
    code: 'deadline_exceeded',
  });
}

/** Rethrows any failure of `work` as stopReason when the job was stopped meanwhile. */
export async function guard<T>(ctx: CallContext, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (ctx.signal.aborted) throw stopReason(ctx);
    throw err;
  }
}

/** Waits `ms`, or throws stopReason as soon as the job is stopped. */
export function sleep(ctx: CallContext, ms: number): Promise<void> {
  if (ctx.signal.aborted) return Promise.reject(stopReason(ctx));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(stopReason(ctx));
    };
    const timer = setTimeout(() => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Uint8Array | FormData;
  /** For messages, e.g. `POST /svd`. Default: method and URL path. */
  action?: string;
}

/**
 * Sends a request and returns the 2xx response (body unread). Retries 429/502/503/504 and, for GETs,
 * dropped connections; a POST is re-sent after a network error only when the connection was refused,
 * since a lost answer may mean the job (and the bill) already started.
 */
export async function httpRequest(ctx: CallContext, url: string, req: HttpRequest): Promise<Response> {
  const action = req.action ?? `${req.method} ${safePath(url)}`;
  return withRetries(
    async () => {
      if (ctx.signal.aborted) throw stopReason(ctx);
      let res: Response;
      try {
        const body = req.body as RequestInit['body'];
        res = await fetch(url, { method: req.method, headers: req.headers, body, signal: ctx.signal });
      } catch (err) {
        if (ctx.signal.aborted) throw stopReason(ctx);
        const cause = networkCause(err);
        throw new RetriableFailure(
          new ProviderError({
            provider: ctx.provider,
            providerMessage: `cannot reach the server (${cause})`,
            retryable: true,
            code: 'provider_unreachable',
            message: redact(`${ctx.provider} ${action}: cannot reach the server (${cause})`, ctx.secrets),
          }),
          req.method !== 'POST' || cause === 'ECONNREFUSED',
          undefined,
        );
      }
      if (res.ok) return res;
      const body = await guard(ctx, readCapped(res, ERROR_BODY_LIMIT));
      const error = providerErrorFromResponse({
        provider: ctx.provider,
        action,
        status: res.status,
        body,
        contentType: res.headers.get('content-type'),
        secrets: ctx.secrets,
      });
      throw new RetriableFailure(error, isRetryableStatus(res.status), parseRetryAfter(res.headers.get('retry-after')));
    },
    {
      retries: ctx.retry.retries,
      delayFor: (err, attempt) => {
        if (!(err instanceof RetriableFailure) || !err.resendable) return undefined;
        return err.retryAfterMs ?? backoffDelay(attempt, ctx.retry, ctx.random);
      },
      wait: (ms, err, attempt) => waitBeforeRetry(ctx, (err as RetriableFailure).error, ms, attempt),
    },
  ).catch((err: unknown) => {
    throw err instanceof RetriableFailure ? err.error : err;
  });
}

/** A failed attempt and whether sending it again may help; unwrapped before it reaches the caller. */
class RetriableFailure extends Error {
  constructor(
    readonly error: ProviderError,
    readonly resendable: boolean,
    readonly retryAfterMs: number | undefined,
  ) {
    super(error.message);
  }
}

/** An error answer is read for its message only; a provider that streams an endless error body is cut here. */
const ERROR_BODY_LIMIT = 64 * 1024;

async function readCapped(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    if (total >= limit) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** Sleeps before a retry, unless the wait would run past the deadline: then the last error is the answer. */
async function waitBeforeRetry(
  ctx: CallContext,
  error: ProviderError,
  delayMs: number,
  attempt: number,
): Promise<void> {
  if (Date.now() + delayMs >= ctx.deadlineAt) throw error;
  ctx.log(
    `${ctx.provider}: ${error.status ? `HTTP ${error.status}` : error.providerMessage}; retry ${attempt + 1}/${ctx.retry.retries} in ${Math.round(delayMs)} ms`,
  );
  await sleep(ctx, delayMs);
}

/** Sends a request and parses its JSON answer (a 2xx that is not JSON is a ProviderError). */
export async function httpJson<T = unknown>(ctx: CallContext, url: string, req: HttpRequest): Promise<T> {
  const res = await httpRequest(ctx, url, req);
  const text = await guard(ctx, res.text());
  try {
    return JSON.parse(text) as T;
  } catch {
    throw badResponse(
      ctx,
      `${req.action ?? `${req.method} ${safePath(url)}`} answered with something that is not JSON`,
    );
  }
}

/** A 2xx answer we cannot use (wrong shape, no video). */
export function badResponse(ctx: CallContext, what: string): ProviderError {
  return new ProviderError({
    provider: ctx.provider,
    providerMessage: redact(what, ctx.secrets),
    retryable: false,
    code: 'provider_bad_response',
  });
}

/**
 * Best-effort request outside the job's signal (which may already be aborted): used to cancel remote jobs
 * after an abort or a missed deadline. Never throws.
 */
export async function bestEffort(url: string, req: HttpRequest, timeoutMs = 5000): Promise<number | undefined> {
  const deadline = startDeadline(timeoutMs);
  try {
    const body = req.body as RequestInit['body'];
    const res = await fetch(url, { method: req.method, headers: req.headers, body, signal: deadline.signal });
    await res.body?.cancel().catch(() => undefined);
    return res.status;
  } catch {
    return undefined;
  } finally {
    deadline.dispose();
  }
}

/** The path of a URL for messages (never the query, which some APIs use for tokens). */
export function safePath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '(url)';
  }
}
