/**
 * `svd serve --backend segmind|fal|openai|voltage`: a front server forwards every job through our hosted-API
 * clients (src/backends) to a second `svd serve` that plays the provider, so each client is checked against
 * our implementation of that provider's dialect, end to end, with the tiny model making the video.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backends/local.js';
import type { RemoteBackendOptions } from '../src/backends/options.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import { fixtureBytes, probeBytes } from './server-helpers.js';
import { until } from './helpers/until.js';

const KEY = 'provider-side-key';
const dataUri = `data:image/png;base64,${Buffer.from(fixtureBytes()).toString('base64')}`;

let backend: LocalBackend;
let provider: RunningServer;

beforeAll(async () => {
  backend = new LocalBackend();
  await backend.pipeline();
  provider = await startServer({ port: 0, apiKey: KEY, backend, defaults: { steps: 2 } });
});

afterAll(async () => {
  await provider?.close();
  await backend?.close();
});

const remotes: [string, () => RemoteBackendOptions][] = [
  ['segmind', () => ({ apiKey: KEY, baseUrl: `${provider.url}/v1` })],
  ['fal', () => ({ apiKey: KEY, baseUrl: `${provider.url}/run`, queueUrl: provider.url, pollIntervalMs: 100 })],
  ['openai', () => ({ apiKey: KEY, baseUrl: `${provider.url}/v1`, svdExtensions: true, pollIntervalMs: 100 })],
  ['voltage', () => ({ apiKey: KEY, baseUrl: `${provider.url}/v1` })],
];

describe('forwarding to a hosted backend', () => {
  it.each(remotes)('--backend %s makes the video through the provider dialect', async (name, remote) => {
    const front = await startServer({ port: 0, backend: name as never, remote: remote() });
    try {
      const created = await fetch(`${front.url}/api/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: dataUri, fps: 6 }),
      });
      expect(created.status).toBe(202);
      const { id } = (await created.json()) as { id: string };
      type JobView = { status: string; video: { url: string } | null; error: { message: string } | null };
      const job = await until(`job ${id}`, async () => {
        const j = (await (await fetch(`${front.url}/api/jobs/${id}`)).json()) as JobView;
        return j.status === 'queued' || j.status === 'running' ? undefined : j;
      });
      expect(job.error).toBeNull();
      expect(job.status).toBe('completed');
      const info = await probeBytes(new Uint8Array(await (await fetch(job.video!.url)).arrayBuffer()));
      expect(info.codec).toBe('h264');
      expect([info.width, info.height]).toEqual([128, 64]);
      expect(info.fps).toBe(6);
    } finally {
      await front.close();
    }
  });

  it('a hosted backend without a key fails at start, naming the variable to set', async () => {
    await expect(startServer({ port: 0, backend: 'segmind', remote: { env: {} } })).rejects.toThrow(/SEGMIND_API_KEY/);
  });
});
