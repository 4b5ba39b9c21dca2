/**
 * Segmind Storage (docs/providers.md §1.5): `POST /upload-asset` with `{data_urls: [...]}` answers hosted URLs.
 * Used for endpoints that take only a URL (pixverse-image2video) when the image is a local file or bytes.
 */
import { badResponse, httpJson, type CallContext } from '../http.js';
import { asUrlOrDataUri, type Media } from '../media.js';
import { SEGMIND_UPLOAD_DEFAULT, type RemoteBackendOptions } from '../options.js';

export function segmindUploadUrl(o: Pick<RemoteBackendOptions, 'uploadUrl' | 'env'>): string {
  return o.uploadUrl || (o.env ?? process.env).SEGMIND_UPLOAD_URL || SEGMIND_UPLOAD_DEFAULT;
}

/** Uploads one file and returns its hosted URL. */
export async function uploadToSegmindStorage(
  ctx: CallContext,
  uploadUrl: string,
  apiKey: string,
  media: Media,
): Promise<string> {
  const json = await httpJson<Record<string, unknown>>(ctx, uploadUrl, {
    method: 'POST',
    action: 'upload-asset',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ data_urls: [asUrlOrDataUri(media)] }),
  });
  // The SDK names the field file_urls; the docs name it urls.
  const urls = (json.file_urls ?? json.urls) as unknown;
  const url = Array.isArray(urls) ? urls[0] : undefined;
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url))
    throw badResponse(ctx, 'Segmind storage answered without a file URL');
  return url;
}
