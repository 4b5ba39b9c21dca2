/**
 * Backends: the local pipeline and the hosted APIs behind one `Backend` interface.
 *
 *   const { backend } = await createSelectedBackend({ backend: 'auto', localAvailable: hasGpuAndModel });
 *   const result = await backend.generate({ image: 'cat.png', fps: 7 }, { onProgress: console.log });
 *   // result.backend === 'segmind', result.reason === 'auto: no local GPU with the model; SEGMIND_API_KEY is set'
 */
import { InvalidRequestError } from '../errors.js';
import type { Backend, BackendResult } from './types.js';
import type { LocalBackendOptions } from './local.js';
import { REMOTE_BACKENDS, type RemoteBackend, type RemoteBackendName, type RemoteBackendOptions } from './options.js';
import { createSegmindBackend } from './segmind/index.js';
import { createFalBackend } from './fal/index.js';
import { createOpenAIBackend } from './openai/videos.js';
import { createVoltageBackend } from './openai/generations.js';
import { selectBackend, type BackendName, type Selection, type SelectOptions } from './select.js';

export type { Backend, BackendResult, GenerateCallOptions, ProgressEvent } from './types.js';
export * from './options.js';
export {
  selectBackend,
  BACKEND_CHOICES,
  isBackendChoice,
  type BackendChoice,
  type BackendName,
  type Selection,
  type SelectOptions,
} from './select.js';
export { createSegmindBackend, pickSegmindEndpoint } from './segmind/index.js';
export { SEGMIND_SLUGS } from './segmind/wire.js';
export { createFalBackend, pickFalEndpoint } from './fal/index.js';
export { FAL_MODELS } from './fal/wire.js';
export { createOpenAIBackend, OPENAI_DEFAULT_MODEL } from './openai/videos.js';
export { SVD_EXTENSION_FIELDS } from './openai/wire.js';
export { createVoltageBackend, VOLTAGE_DEFAULT_MODEL } from './openai/generations.js';
export type { RetryPolicy } from '../net/retry.js';

export interface CreateBackendOptions extends RemoteBackendOptions {
  /** Options of the local pipeline backend. */
  local?: LocalBackendOptions;
}

const REMOTE_FACTORIES: Record<RemoteBackendName, (o: RemoteBackendOptions) => RemoteBackend> = {
  segmind: createSegmindBackend,
  fal: createFalBackend,
  voltage: createVoltageBackend,
  openai: createOpenAIBackend,
};

/**
 * Makes a backend by name. Remote backends throw ProviderError `missing_api_key` when there is no key.
 * `local` loads the ONNX pipeline module only on first use, so hosted-only callers never load onnxruntime.
 */
export function createBackend(name: BackendName, options: CreateBackendOptions = {}): Backend {
  if (name === 'local') return lazyLocalBackend(options.local);
  if (!(REMOTE_BACKENDS as readonly string[]).includes(name)) {
    throw new InvalidRequestError([
      { field: 'backend', value: name, message: `must be one of local, ${REMOTE_BACKENDS.join(', ')}` },
    ]);
  }
  return REMOTE_FACTORIES[name](options);
}

function lazyLocalBackend(options?: LocalBackendOptions): Backend & { close(): Promise<void> } {
  let local: Promise<{ generate: Backend['generate']; close(): Promise<void> }> | undefined;
  const open = () => (local ??= import('./local.js').then((m) => new m.LocalBackend(options)));
  return {
    name: 'local',
    generate: async (request, call) => (await open()).generate(request, call),
    close: async () => {
      if (local) await (await local).close();
    },
  };
}

/**
 * Selects (see `selectBackend`) and creates a backend; every result it returns names the backend that ran
 * and why it was chosen.
 */
export async function createSelectedBackend(
  o: SelectOptions & CreateBackendOptions,
): Promise<{ backend: Backend & { close?: () => Promise<void> }; selection: Selection }> {
  const selection = await selectBackend(o);
  const inner = createBackend(selection.name, o);
  const backend: Backend & { close?: () => Promise<void> } = {
    name: inner.name,
    generate: async (request, call) => {
      const result: BackendResult = await inner.generate(request, call);
      return { ...result, backend: selection.name, reason: selection.reason };
    },
  };
  const close = (inner as { close?: () => Promise<void> }).close;
  if (close) backend.close = close;
  return { backend, selection };
}
