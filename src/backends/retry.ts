/**
 * Retry arithmetic for hosted APIs, kept pure so it can be tested without a server: which statuses are
 * worth retrying, how long to wait (exponential backoff with jitter), and what `Retry-After` asks for.
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

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
