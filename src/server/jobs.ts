/**
 * The one job queue behind every dialect (`JobQueue`), and its default, in-process form (`EmbeddedQueue`):
 * jobs run one at a time (one GPU), first in first out; a full queue is refused with a retry hint; each
 * job's progress, logs and result are what every dialect's status reports; results are kept for a while,
 * then their files are deleted. Ids and file tokens are random and server-made; a client only ever names a
 * job by looking it up. The Redis-backed form for several workers is `src/server/queue/redisQueue.ts`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, SvdError } from '../errors.js';
import type { Backend, ProgressEvent } from '../backends/types.js';
import type { GenerationRequestInput } from '../request/schema.js';
import type { RemoteParamsInput } from '../backends/options.js';
import type { WorkerInfo } from './queue/status.js';
import {
  addJobLog,
  endJob,
  isFinal,
  meanMs,
  newJobEntry,
  notifyJob,
  subscribeToJob,
  type FinalStatus,
  type JobEntry as BaseEntry,
} from './queue/jobEntry.js';

export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobLog {
  message: string;
  timestamp: string;
}

export interface JobResult {
  /** Server-owned path of the video; never shown to clients. */
  path: string;
  /** Random capability token of the file URL `/files/<token>/<fileName>`. */
  fileToken: string;
  fileName: string;
  contentType: string;
  size: number;
  seed: number;
  metadata: Record<string, unknown>;
}

export interface JobFailure {
  /** Stable code: the SvdError code, `cancelled`, `shutdown` or `internal_error`. */
  code: string;
  message: string;
  /** The error itself, so dialects can report field issues (InvalidRequestError) in their own shape. */
  error?: unknown;
}

/** Overall 0..1 and the latest denoising step (and clip, when clips are chained). */
export interface JobProgress {
  fraction: number;
  stage?: ProgressEvent['stage'];
  step?: number;
  totalSteps?: number;
  clip?: number;
  totalClips?: number;
}

export interface Job {
  readonly id: string;
  /** Dialect-specific facts a status report echoes (fal endpoint, OpenAI model and prompt, ...). */
  readonly meta: Record<string, unknown>;
  readonly createdAt: number;
  startedAt?: number;
  completedAt?: number;
  /** When the result and its file are deleted (set once the job ends). */
  expiresAt?: number;
  status: JobStatus;
  progress: JobProgress;
  logs: JobLog[];
  result?: JobResult;
  failure?: JobFailure;
  /** Settles (never rejects) when the job reaches a final state. */
  readonly done: Promise<void>;
}

interface JobEntry extends BaseEntry {
  /** Dropped when the job ends, so finished jobs do not keep their input images in memory. */
  request?: GenerationRequestInput;
  remote?: RemoteParamsInput;
  controller: AbortController;
}

/** What every dialect needs of a job queue, whether jobs run in this process or on workers through Redis. */
export interface JobQueue {
  readonly mode: 'embedded' | 'redis';
  /** Queues a job. Throws QueueFullError, ShuttingDownError or (Redis down) QueueUnavailableError. */
  submit(request: GenerationRequestInput, meta?: Record<string, unknown>, remote?: RemoteParamsInput): Promise<Job>;
  get(id: string): Job | undefined;
  /** Jobs, oldest first. */
  list(): Job[];
  /** The finished job whose video has this file token. */
  byFileToken(token: string): Job | undefined;
  /** 0 for the next job to run, -1 when not waiting. */
  position(job: Job): number;
  /** Calls `listener` after every change of the job until it ends; returns the unsubscribe function. */
  subscribe(job: Job, listener: (job: Job) => void): () => void;
  /** Cancels a waiting or running job (a running one stops between steps). */
  cancel(id: string, reason?: string): 'cancelled' | 'already_done' | 'not_found';
  /** Cancels the job if it still runs and forgets it, deleting its video. */
  delete(id: string): Promise<boolean>;
  /** A local file holding a completed job's video (a Redis-backed queue fetches it on first use). */
  resultFile(job: Job): Promise<string>;
  /** Counts per state and the workers behind the queue, for the health endpoint. */
  health(): Promise<QueueHealth>;
  /** Stops taking jobs; see each implementation for what happens to jobs in flight. */
  close(graceMs?: number): Promise<void>;
}

export interface QueueHealth {
  mode: 'embedded' | 'redis';
  /** False when the queue's store (Redis) cannot be reached. */
  ok: boolean;
  counts: { queued: number; running: number; completed: number; failed: number; cancelled?: number };
  /** Workers seen alive (Redis mode); the embedded queue runs its jobs itself. */
  workers: WorkerInfo[];
  /** Mean wall time of recent jobs, in milliseconds, when any finished. */
  meanJobMs?: number;
  message?: string;
}

export interface JobQueueOptions {
  backend: Backend;
  /** Jobs that may wait behind the running one; more are refused (429). */
  maxQueued: number;
  /** How long a finished job (result, file) is kept, in milliseconds. */
  resultTtlMs: number;
  /** Where a fresh folder for the videos is made (removed again on close). Default: the system temp dir. */
  workDir?: string;
  log?: (message: string) => void;
}

/** The queue is full: try again after `retryAfterSeconds`. */
export class QueueFullError extends SvdError {
  constructor(
    readonly retryAfterSeconds: number,
    readonly maxQueued: number,
  ) {
    super('queue_full', `the job queue is full (${maxQueued} waiting); try again in about ${retryAfterSeconds} s`);
  }
}

/** The server is shutting down and takes no new jobs. */
export class ShuttingDownError extends SvdError {
  constructor() {
    super('shutting_down', 'the server is shutting down');
  }
}

export class EmbeddedQueue implements JobQueue {
  readonly mode = 'embedded';
  private readonly jobs = new Map<string, JobEntry>();
  private readonly waiting: JobEntry[] = [];
  private running: JobEntry | undefined;
  private closed = false;
  private outDir: Promise<string> | undefined;
  private readonly recentMs: number[] = [];

  constructor(private readonly o: JobQueueOptions) {}

  /** Queues a job. Throws QueueFullError or ShuttingDownError. */
  async submit(
    request: GenerationRequestInput,
    meta: Record<string, unknown> = {},
    remote?: RemoteParamsInput,
  ): Promise<Job> {
    if (this.closed) throw new ShuttingDownError();
    // The running slot counts as free until the next pump, so a burst in one tick cannot overfill the queue.
    const capacity = this.o.maxQueued + (this.running ? 0 : 1);
    if (this.waiting.length >= capacity) throw new QueueFullError(this.retryAfterSeconds(), this.o.maxQueued);
    const job: JobEntry = { ...newJobEntry(randomUUID(), meta), request, remote, controller: new AbortController() };
    this.jobs.set(job.id, job);
    this.waiting.push(job);
    addJobLog(job, 'queued');
    this.o.log?.(`job ${job.id} queued (${String(meta.dialect ?? 'api')}, ${this.waiting.length} waiting)`);
    queueMicrotask(() => this.pump());
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** Jobs, oldest first. */
  list(): Job[] {
    return [...this.jobs.values()];
  }

  /** The finished job whose video has this file token. */
  byFileToken(token: string): Job | undefined {
    for (const job of this.jobs.values()) if (job.result?.fileToken === token) return job;
    return undefined;
  }

  /** 0 for the next job to run, -1 when not waiting. */
  position(job: Job): number {
    return this.waiting.indexOf(job as JobEntry);
  }

  /** Calls `listener` after every change of the job until it ends; returns the unsubscribe function. */
  subscribe(job: Job, listener: (job: Job) => void): () => void {
    return subscribeToJob(job, listener);
  }

  /** Cancels a waiting or running job. */
  cancel(id: string, reason = 'cancelled by the client'): 'cancelled' | 'already_done' | 'not_found' {
    const job = this.jobs.get(id);
    if (!job || isFinal(job.status)) return job ? 'already_done' : 'not_found';
    this.stop(job, 'cancelled', reason);
    return 'cancelled';
  }

  /** Cancels the job if it still runs and forgets it, deleting its file. */
  async delete(id: string): Promise<boolean> {
    const job = this.jobs.get(id);
    if (!job) return false;
    if (job.status === 'queued' || job.status === 'running') this.stop(job, 'cancelled', 'deleted by the client');
    await job.done;
    await this.forget(job);
    return true;
  }

  async resultFile(job: Job): Promise<string> {
    if (!job.result) throw new Error(`job ${job.id} has no result`);
    return job.result.path;
  }

  async health(): Promise<QueueHealth> {
    const counts = { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const job of this.jobs.values())
      counts[job.status === 'queued' ? 'queued' : job.status === 'running' ? 'running' : job.status]++;
    const mean = this.recentMs.length ? Math.round(meanMs(this.recentMs, 0)) : undefined;
    return { mode: 'embedded', ok: !this.closed, counts, workers: [], meanJobMs: mean };
  }

  /**
   * Stops taking jobs, cancels waiting ones, lets the running one finish for up to `graceMs`, then aborts it,
   * waits for it to stop and deletes every file this queue wrote.
   */
  async close(graceMs = 0): Promise<void> {
    this.closed = true;
    for (const job of [...this.waiting]) this.stop(job, 'cancelled', 'the server is shutting down', 'shutdown');
    const running = this.running;
    if (running) {
      if (graceMs > 0) await Promise.race([running.done, new Promise((r) => setTimeout(r, graceMs).unref())]);
      if (running.status === 'running') this.stop(running, 'cancelled', 'the server is shutting down', 'shutdown');
      // Backends stop between steps; one that does not answer the abort within 30 s is left behind.
      const stuck = await Promise.race([
        running.done.then(() => false),
        new Promise<boolean>((r) => setTimeout(r, 30_000, true).unref()),
      ]);
      if (stuck) this.o.log?.(`job ${running.id} did not stop within 30 s of being aborted; closing anyway`);
    }
    for (const job of this.jobs.values()) clearTimeout(job.expiryTimer);
    this.jobs.clear();
    if (this.outDir) await rm(await this.outDir, { recursive: true, force: true });
  }

  private stop(job: JobEntry, status: 'cancelled', message: string, code = 'cancelled'): void {
    if (job.status === 'queued') {
      this.waiting.splice(this.waiting.indexOf(job), 1);
      this.end(job, status, { code, message });
      return;
    }
    // A running job ends when the backend notices the abort (between steps) and its promise settles.
    job.failure = { code, message };
    job.controller.abort(new AbortError(message));
  }

  private pump(): void {
    if (this.running || this.closed) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.running = job;
    void this.run(job).finally(() => {
      this.running = undefined;
      this.pump();
    });
  }

  private async run(job: JobEntry): Promise<void> {
    job.status = 'running';
    job.startedAt = Date.now();
    addJobLog(job, 'started');
    this.o.log?.(`job ${job.id} started (${String(job.meta.dialect ?? 'api')}, ${this.waiting.length} waiting)`);
    const t0 = performance.now();
    try {
      const output = join(await this.dir(), `${job.id}.mp4`);
      const result = await this.o.backend.generate(
        { ...job.request!, output, format: 'mp4' },
        {
          signal: job.controller.signal,
          onProgress: (e) => this.onProgress(job, e),
          remote: job.remote,
        },
      );
      if (job.controller.signal.aborted) throw new AbortError();
      const size = (await stat(result.outputPath)).size;
      job.result = {
        path: result.outputPath,
        fileToken: randomBytes(16).toString('hex'),
        fileName: `${job.id.slice(0, 8)}.mp4`,
        contentType: 'video/mp4',
        size,
        seed: result.seed,
        metadata: result.metadata,
      };
      job.progress = { ...job.progress, fraction: 1 };
      this.recentMs.push(performance.now() - t0);
      if (this.recentMs.length > 8) this.recentMs.shift();
      this.end(job, 'completed');
    } catch (err) {
      await this.removeFiles(job);
      if (job.controller.signal.aborted) {
        this.end(job, 'cancelled', job.failure ?? { code: 'cancelled', message: 'cancelled' });
      } else {
        const code = err instanceof SvdError ? err.code : 'internal_error';
        const message =
          err instanceof SvdError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
        this.o.log?.(`job ${job.id} failed: ${message}`);
        this.end(job, 'failed', { code, message, error: err });
      }
    }
  }

  private onProgress(job: JobEntry, e: ProgressEvent): void {
    const fraction = Math.max(job.progress.fraction, overallFraction(e));
    job.progress = {
      fraction,
      stage: e.stage,
      step: e.stage === 'denoise' ? e.step : job.progress.step,
      totalSteps: e.stage === 'denoise' ? e.totalSteps : job.progress.totalSteps,
      ...(e.totalClips ? { clip: e.clip, totalClips: e.totalClips } : {}),
    };
    const clip = e.totalClips ? `clip ${e.clip}/${e.totalClips} ` : '';
    const stepLog = `${clip}denoise step ${e.step}/${e.totalSteps}`;
    if (e.stage === 'denoise' && e.step && e.totalSteps) addJobLog(job, stepLog);
    else if (e.stage !== 'denoise' && (e.fraction ?? 0) === 0)
      addJobLog(job, e.message ? `${e.stage}: ${e.message}` : e.stage);
    else notifyJob(job);
  }

  private end(job: JobEntry, status: FinalStatus, failure?: JobFailure): void {
    job.request = undefined;
    job.remote = undefined;
    // failures were logged with their cause in `run`
    if (status !== 'failed') this.o.log?.(`job ${job.id} ${failure ? `${status}: ${failure.message}` : status}`);
    endJob(job, status, failure, { ttlMs: this.o.resultTtlMs, forget: () => void this.forget(job) });
  }

  private async forget(job: JobEntry): Promise<void> {
    clearTimeout(job.expiryTimer);
    this.jobs.delete(job.id);
    await this.removeFiles(job);
    job.result = undefined;
  }

  private async removeFiles(job: JobEntry): Promise<void> {
    if (!this.outDir) return;
    const dir = await this.outDir;
    const names = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(
      names.filter((n) => n.startsWith(job.id)).map((n) => rm(join(dir, n), { recursive: true, force: true })),
    );
  }

  private dir(): Promise<string> {
    return (this.outDir ??= mkdir(this.o.workDir ?? tmpdir(), { recursive: true }).then(() =>
      mkdtemp(join(this.o.workDir ?? tmpdir(), 'svd-serve-')),
    ));
  }

  /** Seconds until a place in the queue is likely free: the running job's expected remaining time. */
  private retryAfterSeconds(): number {
    const mean = meanMs(this.recentMs, 10_000);
    const elapsed = this.running?.startedAt ? Date.now() - this.running.startedAt : 0;
    return Math.max(1, Math.ceil((mean - elapsed) / 1000));
  }
}

/** One 0..1 over the whole job from a stage-local event: load/preprocess/encode 0–10 %, denoise 10–90 %, decode and video 90–100 %. */
export function overallFraction(e: ProgressEvent): number {
  const f = Math.min(1, Math.max(0, e.fraction ?? 0));
  switch (e.stage) {
    case 'queue':
      return 0;
    case 'load':
      return 0.02 * f;
    case 'preprocess':
      return 0.02 + 0.03 * f;
    case 'encode':
      return 0.05 + 0.05 * f;
    case 'denoise':
      return 0.1 + 0.8 * f;
    case 'decode':
      return 0.9 + 0.07 * f;
    case 'video':
      return 0.97 + 0.03 * f;
    case 'remote':
      return 0.05 + 0.85 * f;
    case 'download':
      return 0.9 + 0.1 * f;
    default:
      return 0;
  }
}
