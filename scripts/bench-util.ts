/**
 * Shared helpers of the bench-*.ts scripts: measuring a task in a child process (wall time, peak RSS,
 * optional memory cap), free disk and memory, and number formatting. Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

/** "3.05 GiB" / "412 MiB". */
export function bytes(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(0)} MiB`;
}

/** Seconds with one decimal, or ms below one second. */
export function duration(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`;
}

/** Free bytes for an unprivileged user on the filesystem holding `path` (or its nearest existing parent). */
export function freeDiskBytes(path: string): number {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  const s = statfsSync(p);
  return s.bavail * s.bsize;
}

/** MemAvailable from /proc/meminfo (what the kernel thinks can be allocated without swapping). */
export function memAvailableBytes(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Peak RSS of this process so far, in bytes (`resourceUsage().maxRSS` is in KiB). */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * This process's resident memory from /proc/self/status, in bytes: `anon` (heap, arenas, packed weights: real
 * copies) and `file` (mapped file pages, e.g. mmapped external weights: page cache the kernel may drop), their
 * sum `rss`, and the peak `hwm` (VmHWM) so far.
 */
export interface RssBreakdown {
  rss: number;
  anon: number;
  file: number;
  hwm: number;
}

export function rssBreakdown(): RssBreakdown {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem'), hwm: kb('VmHWM') };
}

const MARK = 'BENCH_RESULT ';

/** In a child task: hand the result to the parent (one JSON line on stdout). */
export function reportToParent(result: unknown): void {
  process.stdout.write(`${MARK}${JSON.stringify(result)}\n`);
}

export interface ChildRun<T> {
  result: T | undefined;
  /** Wall time of the whole child, Node and tsx start-up included. */
  wallMs: number;
  /** VmHWM (peak RSS) of the child as last polled, in bytes. */
  polledPeakRss: number;
  /** Set when the child was killed for going over `rssCapBytes`. */
  killedForMemory: boolean;
  exitCode: number | null;
  stderrTail: string;
}

/**
 * Runs `node --import tsx <script> ...args` and returns what it reported with `reportToParent`. The child's
 * peak RSS is polled from /proc every 100 ms; above `rssCapBytes` it is killed (SIGKILL) instead of being
 * allowed to push a shared machine into swap or the OOM killer.
 */
export function runChild<T>(
  script: string,
  args: string[],
  o: { rssCapBytes?: number; echoStderr?: boolean } = {},
): Promise<ChildRun<T>> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let polledPeakRss = 0;
  let killedForMemory = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    if (o.echoStderr) process.stderr.write(d);
  });
  const poll = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) polledPeakRss = Math.max(polledPeakRss, Number(hwm[1]) * 1024);
      if (o.rssCapBytes && polledPeakRss > o.rssCapBytes && !killedForMemory) {
        killedForMemory = true;
        child.kill('SIGKILL');
      }
    } catch {
      /* the child has exited */
    }
  }, 100);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearInterval(poll);
      reject(err);
    });
    child.on('close', (code) => {
      clearInterval(poll);
      const line = stdout.split('\n').find((l) => l.startsWith(MARK));
      resolve({
        result: line ? (JSON.parse(line.slice(MARK.length)) as T) : undefined,
        wallMs: performance.now() - t0,
        polledPeakRss,
        killedForMemory,
        exitCode: code,
        stderrTail: stderr,
      });
    });
  });
}
