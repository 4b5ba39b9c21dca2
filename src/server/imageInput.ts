/**
 * Turns the image a client sent (an http(s) URL, a `data:` URI, bare base64, or uploaded bytes) into bytes
 * before the job is queued, so bad input is a 400 at submit time and no string a client sends ever reaches
 * the filesystem (the pipeline's image loader would read a local path). URLs are fetched with scheme, size,
 * time and address limits (see netGuard.ts), each redirect checked again.
 */
import { ImageLoadError } from '../errors.js';
import { readImageBytes } from '../image/source.js';
import { sniffImageFormat } from '../image/decode.js';
import { HttpError } from './http.js';
import { fetchUrlBytes, safeUrl, UrlFetchError } from '../net/urlFetch.js';

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
export { safeUrl };

async function fromUrl(raw: string, field: string, limits: ImageFetchLimits, signal?: AbortSignal): Promise<Uint8Array> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpError(400, 'invalid_image', `${field}: is not a valid URL`, [{ field, message: 'is not a valid URL' }]);
  }
  const own = limits.ownUpload?.(url);
  if (own) return own;
  try {
    return await fetchUrlBytes(url, {
      allowPrivate: limits.allowPrivateUrls, maxBytes: limits.maxBytes, timeoutMs: limits.timeoutMs,
      maxRedirects: limits.maxRedirects ?? 3, signal,
      headers: { accept: 'image/png, image/jpeg, image/webp;q=0.9, */*;q=0.1' },
    });
  } catch (err) {
    if (!(err instanceof UrlFetchError)) throw err;
    const hint = err.kind === 'refused' && /private/.test(err.detail) ? ' (start the server with --allow-private-urls to allow it)' : '';
    const code = err.kind === 'too_large' ? 'image_too_large' : err.kind === 'refused' ? 'url_refused' : 'image_download_failed';
    const text = `${err.message}${hint}`;
    throw new HttpError(400, code, `${field}: ${text}`, [{ field, message: text }]);
  }
}
