/**
 * The server under hostile input, seeded and reproducible (SVD_FUZZ_SEED picks another seed): 10,000 malformed
 * requests across every dialect go through the server's own request handler without sockets (`dispatch`, the
 * same gates, parsers and error writers as the listener), and a sample of 300 more plus cut-off uploads go over
 * real HTTP on loopback. Never a crash or a 5xx, every answer is JSON in its dialect's shape, and every 400/422
 * names the field as the client spelled it (a key it sent or one its dialect documents) — or, for a body that is
 * not an object at all, says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { startServer, type RunningServer } from '../src/server/index.js';
import { ENDPOINTS, RequestFuzzer, type FuzzRequest } from './fuzz/requests.js';
import { writeFile } from 'node:fs/promises';
import type { Backend, BackendResult } from '../src/backends/types.js';
import type { GenerationRequestInput } from '../src/request/schema.js';

const SEED = Number(process.env.SVD_FUZZ_SEED ?? 0x5eed);
const DIRECT = 10_000;
const OVER_HTTP = 300;

/** A response that records what the handler wrote, validating headers as Node's own does. */
class RecordedResponse extends Writable {
  statusCode = 0;
  headersSent = false;
  headers: Record<string, string> = {};
  private readonly chunks: Buffer[] = [];
  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    for (const [k, v] of Object.entries(headers)) {
      validateHeaderName(k);
      validateHeaderValue(k, String(v));
      this.headers[k.toLowerCase()] = String(v);
    }
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    done();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function requestOf(f: FuzzRequest): IncomingMessage {
  const req = Readable.from(f.body.length ? [f.body] : []) as unknown as IncomingMessage;
  Object.assign(req, {
    method: 'POST',
    url: f.endpoint.path,
    headers: {
      host: '127.0.0.1',
      'content-length': String(f.body.length),
      ...(f.contentType ? { 'content-type': f.contentType } : {}),
    },
  });
  return req;
}

/** The fields an error answer names, read from each dialect's error shape (Segmind's is `field: message` text). */
function namedFields(dialect: string, body: any, candidates: string[]): string[] {
  if (dialect === 'segmind') {
    const text = String(body.error ?? '');
    const hit = candidates.find(
      (c) =>
        text.startsWith(`${c}: `) || text.startsWith(`${c}.`) || (c.length >= 76 && text.startsWith(c.slice(0, 76))),
    );
    return hit !== undefined ? [hit] : /^[\w.]+: /.test(text) ? [text.slice(0, text.indexOf(':'))] : [];
  }
  if (dialect === 'web') return (body.error?.issues ?? []).map((i: { field: string }) => i.field);
  if (dialect === 'openai' || dialect === 'voltage')
    return typeof body.error?.param === 'string' ? [body.error.param] : [];
  if (dialect === 'fal')
    return Array.isArray(body.detail) ? body.detail.map((d: { loc: string[] }) => d.loc.slice(1).join('.')) : [];
  return [];
}

function errorText(dialect: string, body: any): string {
  if (dialect === 'segmind') return String(body.error ?? '');
  if (dialect === 'fal') return typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
  return String(body.error?.message ?? '');
}

const BODY_LEVEL = /request body|not valid JSON|must be a JSON object|multipart|urlencoded/;

/** Checks one answer; returns a problem description or undefined. */
function problemWith(
  f: FuzzRequest,
  status: number,
  text: string,
  headers: Record<string, string>,
): string | undefined {
  const where = `${f.kind} → ${f.endpoint.path} (${f.body.subarray(0, 120).toString('latin1')})`;
  if (status >= 500 || status < 100) return `status ${status}: ${where}: ${text.slice(0, 300)}`;
  if (status < 400) return undefined;
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return `non-JSON ${status}: ${where}: ${text.slice(0, 200)}`;
  }
  if (!headers['content-type']?.startsWith('application/json'))
    return `content-type ${headers['content-type']}: ${where}`;
  if (status !== 400 && status !== 422) return undefined;
  const allowed = new Set([...f.sent, ...f.endpoint.fields, f.endpoint.image]);
  const fields = namedFields(
    f.endpoint.dialect,
    body,
    [...allowed].sort((a, b) => b.length - a.length),
  );
  if (fields.length === 0) {
    return BODY_LEVEL.test(errorText(f.endpoint.dialect, body))
      ? undefined
      : `${status} names no field: ${where}: ${text.slice(0, 300)}`;
  }
  // A name the client used (keys may hold dots; long ones come back shortened with "...") or a documented one.
  const ours = (field: string) =>
    [...allowed].some(
      (a) => field === a || field.startsWith(`${a}.`) || (field.endsWith('...') && a.startsWith(field.slice(0, -3))),
    );
  const foreign = fields.filter((field) => !ours(field));
  return foreign.length
    ? `${status} names ${JSON.stringify(foreign)}, not the client's terms: ${where}: ${text.slice(0, 300)}`
    : undefined;
}

/** Accepted requests finish at once: the fuzz is about the way in, not the work. */
const instant: Backend = {
  name: 'instant',
  async generate(request: GenerationRequestInput): Promise<BackendResult> {
    await writeFile(request.output!, 'not really a video');
    return { outputPath: request.output!, format: 'mp4', seed: 1, backend: 'instant', timings: {}, metadata: {} };
  },
};

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, backend: instant, queueSize: 100_000, resultTtlSeconds: 60 });
});
afterAll(async () => {
  await server?.close();
});

describe(`fuzzing every dialect (seed ${SEED})`, () => {
  it(`${DIRECT} malformed requests through the handler: no crash, no 5xx, every 4xx names the client's field`, async () => {
    const fuzz = new RequestFuzzer(SEED);
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < DIRECT; i++) {
      const f = fuzz.next();
      const res = new RecordedResponse();
      await server.dispatch(requestOf(f), res as unknown as ServerResponse);
      if (!res.writableEnded) await new Promise((r) => res.once('finish', r));
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      const p = problemWith(f, res.statusCode, res.text(), res.headers);
      if (p && problems.length < 20) problems.push(`#${i} ${p}`);
    }
    expect(problems).toEqual([]);
    // The run exercised both sides: refusals and accepted jobs.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(DIRECT / 4);
    expect([...statuses.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
    expect(({} as Record<string, unknown>).model).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it(`${OVER_HTTP} more over real HTTP, and uploads cut off mid-body, leave the server answering`, async () => {
    const fuzz = new RequestFuzzer(SEED + 1);
    const problems: string[] = [];
    for (let i = 0; i < OVER_HTTP; i++) {
      const f = fuzz.next();
      const res = await fetch(`${server.url}${f.endpoint.path}`, {
        method: 'POST',
        body: new Uint8Array(f.body),
        headers: f.contentType ? { 'content-type': f.contentType } : {},
      });
      const p = problemWith(f, res.status, await res.text(), Object.fromEntries(res.headers));
      if (p && problems.length < 20) problems.push(`#${i} ${p}`);
    }
    expect(problems).toEqual([]);
    for (const e of ENDPOINTS) {
      // Announce 1 MB, send a few bytes, hang up.
      await new Promise<void>((resolve) => {
        const socket = connect(server.port, '127.0.0.1', () => {
          socket.write(
            `POST ${e.path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{"${e.image}":"iVBOR`,
          );
          setTimeout(() => socket.destroy(), 20);
        });
        socket.on('close', () => resolve());
        socket.on('error', () => resolve());
      });
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
