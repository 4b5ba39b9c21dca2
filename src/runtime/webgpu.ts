/**
 * The WebGPU adapter that onnxruntime's WebGPU execution provider will use, described for `svd doctor`,
 * for `auto` (which never picks a CPU-emulated adapter) and for sizing graphs to the adapter's limits.
 *
 * onnxruntime-node says nothing about its adapter, so we ask Dawn ourselves through the npm `webgpu` package
 * (Dawn's own Node bindings, prebuilt for every platform; an optional dependency). Like onnxruntime
 * (docs/webgpu.md, "What onnxruntime asks for") it requests the high-performance adapter of the default
 * backend. It runs in a child process: the Vulkan loader's and Dawn's lines on stderr stay out of the
 * user's terminal and a broken driver cannot take the caller down. Without that package,
 * `vulkaninfo --summary` (vulkan-tools) is read instead, and failing that we say why there is nothing.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { findExecutable, runCommand, type Env } from './executables.js';

export type AdapterType = 'discrete-gpu' | 'integrated-gpu' | 'virtual-gpu' | 'cpu' | 'gpu';

export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  /** Dawn's device string, or the Vulkan device name. */
  device: string;
  description: string;
  type: AdapterType;
  /** A CPU implementation of the API (Mesa lavapipe/llvmpipe, SwiftShader): exact but very slow. */
  emulated: boolean;
  shaderF16: boolean;
  /** Largest storage-buffer binding in bytes: no tensor a kernel reads or writes may be larger. */
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  source: 'dawn' | 'vulkaninfo';
}

export interface WebGpuQuery {
  adapter?: WebGpuAdapter;
  /** Why there is no adapter (no driver, package missing, probe failed). */
  problem?: string;
}

/** WebGPU's default maxStorageBufferBindingSize (128 MiB), also lavapipe's Vulkan maxStorageBufferRange. */
export const DEFAULT_BINDING_LIMIT = 134_217_728;

export const VULKAN_INSTALL_HINT =
  "install a Vulkan driver: your GPU vendor's driver (NVIDIA, AMD and Intel drivers ship one), or for a CPU-only " +
  "test machine Mesa's lavapipe 25 or newer (Debian 12: `sudo apt-get install -t bookworm-backports " +
  "mesa-vulkan-drivers libvulkan1`; Debian 12's own Mesa 22 is refused by Dawn)";

const EMULATED = /llvmpipe|lavapipe|swiftshader|softpipe/i;

/** True for the software rasterisers Dawn exposes as adapters. */
export function looksEmulated(
  a: Pick<WebGpuAdapter, 'architecture' | 'device' | 'description'> & { isFallbackAdapter?: boolean },
): boolean {
  return Boolean(a.isFallbackAdapter) || a.architecture === 'software' || EMULATED.test(`${a.device} ${a.description}`);
}

// ESM run by `node --input-type=module -e`: asks Dawn for the adapter onnxruntime would take.
const DAWN_PROBE = `
const { create } = await import(process.env.SVD_WEBGPU_MODULE);
const gpu = create([]);
const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!a) { process.stdout.write(JSON.stringify({ problem: 'no WebGPU adapter (Dawn found no usable Vulkan, Metal or D3D12 device)' })); process.exit(0); }
const i = a.info;
process.stdout.write(JSON.stringify({ info: { vendor: i.vendor, architecture: i.architecture, device: i.device,
  description: i.description, isFallbackAdapter: i.isFallbackAdapter }, shaderF16: a.features.has('shader-f16'),
  maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize, maxBufferSize: a.limits.maxBufferSize }));
process.exit(0);
`;

function webgpuModuleUrl(): string | undefined {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return undefined;
  }
}

export interface WebGpuQueryOptions {
  env?: Env;
  timeoutMs?: number;
  /** Skip Dawn (tests of the vulkaninfo path). */
  dawn?: boolean;
}

/** The adapter onnxruntime's WebGPU EP would use, or why there is none. Never throws. */
export async function queryWebGpuAdapter(options: WebGpuQueryOptions = {}): Promise<WebGpuQuery> {
  const env = options.env ?? process.env;
  const url = options.dawn === false ? undefined : webgpuModuleUrl();
  let dawnProblem = 'the optional `webgpu` package (Dawn for Node) is not installed';
  if (url) {
    const r = await runDawnProbe(url, env, options.timeoutMs ?? 60_000);
    if (r.adapter || r.problem?.startsWith('no WebGPU adapter')) return r;
    dawnProblem = r.problem ?? 'Dawn probe failed';
  }
  const vk = await queryVulkaninfo(env);
  if (vk.adapter) return vk;
  return { problem: `${dawnProblem}; ${vk.problem}` };
}

function runDawnProbe(url: string, env: Env, timeoutMs: number): Promise<WebGpuQuery> {
  return new Promise((resolve) => {
    const childEnv = { ...env, SVD_WEBGPU_MODULE: url } as NodeJS.ProcessEnv;
    execFile(
      process.execPath,
      ['--input-type=module', '-e', DAWN_PROBE],
      { env: childEnv, timeout: timeoutMs, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        try {
          const r = JSON.parse(String(stdout));
          if (r.problem) return resolve({ problem: r.problem });
          const info = r.info;
          const emulated = looksEmulated(info);
          resolve({
            adapter: {
              vendor: info.vendor || 'unknown vendor',
              architecture: info.architecture || '',
              device: info.device || '',
              description: info.description || '',
              type: emulated ? 'cpu' : 'gpu',
              emulated,
              shaderF16: Boolean(r.shaderF16),
              maxStorageBufferBindingSize: Number(r.maxStorageBufferBindingSize),
              maxBufferSize: Number(r.maxBufferSize),
              source: 'dawn',
            },
          });
        } catch {
          const why = firstMeaningfulLine(String(stderr)) || (err ? err.message : 'no output');
          resolve({ problem: `Dawn probe failed: ${why}` });
        }
      },
    );
  });
}

const VK_TYPES: Record<string, AdapterType> = {
  PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: 'discrete-gpu',
  PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: 'integrated-gpu',
  PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: 'virtual-gpu',
  PHYSICAL_DEVICE_TYPE_CPU: 'cpu',
};
const TYPE_RANK: AdapterType[] = ['discrete-gpu', 'integrated-gpu', 'virtual-gpu', 'gpu', 'cpu'];

/** Parses `vulkaninfo --summary`'s device list (one block per GPUn:). */
export function parseVulkaninfoSummary(
  text: string,
): Array<{ name: string; type: AdapterType; vendorId: string; driver: string }> {
  const devices: Array<{ name: string; type: AdapterType; vendorId: string; driver: string }> = [];
  const blocks = text.split(/^GPU\d+:\s*$/m).slice(1);
  for (const block of blocks) {
    const field = (key: string) => new RegExp(`^\\s*${key}\\s*=\\s*(.+)$`, 'm').exec(block)?.[1].trim() ?? '';
    const name = field('deviceName');
    if (!name) continue;
    devices.push({
      name,
      type: VK_TYPES[field('deviceType')] ?? 'gpu',
      vendorId: field('vendorID'),
      driver: field('driverInfo') || field('driverName'),
    });
  }
  return devices;
}

/** The adapter as Vulkan describes it (Linux without the `webgpu` package). Dawn prefers discrete GPUs. */
export async function queryVulkaninfo(env: Env = process.env): Promise<WebGpuQuery> {
  const exe = findExecutable('vulkaninfo', env);
  if (!exe) return { problem: 'vulkaninfo (vulkan-tools) not found either, so the Vulkan devices cannot be listed' };
  const summary = await runCommand(exe, ['--summary'], { env });
  const devices = parseVulkaninfoSummary(summary.stdout);
  if (!devices.length)
    return {
      problem: `vulkaninfo lists no Vulkan device: ${firstMeaningfulLine(summary.stderr) || 'no driver installed'}`,
    };
  devices.sort((a, b) => TYPE_RANK.indexOf(a.type) - TYPE_RANK.indexOf(b.type));
  const d = devices[0];
  const full = await runCommand(exe, [], { env, timeoutMs: 30_000 });
  const range = /maxStorageBufferRange\s*=\s*(0x[0-9a-f]+|\d+)/i.exec(full.stdout)?.[1];
  const emulated = d.type === 'cpu' || EMULATED.test(d.name);
  return {
    adapter: {
      vendor: d.vendorId,
      architecture: '',
      device: d.name,
      description: d.driver,
      type: d.type,
      emulated,
      shaderF16: /shaderFloat16\s*=\s*true/.test(full.stdout),
      // Dawn's Vulkan backend reports the device's maxStorageBufferRange as its binding limit
      maxStorageBufferBindingSize: range ? Number(range) : DEFAULT_BINDING_LIMIT,
      maxBufferSize: 2 ** 32 - 1,
      source: 'vulkaninfo',
    },
  };
}

function firstMeaningfulLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l && !isLoaderNoise(l)) ?? ''
  );
}

const LOADER_NOISE = [
  /XDG_RUNTIME_DIR is invalid or not set|artificially reduced from|MESA: warning/,
  /'DISPLAY' environment variable not set/,
  /Some nodes were not assigned to the preferred execution providers/,
  /Rerunning with verbose output on a non-minimal build will show node assignments/,
];

/**
 * Lines the Vulkan loader, Mesa and Dawn print on every start that mean nothing to a user of svd:
 * filtered from a WebGPU session's stderr (runtime/ortHost.ts) and from probe errors.
 */
export function isLoaderNoise(line: string): boolean {
  return LOADER_NOISE.some((re) => re.test(line));
}

/** One line for logs and `svd doctor`: "NVIDIA RTX 4090 (discrete-gpu, shader-f16, binding limit 2048 MiB)". */
export function describeAdapter(a: WebGpuAdapter): string {
  const name = [a.vendor, a.description || a.device].filter(Boolean).join(' ');
  const flags = [
    a.emulated ? 'CPU-emulated' : a.type,
    a.shaderF16 ? 'shader-f16' : 'no shader-f16',
    `binding limit ${Math.round(a.maxStorageBufferBindingSize / 2 ** 20)} MiB`,
  ];
  return `${name} (${flags.join(', ')})`;
}

let cached: Promise<WebGpuQuery> | undefined;

/** `queryWebGpuAdapter()` once per process (the adapter does not change while we run). */
export function webGpuAdapterOnce(): Promise<WebGpuQuery> {
  cached ??= queryWebGpuAdapter();
  return cached;
}
