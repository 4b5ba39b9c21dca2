/**
 * `svd serve` driven the way people's existing code drives the hosted APIs: the official fal and OpenAI
 * clients pointed at this server, and plain fetch following Segmind's and VoltageGPU's own examples. Every
 * answer must be a playable MP4 from the embedded tiny model (checked with ffprobe). Also: auth, body and
 * URL limits, each in its dialect's error shape.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createFalClient, ValidationError } from '@fal-ai/client';
import OpenAI, { toFile } from 'openai';
import { LocalBackend } from '../src/backends/local.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import { fixtureBytes, probeBytes, startImageHost } from './server-helpers.js';
import { until } from './helpers/until.js';

const KEY = 'test-key-0123456789';
const png = fixtureBytes();
const b64 = Buffer.from(png).toString('base64');
const dataUri = `data:image/png;base64,${b64}`;

let backend: LocalBackend;
let server: RunningServer; // API key, private URLs refused, small body limit
let open: RunningServer; // no key (loopback only), private URLs allowed
let host: Awaited<ReturnType<typeof startImageHost>>;

beforeAll(async () => {
  backend = new LocalBackend();
  await backend.pipeline(); // build/open the tiny model once, outside the per-test clock
  server = await startServer({ port: 0, apiKey: KEY, backend, defaults: { steps: 2 }, maxBodyBytes: 256 * 1024 });
  open = await startServer({ port: 0, backend, defaults: { steps: 2 }, allowPrivateUrls: true });
  host = await startImageHost();
});

afterAll(async () => {
  await server?.close();
  await open?.close();
  await host?.close();
  await backend?.close();
});

async function expectTinyMp4(bytes: Uint8Array, fps?: number) {
  const info = await probeBytes(bytes);
  expect(info.codec).toBe('h264');
  expect(info.frames).toBe(14);
  expect([info.width, info.height]).toEqual([128, 64]);
  if (fps !== undefined) expect(info.fps).toBe(fps);
  return info;
}

const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe("Segmind dialect (plain fetch, as in Segmind's examples)", () => {
  it('POST /v1/svd with the documented sample body (image URL, "frames": "14") returns the video bytes', async () => {
    // Seed 000's body verbatim except the image URL, which points at a loopback host (allowed on `open`).
    const res = await post(open.url, '/v1/svd', {
      image: `${host.url}/img.png`,
      fps: 7,
      motion: 127,
      seed: 452361789,
      cond_aug: 0.1,
      frames: '14',
      resize_method: 'maintain_aspect_ratio',
      base64: false,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('x-svd-seed')).toBe('452361789');
    await expectTinyMp4(new Uint8Array(await res.arrayBuffer()), 7);
    expect(host.hits).toContain('/img.png');
  });

  it('base64: true answers JSON with the video in base64; bare base64 input and x-api-key work', async () => {
    const res = await post(server.url, '/v1/svd', { image: b64, base64: true, fps: 9 }, { 'x-api-key': KEY });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const json = (await res.json()) as { image: string };
    await expectTinyMp4(new Uint8Array(Buffer.from(json.image, 'base64')), 9);
  });

  it('POST /v1/motionctrl-svd takes its sample body; a model without the camera module refuses it, naming the one to use', async () => {
    const res = await post(
      server.url,
      '/v1/motionctrl-svd',
      {
        input_image: b64,
        fps: 7,
        motion: 'CW',
        motion_bucket_id: 127,
        cond_aug: 0.02,
        seed: 985445,
        decoding_t: 7,
        maintain_aspect_ratio: true,
        motion_speed: 1,
        base64: false,
      },
      { 'x-api-key': KEY },
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /camera.*has no camera-motion module; use --model motionctrl-svd/,
    );
  });

  it("enforces Segmind's documented ranges with 400 {error}", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ image: b64, motion: 181 }, /motion: must be from 1 to 180/],
      [{ image: b64, frames: '16' }, /frames: must be one of 14, 25/],
      [{ image: b64, cond_aug: 1.5 }, /cond_aug: must be from 0 to 1/],
      [{ image: b64, resize_method: 'stretch' }, /resize_method: must be one of maintain_aspect_ratio, crop_to_16_9/],
      [{ fps: 7 }, /image/],
    ];
    for (const [body, message] of cases) {
      const res = await post(server.url, '/v1/svd', body, { 'x-api-key': KEY });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
    }
    const mc = await post(
      server.url,
      '/v1/motionctrl-svd',
      { input_image: b64, motion_bucket_id: 100, fps: 40, motion: 'Spin' },
      { 'x-api-key': KEY },
    );
    expect(mc.status).toBe(400);
    const err = ((await mc.json()) as { error: string }).error;
    expect(err).toMatch(/motion_bucket_id: must be from 127 to 255/);
    expect(err).toMatch(/fps: must be from 5 to 30/);
    expect(err).toMatch(/motion: must be one of Pan Up/);
    const other = await post(server.url, '/v1/pixverse-image2video', {}, { 'x-api-key': KEY });
    expect(other.status).toBe(404);
  });
});

describe('fal dialect (@fal-ai/client through its proxy setting)', () => {
  const client = () =>
    createFalClient({ credentials: KEY, proxyUrl: { url: `${server.url}/api/fal/proxy`, when: 'always' } });

  it('subscribe: uploads a Blob input, reports queue/progress with per-step logs, returns {video, seed}', async () => {
    const updates: { status: string; logs?: { message: string }[] }[] = [];
    const result = await client().subscribe('fal-ai/svd', {
      input: { image_url: new Blob([png], { type: 'image/png' }), steps: 3, seed: 1234 } as never,
      logs: true,
      pollInterval: 50,
      onQueueUpdate: (u) => updates.push(u as never),
    });
    const data = result.data as { video: { url: string; content_type: string; file_size: number }; seed: number };
    expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(data.seed).toBe(1234);
    expect(data.video.content_type).toBe('video/mp4');
    expect(updates.at(-1)!.status).toBe('COMPLETED');
    const messages = updates.flatMap((u) => u.logs ?? []).map((l) => l.message);
    expect(messages).toContain('denoise step 3/3');
    // The video URL is served by this server and needs no key (a capability URL, like fal's CDN).
    const video = await fetch(data.video.url);
    expect(video.status).toBe(200);
    const bytes = new Uint8Array(await video.arrayBuffer());
    expect(bytes.length).toBe(data.video.file_size);
    await expectTinyMp4(bytes);
  });

  it('run (the fal.run sync form) answers with the output directly', async () => {
    const result = await client().run('fal-ai/stable-video', {
      input: { image_url: dataUri, fps: 8, motion_bucket_id: 60 } as never,
    });
    const data = result.data as { video: { url: string } };
    await expectTinyMp4(new Uint8Array(await (await fetch(data.video.url)).arrayBuffer()), 8);
  });

  it('field errors are 422 {detail: [{loc, msg, type}]} as the client expects', async () => {
    const err = await client()
      .subscribe('fal-ai/fast-svd-lcm', { input: { image_url: dataUri, steps: 50 } as never })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.status).toBe(422);
    expect(err.body.detail[0].loc).toEqual(['body', 'steps']);
    expect(err.body.detail[0].msg).toMatch(/1 to 20/);
    const unknown = await client()
      .subscribe('fal-ai/flux/dev', { input: {} as never })
      .catch((e) => e);
    expect(unknown.status).toBe(404);
  });

  it('the queue routes also work with plain fetch and Authorization: Key', async () => {
    const auth = { authorization: `Key ${KEY}` };
    const submit = await post(server.url, '/fal-ai/svd', { image_url: dataUri }, auth);
    expect(submit.status).toBe(200);
    const s = (await submit.json()) as Record<string, string>;
    expect(s.status).toBe('IN_QUEUE');
    expect(s.status_url).toBe(`${server.url}/fal-ai/svd/requests/${s.request_id}/status`);
    const status = await until('the fal request', async () => {
      const st = (await (await fetch(`${s.status_url}?logs=1`, { headers: auth })).json()) as Record<string, unknown>;
      return st.status === 'COMPLETED' ? st : undefined;
    });
    expect(status.error).toBeUndefined();
    const out = (await (await fetch(s.response_url, { headers: auth })).json()) as { video: { url: string } };
    expect(out.video.url).toMatch(/\/files\/[0-9a-f]{32}\//);
    const cancel = await fetch(s.cancel_url, { method: 'PUT', headers: auth });
    expect(cancel.status).toBe(400);
    expect(await cancel.json()).toEqual({ status: 'ALREADY_COMPLETED' });
  });

  it('…/status/stream sends status objects as Server-Sent Events until COMPLETED; stable-video honours steps', async () => {
    const auth = { authorization: `Key ${KEY}` };
    // `steps` on fal-ai/stable-video is ours (fal's hosted model has none): it must be used, not dropped
    const s = (await (
      await post(server.url, '/fal-ai/stable-video', { image_url: dataUri, steps: 3 }, auth)
    ).json()) as Record<string, string>;
    const res = await fetch(`${s.status_url}/stream?logs=1`, { headers: auth });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = (await res.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => JSON.parse(e.slice(6)));
    expect(events.at(-1).status).toBe('COMPLETED');
    expect(
      events.some(
        (e) => e.status === 'IN_PROGRESS' && e.logs.some((l: { message: string }) => l.message === 'denoise step 3/3'),
      ),
    ).toBe(true);
  });
});

/** An OpenAI video once it has ended. */
const untilDone = (c: OpenAI, id: string) =>
  until(`video ${id}`, async () => {
    const v = await c.videos.retrieve(id);
    return v.status === 'completed' || v.status === 'failed' ? v : undefined;
  });

describe('OpenAI dialect (the openai v6 SDK)', () => {
  const client = () => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });

  it('create (multipart file) → retrieve → downloadContent gives the MP4; list and delete work', async () => {
    const c = client();
    const created = await c.videos.create({
      prompt: 'a slow pan',
      model: 'svd' as never,
      size: '128x64' as never,
      input_reference: await toFile(png, 'in.png', { type: 'image/png' }),
      num_inference_steps: 2,
      fps: 6,
    } as never);
    expect(created.id).toMatch(/^video_[0-9a-f]{32}$/);
    expect(['queued', 'in_progress']).toContain(created.status);
    const done = await untilDone(c, created.id);
    expect(done.status).toBe('completed');
    expect(done.progress).toBe(100);
    expect(done.size).toBe('128x64');
    expect(done.prompt).toBe('a slow pan');
    const content = await c.videos.downloadContent(created.id);
    await expectTinyMp4(new Uint8Array(await content.arrayBuffer()), 6);
    const page = await c.videos.list();
    expect(page.data.map((v) => v.id)).toContain(created.id);
    const deleted = await c.videos.delete(created.id);
    expect(deleted).toMatchObject({ id: created.id, deleted: true });
    const gone = await c.videos.retrieve(created.id).catch((e) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('create with input_reference {image_url} (a data URL) and bad sizes are 400 with param', async () => {
    const c = client();
    const created = await c.videos.create({ prompt: 'x', input_reference: { image_url: dataUri } } as never);
    expect((await untilDone(c, created.id)).status).toBe('completed');
    const bad = await c.videos
      .create({ prompt: 'x', size: '100x64', input_reference: { image_url: dataUri } } as never)
      .catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad.error.param).toBe('size');
    expect(bad.error.message).toMatch(/multiple of 64/);
    // both sides wrong: one message for the one wire field, not the same sentence twice
    const both = await c.videos
      .create({ prompt: 'x', size: '100x70', input_reference: { image_url: dataUri } } as never)
      .catch((e) => e);
    expect(both.error.param).toBe('size');
    expect(both.error.message.match(/multiple of 64/g)).toHaveLength(1);
    const none = await c.videos.create({ prompt: 'x' } as never).catch((e) => e);
    expect(none.status).toBe(400);
    expect(none.error.param).toBe('input_reference');
  });
});

describe('OpenAI seconds (the video length) on SVD clips', () => {
  it('seconds longer than one clip chain clips to exactly that length; beyond 32 clips the video fails naming seconds', async () => {
    const c = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const generate = vi.spyOn(backend, 'generate');
    try {
      // 4 s at 4 fps = 16 frames: more than the tiny model's 14-frame clip, so two chained clips, trimmed to 16
      const created = await c.videos.create({
        prompt: 'x',
        seconds: '4',
        fps: 4,
        num_inference_steps: 1,
        input_reference: { image_url: dataUri },
      } as never);
      const done = await untilDone(c, created.id);
      expect(done.status).toBe('completed');
      expect(done.seconds).toBe('4');
      expect(generate.mock.calls.at(-1)![0]).toMatchObject({ duration: 4, fps: 4 });
      expect((await generate.mock.results.at(-1)!.value).metadata).toMatchObject({ clips: 2, frames: 16 });
      const content = await c.videos.downloadContent(created.id);
      expect((await probeBytes(new Uint8Array(await content.arrayBuffer()))).frames).toBe(16);
    } finally {
      generate.mockRestore();
    }
    // 300 s at 7 fps would take 191 clips of 14 frames: the job fails in OpenAI's shape, in the client's terms
    const long = await c.videos.create({
      prompt: 'x',
      seconds: '300',
      input_reference: { image_url: dataUri },
    } as never);
    const failed = await untilDone(c, long.id);
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('invalid_request');
    expect(failed.error?.message).toMatch(/^seconds: .*at most 32 are chained/);
    // beyond our 600 s cap the create itself is refused
    const refused = await c.videos
      .create({ prompt: 'x', seconds: '601', input_reference: { image_url: dataUri } } as never)
      .catch((e) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect(refused.error.param).toBe('seconds');
  });
});

describe('VoltageGPU-style /v1/video/generations (plain fetch, as in its example)', () => {
  it('answers {data: [{url}]} when the video is ready', async () => {
    const res = await post(
      server.url,
      '/v1/video/generations',
      {
        model: 'stabilityai/stable-video-diffusion-img2vid-xt-1-1',
        prompt: 'A cat',
        num_frames: 14,
        fps: 8,
        width: 128,
        height: 64,
        image: dataUri,
      },
      { authorization: `Bearer ${KEY}` },
    );
    expect(res.status).toBe(200);
    const json = (await res.json()) as { data: { url: string }[] };
    await expectTinyMp4(new Uint8Array(await (await fetch(json.data[0].url)).arrayBuffer()), 8);
  });

  it('answers {data: [{b64_json}], seed} with response_format b64_json', async () => {
    const res = await post(
      server.url,
      '/v1/video/generations',
      {
        prompt: 'A cat',
        num_frames: 14,
        fps: 8,
        width: 128,
        height: 64,
        image: dataUri,
        seed: 1234,
        response_format: 'b64_json',
      },
      { authorization: `Bearer ${KEY}` },
    );
    expect(res.status).toBe(200);
    const json = (await res.json()) as { data: { b64_json: string }[]; seed: number };
    expect(json.seed).toBe(1234);
    await expectTinyMp4(new Uint8Array(Buffer.from(json.data[0].b64_json, 'base64')), 8);
  });
});

describe('auth, limits and refusals', () => {
  it("a wrong or missing key is 401 in every dialect's shape; the page itself is public", async () => {
    const seg = await post(server.url, '/v1/svd', { image: b64 }, { 'x-api-key': 'wrong' });
    expect(seg.status).toBe(401);
    expect(((await seg.json()) as { error: string }).error).toMatch(/invalid API key/);
    const fal = await post(server.url, '/fal-ai/svd', { image_url: dataUri }, { authorization: 'Key wrong' });
    expect(fal.status).toBe(401);
    expect(((await fal.json()) as { detail: string }).detail).toMatch(/invalid API key/);
    const oa = await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 }).videos
      .list()
      .catch((e) => e);
    expect(oa).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(oa.code).toBe('invalid_api_key');
    const missing = await fetch(`${server.url}/api/jobs/x`);
    expect(missing.status).toBe(401);
    expect(JSON.stringify(await missing.json())).not.toContain(KEY);
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('id="image-input"');
    const schema = (await (await fetch(`${server.url}/schema.json`)).json()) as {
      authRequired: boolean;
      request: { properties: Record<string, { maximum?: number }> };
    };
    expect(schema.authRequired).toBe(true);
    expect(schema.request.properties.motionBucketId.maximum).toBe(255);
  });

  it('an oversized body is 413, whether declared or streamed', async () => {
    const big = JSON.stringify({ image: 'A'.repeat(300 * 1024) });
    const res = await fetch(`${server.url}/v1/svd`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/larger than the limit of 262144 bytes/);
    const status = await new Promise<number>((resolve, reject) => {
      const r = httpRequest(
        `${server.url}/fal-ai/svd`,
        { method: 'POST', headers: { authorization: `Key ${KEY}`, 'transfer-encoding': 'chunked' } },
        (res2) => {
          res2.resume();
          resolve(res2.statusCode ?? 0);
        },
      );
      r.on('error', reject);
      for (let i = 0; i < 10; i++) r.write('x'.repeat(64 * 1024));
      r.end();
    });
    expect(status).toBe(413);
  });

  it('image URLs on loopback/private addresses are refused (before connecting) in each dialect', async () => {
    const before = host.hits.length;
    const url = `${host.url}/img.png`;
    const seg = await post(server.url, '/v1/svd', { image: url }, { 'x-api-key': KEY });
    expect(seg.status).toBe(400);
    expect(((await seg.json()) as { error: string }).error).toMatch(
      /private, loopback or reserved address; refused \(start the server with --allow-private-urls/,
    );
    const fal = await post(
      server.url,
      '/fal-ai/svd',
      { image_url: 'http://169.254.169.254/latest/meta-data' },
      { authorization: `Key ${KEY}` },
    );
    expect(fal.status).toBe(422);
    expect(((await fal.json()) as { detail: { loc: string[] }[] }).detail[0].loc).toEqual(['body', 'image_url']);
    const oa = await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 }).videos
      .create({ prompt: 'x', input_reference: { image_url: url.replace('127.0.0.1', 'localhost') } } as never)
      .catch((e) => e);
    expect(oa.status).toBe(400);
    expect(oa.error.param).toBe('input_reference');
    expect(host.hits.length).toBe(before);
  });

  it('unknown routes are 404, wrong methods 405; without a key only loopback Host names and same-origin writes are answered', async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect(
      (await fetch(`${server.url}/v1/videos`, { method: 'PUT', headers: { authorization: `Bearer ${KEY}` } })).status,
    ).toBe(405);
    const rebinding = await new Promise<number>((resolve, reject) => {
      httpRequest(`${open.url}/schema.json`, { headers: { host: 'attacker.example:80' } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(rebinding).toBe(403);
    const csrf = await post(open.url, '/api/jobs', { image: b64 }, { origin: 'http://attacker.example' });
    expect(csrf.status).toBe(403);
  });
});
