/**
 * What the shared queue looks like right now: jobs per state (BullMQ's counts), the workers alive (each
 * refreshes a heartbeat key that expires when it stops) and the mean time of recent jobs. Used by
 * `svd queue status` and the API server's health endpoint.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { keys } from './connection.js';

/** One worker process as its heartbeat describes it. */
export interface WorkerInfo {
  name: string;
  host: string;
  pid: number;
  model: string;
  device: string;
  concurrency: number;
  /** Ids of the jobs it is running now. */
  active: string[];
  jobsDone: number;
  /** Mean wall time of its recent jobs, in milliseconds. */
  meanJobMs?: number;
  startedAt: number;
  lastSeen: number;
}

export interface SharedQueueStatus {
  counts: { queued: number; running: number; completed: number; failed: number };
  workers: WorkerInfo[];
  meanJobMs?: number;
}

/** Live workers, by name. A worker that stopped (or was killed) drops out when its heartbeat expires. */
export async function readWorkers(redis: Redis): Promise<WorkerInfo[]> {
  const names: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.workerPattern, 'COUNT', 200);
    cursor = next;
    names.push(...batch);
  } while (cursor !== '0');
  if (!names.length) return [];
  const values = await redis.mget(...names);
  const workers: WorkerInfo[] = [];
  for (const v of values) {
    try {
      if (v) workers.push(JSON.parse(v) as WorkerInfo);
    } catch {
      // a malformed heartbeat is skipped, not fatal
    }
  }
  return workers.sort((a, b) => a.name.localeCompare(b.name));
}

/** Counts per state, live workers and the mean time of the last (up to) 50 completed jobs. */
export async function sharedQueueStatus(queue: Queue, redis: Redis): Promise<SharedQueueStatus> {
  const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  const recent = await queue.getJobs(['completed'], 0, 49, false);
  const times = recent.filter((j) => j.finishedOn && j.processedOn).map((j) => j.finishedOn! - j.processedOn!);
  return {
    counts: {
      queued: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
      running: c.active ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
    },
    workers: await readWorkers(redis),
    meanJobMs: times.length ? Math.round(times.reduce((a, b) => a + b, 0) / times.length) : undefined,
  };
}
