/**
 * svd-runtime's module API.
 *
 *   import { generateVideo, createPipeline } from 'svd-runtime';
 *   const { outputPath, seed } = await generateVideo({ image: 'cat.jpg', output: 'cat.mp4' });
 */
import { LocalBackend } from './backends/local.js';

export {
  createPipeline,
  resolveForModel,
  type SvdPipeline,
  type PipelineOptions,
  type GenerateOptions,
  type GenerateResult,
} from './pipeline/pipeline.js';
export {
  generationRequestSchema,
  parseRequest,
  resolveRequest,
  type GenerationRequest,
  type GenerationRequestInput,
  type ResolvedRequest,
  type ModelDefaults,
} from './request/schema.js';
export * from './errors.js';
export type { Backend, GenerateCallOptions } from './backends/types.js';
export type { BackendResult, ProgressEvent, RunOptions } from './request/types.js';
export { generateVideo, openModelPipeline, PipelinePool, type GenerateVideoOptions } from './pipeline/local.js';
export { LocalBackend, type LocalBackendOptions } from './backends/local.js';
export {
  createBackend,
  createSelectedBackend,
  selectBackend,
  createSegmindBackend,
  createFalBackend,
  createOpenAIBackend,
  createVoltageBackend,
  parseRemoteParams,
  type RemoteParams,
  type RemoteBackendOptions,
} from './backends/index.js';
export { resolveModelDir, ensureBuilt } from './models/resolve.js';
export { buildModel, type BuildModelOptions } from './models/build.js';
export { importOnnx, type ImportOptions } from './models/importOnnx.js';
export { inspectCheckpoint, formatInspectReport, type InspectReport } from './models/inspect.js';
export { readModelDirectory } from './models/load.js';
export { manifestSchema, type ModelManifest } from './models/manifest.js';
export {
  estimateMemory,
  checkMemory,
  modelMemoryFacts,
  type MemoryEstimate,
  type MemoryRequest,
  type ModelMemoryFacts,
} from './models/memory.js';
export { pullModel, listModels, resolveModelRef, REGISTRY } from './hub/index.js';
export { writeVideo, probeVideo, type VideoInfo } from './video/index.js';
export { loadImage } from './image/index.js';
export { loopJump, planClips, clipSeed, type ClipPlan } from './motion/clips.js';
export { CAMERA_PRESETS, cameraPoses, readTrajectoryFile, type CameraPreset } from './camera/trajectory.js';
export { openTorchCheckpoint, type TorchCheckpoint } from './ckpt/reader.js';

/** The local pipeline as a reusable Backend (models stay loaded between calls). */
export function createLocalBackend(options: ConstructorParameters<typeof LocalBackend>[0] = {}): LocalBackend {
  return new LocalBackend(options);
}
export { startServer, type ServerOptions } from './server/index.js';
