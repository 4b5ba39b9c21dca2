/**
 * The shared queue with a real Redis (its own redis-server on a free loopback port, with a password) and
 * real `svd worker` processes running the tiny model: every dialect end to end through the queue, 50+ jobs
 * spread over three workers with the same bytes for the same seed whichever worker ran it, cancellation,
 * 429 on a full queue, an API server restart with jobs in flight, SIGTERM (the job finishes), kill -9 (the
 * job is taken over by another worker; after N dead workers it fails with a clear error), `svd queue
 * status`, the health endpoint — and the Redis password never printed, no provider key in a job.
 *
 * One Redis and one set of workers for the whole file; jobs are tiny (64×64, 2 frames, 1 step by default)
 * so the file stays cheap. The tests run in order and share the workers (the last ones kill them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { Redis } from 'ioredis';
import { startServer, type RunningServer } from '../src/server/index.js';
import { startQueueWorker } from '../src/server/queue/worker.js';
import { fixtureBytes } from './server-helpers.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { buildTinyModel } from './helpers/tinyModel.js';
import { until } from './helpers/until.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const dataUri = `data:image/png;base64,${Buffer.from(fixtureBytes()).toString('base64')}`;
const json = { 'content-type': 'application/json' };
const DEFAULTS = { steps: 1, frames: 2, width: 64, height: 64 };
const FAKE_PROVIDER_KEY = 'fal-key-that-must-never-travel';

interface WorkerProc {
  name: string;
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

let redis: TestRedis;
let server: RunningServer;
const serverLogs: string[] = [];
const workers = new Map<string, WorkerProc>();
const printed: string[] = [];

function spawnWorker(name: string): WorkerProc {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'worker',
      '--queue',
      redis.url,
      '--name',
      name,
      '--device',
      'cpu',
      '--stalled-seconds',
      '4',
      '--max-attempts',
      '2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env } },
  );
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const w = { name, child, output: () => out, exit };
  workers.set(name, w);
  return w;
}

async function health(base = server.url): Promise<Record<string, any>> {
  return (await (await fetch(`${base}/healthz`)).json()) as Record<string, any>;
}

const untilWorkers = (names: string[]) =>
  until(`workers ${names.join(', ')}`, async () => {
    const h = await health();
    const live = new Set((h.workers as { name: string }[]).map((w) => w.name));
    return names.every((n) => live.has(n)) ? h : undefined;
  });

const submitFal = async (input: Record<string, unknown>, base = server.url) => {
  const post = () =>
    fetch(`${base}/fal-ai/svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image_url: dataUri, ...input }),
    });
  // A pooled keep-alive connection the server is just closing resets; that request never arrived, so resend it.
  const res = await post().catch((err: { cause?: { code?: string } }) => {
    if (err.cause?.code === 'ECONNRESET' || err.cause?.code === 'UND_ERR_SOCKET') return post();
    throw err;
  });
  return { res, body: (await res.json()) as Record<string, any> };
};
const falStatus = async (base: string, id: string) =>
  (await (await fetch(`${base}/fal-ai/svd/requests/${id}/status?logs=1`)).json()) as Record<string, any>;
const untilFalDone = (id: string, base = () => server.url) =>
  until(
    `fal request ${id}`,
    async () => {
      const st = await falStatus(base(), id);
      return st.status === 'COMPLETED' ? st : undefined;
    },
    180_000,
  );
/** Denoising steps logged since the job (last) started on a worker. */
const stepsSinceStart = (st: Record<string, any>): number => {
  const logs = (st.logs as { message: string }[] | null) ?? [];
  let n = 0;
  for (const l of logs)
    n = l.message.startsWith('started on worker') ? 0 : n + (l.message.startsWith('denoise step') ? 1 : 0);
  return n;
};
/** The worker that made the job's video, or else the one that (last) started it, from its log lines. */
const workerOf = (st: Record<string, any>): string | undefined => {
  const logs = (st.logs as { message: string }[] | null) ?? [];
  const made = logs.map((l) => /^made by worker (\S+)/.exec(l.message)?.[1]).find(Boolean);
  return (
    made ??
    logs
      .map((l) => /^started on worker (\S+)/.exec(l.message)?.[1])
      .filter(Boolean)
      .at(-1)
  );
};
const untilRunningOn = (id: string) =>
  until(`fal request ${id} to run a step`, async () => {
    const st = await falStatus(server.url, id);
    const stepped = st.status === 'IN_PROGRESS' && stepsSinceStart(st) > 0;
    return stepped ? workerOf(st) : undefined;
  });

async function falVideo(base: string, id: string): Promise<Buffer> {
  const out = (await (await fetch(`${base}/fal-ai/svd/requests/${id}`)).json()) as { video: { url: string } };
  const res = await fetch(out.video.url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

const isMp4 = (b: Buffer) => b.length > 100 && b.subarray(4, 8).toString('latin1') === 'ftyp';

beforeAll(async () => {
  redis = await startRedis();
  await buildTinyModel(); // graphs built once into SVD_CACHE_DIR, which the workers inherit
  process.env.FAL_KEY = FAKE_PROVIDER_KEY;
  for (const n of ['w1', 'w2', 'w3']) spawnWorker(n);
  server = await startServer({
    port: 0,
    queueUrl: redis.url,
    queueSize: 100,
    resultTtlSeconds: 600,
    defaults: DEFAULTS,
    log: (l) => serverLogs.push(l),
  });
  await untilWorkers(['w1', 'w2', 'w3']);
}, 300_000);

afterAll(async () => {
  delete process.env.FAL_KEY;
  await server?.close();
  for (const w of workers.values()) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  await Promise.all([...workers.values()].map((w) => w.exit));
  await redis?.stop();
});

describe('every dialect through the queue', () => {
  it('Segmind, fal (queue, sync, SSE), OpenAI, VoltageGPU and our page API each get their video from a worker', async () => {
    const b = server.url;
    const seg = await fetch(`${b}/v1/svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image: dataUri, seed: 5 }),
    });
    expect(seg.status).toBe(200);
    expect(seg.headers.get('x-svd-seed')).toBe('5');
    expect(isMp4(Buffer.from(await seg.arrayBuffer()))).toBe(true);
    const seg64 = await fetch(`${b}/v1/svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image: dataUri, seed: 5, base64: true }),
    });
    expect(isMp4(Buffer.from(((await seg64.json()) as { image: string }).image, 'base64'))).toBe(true);
    const mc = await fetch(`${b}/v1/motionctrl-svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ input_image: dataUri, seed: 5, base64: true }),
    });
    // the tiny model has no camera module: the worker refuses the preset, naming the model to use
    expect(mc.status).toBe(400);
    expect(((await mc.json()) as { error: string }).error).toContain('--model motionctrl-svd');

    const fal = await submitFal({ seed: 9 });
    expect(fal.res.status).toBe(200);
    // SSE: status objects until COMPLETED, with per-step logs on the way.
    const sse = await (await fetch(`${fal.body.status_url}/stream?logs=1`)).text();
    const events = sse
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => JSON.parse(e.slice(6)) as Record<string, any>);
    expect(events.at(-1)!.status).toBe('COMPLETED');
    expect(events.at(-1)!.logs.some((l: { message: string }) => l.message === 'denoise step 1/1')).toBe(true);
    expect(isMp4(await falVideo(b, fal.body.request_id))).toBe(true);
    const run = await fetch(`${b}/run/fal-ai/svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image_url: dataUri, seed: 9 }),
    });
    const ran = (await run.json()) as { video: { url: string }; seed: number };
    expect(ran.seed).toBe(9);
    expect(isMp4(Buffer.from(await (await fetch(ran.video.url)).arrayBuffer()))).toBe(true);

    const openai = new OpenAI({ baseURL: `${b}/v1`, apiKey: 'unused', maxRetries: 0 });
    const v = await openai.videos.create({ prompt: 'a wave', input_reference: { image_url: dataUri } } as never);
    const done = await until('the OpenAI video', async () => {
      const r = await openai.videos.retrieve(v.id);
      return r.status === 'completed' || r.status === 'failed' ? r : undefined;
    });
    expect(done.status).toBe('completed');
    expect(isMp4(Buffer.from(await (await openai.videos.downloadContent(v.id)).arrayBuffer()))).toBe(true);

    const volt = await fetch(`${b}/v1/video/generations`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image: dataUri, response_format: 'b64_json' }),
    });
    expect(
      isMp4(Buffer.from(((await volt.json()) as { data: { b64_json: string }[] }).data[0].b64_json, 'base64')),
    ).toBe(true);
    const voltUrl = (await (
      await fetch(`${b}/v1/video/generations`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ image: dataUri }),
      })
    ).json()) as { data: { url: string }[] };
    expect(isMp4(Buffer.from(await (await fetch(voltUrl.data[0].url)).arrayBuffer()))).toBe(true);

    const web = (await (
      await fetch(`${b}/api/jobs`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ image: dataUri, seed: 3, steps: 3 }),
      })
    ).json()) as { id: string };
    const stream = await (await fetch(`${b}/api/jobs/${web.id}/events`)).text();
    const states = stream
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => JSON.parse(e.slice(6)) as Record<string, any>);
    // The page sees each step live, then the video.
    expect(states.some((s) => s.status === 'running' && s.progress.step === 2 && s.progress.totalSteps === 3)).toBe(
      true,
    );
    const last = states.at(-1)!;
    expect(last.status).toBe('completed');
    expect(isMp4(Buffer.from(await (await fetch(last.video.url)).arrayBuffer()))).toBe(true);
  });

  it('a damaged image is refused before it is queued, naming the field; jobs in Redis carry no provider key', async () => {
    const brokenPng = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      Buffer.alloc(64, 7),
    ]);
    const notPng = `data:image/png;base64,${brokenPng.toString('base64')}`;
    const res = await fetch(`${server.url}/v1/svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image: notPng }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^image: /);
    const fal = await submitFal({ image_url: notPng });
    expect(fal.res.status).toBe(422);
    expect(fal.body.detail[0].loc).toEqual(['body', 'image_url']);

    const client = new Redis(redis.url);
    try {
      const jobKeys = (await client.keys('svd:generate:*')).filter((k) => /:[0-9a-f-]{36}$/.test(k));
      expect(jobKeys.length).toBeGreaterThan(5);
      for (const k of jobKeys) {
        const data = await client.hget(k, 'data');
        expect(data).not.toContain(FAKE_PROVIDER_KEY);
        expect(JSON.parse(data!)).not.toHaveProperty('remote');
      }
    } finally {
      client.disconnect();
    }
  });
});

describe('many jobs over several workers', () => {
  it('54 jobs spread over three workers; the same seed gives the same bytes whichever worker ran it', async () => {
    const seeds = [11, 22, 33];
    const submitted = await Promise.all(
      Array.from({ length: 54 }, async (_, i) => {
        const r = await submitFal({ seed: seeds[i % 3] });
        expect(r.res.status).toBe(200);
        return { id: r.body.request_id as string, seed: seeds[i % 3] };
      }),
    );
    const byWorker = new Map<string, number>();
    const bySeed = new Map<number, { bytes: Buffer; worker: string }[]>();
    for (const job of submitted) {
      const st = await untilFalDone(job.id);
      expect(st.error).toBeUndefined();
      const worker = workerOf(st)!;
      byWorker.set(worker, (byWorker.get(worker) ?? 0) + 1);
      const list = bySeed.get(job.seed) ?? [];
      list.push({ bytes: await falVideo(server.url, job.id), worker });
      bySeed.set(job.seed, list);
    }
    expect([...byWorker.keys()].sort()).toEqual(['w1', 'w2', 'w3']);
    for (const [, list] of bySeed) {
      for (const other of list) expect(other.bytes.equals(list[0].bytes)).toBe(true);
      // ...including videos made by different workers.
      expect(new Set(list.map((x) => x.worker)).size).toBeGreaterThan(1);
    }
    expect(bySeed.get(11)![0].bytes.equals(bySeed.get(22)![0].bytes)).toBe(false);
  });
});

describe('cancellation and limits', () => {
  it("fal cancel, OpenAI delete and the page's Cancel reach the worker between steps; a full queue is 429", async () => {
    // Three long jobs hold the three workers; a fourth waits.
    const long = await Promise.all([0, 1, 2].map(() => submitFal({ steps: 100, seed: 1 })));
    await Promise.all(long.map((l) => untilRunningOn(l.body.request_id)));
    const waiting = await submitFal({ seed: 2 });

    // A second API server on the same queue, allowed one waiting job: the queue is full there.
    const small = await startServer({ port: 0, queueUrl: redis.url, queueSize: 1, defaults: DEFAULTS, log: () => {} });
    try {
      const refused = await submitFal({}, small.url);
      expect(refused.res.status).toBe(429);
      expect(Number(refused.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.body.detail).toMatch(/queue is full/);
    } finally {
      await small.close();
    }

    // The waiting one is removed from the queue; it never starts.
    expect(await (await fetch(waiting.body.cancel_url, { method: 'PUT' })).json()).toEqual({
      status: 'CANCELLATION_REQUESTED',
    });
    const w = await untilFalDone(waiting.body.request_id);
    expect(w.error_type).toBe('client_cancelled');
    expect(workerOf(w)).toBeUndefined();

    // fal cancel of a running job.
    expect((await fetch(long[0].body.cancel_url, { method: 'PUT' })).status).toBe(202);
    const c0 = await untilFalDone(long[0].body.request_id);
    expect(c0.error_type).toBe('client_cancelled');
    const steps = c0.logs.filter((l: { message: string }) => l.message.startsWith('denoise step')).length;
    expect(steps).toBeGreaterThan(0);
    expect(steps).toBeLessThan(100);
    expect((await fetch(long[0].body.response_url)).status).toBe(499);

    // Our page's Cancel (DELETE /api/jobs/{id}) of a running job.
    await fetch(`${server.url}/api/jobs/${long[1].body.request_id}`, { method: 'DELETE' });
    const c1 = await untilFalDone(long[1].body.request_id);
    expect(c1.error_type).toBe('client_cancelled');

    // OpenAI delete of a running video.
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    await fetch(long[2].body.cancel_url, { method: 'PUT' });
    const v = await openai.videos.create({
      prompt: 'x',
      input_reference: { image_url: dataUri },
      num_inference_steps: 100,
    } as never);
    await until('progress', async () => ((await openai.videos.retrieve(v.id)).progress > 10 ? true : undefined));
    expect(await openai.videos.delete(v.id)).toMatchObject({ deleted: true });
    expect(await openai.videos.retrieve(v.id).catch((e) => e.status)).toBe(404);
    await untilFalDone(long[2].body.request_id);
    // Every worker is free again: nothing runs.
    await until('an idle queue', async () => ((await health()).queue.running === 0 ? true : undefined));
  });
});

describe('server restart', () => {
  it('jobs queued and running when the API server stops are all finished and served after it starts again', async () => {
    const jobs = await Promise.all([0, 1, 2, 3, 4].map((i) => submitFal({ steps: 8, seed: 40 + i })));
    await untilRunningOn(jobs[0].body.request_id);
    // A blocking Segmind client is told the server is restarting; its job goes on.
    const seen = serverLogs.length;
    const sync = fetch(`${server.url}/v1/svd`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ image: dataUri, steps: 8 }),
    });
    await until('the Segmind job to queue', async () =>
      serverLogs.slice(seen).some((l) => /queued in Redis \(segmind/.test(l)) ? true : undefined,
    );
    await server.close();
    const answer = await sync;
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: string }).error).toMatch(/restarting/);

    server = await startServer({
      port: 0,
      queueUrl: redis.url,
      queueSize: 100,
      resultTtlSeconds: 600,
      defaults: DEFAULTS,
      log: (l) => serverLogs.push(l),
    });
    for (const j of jobs) {
      const st = await untilFalDone(j.body.request_id);
      expect(st.error).toBeUndefined();
      expect(isMp4(await falVideo(server.url, j.body.request_id))).toBe(true);
    }
  });
});

describe('observability and secrets', () => {
  it('svd queue status and the health endpoint show counts and live workers; the password is never printed', async () => {
    // The Segmind job of the restart test goes on after its client was told to retry: wait for the queue to drain.
    await until('an idle queue', async () => {
      const q = (await health()).queue;
      return q.running === 0 && q.queued === 0 ? true : undefined;
    });
    const h = await health();
    expect(h.status).toBe('ok');
    expect(h.queue.mode).toBe('redis');
    expect(h.queue.completed).toBeGreaterThan(50);
    expect(h.workers.map((w: { name: string }) => w.name).sort()).toEqual(['w1', 'w2', 'w3']);

    const r = spawnSync(process.execPath, [BIN, 'queue', 'status'], {
      encoding: 'utf8',
      env: { ...process.env, SVD_QUEUE_URL: redis.url },
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/jobs: \d+ queued, \d+ running, \d+ completed, \d+ failed/);
    expect(r.stdout).toMatch(/mean time per job: \d+\.\d\d s/);
    expect(r.stdout).toMatch(/workers: 3/);
    expect(r.stdout).toMatch(/w1 .* busy 0\/1 {2}done \d+/);
    expect(r.stdout).toContain(':***@127.0.0.1');
    const asJson = spawnSync(process.execPath, [BIN, 'queue', 'status', '--json', '--queue', redis.url], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(JSON.parse(asJson.stdout).workers).toHaveLength(3);
    printed.push(
      r.stdout,
      r.stderr,
      asJson.stdout,
      asJson.stderr,
      JSON.stringify(h),
      ...serverLogs,
      ...[...workers.values()].map((w) => w.output()),
    );
    for (const text of printed) expect(text).not.toContain(redis.password);
  });
});

describe('workers stopping', () => {
  it('SIGTERM: the worker finishes its running job, then exits', async () => {
    const job = await submitFal({ steps: 12, seed: 77 });
    const name = await untilRunningOn(job.body.request_id);
    const w = workers.get(name!)!;
    w.child.kill('SIGTERM');
    expect(await w.exit).toBe(0);
    const st = await untilFalDone(job.body.request_id);
    expect(st.error).toBeUndefined();
    expect(workerOf(st)).toBe(name);
    expect(w.output()).toMatch(/SIGTERM: taking no more jobs/);
  });

  it('kill -9 mid-job: another worker takes the job over and finishes it', async () => {
    const job = await submitFal({ steps: 30, seed: 78 });
    const first = await untilRunningOn(job.body.request_id);
    workers.get(first!)!.child.kill('SIGKILL');
    const st = await untilFalDone(job.body.request_id);
    expect(st.error).toBeUndefined();
    expect(workerOf(st)).not.toBe(first);
    expect(
      st.logs.some((l: { message: string }) => /worker stopped answering; back in the queue/.test(l.message)),
    ).toBe(true);
    expect(isMp4(await falVideo(server.url, job.body.request_id))).toBe(true);
  });

  it('after --max-attempts dead workers the job fails with a clear error', async () => {
    const job = await submitFal({ steps: 30, seed: 79 });
    const first = await untilRunningOn(job.body.request_id);
    workers.get(first!)!.child.kill('SIGKILL'); // the last of the first three
    // Two fresh workers: one takes the job over (attempt 2) and is killed too; the other gives the job up.
    spawnWorker('w4');
    spawnWorker('w5');
    const second = await until(
      'the second attempt',
      async () => {
        const st = await falStatus(server.url, job.body.request_id);
        const on = workerOf(st);
        return st.status === 'IN_PROGRESS' && on !== first && stepsSinceStart(st) > 0 ? on : undefined;
      },
      180_000,
    );
    workers.get(second!)!.child.kill('SIGKILL');
    const st = await untilFalDone(job.body.request_id);
    expect(st.error, JSON.stringify(st.logs)).toMatch(/given up after 2 attempts/);
    expect(st.error_type).toBe('internal_error');
    const res = await fetch(job.body.response_url);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/worker running it stopped without finishing/);
  });

  it('a worker stopping past its grace period hands its job back; another worker finishes it', async () => {
    // The process workers left stop (idle: at once); two in-process workers take their place, one after the other.
    const alive = [...workers.values()].filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    expect(alive.length).toBeGreaterThan(0);
    for (const w of alive) w.child.kill('SIGTERM');
    for (const w of alive) expect(await w.exit).toBe(0);
    const a = await startQueueWorker({ url: redis.url, name: 'inproc-a', device: 'cpu', stalledSeconds: 4 });
    const job = await submitFal({ steps: 30, seed: 80 });
    expect(await untilRunningOn(job.body.request_id)).toBe('inproc-a');
    // The second worker loads its model meanwhile; it can only get the job once the first one hands it back.
    const starting = startQueueWorker({ url: redis.url, name: 'inproc-b', device: 'cpu', stalledSeconds: 4 });
    await a.close({ graceMs: 0 });
    const b = await starting;
    try {
      const st = await untilFalDone(job.body.request_id);
      expect(st.error).toBeUndefined();
      expect(workerOf(st)).toBe('inproc-b');
      expect(st.logs.some((l: { message: string }) => /handed back by its worker/.test(l.message))).toBe(true);
    } finally {
      await b.close();
    }
  });
});
