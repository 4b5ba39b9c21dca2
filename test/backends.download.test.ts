/**
 * Provider result downloads (audit item 7): capped in size, and result URLs held to the same address policy as
 * a server client's image URL, with an explicit opt-out for local mocks. The provider endpoint itself (here a
 * loopback mock) may serve its own results.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createVoltageBackend } from '../src/backends/openai/generations.js';
import { resultSizeLimit } from '../src/backends/job.js';
import { parseRequest } from '../src/request/schema.js';
import { parseRemoteParams } from '../src/backends/options.js';
import { sendBytes, sendJson, startMockServer, type MockServer } from './mocks/server.js';
import { FAKE_MP4, tempDir, writeTinyPng } from './mocks/fixtures.js';
import { rejectionOf } from './mocks/secrets.js';

const KEY = 'volt-TESTKEY-0123456789';
let api: MockServer;
let cdn: MockServer;
let dir: string;
let image: string;
beforeEach(async () => {
  api = await startMockServer();
  cdn = await startMockServer();
  dir = tempDir();
  image = writeTinyPng(dir);
});
afterEach(async () => {
  await api.close();
  await cdn.close();
  rmSync(dir, { recursive: true, force: true });
});

const answerWith = (url: string) =>
  api.on('POST', '/v1/video/generations', (_req, res) => sendJson(res, 200, { created: 1, data: [{ url }] }));
const backend = (extra: Record<string, unknown> = {}) =>
  createVoltageBackend({ apiKey: KEY, baseUrl: `${api.url}/v1`, retry: { retries: 0 }, deadlineMs: 10_000, ...extra });

describe('provider result URLs', () => {
  it('on another loopback host are refused, naming the address and the opt-out; allowed with allowPrivateUrls', async () => {
    cdn.on('GET', '/v.mp4', (_req, res) => sendBytes(res, FAKE_MP4));
    answerWith(`${cdn.url}/v.mp4?sig=SECRET`);
    const err = await rejectionOf(backend().generate({ image, output: join(dir, 'a.mp4') }));
    expect(err).toMatchObject({ code: 'result_url_refused' });
    expect(err.message).toMatch(
      /points at 127\.0\.0\.1, a private, loopback or reserved address; refused \(allow it with --allow-private-urls/,
    );
    expect(err.message).not.toContain('SECRET');
    expect(cdn.calls('GET', '/v.mp4')).toHaveLength(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.mp4') || f.includes('.partial-'))).toEqual([]);

    await backend({ allowPrivateUrls: true }).generate({ image, output: join(dir, 'b.mp4') });
    expect(existsSync(join(dir, 'b.mp4'))).toBe(true);
  });

  it('on the configured endpoint itself are fetched (the mock serves its own files)', async () => {
    api.on('GET', '/files/v.mp4', (_req, res) => sendBytes(res, FAKE_MP4));
    answerWith(`${api.url}/files/v.mp4`);
    await backend().generate({ image, output: join(dir, 'c.mp4') });
    expect(existsSync(join(dir, 'c.mp4'))).toBe(true);
  });
});

describe('result size limit', () => {
  it('a body over the limit stops the download, declared or streamed, and leaves no partial file', async () => {
    const big = Buffer.concat([FAKE_MP4, Buffer.alloc(200_000)]);
    api.on('GET', '/files/declared.mp4', (_req, res) => sendBytes(res, big));
    api.on('GET', '/files/streamed.mp4', (_req, res) => {
      res.writeHead(200, { 'content-type': 'video/mp4' });
      res.write(FAKE_MP4);
      const timer = setInterval(() => res.write(Buffer.alloc(16_384)), 2);
      res.on('close', () => clearInterval(timer));
    });
    answerWith(`${api.url}/files/declared.mp4`);
    const declared = await rejectionOf(
      backend({ maxDownloadBytes: 100_000 }).generate({ image, output: join(dir, 'd.mp4') }),
    );
    expect(declared.message).toMatch(/the video is 200\d+ bytes; the limit for this job is 100000 bytes/);
    answerWith(`${api.url}/files/streamed.mp4`);
    const streamed = await rejectionOf(
      backend({ maxDownloadBytes: 100_000 }).generate({ image, output: join(dir, 's.mp4') }),
    );
    expect(streamed.message).toMatch(/larger than 100000 bytes; the limit for this job is 100000 bytes/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.mp4') || f.includes('.partial-'))).toEqual([]);
  });

  it('is sized from the frames and size by default', () => {
    const limit = (r: Record<string, unknown>, remote: Record<string, unknown> = {}) =>
      resultSizeLimit(parseRequest({ image: 'x', ...r }), parseRemoteParams(remote));
    expect(limit({})).toBe(64 * 2 ** 20 + 25 * 1024 * 576 * 3);
    expect(limit({ frames: 14, width: 512, height: 512 })).toBe(64 * 2 ** 20 + 14 * 512 * 512 * 3);
    expect(limit({}, { duration: 8 })).toBe(64 * 2 ** 20 + 240 * 1024 * 576 * 3);
  });
});
