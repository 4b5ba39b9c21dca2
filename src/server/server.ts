/**
 * `startServer`: one Node `http` server that speaks Segmind's, fal's, OpenAI's and VoltageGPU's dialects
 * plus our own page and API, in front of one job queue and one backend. Every request passes the same
 * gates in order — known route, Host (loopback names only when there is no key), same-origin writes,
 * API key — before its handler; errors come back in the route's dialect.
 */
import { localAdmission } from './admission.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBackend } from '../backends/index.js';
import { LocalBackend } from '../backends/local.js';
import type { Backend } from '../backends/types.js';
import { hostOfHeader, isCrossOriginWrite, isLoopbackHost, keyMatches, presentedKey } from './auth.js';
import type { Ctx, ServerState } from './context.js';
import { baseUrlOf, HttpError } from './http.js';
import { EmbeddedQueue, type JobQueue } from './jobs.js';
import { RedisJobQueue } from './queue/redisQueue.js';
import { resolveServerOptions, type ServerOptions } from './options.js';
import { toHttpError } from './problems.js';
import { matchRoute, type ErrorWriter, type Route } from './router.js';
import { UploadStore } from './uploads.js';
import { falRoutes } from './dialects/fal.js';
import { openaiRoutes } from './dialects/openai.js';
import { segmindRoutes } from './dialects/segmind.js';
import { voltageRoutes } from './dialects/voltage.js';
import { webError, webRoutes } from './dialects/web.js';

export interface RunningServer {
  /** `http://host:port`, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  host: string;
  /** Whether clients must present the API key. */
  authRequired: boolean;
  /**
   * Stops accepting, cancels waiting jobs, lets the running job finish for up to `graceMs` (default 0), then
   * aborts it; answers waiting clients (503), closes connections, deletes the videos and closes the backend.
   */
  close(options?: { graceMs?: number }): Promise<void>;
  /**
   * Answers one request as the listening server would (same gates, routes and errors), e.g. to mount this
   * API inside another Node http server, or to drive it without sockets in tests.
   */
  dispatch(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

// Order matters: OpenAI's and VoltageGPU's /v1 paths come before Segmind's catch-all /v1/<slug>.
const ROUTES: Route[] = [...webRoutes, ...openaiRoutes, ...voltageRoutes, ...falRoutes, ...segmindRoutes];

/**
 * Starts the server and resolves once it listens.
 *
 * @example
 *   const server = await startServer({ port: 8080, apiKey: process.env.SVD_SERVE_API_KEY, defaults: { steps: 20 } });
 *   console.log(`open ${server.url}`);
 *   process.once('SIGINT', () => server.close());
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const o = resolveServerOptions(options);
  // With a shared queue the workers run the jobs (the local pipeline, models loaded there); no backend here.
  const ownsBackend = typeof o.backend === 'string' && !o.queueUrl;
  const backend: Backend | undefined = o.queueUrl
    ? undefined
    : typeof o.backend === 'string'
      ? createBackend(o.backend, {
          ...o.remote,
          local: { model: o.model, device: o.device, log: o.log, maxMemoryBytes: o.maxMemory },
        })
      : o.backend;
  const queueOptions = {
    maxQueued: o.queueSize,
    resultTtlMs: o.resultTtlSeconds * 1000,
    workDir: o.workDir,
    log: o.log,
  };
  const queue: JobQueue = o.queueUrl
    ? await RedisJobQueue.open({ ...queueOptions, url: o.queueUrl })
    : new EmbeddedQueue({ ...queueOptions, backend: backend! });
  const admit =
    (typeof o.backend === 'string' ? o.backend : o.backend.name) === 'local' && !o.queueUrl
      ? await localAdmission({ model: o.model, device: o.device, maxMemory: o.maxMemory, log: o.log })
      : undefined;
  let markClosing!: () => void;
  const state: ServerState = {
    admit,
    queue,
    uploads: new UploadStore({ maxItems: 16, ttlMs: o.resultTtlSeconds * 1000 }),
    limits: {
      allowPrivateUrls: o.allowPrivateUrls,
      maxBytes: o.maxImageBytes,
      maxPixels: o.maxImagePixels,
      timeoutMs: o.imageTimeoutMs,
    },
    maxBodyBytes: o.maxBodyBytes,
    defaults: o.defaults,
    device: o.device,
    modelDefaults: backend instanceof LocalBackend ? backend.modelDefaults() : undefined,
    backendName: backend?.name ?? 'local',
    authRequired: o.apiKey !== undefined,
    publicUrl: o.publicUrl,
    listenHost: '',
    log: o.log,
    closing: new Promise<void>((resolve) => (markClosing = resolve)),
  };

  // A handler that fails in a way nothing caught ends that one request, never the process (and its jobs).
  const dispatch = (req: IncomingMessage, res: ServerResponse) =>
    handle(req, res, state, o.apiKey).catch((err) => lastResort(res, err, state.log));
  const server = createServer((req, res) => void dispatch(req, res));
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => void queue.close().finally(() => reject(err)));
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostForUrl = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? '127.0.0.1' : o.host;
  state.listenHost = `${hostForUrl}:${port}`;

  let closed: Promise<void> | undefined;
  const close = (opts: { graceMs?: number } = {}) =>
    (closed ??= (async () => {
      markClosing();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await queue.close(opts.graceMs ?? 0);
      state.uploads.clear();
      // Waiting clients have had their answers written; give them a moment to flush, then drop the rest.
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 1000);
      await stopped;
      clearTimeout(force);
      if (ownsBackend) await (backend as { close?: () => Promise<void> } | undefined)?.close?.();
    })());

  return { url: `http://${state.listenHost}`, port, host: o.host, authRequired: state.authRequired, close, dispatch };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  state: ServerState,
  apiKey: string | undefined,
): Promise<void> {
  const t0 = performance.now();
  const url = new URL(`http://server${(req.url ?? '/').startsWith('/') ? req.url : '/'}`);
  const method = req.method ?? 'GET';
  // File and upload tokens are capabilities: keep them out of the log.
  const shown = url.pathname.replace(/[0-9a-f]{32}/g, '<token>');
  res.on('finish', () => state.log(`${method} ${shown} ${res.statusCode} ${Math.round(performance.now() - t0)} ms`));
  const ctx: Ctx = { req, res, url, params: [], base: baseUrlOf(req, state.publicUrl, state.listenHost), state };
  let errors: ErrorWriter = webError;
  try {
    const m = matchRoute(ROUTES, method, url.pathname);
    if (!m) throw new HttpError(404, 'not_found', `no route for ${method} ${url.pathname}`);
    if ('wrongMethod' in m) {
      errors = m.wrongMethod.errors;
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`);
    }
    errors = m.route.errors;
    ctx.params = m.params;
    if (!state.authRequired && !isLoopbackHost(hostOfHeader(req.headers.host) ?? '')) {
      // Without a key, only loopback names may address us: a DNS-rebinding page arrives with its own host name.
      throw new HttpError(
        403,
        'forbidden_host',
        'this server has no API key and only answers requests addressed to localhost or a loopback address',
      );
    }
    if (isCrossOriginWrite(req, state.publicUrl && new URL(state.publicUrl).origin))
      throw new HttpError(403, 'cross_origin', 'requests from other web origins are not accepted');
    if (!m.route.public && apiKey !== undefined && !keyMatches(presentedKey(req), apiKey)) {
      throw new HttpError(
        401,
        'unauthorized',
        presentedKey(req) === undefined
          ? 'missing API key: send it as x-api-key, Authorization: Key <key> or Authorization: Bearer <key>'
          : 'invalid API key',
        [],
        { 'www-authenticate': 'Bearer' },
      );
    }
    await m.route.handler(ctx);
  } catch (err) {
    const e = toHttpError(err, state.log);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    errors(ctx, e);
    if (e.status === 413) req.resume();
  }
}

/** The answer when even the error path failed: a bare 500, or a closed connection once headers are out. */
function lastResort(res: ServerResponse, err: unknown, log: (m: string) => void): void {
  try {
    log(`internal error while answering: ${err instanceof Error ? err.message : typeof err}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = '{"error":{"code":"internal_error","message":"internal server error"}}';
    res.writeHead(500, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': text.length,
      connection: 'close',
    });
    res.end(text);
  } catch {
    res.destroy();
  }
}
