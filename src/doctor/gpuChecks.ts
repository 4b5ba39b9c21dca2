/**
 * GPU and execution-provider findings for `svd doctor`: what nvidia-smi sees, and whether onnxruntime can
 * create a session on CPU and on CUDA. A missing GPU is only a warning: `svd generate` works on CPU (the real
 * models take minutes per video there), so doctor's exit code stays 0. A GPU that is present but unusable (its CUDA
 * provider fails) is a problem, with the fix that matches its cause.
 */
import type { GpuQuery } from '../runtime/gpu.js';
import { describeAdapter, VULKAN_INSTALL_HINT, type WebGpuQuery } from '../runtime/webgpu.js';
import type { ProviderProbe } from '../runtime/providers.js';
import type { CudaLinkage } from '../setup/ldd.js';
import type { Check } from './types.js';

export const GPU_FIX =
  'install the NVIDIA driver so that `nvidia-smi` lists the GPU (Ubuntu: `sudo ubuntu-drivers install`; or set SVD_NVIDIA_SMI=/path/to/nvidia-smi), ' +
  'or run on CPU with `svd generate --device cpu` (minutes per video with the real models)';

export function checkGpu(query: GpuQuery): Check[] {
  if (!query.gpus.length) {
    return [
      {
        id: 'gpu',
        label: 'gpu',
        status: 'warn',
        detail: `no NVIDIA GPU found (generation runs on CPU): ${query.problem ?? 'nvidia-smi lists none'}`,
        fix: GPU_FIX,
      },
    ];
  }
  return query.gpus.map((g) => ({
    id: `gpu.${g.index}`,
    label: `gpu ${g.index}`,
    status: 'ok' as const,
    detail: `${g.name}, ${(g.memoryFreeMiB / 1024).toFixed(1)} GiB free of ${(g.memoryTotalMiB / 1024).toFixed(1)} GiB, driver ${g.driverVersion}`,
  }));
}

export interface ProviderFacts {
  probes: ProviderProbe[];
  hasGpu: boolean;
  /** Path of libonnxruntime_providers_cuda.so, when installed. */
  cudaLibrary?: string;
  /** ldd on that library, when it exists and CUDA failed. */
  linkage?: CudaLinkage;
}

export function checkProviders(facts: ProviderFacts): Check[] {
  const checks: Check[] = [];
  for (const probe of facts.probes) {
    const id = `provider.${probe.provider}`;
    const label = `provider ${probe.provider}`;
    if (probe.ok) {
      checks.push({ id, label, status: 'ok', detail: 'creates a session and runs' });
    } else if (probe.provider === 'cpu') {
      checks.push({
        id,
        label,
        status: 'fail',
        detail: `cannot create a session: ${probe.error}`,
        fix: 'reinstall the dependencies: `npm ci` (onnxruntime-node bundles the CPU runtime)',
      });
    } else if (probe.provider === 'cuda') {
      checks.push(cudaCheck(id, label, probe, facts));
    } else if (probe.provider !== 'webgpu') {
      // a failing webgpu probe is reported with the adapter (checkWebGpu)
      checks.push({ id, label, status: 'info', detail: `not usable: ${probe.error}` });
    }
  }
  return checks;
}

function cudaCheck(id: string, label: string, probe: ProviderProbe, facts: ProviderFacts): Check {
  if (!facts.hasGpu) {
    // the GPU finding already carries the fix; this line only says what onnxruntime answered
    return {
      id,
      label,
      status: 'info',
      detail: `not usable without a GPU (${facts.cudaLibrary ? 'library installed' : 'library not installed'}): ${probe.error}`,
    };
  }
  if (!facts.cudaLibrary) {
    return {
      id,
      label,
      status: 'fail',
      detail: `the CUDA execution provider is not installed: ${probe.error}`,
      fix: '`svd setup cuda`',
    };
  }
  const missing = facts.linkage?.missing ?? [];
  if (missing.length) {
    const versions = [
      facts.linkage?.cudaMajor !== undefined ? `CUDA ${facts.linkage.cudaMajor} runtime` : 'the CUDA runtime',
      facts.linkage?.cudnnMajor !== undefined ? `cuDNN ${facts.linkage.cudnnMajor}` : 'cuDNN',
    ];
    return {
      id,
      label,
      status: 'fail',
      detail: `${facts.cudaLibrary} cannot load: missing ${missing.join(', ')}`,
      fix:
        `install ${versions.join(' and ')} (e.g. NVIDIA's apt packages or ` +
        `\`pip install nvidia-cudnn-cu${facts.linkage?.cudaMajor ?? 12}\`), ` +
        `then \`sudo ldconfig\` or add their lib directory to LD_LIBRARY_PATH`,
    };
  }
  return {
    id,
    label,
    status: 'fail',
    detail: `installed but cannot create a session: ${probe.error}`,
    fix: 'check that the driver supports the CUDA version the provider needs (`nvidia-smi`, `svd setup cuda` prints it), or reinstall with `svd setup cuda`',
  };
}

/**
 * The WebGPU adapter onnxruntime's WebGPU provider would use (vendor, name, type, shader-f16, binding limit)
 * or why there is none. A CPU-emulated adapter is reported but never chosen by `auto`. Without one the
 * line is context, not a problem: CUDA or the CPU provider may be all the user wants.
 */
export function checkWebGpu(query: WebGpuQuery, probe?: ProviderProbe): Check {
  const id = 'webgpu';
  const label = 'webgpu adapter';
  const a = query.adapter;
  if (!a)
    return {
      id,
      label,
      status: 'info',
      detail: `none: ${query.problem ?? 'unknown reason'} (for a GPU without CUDA: ${VULKAN_INSTALL_HINT})`,
    };
  const source = a.source === 'vulkaninfo' ? ', as vulkaninfo describes it' : '';
  if (probe && !probe.ok) {
    return {
      id,
      label,
      status: 'warn',
      detail: `${describeAdapter(a)}${source}, but onnxruntime cannot use it: ${probe.error}`,
      fix: VULKAN_INSTALL_HINT,
    };
  }
  if (a.emulated)
    return {
      id,
      label,
      status: 'info',
      detail: `${describeAdapter(a)}${source}: used only with --device webgpu (exact but slow; auto skips it)`,
    };
  return { id, label, status: 'ok', detail: `${describeAdapter(a)}${source}; auto uses it when CUDA is not available` };
}
