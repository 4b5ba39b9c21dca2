/**
 * The shared queue's pieces that need no Redis: URL checks and redaction, what a job carries, how a
 * worker's failure travels back, and the CLI's answers to bad queue flags (none echoes a password).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/errors.js';
import { HttpError } from '../src/server/http.js';
import { checkQueueUrl, openRedis, QueueUnavailableError, redactQueueUrl } from '../src/server/queue/connection.js';
import { decodeFailure, decodeRequest, encodeFailure, encodeJobData } from '../src/server/queue/wire.js';
import { resolveServerOptions } from '../src/server/options.js';
import { startServer } from '../src/server/index.js';
import { FakeBackend } from './server-helpers.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const SECRET = 's3cret-pass';

describe('queue URL', () => {
  it('accepts redis:// and rediss:// with an optional db number; refuses the rest naming the field', () => {
    expect(checkQueueUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(checkQueueUrl(`rediss://:${SECRET}@cache.internal:6380/2`)).toContain('cache.internal');
    for (const bad of ['http://127.0.0.1:6379', 'not a url', 'redis://host/abc']) {
      let err: unknown;
      try {
        checkQueueUrl(bad, '--queue');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect((err as InvalidRequestError).issues[0].field).toBe('--queue');
    }
    expect(() => resolveServerOptions({ queueUrl: 'http://x' })).toThrow(/queueUrl/);
    expect(() => resolveServerOptions({ queueUrl: 'redis://x', backend: 'fal' })).toThrow(/backend/);
  });

  it('is printed with its password replaced', () => {
    expect(redactQueueUrl(`redis://:${SECRET}@10.0.0.1:6379/0`)).toBe('redis://:***@10.0.0.1:6379/0');
    expect(redactQueueUrl(`redis://user:${SECRET}@h:1`)).toBe('redis://user:***@h:1');
    expect(redactQueueUrl('redis://h:6379')).toBe('redis://h:6379');
  });

  it('an unreachable Redis is a QueueUnavailableError naming the redacted URL', async () => {
    const err = await openRedis(`redis://:${SECRET}@127.0.0.1:1/0`, 'test', { failFast: true, timeoutMs: 5000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QueueUnavailableError);
    expect((err as Error).message).toContain('redis://:***@127.0.0.1:1/0');
    expect((err as Error).message).not.toContain(SECRET);
  });
});

describe('what travels through Redis', () => {
  it('a job carries the request with the image as base64 and none of model, output or device', () => {
    const data = encodeJobData(
      { image: new Uint8Array([1, 2, 3]), seed: 4, steps: 2, model: '/models/x', output: '/tmp/o.mp4', device: 'cuda' },
      { dialect: 'fal' },
      60,
    );
    expect(data.request).toEqual({ imageBase64: 'AQID', seed: 4, steps: 2 });
    expect(data.meta).toEqual({ dialect: 'fal' });
    expect(decodeRequest(data)).toEqual({ image: new Uint8Array([1, 2, 3]), seed: 4, steps: 2 });
  });

  it("a worker's failure comes back as the same HTTP problem; a job whose workers died says so", () => {
    const f = decodeFailure(
      encodeFailure(
        new HttpError(400, 'image_load_failed', 'image: not a PNG', [{ field: 'image', message: 'not a PNG' }]),
      ),
      1,
    );
    expect(f.code).toBe('image_load_failed');
    expect(f.error).toBeInstanceOf(HttpError);
    expect((f.error as HttpError).status).toBe(400);
    expect((f.error as HttpError).issues).toEqual([{ field: 'image', message: 'not a PNG' }]);
    const lost = decodeFailure('job stalled more than allowable limit', 3);
    expect(lost.code).toBe('worker_lost');
    expect(lost.message).toMatch(/given up after 3 attempts/);
    expect(decodeFailure('something else', 1).code).toBe('internal_error');
  });
});

describe('health without a shared queue', () => {
  it('/healthz reports the embedded queue and its counts', async () => {
    const server = await startServer({ port: 0, backend: new FakeBackend(10), log: () => {} });
    try {
      const res = await fetch(`${server.url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: 'ok',
        backend: 'fake',
        queue: { mode: 'embedded', queued: 0, running: 0, completed: 0, failed: 0 },
        workers: [],
      });
    } finally {
      await server.close();
    }
  });
});

describe('CLI', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SVD_QUEUE_URL: '', ...env },
    });

  it('svd worker and svd queue status need a queue URL, and check it', () => {
    const none = run(['worker']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/--queue: is required \(or set SVD_QUEUE_URL\)/);
    const bad = run(['queue', 'status', '--queue', `http://:${SECRET}@h:1`]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--queue.*redis:\/\//);
    expect(bad.stderr).not.toContain(SECRET);
    const conc = run(['worker', '--queue', 'redis://127.0.0.1:1', '--concurrency', '0']);
    expect(conc.status).toBe(2);
    expect(conc.stderr).toMatch(/--concurrency.*from 1 to 64/);
  });

  it('svd serve --queue with an unreachable Redis fails clearly, password hidden', () => {
    const r = run(['serve', '--port', '0'], { SVD_QUEUE_URL: `redis://:${SECRET}@127.0.0.1:1/0` });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot reach the job queue at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0/);
    expect(r.stderr).not.toContain(SECRET);
  });
});
