/**
 * `svd doctor`: every fact the local pipeline depends on, each problem with the command that fixes it.
 * All probes are injectable (environment, provider probe, CUDA library lookup) so tests can simulate
 * "everything present" and "nothing present" with fake executables.
 */
import { queryGpus } from '../runtime/gpu.js';
import type { Env } from '../runtime/executables.js';
import {
  cudaProviderLibraryPath,
  ortVersion,
  probeExecutionProviders,
  type ProviderProbe,
} from '../runtime/providers.js';
import { lddCudaLinkage } from '../setup/ldd.js';
import { checkModels, checkNode, checkOnnxruntime } from './basics.js';
import { checkFfmpeg } from './ffmpeg.js';
import { checkGpu, checkProviders, checkWebGpu } from './gpuChecks.js';
import { queryWebGpuAdapter, type WebGpuQuery } from '../runtime/webgpu.js';
import type { Check } from './types.js';

export interface DoctorOptions {
  /** PATH, FFMPEG_PATH, SVD_NVIDIA_SMI, HF_* are read from here (default process.env). */
  env?: Env;
  probeProviders?: () => Promise<ProviderProbe[]>;
  cudaLibrary?: () => string | undefined;
  ortVersion?: () => string;
  nodeVersion?: string;
  webgpuAdapter?: () => Promise<WebGpuQuery>;
}

export interface DoctorReport {
  /** True when no check failed (warnings allowed). */
  ok: boolean;
  problems: number;
  warnings: number;
  checks: Check[];
}

/** Runs every check (probes in parallel) and counts problems. */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const [probes, gpus, ffmpeg, webgpu] = await Promise.all([
    (options.probeProviders ?? (() => probeExecutionProviders({ providers: ['cpu', 'cuda', 'webgpu'] })))(),
    queryGpus(env),
    checkFfmpeg(env),
    (options.webgpuAdapter ?? (() => queryWebGpuAdapter({ env })))(),
  ]);
  const cudaLibrary = (options.cudaLibrary ?? cudaProviderLibraryPath)();
  const cudaFailed = probes.some((p) => p.provider === 'cuda' && !p.ok);
  const linkage = cudaLibrary && cudaFailed ? await lddCudaLinkage(cudaLibrary, env) : undefined;

  const checks: Check[] = [
    checkNode(options.nodeVersion),
    checkOnnxruntime(options.ortVersion ?? ortVersion),
    ...checkGpu(gpus),
    ...checkProviders({ probes, hasGpu: gpus.gpus.length > 0, cudaLibrary, linkage }),
    checkWebGpu(
      webgpu,
      probes.find((p) => p.provider === 'webgpu'),
    ),
    ...ffmpeg,
    ...checkModels(env),
  ];
  const problems = checks.filter((c) => c.status === 'fail').length;
  const warnings = checks.filter((c) => c.status === 'warn').length;
  return { ok: problems === 0, problems, warnings, checks };
}

const MARK: Record<Check['status'], string> = { ok: 'ok  ', info: '--  ', warn: 'warn', fail: 'FAIL' };

/** The text report: one line per check, the fix indented under each problem, a summary line. */
export function formatDoctorReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.label.length));
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${MARK[c.status]}  ${c.label.padEnd(width)}  ${c.detail}`);
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) lines.push(`${' '.repeat(width + 8)}fix: ${c.fix}`);
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push('');
  lines.push(
    report.ok
      ? `no problems${report.warnings ? `, ${plural(report.warnings, 'warning')}` : ''}`
      : `${plural(report.problems, 'problem')}, ${plural(report.warnings, 'warning')}`,
  );
  return `${lines.join('\n')}\n`;
}
