import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createSegmindBackend } from '../src/backends/segmind/index.js';
import { AbortError, InvalidRequestError, ProviderError } from '../src/errors.js';
import {
  delayed,
  dropMidBody,
  sendBytes,
  sendJson,
  sequence,
  startMockServer,
  type MockServer,
} from './mocks/server.js';
import { mockSegmind, type SegmindMock } from './mocks/segmind.js';
import { FAKE_MP4, TINY_PNG, fakeMp4, tempDir, writeTinyPng } from './mocks/fixtures.js';
import { expectNoSecret, rejectionOf } from './mocks/secrets.js';
import type { ProgressEvent } from '../src/backends/types.js';

const KEY = 'sg-test-7f3a9c2e-SECRET-key';
const FAST = { retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 4 }, deadlineMs: 5000 };

let server: MockServer;
let segmind: SegmindMock;
let dir: string;
let image: string;

beforeEach(async () => {
  server = await startMockServer();
  segmind = mockSegmind(server, { apiKey: KEY });
  dir = tempDir();
  image = writeTinyPng(dir);
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const backend = (extra: Parameters<typeof createSegmindBackend>[0] = {}) =>
  createSegmindBackend({ env: segmind.env, ...FAST, ...extra });
const posts = (slug: string) => server.calls('POST', `/v1/${slug}`);

describe('segmind svd', () => {
  it('maps the request onto /v1/svd and writes the raw video bytes', async () => {
    const out = join(dir, 'out.mp4');
    const events: ProgressEvent[] = [];
    const result = await backend().generate(
      {
        image,
        fps: 9,
        motionBucketId: 150,
        condAug: 0.3,
        frames: 25,
        resize: 'crop_to_16_9',
        seed: 77,
        steps: 30,
        minGuidance: 1.5,
        output: out,
      },
      { onProgress: (e) => events.push(e) },
    );
    const [call] = posts('svd');
    expect(call.headers['x-api-key']).toBe(KEY);
    expect(call.json()).toEqual({
      image: TINY_PNG.toString('base64'),
      fps: 9,
      motion: 150,
      seed: 77,
      cond_aug: 0.3,
      frames: 25,
      resize_method: 'crop_to_16_9',
      base64: false,
    });
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    expect(result).toMatchObject({ outputPath: out, format: 'mp4', seed: 77, backend: 'segmind' });
    expect(result.metadata).toMatchObject({ endpoint: 'svd', remainingCredits: 42, bytes: FAKE_MP4.length });
    expect(result.metadata.ignored).toEqual(['steps', 'minGuidance']);
    expect(events.some((e) => e.stage === 'download' && e.fraction === 1)).toBe(true);
  });

  it('sends a random seed when none is given and reports it', async () => {
    const result = await backend().generate({ image, output: join(dir, 'a.mp4') });
    const sent = posts('svd')[0].json().seed;
    expect(Number.isInteger(sent) && sent >= 0).toBe(true);
    expect(result.seed).toBe(sent);
  });

  it('decodes a base64 JSON answer', async () => {
    const out = join(dir, 'b64.mp4');
    const result = await backend({ segmindBase64: true }).generate({ image, output: out });
    expect(posts('svd')[0].json().base64).toBe(true);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    expect(result.metadata.remainingCredits).toBe(41.5);
  });

  it('follows a JSON answer that holds a URL, without sending the key there', async () => {
    server.on('POST', '/v1/svd', (_req, res) => sendJson(res, 200, { output: `${server.url}/files/out.mp4` }));
    const out = join(dir, 'url.mp4');
    await backend().generate({ image, output: out });
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    const download = server.calls('GET', '/files/out.mp4')[0];
    expect(download.headers['x-api-key']).toBeUndefined();
  });

  it('passes an image URL through untouched', async () => {
    await backend().generate({ image: 'https://example.com/cat.png', output: join(dir, 'u.mp4') });
    expect(posts('svd')[0].json().image).toBe('https://example.com/cat.png');
  });

  it.each([
    [{ frames: 16 }, 'frames', 'one of 14, 25'],
    [{ condAug: 5 }, 'condAug', 'from 0 to 1'],
    [{ motionBucketId: 200 }, 'motionBucketId', 'from 1 to 180'],
    [{ resize: 'stretch' as const }, 'resize', 'one of maintain_aspect_ratio, crop_to_16_9'],
  ])('refuses %o before any call', async (bad, field, allowed) => {
    const err = await rejectionOf(backend().generate({ image, output: join(dir, 'x.mp4'), ...bad }));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0].field).toBe(field);
    expect(err.message).toContain(allowed);
    expect(err.message).toContain('segmind svd');
    expect(err.message).toContain(String(Object.values(bad)[0]));
    expect(server.requests).toHaveLength(0);
  });

  it('refuses formats other than mp4 without a transcoder, and transcodes with one', async () => {
    const err = await rejectionOf(backend().generate({ image, format: 'webm', output: join(dir, 'x.webm') }));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues[0].field).toBe('format');
    expect(server.requests).toHaveLength(0);

    const seen: string[] = [];
    const out = join(dir, 'x.gif');
    const result = await backend({
      transcode: async (input, output, format) => {
        seen.push(format);
        expect(readFileSync(input)).toEqual(FAKE_MP4);
        await import('node:fs/promises').then((fs) => fs.writeFile(output, 'GIF89a'));
      },
    }).generate({ image, format: 'gif', output: out });
    expect(seen).toEqual(['gif']);
    expect(result.outputPath).toBe(out);
    expect(readdirSync(dir).sort()).toEqual(['input.png', 'x.gif']);
  });
});

describe('segmind motionctrl-svd', () => {
  it('is chosen by a camera preset and maps speed, decoding_t and aspect', async () => {
    const result = await backend().generate({
      image,
      motionBucketId: 180,
      fps: 12,
      decodeChunkSize: 2,
      resize: 'maintain_aspect_ratio',
      seed: 5,
      output: join(dir, 'm.mp4'),
      camera: 'pan-left',
      motionSpeed: 2.5,
    });
    expect(posts('motionctrl-svd')[0].json()).toEqual({
      input_image: TINY_PNG.toString('base64'),
      motion: 'Pan Left',
      motion_bucket_id: 180,
      fps: 12,
      cond_aug: 0.02,
      seed: 5,
      decoding_t: 2,
      maintain_aspect_ratio: true,
      motion_speed: 2.5,
      base64: false,
    });
    expect(result.metadata).toMatchObject({
      endpoint: 'motionctrl-svd',
      endpointReason: 'a camera motion was given',
      ignored: [],
    });
  });

  it('refuses values outside its narrower ranges, naming each field', async () => {
    const err = await rejectionOf(
      backend().generate({
        image,
        motionBucketId: 100,
        fps: 40,
        frames: 25,
        output: join(dir, 'm.mp4'),
        camera: 'Zoom In',
      }),
    );
    expect(err).toBeInstanceOf(InvalidRequestError);
    const byField = Object.fromEntries(err.issues.map((i: any) => [i.field, i.message]));
    expect(byField.motionBucketId).toContain('from 127 to 255');
    expect(byField.motionBucketId).toContain('sent as `motion_bucket_id`');
    expect(byField.fps).toContain('from 5 to 30');
    expect(byField.frames).toContain('14');
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a motion speed above 10 and a trajectory file, which the endpoint cannot take', async () => {
    const fast = await rejectionOf(backend().generate({ image, camera: 'CW', motionSpeed: 11 }));
    expect(fast.issues[0]).toMatchObject({ field: 'motionSpeed', message: 'must be from 0 to 10' });
    const file = await rejectionOf(backend().generate({ image, camera: 'orbit.json' }));
    expect(file.issues[0].field).toBe('camera');
    expect(file.issues[0].message).toContain('on segmind motionctrl-svd');
    expect(file.issues[0].message).toContain('Pan Up');
    expect(server.requests).toHaveLength(0);
  });

  it('refuses an unknown camera preset with the list of presets', async () => {
    const err = await rejectionOf(backend().generate({ image, camera: 'barrel roll' }));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues[0].field).toBe('camera');
    expect(err.message).toContain('Pan Up');
  });
});

describe('segmind pixverse-image2video', () => {
  it('is chosen by a prompt, uploads a local image and sends its URL', async () => {
    const result = await backend().generate(
      { image, seed: 9, fps: 7, output: join(dir, 'p.mp4') },
      { remote: { prompt: 'the cat waves', negativePrompt: 'blur', duration: 8, quality: '720p', style: 'anime' } },
    );
    const upload = server.calls('POST', '/upload-asset')[0];
    expect(upload.json()).toEqual({ data_urls: [`data:image/png;base64,${TINY_PNG.toString('base64')}`] });
    expect(posts('pixverse-image2video')[0].json()).toEqual({
      image_url: `${server.url}/assets/0.png`,
      prompt: 'the cat waves',
      negative_prompt: 'blur',
      duration: 8,
      quality: '720p',
      motion_mode: 'normal',
      style: 'anime',
      seed: 9,
    });
    expect(result.metadata).toMatchObject({
      endpoint: 'pixverse-image2video',
      uploadedImage: `${server.url}/assets/0.png`,
    });
    expect(result.metadata.ignored).toEqual(['fps']);
  });

  it("takes the request's duration (the CLI's --duration) when remote.duration is not set", async () => {
    const request = { image, duration: 8, output: join(dir, 'd.mp4') };
    await backend().generate(request, { remote: { prompt: 'the cat waves' } });
    expect(posts('pixverse-image2video')[0].json()).toMatchObject({ duration: 8 });
  });

  it.each([
    [{ duration: 8, motionMode: 'fast' as const }, 'remote.motionMode', 'only available with duration 5'],
    [{ duration: 8, quality: '1080p' as const }, 'remote.duration', 'must be 5 with quality 1080p'],
    [
      { quality: '1080p' as const, motionMode: 'fast' as const },
      'remote.motionMode',
      'not available with quality 1080p',
    ],
    [{ duration: 6 }, 'remote.duration', 'one of 5, 8'],
  ])('refuses %o before uploading anything', async (bad, field, text) => {
    const err = await rejectionOf(backend().generate({ image }, { remote: { prompt: 'go', ...bad } }));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues.map((i: any) => i.field)).toContain(field);
    expect(err.message).toContain(text);
    expect(server.requests).toHaveLength(0);
  });

  it('needs a prompt when named explicitly', async () => {
    const err = await rejectionOf(backend().generate({ image }, { remote: { model: 'pixverse-image2video' } }));
    expect(err.issues[0].field).toBe('remote.prompt');
    expect(server.requests).toHaveLength(0);
  });
});

describe('segmind errors, retries, deadline, downloads', () => {
  it('401: ProviderError without the key, even though the server echoed it', async () => {
    const wrong = 'sg-WRONG-key-0123456789';
    const err = await rejectionOf(backend({ apiKey: wrong }).generate({ image, output: join(dir, 'x.mp4') }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: 'segmind', status: 401, retryable: false, code: 'provider_unauthorized' });
    expect(err.message).toContain('invalid API key');
    expect(err.providerMessage).toContain('Invalid API key: ***');
    expectNoSecret(err, wrong);
    expect(posts('svd')).toHaveLength(1);
  });

  it('406: insufficient credits, not retried', async () => {
    server.on('POST', '/v1/svd', (_req, res) => sendJson(res, 406, { error: 'Not enough credits' }));
    const err = await rejectionOf(backend().generate({ image, output: join(dir, 'x.mp4') }));
    expect(err).toMatchObject({
      status: 406,
      code: 'provider_insufficient_credits',
      retryable: false,
      providerMessage: 'Not enough credits',
    });
    expect(posts('svd')).toHaveLength(1);
  });

  it('429 with Retry-After: waits as told, then succeeds', async () => {
    server.on(
      'POST',
      '/v1/svd',
      sequence(
        (_req, res) => sendJson(res, 429, { error: 'Too many requests' }, { 'retry-after': '0.15' }),
        (_req, res) => sendBytes(res, FAKE_MP4),
      ),
    );
    const logs: string[] = [];
    const out = join(dir, 'r.mp4');
    await backend({ log: (m) => logs.push(m), retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 1 } }).generate({
      image,
      output: out,
    });
    expect(posts('svd')).toHaveLength(2);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    // the wait it chose is the server's 0.15 s, not its own 1 ms backoff
    expect(logs[0]).toMatch(/HTTP 429; retry 1\/2 in 150 ms/);
  });

  it('429 whose Retry-After is past the deadline fails at once', async () => {
    server.on('POST', '/v1/svd', (_req, res) => sendJson(res, 429, { error: 'slow down' }, { 'retry-after': '3600' }));
    const err = await rejectionOf(backend({ deadlineMs: 2000 }).generate({ image, output: join(dir, 'x.mp4') }));
    expect(err).toMatchObject({ status: 429, retryable: true, code: 'provider_rate_limited' });
    expect(posts('svd')).toHaveLength(1); // no second try (waiting an hour would time the test out)
  });

  it('502 is retried up to the limit; 500 is not retried', async () => {
    server.on('POST', '/v1/svd', (_req, res) => sendJson(res, 502, { error: 'Bad gateway' }));
    const err = await rejectionOf(
      backend({ retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 } }).generate({ image, output: join(dir, 'x.mp4') }),
    );
    expect(err).toMatchObject({ status: 502, retryable: true });
    expect(posts('svd')).toHaveLength(3);

    server.on('POST', '/v1/svd', (_req, res) => sendJson(res, 500, { error: 'CUDA out of memory' }));
    const err500 = await rejectionOf(backend().generate({ image, output: join(dir, 'x.mp4') }));
    expect(err500).toMatchObject({ status: 500, retryable: false, providerMessage: 'CUDA out of memory' });
    expect(posts('svd')).toHaveLength(4);
  });

  it('a slow server hits the deadline', async () => {
    server.on(
      'POST',
      '/v1/svd',
      delayed(3000, (_req, res) => sendBytes(res, FAKE_MP4)),
    );
    const out = join(dir, 'slow.mp4');
    const err = await rejectionOf(backend({ deadlineMs: 150 }).generate({ image, output: out }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.code).toBe('deadline_exceeded');
    expect(err.message).toContain('150 ms');
    expect(existsSync(out)).toBe(false);
  });

  it('a connection dropped mid-download leaves no file behind', async () => {
    const big = fakeMp4(200_000);
    server.on('POST', '/v1/svd', (_req, res) => dropMidBody(res, big, 50_000));
    const out = join(dir, 'dropped.mp4');
    const err = await rejectionOf(backend().generate({ image, output: out }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toMatch(/dropped|stopped/);
    expect(readdirSync(dir)).toEqual(['input.png']);
  });

  it('an answer that is not a video is refused and not kept', async () => {
    server.on('POST', '/v1/svd', (_req, res) => sendBytes(res, Buffer.from('<html>maintenance</html>'), 'text/html'));
    const err = await rejectionOf(backend().generate({ image, output: join(dir, 'h.mp4') }));
    expect(err.code).toBe('provider_bad_response');
    expect(err.message).toContain('not a video');
    expect(readdirSync(dir)).toEqual(['input.png']);
  });

  it('the caller aborting stops the call with AbortError and no file', async () => {
    server.on(
      'POST',
      '/v1/svd',
      delayed(3000, (_req, res) => sendBytes(res, FAKE_MP4)),
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const err = await rejectionOf(
      backend().generate({ image, output: join(dir, 'a.mp4') }, { signal: controller.signal }),
    );
    expect(err).toBeInstanceOf(AbortError);
    expect(readdirSync(dir)).toEqual(['input.png']);
  });

  it('without a key: a clear error naming SEGMIND_API_KEY, before any call', () => {
    let err: any;
    try {
      createSegmindBackend({ env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.code).toBe('missing_api_key');
    expect(err.message).toContain('SEGMIND_API_KEY');
  });

  it('a missing image file is an ImageLoadError, before any call', async () => {
    const err = await rejectionOf(backend().generate({ image: join(dir, 'nope.png') }));
    expect(err.name).toBe('ImageLoadError');
    expect(err.message).toContain('nope.png');
    expect(server.requests).toHaveLength(0);
  });
});
