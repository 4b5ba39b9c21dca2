/**
 * The defects an outside audit found in `svd serve`, each replayed against a real server on loopback (a fake
 * backend, no model): prototype pollution through form names, a deeply nested value that overflowed the error
 * writer's stack, unknown field names that broke a header after the work was done, image bombs and truncated
 * images accepted into the queue, and late image errors named by the wrong field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { describeValue, ImageLoadError, InvalidRequestError } from '../src/errors.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import { jobError, toHttpError } from '../src/server/problems.js';
import { sendJson } from '../src/server/http.js';
import type { Job } from '../src/server/jobs.js';
import { FakeBackend, fixtureBytes } from './server-helpers.js';

const png = fixtureBytes();
const b64 = Buffer.from(png).toString('base64');
const json = { 'content-type': 'application/json' };
let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ port: 0, backend: new FakeBackend(5), queueSize: 64 });
});
afterAll(async () => {
  await server?.close();
});

const post = (path: string, body: RequestInit['body'], headers: Record<string, string> = json) =>
  fetch(`${server.url}${path}`, { method: 'POST', headers, body });

function form(fields: Record<string, string | Uint8Array>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string') f.append(k, v);
    else f.append(k, new Blob([v], { type: 'image/png' }), 'x.png');
  }
  return f;
}

/** A job through our own API, to show the server still works for everyone. */
async function healthyJob(): Promise<number> {
  const res = await post('/api/jobs', JSON.stringify({ image: b64, steps: 2 }));
  await res.arrayBuffer();
  return res.status;
}

describe('prototype keys (audit item 1)', () => {
  it('a multipart __proto__[model] is refused by name and reaches no prototype', async () => {
    const res = await post('/api/jobs', form({ '__proto__[model]': 'no-such-dir', frames: 'zzz', image: png }), {});
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; issues: Array<{ field: string }> } };
    expect(body.error.code).toBe('forbidden_field');
    expect(body.error.issues[0].field).toBe('__proto__');
    expect(({} as Record<string, unknown>).model).toBeUndefined();
    expect(await healthyJob()).toBe(202);
  });

  it('constructor / prototype names are refused in forms and JSON, at any depth, in every dialect', async () => {
    const cases: Array<[string, RequestInit['body'], Record<string, string>, string]> = [
      ['/v1/videos', form({ 'input_reference[constructor]': 'x', prompt: 'p' }), {}, 'input_reference.constructor'],
      [
        '/v1/videos',
        JSON.stringify({ input_reference: { image_url: b64, prototype: 1 } }),
        json,
        'input_reference.prototype',
      ],
      ['/fal-ai/svd', '{"image_url":"x","__proto__":{"model":"evil"}}', json, '__proto__'],
      ['/v1/svd', JSON.stringify({ image: b64, seed: { a: { constructor: 1 } } }), json, 'seed.a.constructor'],
      ['/v1/video/generations', '{"prototype":1}', json, 'prototype'],
    ];
    for (const [path, body, headers, field] of cases) {
      const res = await post(path, body, headers);
      expect([400, 422], path).toContain(res.status);
      expect(await res.text(), path).toContain(field);
    }
    expect(({} as Record<string, unknown>).model).toBeUndefined();
  });
});

describe('deep values (audit item 2)', () => {
  const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;

  it('steps nested 6,000 deep is a 400 naming steps, and the server lives on', async () => {
    const res = await post('/api/jobs', `{"image":"${b64}","steps":${deep(6000)}}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { issues: Array<{ field: string }> } };
    expect(body.error.issues[0].field).toBe('steps');
    for (const path of ['/v1/svd', '/fal-ai/svd', '/v1/videos', '/v1/video/generations']) {
      const r = await post(path, `{"image":"${b64}","image_url":"${b64}","seed":${deep(10_000)}}`);
      expect(r.status, path).toBeLessThan(500);
      expect(await r.text(), path).toContain('seed');
    }
    expect(await healthyJob()).toBe(202);
  });

  it('error values are bounded, whatever their depth or size', () => {
    let v: unknown = 1;
    for (let i = 0; i < 50_000; i++) v = [v];
    expect(describeValue(v)).toMatch(/^\[\[\[/);
    const err = new InvalidRequestError([{ field: 'x'.repeat(10_000), value: v, message: 'bad' }]);
    expect(err.issues[0].field.length).toBeLessThanOrEqual(80);
    expect(JSON.stringify(err.issues).length).toBeLessThan(400);
    expect(describeValue({ a: Array.from({ length: 1e5 }, (_, i) => i) }).length).toBeLessThanOrEqual(60);
  });

  it('a body that cannot be serialised is a 500 for that answer only', () => {
    const res = {
      status: 0,
      text: '',
      writeHead(s: number) {
        this.status = s;
      },
      end(t: string) {
        this.text = t;
      },
    };
    sendJson(res as never, 200, { n: 1n });
    expect(res.status).toBe(500);
    expect(res.text).toContain('internal_error');
  });
});

describe('unknown field names in a header (audit item 4)', () => {
  it('CR/LF and non-Latin-1 names are encoded in x-svd-ignored-fields and listed in the body', async () => {
    const res = await post('/v1/svd', JSON.stringify({ image: b64, base64: true, 'bad\r\nx-evil: 1': 1, 'näme€': 2 }));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-evil')).toBeNull();
    expect(res.headers.get('x-svd-ignored-fields')).toBe('bad%0D%0Ax-evil: 1, n%C3%A4me%E2%82%AC');
    const body = (await res.json()) as { ignored_fields: string[] };
    expect(body.ignored_fields).toEqual(['bad\r\nx-evil: 1', 'näme€']);
  });
});

describe('image bombs and truncated images (audit item 5)', () => {
  it('an image over the pixel limit is refused at submit from its header, before any job', async () => {
    // 8000×8000 declared; only the header is read, so the test costs nothing.
    const bomb = await sharp({ create: { width: 8000, height: 8000, channels: 3, background: '#000' } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    const before = (await (await fetch(`${server.url}/v1/videos`)).json()) as { data: unknown[] };
    const res = await post('/v1/videos', form({ input_reference: new Uint8Array(bomb), prompt: 'x' }), {});
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { param: string; message: string } };
    expect(body.error.param).toBe('input_reference');
    expect(body.error.message).toMatch(/8000×8000 = 64000000 pixels; the limit is 16777216 pixels/);
    const after = (await (await fetch(`${server.url}/v1/videos`)).json()) as { data: unknown[] };
    expect(after.data.length).toBe(before.data.length);
  });

  it("a truncated image is refused at submit, named by the client's field", async () => {
    const big = await sharp({
      create: {
        width: 256,
        height: 256,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    })
      .png()
      .toBuffer();
    const cut = big.subarray(0, Math.floor(big.length / 2));
    const res = await post(
      '/fal-ai/svd',
      JSON.stringify({ image_url: `data:image/png;base64,${cut.toString('base64')}` }),
    );
    expect(res.status).toBe(422);
    const body = (await res.json()) as { detail: Array<{ loc: string[]; msg: string }> };
    expect(body.detail[0].loc).toEqual(['body', 'image_url']);
    expect(body.detail[0].msg).toMatch(/truncated or damaged/);
  });

  it('the pixel limit is configurable', async () => {
    const small = await startServer({ port: 0, backend: new FakeBackend(5), maxImagePixels: 64 * 64 });
    try {
      const res = await fetch(`${small.url}/v1/svd`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ image: b64 }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(
        /^image: is 128×64 = 8192 pixels; the limit is 4096 pixels/,
      );
    } finally {
      await small.close();
    }
  });
});

describe('late image errors (audit item 8)', () => {
  it('name the client\'s field, without "image image bytes"', () => {
    const job = {
      status: 'failed',
      meta: { imageField: 'input_image' },
      failure: {
        code: 'image_load_failed',
        message: 'x',
        error: new ImageLoadError('image bytes (5 bytes)', 'cannot be decoded as PNG (bad)'),
      },
    } as unknown as Job;
    const err = jobError(job);
    expect(err.message).toBe('input_image: cannot be decoded as PNG (bad)');
    expect(err.issues).toEqual([{ field: 'input_image', message: 'cannot be decoded as PNG (bad)' }]);
    // The shared queue's workers turn the error into a problem themselves, from the job's meta.
    const fromWorker = toHttpError(new ImageLoadError('image bytes (5 bytes)', 'is empty'), undefined, {
      imageField: 'image_url',
    });
    expect(fromWorker.message).toBe('image_url: is empty');
  });
});
