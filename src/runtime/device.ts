/**
 * Execution-provider choice. `cuda[:N]` asks for the CUDA EP and fails with install instructions when it
 * cannot load; `auto` tries CUDA and falls back to CPU, saying so once. onnxruntime does not fall back by
 * itself: `['cuda', 'cpu']` fails as a whole when the CUDA library is missing (docs/runtime.md §1.2).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ExecutionProviderError } from '../errors.js';
import type { HostedSession, OrtHost, SessionSpec } from './ortHost.js';

export type DeviceRequest = 'auto' | 'cpu' | `cuda` | `cuda:${number}`;

export interface ParsedDevice {
  kind: 'auto' | 'cpu' | 'cuda';
  deviceId: number;
}

export function parseDevice(device: string): ParsedDevice {
  if (device === 'auto' || device === 'cpu') return { kind: device, deviceId: 0 };
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new ExecutionProviderError(device, `device: ${JSON.stringify(device)} is not allowed; use auto, cpu, cuda or cuda:N`);
  return { kind: 'cuda', deviceId: m[1] ? Number(m[1]) : 0 };
}

export const CUDA_INSTALL_HINT =
  'install the CUDA execution provider with `svd setup cuda` (needs network access, an NVIDIA driver, CUDA and cuDNN), ' +
  'then check with `svd doctor`';

/** What the session factory decided: the provider actually used and, for `auto`, why. */
export interface DeviceDecision {
  provider: 'cuda' | 'cpu';
  deviceId: number;
  /** Set when `auto` fell back to CPU: the reason CUDA could not be used. */
  fallbackReason?: string;
}

/**
 * Opens sessions on the chosen device. The first session decides the provider for all later ones, so a
 * pipeline never mixes CPU and CUDA models by accident and the fallback warning is printed once.
 */
export class DeviceSessionFactory {
  private decision: DeviceDecision | undefined;

  constructor(
    private readonly host: OrtHost,
    private readonly device: ParsedDevice,
    private readonly warn: (message: string) => void = (m) => process.stderr.write(`svd: ${m}\n`),
    private readonly baseSpec: Partial<SessionSpec> = {},
    private readonly cudaLibrary: () => string | undefined = findCudaProviderLibrary,
  ) {}

  get provider(): DeviceDecision | undefined {
    return this.decision;
  }

  async open(path: string): Promise<HostedSession> {
    const spec = (providers: SessionSpec['executionProviders']): SessionSpec => ({ ...this.baseSpec, path, executionProviders: providers });
    const cuda = [{ name: 'cuda', deviceId: this.device.deviceId }];
    if (this.decision?.provider === 'cpu' || this.device.kind === 'cpu') {
      this.decision ??= { provider: 'cpu', deviceId: 0 };
      return this.host.createSession(spec(['cpu']));
    }
    try {
      // Checked first because onnxruntime prints its own alarming log line when the library is missing.
      if (!this.cudaLibrary()) {
        throw new Error(`Failed to load library: ${CUDA_PROVIDER_LIBRARY} is not installed in ${ortBinaryDir()}`);
      }
      const session = await this.host.createSession(spec(cuda));
      this.decision ??= { provider: 'cuda', deviceId: this.device.deviceId };
      return session;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (!isProviderLoadFailure(reason)) throw err;
      if (this.device.kind === 'cuda') {
        throw new ExecutionProviderError(
          `cuda:${this.device.deviceId}`,
          `device cuda:${this.device.deviceId}: the CUDA execution provider could not be loaded (${firstLine(reason)}); ${CUDA_INSTALL_HINT}; or pass --device cpu`,
        );
      }
      this.decision = { provider: 'cpu', deviceId: 0, fallbackReason: firstLine(reason) };
      this.warn(`CUDA is not available (${firstLine(reason)}); running on CPU, which is slow for real models. ${CUDA_INSTALL_HINT}.`);
      return this.host.createSession(spec(['cpu']));
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

/** Errors that mean "this provider cannot be used here", as opposed to a broken model file. */
export function isProviderLoadFailure(message: string): boolean {
  return /OrtSessionOptionsAppendExecutionProvider|Failed to load (shared )?library|libcudart|libcudnn|libcublas|CUDA driver|no CUDA-capable device/i.test(message);
}

function firstLine(s: string): string {
  const line = s.split('\n')[0].trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
