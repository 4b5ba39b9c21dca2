/**
 * The local pipeline as a Backend. Keeps one pipeline per model directory and device open between calls,
 * so a server or a script making many videos loads the models once.
 */
import type { Backend, BackendResult, GenerateCallOptions } from './types.js';
import type { GenerationRequestInput } from '../request/schema.js';
import { generateVideo, openModelPipeline, PipelinePool } from '../pipeline/local.js';
import type { SvdPipeline } from '../pipeline/pipeline.js';
import type { ModelManifest } from '../models/manifest.js';
import { modelRefDefaults } from '../models/variants.js';

export interface LocalBackendOptions {
  /** Default model when a request names none (registry name, directory or repo id); default: embedded tiny model. */
  model?: string;
  /** Default device when a request names none; default `auto`. */
  device?: string;
  log?: (message: string) => void;
  /** Memory a job may use (`svd serve --max-memory`); default: what the machine has available. */
  maxMemoryBytes?: number;
}

export class LocalBackend implements Backend {
  readonly name = 'local';
  private readonly pool = new PipelinePool();

  constructor(private readonly options: LocalBackendOptions = {}) {}

  /** The default model's generation defaults, when known without loading it (the web page shows them). */
  modelDefaults(): ModelManifest['defaults'] | undefined {
    return modelRefDefaults(this.options.model);
  }

  /** Opens (once) and returns the pipeline for a model reference. */
  pipeline(model?: string, device?: string, signal?: AbortSignal): Promise<SvdPipeline> {
    return openModelPipeline(model ?? this.options.model, {
      device: device ?? this.options.device,
      signal,
      log: this.options.log,
      pool: this.pool,
    });
  }

  async generate(request: GenerationRequestInput, options: GenerateCallOptions = {}): Promise<BackendResult> {
    const result = await generateVideo(request, {
      signal: options.signal,
      onProgress: options.onProgress,
      log: this.options.log,
      pool: this.pool,
      defaults: { model: this.options.model, device: this.options.device },
      keepFrames: false,
      ...(this.options.maxMemoryBytes ? { maxMemoryBytes: this.options.maxMemoryBytes } : {}),
    });
    return {
      outputPath: result.outputPath,
      format: result.format,
      seed: result.seed,
      backend: 'local',
      timings: result.timings,
      metadata: { ...result.metadata, stepTimings: result.stepTimings, fps: result.fps },
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
