/** `svd queue status`: jobs per state, the workers alive and the mean time per job of a shared queue. */
import type { Command } from 'commander';
import { Queue } from 'bullmq';
import { InvalidRequestError } from '../../errors.js';
import { checkQueueUrl, KEY_PREFIX, openRedis, QUEUE_NAME, redactQueueUrl } from '../../server/queue/connection.js';
import { sharedQueueStatus, type SharedQueueStatus } from '../../server/queue/status.js';

export function registerQueue(program: Command): void {
  const queue = program.command('queue').description('the shared job queue of svd serve --queue / svd worker');
  queue
    .command('status')
    .description('jobs per state, live workers and mean time per job')
    .option('--queue <url>', 'redis://[:password@]host[:port][/db]; default: $SVD_QUEUE_URL')
    .option('--json', 'print JSON')
    .action(async (opts: { queue?: string; json?: boolean }) => {
      const url = opts.queue ?? process.env.SVD_QUEUE_URL;
      if (!url)
        throw new InvalidRequestError([
          { field: '--queue', message: 'is required (or set SVD_QUEUE_URL), e.g. redis://127.0.0.1:6379' },
        ]);
      checkQueueUrl(url, '--queue');
      const redis = await openRedis(url, 'status', { failFast: true });
      const q = new Queue(QUEUE_NAME, { connection: redis, prefix: KEY_PREFIX });
      try {
        const s = await sharedQueueStatus(q, redis);
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ queue: redactQueueUrl(url), ...s }, null, 2)}\n`
            : formatStatus(redactQueueUrl(url), s),
        );
      } finally {
        await q.close().catch(() => {});
        redis.disconnect();
      }
    });
}

export function formatStatus(where: string, s: SharedQueueStatus): string {
  const c = s.counts;
  const lines = [
    `queue ${where}`,
    `jobs: ${c.queued} queued, ${c.running} running, ${c.completed} completed, ${c.failed} failed (finished jobs are kept for their result TTL)`,
    `mean time per job: ${s.meanJobMs === undefined ? '- (none finished yet)' : `${(s.meanJobMs / 1000).toFixed(2)} s`}`,
    `workers: ${s.workers.length}${s.workers.length ? '' : ' (jobs wait until one starts: svd worker --queue …)'}`,
  ];
  for (const w of s.workers) {
    const mean = w.meanJobMs === undefined ? '-' : `${(w.meanJobMs / 1000).toFixed(2)} s/job`;
    lines.push(
      `  ${w.name}  ${w.host} pid ${w.pid}  model ${w.model}  device ${w.device}  ` +
        `busy ${w.active.length}/${w.concurrency}  done ${w.jobsDone}  ${mean}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
