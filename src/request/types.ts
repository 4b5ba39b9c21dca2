/**
 * What every way of making a video shares, whichever runs it (the local pipeline or a hosted API):
 * the per-call options (abort signal, progress callback), the progress events and the result.
 * Provider-only options live in `backends/`, debugging options in `pipeline/`.
 */
import type { OUTPUT_FORMATS } from './schema.js';

/** The stages a job reports progress for, in the order they run. */
export const PROGRESS_STAGES = [
  'queue',
  'load',
  'preprocess',
  'encode',
  'denoise',
  'decode',
  'video',
  'remote',
  'download',
] as const;
export type ProgressStage = (typeof PROGRESS_STAGES)[number];

/** A progress report. `fraction` is 0..1 over the whole job when known. */
export interface ProgressEvent {
  stage: ProgressStage;
  /** Denoising step (1-based) and total, when stage is 'denoise'. */
  step?: number;
  totalSteps?: number;
  /** With chained clips: the clip (1-based) and how many there are; `fraction` then covers all clips. */
  clip?: number;
  totalClips?: number;
  fraction?: number;
  message?: string;
}

/** Options every run accepts. */
export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What a finished job returns, whichever backend ran it. */
export interface BackendResult {
  /** The video written to disk (mp4/webm/gif file, or directory of PNG frames). */
  outputPath: string;
  format: OutputFormat;
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
