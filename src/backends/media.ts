/**
 * Input media for hosted APIs. A request's image (and fal's mask / depth archive) may be a URL, a local
 * file, a data: URI, bare base64 or bytes; providers want a URL, bare base64 (Segmind), a data: URI (fal) or
 * a file part (OpenAI). URLs are passed through untouched; everything else is read into bytes once here.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ImageLoadError, InvalidRequestError } from '../errors.js';

export type Media = { kind: 'url'; url: string } | { kind: 'bytes'; bytes: Uint8Array; mime: string; name: string };

/** The image type from its first bytes, or undefined. */
export function sniffImage(b: Uint8Array): string | undefined {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'image/png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'image/webp';
  if (b.length >= 6 && ascii(b, 0, 4) === 'GIF8') return 'image/gif';
  return undefined;
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

const EXT: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'application/zip': 'zip',
};

/**
 * Reads an image reference. `field` names it in errors (`image`, `remote.maskImage`).
 * Throws ImageLoadError for a missing file or bytes that are not PNG/JPEG/WebP/GIF.
 */
export async function readImageMedia(value: string | Uint8Array, field = 'image'): Promise<Media> {
  const media = await readMedia(value, field);
  if (media.kind === 'url') return media;
  const mime = sniffImage(media.bytes);
  if (!mime) throw new ImageLoadError(describeSource(value, field), 'not a PNG, JPEG, WebP or GIF image');
  return { ...media, mime, name: withExt(media.name, mime) };
}

/** Reads any file reference (e.g. fal's depth-map archive); the type is zip when it looks like one. */
export async function readFileMedia(value: string | Uint8Array, field: string): Promise<Media> {
  const media = await readMedia(value, field);
  if (media.kind === 'url') return media;
  const isZip = media.bytes[0] === 0x50 && media.bytes[1] === 0x4b;
  const mime = isZip ? 'application/zip' : media.mime;
  return { ...media, mime, name: withExt(media.name, mime) };
}

async function readMedia(value: string | Uint8Array, field: string): Promise<Media> {
  if (value instanceof Uint8Array)
    return { kind: 'bytes', bytes: value, mime: 'application/octet-stream', name: 'input' };
  if (/^https?:\/\//i.test(value)) return { kind: 'url', url: value };
  if (value.startsWith('data:')) {
    const m = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(value);
    if (!m || !m[2])
      throw new InvalidRequestError([{ field, value, message: 'must be a base64 data: URI (data:<type>;base64,...)' }]);
    return {
      kind: 'bytes',
      bytes: Buffer.from(m[3], 'base64'),
      mime: m[1] || 'application/octet-stream',
      name: 'input',
    };
  }
  const info = await stat(value).catch(() => undefined);
  if (info?.isFile()) {
    const bytes = await readFile(value).catch((e: NodeJS.ErrnoException) => {
      throw new ImageLoadError(value, `cannot read (${e.code ?? e.message})`);
    });
    return { kind: 'bytes', bytes, mime: 'application/octet-stream', name: basename(value) };
  }
  if (info) throw new ImageLoadError(value, 'is not a file');
  if (looksLikeBase64(value))
    return { kind: 'bytes', bytes: Buffer.from(value, 'base64'), mime: 'application/octet-stream', name: 'input' };
  throw new ImageLoadError(value, 'file not found (and not an http(s) URL, data: URI or base64 text)');
}

function looksLikeBase64(s: string): boolean {
  return s.length >= 64 && /^[A-Za-z0-9+/\r\n]+={0,2}$/.test(s);
}

function describeSource(value: string | Uint8Array, field: string): string {
  if (value instanceof Uint8Array) return `${field} (${value.length} bytes)`;
  if (value.startsWith('data:') || looksLikeBase64(value)) return `${field} (inline data)`;
  return value;
}

function withExt(name: string, mime: string): string {
  const ext = EXT[mime];
  if (!ext || /\.[A-Za-z0-9]+$/.test(name)) return name;
  return `${name}.${ext}`;
}

/** A data: URI (fal accepts these wherever it takes a file URL); URLs pass through. */
export function asUrlOrDataUri(media: Media): string {
  return media.kind === 'url' ? media.url : `data:${media.mime};base64,${Buffer.from(media.bytes).toString('base64')}`;
}

/** Bare base64 without a data: prefix, as Segmind wants it (docs/providers.md §1.5); URLs pass through. */
export function asUrlOrBase64(media: Media): string {
  return media.kind === 'url' ? media.url : Buffer.from(media.bytes).toString('base64');
}
