import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFalBackend, falQueueUrl } from '../src/backends/fal/index.js';
import { AbortError, InvalidRequestError, ProviderError } from '../src/errors.js';
import { sendJson, sequence, startMockServer, type MockServer } from './mocks/server.js';
import { mockFal, type FalMock, type FalMockOptions } from './mocks/fal.js';
import { FAKE_MP4, TINY_PNG, tempDir, writeTinyPng } from './mocks/fixtures.js';
import { expectNoSecret, rejectionOf } from './mocks/secrets.js';
import type { ProgressEvent } from '../src/backends/types.js';

const KEY = 'fal-key-id-0001:fal-secret-abcdef123456';
const PNG_URI = `data:image/png;base64,${TINY_PNG.toString('base64')}`;

let server: MockServer;
let fal: FalMock;
let dir: string;
let image: string;

async function setup(opts: Partial<FalMockOptions> = {}) {
  fal = mockFal(server, { apiKey: KEY, ...opts });
}
beforeEach(async () => {
  server = await startMockServer();
  dir = tempDir();
  image = writeTinyPng(dir);
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const backend = (extra: Parameters<typeof createFalBackend>[0] = {}) =>
  createFalBackend({
    env: fal.env,
    pollIntervalMs: 5,
    retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 },
    deadlineMs: 5000,
    ...extra,
  });

describe('fal queue', () => {
  it('submits, follows IN_QUEUE → IN_PROGRESS → COMPLETED with logs as progress, downloads the video', async () => {
    await setup();
    const events: ProgressEvent[] = [];
    const out = join(dir, 'out.mp4');
    const result = await backend().generate(
      { image, motionBucketId: 90, condAug: 0.05, fps: 6, seed: 11, minGuidance: 2, output: out },
      { onProgress: (e) => events.push(e) },
    );
    const submit = server.calls('POST', '/queue/fal-ai/stable-video')[0];
    expect(submit.headers.authorization).toBe(`Key ${KEY}`);
    expect(submit.json()).toEqual({ image_url: PNG_URI, motion_bucket_id: 90, cond_aug: 0.05, fps: 6, seed: 11 });
    const polls = server.calls('GET', /\/requests\/req-0001\/status$/);
    expect(polls).toHaveLength(4);
    expect(polls.every((p) => p.query.get('logs') === '1')).toBe(true);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    // The seed fal reports wins over the one we sent.
    expect(result).toMatchObject({ backend: 'fal', seed: 4242, outputPath: out });
    expect(result.metadata).toMatchObject({
      endpoint: 'fal-ai/stable-video',
      requestId: 'req-0001',
      mode: 'queue',
      ignored: ['minGuidance'],
    });
    expect(events.filter((e) => e.stage === 'queue')[0].message).toContain('position 1');
    const remote = events.filter((e) => e.stage === 'remote' && e.totalSteps);
    // Each log line is reported once although status answers repeat earlier logs.
    expect(remote.map((e) => [e.step, e.totalSteps])).toEqual([
      [10, 20],
      [20, 20],
    ]);
    expect(remote[0].fraction).toBeCloseTo(0.5);
    expect(events.filter((e) => e.message === 'loading model')).toHaveLength(1);
    expect(server.calls('GET', '/files/out.mp4')[0].headers.authorization).toBeUndefined();
  });

  it('aborting cancels the remote job (PUT cancel) and leaves no file', async () => {
    await setup({ statuses: [{ status: 'IN_PROGRESS', logs: [] }] });
    const controller = new AbortController();
    const job = backend().generate({ image, output: join(dir, 'a.mp4') }, { signal: controller.signal });
    // Let a couple of polls happen, then abort.
    while (server.calls('GET', /\/status$/).length < 2) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const err = await rejectionOf(job);
    expect(err).toBeInstanceOf(AbortError);
    expect(fal.cancelled).toEqual(['req-0001']);
    expect(server.calls('PUT', '/queue/fal-ai/stable-video/requests/req-0001/cancel')[0].headers.authorization).toBe(
      `Key ${KEY}`,
    );
    expect(readdirSync(dir)).toEqual(['input.png']);
  });

  it('a deadline while queued also cancels the job', async () => {
    await setup({ statuses: [{ status: 'IN_QUEUE', queue_position: 7 }] });
    const err = await rejectionOf(backend({ deadlineMs: 120 }).generate({ image, output: join(dir, 'd.mp4') }));
    expect(err).toMatchObject({ code: 'deadline_exceeded', provider: 'fal' });
    expect(fal.cancelled).toEqual(['req-0001']);
  });

  it('a job that completes with an error is a ProviderError', async () => {
    await setup({ statuses: [{ status: 'COMPLETED', error: 'NSFW content detected', error_type: 'content_policy' }] });
    const err = await rejectionOf(backend().generate({ image, output: join(dir, 'e.mp4') }));
    expect(err).toMatchObject({ code: 'provider_job_failed', retryable: false });
    expect(err.message).toContain('content_policy: NSFW content detected');
    expect(server.calls('GET', /\/requests\/req-0001$/)).toHaveLength(0);
  });

  it('422 field errors become ProviderError details', async () => {
    await setup();
    server.on('POST', '/queue/fal-ai/stable-video', (_req, res) =>
      sendJson(res, 422, {
        detail: [{ loc: ['body', 'image_url'], msg: 'Could not download the image', type: 'value_error' }],
      }),
    );
    const err = await rejectionOf(backend().generate({ image, output: join(dir, 'v.mp4') }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ status: 422, code: 'provider_invalid_request', retryable: false });
    expect(err.details).toEqual([{ field: 'image_url', message: 'Could not download the image' }]);
    expect(err.message).toContain('image_url: Could not download the image');
  });

  it('401 redacts both halves of an id:secret key', async () => {
    await setup();
    const wrong = 'wrong-id-999999:wrong-secret-888888';
    const err = await rejectionOf(backend({ apiKey: wrong }).generate({ image, output: join(dir, 'k.mp4') }));
    expect(err).toMatchObject({ status: 401, code: 'provider_unauthorized' });
    expectNoSecret(err, wrong);
    expectNoSecret(err, 'wrong-id-999999');
    expectNoSecret(err, 'wrong-secret-888888');
  });

  it('status polls survive a 503 and a 429', async () => {
    await setup({ statuses: [{ status: 'COMPLETED', logs: [] }] });
    server.on(
      'GET',
      /\/requests\/req-0001\/status$/,
      sequence(
        (_req, res) =>
          sendJson(res, 503, { detail: 'runner_scheduling_failure', error_type: 'runner_scheduling_failure' }),
        (_req, res) => sendJson(res, 429, { detail: 'slow down' }, { 'retry-after': '0' }),
        (_req, res) => sendJson(res, 200, { status: 'COMPLETED', logs: [] }),
      ),
    );
    const out = join(dir, 's.mp4');
    await backend().generate({ image, output: out });
    expect(server.calls('GET', /\/status$/)).toHaveLength(3);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
  });

  it('does not follow submit URLs that point at another host', async () => {
    await setup();
    server.on('POST', '/queue/fal-ai/stable-video', (_req, res) =>
      sendJson(res, 200, {
        status: 'IN_QUEUE',
        request_id: 'req-0001',
        status_url: 'http://127.0.0.2:9/steal',
        response_url: 'http://127.0.0.2:9/steal',
        cancel_url: 'http://127.0.0.2:9/steal',
      }),
    );
    await backend().generate({ image, output: join(dir, 'h.mp4') });
    expect(server.calls('GET', '/queue/fal-ai/stable-video/requests/req-0001')).toHaveLength(1);
  });
});

describe('fal endpoints and mapping', () => {
  it('sync mode posts to fal.run once', async () => {
    await setup();
    const out = join(dir, 'sync.mp4');
    const result = await backend({ falMode: 'sync' }).generate(
      { image, output: out },
      { remote: { model: 'fal-ai/fast-svd-lcm' } },
    );
    expect(server.calls('POST', '/run/fal-ai/fast-svd-lcm')).toHaveLength(1);
    expect(server.calls('POST', /^\/queue/)).toHaveLength(0);
    expect(result.metadata).toMatchObject({ mode: 'sync', endpoint: 'fal-ai/fast-svd-lcm' });
    expect(readFileSync(out)).toEqual(FAKE_MP4);
  });

  it('a mask picks fal-ai/svd and travels as a data URI; steps are sent only when set', async () => {
    await setup();
    const mask = join(dir, 'mask.png');
    writeFileSync(mask, TINY_PNG);
    const result = await backend().generate(
      { image, steps: 40, output: join(dir, 'm.mp4'), fps: 8 },
      { remote: { maskImage: mask } },
    );
    const body = server.calls('POST', '/queue/fal-ai/svd')[0].json();
    expect(body.mask_image_url).toBe(PNG_URI);
    expect(body.steps).toBe(40);
    expect(body.fps).toBeUndefined();
    expect(result.metadata).toMatchObject({
      endpoint: 'fal-ai/svd',
      endpointReason: 'a motion mask or depth maps were given',
      ignored: ['fps'],
    });

    await backend().generate({ image, output: join(dir, 'n.mp4') }, { remote: { model: 'fal-ai/fast-svd-lcm' } });
    expect('steps' in server.calls('POST', '/queue/fal-ai/fast-svd-lcm')[0].json()).toBe(false);
  });

  it("the request's mask (the local pipeline's field) picks fal-ai/svd too and is sent as mask_image_url", async () => {
    await setup();
    const mask = join(dir, 'mask.png');
    writeFileSync(mask, TINY_PNG);
    const result = await backend().generate({ image, mask, clips: 2, output: join(dir, 'rm.mp4') });
    expect(server.calls('POST', '/queue/fal-ai/svd')[0].json().mask_image_url).toBe(PNG_URI);
    expect(result.metadata).toMatchObject({ endpoint: 'fal-ai/svd', ignored: ['clips'] });
  });

  it('depth maps go as a zip data URI', async () => {
    await setup();
    const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]);
    await backend().generate({ image, output: join(dir, 'z.mp4') }, { remote: { controlMaps: zip } });
    expect(server.calls('POST', '/queue/fal-ai/svd')[0].json().control_maps_data_url).toBe(
      `data:application/zip;base64,${zip.toString('base64')}`,
    );
  });

  it.each([
    [{ steps: 30 }, 'fal-ai/fast-svd-lcm', 'steps', 'from 1 to 20'],
    [{ frames: 14 }, 'fal-ai/stable-video', 'frames', '25'],
    [{}, 'fal-ai/unknown', 'remote.model', 'fal-ai/stable-video'],
  ])('refuses %o on %s before any call', async (bad, model, field, allowed) => {
    await setup();
    const err = await rejectionOf(backend().generate({ image, ...bad }, { remote: { model } }));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues[0].field).toBe(field);
    expect(err.message).toContain(allowed);
    expect(server.requests).toHaveLength(0);
  });

  it('queue URL: explicit option, then baseUrl, then FAL_QUEUE_URL', () => {
    expect(falQueueUrl({ queueUrl: 'http://q/', baseUrl: 'http://b', env: { FAL_QUEUE_URL: 'http://e' } })).toBe(
      'http://q',
    );
    expect(falQueueUrl({ baseUrl: 'http://b/', env: { FAL_QUEUE_URL: 'http://e' } })).toBe('http://b');
    expect(falQueueUrl({ env: { FAL_QUEUE_URL: 'http://e/' } })).toBe('http://e');
    expect(falQueueUrl({ env: {} })).toBe('https://queue.fal.run');
  });
});
