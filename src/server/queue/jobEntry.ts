/**
 * What both job queues (the embedded one in `../jobs.ts`, the Redis-backed one in `./redisQueue.ts`) do the
 * same way with one job: make its record, tell its subscribers about each change, keep its log, and end it
 * (final state, expiry timer, `done` settled). Where the two differ — who runs the job and where its state
 * lives — stays in each queue.
 */
import type { Job, JobFailure, JobStatus } from '../jobs.js';

/** A job as a queue keeps it: the Job every dialect reads, plus its subscribers and the end of its life. */
export interface JobEntry extends Job {
  /** Settles `done`. */
  finish: () => void;
  listeners: Set<(job: Job) => void>;
  /** Deletes the finished job (result, file) once its time is up. */
  expiryTimer?: NodeJS.Timeout;
}

export type FinalStatus = Exclude<JobStatus, 'queued' | 'running'>;

/** Most log lines kept per job (the oldest are dropped). */
const MAX_LOGS = 200;

/** A fresh, queued job record. */
export function newJobEntry(id: string, meta: Record<string, unknown>, createdAt = Date.now()): JobEntry {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    id,
    meta,
    createdAt,
    status: 'queued',
    progress: { fraction: 0 },
    logs: [],
    done,
    finish,
    listeners: new Set(),
  };
}

export function isFinal(status: JobStatus): status is FinalStatus {
  return status !== 'queued' && status !== 'running';
}

/** Calls `listener` after every change of the job until it ends; returns the unsubscribe function. */
export function subscribeToJob(job: Job, listener: (job: Job) => void): () => void {
  const entry = job as JobEntry;
  entry.listeners.add(listener);
  return () => entry.listeners.delete(listener);
}

export function notifyJob(job: JobEntry): void {
  for (const l of job.listeners) l(job);
}

/** Adds a timestamped line to the job's log (the newest MAX_LOGS are kept) and tells its subscribers. */
export function addJobLog(job: JobEntry, message: string, timestamp = new Date().toISOString()): void {
  job.logs.push({ message, timestamp });
  if (job.logs.length > MAX_LOGS) job.logs.splice(0, job.logs.length - MAX_LOGS);
  notifyJob(job);
}

/**
 * Puts the job in its final state at `at`, logs it, tells its subscribers one last time, then lets them go
 * and settles `done`; `forget` runs once `ttlMs` have passed since `at`.
 */
export function endJob(
  job: JobEntry,
  status: FinalStatus,
  failure: JobFailure | undefined,
  o: { at?: number; ttlMs: number; forget: () => void },
): void {
  const at = o.at ?? Date.now();
  job.status = status;
  job.failure = failure;
  job.completedAt = at;
  job.expiresAt = at + o.ttlMs;
  addJobLog(job, failure ? `${status}: ${failure.message}` : status);
  job.expiryTimer = setTimeout(o.forget, Math.max(0, job.expiresAt - Date.now()));
  job.expiryTimer.unref();
  job.listeners.clear();
  job.finish();
}

/** The mean of recent job durations (ms), or `fallback` before any job finished. */
export function meanMs(recent: readonly number[], fallback: number): number {
  return recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : fallback;
}
