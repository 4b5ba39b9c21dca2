/** Execution-provider selection and fallback (the CUDA path cannot run here, so its choices are tested with fakes). */
import { describe, expect, it } from 'vitest';
import { ExecutionProviderError } from '../src/errors.js';
import { DeviceSessionFactory, parseDevice } from '../src/runtime/device.js';
import { sessionDefaults } from '../src/runtime/sessionOptions.js';
import type { WebGpuAdapter, WebGpuQuery } from '../src/runtime/webgpu.js';
import type { HostedSession, OrtHost, SessionSpec } from '../src/runtime/ortHost.js';
import { decodeChunked } from '../src/pipeline/decode.js';

const noAdapter = async (): Promise<WebGpuQuery> => ({
  problem: 'no WebGPU adapter (Dawn found no usable Vulkan, Metal or D3D12 device)',
});
const adapter = (emulated: boolean): WebGpuAdapter => ({
  vendor: emulated ? 'mesa' : 'nvidia',
  architecture: emulated ? 'software' : 'ada',
  device: '',
  description: emulated ? 'llvmpipe' : 'NVIDIA RTX 4090',
  type: emulated ? 'cpu' : 'gpu',
  emulated,
  shaderF16: true,
  maxStorageBufferBindingSize: emulated ? 2 ** 27 : 2 ** 31,
  maxBufferSize: 2 ** 32 - 1,
  source: 'dawn',
});

/** A host that records what was asked and fails CUDA (and, when asked, WebGPU) sessions with onnxruntime's own message. */
function fakeHost(cudaWorks: boolean, webgpuWorks = true): OrtHost & { specs: SessionSpec[] } {
  const specs: SessionSpec[] = [];
  return {
    specs,
    async createSession(spec) {
      specs.push(spec);
      const wants = (name: string) => spec.executionProviders.some((p) => typeof p !== 'string' && p.name === name);
      if (wants('cuda') && !cudaWorks)
        throw new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library');
      if (wants('webgpu') && !webgpuWorks) throw new Error('Failed to get a WebGPU adapter: No supported adapters');
      return {
        path: spec.path,
        inputs: [],
        outputs: [],
        run: async () => ({}),
        release: async () => {},
      } satisfies HostedSession;
    },
    async close() {},
  };
}

describe('device selection', () => {
  it('parses devices and refuses others naming what is allowed', () => {
    expect(parseDevice('cuda:1')).toEqual({ kind: 'cuda', deviceId: 1 });
    expect(parseDevice('auto')).toEqual({ kind: 'auto', deviceId: 0 });
    expect(parseDevice('webgpu')).toEqual({ kind: 'webgpu', deviceId: 0 });
    expect(() => parseDevice('gpu')).toThrow(/use auto, cpu, cuda, cuda:N or webgpu/);
    expect(() => parseDevice('webgpu:1')).toThrow(/cannot be pointed at one adapter; use webgpu/);
  });

  it('auto falls back to CPU when the CUDA provider is not installed, warns once, and keeps CPU for every model', async () => {
    const host = fakeHost(true);
    const warnings: string[] = [];
    const f = new DeviceSessionFactory(
      host,
      parseDevice('auto'),
      (m) => warnings.push(m),
      {},
      () => undefined,
      noAdapter,
    );
    await f.open('a.onnx');
    await f.open('b.onnx');
    expect(host.specs.map((s) => s.executionProviders)).toEqual([['cpu'], ['cpu']]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/CUDA is not available .*not installed.*svd setup cuda/);
    expect(f.provider).toMatchObject({
      provider: 'cpu',
      fallbackReason: expect.stringMatching(/libonnxruntime_providers_cuda\.so/),
    });
  });

  it('auto falls back when the library is present but cannot load (missing CUDA/cuDNN)', async () => {
    const host = fakeHost(false);
    const warnings: string[] = [];
    const f = new DeviceSessionFactory(
      host,
      parseDevice('auto'),
      (m) => warnings.push(m),
      {},
      () => '/fake/libonnxruntime_providers_cuda.so',
      noAdapter,
    );
    await f.open('a.onnx');
    expect(host.specs.map((s) => s.executionProviders)).toEqual([[{ name: 'cuda', deviceId: 0 }], ['cpu']]);
    expect(warnings[0]).toMatch(/Failed to load shared library/);
  });

  it('uses CUDA with the device id when it loads', async () => {
    const host = fakeHost(true);
    const f = new DeviceSessionFactory(
      host,
      parseDevice('cuda:2'),
      () => {},
      {},
      () => '/fake/lib.so',
    );
    await f.open('a.onnx');
    expect(host.specs[0].executionProviders).toEqual([{ name: 'cuda', deviceId: 2 }]);
    expect(f.provider).toEqual({ provider: 'cuda', deviceId: 2 });
  });

  it('an explicit cuda device fails with the install command instead of falling back', async () => {
    const host = fakeHost(false);
    const f = new DeviceSessionFactory(
      host,
      parseDevice('cuda'),
      () => {},
      {},
      () => '/fake/lib.so',
    );
    const err = await f.open('a.onnx').catch((e) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect(err.message).toMatch(
      /device cuda:0: the CUDA execution provider could not be loaded .*svd setup cuda.*--device cpu/,
    );
    expect(host.specs).toHaveLength(1);
  });

  it('auto takes WebGPU on a real GPU adapter when CUDA is missing, says so once, and keeps it', async () => {
    const host = fakeHost(false);
    const warnings: string[] = [];
    const f = new DeviceSessionFactory(
      host,
      parseDevice('auto'),
      (m) => warnings.push(m),
      {},
      () => undefined,
      async () => ({ adapter: adapter(false) }),
    );
    await f.open('a.onnx');
    await f.open('b.onnx');
    expect(host.specs.map((s) => s.executionProviders)).toEqual([[{ name: 'webgpu' }], [{ name: 'webgpu' }]]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /CUDA is not available .*running on WebGPU: nvidia NVIDIA RTX 4090 \(gpu, shader-f16, binding limit 2048 MiB\)/,
    );
    expect(f.provider).toMatchObject({ provider: 'webgpu', adapter: { description: 'NVIDIA RTX 4090' } });
  });

  it('auto never takes a CPU-emulated adapter (lavapipe): CPU, with the reason', async () => {
    const host = fakeHost(false);
    const warnings: string[] = [];
    const f = new DeviceSessionFactory(
      host,
      parseDevice('auto'),
      (m) => warnings.push(m),
      {},
      () => undefined,
      async () => ({ adapter: adapter(true) }),
    );
    await f.open('a.onnx');
    expect(host.specs.map((s) => s.executionProviders)).toEqual([['cpu']]);
    expect(warnings[0]).toMatch(
      /only WebGPU adapter is CPU-emulated .*llvmpipe.*ask for it with --device webgpu; running on CPU/,
    );
  });

  it('auto falls back to CPU when the WebGPU session cannot be created on the GPU adapter', async () => {
    const host = fakeHost(false, false);
    const warnings: string[] = [];
    const f = new DeviceSessionFactory(
      host,
      parseDevice('auto'),
      (m) => warnings.push(m),
      {},
      () => undefined,
      async () => ({ adapter: adapter(false) }),
    );
    await f.open('a.onnx');
    expect(host.specs.map((s) => s.executionProviders)).toEqual([[{ name: 'webgpu' }], ['cpu']]);
    expect(warnings[0]).toMatch(/WebGPU failed on .*No supported adapters; running on CPU/);
  });

  it('sessions get the provider defaults of sessionOptions.ts, under what the caller sets', async () => {
    const cpu = fakeHost(false);
    const f = new DeviceSessionFactory(cpu, parseDevice('cpu'), () => {}, { intraOpNumThreads: 2 });
    await f.open('a.onnx', 'float32');
    await f.open('b.onnx', 'float16');
    expect(cpu.specs[0]).toEqual({
      ...sessionDefaults('cpu', 'float32'),
      intraOpNumThreads: 2,
      path: 'a.onnx',
      executionProviders: ['cpu'],
    });
    expect(cpu.specs[0].graphOptimizationLevel).toBe('all');
    expect(cpu.specs[1]).toMatchObject({ ...sessionDefaults('cpu', 'float16'), path: 'b.onnx' });
    const overridden = fakeHost(false);
    await new DeviceSessionFactory(overridden, parseDevice('cpu'), () => {}, { graphOptimizationLevel: 'basic' }).open(
      'a.onnx',
    );
    expect(overridden.specs[0].graphOptimizationLevel).toBe('basic');
  });

  it('webgpu asked by name uses even an emulated adapter, and fails with the Vulkan install hint when none opens', async () => {
    const ok = fakeHost(false);
    const f = new DeviceSessionFactory(
      ok,
      parseDevice('webgpu'),
      () => {},
      {},
      () => '/fake/lib.so',
      async () => ({ adapter: adapter(true) }),
    );
    await f.open('a.onnx');
    expect(ok.specs[0]).toMatchObject({ executionProviders: [{ name: 'webgpu' }], logSeverityLevel: 3 });
    expect(f.provider).toMatchObject({ provider: 'webgpu', adapter: { emulated: true } });
    const broken = fakeHost(true, false);
    const err = await new DeviceSessionFactory(
      broken,
      parseDevice('webgpu'),
      () => {},
      {},
      () => '/fake/lib.so',
      noAdapter,
    )
      .open('a.onnx')
      .catch((e) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect(err.message).toMatch(/device webgpu: no WebGPU adapter could be opened .*mesa-vulkan-drivers.*--device cpu/);
    expect(broken.specs).toHaveLength(1);
  });

  it('cpu never asks for CUDA', async () => {
    const host = fakeHost(true);
    await new DeviceSessionFactory(
      host,
      parseDevice('cpu'),
      () => {},
      {},
      () => '/fake/lib.so',
    ).open('a.onnx');
    expect(host.specs[0].executionProviders).toEqual(['cpu']);
  });
});

describe('chunked decoding', () => {
  const latents = Float32Array.from({ length: 5 * 2 }, (_, i) => i); // [F=5, C=2, 1, 1]
  const toInput = (data: Float32Array, dims: number[]) => ({ type: 'float32' as const, data: data.slice(), dims });

  it('decodes in chunks of the asked size, passing each chunk its own frame count', async () => {
    const sizes: number[] = [];
    const r = await decodeChunked({
      latents,
      frames: 5,
      channels: 2,
      height: 1,
      width: 1,
      chunkSize: 2,
      fixedFrames: null,
      toInput,
      runChunk: async (t) => {
        sizes.push(t.dims[0]);
        const d = t.data as Float32Array;
        return {
          data: Float32Array.from({ length: t.dims[0] * 3 }, (_, i) => d[Math.floor(i / 3) * 2] + 0.5),
          dims: [t.dims[0], 3, 1, 1],
        };
      },
    });
    expect(sizes).toEqual([2, 2, 1]);
    expect(Array.from(r.decoded.filter((_, i) => i % 3 === 0))).toEqual([0.5, 2.5, 4.5, 6.5, 8.5]);
  });

  it('retries a chunk that ran out of GPU memory with half the size, and says so', async () => {
    const sizes: number[] = [];
    const said: string[] = [];
    const r = await decodeChunked({
      latents,
      frames: 5,
      channels: 2,
      height: 1,
      width: 1,
      chunkSize: 4,
      fixedFrames: null,
      toInput,
      onRetry: (m) => said.push(m),
      runChunk: async (t) => {
        sizes.push(t.dims[0]);
        if (t.dims[0] > 2) throw new Error('CUDA failure 2: out of memory ; GPU=0');
        return { data: new Float32Array(t.dims[0] * 3), dims: [t.dims[0], 3, 1, 1] };
      },
    });
    expect(sizes).toEqual([4, 2, 2, 1]);
    expect(r.chunkSize).toBe(2);
    expect(said[0]).toMatch(/ran out of memory with 4 frames per chunk; retrying with 2/);
  });

  it('does not retry other errors', async () => {
    await expect(
      decodeChunked({
        latents,
        frames: 5,
        channels: 2,
        height: 1,
        width: 1,
        chunkSize: 4,
        fixedFrames: null,
        toInput,
        runChunk: async () => {
          throw new Error('Invalid rank for input');
        },
      }),
    ).rejects.toThrow(/Invalid rank/);
  });
});

describe('decode chunk choice', () => {
  const base = { frames: 25, width: 1024, height: 576, dtype: 'float16' as const };
  it('keeps a chosen size, else takes what fits on the GPU, else all frames', async () => {
    const { chooseDecodeChunk } = await import('../src/pipeline/decode.js');
    expect(chooseDecodeChunk({ ...base, resolved: 7, chosen: true, provider: 'cuda', freeMiB: 80000 }).chunk).toBe(7);
    expect(chooseDecodeChunk({ ...base, resolved: 14, chosen: true, provider: 'cuda', freeMiB: 2000 }).chunk).toBe(14);
    const small = chooseDecodeChunk({ ...base, resolved: 25, chosen: false, provider: 'cuda', freeMiB: 8000 });
    const large = chooseDecodeChunk({ ...base, resolved: 25, chosen: false, provider: 'cuda', freeMiB: 80000 });
    expect(small.chunk).toBeGreaterThanOrEqual(1);
    expect(small.chunk).toBeLessThan(25);
    expect(large.chunk).toBe(25);
    expect(small.reason).toMatch(/8000 MiB/);
    expect(chooseDecodeChunk({ ...base, resolved: 25, chosen: false, provider: 'cuda', freeMiB: null }).chunk).toBe(25);
    expect(chooseDecodeChunk({ ...base, resolved: 25, chosen: false, provider: 'cpu', freeMiB: 100 }).chunk).toBe(25);
  });
});
