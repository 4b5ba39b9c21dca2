/**
 * One interface for every way of making a video: the local ONNX pipeline and each hosted API.
 * Backends know nothing about each other; shared logic (downloads, retries, temp files) lives
 * in shared modules, not in a base class.
 */
import type { GenerationRequestInput } from '../request/schema.js';
import type { RemoteParamsInput } from './options.js';

/** A progress report. `fraction` is 0..1 over the whole job when known. */
export interface ProgressEvent {
  stage: 'queue' | 'load' | 'preprocess' | 'encode' | 'denoise' | 'decode' | 'video' | 'remote' | 'download';
  /** Denoising step (1-based) and total, when stage is 'denoise'. */
  step?: number;
  totalSteps?: number;
  fraction?: number;
  message?: string;
}

export interface GenerateCallOptions {
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Provider-only fields for this call (camera preset, prompt, remote model, ...); the local backend ignores them. */
  remote?: RemoteParamsInput;
}

export interface BackendResult {
  /** The video written to disk (mp4/webm/gif file, or directory of PNG frames). */
  outputPath: string;
  format: 'mp4' | 'webm' | 'gif' | 'png';
  /** The seed actually used (reported by the provider, or the one we sent, or our random one). */
  seed: number;
  /** Which backend ran, and why it was chosen (for `auto`). */
  backend: string;
  reason?: string;
  /** Milliseconds per stage. */
  timings: Record<string, number>;
  /** Provider-specific facts: endpoint, request id, ignored parameters, ... */
  metadata: Record<string, unknown>;
}

export interface Backend {
  readonly name: string;
  generate(request: GenerationRequestInput, options?: GenerateCallOptions): Promise<BackendResult>;
}
