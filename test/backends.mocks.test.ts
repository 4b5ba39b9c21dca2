/**
 * The provider mocks speak the documented protocols: the official clients (@fal-ai/client, openai; dev
 * dependencies) run against them unchanged, with only their URLs pointed at 127.0.0.1. This keeps the
 * other backend tests honest: they test our clients against what the real clients also accept.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFalClient } from '@fal-ai/client';
import OpenAI, { toFile } from 'openai';
import { startMockServer, type MockServer } from './mocks/server.js';
import { mockFal } from './mocks/fal.js';
import { mockOpenAIVideos } from './mocks/openai.js';
import { FAKE_MP4, TINY_PNG } from './mocks/fixtures.js';

let server: MockServer;
beforeEach(async () => {
  server = await startMockServer();
});
afterEach(async () => {
  await server.close();
});

describe('mock fidelity', () => {
  it('@fal-ai/client subscribes through the fal mock queue with logs', async () => {
    const fal = mockFal(server, { apiKey: 'fal-k' });
    const client = createFalClient({
      credentials: 'fal-k',
      requestMiddleware: async (req) => ({ ...req, url: req.url.replace('https://queue.fal.run', fal.queueUrl) }),
    });
    const statuses: string[] = [];
    const result = await client.subscribe('fal-ai/stable-video', {
      input: { image_url: 'https://example.com/a.png' },
      logs: true,
      mode: 'polling',
      pollInterval: 5,
      onQueueUpdate: (u) => statuses.push(u.status),
    });
    expect(statuses).toContain('IN_QUEUE');
    expect(statuses).toContain('IN_PROGRESS');
    expect((result.data as any).video.url).toBe(`${server.url}/files/out.mp4`);
    expect(result.requestId).toBe('req-0001');
  });

  it('the openai SDK creates, retrieves and downloads through the videos mock', async () => {
    const mock = mockOpenAIVideos(server, { apiKey: 'sk-k' });
    const client = new OpenAI({ apiKey: 'sk-k', baseURL: mock.baseUrl, maxRetries: 0 });
    const created = await client.videos.create({
      prompt: 'p',
      model: 'sora-2',
      seconds: '4',
      input_reference: await toFile(TINY_PNG, 'input.png', { type: 'image/png' }),
    });
    expect(created.status).toBe('queued');
    // What the SDK sends is what our backend sends (see backends.openai.test.ts).
    expect(mock.created[0]).toEqual({
      prompt: 'p',
      model: 'sora-2',
      seconds: '4',
      input_reference: `<file input.png image/png ${TINY_PNG.length}>`,
    });
    expect((await client.videos.retrieve(created.id)).status).toBe('in_progress');
    const content = await client.videos.downloadContent(created.id);
    expect(Buffer.from(await content.arrayBuffer())).toEqual(FAKE_MP4);
  });
});
