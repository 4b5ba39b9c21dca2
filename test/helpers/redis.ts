/**
 * A private redis-server for a test file: a free loopback port, a temp dir, no persistence, a password
 * (so the tests also check it is never printed). It can go down and come back with its data (an outage).
 * Fails with a clear message when redis-server is missing (`.ci/run` installs Debian's redis-server).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export interface TestRedis {
  /** `redis://:<password>@127.0.0.1:<port>/0` */
  url: string;
  password: string;
  port: number;
  /** Shuts Redis down, keeping its data on disk (clients see connections refused). */
  down(): Promise<void>;
  /** Starts it again on the same port with the same password and the data `down` saved. */
  up(): Promise<void>;
  /** Stops it for good and deletes its data. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRedis(): Promise<TestRedis> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'redis-server is not installed: these tests need a real Redis (Debian: apt-get install redis-server; .ci/run installs it)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'svd-redis-'));
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const port = await freePort();
  const url = `redis://:${password}@127.0.0.1:${port}/0`;
  let child: ChildProcess | undefined = await spawnRedis(port, password, dir);
  const stopped = async (signal: 'SIGTERM' | 'SIGKILL') => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill(signal);
      await exited;
    }
    child = undefined;
  };
  return {
    url,
    password,
    port,
    async down() {
      if (!child) return;
      // SHUTDOWN SAVE writes the data to <dir>/dump.rdb, which `up` reads back: a restart that keeps the jobs.
      const client = new Redis(url, { maxRetriesPerRequest: 0 });
      client.on('error', () => {});
      const exited = new Promise((r) => child!.once('exit', r));
      await client.call('SHUTDOWN', 'SAVE').catch(() => {}); // the connection closes as Redis exits
      client.disconnect();
      await exited;
      child = undefined;
    },
    async up() {
      child ??= await spawnRedis(port, password, dir);
    },
    async stop() {
      await stopped('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A redis-server on `port` (data kept only by an explicit SHUTDOWN SAVE), once it accepts connections. */
async function spawnRedis(port: number, password: string, dir: string): Promise<ChildProcess> {
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--requirepass',
      password,
      '--protected-mode',
      'yes',
      '--loglevel',
      'notice',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 15_000);
    const check = () => {
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`redis-server did not start on port ${port}: ${output.slice(-500)}`);
  }
  return child;
}
