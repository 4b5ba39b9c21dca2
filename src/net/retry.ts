/**
 * Retrying, for every HTTP client here (hosted backends, Hub downloads): which statuses are worth
 * retrying, how long to wait (exponential backoff with jitter), what `Retry-After` asks for, and the one
 * loop that runs an attempt again until it succeeds, the error is final or the retries are spent.
 */

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** Delay before the first retry, before jitter. */
  baseDelayMs: number;
  /** Cap on one delay (a server's Retry-After is honoured even above it, within the deadline). */
  maxDelayMs: number;
}

/** fal's JS client uses 500 ms–15 s; the same numbers suit Segmind's 5 RPM free tier. */
export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 500, maxDelayMs: 15_000 };

/** Rate limits and gateway trouble pass; 500 is the model failing on this input, so it is not retried. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/**
 * Delay before retry number `attempt` (0-based): base·2^attempt capped at maxDelayMs, then "equal jitter"
 * (half fixed, half random) so that many clients hitting one rate limit do not retry in lockstep.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return exp / 2 + random() * (exp / 2);
}

/** Longest wait a `Retry-After` may ask for (a day); anything longer is treated as garbage. */
const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

/**
 * `Retry-After` as milliseconds (RFC 9110 §10.2.3): delta-seconds (digits only; a fraction is tolerated) or
 * an HTTP date. Undefined when absent or not one of those — `-5`, `1e9`, `soon` — so the caller falls back
 * to its own backoff instead of not waiting at all.
 */
export function parseRetryAfter(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  let ms: number | undefined;
  if (/^\d{1,9}(\.\d{1,6})?$/.test(trimmed)) ms = Math.round(Number(trimmed) * 1000);
  // IMF-fixdate, RFC 850 and asctime all start with a day name; `Date.parse` alone accepts "-5" (year −5).
  else if (/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /.test(trimmed) && /\d{1,2}:\d{2}:\d{2}/.test(trimmed)) {
    const date = Date.parse(trimmed);
    if (!Number.isNaN(date)) ms = Math.max(0, date - now);
  }
  return ms !== undefined && ms <= MAX_RETRY_AFTER_MS ? ms : undefined;
}

export interface RetryLoop {
  /** Retries after the first attempt. */
  retries: number;
  /** The wait before retrying after `err`, or undefined when `err` is final. */
  delayFor: (err: unknown, attempt: number) => number | undefined;
  /** Waits (and may log, or throw instead, e.g. past a deadline). */
  wait: (ms: number, err: unknown, attempt: number) => Promise<void>;
}

/** Runs `attempt(0)`, `attempt(1)`, ... until one succeeds, an error is final or the retries are spent. */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, loop: RetryLoop): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const delay = n < loop.retries ? loop.delayFor(err, n) : undefined;
      if (delay === undefined) throw err;
      await loop.wait(delay, err, n);
    }
  }
}
