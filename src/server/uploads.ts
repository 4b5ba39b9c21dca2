/**
 * fal's storage upload flow, in memory: `initiate` hands out an upload URL and a file URL with one random
 * token; the client PUTs the bytes; a job input naming the file URL reads the bytes from here instead of
 * fetching it (it would point at this very server, a loopback address). Bounded in count, size and time.
 */
import { randomBytes } from 'node:crypto';

interface Upload {
  bytes?: Uint8Array;
  contentType: string;
  expiresAt: number;
}

export class UploadStore {
  private readonly items = new Map<string, Upload>();

  constructor(private readonly o: { maxItems: number; ttlMs: number }) {}

  /** Reserves a token; the oldest uploads make room when the store is full. */
  initiate(contentType: string): string {
    this.sweep();
    while (this.items.size >= this.o.maxItems) this.items.delete(this.items.keys().next().value!);
    const token = randomBytes(16).toString('hex');
    this.items.set(token, { contentType, expiresAt: Date.now() + this.o.ttlMs });
    return token;
  }

  /** Stores the bytes of a reserved token; false when the token is unknown or expired. */
  put(token: string, bytes: Uint8Array, contentType?: string): boolean {
    const item = this.get(token);
    if (!item) return false;
    item.bytes = bytes;
    if (contentType) item.contentType = contentType;
    return true;
  }

  get(token: string): Upload | undefined {
    const item = this.items.get(token);
    if (!item || item.expiresAt < Date.now()) return undefined;
    return item;
  }

  /** The bytes behind one of our own file URLs (`…/fal/files/<token>`), whatever host the client used. */
  bytesForUrl(url: URL): Uint8Array | undefined {
    const m = /\/fal\/files\/([0-9a-f]{32})$/.exec(url.pathname);
    return m ? this.get(m[1])?.bytes : undefined;
  }

  clear(): void {
    this.items.clear();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, v] of this.items) if (v.expiresAt < now) this.items.delete(k);
  }
}
