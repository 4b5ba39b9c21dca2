/**
 * Run with `node --expose-gc --import tsx`: an endless download (a provider's result URL and an image URL)
 * with a short deadline while the garbage collector runs every 20 ms. Prints one JSON line with how each
 * ended. On Node 20 a deadline made of AbortSignal.timeout inside AbortSignal.any was collected, never fired,
 * and this process ran until killed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVoltageBackend } from '../../src/backends/openai/generations.js';
import { readImageBytes } from '../../src/image/source.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const collector = setInterval(() => gc(), 20);

const chunk = Buffer.alloc(16 * 1024, 7);
const server = createServer((req, res) => {
  if (req.url === '/v1/video/generations') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ created: 1, data: [{ url: `http://127.0.0.1:${port}/endless.mp4` }] }));
    return;
  }
  // An endless body: a video container start, then bytes every 10 ms, forever.
  res.writeHead(200, { 'content-type': req.url === '/endless.png' ? 'image/png' : 'video/mp4' });
  res.write(Buffer.from('\0\0\0\x18ftypisom', 'latin1'));
  const timer = setInterval(() => res.write(chunk), 10);
  res.on('close', () => clearInterval(timer));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;

// The CLI and the server always pass a signal of their own (Ctrl-C, a client hanging up): the deadline is
// then joined with it, which is where Node 20 lost the timer.
const caller = new AbortController();
const outcome = async (work: Promise<unknown>) =>
  work.then(
    () => 'completed',
    (err: Error & { code?: string }) => `${err.name}:${err.code ?? ''}:${err.message}`,
  );
const provider = await outcome(
  createVoltageBackend({
    apiKey: 'k-0123456789',
    baseUrl: `http://127.0.0.1:${port}/v1`,
    deadlineMs: 1500,
    maxDownloadBytes: 2 ** 40,
  }).generate(
    { image: 'https://example.com/a.png', output: join(tmpdir(), `svd-gc-${process.pid}.mp4`) },
    { signal: caller.signal },
  ),
);
const image = await outcome(
  readImageBytes(`http://127.0.0.1:${port}/endless.png`, { timeoutMs: 1500, maxBytes: 2 ** 40, signal: caller.signal }),
);
clearInterval(collector);
server.closeAllConnections();
server.close();
process.stdout.write(`${JSON.stringify({ provider, image })}\n`);
