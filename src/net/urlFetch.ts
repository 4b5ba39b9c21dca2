/**
 * The one way this package downloads a URL it was handed (a client's image URL, a CLI image URL, a
 * provider's result URL): http(s) only, redirects followed a few times and each hop checked again, the
 * address policy applied to the address actually connected to (netGuard.ts), a deadline on our own timer
 * (deadline.ts) and a byte limit, declared or streamed. Failures are UrlFetchError with a `kind` and a
 * message that never shows the query string; callers wrap them in their own error type and field name.
 */
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { isIP } from 'node:net';
import { networkCause } from './cause.js';
import { startDeadline } from './deadline.js';
import { guardedLookup, isPrivateAddress, PrivateAddressError } from './netGuard.js';

export interface UrlFetchOptions {
  /** Let the URL (and its redirects) reach loopback/private/reserved addresses. Default false. */
  allowPrivate?: boolean;
  /** Origins exempt from the address policy (e.g. the provider endpoint the operator configured). */
  trustedOrigins?: readonly string[];
  /** The caller's signal (a job's deadline or a cancel); abort ends the download as `aborted`. */
  signal?: AbortSignal;
  /** Time limit for this download, headers and body. Default: none beyond `signal`. */
  timeoutMs?: number;
  /** Redirects followed. Default 3. */
  maxRedirects?: number;
  headers?: Record<string, string>;
}

export type UrlFetchFailure = 'invalid' | 'refused' | 'status' | 'network' | 'timeout' | 'aborted' | 'too_large';

export class UrlFetchError extends Error {
  constructor(
    readonly kind: UrlFetchFailure,
    /** `scheme://host/path` of the URL that failed (a redirect target, maybe). */
    readonly url: string,
    /** What went wrong, without the URL: "download failed: HTTP 404 Not Found". */
    readonly detail: string,
    readonly status?: number,
  ) {
    super(`${url} ${detail}`);
    this.name = 'UrlFetchError';
  }
}

/** `scheme://host/path`: what messages show of a URL (query strings may carry signatures). */
export function safeUrl(url: string | URL): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return String(url).split(/[?#]/)[0].slice(0, 100);
  }
}

export interface OpenedUrl {
  /** The 200 response, body unread. */
  res: IncomingMessage;
  /** Where it finally came from (after redirects). */
  url: URL;
  /** Turns a failure while reading the body into a UrlFetchError (timeout, abort, cut connection). */
  failure(err: unknown): UrlFetchError;
  /** Stops the deadline timer; call when the body is read or abandoned. */
  close(): void;
}

/** Opens a URL and returns its 200 response (anything else is a UrlFetchError). */
export async function openUrl(raw: string | URL, options: UrlFetchOptions = {}): Promise<OpenedUrl> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlFetchError('invalid', String(raw).slice(0, 100), 'is not a valid URL');
  }
  const deadline = options.timeoutMs === undefined ? undefined : startDeadline(options.timeoutMs, options.signal);
  const signal = deadline?.signal ?? options.signal;
  const failure = (err: unknown, at: URL): UrlFetchError => {
    if (err instanceof UrlFetchError) return err;
    if (deadline?.expired)
      return new UrlFetchError('timeout', safeUrl(at), `download timed out after ${deadline.ms} ms`);
    if (signal?.aborted) return new UrlFetchError('aborted', safeUrl(at), 'download aborted');
    if (err instanceof PrivateAddressError) return privateRefusal(at, err.address);
    return new UrlFetchError('network', safeUrl(at), `download failed (${networkCause(err)})`);
  };
  try {
    for (let hop = 0; ; hop++) {
      const res = await request(url, options, signal).catch((err) => {
        throw failure(err, url);
      });
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (hop >= (options.maxRedirects ?? 3))
          throw new UrlFetchError('refused', safeUrl(url), 'redirects too many times');
        url = new URL(res.headers.location, url);
        continue;
      }
      if (status !== 200) {
        res.resume();
        const text = res.statusMessage ? ` ${res.statusMessage}` : '';
        throw new UrlFetchError('status', safeUrl(url), `download failed: HTTP ${status}${text}`, status);
      }
      // A deadline or cancel that fires while the body streams ends the body too.
      const stop = () => res.destroy(new Error('aborted'));
      signal?.addEventListener('abort', stop, { once: true });
      const final = url;
      return {
        res,
        url: final,
        failure: (err) => failure(err, final),
        close: () => {
          signal?.removeEventListener('abort', stop);
          deadline?.dispose();
        },
      };
    }
  } catch (err) {
    deadline?.dispose();
    throw err;
  }
}

/** Downloads a URL into memory, refusing more than `maxBytes` (declared or streamed). */
export async function fetchUrlBytes(
  raw: string | URL,
  options: UrlFetchOptions & { maxBytes: number },
): Promise<Uint8Array> {
  const opened = await openUrl(raw, options);
  const { res, url, maxBytes } = { ...opened, maxBytes: options.maxBytes };
  try {
    checkDeclaredSize(res, url, maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res) {
        total += (chunk as Buffer).length;
        if (total > maxBytes)
          throw new UrlFetchError('too_large', safeUrl(url), `is larger than the limit of ${maxBytes} bytes`);
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      throw opened.failure(err);
    }
    return new Uint8Array(Buffer.concat(chunks));
  } finally {
    res.destroy();
    opened.close();
  }
}

/** Refuses a response whose Content-Length is over the limit before reading it. */
export function checkDeclaredSize(res: IncomingMessage, url: URL, maxBytes: number): void {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw new UrlFetchError('too_large', safeUrl(url), `is ${declared} bytes; the limit is ${maxBytes} bytes`);
  }
}

function privateRefusal(url: URL, address: string): UrlFetchError {
  return new UrlFetchError(
    'refused',
    safeUrl(url),
    `points at ${address}, a private, loopback or reserved address; refused`,
  );
}

function isTrusted(url: URL, options: UrlFetchOptions): boolean {
  return options.allowPrivate === true || (options.trustedOrigins ?? []).includes(url.origin);
}

function request(url: URL, options: UrlFetchOptions, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(
      new UrlFetchError('refused', safeUrl(url), 'uses an unsupported scheme; only http and https URLs are fetched'),
    );
  }
  const trusted = isTrusted(url, options);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!trusted && isIP(host) && isPrivateAddress(host)) return Promise.reject(privateRefusal(url, host));
  const get = url.protocol === 'https:' ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(
      url,
      {
        signal,
        headers: { 'user-agent': 'svd-runtime', ...options.headers },
        ...(trusted ? {} : { lookup: guardedLookup as never }),
      },
      resolve,
    );
    req.on('error', reject);
  });
}
