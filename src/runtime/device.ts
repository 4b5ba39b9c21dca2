/**
 * Execution-provider choice. `cuda[:N]` asks for the CUDA EP and fails with install instructions when it
 * cannot load; `webgpu` asks for onnxruntime's WebGPU EP (Dawn: Vulkan, Metal or D3D12) on whatever adapter
 * it gets, even a CPU-emulated one; `auto` tries CUDA, then WebGPU on a real GPU adapter (never lavapipe or
 * SwiftShader, which are far slower than the CPU provider), then CPU, saying once what it chose and why.
 * onnxruntime does not fall back by itself: `['cuda', 'cpu']` fails as a whole when the CUDA library is
 * missing (docs/runtime.md §1.2).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ExecutionProviderError } from '../errors.js';
import type { FloatDtype } from '../tensor/float16.js';
import type { HostedSession, OrtHost, SessionSpec } from './ortHost.js';
import { sessionDefaults } from './sessionOptions.js';
import {
  describeAdapter,
  VULKAN_INSTALL_HINT,
  webGpuAdapterOnce,
  type WebGpuAdapter,
  type WebGpuQuery,
} from './webgpu.js';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda' | `cuda:${number}` | 'webgpu';

export interface ParsedDevice {
  kind: 'auto' | 'cpu' | 'cuda' | 'webgpu';
  deviceId: number;
}

export const DEVICE_CHOICES = 'auto, cpu, cuda, cuda:N or webgpu';

export function parseDevice(device: string): ParsedDevice {
  if (device === 'auto' || device === 'cpu' || device === 'webgpu') return { kind: device, deviceId: 0 };
  if (/^webgpu:\d+$/.test(device)) {
    // onnxruntime 1.30's WebGPU EP always takes Dawn's default high-performance adapter: its `deviceId` is a
    // context id that needs a caller-made WebGPU device, which onnxruntime-node cannot pass (docs/webgpu.md)
    throw new ExecutionProviderError(
      device,
      `device: ${JSON.stringify(device)}: onnxruntime's WebGPU provider cannot be pointed at one adapter; use webgpu ` +
        '(it takes the high-performance adapter; on Linux, VK_DRIVER_FILES=<icd.json> limits which Vulkan driver it sees)',
    );
  }
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m)
    throw new ExecutionProviderError(device, `device: ${JSON.stringify(device)} is not allowed; use ${DEVICE_CHOICES}`);
  return { kind: 'cuda', deviceId: m[1] ? Number(m[1]) : 0 };
}

export const CUDA_INSTALL_HINT =
  'install the CUDA execution provider with `svd setup cuda` (needs network access, an NVIDIA driver, CUDA and cuDNN), ' +
  'then check with `svd doctor`';

export type Provider = 'cuda' | 'webgpu' | 'cpu';

/** What the session factory decided: the provider actually used and, for `auto`, why. */
export interface DeviceDecision {
  provider: Provider;
  deviceId: number;
  /** Set when `auto` fell back to CPU: the reason CUDA (and WebGPU) could not be used. */
  fallbackReason?: string;
  /** The WebGPU adapter, when the provider is webgpu and the adapter could be described. */
  adapter?: WebGpuAdapter;
}

/** The execution-provider list for one provider. */
export function providerSpec(provider: Provider, deviceId = 0): SessionSpec['executionProviders'] {
  if (provider === 'cuda') return [{ name: 'cuda', deviceId }];
  if (provider === 'webgpu') return [{ name: 'webgpu' }];
  return ['cpu'];
}

/**
 * Opens sessions on the chosen device. The first session decides the provider for all later ones, so a
 * pipeline never mixes providers by accident and the choice is explained once.
 */
export class DeviceSessionFactory {
  private decision: DeviceDecision | undefined;

  constructor(
    private readonly host: OrtHost,
    private readonly device: ParsedDevice,
    private readonly warn: (message: string) => void = (m) => process.stderr.write(`svd: ${m}\n`),
    private readonly baseSpec: Partial<SessionSpec> = {},
    private readonly cudaLibrary: () => string | undefined = findCudaProviderLibrary,
    private readonly webgpuAdapter: () => Promise<WebGpuQuery> = webGpuAdapterOnce,
  ) {}

  get provider(): DeviceDecision | undefined {
    return this.decision;
  }

  /** The provider's session defaults (sessionOptions.ts) under the caller's base spec. */
  private spec(path: string, provider: Provider, dtype: FloatDtype): SessionSpec {
    return {
      ...sessionDefaults(provider, dtype),
      ...this.baseSpec,
      path,
      executionProviders: providerSpec(provider, this.device.deviceId),
    };
  }

  /** Opens the graph at `path`, whose compute dtype is `dtype` (it picks the session defaults with the provider). */
  async open(path: string, dtype: FloatDtype = 'float32'): Promise<HostedSession> {
    if (this.decision) return this.host.createSession(this.spec(path, this.decision.provider, dtype));
    if (this.device.kind === 'cpu') {
      this.decision = { provider: 'cpu', deviceId: 0 };
      return this.host.createSession(this.spec(path, 'cpu', dtype));
    }
    if (this.device.kind === 'webgpu') return this.openWebGpu(path, dtype, true);
    let cudaReason: string;
    try {
      // Checked first because onnxruntime prints its own alarming log line when the library is missing.
      if (!this.cudaLibrary()) {
        throw new Error(`Failed to load library: ${CUDA_PROVIDER_LIBRARY} is not installed in ${ortBinaryDir()}`);
      }
      const session = await this.host.createSession(this.spec(path, 'cuda', dtype));
      this.decision = { provider: 'cuda', deviceId: this.device.deviceId };
      return session;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (!isProviderLoadFailure(reason)) throw err;
      if (this.device.kind === 'cuda') {
        throw new ExecutionProviderError(
          `cuda:${this.device.deviceId}`,
          `device cuda:${this.device.deviceId}: the CUDA execution provider could not be loaded ` +
            `(${firstLine(reason)}); ${CUDA_INSTALL_HINT}; or pass --device cpu`,
        );
      }
      cudaReason = firstLine(reason);
    }
    // auto without CUDA: WebGPU, but only on a real GPU
    const { adapter, problem } = await this.webgpuAdapter();
    let webgpuReason: string;
    if (adapter && !adapter.emulated) {
      try {
        const session = await this.openWebGpu(path, dtype, false, adapter);
        this.warn(`CUDA is not available (${cudaReason}); running on WebGPU: ${describeAdapter(adapter)}.`);
        return session;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (!isProviderLoadFailure(reason)) throw err;
        webgpuReason = `WebGPU failed on ${describeAdapter(adapter)}: ${firstLine(reason)}`;
      }
    } else if (adapter) {
      webgpuReason = `the only WebGPU adapter is CPU-emulated (${describeAdapter(adapter)}), slower than the CPU provider; ask for it with --device webgpu`;
    } else {
      webgpuReason = `no WebGPU adapter: ${problem ?? 'unknown reason'}`;
    }
    this.decision = { provider: 'cpu', deviceId: 0, fallbackReason: `${cudaReason}; ${webgpuReason}` };
    this.warn(
      `CUDA is not available (${cudaReason}); ${webgpuReason}; running on CPU, which is slow for real models. ${CUDA_INSTALL_HINT}.`,
    );
    return this.host.createSession(this.spec(path, 'cpu', dtype));
  }

  /** A WebGPU session; `explicit` (asked by name) turns a load failure into an error with the install hint. */
  private async openWebGpu(
    path: string,
    dtype: FloatDtype,
    explicit: boolean,
    known?: WebGpuAdapter,
  ): Promise<HostedSession> {
    try {
      const session = await this.host.createSession(this.spec(path, 'webgpu', dtype));
      const adapter = known ?? (await this.webgpuAdapter()).adapter;
      this.decision = { provider: 'webgpu', deviceId: 0, ...(adapter ? { adapter } : {}) };
      return session;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (!explicit || !isProviderLoadFailure(reason)) throw err;
      throw new ExecutionProviderError(
        'webgpu',
        `device webgpu: no WebGPU adapter could be opened (${firstLine(reason)}); ${VULKAN_INSTALL_HINT}; or pass --device cpu`,
      );
    }
  }
}

export const CUDA_PROVIDER_LIBRARY = 'libonnxruntime_providers_cuda.so';

/** onnxruntime-node's native directory, where `svd setup cuda` puts the CUDA provider libraries. */
export function ortBinaryDir(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  // entry: <pkg>/dist/index.js → binaries in <pkg>/bin/napi-v6/<platform>/<arch>
  return join(dirname(dirname(entry)), 'bin', 'napi-v6', process.platform, process.arch);
}

/** The CUDA provider library's path when installed, else undefined. */
export function findCudaProviderLibrary(): string | undefined {
  const path = join(ortBinaryDir(), CUDA_PROVIDER_LIBRARY);
  return existsSync(path) ? path : undefined;
}

const PROVIDER_LOAD_FAILURES = [
  /OrtSessionOptionsAppendExecutionProvider|Failed to load (shared )?library/i,
  /libcudart|libcudnn|libcublas|CUDA driver|no CUDA-capable device/i,
  /WebGPU adapter|WebGPU device|No supported adapters|vkCreateInstance/i,
];

/** Errors that mean "this provider cannot be used here", as opposed to a broken model file. */
export function isProviderLoadFailure(message: string): boolean {
  return PROVIDER_LOAD_FAILURES.some((re) => re.test(message));
}

function firstLine(s: string): string {
  const line = s.split('\n')[0].trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
