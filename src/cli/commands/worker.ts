/**
 * `svd worker --queue redis://…`: takes jobs from the shared queue an `svd serve --queue …` fills, and runs
 * them here with the model kept loaded. SIGTERM/SIGINT: stop taking jobs, let the running one finish for
 * `--grace` seconds, then hand it back to the queue; a second signal hands it back at once.
 */
import type { Command } from 'commander';
import { InvalidRequestError } from '../../errors.js';
import { DEVICE_PATTERN } from '../../request/schema.js';
import { checkQueueUrl } from '../../server/queue/connection.js';
import { startQueueWorker } from '../../server/queue/worker.js';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run jobs from a shared Redis queue (svd serve --queue) on this machine; one process per GPU')
    .option('--queue <url>', 'redis://[:password@]host[:port][/db]; default: $SVD_QUEUE_URL')
    .option('--model <ref>', 'model (registry name, directory or repo id); default: the embedded tiny model')
    .option('--device <dev>', 'auto | cpu | cuda | cuda:N | webgpu', 'auto')
    .option('--concurrency <n>', 'jobs this process runs at once', '1')
    .option('--max-attempts <n>', 'starts a job gets when its workers keep dying (kill -9, crash) before it fails', '3')
    .option('--stalled-seconds <s>', 'how soon another worker takes over the job of a worker that died', '30')
    .option('--grace <s>', 'on SIGTERM, how long a running job may finish before it goes back to the queue', '30')
    .option('--name <name>', 'name in `svd queue status` and logs (default: <host>-<pid>)')
    .action(async (opts: Record<string, string | undefined>) => {
      const url = opts.queue ?? process.env.SVD_QUEUE_URL;
      if (!url)
        throw new InvalidRequestError([
          { field: '--queue', message: 'is required (or set SVD_QUEUE_URL), e.g. redis://127.0.0.1:6379' },
        ]);
      checkQueueUrl(url, '--queue');
      const int = (flag: string, v: string | undefined, min: number, max: number) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < min || n > max)
          throw new InvalidRequestError([
            { field: flag, value: v, message: `must be a whole number from ${min} to ${max}` },
          ]);
        return n;
      };
      const device = String(opts.device);
      if (!DEVICE_PATTERN.test(device))
        throw new InvalidRequestError([
          { field: '--device', value: device, message: 'must be auto, cpu, cuda, cuda:N or webgpu' },
        ]);
      const name = opts.name;
      if (name !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
        throw new InvalidRequestError([
          { field: '--name', value: name, message: 'must be 1-64 letters, digits, dots, dashes or underscores' },
        ]);
      }
      const worker = await startQueueWorker({
        url,
        model: opts.model,
        device,
        name,
        concurrency: int('--concurrency', opts.concurrency, 1, 64),
        maxAttempts: int('--max-attempts', opts.maxAttempts, 1, 100),
        stalledSeconds: int('--stalled-seconds', opts.stalledSeconds, 1, 3600),
        log: (line) => process.stderr.write(`svd worker: ${line}\n`),
      });
      const graceMs = int('--grace', opts.grace, 0, 86_400) * 1000;
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals === 1) {
            process.stderr.write(
              `svd worker: ${signal}: taking no more jobs; a running job may finish for ${graceMs / 1000} s (signal again to hand it back now)\n`,
            );
            void worker.close({ graceMs }).then(resolve, resolve);
          } else if (signals === 2) {
            process.stderr.write(`svd worker: ${signal}: handing running jobs back to the queue\n`);
            void worker.close({ graceMs: 0 });
            void worker.handBack();
          } else {
            process.exit(signal === 'SIGINT' ? 130 : 143);
          }
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      process.stderr.write('svd worker: stopped\n');
    });
}
