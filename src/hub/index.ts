/** Models from the Hugging Face Hub: registry, downloader into the shared cache, cache listing. */
export {
  REGISTRY,
  findVariant,
  isRepoId,
  resolveModelRef,
  type ModelDescriptor,
  type RegistryVariant,
} from './registry.js';
export { pullModel, type PullOptions, type PullProgress, type PulledModel } from './pull.js';
export { listModels, modelPath, removeModel, type ModelListing } from './models.js';
export { hubCacheDir, hubSettings, hubToken, type HubSettings } from './settings.js';
export { formatBytes, formatDuration, formatProgressLine } from './progress.js';
