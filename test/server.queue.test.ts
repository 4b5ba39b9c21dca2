/**
 * The job queue seen through the dialects, with the real tiny model: a full queue is 429 with Retry-After,
 * cancelling mid-run stops the job between steps (fal cancel, OpenAI delete, our API, a Segmind client
 * hanging up), results expire, and shutting down mid-run answers the waiting client, stops the job and
 * leaves no files.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { LocalBackend } from '../src/backends/local.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import { fixtureBytes } from './server-helpers.js';
import { until } from './helpers/until.js';

const dataUri = `data:image/png;base64,${Buffer.from(fixtureBytes()).toString('base64')}`;
const json = { 'content-type': 'application/json' };

let backend: LocalBackend;
let server: RunningServer;
const logs: string[] = [];

beforeAll(async () => {
  backend = new LocalBackend();
  await backend.pipeline();
  server = await startServer({
    port: 0,
    backend,
    queueSize: 1,
    resultTtlSeconds: 2,
    defaults: { steps: 2 },
    log: (l) => logs.push(l),
  });
});

afterAll(async () => {
  await server?.close();
  await backend?.close();
});

const submitFal = async (input: Record<string, unknown>, base = server.url) => {
  const res = await fetch(`${base}/fal-ai/svd`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ image_url: dataUri, ...input }),
  });
  return { res, body: (await res.json()) as Record<string, any> };
};
const falStatus = async (s: Record<string, string>) =>
  (await (await fetch(`${s.status_url}?logs=1`)).json()) as Record<string, any>;

/** Waits until the fal job has done at least one denoising step. */
const untilDenoising = (s: Record<string, string>) =>
  until('a denoising step', async () => {
    const st = await falStatus(s);
    return st.status === 'IN_PROGRESS' && st.logs.some((l: { message: string }) => l.message.startsWith('denoise step'))
      ? st
      : undefined;
  });

describe('queue limits and cancellation', () => {
  it('a full queue answers 429 with Retry-After; cancelling mid-run stops the job between steps', async () => {
    const a = await submitFal({ steps: 60 });
    const b = await submitFal({ steps: 60 });
    expect(a.res.status).toBe(200);
    expect(b.res.status).toBe(200);
    await untilDenoising(a.body);
    expect(await falStatus(b.body)).toMatchObject({ status: 'IN_QUEUE', queue_position: 0 });
    const c = await submitFal({});
    expect(c.res.status).toBe(429);
    expect(Number(c.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(c.body.detail).toMatch(/queue is full/);

    // Cancel the waiting one, then the running one mid-run: both end long before 60 steps could.
    expect(await (await fetch(b.body.cancel_url, { method: 'PUT' })).json()).toEqual({
      status: 'CANCELLATION_REQUESTED',
    });
    const cancel = await fetch(a.body.cancel_url, { method: 'PUT' });
    expect(cancel.status).toBe(202);
    const done = await until('the cancelled job to end', async () => {
      const st = await falStatus(a.body);
      return st.status === 'COMPLETED' ? st : undefined;
    });
    expect(done.error_type).toBe('client_cancelled');
    const steps = done.logs.filter((l: { message: string }) => l.message.startsWith('denoise step')).length;
    expect(steps).toBeGreaterThan(0);
    expect(steps).toBeLessThan(60);
    const result = await fetch(a.body.response_url);
    expect(result.status).toBe(499);
    expect((await falStatus(b.body)).error_type).toBe('client_cancelled');

    // The queue carries on.
    const d = await submitFal({});
    expect(d.res.status).toBe(200);
    const fin = await until('the next job', async () => {
      const st = await falStatus(d.body);
      return st.status === 'COMPLETED' ? st : undefined;
    });
    expect(fin.error).toBeUndefined();
  });

  it('OpenAI DELETE and our DELETE /api/jobs cancel running jobs', async () => {
    const c = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const v = await c.videos.create({
      prompt: 'x',
      input_reference: { image_url: dataUri },
      num_inference_steps: 60,
    } as never);
    await until('progress', async () => ((await c.videos.retrieve(v.id)).progress > 10 ? true : undefined));
    expect(await c.videos.delete(v.id)).toMatchObject({ deleted: true });
    expect(await c.videos.retrieve(v.id).catch((e) => e.status)).toBe(404);

    const created = (await (
      await fetch(`${server.url}/api/jobs`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ image: dataUri, steps: 60 }),
      })
    ).json()) as { id: string };
    await until('a step', async () => {
      const j = (await (await fetch(`${server.url}/api/jobs/${created.id}`)).json()) as { progress: { step?: number } };
      return (j.progress.step ?? 0) >= 1 ? true : undefined;
    });
    await fetch(`${server.url}/api/jobs/${created.id}`, { method: 'DELETE' });
    const end = await until('cancelled', async () => {
      const j = (await (await fetch(`${server.url}/api/jobs/${created.id}`)).json()) as {
        status: string;
        error: { code: string };
      };
      return j.status === 'cancelled' ? j : undefined;
    });
    expect(end.error.code).toBe('cancelled');
  });

  it('a Segmind client that hangs up cancels its job', async () => {
    // A long job holds the worker, so the Segmind job is still waiting when its client hangs up.
    const long = await submitFal({ steps: 60 });
    await untilDenoising(long.body);
    const ctrl = new AbortController();
    const seen = logs.length;
    const call = fetch(`${server.url}/v1/svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image: dataUri }),
      signal: ctrl.signal,
    }).catch((e) => e);
    const queued = await until('the job to queue', async () =>
      logs.slice(seen).find((l) => /queued \(segmind/.test(l)),
    );
    const id = /^job (\S+)/.exec(queued)![1];
    ctrl.abort();
    expect(await call).toBeInstanceOf(Error);
    await until('the cancellation', async () =>
      logs.some((l) => l === `job ${id} cancelled: the client disconnected`) ? true : undefined,
    );
    await fetch(long.body.cancel_url, { method: 'PUT' });
    await until('the long job to end', async () =>
      (await falStatus(long.body)).status === 'COMPLETED' ? true : undefined,
    );
    expect(logs.some((l) => l.startsWith(`job ${id} started`))).toBe(false);
  });

  it('finished results and their videos expire after --result-ttl', async () => {
    const { body } = await submitFal({});
    await until('done', async () => ((await falStatus(body)).status === 'COMPLETED' ? true : undefined));
    const out = (await (await fetch(body.response_url)).json()) as { video: { url: string } };
    expect((await fetch(out.video.url)).status).toBe(200);
    // --result-ttl 2: the video and the job go once the TTL has passed (wait for it, a loaded machine is late)
    await until('the video to expire', async () => ((await fetch(out.video.url)).status === 404 ? true : undefined));
    expect((await fetch(body.status_url)).status).toBe(404);
  });
});

describe('shutdown', () => {
  it('closing mid-run answers the waiting client with 503, stops the job, refuses new connections and deletes the videos', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'svd-serve-shutdown-'));
    const lines: string[] = [];
    const s = await startServer({ port: 0, backend, workDir, defaults: { steps: 80 }, log: (l) => lines.push(l) });
    try {
      // A finished video exists, and a long sync job is running when the server closes.
      const first = (await (
        await fetch(`${s.url}/run/fal-ai/svd`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ image_url: dataUri, steps: 2 }),
        })
      ).json()) as { video: { url: string } };
      expect((await fetch(first.video.url)).status).toBe(200);
      expect(readdirSync(workDir).length).toBe(1);
      const waiting = fetch(`${s.url}/v1/svd`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ image: dataUri }),
      });
      await until('the sync job to run', async () =>
        lines.some((l) => /started \(segmind/.test(l)) ? true : undefined,
      );
      await s.close(); // does not wait for the 80 steps: the job is cancelled (below)
      const res = await waiting;
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: string }).error).toMatch(/shutting down/);
      expect(lines.some((l) => /cancelled: the server is shutting down/.test(l))).toBe(true);
      expect(await fetch(`${s.url}/healthz`).catch((e) => e)).toBeInstanceOf(Error);
      expect(readdirSync(workDir)).toEqual([]);
    } finally {
      await s.close();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});
