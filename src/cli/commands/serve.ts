/**
 * `svd serve`: a local HTTP server speaking Segmind's, fal's and OpenAI-style video APIs, with a web page.
 * Runs until SIGINT/SIGTERM, then stops accepting, ends the running job cleanly and exits; a second signal
 * exits at once.
 */
import { parseMemorySize } from '../../pipeline/admission.js';
import type { Command } from 'commander';
import { InvalidRequestError } from '../../errors.js';
import { startServer } from '../../server/index.js';
import type { ServerOptions } from '../../server/options.js';
import type { BackendName } from '../../backends/select.js';
import { redactQueueUrl } from '../../server/queue/connection.js';

const BACKENDS = ['local', 'segmind', 'fal', 'openai', 'voltage'] as const;

const FLAG_OF: Record<string, string> = {
  host: '--host',
  port: '--port',
  queueSize: '--queue-size',
  resultTtlSeconds: '--result-ttl',
  maxBodyBytes: '--max-body-bytes',
  maxMemory: '--max-memory',
  maxImageBytes: '--max-image-bytes',
  maxImagePixels: '--max-image-pixels',
  'defaults.steps': '--steps',
  publicUrl: '--public-url',
  backend: '--backend',
  queueUrl: '--queue',
};

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the Segmind, fal and OpenAI-style video APIs and a web page from this machine')
    .option('--port <n>', 'TCP port (0: any free port)', '8080')
    .option('--host <addr>', 'interface to listen on; anything but loopback needs --api-key', '127.0.0.1')
    .option(
      '--api-key <key>',
      'key clients must send (x-api-key, Authorization: Key/Bearer); default: $SVD_SERVE_API_KEY; none: loopback only',
    )
    .option(
      '--model <ref>',
      'model of the local backend (registry name, directory or repo id); default: the embedded tiny model',
    )
    .option('--device <dev>', 'auto | cpu | cuda | cuda:N | webgpu (local backend)', 'auto')
    .option(
      '--backend <name>',
      `who makes the videos: ${BACKENDS.join(' | ')} (hosted ones read their key from the environment)`,
      'local',
    )
    .option('--steps <n>', 'denoising steps when a request does not say (default 25)')
    .option(
      '--queue <url>',
      'a shared Redis queue (redis://[:password@]host[:port][/db]) that `svd worker` processes take jobs from; ' +
        'default: $SVD_QUEUE_URL, else this process runs the jobs',
    )
    .option('--queue-size <n>', 'jobs that may wait behind the running one; more get 429', '16')
    .option('--result-ttl <seconds>', 'how long finished videos are kept', '3600')
    .option(
      '--allow-private-urls',
      "let image URLs (and a hosted backend's result URLs) point at loopback, private and link-local addresses",
    )
    .option('--max-image-bytes <n>', 'largest input image, inline or downloaded', String(20 * 1024 * 1024))
    .option(
      '--max-image-pixels <n>',
      'largest input image in pixels (width × height, read before decoding)',
      String(4096 * 4096),
    )
    .option('--max-body-bytes <n>', 'largest request body (413 beyond)', String(32 * 1024 * 1024))
    .option(
      '--max-memory <size>',
      'memory a job may use (e.g. 16G); bigger requests get 422 naming the fields (default: 75% of RAM)',
    )
    .option('--public-url <url>', 'base of the links handed out, when clients reach the server through a proxy')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const backend = String(opts.backend);
      if (!(BACKENDS as readonly string[]).includes(backend)) {
        throw new InvalidRequestError([
          { field: '--backend', value: backend, message: `must be one of ${BACKENDS.join(', ')}` },
        ]);
      }
      const num = (v: unknown) => (v === undefined ? undefined : Number(v));
      const options: ServerOptions = {
        port: num(opts.port),
        host: String(opts.host),
        apiKey: (opts.apiKey as string | undefined) ?? process.env.SVD_SERVE_API_KEY,
        model: opts.model as string | undefined,
        device: String(opts.device),
        backend: backend as BackendName,
        queueUrl: (opts.queue as string | undefined) ?? (process.env.SVD_QUEUE_URL || undefined),
        queueSize: num(opts.queueSize),
        resultTtlSeconds: num(opts.resultTtl),
        allowPrivateUrls: Boolean(opts.allowPrivateUrls),
        remote: { allowPrivateUrls: Boolean(opts.allowPrivateUrls) },
        maxBodyBytes: num(opts.maxBodyBytes),
        maxImageBytes: num(opts.maxImageBytes),
        maxImagePixels: num(opts.maxImagePixels),
        ...(opts.maxMemory === undefined ? {} : { maxMemory: parseMemorySize(String(opts.maxMemory), '--max-memory') }),
        defaults: opts.steps === undefined ? {} : { steps: num(opts.steps) },
        publicUrl: opts.publicUrl as string | undefined,
        log: (line) => process.stderr.write(`${line}\n`),
      };
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer(options);
      } catch (err) {
        if (err instanceof InvalidRequestError) {
          throw new InvalidRequestError(
            err.issues.map((i) => ({
              ...i,
              field: FLAG_OF[i.field] ?? i.field,
              message:
                i.field === 'host'
                  ? 'without --api-key the server only listens on loopback (127.0.0.1, ::1, localhost); ' +
                    'pass --api-key KEY (or set SVD_SERVE_API_KEY) to listen here'
                  : i.message,
            })),
          );
        }
        throw err;
      }
      const runner = options.queueUrl
        ? `jobs queued in ${redactQueueUrl(options.queueUrl)} for svd worker processes`
        : `backend ${backend}${options.model ? `, model ${options.model}` : ''}`;
      process.stderr.write(`svd serve: listening on ${server.url} (${runner})\n`);
      process.stderr.write(
        server.authRequired
          ? 'svd serve: API key required on every API route\n'
          : 'svd serve: no API key: listening on loopback only; anyone on this machine can use it\n',
      );
      process.stderr.write(
        `svd serve: web page at ${server.url}/ ; Segmind ${server.url}/v1/svd ; fal ${server.url}/fal-ai/svd ; OpenAI ${server.url}/v1/videos\n`,
      );
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: NodeJS.Signals) => {
          if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
          stopping = true;
          process.stderr.write(`svd serve: ${signal}: shutting down (signal again to exit at once)\n`);
          void server.close().then(resolve, resolve);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      process.stderr.write('svd serve: stopped\n');
    });
}
