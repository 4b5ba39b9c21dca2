/**
 * Turns the image a client sent (an http(s) URL, a `data:` URI, bare base64, or uploaded bytes) into bytes
 * before the job is queued, so bad input is a 400 at submit time and no string a client sends ever reaches
 * the filesystem (the pipeline's image loader would read a local path). URLs are fetched with scheme, size,
 * time and address limits (net/urlFetch.ts), each redirect checked again; images are checked for size in
 * pixels and decoded once (shrunk) before the job is queued.
 */
import sharp from 'sharp';
import { ImageLoadError } from '../errors.js';
import { readImageBytes } from '../image/source.js';
import { sniffImageFormat } from '../image/decode.js';
import { HttpError } from './http.js';
import { fetchUrlBytes, UrlFetchError } from '../net/urlFetch.js';

export interface ImageFetchLimits {
  /** Allow URLs that resolve to loopback/private/link-local addresses. Default false. */
  allowPrivateUrls: boolean;
  /** Largest image accepted, in bytes. */
  maxBytes: number;
  /** Largest image accepted, in pixels (width × height, read from the header before decoding). */
  maxPixels?: number;
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
export async function imageFromClient(
  value: unknown,
  field: string,
  limits: ImageFetchLimits,
  signal?: AbortSignal,
): Promise<Uint8Array> {
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
    if (!decoded)
      throw bad('must be an http(s) URL, a data: URI or base64 image data (this server never reads file paths)');
    bytes = decoded;
  }
  if (bytes.length === 0) throw bad('is empty');
  if (bytes.length > limits.maxBytes)
    throw bad(`is ${bytes.length} bytes; the limit is ${limits.maxBytes} bytes`, 413, 'image_too_large');
  if (!sniffImageFormat(bytes)) throw bad('is not a PNG, JPEG or WebP image');
  await checkDecodable(bytes, limits.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS, bad);
  return bytes;
}

/** 4096×4096: a 12-megapixel photo or a 4K frame passes; see the README's security section. */
export const DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096;

/**
 * Refuses, before the job is queued, an image whose header declares more than `maxPixels` (an 8000×8000
 * PNG of 187 KB once held 1.5 GB during the job) and one that does not decode to the end (truncated or
 * damaged). The decode runs in libvips' own threads under the pixel limit, shrunk to 8×8, so it holds
 * little memory whatever the image.
 */
type Refusal = (message: string, status?: number, code?: string) => HttpError;

async function checkDecodable(bytes: Uint8Array, maxPixels: number, bad: Refusal): Promise<void> {
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(bytes).metadata());
  } catch {
    throw bad('cannot be read: the image header is damaged');
  }
  if (!width || !height) throw bad('cannot be read: the image header declares no size');
  if (width * height > maxPixels) {
    const message = `is ${width}×${height} = ${width * height} pixels; the limit is ${maxPixels} pixels`;
    throw bad(message, 400, 'image_too_large');
  }
  try {
    await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated' })
      .resize(8, 8, { fit: 'fill' })
      .raw()
      .toBuffer();
  } catch (err) {
    const reason = String((err as Error)?.message ?? err)
      .split('\n')[0]
      .slice(0, 120);
    throw bad(`cannot be decoded; the file is truncated or damaged (${reason})`);
  }
}

function decodeBase64(s: string): Uint8Array | undefined {
  const t = s.replace(/\s+/g, '');
  if (t.length < 16 || t.length % 4 === 1 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return undefined;
  return new Uint8Array(Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}

async function fromUrl(
  raw: string,
  field: string,
  limits: ImageFetchLimits,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpError(400, 'invalid_image', `${field}: is not a valid URL`, [
      { field, message: 'is not a valid URL' },
    ]);
  }
  const own = limits.ownUpload?.(url);
  if (own) return own;
  try {
    return await fetchUrlBytes(url, {
      allowPrivate: limits.allowPrivateUrls,
      maxBytes: limits.maxBytes,
      timeoutMs: limits.timeoutMs,
      maxRedirects: limits.maxRedirects ?? 3,
      signal,
      headers: { accept: 'image/png, image/jpeg, image/webp;q=0.9, */*;q=0.1' },
    });
  } catch (err) {
    if (!(err instanceof UrlFetchError)) throw err;
    const isPrivate = err.kind === 'refused' && /private/.test(err.detail);
    const hint = isPrivate ? ' (start the server with --allow-private-urls to allow it)' : '';
    const code =
      err.kind === 'too_large' ? 'image_too_large' : err.kind === 'refused' ? 'url_refused' : 'image_download_failed';
    const text = `${err.message}${hint}`;
    throw new HttpError(400, code, `${field}: ${text}`, [{ field, message: text }]);
  }
}
