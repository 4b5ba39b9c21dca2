/**
 * svd-runtime's module API.
 *
 *   import { generateVideo, createPipeline } from 'svd-runtime';
 *   const { outputPath, seed } = await generateVideo({ image: 'cat.jpg', output: 'cat.mp4' });
 */
import { LocalBackend } from './backends/local.js';
import type { GenerateCallOptions } from './backends/types.js';
import { resolveModelDir } from './models/resolve.js';
import { createPipeline, type GenerateOptions, type GenerateResult } from './pipeline/pipeline.js';
import { checkBeforeModelLoad } from './pipeline/preflight.js';
import { parseRequest, type GenerationRequestInput } from './request/schema.js';

export { createPipeline, resolveForModel, type SvdPipeline, type PipelineOptions, type GenerateOptions, type GenerateResult } from './pipeline/pipeline.js';
export { generationRequestSchema, parseRequest, resolveRequest, type GenerationRequest, type GenerationRequestInput, type ResolvedRequest, type ModelDefaults } from './request/schema.js';
export * from './errors.js';
export type { Backend, BackendResult, GenerateCallOptions, ProgressEvent } from './backends/types.js';
export { LocalBackend, type LocalBackendOptions } from './backends/local.js';
export { createBackend, createSelectedBackend, selectBackend, createSegmindBackend, createFalBackend, createOpenAIBackend, createVoltageBackend, parseRemoteParams, type RemoteParams, type RemoteBackendOptions } from './backends/index.js';
export { resolveModelDir, ensureBuilt } from './models/resolve.js';
export { buildModel, type BuildModelOptions } from './models/build.js';
export { importOnnx, type ImportOptions } from './models/importOnnx.js';
export { inspectCheckpoint, formatInspectReport, type InspectReport } from './models/inspect.js';
export { readModelDirectory } from './models/load.js';
export { manifestSchema, type ModelManifest } from './models/manifest.js';
export { pullModel, listModels, resolveModelRef, REGISTRY } from './hub/index.js';
export { writeVideo, probeVideo, type VideoInfo } from './video/index.js';
export { loadImage } from './image/index.js';

export interface GenerateVideoOptions extends GenerateCallOptions, Pick<GenerateOptions, 'noise' | 'dump' | 'skipVideo'> {
  /** Messages about fallbacks and builds (default: stderr). */
  log?: (message: string) => void;
}

/**
 * One video from one image with the local pipeline: resolves (and builds, once) the model, runs, writes
 * the video, closes the model. For many videos, keep a pipeline from `createPipeline` instead.
 *
 * @example
 *   const r = await generateVideo({ image: 'photo.jpg', model: 'svd-xt', output: 'clip.mp4', seed: 42 });
 *   console.log(r.outputPath, r.seed, r.timings);
 */
export async function generateVideo(request: GenerationRequestInput, options: GenerateVideoOptions = {}): Promise<GenerateResult> {
  await checkBeforeModelLoad(parseRequest(request), options.signal); // field, image and ffmpeg errors before any model work
  const log = options.log ?? ((m: string) => process.stderr.write(`svd: ${m}\n`));
  const modelDir = await resolveModelDir(request.model, { device: request.device, log, signal: options.signal });
  const pipeline = await createPipeline({ modelDir, device: request.device, log });
  try {
    return await pipeline.generate(request, options);
  } finally {
    await pipeline.close();
  }
}

/** The local pipeline as a reusable Backend (models stay loaded between calls). */
export function createLocalBackend(options: ConstructorParameters<typeof LocalBackend>[0] = {}): LocalBackend {
  return new LocalBackend(options);
}
export { startServer, type ServerOptions } from './server/index.js';
