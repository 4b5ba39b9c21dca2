/**
 * Turns the image a client sent (an http(s) URL, a `data:` URI, bare base64, or uploaded bytes) into bytes
 * before the job is queued, so bad input is a 400 at submit time and no string a client sends ever reaches
 * the filesystem (the pipeline's image loader would read a local path). URLs are fetched with scheme, size,
 * time and address limits (see netGuard.ts), each redirect checked again.
 */
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { isIP } from 'node:net';
import { ImageLoadError } from '../errors.js';
import { readImageBytes } from '../image/source.js';
import { sniffImageFormat } from '../image/decode.js';
import { HttpError } from './http.js';
import { guardedLookup, isPrivateAddress, PrivateAddressError } from './netGuard.js';

export interface ImageFetchLimits {
  /** Allow URLs that resolve to loopback/private/link-local addresses. Default false. */
  allowPrivateUrls: boolean;
  /** Largest image accepted, in bytes. */
  maxBytes: number;
  /** Time limit for downloading one image URL, in milliseconds. */
  timeoutMs: number;
  /** Redirects followed (each one checked again). Default 3. */
  maxRedirects?: number;
  /** Bytes this server holds for a URL it handed out itself (fal storage uploads), looked up before any fetch. */
  ownUpload?: (url: URL) => Uint8Array | undefined;
}

/**
 * Reads a client's image into bytes. `field` is the client's name for it (`image`, `image_url`, ...) and
 * appears in the 400 error. Throws HttpError (400) for anything that is not an image we may read.
 */
export async function imageFromClient(value: unknown, field: string, limits: ImageFetchLimits, signal?: AbortSignal): Promise<Uint8Array> {
  const bad = (message: string, status = 400, code = 'invalid_image') =>
    new HttpError(status, code, `${field}: ${message}`, [{ field, message }]);
  let bytes: Uint8Array;
  if (value instanceof Uint8Array) {
    bytes = value;
  } else if (typeof value !== 'string' || value.trim() === '') {
    throw bad('is required: an http(s) URL, a data: URI or base64 image data');
  } else if (/^https?:\/\//i.test(value)) {
    bytes = await fromUrl(value, field, limits, signal);
  } else if (/^data:/i.test(value)) {
    try {
      bytes = (await readImageBytes(value, { maxBytes: limits.maxBytes })).bytes;
    } catch (err) {
      throw bad(err instanceof ImageLoadError ? err.message.replace(/^image /, '') : 'is not a readable data: URI');
    }
  } else {
    const decoded = decodeBase64(value);
    if (!decoded) throw bad('must be an http(s) URL, a data: URI or base64 image data (this server never reads file paths)');
    bytes = decoded;
  }
  if (bytes.length === 0) throw bad('is empty');
  if (bytes.length > limits.maxBytes) throw bad(`is ${bytes.length} bytes; the limit is ${limits.maxBytes} bytes`, 413, 'image_too_large');
  if (!sniffImageFormat(bytes)) throw bad('is not a PNG, JPEG or WebP image');
  return bytes;
}

function decodeBase64(s: string): Uint8Array | undefined {
  const t = s.replace(/\s+/g, '');
  if (t.length < 16 || t.length % 4 === 1 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return undefined;
  return new Uint8Array(Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}

/** `scheme://host/path`: what error messages show of a URL (query strings may carry signatures). */
export function safeUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}

async function fromUrl(raw: string, field: string, limits: ImageFetchLimits, signal?: AbortSignal): Promise<Uint8Array> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpError(400, 'invalid_image', `${field}: is not a valid URL`, [{ field, message: 'is not a valid URL' }]);
  }
  const own = limits.ownUpload?.(url);
  if (own) return own;
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const all = signal ? AbortSignal.any([signal, timeout]) : timeout;
  for (let hop = 0; ; hop++) {
    const res = await request(url, field, limits, all, timeout);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= (limits.maxRedirects ?? 3)) throw refused(field, url, 'redirects too many times');
      url = new URL(res.headers.location, url);
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw refused(field, url, `download failed: HTTP ${status}`);
    }
    return readLimited(res, field, url, limits.maxBytes, timeout);
  }
}

function refused(field: string, url: URL, message: string, code = 'image_download_failed'): HttpError {
  const text = `${safeUrl(url)} ${message}`;
  return new HttpError(400, code, `${field}: ${text}`, [{ field, message: text }]);
}

function request(url: URL, field: string, limits: ImageFetchLimits, signal: AbortSignal, timeout: AbortSignal): Promise<IncomingMessage> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(refused(field, url, 'uses an unsupported scheme; only http and https URLs are fetched', 'url_refused'));
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!limits.allowPrivateUrls && isIP(host) && isPrivateAddress(host)) {
    return Promise.reject(privateRefusal(field, url, host));
  }
  const get = url.protocol === 'https:' ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(url, {
      signal,
      headers: { accept: 'image/png, image/jpeg, image/webp;q=0.9, */*;q=0.1', 'user-agent': 'svd-runtime-server' },
      ...(limits.allowPrivateUrls ? {} : { lookup: guardedLookup as never }),
    }, resolve);
    req.on('error', (err) => {
      if (err instanceof PrivateAddressError) return reject(privateRefusal(field, url, err.address));
      if (timeout.aborted) return reject(refused(field, url, `download timed out after ${limits.timeoutMs} ms`));
      const code = (err as NodeJS.ErrnoException).code;
      reject(refused(field, url, `download failed (${code ?? err.message})`));
    });
  });
}

function privateRefusal(field: string, url: URL, address: string): HttpError {
  return refused(field, url, `points at ${address}, a private, loopback or reserved address; refused (start the server with --allow-private-urls to allow it)`, 'url_refused');
}

async function readLimited(res: IncomingMessage, field: string, url: URL, maxBytes: number, timeout: AbortSignal): Promise<Uint8Array> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw refused(field, url, `is ${declared} bytes; the limit is ${maxBytes} bytes`, 'image_too_large');
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) {
        res.destroy();
        throw refused(field, url, `is larger than the limit of ${maxBytes} bytes`, 'image_too_large');
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw refused(field, url, timeout.aborted ? 'download timed out' : 'download failed while reading');
  }
  return new Uint8Array(Buffer.concat(chunks));
}
