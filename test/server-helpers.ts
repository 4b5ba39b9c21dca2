/**
 * Shared by the server tests: the fixture image, MP4 checks through ffprobe, a loopback image host for URL
 * inputs, and a fake backend for queue tests that need no model.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError } from '../src/errors.js';
import type { Backend, BackendResult, GenerateCallOptions } from '../src/backends/types.js';
import type { GenerationRequestInput } from '../src/request/schema.js';
import { probeVideo, type VideoInfo } from '../src/video/probe.js';

export const FIXTURE_IMAGE = join(import.meta.dirname, 'fixtures', 'reference', 'input_64x128.png');

export function fixtureBytes(): Uint8Array {
  return new Uint8Array(readFileSync(FIXTURE_IMAGE));
}

/** ffprobe of video bytes (written to a temp file first). */
export async function probeBytes(bytes: Uint8Array): Promise<VideoInfo> {
  const dir = mkdtempSync(join(tmpdir(), 'svd-serve-test-'));
  try {
    const path = join(dir, 'v.mp4');
    writeFileSync(path, bytes);
    return await probeVideo(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A loopback server with `/img.png`, `/redirect` (→ /img.png) and `/big.png` (declares 1 GB). */
export async function startImageHost(): Promise<{ url: string; close(): Promise<void>; hits: string[] }> {
  const png = fixtureBytes();
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/img.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/img.png' });
      res.end();
    } else if (req.url === '/big.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 1_000_000_000 });
      res.write(png);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A backend that needs no model: it "works" for `ms` milliseconds in 10 ms steps (reporting denoise
 * progress and honouring abort between steps, like the pipeline), then writes a small file.
 */
export class FakeBackend implements Backend {
  readonly name = 'fake';
  readonly started: string[] = [];
  constructor(private readonly ms = 50) {}

  async generate(request: GenerationRequestInput, o: GenerateCallOptions = {}): Promise<BackendResult> {
    const tag = String((request as { seed?: number }).seed ?? '');
    this.started.push(tag);
    const steps = Math.max(1, Math.round(this.ms / 10));
    for (let i = 1; i <= steps; i++) {
      if (o.signal?.aborted) throw new AbortError();
      await new Promise((r) => setTimeout(r, 10));
      o.onProgress?.({ stage: 'denoise', step: i, totalSteps: steps, fraction: i / steps });
    }
    if (o.signal?.aborted) throw new AbortError();
    await writeFile(request.output!, `fake video ${tag}`);
    return {
      outputPath: request.output!,
      format: 'mp4',
      seed: Number(tag || 0),
      backend: 'fake',
      timings: {},
      metadata: {},
    };
  }
}
