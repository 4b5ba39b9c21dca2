/**
 * The local pipeline as a Backend. Keeps one pipeline per model directory open between calls, so a
 * server or a script making many videos loads the models once.
 */
import type { Backend, BackendResult, GenerateCallOptions } from './types.js';
import { parseRequest, type GenerationRequestInput } from '../request/schema.js';
import { checkBeforeModelLoad } from '../pipeline/preflight.js';
import { createPipeline, type SvdPipeline } from '../pipeline/pipeline.js';
import { resolveModelDir } from '../models/resolve.js';

export interface LocalBackendOptions {
  /** Default model when a request names none (registry name, directory or repo id); default: embedded tiny model. */
  model?: string;
  device?: string;
  log?: (message: string) => void;
}

export class LocalBackend implements Backend {
  readonly name = 'local';
  private pipelines = new Map<string, Promise<SvdPipeline>>();

  constructor(private readonly options: LocalBackendOptions = {}) {}

  /** Opens (once) and returns the pipeline for a model reference. */
  async pipeline(model?: string, device?: string): Promise<SvdPipeline> {
    const modelDir = await resolveModelDir(model ?? this.options.model, { log: this.options.log });
    const dev = device ?? this.options.device ?? 'auto';
    const key = `${modelDir}\u0000${dev}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = createPipeline({ modelDir, device: dev, log: this.options.log });
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  async generate(request: GenerationRequestInput, options: GenerateCallOptions = {}): Promise<BackendResult> {
    await checkBeforeModelLoad(parseRequest(request), options.signal); // image and ffmpeg errors before a model loads
    const pipeline = await this.pipeline(request.model, request.device);
    const result = await pipeline.generate(request, options);
    return {
      outputPath: result.outputPath,
      format: result.format,
      seed: result.seed,
      backend: 'local',
      timings: result.timings,
      metadata: { ...result.metadata, stepTimings: result.stepTimings, fps: result.fps },
    };
  }

  async close(): Promise<void> {
    const all = [...this.pipelines.values()];
    this.pipelines.clear();
    for (const p of all) await (await p.catch(() => undefined))?.close();
  }
}
