/**
 * Segmind v1 as documented (docs/providers.md §1): `POST /v1/<slug>` with `x-api-key`, raw video bytes, or JSON
 * `{video: <base64>}` when the body says `base64: true`; `POST /upload-asset` for Segmind Storage.
 * A wrong key gets 401 with the key echoed back, so tests can check that it is redacted.
 */
import { sendBytes, sendJson, type MockServer } from './server.js';
import { FAKE_MP4, TINY_PNG } from './fixtures.js';

export interface SegmindMock {
  baseUrl: string;
  uploadUrl: string;
  /** Environment pointing a Segmind backend at this mock. */
  env: Record<string, string>;
}

export function mockSegmind(server: MockServer, opts: { apiKey: string; video?: Buffer }): SegmindMock {
  const video = opts.video ?? FAKE_MP4;
  const authorized = (key: unknown) => key === opts.apiKey;
  server.on('POST', /^\/v1\/(svd|motionctrl-svd|pixverse-image2video)$/, (req, res) => {
    if (!authorized(req.headers['x-api-key']))
      return sendJson(res, 401, { error: `Invalid API key: ${String(req.headers['x-api-key'])}` });
    const body = req.json();
    if (body.base64) return sendJson(res, 200, { video: video.toString('base64') }, { 'x-remaining-credits': '41.5' });
    sendBytes(res, video, 'video/mp4', { 'x-remaining-credits': '42' });
  });
  server.on('POST', '/upload-asset', (req, res) => {
    if (!authorized(req.headers['x-api-key'])) return sendJson(res, 401, { error: 'Invalid API key' });
    const { data_urls } = req.json();
    sendJson(res, 200, { file_urls: (data_urls as string[]).map((_, i) => `${server.url}/assets/${i}.png`) });
  });
  server.on('GET', /^\/assets\/\d+\.png$/, (_req, res) => sendBytes(res, TINY_PNG, 'image/png'));
  server.on('GET', '/files/out.mp4', (_req, res) => sendBytes(res, video));
  return {
    baseUrl: `${server.url}/v1`,
    uploadUrl: `${server.url}/upload-asset`,
    env: {
      SEGMIND_API_KEY: opts.apiKey,
      SEGMIND_BASE_URL: `${server.url}/v1`,
      SEGMIND_UPLOAD_URL: `${server.url}/upload-asset`,
    },
  };
}
