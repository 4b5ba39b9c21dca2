/**
 * The API server's side of the shared queue (`svd serve --queue redis://…`): jobs go into a BullMQ queue
 * in Redis and `svd worker` processes run them. The server keeps a mirror of the jobs it knows — loaded
 * from Redis at start, then kept current by BullMQ's event stream (active, progress, completed, failed,
 * stalled) plus a periodic re-read — so every dialect reads a job exactly as with the embedded queue.
 * Nothing lives only here: a restarted server loads the same jobs back, results included.
 *
 * Results: the worker stores the video's bytes in Redis under their own key with the job's result TTL (no
 * shared filesystem between machines needed); the server copies them to a local file on first use so it
 * can answer byte ranges.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { GenerationRequestInput } from '../../request/schema.js';
import { HttpError } from '../http.js';
import {
  QueueFullError,
  ShuttingDownError,
  type Job,
  type JobFailure,
  type JobQueue,
  type QueueHealth,
} from '../jobs.js';
import {
  connectRedis,
  keys,
  KEY_PREFIX,
  openRedis,
  QUEUE_NAME,
  QUEUE_DOWN_MESSAGE,
  QueueUnavailableError,
  redactQueueUrl,
  watchQueueLink,
  type QueueLink,
} from './connection.js';
import { sharedQueueStatus, readWorkers, type WorkerInfo } from './status.js';
import {
  addJobLog,
  endJob,
  isFinal,
  meanMs,
  newJobEntry,
  notifyJob,
  subscribeToJob,
  type FinalStatus,
  type JobEntry,
} from './jobEntry.js';
import { decodeFailure, encodeJobData, type QueuedJobData, type QueuedProgress, type QueuedResult } from './wire.js';

export interface RedisQueueOptions {
  /** `redis://[:password@]host[:port][/db]`; never printed unredacted. */
  url: string;
  /** Jobs that may wait beyond what the live workers can take at once; more are refused (429). */
  maxQueued: number;
  /** How long a finished job (result, video bytes) is kept, in milliseconds. */
  resultTtlMs: number;
  /** Where the local copies of videos go (a fresh folder, removed on close). Default: the system temp dir. */
  workDir?: string;
  log?: (message: string) => void;
}

interface Entry extends JobEntry {
  /** Set when the client cancelled; the worker's answer (or the job's removal) ends the job. */
  cancelling?: JobFailure;
  /** False while `submit` is still adding the job to Redis (a re-read must not call it lost). */
  stored: boolean;
}

type BullState = 'waiting' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed';
const WAITING_STATES: BullState[] = ['waiting', 'prioritized', 'delayed'];
/** Log lines a restarted server reads back per job (as many as a job keeps). */
const MAX_LOGS = 200;

export class RedisJobQueue implements JobQueue {
  readonly mode = 'redis';
  private readonly jobs = new Map<string, Entry>();
  private readonly downloads = new Map<string, Promise<string>>();
  private readonly queue: Queue;
  private readonly link: QueueLink;
  private events!: QueueEvents;
  private eventsRedis!: Redis;
  private workers: WorkerInfo[] = [];
  private readonly recentMs: number[] = [];
  private chain: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private closed = false;
  private cacheDir: Promise<string> | undefined;
  /** Local copies of videos, fetched from Redis on first use. */
  private readonly cacheDirName: string;

  /** Connects, loads every job Redis holds and follows the queue's events. Throws QueueUnavailableError. */
  static async open(o: RedisQueueOptions): Promise<RedisJobQueue> {
    const redis = await openRedis(o.url, 'server', { failFast: true });
    const q = new RedisJobQueue(o, redis);
    try {
      await q.start();
    } catch (err) {
      await q.close();
      throw err instanceof QueueUnavailableError
        ? err
        : new QueueUnavailableError(`cannot use the job queue at ${redactQueueUrl(o.url)}: ${(err as Error).message}`);
    }
    return q;
  }

  private constructor(
    private readonly o: RedisQueueOptions,
    private readonly redis: Redis,
  ) {
    this.cacheDirName = join(o.workDir ?? tmpdir(), `svd-serve-queue-${process.pid}-${randomUUID().slice(0, 8)}`);
    this.queue = new Queue(QUEUE_NAME, { connection: redis, prefix: KEY_PREFIX });
    this.queue.on('error', () => {});
    this.link = watchQueueLink(redis, o.url, o.log, 'new jobs are answered 503 until it is back', () =>
      this.serially(() => this.resendCancels()),
    );
  }

  private async start(): Promise<void> {
    // Follow events first, then load: a change between the two is seen twice (harmless), never missed.
    this.eventsRedis = connectRedis(this.o.url, 'server-events');
    this.events = new QueueEvents(QUEUE_NAME, { connection: this.eventsRedis, prefix: KEY_PREFIX });
    this.events.on('error', () => {});
    await this.events.waitUntilReady();
    const on = (name: string, handler: (args: Record<string, unknown>) => Promise<void> | void) =>
      this.events.on(name as 'active', (args: unknown) =>
        this.serially(() => handler(args as Record<string, unknown>)),
      );
    on('active', ({ jobId }) => this.onActive(String(jobId)));
    on('progress', ({ jobId, data }) => this.onProgress(String(jobId), data as QueuedProgress));
    on('completed', ({ jobId, returnvalue }) => this.onCompleted(String(jobId), returnvalue));
    on('failed', ({ jobId, failedReason }) => this.onFailed(String(jobId), String(failedReason ?? '')));
    on('stalled', ({ jobId }) =>
      this.onRequeued(String(jobId), 'its worker stopped answering; back in the queue for another worker'),
    );
    on('waiting', ({ jobId, prev }) =>
      prev === 'active'
        ? this.onRequeued(String(jobId), 'handed back by its worker; back in the queue')
        : this.ensure(String(jobId)).then(() => {}),
    );
    on('removed', ({ jobId }) => this.onRemoved(String(jobId)));
    for (const state of [...WAITING_STATES, 'active', 'completed', 'failed'] as BullState[]) {
      for (const bj of await this.queue.getJobs([state], 0, -1, true)) await this.adopt(bj, state);
    }
    await this.refresh();
    this.timer = setInterval(() => this.serially(() => this.refresh()), 2000);
    this.timer.unref();
  }

  async submit(request: GenerationRequestInput, meta: Record<string, unknown> = {}): Promise<Job> {
    if (this.closed) throw new ShuttingDownError();
    // While Redis is away, answer at once rather than after ioredis's retries.
    if (!this.link.up) throw new QueueUnavailableError(QUEUE_DOWN_MESSAGE);
    const queued = this.list().filter((j) => j.status === 'queued').length;
    const running = this.list().filter((j) => j.status === 'running').length;
    const freeSlots = Math.max(0, this.workers.reduce((n, w) => n + w.concurrency, 0) - running);
    if (queued >= this.o.maxQueued + freeSlots) throw new QueueFullError(this.retryAfterSeconds(), this.o.maxQueued);
    const ttlSeconds = Math.ceil(this.o.resultTtlMs / 1000);
    const data = encodeJobData(request, meta, ttlSeconds);
    const job = this.entry(randomUUID(), meta, data.createdAt);
    job.stored = false;
    addJobLog(job, 'queued');
    try {
      await this.queue.add('generate', data, {
        jobId: job.id,
        removeOnComplete: { age: ttlSeconds },
        removeOnFail: { age: ttlSeconds },
      });
      job.stored = true;
    } catch (err) {
      this.jobs.delete(job.id);
      this.o.log?.(`job ${job.id} not queued: ${redactQueueUrl(this.o.url)}: ${(err as Error).message}`);
      throw new QueueUnavailableError(QUEUE_DOWN_MESSAGE);
    }
    this.o.log?.(`job ${job.id} queued in Redis (${String(meta.dialect ?? 'api')}, ${queued + 1} waiting)`);
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  list(): Job[] {
    return [...this.jobs.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  byFileToken(token: string): Job | undefined {
    for (const job of this.jobs.values()) if (job.result?.fileToken === token) return job;
    return undefined;
  }

  position(job: Job): number {
    if (job.status !== 'queued') return -1;
    return this.list()
      .filter((j) => j.status === 'queued')
      .indexOf(job);
  }

  subscribe(job: Job, listener: (job: Job) => void): () => void {
    return subscribeToJob(job, listener);
  }

  /**
   * Marks the job cancelled in Redis (a key the worker checks when it starts the job) and tells the
   * workers (pub/sub), so a running job stops between steps; a waiting one is removed from the queue.
   * Asked while Redis is away, the cancel is sent once it is back.
   */
  cancel(id: string, reason = 'cancelled by the client'): 'cancelled' | 'already_done' | 'not_found' {
    const job = this.jobs.get(id);
    if (!job || isFinal(job.status)) return job ? 'already_done' : 'not_found';
    job.cancelling = { code: 'cancelled', message: reason };
    addJobLog(job, 'cancellation requested');
    if (!this.link.up) this.o.log?.(`job ${id}: cancel will be sent when the job queue is back`);
    else
      void this.sendCancel(job, reason).catch((err) =>
        this.o.log?.(`job ${id}: cancel did not reach Redis: ${(err as Error).message}`),
      );
    return 'cancelled';
  }

  /** Cancels clients asked for while Redis was away, sent now that it is back. */
  private async resendCancels(): Promise<void> {
    for (const job of [...this.jobs.values()]) {
      if (!job.cancelling || isFinal(job.status)) continue;
      await this.sendCancel(job, job.cancelling.message).catch((err) =>
        this.o.log?.(`job ${job.id}: cancel did not reach Redis: ${(err as Error).message}`),
      );
    }
  }

  private async sendCancel(job: Entry, reason: string): Promise<void> {
    await this.redis.set(keys.cancel(job.id), reason, 'EX', Math.ceil(this.o.resultTtlMs / 1000));
    await this.redis.publish(keys.cancelChannel, JSON.stringify({ jobId: job.id, reason }));
    if (job.status !== 'queued') return;
    // A waiting job has no worker to tell; remove it (refused when a worker has just taken it: then the key stops it).
    const bj = await this.queue.getJob(job.id);
    const removed = await bj?.remove().then(
      () => true,
      () => false,
    );
    if (removed) this.serially(() => this.end(job, 'cancelled', job.cancelling));
  }

  async delete(id: string): Promise<boolean> {
    const job = this.jobs.get(id);
    if (!job) return false;
    if (job.status === 'queued' || job.status === 'running') {
      this.cancel(id, 'deleted by the client');
      // A worker stops between steps; one that is gone is not waited for long.
      await Promise.race([job.done, new Promise((r) => setTimeout(r, 15_000).unref())]);
    }
    await this.forget(job, true);
    return true;
  }

  async resultFile(job: Job): Promise<string> {
    if (!job.result) throw new HttpError(404, 'not_found', 'the job has no video');
    const path = job.result.path;
    if (existsSync(path)) return path;
    let pending = this.downloads.get(job.id);
    if (!pending) {
      pending = (async () => {
        const bytes = await this.redis.getBuffer(keys.result(job.id));
        if (!bytes) throw new HttpError(404, 'not_found', 'the video has expired or was deleted');
        await mkdir(await this.dir(), { recursive: true });
        const part = `${path}.${process.pid}.part`;
        await writeFile(part, bytes);
        await rename(part, path);
        return path;
      })().finally(() => this.downloads.delete(job.id));
      this.downloads.set(job.id, pending);
    }
    return pending;
  }

  async health(): Promise<QueueHealth> {
    const down = (): QueueHealth => ({
      mode: 'redis',
      ok: false,
      counts: { queued: 0, running: 0, completed: 0, failed: 0 },
      workers: [],
      message: QUEUE_DOWN_MESSAGE,
    });
    if (!this.link.up) return down();
    try {
      const s = await withTimeout(sharedQueueStatus(this.queue, this.redis), 3000);
      return {
        mode: 'redis',
        ok: true,
        counts: s.counts,
        workers: s.workers,
        meanJobMs: s.meanJobMs,
        ...(s.workers.length
          ? {}
          : { message: 'no worker is running: jobs wait until one starts (svd worker --queue …)' }),
      };
    } catch (err) {
      this.o.log?.(`health: ${redactQueueUrl(this.o.url)}: ${(err as Error).message}`);
      return down();
    }
  }

  /**
   * Stops taking jobs and stops following the queue. Jobs in Redis are untouched — waiting ones stay
   * queued, running ones finish on their workers — so a restarted server picks them all up again.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.chain;
    // With Redis away (or going away now) BullMQ's polite closes would wait for it: then the connections are
    // just dropped below.
    const lost = this.link.up ? new Promise((r) => this.redis.once('close', r)) : Promise.resolve();
    const polite = (async () => {
      await this.events?.close().catch(() => {});
      await this.queue.close().catch(() => {});
    })();
    await Promise.race([polite, lost]);
    this.link.stop();
    this.eventsRedis?.disconnect();
    this.redis.disconnect();
    for (const job of this.jobs.values()) clearTimeout(job.expiryTimer);
    this.jobs.clear();
    if (this.cacheDir) await rm(await this.cacheDir, { recursive: true, force: true });
  }

  // ---- following the queue ----

  /** Event handlers run one at a time, in the order the events came. */
  private serially(task: () => Promise<void> | void): void {
    this.chain = this.chain.then(task).catch((err) => this.o.log?.(`job queue: ${(err as Error).message}`));
  }

  /** The job we mirror, fetched from Redis when another server (or a previous run of this one) queued it. */
  private async ensure(id: string): Promise<Entry | undefined> {
    const known = this.jobs.get(id);
    if (known || this.closed) return known;
    // State first, then the job: its data is then at least as new as the state (a completed job has its result).
    const state = await this.queue.getJobState(id);
    const bj = await this.queue.getJob(id);
    return bj ? this.adopt(bj as BullJob, state) : undefined;
  }

  /** Brings our entry in line with the job as Redis has it (at start, for unknown jobs, and on re-reads). */
  private async adopt(bj: BullJob, state: BullState | string): Promise<Entry | undefined> {
    const data = bj.data as QueuedJobData;
    if (!bj.id || !data?.meta) return undefined;
    let job = this.jobs.get(bj.id);
    if (!job) {
      if ((state === 'completed' || state === 'failed') && (bj.finishedOn ?? 0) + this.o.resultTtlMs < Date.now())
        return undefined;
      job = this.entry(bj.id, data.meta, data.createdAt);
      const logs = await this.queue.getJobLogs(bj.id, -MAX_LOGS, -1).catch(() => ({ logs: [] as string[] }));
      for (const line of logs.logs) job.logs.push(parseLogLine(line));
    }
    if (isFinal(job.status)) return job;
    if (typeof bj.progress === 'object' && bj.progress)
      this.applyProgress(job, bj.progress as unknown as QueuedProgress, false);
    if (state === 'active') this.markRunning(job, bj.processedOn);
    else if (state === 'completed' && bj.returnvalue) this.complete(job, bj.returnvalue, bj.processedOn, bj.finishedOn);
    else if (state === 'failed') this.end(job, 'failed', decodeFailure(bj.failedReason, attemptsOf(bj)));
    else if (WAITING_STATES.includes(state as BullState)) job.status = 'queued';
    return job;
  }

  private async onActive(id: string): Promise<void> {
    const job = await this.ensure(id);
    if (job && !isFinal(job.status)) this.markRunning(job, Date.now());
  }

  private async onProgress(id: string, data: QueuedProgress): Promise<void> {
    const job = await this.ensure(id);
    if (!job || isFinal(job.status)) return;
    if (job.status === 'queued') this.markRunning(job, Date.now());
    this.applyProgress(job, data, true);
  }

  private async onCompleted(id: string, returnvalue: unknown): Promise<void> {
    const job = await this.ensure(id);
    if (job && !isFinal(job.status)) this.complete(job, returnvalue, job.startedAt, Date.now());
  }

  private async onFailed(id: string, reason: string): Promise<void> {
    const job = await this.ensure(id);
    if (!job || isFinal(job.status)) return;
    const bj = await this.queue.getJob(id).catch(() => undefined);
    const failure = decodeFailure(reason, attemptsOf(bj));
    this.end(
      job,
      failure.code === 'cancelled' ? 'cancelled' : 'failed',
      failure.code === 'cancelled' && job.cancelling ? job.cancelling : failure,
    );
  }

  private async onRequeued(id: string, why: string): Promise<void> {
    const job = await this.ensure(id);
    if (!job || isFinal(job.status)) return;
    job.status = 'queued';
    job.progress = { fraction: 0 };
    addJobLog(job, why);
    this.o.log?.(`job ${id}: ${why}`);
  }

  private onRemoved(id: string): void {
    const job = this.jobs.get(id);
    if (job && !isFinal(job.status))
      this.end(job, 'cancelled', job.cancelling ?? { code: 'cancelled', message: 'removed from the queue' });
  }

  /** Every 2 s: the live workers, and a re-read of unfinished jobs in case an event was missed. */
  private async refresh(): Promise<void> {
    if (this.closed) return;
    this.workers = await readWorkers(this.redis).catch(() => this.workers);
    for (const job of [...this.jobs.values()]) {
      if (isFinal(job.status) || !job.stored) continue;
      const state = await this.queue.getJobState(job.id).catch(() => null);
      const bj = state === null ? null : await this.queue.getJob(job.id).catch(() => null);
      if (bj === null) continue;
      if (!bj) {
        this.end(job, job.cancelling ? 'cancelled' : 'failed', job.cancelling ?? lostFailure());
        continue;
      }
      await this.adopt(bj as BullJob, state!);
    }
  }

  private markRunning(job: Entry, since?: number): void {
    if (job.status === 'running') return;
    job.status = 'running';
    job.startedAt = since ?? Date.now();
    addJobLog(job, 'started');
  }

  private applyProgress(job: Entry, p: QueuedProgress, live: boolean): void {
    job.progress = {
      fraction: Math.max(job.status === 'running' ? job.progress.fraction : 0, p.fraction ?? 0),
      stage: p.stage,
      step: p.step ?? job.progress.step,
      totalSteps: p.totalSteps ?? job.progress.totalSteps,
      ...(p.totalClips ? { clip: p.clip, totalClips: p.totalClips } : {}),
    };
    if (live && p.log) addJobLog(job, p.log);
    else notifyJob(job);
  }

  private complete(job: Entry, returnvalue: unknown, startedAt?: number, finishedAt?: number): void {
    const r = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as QueuedResult | null;
    if (!r?.fileToken) {
      this.end(job, 'failed', {
        code: 'internal_error',
        message: 'the worker returned no result',
        error: new HttpError(500, 'internal_error', 'the worker returned no result'),
      });
      return;
    }
    const { worker, ...result } = r;
    job.result = {
      ...result,
      path: join(this.cacheDirName, `${job.id}.mp4`),
      metadata: { ...result.metadata, worker },
    };
    job.progress = { ...job.progress, fraction: 1 };
    if (startedAt && finishedAt) {
      this.recentMs.push(finishedAt - startedAt);
      if (this.recentMs.length > 16) this.recentMs.shift();
    }
    addJobLog(job, `made by worker ${worker}`);
    this.end(job, 'completed', undefined, finishedAt);
  }

  private end(job: Entry, status: FinalStatus, failure?: JobFailure, at = Date.now()): void {
    if (isFinal(job.status)) return;
    this.o.log?.(`job ${job.id} ${failure ? `${status}: ${failure.message}` : status}`);
    endJob(job, status, failure, { at, ttlMs: this.o.resultTtlMs, forget: () => void this.forget(job, false) });
  }

  /** Drops our copy; with `everywhere`, also the job and its video in Redis (a client's delete). */
  private async forget(job: Entry, everywhere: boolean): Promise<void> {
    clearTimeout(job.expiryTimer);
    this.jobs.delete(job.id);
    if (job.result) await rm(job.result.path, { force: true });
    if (everywhere && !this.closed) {
      await this.redis.del(keys.result(job.id)).catch(() => {});
      await (await this.queue.getJob(job.id).catch(() => undefined))?.remove().catch(() => {});
    }
  }

  private entry(id: string, meta: Record<string, unknown>, createdAt: number): Entry {
    const job: Entry = { ...newJobEntry(id, meta, createdAt), stored: true };
    this.jobs.set(id, job);
    return job;
  }

  /** Made on first use, removed on close. */
  private dir(): Promise<string> {
    return (this.cacheDir ??= mkdir(this.cacheDirName, { recursive: true }).then(() => this.cacheDirName));
  }

  /** Seconds until a place is likely free: a recent job's mean time, shared among the live workers. */
  private retryAfterSeconds(): number {
    const mean = meanMs(this.recentMs, 10_000);
    return Math.max(1, Math.ceil(mean / Math.max(1, this.workers.length) / 1000));
  }
}

/** Starts a job had: for one given up because its workers kept dying, one per dead worker (BullMQ's stall count). */
function attemptsOf(bj: { stalledCounter?: number; attemptsStarted?: number } | undefined | null): number {
  return bj ? bj.stalledCounter || bj.attemptsStarted || 1 : 1;
}

function lostFailure(): JobFailure {
  const message = 'the job disappeared from the queue (Redis was flushed or the job was removed by hand)';
  return { code: 'job_lost', message, error: new HttpError(500, 'job_lost', message) };
}

/** Worker log lines are stored as `<ISO time> <message>`. */
function parseLogLine(line: string): { message: string; timestamp: string } {
  const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (.*)$/s.exec(line);
  return m ? { timestamp: m[1], message: m[2] } : { timestamp: new Date().toISOString(), message: line };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}
