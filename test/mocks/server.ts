/**
 * A tiny scripted HTTP server on 127.0.0.1 (random port) for testing clients of hosted APIs without the
 * network. Routes are matched by method and path (string or RegExp); every request is recorded with its
 * body. Unmatched requests get 404 JSON. Reusable by any test that needs a fake provider.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON (throws when it is not). */
  json<T = any>(): T;
  /** The body parsed as multipart or urlencoded form data. */
  form(): Promise<FormData>;
  /** RegExp groups of the matched route. */
  params: string[];
}

export type Handler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export interface MockServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: RecordedRequest[];
  on(method: string, path: string | RegExp, handler: Handler): MockServer;
  /** Recorded requests matching a method and a path (string: exact; RegExp: test). */
  calls(method: string, path: string | RegExp): RecordedRequest[];
  close(): Promise<void>;
}

interface Route {
  method: string;
  path: string | RegExp;
  handler: Handler;
}

export async function startMockServer(): Promise<MockServer> {
  const routes: Route[] = [];
  const requests: RecordedRequest[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query: u.searchParams,
      headers: req.headers,
      body,
      params: [],
      json: () => JSON.parse(body.toString('utf8')),
      form: () =>
        new Response(body, {
          headers: { 'content-type': String(req.headers['content-type']) },
        }).formData() as Promise<FormData>,
    };
    requests.push(recorded);
    // Later routes win, so a test can override a provider mock's default route.
    for (const r of [...routes].reverse()) {
      if (r.method !== recorded.method) continue;
      const m = typeof r.path === 'string' ? (r.path === u.pathname ? [u.pathname] : null) : r.path.exec(u.pathname);
      if (!m) continue;
      recorded.params = m.slice(1);
      try {
        await r.handler(recorded, res);
      } catch (err) {
        if (!res.headersSent) sendJson(res, 500, { error: `mock handler failed: ${String(err)}` });
      }
      return;
    }
    sendJson(res, 404, { error: `no mock route for ${recorded.method} ${u.pathname}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const mock: MockServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    on(method, path, handler) {
      routes.push({ method, path, handler });
      return mock;
    },
    calls(method, path) {
      return requests.filter(
        (r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)),
      );
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return mock;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendBytes(
  res: ServerResponse,
  bytes: Uint8Array,
  contentType = 'video/mp4',
  headers: Record<string, string> = {},
): void {
  res.writeHead(200, { 'content-type': contentType, 'content-length': bytes.length, ...headers });
  res.end(bytes);
}

/** Announces the full length, sends the first `sentBytes`, then kills the connection (a dropped download). */
export function dropMidBody(
  res: ServerResponse,
  bytes: Uint8Array,
  sentBytes: number,
  contentType = 'video/mp4',
): void {
  res.writeHead(200, { 'content-type': contentType, 'content-length': bytes.length });
  res.write(bytes.subarray(0, sentBytes), () => {
    setTimeout(() => res.socket?.destroy(), 10);
  });
}

/** Answers after `ms` (unless the client went away); for deadline tests. */
export function delayed(ms: number, handler: Handler): Handler {
  return (req, res) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(async () => {
        if (!res.destroyed) await handler(req, res);
        resolve();
      }, ms);
      res.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
}

/** Uses the handlers in turn, one per request; the last one repeats. */
export function sequence(...handlers: Handler[]): Handler {
  let i = 0;
  return (req, res) => handlers[Math.min(i++, handlers.length - 1)](req, res);
}
