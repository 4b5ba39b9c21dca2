/**
 * fal as documented (docs/providers.md §2): the queue under `/queue` (submit → status with logs → result, PUT
 * cancel) and the sync endpoint under `/run`, with `Authorization: Key <key>`. Polls walk through
 * `statuses` (the last one repeats); results point at `/files/out.mp4` on the same server.
 */
import type { ServerResponse } from 'node:http';
import { sendBytes, sendJson, type MockServer, type RecordedRequest } from './server.js';
import { FAKE_MP4 } from './fixtures.js';

export interface FalStatus {
  status: 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED' | string;
  queue_position?: number;
  logs?: { message: string; level?: string; timestamp?: string }[] | null;
  error?: string;
  error_type?: string;
}

export interface FalMockOptions {
  apiKey: string;
  statuses?: FalStatus[];
  /** Output JSON; default `{video: {url: <mock>/files/out.mp4}, seed: 4242}`. */
  result?: Record<string, unknown>;
  video?: Buffer;
  requestId?: string;
}

export interface FalMock {
  queueUrl: string;
  syncUrl: string;
  env: Record<string, string>;
  /** Request ids the client asked to cancel. */
  cancelled: string[];
}

const log = (message: string) => ({ message, level: 'INFO', source: 'USER', timestamp: '2025-01-01T00:00:00Z' });

export const DEFAULT_FAL_STATUSES: FalStatus[] = [
  { status: 'IN_QUEUE', queue_position: 1, logs: null },
  { status: 'IN_PROGRESS', logs: [log('loading model')] },
  { status: 'IN_PROGRESS', logs: [log('loading model'), log(' 50%|█████     | 10/20 [00:01<00:01]')] },
  {
    status: 'COMPLETED',
    logs: [log('loading model'), log(' 50%|█████     | 10/20 [00:01<00:01]'), log('100%|██████████| 20/20')],
  },
];

export function mockFal(server: MockServer, opts: FalMockOptions): FalMock {
  const statuses = opts.statuses ?? DEFAULT_FAL_STATUSES;
  const video = opts.video ?? FAKE_MP4;
  const requestId = opts.requestId ?? 'req-0001';
  const result = () =>
    opts.result ?? {
      video: { url: `${server.url}/files/out.mp4`, content_type: 'video/mp4', file_name: 'out.mp4' },
      seed: 4242,
    };
  const cancelled: string[] = [];
  let poll = 0;
  const unauthorized = (req: RecordedRequest, res: ServerResponse) => {
    if (req.headers.authorization === `Key ${opts.apiKey}`) return false;
    sendJson(res, 401, { detail: `No user found for Key ${String(req.headers.authorization).replace(/^Key /, '')}` });
    return true;
  };
  server.on('POST', /^\/queue\/([^/]+)\/([^/]+)(\/.*)?$/, (req, res) => {
    if (unauthorized(req, res)) return;
    const [owner, alias] = req.params;
    const root = `${server.url}/queue/${owner}/${alias}/requests/${requestId}`;
    sendJson(res, 200, {
      status: 'IN_QUEUE',
      request_id: requestId,
      queue_position: 2,
      status_url: `${root}/status`,
      response_url: root,
      cancel_url: `${root}/cancel`,
      logs: null,
      metrics: {},
    });
  });
  server.on('GET', /^\/queue\/[^/]+\/[^/]+\/requests\/([^/]+)\/status$/, (req, res) => {
    if (unauthorized(req, res)) return;
    sendJson(res, 200, { request_id: req.params[0], ...statuses[Math.min(poll++, statuses.length - 1)] });
  });
  server.on('GET', /^\/queue\/[^/]+\/[^/]+\/requests\/([^/]+)$/, (req, res) => {
    if (unauthorized(req, res)) return;
    sendJson(res, 200, result(), { 'x-fal-request-id': req.params[0] });
  });
  server.on('PUT', /^\/queue\/[^/]+\/[^/]+\/requests\/([^/]+)\/cancel$/, (req, res) => {
    if (unauthorized(req, res)) return;
    cancelled.push(req.params[0]);
    sendJson(res, 202, { status: 'CANCELLATION_REQUESTED' });
  });
  server.on('POST', /^\/run\/([^/]+)\/([^/]+)(\/.*)?$/, (req, res) => {
    if (unauthorized(req, res)) return;
    sendJson(res, 200, result(), { 'x-fal-request-id': requestId });
  });
  server.on('GET', '/files/out.mp4', (_req, res) => sendBytes(res, video));
  return {
    queueUrl: `${server.url}/queue`,
    syncUrl: `${server.url}/run`,
    env: { FAL_KEY: opts.apiKey, FAL_QUEUE_URL: `${server.url}/queue`, FAL_BASE_URL: `${server.url}/run` },
    cancelled,
  };
}
