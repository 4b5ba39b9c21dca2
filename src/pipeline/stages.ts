/**
 * The one wrapper around the pipeline's stages: it checks for abort before a stage (and before each
 * denoising step), reports progress when a stage starts (and after each step), and measures wall time.
 * The stages themselves (`encode.ts`, `latents.ts`, `denoise.ts`, `decode.ts`) contain only the math.
 */
import { throwIfAborted } from '../errors.js';
import type { ProgressEvent, ProgressStage } from '../request/types.js';

export class StageRunner {
  /** Milliseconds per stage that ran. */
  readonly timings: Partial<Record<ProgressStage, number>> = {};
  /** Milliseconds per denoising step. */
  readonly stepTimings: number[] = [];
  private stepStart = 0;

  constructor(
    private readonly signal?: AbortSignal,
    private readonly onProgress?: (e: ProgressEvent) => void,
  ) {}

  /** Runs one stage: abort check, a start event (`fraction: 0`, plus `start`), its duration in `timings`. */
  async run<T>(stage: ProgressStage, fn: () => Promise<T> | T, start: Omit<ProgressEvent, 'stage'> = {}): Promise<T> {
    throwIfAborted(this.signal);
    this.onProgress?.({ stage, fraction: 0, ...start });
    const t = performance.now();
    const result = await fn();
    this.timings[stage] = (this.timings[stage] ?? 0) + performance.now() - t;
    return result;
  }

  /** Before a denoising step: the abort point between steps. */
  beginStep(): void {
    throwIfAborted(this.signal);
    this.stepStart = performance.now();
  }

  /** After denoising step `step` (1-based) of `total`. */
  endStep(step: number, total: number): void {
    this.stepTimings.push(performance.now() - this.stepStart);
    this.onProgress?.({ stage: 'denoise', step, totalSteps: total, fraction: step / total });
  }

  throwIfAborted(): void {
    throwIfAborted(this.signal);
  }
}
