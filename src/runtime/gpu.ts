/**
 * NVIDIA GPU facts from `nvidia-smi` (name, memory, driver) and the decode-chunk heuristic that uses
 * them. `nvidia-smi` is found through SVD_NVIDIA_SMI, else PATH; when it is missing or fails the
 * answers are "no GPU" / null, never an exception.
 */
import { findExecutable, runCommand, type Env } from './executables.js';
import type { FloatDtype } from '../tensor/float16.js';

export interface GpuInfo {
  index: number;
  name: string;
  memoryTotalMiB: number;
  memoryFreeMiB: number;
  driverVersion: string;
}

export interface GpuQuery {
  /** The nvidia-smi used, when found. */
  nvidiaSmi?: string;
  gpus: GpuInfo[];
  /** Why no GPU was listed (not found, failed, no devices). */
  problem?: string;
}

/** SVD_NVIDIA_SMI (a path) overrides the PATH lookup; tests and unusual installs use it. */
export function nvidiaSmiPath(env: Env = process.env): string | undefined {
  if (env.SVD_NVIDIA_SMI !== undefined) return findExecutable(env.SVD_NVIDIA_SMI, env);
  return findExecutable('nvidia-smi', env);
}

const QUERY = ['--query-gpu=index,name,memory.total,memory.free,driver_version', '--format=csv,noheader,nounits'];

/** Lists the GPUs nvidia-smi sees, or says why there are none. */
export async function queryGpus(env: Env = process.env): Promise<GpuQuery> {
  const nvidiaSmi = nvidiaSmiPath(env);
  if (!nvidiaSmi)
    return {
      gpus: [],
      problem:
        env.SVD_NVIDIA_SMI !== undefined
          ? `SVD_NVIDIA_SMI=${env.SVD_NVIDIA_SMI} is not an executable`
          : 'nvidia-smi not found on PATH',
    };
  const r = await runCommand(nvidiaSmi, QUERY, { env: env as NodeJS.ProcessEnv });
  if (r.code !== 0) {
    const why = (r.stdout + r.stderr).trim().split('\n')[0] || r.error || `exit code ${r.code}`;
    return { nvidiaSmi, gpus: [], problem: `nvidia-smi failed: ${why}` };
  }
  const gpus = parseGpuCsv(r.stdout);
  return gpus.length ? { nvidiaSmi, gpus } : { nvidiaSmi, gpus, problem: 'nvidia-smi lists no GPU' };
}

/** Parses `index, name, memory.total, memory.free, driver_version` lines (nounits: MiB). */
export function parseGpuCsv(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of text.split('\n')) {
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length < 5) continue;
    const [index, total, free] = [Number(cells[0]), Number(cells[cells.length - 3]), Number(cells[cells.length - 2])];
    if (![index, total, free].every(Number.isFinite)) continue;
    // a GPU name could contain a comma: everything between the index and the numbers
    gpus.push({
      index,
      name: cells.slice(1, cells.length - 3).join(', '),
      memoryTotalMiB: total,
      memoryFreeMiB: free,
      driverVersion: cells[cells.length - 1],
    });
  }
  return gpus;
}

/**
 * Free memory of CUDA device `deviceId` in MiB, or null when nvidia-smi is unavailable or does not
 * list that device. Note that nvidia-smi numbers devices in PCI order; CUDA_VISIBLE_DEVICES remapping
 * is not applied here.
 */
export async function gpuFreeMemoryMiB(deviceId = 0, env: Env = process.env): Promise<number | null> {
  const { gpus } = await queryGpus(env);
  return gpus.find((g) => g.index === deviceId)?.memoryFreeMiB ?? null;
}

/**
 * Frames per VAE decode call that fit in `freeMiB` (measured just before decoding, with the UNet
 * still loaded) at `width`×`height`.
 *
 * Heuristic (an estimate, not yet measured on a GPU): the temporal decoder's last stage holds
 * 128-channel full-resolution activations; with about six of them alive at once that is
 * 128 × 6 × 2 bytes ≈ 1.5 KiB per output pixel per frame in float16 (twice that in float32), i.e.
 * about 864 MiB per 576×1024 frame in float16. We budget 80 % of the free memory minus 1 GiB for the
 * runtime's workspace and arena growth, and never go below 1 frame.
 * Examples (float16, 576×1024): 80000 MiB free → 72 frames (so: all); 20000 MiB → 17; 8000 MiB → 6; 2000 MiB → 1.
 * The caller clamps the result to the number of frames.
 */
export function defaultDecodeChunkSize(
  freeMiB: number,
  width: number,
  height: number,
  dtype: FloatDtype = 'float16',
): number {
  const bytesPerPixel = (dtype === 'float16' ? 2 : 4) * 128 * 6;
  const perFrameMiB = (width * height * bytesPerPixel) / 2 ** 20;
  const budgetMiB = freeMiB * 0.8 - 1024;
  const frames = Math.floor(budgetMiB / perFrameMiB);
  return Math.max(1, Math.min(128, frames));
}
