/**
 * The shared queue while its Redis is away: an API server (`--queue redis://…`) and a worker are running, Redis
 * shuts down, then comes back with its data. Meanwhile new jobs are refused with a 503 in each dialect's shape
 * that names the queue (no stack trace, no password), the health endpoint says the queue is unavailable, and
 * nothing crashes; once Redis is back, the same server and worker take and finish jobs again, without restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/server/index.js';
import { startQueueWorker, type RunningWorker } from '../src/server/queue/worker.js';
import { fixtureBytes } from './server-helpers.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { buildTinyModel } from './helpers/tinyModel.js';
import { until } from './helpers/until.js';

const dataUri = `data:image/png;base64,${Buffer.from(fixtureBytes()).toString('base64')}`;
const json = { 'content-type': 'application/json' };

let redis: TestRedis;
let server: RunningServer;
let worker: RunningWorker;
const logs: string[] = [];

const healthz = async () => {
  const res = await fetch(`${server.url}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

const falStatus = async (id: string) =>
  (await (await fetch(`${server.url}/fal-ai/svd/requests/${id}/status?logs=1`)).json()) as Record<string, any>;

async function falSubmit(input: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${server.url}/fal-ai/svd`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ image_url: dataUri, ...input }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { request_id: string }).request_id;
}

/** Waits for the job to complete and checks its video is served; returns its log lines. */
async function falResult(id: string): Promise<string[]> {
  const done = await until(`fal request ${id}`, async () => {
    const st = await falStatus(id);
    return st.status === 'COMPLETED' ? st : undefined;
  });
  expect(done.error, JSON.stringify(done.logs)).toBeUndefined();
  const out = (await (await fetch(`${server.url}/fal-ai/svd/requests/${id}`)).json()) as { video: { url: string } };
  expect((await fetch(out.video.url)).status).toBe(200);
  return (done.logs as { message: string }[]).map((l) => l.message);
}

beforeAll(async () => {
  redis = await startRedis();
  await buildTinyModel();
  worker = await startQueueWorker({
    url: redis.url,
    name: 'outage-w',
    device: 'cpu',
    stalledSeconds: 4,
    log: (l) => logs.push(l),
  });
  server = await startServer({
    port: 0,
    queueUrl: redis.url,
    queueSize: 10,
    resultTtlSeconds: 600,
    defaults: { steps: 1, frames: 2, width: 64, height: 64 },
    log: (l) => logs.push(l),
  });
  await until('the worker', async () => ((await healthz()).body.status === 'ok' ? true : undefined));
}, 120_000);

afterAll(async () => {
  await server?.close();
  await worker?.close({ graceMs: 0 });
  await redis?.stop();
});

describe('Redis goes away and comes back', () => {
  it('new jobs get a clear 503 naming the queue, health says so; afterwards server and worker carry on', async () => {
    expect(await falResult(await falSubmit({ seed: 1 }))).toContain('made by worker outage-w');
    // a job running on the worker when Redis goes away
    const running = await falSubmit({ seed: 2, steps: 60 });
    await until('the job to run', async () => ((await falStatus(running)).status === 'IN_PROGRESS' ? true : undefined));
    // and one waiting behind it, which its client cancels while Redis is away
    const waiting = await falSubmit({ seed: 5, steps: 60 });
    await redis.down();
    const cancel = await fetch(`${server.url}/fal-ai/svd/requests/${waiting}/cancel`, { method: 'PUT' });
    expect(cancel.status).toBe(202);

    // every dialect answers 503 in its own error shape; each answer is kept to check for leaks below
    const answers: string[] = [];
    const submit = async (path: string, body: Record<string, unknown>) => {
      const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: json, body: JSON.stringify(body) });
      const text = await res.text();
      answers.push(text);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      return JSON.parse(text) as Record<string, any>;
    };
    expect((await submit('/fal-ai/svd', { image_url: dataUri })).detail).toMatch(/job queue.*cannot be reached/);
    expect((await submit('/v1/videos', { prompt: 'x', input_reference: { image_url: dataUri } })).error).toMatchObject({
      code: 'queue_unavailable',
      type: 'server_error',
    });
    expect((await submit('/v1/svd', { image: dataUri })).error).toMatch(/job queue.*cannot be reached/);

    const down = await healthz();
    answers.push(JSON.stringify(down.body));
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('unavailable');
    expect(down.body.queue.message).toMatch(/job queue \(Redis\) cannot be reached/);
    // the host is for the server's log, not for the public
    expect(down.body.queue.message).not.toContain('127.0.0.1');

    for (const text of answers) {
      expect(text).not.toContain(redis.password);
      expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/); // no stack trace
    }

    // Redis stays away longer than the running job's lock (stalledSeconds 4), as in a real outage
    await new Promise((r) => setTimeout(r, 5000));
    expect((await healthz()).status).toBe(503);
    await redis.up();
    const back = await until('the queue to be healthy again', async () => {
      const h = await healthz();
      return h.body.status === 'ok' && h.body.workers.some((w: { name: string }) => w.name === 'outage-w')
        ? h
        : undefined;
    });
    expect(back.status).toBe(200);
    // the job that was running finishes (or is started again) on the same worker, and a new one is made there,
    // its steps seen live again (the server follows the queue's events once more)
    expect(await falResult(running)).toContain('made by worker outage-w');
    // the cancel was sent once Redis was back: the waiting job never completes
    const cancelled = await until('the cancelled job to end', async () => {
      const st = await falStatus(waiting);
      return st.status === 'COMPLETED' ? st : undefined;
    });
    expect(cancelled.error_type).toBe('client_cancelled');
    const after = await falResult(await falSubmit({ seed: 3 }));
    expect(after).toContain('made by worker outage-w');
    expect(after).toContain('denoise step 1/1');
    for (const text of logs) expect(text).not.toContain(redis.password);
    // the outage is logged once by each (lost, back), not once per failed reconnect
    expect(logs.filter((l) => /ECONNREFUSED/.test(l) && !l.startsWith('lost the job queue'))).toEqual([]);
    expect(logs.filter((l) => l.startsWith('lost the job queue'))).toHaveLength(2);
    expect(logs.filter((l) => /^the job queue at redis:\/\/:\*\*\*@\S+ is back after/.test(l))).toHaveLength(2);
  });

  it('SIGTERM during an outage: the worker waiting for its running job and the server stop, nothing hangs', async () => {
    const id = await falSubmit({ seed: 4, steps: 60 });
    await until('the job to run', async () => ((await falStatus(id)).status === 'IN_PROGRESS' ? true : undefined));
    // the worker is asked to stop and would let its job finish, but Redis goes away meanwhile
    const workerClosed = worker.close({ graceMs: 60_000 });
    await redis.down();
    await workerClosed;
    expect(logs.at(-1)).toMatch(/^stopped without the job queue at redis:\/\/:\*\*\*@/);
    await server.close();
  });
});
