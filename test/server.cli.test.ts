/**
 * `svd serve` as a command: refuses to expose itself without a key, says where it listens, answers, and on
 * SIGTERM ends a running job cleanly (the waiting client gets 503) and exits 0.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixtureBytes } from './server-helpers.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');

describe('svd serve (CLI)', () => {
  it('refuses a non-loopback --host without an API key, with a clear message', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--host', '0.0.0.0', '--port', '0'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SVD_SERVE_API_KEY: '' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--host: without --api-key the server only listens on loopback .* pass --api-key KEY/);
  });

  it('serves, then shuts down on SIGTERM mid-job and exits 0', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--steps', '100', '--api-key', 'cli-secret-key'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening line: ${stderr}`)), 60_000);
        void exited.then(() => reject(new Error(`exited early: ${stderr}`)));
        child.stderr.on('data', () => {
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
          if (m && stderr.includes('web page at')) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
      });
      expect(stderr).toMatch(/API key required/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const waiting = fetch(`${url}/v1/svd`, {
        method: 'POST',
        headers: { 'x-api-key': 'cli-secret-key', 'content-type': 'application/json' },
        body: JSON.stringify({ image: Buffer.from(fixtureBytes()).toString('base64') }),
      });
      const deadline = Date.now() + 60_000;
      while (!/started \(segmind/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      const res = await waiting;
      expect(res.status).toBe(503);
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/SIGTERM: shutting down/);
      expect(stderr).toMatch(/stopped/);
      expect(stderr).not.toContain('cli-secret-key');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
