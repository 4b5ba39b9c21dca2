/**
 * The one HTTP path every hosted backend goes through: a job-wide deadline, the caller's AbortSignal,
 * retries with backoff and `Retry-After` on 429/502/503/504, and non-2xx answers turned into ProviderError
 * with keys redacted. Providers only build URLs, headers and bodies.
 */
import { AbortError, ProviderError } from '../errors.js';
import { providerErrorFromResponse, redact } from './providerErrors.js';
import { backoffDelay, DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, type RetryPolicy } from './retry.js';

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
}): CallContext {
  const deadlineMs = init.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const timeout = AbortSignal.timeout(deadlineMs);
  return {
    provider: init.provider,
    secrets: init.secrets.filter(Boolean),
    signal: init.userSignal ? AbortSignal.any([init.userSignal, timeout]) : timeout,
    userSignal: init.userSignal,
    deadlineMs,
    deadlineAt: Date.now() + deadlineMs,
    retry: { ...DEFAULT_RETRY, ...init.retry },
    log: init.log ?? (() => {}),
    random: init.random ?? Math.random,
  };
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
  for (let attempt = 0; ; attempt++) {
    if (ctx.signal.aborted) throw stopReason(ctx);
    let res: Response;
    try {
      res = await fetch(url, { method: req.method, headers: req.headers, body: req.body as RequestInit["body"], signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) throw stopReason(ctx);
      const cause = networkCause(err);
      const error = new ProviderError({
        provider: ctx.provider,
        providerMessage: `cannot reach the server (${cause})`,
        retryable: true,
        code: 'provider_unreachable',
        message: redact(`${ctx.provider} ${action}: cannot reach the server (${cause})`, ctx.secrets),
      });
      const resendable = req.method !== 'POST' || cause === 'ECONNREFUSED';
      if (!resendable || attempt >= ctx.retry.retries) throw error;
      await waitBeforeRetry(ctx, error, backoffDelay(attempt, ctx.retry, ctx.random), attempt);
      continue;
    }
    if (res.ok) return res;
    const body = await guard(ctx, res.text());
    const error = providerErrorFromResponse({
      provider: ctx.provider, action, status: res.status, body, contentType: res.headers.get('content-type'), secrets: ctx.secrets,
    });
    if (!isRetryableStatus(res.status) || attempt >= ctx.retry.retries) throw error;
    const delay = parseRetryAfter(res.headers.get('retry-after')) ?? backoffDelay(attempt, ctx.retry, ctx.random);
    await waitBeforeRetry(ctx, error, delay, attempt);
  }
}

/** Sleeps before a retry, unless the wait would run past the deadline: then the last error is the answer. */
async function waitBeforeRetry(ctx: CallContext, error: ProviderError, delayMs: number, attempt: number): Promise<void> {
  if (Date.now() + delayMs >= ctx.deadlineAt) throw error;
  ctx.log(`${ctx.provider}: ${error.status ? `HTTP ${error.status}` : error.providerMessage}; retry ${attempt + 1}/${ctx.retry.retries} in ${Math.round(delayMs)} ms`);
  await sleep(ctx, delayMs);
}

/** Sends a request and parses its JSON answer (a 2xx that is not JSON is a ProviderError). */
export async function httpJson<T = unknown>(ctx: CallContext, url: string, req: HttpRequest): Promise<T> {
  const res = await httpRequest(ctx, url, req);
  const text = await guard(ctx, res.text());
  try {
    return JSON.parse(text) as T;
  } catch {
    throw badResponse(ctx, `${req.action ?? `${req.method} ${safePath(url)}`} answered with something that is not JSON`);
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
  try {
    const res = await fetch(url, { method: req.method, headers: req.headers, body: req.body as RequestInit["body"], signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer().catch(() => undefined);
    return res.status;
  } catch {
    return undefined;
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

function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
