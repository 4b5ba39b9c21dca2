/** CPU sessions: intra-op threads from the physical cores (fake /proc/cpuinfo and sysfs), and the CPU memory options. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/errors.js';
import { countTopologyCores, intraOpThreads, physicalCores } from '../src/runtime/cpu.js';
import { DeviceSessionFactory, parseDevice } from '../src/runtime/device.js';
import type { OrtHost, SessionSpec } from '../src/runtime/ortHost.js';
import { CPU_MEMORY_OPTIONS, sessionDefaults } from '../src/runtime/sessionOptions.js';

const entry = (n: number, pkg: number, core: number) =>
  `processor\t: ${n}\nvendor_id\t: GenuineIntel\nphysical id\t: ${pkg}\nsiblings\t: 4\ncore id\t\t: ${core}\n`;
// one package, 2 cores × 2 SMT threads (what a 2-core laptop with hyper-threading shows)
const SMT_CPUINFO = [entry(0, 0, 0), entry(1, 0, 1), entry(2, 0, 0), entry(3, 0, 1)].join('\n');
const ARM_CPUINFO = 'processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n';

const dirs: string[] = [];
/** A fake /sys/devices/system/cpu with cpuN/topology/{physical_package_id,core_id}. */
function fakeSysfs(cpus: Array<[pkg: number, core: number]>): string {
  const root = mkdtempSync(join(tmpdir(), 'svd-sysfs-'));
  dirs.push(root);
  cpus.forEach(([pkg, core], n) => {
    const d = join(root, `cpu${n}`, 'topology');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'physical_package_id'), `${pkg}\n`);
    writeFileSync(join(d, 'core_id'), `${core}\n`);
  });
  mkdirSync(join(root, 'cpufreq')); // sysfs has other entries than cpuN; they are not CPUs
  return root;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('physical cores', () => {
  it('counts (physical id, core id) pairs in /proc/cpuinfo, not SMT siblings', () => {
    expect(physicalCores({ cpuinfo: SMT_CPUINFO, allowed: 4, sysCpuDir: '/nonexistent' })).toBe(2);
  });

  it('falls back to sysfs topology where /proc/cpuinfo names no cores (ARM)', () => {
    const sys = fakeSysfs([
      [0, 0],
      [0, 1],
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    expect(countTopologyCores(sys)).toBe(4);
    expect(physicalCores({ cpuinfo: ARM_CPUINFO, sysCpuDir: sys, allowed: 6 })).toBe(4);
  });

  it('falls back to the CPUs allowed when neither source names cores, and never exceeds them', () => {
    expect(physicalCores({ cpuinfo: ARM_CPUINFO, sysCpuDir: '/nonexistent', allowed: 3 })).toBe(3);
    // a container limited to 1 CPU on a 2-core host
    expect(physicalCores({ cpuinfo: SMT_CPUINFO, sysCpuDir: '/nonexistent', allowed: 1 })).toBe(1);
  });

  it('SVD_THREADS overrides the count; a bad value names the variable and the range', () => {
    const sources = { cpuinfo: SMT_CPUINFO, sysCpuDir: '/nonexistent', allowed: 4 };
    expect(intraOpThreads({}, sources)).toBe(2);
    expect(intraOpThreads({ SVD_THREADS: '3' }, sources)).toBe(3);
    for (const bad of ['0', '-1', '2.5', 'all']) {
      expect(() => intraOpThreads({ SVD_THREADS: bad }, sources)).toThrow(InvalidRequestError);
      expect(() => intraOpThreads({ SVD_THREADS: bad }, sources)).toThrow(/SVD_THREADS.*whole number of threads/);
    }
  });
});

describe('CPU session options', () => {
  function recordingHost(): OrtHost & { specs: SessionSpec[] } {
    const specs: SessionSpec[] = [];
    return {
      specs,
      async createSession(spec) {
        specs.push(spec);
        return { path: spec.path, inputs: [], outputs: [], run: async () => ({}), release: async () => {} };
      },
      async close() {},
    };
  }

  it('CPU sessions get the arena without memory patterns and the thread count; explicit options win', async () => {
    const host = recordingHost();
    await new DeviceSessionFactory(host, parseDevice('cpu'), () => {}, { intraOpNumThreads: 2 }).open('a.onnx');
    expect(host.specs[0]).toMatchObject({ ...CPU_MEMORY_OPTIONS, intraOpNumThreads: 2, executionProviders: ['cpu'] });
    expect(host.specs[0].enableMemPattern).toBe(false);

    const tuned = recordingHost();
    const base = { intraOpNumThreads: 1, enableMemPattern: true, enableCpuMemArena: false };
    await new DeviceSessionFactory(tuned, parseDevice('cpu'), () => {}, base).open('a.onnx');
    expect(tuned.specs[0]).toMatchObject(base);
  });

  it("the memory options are the CPU EP's only (the CUDA and WebGPU arenas are their own)", () => {
    for (const provider of ['cuda', 'webgpu'] as const) {
      expect(sessionDefaults(provider, 'float32')).not.toHaveProperty('enableMemPattern');
      expect(sessionDefaults(provider, 'float32')).not.toHaveProperty('enableCpuMemArena');
    }
  });
});
