/**
 * `svd worker`: one process per GPU (or machine) that takes jobs from the shared queue and runs them on the
 * local pipeline with its models kept loaded. Per job it publishes progress (every denoising step), stores
 * the video's bytes in Redis with the job's result TTL, and answers with the result's description — or a
 * failure already shaped as the HTTP problem the client will see.
 *
 * Reliability is BullMQ's: while a job runs, the worker keeps renewing the job's lock; a worker that dies
 * (kill -9, crash, lost network) stops renewing, and after `stalledSeconds` another worker's stalled-job
 * check puts the job back in the queue — up to `maxAttempts` starts, then the job fails with a clear error.
 * Cancellation reaches a running job through a Redis channel (and a key checked when a job starts) and
 * stops it between steps. `close()` (SIGTERM) lets running jobs finish for a grace period, then hands them
 * back to the queue, where another worker starts them again.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError, WaitingError, Worker, type Job as BullJob } from 'bullmq';
import { LocalBackend } from '../../backends/local.js';
import type { ProgressEvent } from '../../backends/types.js';
import { AbortError } from '../../errors.js';
import { HttpError } from '../http.js';
import { overallFraction } from '../jobs.js';
import { toHttpError } from '../problems.js';
import { connectRedis, keys, KEY_PREFIX, openRedis, QUEUE_NAME, redactQueueUrl, watchQueueLink } from './connection.js';
import type { WorkerInfo } from './status.js';
import { decodeRequest, encodeFailure, type QueuedJobData, type QueuedProgress, type QueuedResult } from './wire.js';

export interface QueueWorkerOptions {
  /** `redis://[:password@]host[:port][/db]`; never printed unredacted. */
  url: string;
  /** Registry name, model directory or repo id; default: the embedded tiny model. */
  model?: string;
  /** auto | cpu | cuda | cuda:N | webgpu. Default auto. */
  device?: string;
  /** Jobs run at once by this process. Default 1 (one GPU runs one job at a time best). */
  concurrency?: number;
  /** Starts a job gets before it fails for good when its workers keep dying. Default 3. */
  maxAttempts?: number;
  /** How long a dead worker's job stays locked before another worker takes it over. Default 30. */
  stalledSeconds?: number;
  /** Shown in `svd queue status` and logs. Default `<host>-<pid>`. */
  name?: string;
  log?: (line: string) => void;
}

export interface RunningWorker {
  readonly name: string;
  /**
   * Stops taking jobs; running ones may finish for `graceMs` (default 30 s), then go back to the queue
   * for another worker. Resolves when this worker holds no job any more.
   */
  close(options?: { graceMs?: number }): Promise<void>;
  /** Hands every running job back to the queue now (they stop at their next step). */
  handBack(): void;
}

interface ActiveJob {
  controller: AbortController;
  /** Why the job is being stopped: the client cancelled it, or this worker hands it back. */
  stop?: 'cancel' | 'handback';
  reason?: string;
  /** Settles when the pipeline run ends (the model is free), whatever Redis does. */
  generating?: Promise<unknown>;
}

const HEARTBEAT_MS = 3000;

/**
 * Loads the model, connects to the queue and starts taking jobs.
 *
 * @example
 *   const worker = await startQueueWorker({ url: 'redis://127.0.0.1:6379', device: 'cuda:0' });
 *   process.once('SIGTERM', () => void worker.close());
 */
export async function startQueueWorker(o: QueueWorkerOptions): Promise<RunningWorker> {
  const name = o.name ?? `${hostname()}-${process.pid}`;
  const log = o.log ?? (() => {});
  const concurrency = o.concurrency ?? 1;
  const maxAttempts = o.maxAttempts ?? 3;
  const lockMs = (o.stalledSeconds ?? 30) * 1000;
  const backend = new LocalBackend({ model: o.model, device: o.device, log });
  // Models are loaded before the first job is taken, and stay loaded.
  await backend.pipeline();
  const redis = await openRedis(o.url, `worker-${name}`);
  const subscriber = connectRedis(o.url, `worker-${name}-cancel`);
  const workDir = await mkdtemp(join(tmpdir(), 'svd-worker-'));
  const active = new Map<string, ActiveJob>();
  const recentMs: number[] = [];
  let jobsDone = 0;
  const startedAt = Date.now();

  await subscriber.subscribe(keys.cancelChannel);
  subscriber.on('message', (_channel: string, message: string) => {
    try {
      const { jobId, reason } = JSON.parse(message) as { jobId: string; reason?: string };
      stopJob(jobId, 'cancel', reason ?? 'cancelled by the client');
    } catch {
      // not ours
    }
  });

  // The heartbeat says what the worker does now: sent every few seconds, and at once when a job starts or ends,
  // so that a status read after a job finished never shows the worker still busy with it.
  const info = (): WorkerInfo => ({
    name,
    host: hostname(),
    pid: process.pid,
    model: o.model ?? 'tiny (embedded)',
    device: o.device ?? 'auto',
    concurrency,
    active: [...active.keys()],
    jobsDone,
    startedAt,
    lastSeen: Date.now(),
    meanJobMs: recentMs.length ? Math.round(recentMs.reduce((x, y) => x + y, 0) / recentMs.length) : undefined,
  });
  const beat = () => redis.set(keys.worker(name), JSON.stringify(info()), 'PX', HEARTBEAT_MS * 3).catch(() => {});

  function stopJob(jobId: string, stop: 'cancel' | 'handback', reason: string): void {
    const a = active.get(jobId);
    if (!a || a.stop) return;
    a.stop = stop;
    a.reason = reason;
    a.controller.abort(new AbortError(reason));
  }

  const processor = async (job: BullJob<QueuedJobData>, token?: string): Promise<QueuedResult> => {
    const id = job.id!;
    const a: ActiveJob = { controller: new AbortController() };
    active.set(id, a);
    await beat();
    const progress = progressPublisher(job, name);
    const output = join(workDir, `${id}.mp4`);
    const t0 = performance.now();
    log(`job ${id} started (attempt ${job.attemptsStarted})`);
    try {
      const cancelled = await redis.get(keys.cancel(id));
      if (cancelled !== null) stopJob(id, 'cancel', cancelled || 'cancelled by the client');
      if (a.controller.signal.aborted) throw new AbortError(a.reason);
      progress.send({
        fraction: 0,
        log: `started on worker ${name}${job.attemptsStarted > 1 ? ` (attempt ${job.attemptsStarted})` : ''}`,
      });
      const generation = backend.generate(
        { ...decodeRequest(job.data), output, format: 'mp4' },
        {
          signal: a.controller.signal,
          onProgress: (e) => progress.event(e),
        },
      );
      a.generating = generation.catch(() => {});
      const result = await generation;
      if (a.controller.signal.aborted) throw new AbortError(a.reason);
      const bytes = await readFile(result.outputPath);
      await redis.set(keys.result(id), bytes, 'EX', job.data.resultTtlSeconds);
      await progress.flush();
      const ms = performance.now() - t0;
      recentMs.push(ms);
      if (recentMs.length > 16) recentMs.shift();
      jobsDone++;
      log(`job ${id} completed in ${Math.round(ms)} ms`);
      return {
        fileToken: randomBytes(16).toString('hex'),
        fileName: `${id.slice(0, 8)}.mp4`,
        contentType: 'video/mp4',
        size: bytes.length,
        seed: result.seed,
        metadata: result.metadata,
        worker: name,
      };
    } catch (err) {
      await progress.flush();
      if (a.stop === 'handback') {
        // Back to the queue as it was; another worker (or this one, restarted) starts it from the beginning.
        log(`job ${id} handed back to the queue`);
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const problem =
        a.stop === 'cancel'
          ? new HttpError(499, 'cancelled', a.reason ?? 'cancelled')
          : toHttpError(err, log, job.data.meta);
      log(`job ${id} ${a.stop === 'cancel' ? 'cancelled' : `failed: ${problem.message}`}`);
      // Unrecoverable: a bad input or a cancel does not get better by running again.
      throw new UnrecoverableError(encodeFailure(problem));
    } finally {
      active.delete(id);
      await beat();
      await rm(output, { recursive: true, force: true });
    }
  };

  const worker = new Worker<QueuedJobData, QueuedResult>(QUEUE_NAME, processor, {
    connection: redis,
    prefix: KEY_PREFIX,
    concurrency,
    name,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: maxAttempts - 1,
  });
  // One line when Redis goes away and one when it is back; the failed reconnects in between are not news.
  const link = watchQueueLink(
    redis,
    o.url,
    log,
    `running jobs go on, and run again if it stays away longer than their lock (${lockMs / 1000} s)`,
  );
  worker.on('error', (err) => {
    if (link.up) log(`queue: ${err.message}`);
  });

  await beat();
  const heartbeat = setInterval(beat, HEARTBEAT_MS);
  await worker.waitUntilReady();
  log(
    `worker ${name}: taking jobs from ${redactQueueUrl(o.url)} (concurrency ${concurrency}, up to ${maxAttempts} attempts per job)`,
  );

  let closed: Promise<void> | undefined;
  const handBack = () => {
    for (const id of active.keys()) stopJob(id, 'handback', 'the worker is stopping');
  };
  return {
    name,
    handBack,
    close: ({ graceMs = 30_000 } = {}) =>
      (closed ??= (async () => {
        link.stop();
        // Redis away (now, or while a running job finishes) would make every command wait for it forever.
        const lost = link.up ? new Promise<'lost'>((r) => redis.once('close', () => r('lost'))) : 'lost';
        const timer = setTimeout(handBack, graceMs);
        const how = await Promise.race([worker.close().then(() => 'closed' as const), lost]);
        clearTimeout(timer);
        clearInterval(heartbeat);
        if (how === 'lost') {
          // Running jobs stop at their next step; their hand-back cannot be recorded, so their locks expire
          // and another worker takes them once Redis is back. The connections are dropped, not waited for.
          handBack();
          await Promise.all([...active.values()].map((job) => job.generating));
          subscriber.disconnect();
          redis.disconnect();
          log(`stopped without the job queue at ${redactQueueUrl(o.url)} (unreachable)`);
        } else {
          await redis.del(keys.worker(name)).catch(() => {});
          await subscriber.quit().catch(() => subscriber.disconnect());
          await redis.quit().catch(() => redis.disconnect());
        }
        await backend.close();
        await rm(workDir, { recursive: true, force: true });
      })()),
  };
}

/**
 * Publishes a job's progress in order: every denoising step and the start of each stage carry a log line
 * (like the embedded queue's), other updates at most every 250 ms.
 */
function progressPublisher(job: BullJob<QueuedJobData>, worker: string) {
  let chain: Promise<unknown> = Promise.resolve();
  let last: QueuedProgress = { fraction: 0 };
  let lastSent = 0;
  const send = (p: QueuedProgress) => {
    last = { ...last, ...p, worker };
    lastSent = Date.now();
    const update = { ...last };
    delete update.log;
    const payload: QueuedProgress = p.log ? { ...update, log: p.log } : update;
    chain = chain
      .then(async () => {
        if (p.log) await job.log(`${new Date().toISOString()} ${p.log}`);
        await job.updateProgress(payload as unknown as object);
      })
      .catch(() => {});
  };
  return {
    send,
    event(e: ProgressEvent) {
      const fraction = Math.max(last.fraction, overallFraction(e));
      const clip = e.totalClips ? { clip: e.clip, totalClips: e.totalClips } : {};
      const step =
        e.stage === 'denoise'
          ? { step: e.step ?? last.step, totalSteps: e.totalSteps ?? last.totalSteps, ...clip }
          : {};
      const clipLog = e.totalClips ? `clip ${e.clip}/${e.totalClips} ` : '';
      if (e.stage === 'denoise' && e.step && e.totalSteps)
        send({ fraction, stage: e.stage, ...step, log: `${clipLog}denoise step ${e.step}/${e.totalSteps}` });
      else if (e.stage !== 'denoise' && (e.fraction ?? 0) === 0)
        send({ fraction, stage: e.stage, log: e.message ? `${e.stage}: ${e.message}` : e.stage });
      else if (Date.now() - lastSent > 250) send({ fraction, stage: e.stage, ...step });
    },
    flush: () => chain,
  };
}
