/** Pure pieces of the hosted backends: retry arithmetic, error bodies, redaction, sniffing, log progress. */
import { describe, expect, it } from 'vitest';
import { backoffDelay, isRetryableStatus, parseRetryAfter } from '../src/net/retry.js';
import { messageFromBody, providerErrorFromResponse, redact } from '../src/backends/providerErrors.js';
import { sniffVideo } from '../src/backends/download.js';
import { readImageMedia, sniffImage } from '../src/backends/media.js';
import { progressFromLog } from '../src/backends/fal/logs.js';
import { normalizeCameraPreset } from '../src/camera/trajectory.js';
import { mediaFromSegmindJson } from '../src/backends/segmind/answer.js';
import { defaultOutputPath } from '../src/backends/job.js';
import { FAKE_MP4, TINY_PNG } from './mocks/fixtures.js';
import { expectNoSecret, rejectionOf } from './mocks/secrets.js';

describe('retry arithmetic', () => {
  const policy = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };

  it('doubles per attempt, is capped, and jitters within [half, full]', () => {
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(2, policy, () => 1)).toBe(400);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
    expect(backoffDelay(10, policy, () => 0)).toBe(500);
  });

  it('retries only rate limits and gateway errors', () => {
    expect([400, 401, 403, 404, 406, 422, 429, 500, 502, 503, 504].filter(isRetryableStatus)).toEqual([
      429, 502, 503, 504,
    ]);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.25')).toBe(250);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('provider error bodies', () => {
  it("finds the message in each provider's shape", () => {
    expect(messageFromBody('{"error":"Not enough credits"}', 'application/json').message).toBe('Not enough credits');
    expect(messageFromBody('{"error":{"message":"bad size","code":"x"}}', 'application/json').message).toBe('bad size');
    expect(messageFromBody('{"detail":"Runner timed out","error_type":"request_timeout"}', null).message).toBe(
      'Runner timed out',
    );
    const pyd = messageFromBody(
      '{"detail":[{"loc":["body","cond_aug"],"msg":"ensure this value is less than 10"}]}',
      'application/json',
    );
    expect(pyd.details).toEqual([{ field: 'cond_aug', message: 'ensure this value is less than 10' }]);
    expect(messageFromBody('<html><body><h1>502 Bad Gateway</h1></body></html>', 'text/html').message).toBe(
      '502 Bad Gateway',
    );
    expect(messageFromBody('x'.repeat(1000), 'text/plain').message.length).toBeLessThanOrEqual(300);
  });

  it('redacts a key and both halves of id:secret, in messages and details', () => {
    expect(redact('key abcdef123 and id-000001:sec-000002 / sec-000002', ['abcdef123', 'id-000001:sec-000002'])).toBe(
      'key *** and *** / ***',
    );
    const key = 'sk-live-SUPERSECRET-42';
    const err = providerErrorFromResponse({
      provider: 'openai',
      action: 'POST /videos',
      status: 422,
      contentType: 'application/json',
      secrets: [key],
      body: JSON.stringify({ detail: [{ loc: ['body', 'api_key'], msg: `value ${key} is not allowed` }] }),
    });
    expectNoSecret(err, key);
    expect(err.details[0].message).toBe('value *** is not allowed');
  });

  it("maps every status of the seeds' tables to a code and retryability", () => {
    const codes = [400, 401, 403, 404, 406, 422, 429, 500, 502, 504].map((status) => {
      const e = providerErrorFromResponse({
        provider: 'segmind',
        action: 'POST /svd',
        status,
        body: '',
        contentType: null,
        secrets: [],
      });
      return [status, e.code, e.retryable];
    });
    expect(codes).toEqual([
      [400, 'provider_bad_request', false],
      [401, 'provider_unauthorized', false],
      [403, 'provider_forbidden', false],
      [404, 'provider_not_found', false],
      [406, 'provider_insufficient_credits', false],
      [422, 'provider_invalid_request', false],
      [429, 'provider_rate_limited', true],
      [500, 'provider_server_error', false],
      [502, 'provider_unavailable', true],
      [504, 'provider_timeout', true],
    ]);
  });
});

describe('media', () => {
  it('sniffs video containers and images by their first bytes', () => {
    expect(sniffVideo(FAKE_MP4)).toBe('mp4');
    expect(sniffVideo(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0]))).toBe('webm');
    expect(sniffVideo(Buffer.from('GIF89a'))).toBe('gif');
    expect(sniffVideo(Buffer.from('{"error":1}'))).toBeUndefined();
    expect(sniffImage(TINY_PNG)).toBe('image/png');
    expect(sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('image/jpeg');
    expect(sniffImage(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBe('image/webp');
  });

  it('reads bytes, data: URIs and bare base64; keeps URLs; refuses non-images', async () => {
    expect(await readImageMedia('https://x/y.png')).toEqual({ kind: 'url', url: 'https://x/y.png' });
    const fromUri = await readImageMedia(`data:image/png;base64,${TINY_PNG.toString('base64')}`);
    expect(fromUri.kind === 'bytes' && Buffer.from(fromUri.bytes).equals(TINY_PNG)).toBe(true);
    const fromB64 = await readImageMedia(TINY_PNG.toString('base64'));
    expect(fromB64).toMatchObject({ kind: 'bytes', mime: 'image/png', name: 'input.png' });
    const bad = await rejectionOf(readImageMedia(Buffer.from('not an image at all')));
    expect(bad.name).toBe('ImageLoadError');
    expect(bad.message).toContain('not a PNG, JPEG, WebP or GIF');
  });

  it('finds the media in Segmind JSON answers', () => {
    expect(mediaFromSegmindJson({ image: 'AAA' })).toBe('AAA');
    expect(mediaFromSegmindJson({ images: ['BBB'] })).toBe('BBB');
    expect(mediaFromSegmindJson({ video: 'V', image: 'I' })).toBe('V');
    expect(mediaFromSegmindJson({ status: 'ok' })).toBeUndefined();
  });

  it('derives a default output name from the image and the seed', () => {
    expect(defaultOutputPath('/a/b/cat.png', 'mp4', '7')).toMatch(/\/cat-7\.mp4$/);
    expect(defaultOutputPath('https://x/y/dog.webp?sig=1', 'mp4', '8')).toMatch(/\/dog-8\.mp4$/);
    expect(defaultOutputPath(new Uint8Array(1), 'png', '9')).toMatch(/\/video-9$/);
  });
});

describe('fal logs and camera names', () => {
  it('turns tqdm lines into step progress', () => {
    expect(progressFromLog(' 35%|███▌      | 7/20 [00:03<00:06]')).toMatchObject({
      step: 7,
      totalSteps: 20,
      fraction: 0.35,
    });
    expect(progressFromLog('Downloading weights 80%')).toMatchObject({ fraction: 0.8 });
    expect(progressFromLog('warming up')).toEqual({ stage: 'remote', message: 'warming up' });
  });

  it('accepts CLI spellings of camera presets', () => {
    expect(normalizeCameraPreset('pan-left')).toBe('Pan Left');
    expect(normalizeCameraPreset('ZOOM_OUT')).toBe('Zoom Out');
    expect(normalizeCameraPreset('acw')).toBe('ACW');
    expect(normalizeCameraPreset('loop')).toBe('loop');
  });
});

describe('Retry-After garbage (audit item 6)', () => {
  it('is not a wait: -5, exponents, absurd lengths and bare numbers as dates fall back to our backoff', () => {
    for (const bad of ['-5', '1e9', '+3', '0x10', '5 s', '99999999999', '-1', 'Infinity', 'NaN', '2026-01-01']) {
      expect(parseRetryAfter(bad), bad).toBeUndefined();
    }
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', Date.parse('1994-11-06T08:49:30Z'))).toBe(7000);
  });
});
