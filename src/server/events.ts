/** Server-Sent Events of a job's state, for fal's `…/status/stream` and our page. */
import type { ServerResponse } from 'node:http';
import type { Ctx } from './context.js';
import type { Job } from './jobs.js';

/** Writes `data: <json>` on every change of the job, and once more when it ends; then closes. */
export async function streamEvents(ctx: Ctx, job: Job, snapshot: () => unknown): Promise<void> {
  const res: ServerResponse = ctx.res;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-fal-request-id': job.id,
  });
  const write = () => res.write(`data: ${JSON.stringify(snapshot())}\n\n`);
  write();
  const unsubscribe = ctx.state.queue.subscribe(job, write);
  // A comment line now and then keeps proxies from closing a quiet stream (a job can wait long in the queue).
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  const gone = new Promise<void>((resolve) => res.on('close', () => resolve()));
  await Promise.race([job.done, gone, ctx.state.closing]);
  clearInterval(ping);
  unsubscribe();
  if (!res.writableEnded) {
    write();
    res.end();
  }
}
