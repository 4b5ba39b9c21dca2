/**
 * Physical CPU cores, for onnxruntime's intra-op threads. Its default is one thread per logical CPU; on CPUs with
 * SMT two threads then share each core's vector units, and the pool spins on cores the rest of the process needs.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Distinct (physical id, core id) pairs in /proc/cpuinfo text; 0 when it lists none. */
export function countPhysicalCores(cpuinfo: string): number {
  const cores = new Set<string>();
  for (const block of cpuinfo.split(/\n\s*\n/)) {
    const core = /^core id\s*:\s*(\d+)/m.exec(block);
    if (!core) continue;
    const pkg = /^physical id\s*:\s*(\d+)/m.exec(block);
    cores.add(`${pkg?.[1] ?? 0}:${core[1]}`);
  }
  return cores.size;
}

/** Physical cores this process may use: from /proc/cpuinfo on Linux, never more than the CPUs it is allowed. */
export function physicalCores(): number {
  const allowed = availableParallelism();
  try {
    const n = countPhysicalCores(readFileSync('/proc/cpuinfo', 'utf8'));
    if (n > 0) return Math.min(n, allowed);
  } catch {
    /* not Linux */
  }
  return allowed;
}
