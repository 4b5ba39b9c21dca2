/** Describing the WebGPU adapter: vulkaninfo parsing, emulated-adapter detection, loader noise, doctor lines. */
import { describe, expect, it } from 'vitest';
import { checkWebGpu } from '../src/doctor/gpuChecks.js';
import {
  describeAdapter,
  isLoaderNoise,
  looksEmulated,
  parseVulkaninfoSummary,
  type WebGpuAdapter,
} from '../src/runtime/webgpu.js';

const SUMMARY = `
Devices:
========
GPU0:
	apiVersion         = 1.4.305
	vendorID           = 0x10005
	deviceType         = PHYSICAL_DEVICE_TYPE_CPU
	deviceName         = llvmpipe (LLVM 15.0.6, 256 bits)
	driverName         = llvmpipe
	driverInfo         = Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)
GPU1:
	vendorID           = 0x10de
	deviceType         = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
	deviceName         = NVIDIA GeForce RTX 4090
	driverName         = NVIDIA
	driverInfo         = 550.54.15
`;

const gpu: WebGpuAdapter = {
  vendor: 'nvidia',
  architecture: 'ada-lovelace',
  device: '',
  description: 'NVIDIA GeForce RTX 4090',
  type: 'gpu',
  emulated: false,
  shaderF16: true,
  maxStorageBufferBindingSize: 2 ** 32 - 4,
  maxBufferSize: 2 ** 32 - 1,
  source: 'dawn',
};

describe('WebGPU adapter', () => {
  it('parses vulkaninfo --summary devices with their types', () => {
    expect(parseVulkaninfoSummary(SUMMARY)).toEqual([
      {
        name: 'llvmpipe (LLVM 15.0.6, 256 bits)',
        type: 'cpu',
        vendorId: '0x10005',
        driver: 'Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)',
      },
      { name: 'NVIDIA GeForce RTX 4090', type: 'discrete-gpu', vendorId: '0x10de', driver: '550.54.15' },
    ]);
  });

  it('tells CPU-emulated adapters (lavapipe, SwiftShader) from GPUs', () => {
    expect(
      looksEmulated({
        architecture: 'software',
        device: 'llvmpipe-llvm-15',
        description: 'llvmpipe: Mesa 25.0.7',
        isFallbackAdapter: true,
      }),
    ).toBe(true);
    expect(looksEmulated({ architecture: '', device: 'SwiftShader Device (Subzero)', description: '' })).toBe(true);
    expect(looksEmulated({ architecture: 'ada-lovelace', device: '', description: 'NVIDIA GeForce RTX 4090' })).toBe(
      false,
    );
  });

  it('filters the Vulkan loader and Dawn start-up lines, nothing else', () => {
    expect(isLoaderNoise('error: XDG_RUNTIME_DIR is invalid or not set in the environment.')).toBe(true);
    expect(
      isLoaderNoise(
        'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.',
      ),
    ).toBe(true);
    expect(isLoaderNoise('Non-zero status code returned while running Softmax node')).toBe(false);
  });

  it('svd doctor: the adapter with vendor, name, type, shader-f16 and limit, or why there is none', () => {
    expect(checkWebGpu({ adapter: gpu })).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(
        /^nvidia NVIDIA GeForce RTX 4090 \(gpu, shader-f16, binding limit 4096 MiB\); auto uses it/,
      ),
    });
    const lavapipe = {
      ...gpu,
      vendor: 'mesa',
      description: 'llvmpipe: Mesa 25.0.7',
      emulated: true,
      type: 'cpu' as const,
      maxStorageBufferBindingSize: 2 ** 27,
    };
    expect(checkWebGpu({ adapter: lavapipe })).toMatchObject({
      status: 'info',
      detail: expect.stringMatching(
        /\(CPU-emulated, shader-f16, binding limit 128 MiB\): used only with --device webgpu/,
      ),
    });
    expect(
      checkWebGpu({ problem: 'no WebGPU adapter (Dawn found no usable Vulkan, Metal or D3D12 device)' }),
    ).toMatchObject({
      status: 'info',
      detail: expect.stringMatching(/^none: no WebGPU adapter .*mesa-vulkan-drivers/),
    });
    expect(
      checkWebGpu({ adapter: gpu }, { provider: 'webgpu', ok: false, error: 'Failed to get a WebGPU device' }),
    ).toMatchObject({ status: 'warn', fix: expect.stringMatching(/Vulkan driver/) });
    expect(describeAdapter(gpu)).toBe('nvidia NVIDIA GeForce RTX 4090 (gpu, shader-f16, binding limit 4096 MiB)');
  });
});
