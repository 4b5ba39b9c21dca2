/**
 * Where an input image comes from: a local path (or file: URL), an http(s) URL, a `data:` URI, bare
 * base64 text, or bytes. This module only turns the source into bytes, with size and time limits;
 * `decode.ts` checks the format and decodes. Error messages name the source without dumping base64
 * and without URL query strings (signed URLs carry credentials there).
 */
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { AbortError, ImageLoadError } from '../errors.js';
import { sniffImageFormat } from './decode.js';
import { fetchUrlBytes, safeUrl, UrlFetchError } from '../net/urlFetch.js';

export interface ImageSourceOptions {
  /** Cancels a download or read in progress (AbortError). */
  signal?: AbortSignal;
  /** Largest accepted encoded image, in bytes. Default 50 MiB. */
  maxBytes?: number;
  /** Time limit for an http(s) download, in milliseconds. Default 30 s. */
  timeoutMs?: number;
  /**
   * Let URLs reach loopback/private/reserved addresses. Default true: the caller chose the URL on its own
   * machine (CLI, module API); the server passes false for its clients' URLs.
   */
  allowPrivateUrls?: boolean;
}

export const DEFAULT_MAX_IMAGE_BYTES = 50 * 1024 * 1024;
export const DEFAULT_IMAGE_TIMEOUT_MS = 30_000;

export interface ImageBytes {
  bytes: Uint8Array;
  /** A short, safe description of the source for messages (path, URL without query, "data URI", ...). */
  label: string;
}

/** Reads the encoded bytes of an image source. Throws ImageLoadError (or AbortError when `signal` fires). */
export async function readImageBytes(
  source: string | Uint8Array,
  options: ImageSourceOptions = {},
): Promise<ImageBytes> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  if (options.signal?.aborted) throw new AbortError();
  if (source instanceof Uint8Array) {
    const label = `image bytes (${source.length} bytes)`;
    checkSize(source.length, maxBytes, label);
    return { bytes: source, label };
  }
  if (typeof source !== 'string' || source.length === 0)
    throw new ImageLoadError('(none)', 'expected a file path, URL, data: URI or base64 text');
  if (/^https?:\/\//i.test(source)) return { bytes: await download(source, options, maxBytes), label: safeUrl(source) };
  if (/^data:/i.test(source)) return fromDataUri(source, maxBytes);
  if (/^file:\/\//i.test(source)) return fromFile(fileURLToPath(source), maxBytes);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    throw new ImageLoadError(
      safeUrl(source),
      'unsupported URL scheme; use http(s)://, file://, a data: URI, a local path or base64',
    );
  }
  try {
    return await fromFile(source, maxBytes);
  } catch (err) {
    if (!(err instanceof NotAFile)) throw err;
    const decoded = looksLikeBase64(source) ? decodeBase64(source) : undefined;
    if (decoded && sniffImageFormat(decoded)) {
      const label = `base64 text (${source.length} chars)`;
      checkSize(decoded.length, maxBytes, label);
      return { bytes: decoded, label };
    }
    const shown = source.length > 80 ? `${source.slice(0, 40)}… (${source.length} chars)` : source;
    throw new ImageLoadError(shown, 'no such file, and not a URL, data: URI or base64 of a PNG, JPEG or WebP image');
  }
}

class NotAFile extends Error {}

async function fromFile(path: string, maxBytes: number): Promise<ImageBytes> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new ImageLoadError(path, 'is not a regular file');
    size = st.size;
  } catch (err) {
    if (err instanceof ImageLoadError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') throw new NotAFile();
    throw new ImageLoadError(path, `cannot be read (${code ?? String(err)})`);
  }
  checkSize(size, maxBytes, path);
  try {
    return { bytes: new Uint8Array(await readFile(path)), label: path };
  } catch (err) {
    throw new ImageLoadError(path, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

function fromDataUri(uri: string, maxBytes: number): ImageBytes {
  const comma = uri.indexOf(',');
  const meta = comma < 0 ? '' : uri.slice(5, comma);
  const label = `data URI (${meta || 'no media type'}, ${uri.length} chars)`;
  if (comma < 0) throw new ImageLoadError(label, 'is malformed (no comma)');
  const payload = uri.slice(comma + 1);
  let bytes: Uint8Array;
  if (/;base64$/i.test(meta)) {
    const decoded = decodeBase64(payload);
    if (!decoded) throw new ImageLoadError(label, 'has invalid base64 data');
    bytes = decoded;
  } else {
    try {
      bytes = new Uint8Array(Buffer.from(decodeURIComponent(payload), 'latin1'));
    } catch {
      throw new ImageLoadError(label, 'has invalid percent-encoding');
    }
  }
  checkSize(bytes.length, maxBytes, label);
  return { bytes, label };
}

async function download(url: string, options: ImageSourceOptions, maxBytes: number): Promise<Uint8Array> {
  try {
    return await fetchUrlBytes(url, {
      maxBytes,
      timeoutMs: options.timeoutMs ?? DEFAULT_IMAGE_TIMEOUT_MS,
      signal: options.signal,
      allowPrivate: options.allowPrivateUrls ?? true,
    });
  } catch (err) {
    if (err instanceof UrlFetchError && err.kind === 'aborted') throw new AbortError();
    if (err instanceof UrlFetchError) throw new ImageLoadError(err.url, err.detail);
    throw err;
  }
}

function checkSize(size: number, maxBytes: number, label: string): void {
  if (size > maxBytes) throw new ImageLoadError(label, `is ${size} bytes; the limit is ${maxBytes} bytes`);
  if (size === 0) throw new ImageLoadError(label, 'is empty');
}

function looksLikeBase64(s: string): boolean {
  const t = s.replace(/\s+/g, '');
  return t.length >= 16 && /^[A-Za-z0-9+/_-]+={0,2}$/.test(t);
}

/** Standard or URL-safe base64, whitespace ignored; undefined when it is not valid base64. */
function decodeBase64(s: string): Uint8Array | undefined {
  const t = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(t) || t.length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}
