/**
 * Reading a Segmind v1 answer: the raw video (`base64: false`, the default) or JSON carrying base64 or a
 * URL. The JSON key is not documented (docs/providers.md §1.6), so the known shapes are tried in order.
 */
import type { ProgressEvent } from '../types.js';
import { badResponse, guard, type CallContext } from '../http.js';
import { decodeBase64Video, downloadVideo, saveBytes, saveResponseBody, type SavedVideo } from '../download.js';

/** The media string in a JSON answer: `video`, `image`, `images[0]`, `output`, in that order. */
export function mediaFromSegmindJson(json: unknown): string | undefined {
  const o = (json ?? {}) as Record<string, unknown>;
  for (const v of [o.video, o.image, Array.isArray(o.images) ? o.images[0] : undefined, o.output]) {
    if (typeof v === 'string' && v) return v;
  }
  return undefined;
}

export async function saveSegmindAnswer(
  ctx: CallContext,
  res: Response,
  target: string,
  onProgress: (e: ProgressEvent) => void,
): Promise<SavedVideo> {
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('json')) return saveResponseBody(ctx, res, target, onProgress);
  const text = await guard(ctx, res.text());
  let media: string | undefined;
  try {
    media = mediaFromSegmindJson(JSON.parse(text));
  } catch {
    throw badResponse(ctx, 'segmind answered with JSON that does not parse');
  }
  if (!media)
    throw badResponse(ctx, 'segmind answered with JSON that holds no video (no video, image, images or output field)');
  if (/^https?:\/\//i.test(media)) return downloadVideo(ctx, media, target, onProgress);
  return saveBytes(ctx, decodeBase64Video(media), target, type);
}
