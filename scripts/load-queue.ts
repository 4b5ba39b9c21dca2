/**
 * Throughput of the shared queue: for 1, 2 and 3 `svd worker` processes on the tiny model, starts a private
 * redis-server (loopback, temp dir), an API server with `--queue`, submits J jobs at once through our API,
 * waits for all of them and reports jobs per minute (first submit to last completion). Every job must
 * complete with a video; the run fails otherwise.
 *
 *   npx tsx scripts/load-queue.ts [--jobs 24] [--steps 2] [--workers 1,2,3] [--timeout 600 (per worker count)]
 *
 * Bounded: at most 3 workers of the tiny model (a few hundred MiB each), at most 96 jobs, a wall-clock limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startServer } from '../src/server/index.js';
import { ensureBuilt } from '../src/models/resolve.js';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { startRedis } from '../test/helpers/redis.js';
import { duration } from './bench-util.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '24' },
    steps: { type: 'string', default: '2' },
    workers: { type: 'string', default: '1,2,3' },
    timeout: { type: 'string', default: '600' },
  },
});
const jobs = Math.min(96, Math.max(1, Number(values.jobs) || 24));
const steps = Math.min(100, Math.max(1, Number(values.steps) || 2));
const counts = values.workers
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n >= 1 && n <= 3);
const timeoutMs = Math.max(30, Number(values.timeout) || 600) * 1000;
let deadline = 0;
const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const IMAGE = join(import.meta.dirname, '..', 'test', 'fixtures', 'reference', 'input_64x128.png');

interface Row {
  workers: number;
  jobs: number;
  wallMs: number;
  perMinute: number;
  meanJobMs: number;
  perWorker: Record<string, number>;
}

async function runWith(url: string, n: number): Promise<Row> {
  deadline = Date.now() + timeoutMs;
  const redis = new Redis(url);
  await redis.flushdb();
  redis.disconnect();
  const procs: ChildProcess[] = [];
  for (let i = 1; i <= n; i++) {
    const p = spawn(process.execPath, [BIN, 'worker', '--queue', url, '--name', `load-w${i}`, '--device', 'cpu'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
    p.once('exit', (code, signal) => {
      if (code !== 0) process.stderr.write(`load-queue: worker load-w${i} exited (${code ?? signal}): ${err}\n`);
    });
    procs.push(p);
  }
  const server = await startServer({
    port: 0,
    queueUrl: url,
    queueSize: jobs,
    resultTtlSeconds: 600,
    defaults: { steps },
  });
  try {
    // Models load before a worker takes jobs; wait until all are there so the clock measures running, not loading.
    for (;;) {
      const h = (await (await fetch(`${server.url}/healthz`)).json()) as { workers: unknown[] };
      if (h.workers.length === n) break;
      if (Date.now() > deadline) throw new Error('workers did not start in time');
      await new Promise((r) => setTimeout(r, 200));
    }
    const image = `data:image/png;base64,${readFileSync(IMAGE).toString('base64')}`;
    const t0 = Date.now();
    const ids = await Promise.all(
      Array.from({ length: jobs }, async (_, i) => {
        const res = await fetch(`${server.url}/fal-ai/svd`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ image_url: image, seed: i }),
        });
        if (res.status !== 200) throw new Error(`submit answered ${res.status}`);
        return ((await res.json()) as { request_id: string }).request_id;
      }),
    );
    const perWorker: Record<string, number> = {};
    const runMs: number[] = [];
    let lastDone = t0;
    for (const id of ids) {
      for (;;) {
        const st = (await (await fetch(`${server.url}/fal-ai/svd/requests/${id}/status?logs=1`)).json()) as {
          status: string;
          error?: string;
          logs: { message: string }[];
          metrics: { inference_time?: number };
        };
        if (st.status === 'COMPLETED') {
          if (st.error) throw new Error(`job ${id} failed: ${st.error}`);
          const w =
            st.logs
              .map((l) => /^started on worker (\S+)/.exec(l.message)?.[1])
              .filter(Boolean)
              .at(-1) ?? '?';
          perWorker[w] = (perWorker[w] ?? 0) + 1;
          runMs.push((st.metrics.inference_time ?? 0) * 1000);
          break;
        }
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (const id of ids) {
      const job = (await (await fetch(`${server.url}/api/jobs/${id}`)).json()) as {
        completedAt: number;
        video: { url: string };
      };
      lastDone = Math.max(lastDone, job.completedAt);
      const bytes = Buffer.from(await (await fetch(job.video.url)).arrayBuffer());
      if (bytes.subarray(4, 8).toString('latin1') !== 'ftyp') throw new Error(`job ${id}: not an MP4`);
    }
    const wallMs = lastDone - t0;
    return {
      workers: n,
      jobs,
      wallMs,
      perMinute: (jobs / wallMs) * 60_000,
      meanJobMs: runMs.reduce((a, b) => a + b, 0) / runMs.length,
      perWorker,
    };
  } finally {
    await server.close();
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
  }
}

async function main(): Promise<number> {
  await ensureBuilt(embeddedTinyCheckpoint(), 'tiny', { device: 'cpu' });
  const redis = await startRedis();
  const rows: Row[] = [];
  try {
    for (const n of counts) {
      process.stderr.write(`load-queue: ${n} worker(s), ${jobs} jobs of ${steps} steps...\n`);
      rows.push(await runWith(redis.url, n));
    }
  } finally {
    await redis.stop();
  }
  process.stdout.write(
    `machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), tiny model, ${steps} steps, default size and frames\n\n`,
  );
  process.stdout.write(
    '| workers | jobs | wall | jobs/min | mean time per job | jobs per worker |\n|---|---|---|---|---|---|\n',
  );
  for (const r of rows) {
    process.stdout.write(
      `| ${r.workers} | ${r.jobs} | ${duration(r.wallMs)} | ${r.perMinute.toFixed(1)} | ${duration(r.meanJobMs)} | ${Object.values(r.perWorker).join(' / ')} |\n`,
    );
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`load-queue: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
