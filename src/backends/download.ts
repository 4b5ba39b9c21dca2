/**
 * Getting a provider's video onto disk: streamed from a response, fetched from a result URL, or decoded
 * from base64. Always written to a temp file beside the target and renamed, so an abort, a deadline or a
 * dropped connection leaves no partial file (and partials of killed processes are swept, io/partial.ts);
 * the bytes must start like a video container and stay within the job's size limit. Result URLs are
 * fetched under the same address policy as a client's image URL (net/urlFetch.ts).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ProviderError } from '../errors.js';
import { partialPathFor, sweepStalePartials } from '../io/partial.js';
import { backoffDelay, isRetryableStatus, withRetries } from '../net/retry.js';
import { checkDeclaredSize, openUrl, UrlFetchError, type OpenedUrl } from '../net/urlFetch.js';
import type { ProgressEvent } from './types.js';
import { badResponse, guard, sleep, stopReason, type CallContext } from './http.js';
import type { OutputFormat } from '../request/types.js';

/** The container from its first bytes: ISO-BMFF (`ftyp` box) for mp4/mov, EBML for webm, GIF. */
export function sniffVideo(b: Uint8Array): Exclude<OutputFormat, 'png'> | undefined {
  if (b.length >= 8 && String.fromCharCode(b[4], b[5], b[6], b[7]) === 'ftyp') return 'mp4';
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return 'webm';
  if (b.length >= 4 && String.fromCharCode(b[0], b[1], b[2], b[3]) === 'GIF8') return 'gif';
  return undefined;
}

export interface SavedVideo {
  path: string;
  bytes: number;
  container: Exclude<OutputFormat, 'png'>;
  contentType?: string;
}

async function tempPathFor(target: string): Promise<string> {
  await mkdir(dirname(target), { recursive: true });
  await sweepStalePartials(dirname(target));
  return partialPathFor(target);
}

function tooLarge(ctx: CallContext, what: string): ProviderError {
  return badResponse(ctx, `the video ${what}; the limit for this job is ${ctx.maxDownloadBytes} bytes`);
}

function describeStart(b: Uint8Array): string {
  const text = Buffer.from(b.subarray(0, 40))
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
  return JSON.stringify(text);
}

/** Streams a 2xx response body to `target` (temp + rename), reporting download progress. */
export async function saveResponseBody(
  ctx: CallContext,
  res: Response,
  target: string,
  onProgress?: (e: ProgressEvent) => void,
): Promise<SavedVideo> {
  if (!res.body) throw badResponse(ctx, 'the response has no body');
  const total = Number(res.headers.get('content-length')) || undefined;
  if (total !== undefined && total > ctx.maxDownloadBytes) {
    await res.body.cancel().catch(() => {});
    throw tooLarge(ctx, `is ${total} bytes`);
  }
  const contentType = res.headers.get('content-type') ?? undefined;
  return saveStream(ctx, Readable.from(chunksOf(res.body)), total, target, contentType, onProgress);
}

/**
 * The chunks of a fetch body, read with our own reader. Not `Readable.fromWeb`: on Node 20 a connection cut
 * mid-body could reach its destroy path after the pipeline had let go of the stream, and it rethrows the
 * error there as an uncaught exception instead of rejecting the download.
 */
async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    // Stopped early (too large, aborted, write failed): let the connection go; a failing cancel is moot.
    if (!done) await reader.cancel().catch(() => {});
  }
}

/** Streams a body to `target` (temp + rename), counting bytes against the job's limit. */
async function saveStream(
  ctx: CallContext,
  body: Readable,
  total: number | undefined,
  target: string,
  contentType: string | undefined,
  onProgress?: (e: ProgressEvent) => void,
): Promise<SavedVideo> {
  const temp = await tempPathFor(target);
  let received = 0;
  let head = new Uint8Array(0);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (received > ctx.maxDownloadBytes) return done(tooLarge(ctx, `is larger than ${ctx.maxDownloadBytes} bytes`));
      if (head.length < 16) head = Buffer.concat([head, chunk.subarray(0, 16 - head.length)]);
      onProgress?.({
        stage: 'download',
        fraction: total ? Math.min(1, received / total) : undefined,
        message: `${received} bytes`,
      });
      done(null, chunk);
    },
  });
  try {
    await guard(ctx, pipeline(body, counter, createWriteStream(temp)));
    if (total !== undefined && received !== total) {
      throw badResponse(ctx, `the download stopped after ${received} of ${total} bytes`);
    }
    return await finish(ctx, temp, target, head, received, contentType);
  } catch (err) {
    await rm(temp, { force: true });
    if (ctx.signal.aborted) throw stopReason(ctx);
    if (err instanceof ProviderError) throw err;
    throw badResponse(ctx, `the connection dropped during the download after ${received} bytes`);
  }
}

/** Writes decoded bytes (base64 answers) to `target` (temp + rename). */
export async function saveBytes(
  ctx: CallContext,
  bytes: Uint8Array,
  target: string,
  contentType?: string,
): Promise<SavedVideo> {
  if (bytes.length > ctx.maxDownloadBytes) throw tooLarge(ctx, `is ${bytes.length} bytes`);
  const temp = await tempPathFor(target);
  try {
    await writeFile(temp, bytes);
    return await finish(ctx, temp, target, bytes.subarray(0, 16), bytes.length, contentType);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

async function finish(
  ctx: CallContext,
  temp: string,
  target: string,
  head: Uint8Array,
  bytes: number,
  contentType?: string,
): Promise<SavedVideo> {
  const container = sniffVideo(head);
  if (!container) {
    throw badResponse(
      ctx,
      `the provider's answer is not a video (content-type ${contentType ?? 'unknown'}, starts with ${describeStart(head)})`,
    );
  }
  if (ctx.signal.aborted) throw stopReason(ctx);
  await rename(temp, target);
  return { path: target, bytes, container, contentType };
}

/**
 * Fetches a result URL (or decodes a data: URI) to `target`. No API key is sent: result URLs point at the
 * provider's CDN, possibly another host, and the key must not travel there.
 */
export async function downloadVideo(
  ctx: CallContext,
  url: string,
  target: string,
  onProgress?: (e: ProgressEvent) => void,
): Promise<SavedVideo> {
  if (url.startsWith('data:')) {
    const m = /^data:([^;,]*);base64,(.*)$/s.exec(url);
    if (!m) throw badResponse(ctx, 'the result is a data: URI that is not base64');
    return saveBytes(ctx, Buffer.from(m[2], 'base64'), target, m[1] || undefined);
  }
  if (!/^https?:\/\//i.test(url)) throw badResponse(ctx, `the result URL is not http(s): ${url.slice(0, 60)}`);
  const opened = await openResult(ctx, url);
  try {
    const total = Number(opened.res.headers['content-length']) || undefined;
    try {
      checkDeclaredSize(opened.res, opened.url, ctx.maxDownloadBytes);
    } catch {
      throw tooLarge(ctx, `is ${total} bytes`);
    }
    return await saveStream(ctx, opened.res, total, target, opened.res.headers['content-type'], onProgress);
  } finally {
    opened.close();
  }
}

/**
 * Opens a result URL under the address policy: private and loopback addresses are refused unless the URL
 * is on a provider endpoint the operator configured or `allowPrivateUrls` is set (local mocks). Gateway
 * errors and dropped connections are retried like API calls.
 */
async function openResult(ctx: CallContext, url: string): Promise<OpenedUrl> {
  const policy = { signal: ctx.signal, allowPrivate: ctx.allowPrivateUrls, trustedOrigins: ctx.trustedOrigins };
  return withRetries(() => openUrl(url, policy), {
    retries: ctx.retry.retries,
    delayFor: (err, attempt) => {
      if (ctx.signal.aborted || !(err instanceof UrlFetchError)) return undefined;
      const again = err.kind === 'network' || (err.kind === 'status' && isRetryableStatus(err.status ?? 0));
      return again ? backoffDelay(attempt, ctx.retry, ctx.random) : undefined;
    },
    wait: (ms, err) => {
      ctx.log(`${ctx.provider}: download ${(err as UrlFetchError).detail}; retrying in ${Math.round(ms)} ms`);
      return sleep(ctx, ms);
    },
  }).catch((err: unknown) => {
    if (ctx.signal.aborted) throw stopReason(ctx);
    if (err instanceof UrlFetchError) {
      const isPrivate = err.kind === 'refused' && /private/.test(err.detail);
      const hint = isPrivate ? ' (allow it with --allow-private-urls, for local mocks)' : '';
      throw new ProviderError({
        provider: ctx.provider,
        status: err.status,
        retryable: err.kind === 'network' || err.kind === 'status',
        providerMessage: `result ${err.message}${hint}`,
        code: err.kind === 'refused' ? 'result_url_refused' : 'provider_download_failed',
      });
    }
    throw err;
  });
}

/** Decodes base64 that may carry a `data:*;base64,` prefix. */
export function decodeBase64Video(text: string): Uint8Array {
  const bare = text.replace(/^data:[^,]*,/, '');
  return Buffer.from(bare, 'base64');
}
