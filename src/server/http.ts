/**
 * Small pieces of HTTP on Node's own `http`: a status-carrying error, bounded body reading, JSON and file
 * responses (with byte ranges, so a <video> element can seek). Dialects format errors themselves; this
 * module only knows status codes.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { boundedName, type FieldIssue } from '../errors.js';

/**
 * A problem to report to a client: the HTTP status, a stable code, a message for people and, for bad
 * requests, the fields at fault (named as the client spelled them). Each dialect renders it in its own shape.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Reads the whole body, refusing more than `maxBytes` (413) before or while it arrives. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of req) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) throw tooLarge(maxBytes);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, 'body_incomplete', 'the request body was not received completely');
  }
  return Buffer.concat(chunks);
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, 'body_too_large', `request body is larger than the limit of ${maxBytes} bytes`, [], {
    connection: 'close',
  });
}

/** Parses a JSON object body; anything else is a 400 naming what was expected. */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8') || 'null');
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'invalid_json', 'request body must be a JSON object');
  }
  checkClientObject(value as Record<string, unknown>);
  return value as Record<string, unknown>;
}

/** Names no client object may use: assigning them reaches Object.prototype (prototype pollution). */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Deepest nesting a request body may have; our dialects need 2 (`input_reference.image_url`). */
export const MAX_BODY_DEPTH = 16;

/**
 * Refuses, with a 400 naming the top-level field, a body that nests deeper than MAX_BODY_DEPTH or uses a
 * prototype key at any depth. Iterative, so a 10,000-deep body costs a loop, not the stack.
 */
export function checkClientObject(root: Record<string, unknown>): void {
  const stack: Array<{ value: unknown; depth: number; path: string }> = [];
  for (const key of Object.keys(root)) {
    checkKey(key, key);
    stack.push({ value: root[key], depth: 1, path: key });
  }
  while (stack.length) {
    const { value, depth, path } = stack.pop()!;
    if (value === null || typeof value !== 'object' || value instanceof Uint8Array) continue;
    if (depth >= MAX_BODY_DEPTH) {
      // Named by the top-level field the client sent (`seed`), not a path of sixteen keys.
      const field = shownField(path.split('.')[0] === path ? path : topOf(path, root));
      throw new HttpError(400, 'invalid_request', `${field}: nests deeper than ${MAX_BODY_DEPTH} levels`, [
        { field, message: `nests deeper than ${MAX_BODY_DEPTH} levels` },
      ]);
    }
    const isArray = Array.isArray(value);
    for (const key of Object.keys(value)) {
      const child = isArray ? path : `${path}.${key}`;
      if (!isArray) checkKey(key, child);
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, path: child });
    }
  }
}

function checkKey(key: string, path: string): void {
  if (FORBIDDEN_KEYS.has(key)) {
    const field = shownField(path);
    throw new HttpError(400, 'forbidden_field', `${field}: "${key}" is not allowed as a field name`, [
      { field, message: `"${key}" is not allowed as a field name` },
    ]);
  }
}

function shownField(name: string): string {
  return boundedName(name);
}

/** The top-level key a dotted path starts with (keys may contain dots themselves). */
function topOf(path: string, root: Record<string, unknown>): string {
  return Object.keys(root).find((k) => path === k || path.startsWith(`${k}.`)) ?? path;
}

/**
 * A header value from client-influenced text: anything outside printable ASCII (non-Latin-1, CR/LF, other
 * controls, and `%` itself) is percent-encoded, so `writeHead` cannot throw; at most 1,000 characters.
 */
export function headerSafe(text: string): string {
  const safe = text.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => {
    try {
      return encodeURIComponent(c);
    } catch {
      return '%EF%BF%BD'; // a lone surrogate: U+FFFD
    }
  });
  return safe.length > 1000 ? `${safe.slice(0, 997)}...` : safe;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  let text: string;
  try {
    text = JSON.stringify(body);
  } catch {
    // Only reachable with a value no bounded writer should produce; never let it take the server down.
    status = 500;
    headers = {};
    text = JSON.stringify({ error: { code: 'internal_error', message: 'internal server error' } });
  }
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * Streams a server-owned file (never a client-supplied path), honouring one `Range: bytes=a-b` so browsers
 * can seek. A file that disappeared (expired) is a 404.
 */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  contentType: string,
  headers: Record<string, string> = {},
): Promise<void> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new HttpError(404, 'not_found', 'the file has expired or was deleted');
  }
  const base = {
    'content-type': contentType,
    'accept-ranges': 'bytes',
    'cache-control': 'private, max-age=3600',
    ...headers,
  };
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...base, 'content-range': `bytes */${size}` });
    res.end();
    return;
  }
  const [start, end] = range ?? [0, size - 1];
  res.writeHead(range ? 206 : 200, {
    ...base,
    'content-length': size === 0 ? 0 : end - start + 1,
    ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  await pipeline(createReadStream(path, { start, end }), res).catch(() => res.destroy());
}

function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return 'unsatisfiable';
  return [start, end];
}

/** The base URL clients should use for links this server hands out (`publicUrl`, else from the Host header). */
export function baseUrlOf(req: IncomingMessage, publicUrl: string | undefined, fallbackHost: string): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  const host = req.headers.host && /^[A-Za-z0-9.\-:[\]]+$/.test(req.headers.host) ? req.headers.host : fallbackHost;
  return `http://${host}`;
}
