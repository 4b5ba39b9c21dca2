/**
 * The one local path "resolve model → open pipeline → generate → close" passes the device and the abort
 * signal to the model resolution whoever calls it (`generateVideo`, `LocalBackend`), so `svd serve --device cpu`
 * builds CPU graphs and a pull can be cancelled. The resolver is replaced by a recorder here.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REFERENCE_IMAGE } from './helpers/reference.js';

const calls: { ref: string | undefined; options: Record<string, unknown> }[] = [];
vi.mock('../src/models/resolve.js', () => ({
  resolveModelDir: async (ref: string | undefined, options: Record<string, unknown>) => {
    calls.push({ ref, options });
    throw new Error('recorded');
  },
}));

// An explicit cuda device is refused before resolution when the CUDA provider is missing (preflight): pretend it is
// installed, so the request reaches the recorder on any machine.
vi.mock('../src/runtime/device.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../src/runtime/device.js')>()),
  findCudaProviderLibrary: () => '/fake/libonnxruntime_providers_cuda.so',
}));

const { LocalBackend } = await import('../src/backends/local.js');
const { generateVideo } = await import('../src/pipeline/local.js');
const { InvalidRequestError } = await import('../src/errors.js');

afterEach(() => {
  calls.length = 0;
});

describe('local run: model resolution gets the device and the signal', () => {
  it("LocalBackend passes its default device and model, and the call's signal", async () => {
    const backend = new LocalBackend({ device: 'cpu', model: 'svd-xt', log: () => {} });
    const signal = new AbortController().signal;
    await expect(backend.generate({ image: REFERENCE_IMAGE, format: 'png' }, { signal })).rejects.toThrow('recorded');
    expect(calls).toHaveLength(1);
    expect(calls[0].ref).toBe('svd-xt');
    expect(calls[0].options).toMatchObject({ device: 'cpu', signal });
  });

  it("a request's own model and device win over the backend defaults", async () => {
    const backend = new LocalBackend({ device: 'cpu', model: 'svd-xt', log: () => {} });
    await expect(
      backend.generate({ image: REFERENCE_IMAGE, format: 'png', model: 'svd', device: 'cuda:1' }),
    ).rejects.toThrow('recorded');
    expect(calls[0]).toMatchObject({ ref: 'svd', options: { device: 'cuda:1' } });
  });

  it("generateVideo passes the request's device and the signal, after checking every field", async () => {
    const signal = new AbortController().signal;
    await expect(
      generateVideo({ image: REFERENCE_IMAGE, format: 'png', device: 'cpu' }, { signal, log: () => {} }),
    ).rejects.toThrow('recorded');
    expect(calls[0].options).toMatchObject({ device: 'cpu', signal });
    await expect(generateVideo({ image: REFERENCE_IMAGE, steps: 0 }, { log: () => {} })).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
    expect(calls).toHaveLength(1);
  });
});
