/**
 * Physical CPU cores, for onnxruntime's intra-op threads. Its default is one thread per logical CPU; on CPUs with
 * SMT two threads then share each core's vector units, and the pool spins on cores the rest of the process needs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { InvalidRequestError } from '../errors.js';

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

/**
 * Distinct (physical_package_id, core_id) pairs under a sysfs CPU directory (`cpuN/topology/`); 0 when there is
 * none. The fallback where /proc/cpuinfo names no cores (many ARM kernels).
 */
export function countTopologyCores(sysCpuDir: string): number {
  const cores = new Set<string>();
  let entries: string[];
  try {
    entries = readdirSync(sysCpuDir).filter((e) => /^cpu\d+$/.test(e));
  } catch {
    return 0;
  }
  for (const cpu of entries) {
    try {
      const read = (f: string) => readFileSync(join(sysCpuDir, cpu, 'topology', f), 'utf8').trim();
      cores.add(`${read('physical_package_id')}:${read('core_id')}`);
    } catch {
      /* offline CPU or no topology: not counted */
    }
  }
  return cores.size;
}

export interface CoreSources {
  /** /proc/cpuinfo text (default: read it). */
  cpuinfo?: string;
  /** The sysfs CPU directory (default /sys/devices/system/cpu). */
  sysCpuDir?: string;
  /** CPUs this process may run on (default `os.availableParallelism()`, which follows the affinity mask). */
  allowed?: number;
}

/**
 * Physical cores this process may use: /proc/cpuinfo, else sysfs topology, else `os.availableParallelism()`;
 * never more than the CPUs it is allowed.
 */
export function physicalCores(sources: CoreSources = {}): number {
  const allowed = sources.allowed ?? availableParallelism();
  let cpuinfo = sources.cpuinfo;
  if (cpuinfo === undefined) {
    try {
      cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      cpuinfo = ''; // not Linux
    }
  }
  const n = countPhysicalCores(cpuinfo) || countTopologyCores(sources.sysCpuDir ?? '/sys/devices/system/cpu');
  return n > 0 ? Math.min(n, allowed) : allowed;
}

/**
 * onnxruntime's intra-op thread count: `SVD_THREADS` when set (a positive integer), else one per physical core.
 * Set explicitly because onnxruntime's own default counts SMT siblings.
 *
 * @example SVD_THREADS=4 svd generate photo.jpg --device cpu
 */
export function intraOpThreads(env: NodeJS.ProcessEnv = process.env, sources?: CoreSources): number {
  const raw = env.SVD_THREADS;
  if (raw === undefined || raw === '') return physicalCores(sources);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new InvalidRequestError([
      { field: 'SVD_THREADS', value: raw, message: 'must be a whole number of threads from 1 to 1024' },
    ]);
  return n;
}
