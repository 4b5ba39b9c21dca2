/**
 * A local run makes no network request of any kind (audit item 10: onnxruntime 1.29+ resolved its telemetry
 * host, mobile.events.data.microsoft.com, from a plain local generate). Native lookups are invisible to JS
 * hooks, so the child runs under strace, which sees every socket the process or its threads and children
 * open: any internet socket (a DNS query is a UDP socket to the resolver) or a connection to the nscd /
 * systemd-resolved sockets fails the test. Needs strace (Debian: apt-get install strace; .ci/run installs it).
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHILD = join(import.meta.dirname, 'children', 'localGenerateIdle.ts');

describe('no network from a local run', () => {
  it('a local generate, kept alive 15 s with its sessions open, opens no internet socket and asks no resolver', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svd-strace-'));
    const trace = join(dir, 'trace.txt');
    try {
      const env = { ...process.env };
      delete env.ORT_DISABLE_TELEMETRY; // the package must turn it off itself
      const run = await new Promise<{ stdout: string; stderr: string; error?: Error }>((resolve) => {
        execFile(
          'strace',
          ['-f', '-qq', '-e', 'trace=socket,connect', '-o', trace, process.execPath, '--import', 'tsx', CHILD],
          { env, timeout: 120_000 },
          (error, stdout, stderr) => resolve({ stdout, stderr, error: error ?? undefined }),
        );
      });
      if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
        throw new Error('strace is not installed (apt-get install strace)');
      expect(run.stdout, run.stderr).toContain('generated');
      const lines = readFileSync(trace, 'utf8').split('\n');
      const network = lines.filter((l) => /socket\(AF_INET6?,|AF_INET6?,|nscd\/socket|resolve\/io\.systemd/.test(l));
      expect(network).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
