/**
 * One interface for every way of making a video: the local ONNX pipeline and each hosted API.
 * Backends know nothing about each other; shared logic (downloads, retries, temp files) lives
 * in shared modules, not in a base class.
 */
import type { GenerationRequestInput } from '../request/schema.js';
import type { BackendResult, RunOptions } from '../request/types.js';
import type { RemoteParamsInput } from './options.js';

export type { BackendResult, ProgressEvent } from '../request/types.js';

export interface GenerateCallOptions extends RunOptions {
  /** Provider-only fields for this call (camera preset, prompt, remote model, ...); the local backend ignores them. */
  remote?: RemoteParamsInput;
}

export interface Backend {
  readonly name: string;
  generate(request: GenerationRequestInput, options?: GenerateCallOptions): Promise<BackendResult>;
}
