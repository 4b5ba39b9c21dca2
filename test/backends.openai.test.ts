import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createOpenAIBackend } from '../src/backends/openai/videos.js';
import { createVoltageBackend } from '../src/backends/openai/generations.js';
import { AbortError, InvalidRequestError, ProviderError } from '../src/errors.js';
import { dropMidBody, sendJson, startMockServer, type MockServer } from './mocks/server.js';
import { mockOpenAIVideos, mockVoltage, type OpenAIMock, type VideoJobState } from './mocks/openai.js';
import { FAKE_MP4, TINY_PNG, fakeMp4, tempDir, writeTinyPng } from './mocks/fixtures.js';
import { expectNoSecret, rejectionOf } from './mocks/secrets.js';
import type { ProgressEvent } from '../src/backends/types.js';

const KEY = 'sk-proj-TESTKEY-0123456789abcdef';
const FAST = { pollIntervalMs: 5, retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 }, deadlineMs: 5000 };

let server: MockServer;
let dir: string;
let image: string;
beforeEach(async () => {
  server = await startMockServer();
  dir = tempDir();
  image = writeTinyPng(dir);
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('OpenAI /v1/videos', () => {
  let openai: OpenAIMock;
  const setup = (states?: VideoJobState[]) => (openai = mockOpenAIVideos(server, { apiKey: KEY, states }));
  const backend = (extra: Parameters<typeof createOpenAIBackend>[0] = {}) =>
    createOpenAIBackend({ env: openai.env, ...FAST, ...extra });

  it('creates (multipart, image as input_reference), polls with progress, downloads /content', async () => {
    setup();
    const events: ProgressEvent[] = [];
    const out = join(dir, 'sora.mp4');
    const result = await backend().generate(
      { image, width: 1280, height: 768, fps: 8, steps: 10, output: out },
      { remote: { prompt: 'the cat blinks', duration: 8, model: 'sora-2-pro' }, onProgress: (e) => events.push(e) },
    );
    expect(openai.created).toEqual([
      {
        model: 'sora-2-pro',
        prompt: 'the cat blinks',
        seconds: '8',
        size: '1280x768',
        input_reference: `<file input.png image/png ${TINY_PNG.length}>`,
      },
    ]);
    expect(server.calls('POST', '/v1/videos')[0].headers.authorization).toBe(`Bearer ${KEY}`);
    expect(server.calls('GET', '/v1/videos/video_123/content')[0].headers.authorization).toBe(`Bearer ${KEY}`);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    expect(result).toMatchObject({ backend: 'openai', seed: -1 });
    expect(result.metadata).toMatchObject({ videoId: 'video_123', model: 'sora-2-pro', ignored: ['fps', 'steps'] });
    expect(events.filter((e) => e.stage === 'remote').map((e) => e.fraction)).toEqual([0, 0.4, 1]);
  });

  it('an image URL goes as input_reference[image_url]', async () => {
    setup();
    await backend().generate(
      { image: 'https://example.com/a.png', output: join(dir, 'u.mp4') },
      { remote: { prompt: 'x' } },
    );
    expect(openai.created[0]['input_reference[image_url]']).toBe('https://example.com/a.png');
  });

  it('svdExtensions sends the SVD knobs for compatible servers and allows no prompt', async () => {
    setup();
    const result = await backend({ svdExtensions: true }).generate({
      image,
      frames: 14,
      fps: 7,
      motionBucketId: 127,
      condAug: 0.02,
      seed: 3,
      steps: 4,
      decodeChunkSize: 2,
      output: join(dir, 'e.mp4'),
    });
    expect(openai.created[0]).toMatchObject({
      num_frames: '14',
      fps: '7',
      motion_bucket_id: '127',
      cond_aug: '0.02',
      seed: '3',
      num_inference_steps: '4',
      decode_chunk_size: '2',
    });
    expect(openai.created[0].prompt).toBeUndefined();
    expect(result.seed).toBe(3);
    expect(result.metadata.ignored).toEqual([]);
  });

  it('refuses a missing prompt and a half size before any call', async () => {
    setup();
    const noPrompt = await rejectionOf(backend().generate({ image }));
    expect(noPrompt).toBeInstanceOf(InvalidRequestError);
    expect(noPrompt.issues[0].field).toBe('remote.prompt');
    const half = await rejectionOf(
      backend().generate({ image, width: 1280, resize: 'maintain_aspect_ratio' }, { remote: { prompt: 'x' } }),
    );
    expect(half.issues[0].field).toBe('height');
    expect(server.requests).toHaveLength(0);
  });

  it('a failed job is a ProviderError with the provider message', async () => {
    setup([
      { status: 'failed', progress: 10, error: { code: 'moderation_blocked', message: 'Your request was blocked' } },
    ]);
    const err = await rejectionOf(
      backend().generate({ image, output: join(dir, 'f.mp4') }, { remote: { prompt: 'x' } }),
    );
    expect(err).toMatchObject({ code: 'provider_job_failed', provider: 'openai', retryable: false });
    expect(err.message).toContain('moderation_blocked: Your request was blocked');
  });

  it('aborting while the job runs deletes it', async () => {
    setup([{ status: 'in_progress', progress: 5 }]);
    const controller = new AbortController();
    const job = backend().generate(
      { image, output: join(dir, 'a.mp4') },
      { signal: controller.signal, remote: { prompt: 'x' } },
    );
    while (server.calls('GET', '/v1/videos/video_123').length < 1) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    expect(await rejectionOf(job)).toBeInstanceOf(AbortError);
    expect(openai.deleted).toEqual(['video_123']);
    expect(readdirSync(dir)).toEqual(['input.png']);
  });

  it('401 never shows the key; a dropped /content download leaves no file', async () => {
    setup();
    const wrong = 'sk-WRONG-9876543210';
    const err = await rejectionOf(
      backend({ apiKey: wrong }).generate({ image, output: join(dir, 'k.mp4') }, { remote: { prompt: 'x' } }),
    );
    expect(err).toMatchObject({
      status: 401,
      code: 'provider_unauthorized',
      providerMessage: 'Incorrect API key provided',
    });
    expectNoSecret(err, wrong);

    server.on('GET', '/v1/videos/video_123/content', (_req, res) => dropMidBody(res, fakeMp4(100_000), 10_000));
    const dropped = await rejectionOf(
      backend().generate({ image, output: join(dir, 'd.mp4') }, { remote: { prompt: 'x' } }),
    );
    expect(dropped).toBeInstanceOf(ProviderError);
    expect(readdirSync(dir)).toEqual(['input.png']);
  });
});

describe('VoltageGPU /v1/video/generations', () => {
  it('posts the documented body and downloads data[0].url', async () => {
    const voltage = mockVoltage(server, { apiKey: KEY });
    const out = join(dir, 'v.mp4');
    const result = await createVoltageBackend({ env: voltage.env, ...FAST }).generate(
      { image, frames: 25, fps: 8, width: 1024, height: 576, seed: 12, motionBucketId: 100, condAug: 0.1, output: out },
      { remote: { prompt: 'gentle motion' } },
    );
    const call = server.calls('POST', '/v1/video/generations')[0];
    expect(call.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(call.json()).toEqual({
      model: 'stabilityai/stable-video-diffusion-img2vid-xt-1-1',
      prompt: 'gentle motion',
      image: `data:image/png;base64,${TINY_PNG.toString('base64')}`,
      num_frames: 25,
      fps: 8,
      width: 1024,
      height: 576,
      seed: 12,
      motion_bucket_id: 100,
    });
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    expect(result).toMatchObject({ backend: 'voltage', seed: 12 });
    expect(result.metadata.ignored).toEqual(['condAug']);
    expect(server.calls('GET', '/files/voltage.mp4')[0].headers.authorization).toBeUndefined();
  });

  it('decodes a b64_json answer', async () => {
    const voltage = mockVoltage(server, { apiKey: KEY, answer: 'b64_json' });
    const out = join(dir, 'b.mp4');
    await createVoltageBackend({ env: voltage.env, ...FAST }).generate({ image, output: out });
    expect(readFileSync(out)).toEqual(FAKE_MP4);
  });

  it('refuses frames and sizes SVD there cannot make', async () => {
    const voltage = mockVoltage(server, { apiKey: KEY });
    const err = await rejectionOf(
      createVoltageBackend({ env: voltage.env, ...FAST }).generate({ image, frames: 30, width: 2048, height: 576 }),
    );
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues.map((i: any) => i.field)).toEqual(['frames', 'width']);
    expect(err.message).toContain('from 14 to 25');
    expect(server.requests).toHaveLength(0);
  });

  it('an answer without data is a bad response', async () => {
    const voltage = mockVoltage(server, { apiKey: KEY });
    server.on('POST', '/v1/video/generations', (_req, res) => sendJson(res, 200, { data: [] }));
    const err = await rejectionOf(
      createVoltageBackend({ env: voltage.env, ...FAST }).generate({ image, output: join(dir, 'n.mp4') }),
    );
    expect(err.code).toBe('provider_bad_response');
  });
});
