/**
 * Who may talk to the server. With an API key, every API route wants it, in whichever of the hosted APIs'
 * header forms the client uses (`x-api-key: K` for Segmind, `Authorization: Key K` for fal,
 * `Authorization: Bearer K` for OpenAI-style). Without a key the server only listens on loopback, and then
 * only answers requests whose Host is a loopback name, so a web page cannot reach it by DNS rebinding.
 * Cross-origin writes are refused in both cases (the server sends no CORS headers).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The key a request presents, from `x-api-key` or an `Authorization: Bearer|Key` header. */
export function presentedKey(req: IncomingMessage): string | undefined {
  const x = req.headers['x-api-key'];
  if (typeof x === 'string' && x) return x.trim();
  const auth = req.headers.authorization;
  const m = auth ? /^(?:bearer|key|token)\s+(.+)$/i.exec(auth.trim()) : null;
  return m ? m[1].trim() : undefined;
}

/** Constant-time comparison (hashing first makes the lengths equal). */
export function keyMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** True for `localhost`, `*.localhost`, 127.0.0.0/8, `::1` (with or without brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^(0{0,4}:){0,6}:?0{0,3}1$/.test(h);
  return false;
}

/** The hostname part of a Host header (`[::1]:8080` → `::1`). */
export function hostOfHeader(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host) ?? /^([^:]+)(?::\d+)?$/.exec(host);
  return m ? m[1] : undefined;
}

/**
 * A request from a web page of another origin that would change something (POST, PUT, DELETE). The page's
 * own origin is the Host it was served from, or `publicOrigin` behind a reverse proxy.
 */
export function isCrossOriginWrite(req: IncomingMessage, publicOrigin?: string): boolean {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return false;
  const origin = req.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  try {
    const u = new URL(origin);
    if (publicOrigin && u.origin === publicOrigin) return false;
    return u.host.toLowerCase() !== String(req.headers.host ?? '').toLowerCase();
  } catch {
    return true;
  }
}
