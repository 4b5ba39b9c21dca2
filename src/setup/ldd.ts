/**
 * Which CUDA / cuDNN libraries the CUDA execution provider links against, read from `ldd`: the
 * sonames tell the major versions it needs (libcudart.so.12 → CUDA 12, libcudnn.so.9 → cuDNN 9) and
 * "not found" lines tell what the system lacks.
 */
import { findExecutable, runCommand, type Env } from '../runtime/executables.js';

export interface LinkedLibrary {
  soname: string;
  /** Resolved path; undefined when ldd says "not found". */
  path?: string;
}

export interface CudaLinkage {
  /** CUDA-related libraries (cudart, cublas, cublasLt, cudnn, cufft, curand, nvrtc, nvinfer). */
  cudaLibraries: LinkedLibrary[];
  /** Every library ldd could not find (CUDA-related or not). */
  missing: string[];
  /** Major versions from the sonames, when present. */
  cudaMajor?: number;
  cudnnMajor?: number;
}

const CUDA_LIB = /^lib(cudart|cublas|cublasLt|cudnn\w*|cufft|curand|nvrtc|nvinfer\w*)\.so/;

/** Parses `ldd` output lines such as `libcudart.so.12 => /usr/local/cuda/lib64/libcudart.so.12 (0x...)`. */
export function parseLdd(output: string): CudaLinkage {
  const cudaLibraries: LinkedLibrary[] = [];
  const missing: string[] = [];
  for (const raw of output.split('\n')) {
    const m = /^\s*(\S+)\s+=>\s+(not found|(\S+))/.exec(raw);
    if (!m) continue;
    const soname = m[1];
    const path = m[2] === 'not found' ? undefined : m[3];
    if (!path) missing.push(soname);
    if (CUDA_LIB.test(soname)) cudaLibraries.push({ soname, path });
  }
  const major = (re: RegExp) => {
    for (const { soname } of cudaLibraries) {
      const m = re.exec(soname);
      if (m) return Number(m[1]);
    }
    return undefined;
  };
  return {
    cudaLibraries,
    missing,
    cudaMajor: major(/^lib(?:cudart|cublas)\.so\.(\d+)/),
    cudnnMajor: major(/^libcudnn\.so\.(\d+)/),
  };
}

/** Runs ldd on `library`; undefined when ldd is not available (not Linux, minimal image). */
export async function lddCudaLinkage(library: string, env: Env = process.env): Promise<CudaLinkage | undefined> {
  const ldd = findExecutable('ldd', env);
  if (!ldd) return undefined;
  const r = await runCommand(ldd, [library], { env });
  if (r.code !== 0 && !r.stdout) return undefined;
  return parseLdd(r.stdout);
}

/** One line for people: "needs CUDA 12 and cuDNN 9; missing: libcudnn.so.9". */
export function describeLinkage(l: CudaLinkage): string {
  const needs = [
    l.cudaMajor !== undefined ? `CUDA ${l.cudaMajor}` : undefined,
    l.cudnnMajor !== undefined ? `cuDNN ${l.cudnnMajor}` : undefined,
  ].filter(Boolean);
  const parts = [needs.length ? `needs ${needs.join(' and ')}` : 'CUDA version not visible in its links'];
  parts.push(l.missing.length ? `missing: ${l.missing.join(', ')}` : 'all linked libraries found');
  return parts.join('; ');
}
