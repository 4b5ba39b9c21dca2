/**
 * The server's pieces that need no model: address guard, auth helpers, options checks, the job queue
 * (FIFO, limits, cancel, expiry, close), form parsing and image input rules.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/errors.js';
import { isPrivateAddress } from '../src/net/netGuard.js';
import { isCrossOriginWrite, isLoopbackHost, keyMatches, presentedKey } from '../src/server/auth.js';
import { resolveServerOptions } from '../src/server/options.js';
import { EmbeddedQueue, QueueFullError, ShuttingDownError, overallFraction } from '../src/server/jobs.js';
import { parseForm } from '../src/server/multipart.js';
import { imageFromClient } from '../src/server/imageInput.js';
import { HttpError } from '../src/server/http.js';
import { FakeBackend, fixtureBytes, startImageHost } from './server-helpers.js';
import { until } from './helpers/until.js';
import type { IncomingMessage } from 'node:http';

const req = (headers: Record<string, string>, method = 'POST') => ({ headers, method }) as unknown as IncomingMessage;

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '0.0.0.0',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '64:ff9b::a00:1',
    '2002:7f00:1::',
    '[::1]',
    'not-an-ip',
  ])('refuses %s', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });
  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '172.15.255.255',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001:80b::200e',
  ])('allows %s', (ip) => {
    expect(isPrivateAddress(ip)).toBe(false);
  });
});

describe('auth helpers', () => {
  it('reads the key from each dialect header form', () => {
    expect(presentedKey(req({ 'x-api-key': 'k1' }))).toBe('k1');
    expect(presentedKey(req({ authorization: 'Key k2' }))).toBe('k2');
    expect(presentedKey(req({ authorization: 'Bearer k3' }))).toBe('k3');
    expect(presentedKey(req({ authorization: 'bearer  k4 ' }))).toBe('k4');
    expect(presentedKey(req({ authorization: 'Basic abc' }))).toBeUndefined();
    expect(presentedKey(req({}))).toBeUndefined();
  });
  it('compares keys exactly', () => {
    expect(keyMatches('secret', 'secret')).toBe(true);
    expect(keyMatches('secret ', 'secret')).toBe(false);
    expect(keyMatches('Secret', 'secret')).toBe(false);
    expect(keyMatches(undefined, 'secret')).toBe(false);
  });
  it('knows loopback host names', () => {
    for (const h of ['localhost', 'app.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '192.168.1.2', 'example.com', 'localhost.evil.com', '::'])
      expect(isLoopbackHost(h), h).toBe(false);
  });
  it('spots cross-origin writes', () => {
    expect(isCrossOriginWrite(req({ host: '127.0.0.1:8080', origin: 'http://evil.example' }))).toBe(true);
    expect(isCrossOriginWrite(req({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' }))).toBe(false);
    expect(isCrossOriginWrite(req({ host: '127.0.0.1:8080' }))).toBe(false);
    expect(isCrossOriginWrite(req({ host: '127.0.0.1:8080', origin: 'http://evil.example' }, 'GET'))).toBe(false);
    expect(
      isCrossOriginWrite(req({ host: '10.0.0.5:8080', origin: 'https://svd.example.org' }), 'https://svd.example.org'),
    ).toBe(false);
    expect(
      isCrossOriginWrite(req({ host: '10.0.0.5:8080', origin: 'https://evil.example' }), 'https://svd.example.org'),
    ).toBe(true);
  });
});

describe('resolveServerOptions', () => {
  it('refuses a non-loopback host without an API key, naming the way out', () => {
    expect(() => resolveServerOptions({ host: '0.0.0.0' })).toThrow(
      /host: without an API key the server only listens on loopback/,
    );
    expect(resolveServerOptions({ host: '0.0.0.0', apiKey: 'k' }).host).toBe('0.0.0.0');
    expect(resolveServerOptions({ host: '::1' }).apiKey).toBeUndefined();
  });
  it('checks numbers and defaults against the request schema', () => {
    expect(() => resolveServerOptions({ queueSize: -1 })).toThrow(InvalidRequestError);
    expect(() => resolveServerOptions({ defaults: { steps: 0 } })).toThrow(/defaults\.steps/);
    expect(resolveServerOptions({}).port).toBe(8080);
  });
});

describe('EmbeddedQueue', () => {
  const request = (seed: number) => ({ image: new Uint8Array([1]), seed });

  it('runs jobs one at a time in submission order and reports per-step progress', async () => {
    const backend = new FakeBackend(30);
    const q = new EmbeddedQueue({ backend, maxQueued: 10, resultTtlMs: 60_000 });
    const jobs = await Promise.all([1, 2, 3, 4].map((s) => q.submit(request(s))));
    expect(jobs.map((j) => q.position(j))).toEqual([-1, 0, 1, 2]);
    await Promise.all(jobs.map((j) => j.done));
    expect(backend.started).toEqual(['1', '2', '3', '4']);
    for (const [a, b] of [
      [0, 1],
      [1, 2],
      [2, 3],
    ])
      expect(jobs[a].completedAt!).toBeLessThanOrEqual(jobs[b].startedAt!);
    expect(jobs.every((j) => j.status === 'completed' && existsSync(j.result!.path))).toBe(true);
    expect(jobs[0].logs.some((l) => /denoise step 3\/3/.test(l.message))).toBe(true);
    expect(jobs[0].progress.fraction).toBe(1);
    await q.close();
    expect(existsSync(jobs[0].result!.path)).toBe(false);
  });

  it('refuses jobs beyond the queue size with a retry hint', async () => {
    const q = new EmbeddedQueue({ backend: new FakeBackend(200), maxQueued: 1, resultTtlMs: 60_000 });
    const first = await q.submit(request(1));
    await until('job 1 to start', () => (first.status === 'running' ? true : undefined));
    await q.submit(request(2));
    const err: unknown = await q.submit(request(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect((err as QueueFullError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    await q.close();
    await expect(q.submit(request(4))).rejects.toThrow(ShuttingDownError);
  });

  it('cancels a waiting job and a running one, leaving no file', async () => {
    const q = new EmbeddedQueue({ backend: new FakeBackend(300), maxQueued: 5, resultTtlMs: 60_000 });
    const a = await q.submit(request(1));
    const b = await q.submit(request(2));
    expect(q.cancel(b.id)).toBe('cancelled');
    expect(b.status).toBe('cancelled');
    await until('job a to run a step', () => (a.progress.step ? true : undefined));
    expect(a.status).toBe('running');
    expect(q.cancel(a.id)).toBe('cancelled');
    await a.done;
    expect(a.status).toBe('cancelled');
    expect(a.result).toBeUndefined();
    expect(q.cancel(a.id)).toBe('already_done');
    expect(q.cancel('nope')).toBe('not_found');
    await q.close();
  });

  it('forgets finished jobs and deletes their files after the result TTL', async () => {
    const q = new EmbeddedQueue({ backend: new FakeBackend(10), maxQueued: 5, resultTtlMs: 150 });
    const job = await q.submit(request(7));
    await job.done;
    const { path, fileToken } = job.result!;
    expect(existsSync(path)).toBe(true);
    expect(q.byFileToken(fileToken)).toBe(job);
    // the expiry timer forgets the job, then deletes its file (asynchronously): wait for both
    await until('the job and its file to go', () => (!q.get(job.id) && !existsSync(path) ? true : undefined));
    expect(q.byFileToken(fileToken)).toBeUndefined();
    await q.close();
  });

  it('maps stage progress onto one rising fraction', () => {
    const seq = [
      overallFraction({ stage: 'preprocess', fraction: 0 }),
      overallFraction({ stage: 'encode', fraction: 0 }),
      overallFraction({ stage: 'denoise', step: 1, totalSteps: 2, fraction: 0.5 }),
      overallFraction({ stage: 'denoise', fraction: 1 }),
      overallFraction({ stage: 'decode', fraction: 0 }),
      overallFraction({ stage: 'video', fraction: 1 }),
    ];
    for (let i = 1; i < seq.length; i++) expect(seq[i]).toBeGreaterThanOrEqual(seq[i - 1]);
    expect(seq.at(-1)).toBe(1);
  });
});

describe('parseForm', () => {
  it('parses multipart with files and bracketed names', async () => {
    const form = new FormData();
    form.append('prompt', 'a cat');
    form.append('input_reference[image_url]', 'https://example.com/a.png');
    form.append('file', new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' }), 'a.png');
    const r = new Request('http://x/', { method: 'POST', body: form });
    const out = await parseForm(Buffer.from(await r.arrayBuffer()), r.headers.get('content-type')!);
    expect(out.prompt).toBe('a cat');
    expect(out.input_reference).toEqual({ image_url: 'https://example.com/a.png' });
    expect(Array.from(out.file as Uint8Array)).toEqual([1, 2, 3]);
  });
  it('rejects a broken multipart body with 400', async () => {
    await expect(parseForm(Buffer.from('garbage'), 'multipart/form-data; boundary=zzz')).rejects.toMatchObject({
      status: 400,
    });
  });
});

describe('imageFromClient', () => {
  const limits = { allowPrivateUrls: false, maxBytes: 1 << 20, timeoutMs: 2000 };
  const png = fixtureBytes();

  it('accepts bare base64, data URIs and bytes, never paths', async () => {
    const b64 = Buffer.from(png).toString('base64');
    expect((await imageFromClient(b64, 'image', limits)).length).toBe(png.length);
    expect((await imageFromClient(`data:image/png;base64,${b64}`, 'image', limits)).length).toBe(png.length);
    expect((await imageFromClient(png, 'image', limits)).length).toBe(png.length);
    for (const path of ['/etc/passwd', './test/fixtures/reference/input_64x128.png', 'file:///etc/passwd']) {
      await expect(imageFromClient(path, 'image', limits)).rejects.toMatchObject({ status: 400 });
    }
    await expect(
      imageFromClient(Buffer.from('not an image at all, clearly').toString('base64'), 'image', limits),
    ).rejects.toThrow(/not a PNG, JPEG or WebP/);
  });

  it('refuses loopback URLs unless allowed, and enforces size limits on downloads', async () => {
    const host = await startImageHost();
    try {
      const err = await imageFromClient(`${host.url}/img.png`, 'image_url', limits).catch((e) => e);
      expect(err).toBeInstanceOf(HttpError);
      expect(err.message).toMatch(/image_url: .*127\.0\.0\.1.*private, loopback or reserved/);
      await expect(
        imageFromClient(host.url.replace('127.0.0.1', 'localhost') + '/img.png', 'image_url', limits),
      ).rejects.toThrow(/private/);
      expect(host.hits).toEqual([]); // refused before any connection
      const allowed = { ...limits, allowPrivateUrls: true };
      expect((await imageFromClient(`${host.url}/img.png`, 'image_url', allowed)).length).toBe(png.length);
      expect((await imageFromClient(`${host.url}/redirect`, 'image_url', allowed)).length).toBe(png.length);
      await expect(imageFromClient(`${host.url}/big.png`, 'image_url', allowed)).rejects.toThrow(/limit/);
      await expect(imageFromClient(`${host.url}/missing.png`, 'image_url', allowed)).rejects.toThrow(/HTTP 404/);
      await expect(imageFromClient('ftp://example.com/a.png', 'image_url', allowed)).rejects.toMatchObject({
        status: 400,
      });
    } finally {
      await host.close();
    }
  });
});
