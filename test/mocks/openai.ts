/**
 * OpenAI-style video servers: OpenAI's Videos API (`POST /v1/videos` multipart → poll `GET /v1/videos/{id}`
 * → `GET /v1/videos/{id}/content`, DELETE to drop a job) and VoltageGPU's `POST /v1/video/generations`
 * (`{data: [{url}]}`). Both use `Authorization: Bearer <key>`.
 */
import { sendBytes, sendJson, type MockServer } from './server.js';
import { FAKE_MP4 } from './fixtures.js';

export interface VideoJobState {
  status: 'queued' | 'in_progress' | 'completed' | 'failed';
  progress: number;
  error?: { code: string; message: string } | null;
}

export interface OpenAIMock {
  baseUrl: string;
  env: Record<string, string>;
  /** Form fields of each create call (files as `<file name type size>`). */
  created: Record<string, string>[];
  deleted: string[];
}

export const DEFAULT_VIDEO_STATES: VideoJobState[] = [
  { status: 'in_progress', progress: 40 },
  { status: 'completed', progress: 100 },
];

export function mockOpenAIVideos(
  server: MockServer,
  opts: { apiKey: string; states?: VideoJobState[]; video?: Buffer },
): OpenAIMock {
  const states = opts.states ?? DEFAULT_VIDEO_STATES;
  const video = opts.video ?? FAKE_MP4;
  const created: Record<string, string>[] = [];
  const deleted: string[] = [];
  let poll = 0;
  const bad = (auth: unknown) => auth !== `Bearer ${opts.apiKey}`;
  const unauthorized = {
    error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' },
  };
  server.on('POST', '/v1/videos', async (req, res) => {
    if (bad(req.headers.authorization)) return sendJson(res, 401, unauthorized);
    const form = await req.form();
    const fields: Record<string, string> = {};
    for (const [k, v] of form.entries()) {
      fields[k] = typeof v === 'string' ? v : `<file ${(v as File).name} ${(v as File).type} ${(v as File).size}>`;
    }
    created.push(fields);
    sendJson(res, 200, {
      id: 'video_123',
      object: 'video',
      model: fields.model,
      status: 'queued',
      progress: 0,
      seconds: fields.seconds ?? '4',
      size: fields.size ?? '720x1280',
      error: null,
    });
  });
  server.on('GET', /^\/v1\/videos\/([^/]+)$/, (req, res) => {
    if (bad(req.headers.authorization)) return sendJson(res, 401, unauthorized);
    const s = states[Math.min(poll++, states.length - 1)];
    sendJson(res, 200, { id: req.params[0], object: 'video', error: null, ...s });
  });
  server.on('GET', /^\/v1\/videos\/([^/]+)\/content$/, (req, res) => {
    if (bad(req.headers.authorization)) return sendJson(res, 401, unauthorized);
    sendBytes(res, video);
  });
  server.on('DELETE', /^\/v1\/videos\/([^/]+)$/, (req, res) => {
    deleted.push(req.params[0]);
    sendJson(res, 200, { id: req.params[0], object: 'video.deleted', deleted: true });
  });
  return {
    baseUrl: `${server.url}/v1`,
    env: { OPENAI_API_KEY: opts.apiKey, OPENAI_BASE_URL: `${server.url}/v1` },
    created,
    deleted,
  };
}

export function mockVoltage(
  server: MockServer,
  opts: { apiKey: string; answer?: 'url' | 'b64_json'; video?: Buffer },
): { baseUrl: string; env: Record<string, string> } {
  const video = opts.video ?? FAKE_MP4;
  server.on('POST', '/v1/video/generations', (req, res) => {
    if (req.headers.authorization !== `Bearer ${opts.apiKey}`)
      return sendJson(res, 401, { error: { message: 'invalid api key' } });
    const item =
      opts.answer === 'b64_json' ? { b64_json: video.toString('base64') } : { url: `${server.url}/files/voltage.mp4` };
    sendJson(res, 200, { created: 1700000000, data: [item] });
  });
  server.on('GET', '/files/voltage.mp4', (_req, res) => sendBytes(res, video));
  return { baseUrl: `${server.url}/v1`, env: { VOLTAGE_API_KEY: opts.apiKey, VOLTAGE_BASE_URL: `${server.url}/v1` } };
}
