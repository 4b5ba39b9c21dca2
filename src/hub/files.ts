/**
 * Which files of a diffusers-layout SVD repo we fetch: the configs plus one weights file per model,
 * fp16 when the repo has it, else fp32. Never the whole repo: the stabilityai repos also hold fp32
 * copies and original (sgm) checkpoints, several GB each.
 */

/** Config files; `optional` ones may be missing (some fine-tunes have no feature_extractor/). */
export const CONFIG_FILES: ReadonlyArray<{ path: string; optional: boolean }> = [
  { path: 'model_index.json', optional: false },
  { path: 'scheduler/scheduler_config.json', optional: false },
  { path: 'feature_extractor/preprocessor_config.json', optional: true },
  { path: 'unet/config.json', optional: false },
  { path: 'vae/config.json', optional: false },
  { path: 'image_encoder/config.json', optional: false },
];

export interface WeightsComponent {
  component: 'unet' | 'vae' | 'image_encoder';
  /** Tried in order; the first that exists is used. `.json` candidates are shard indexes. */
  candidates: string[];
}

/** diffusers' naming: `<name>.fp16.safetensors`, sharded `<name>.safetensors.index.fp16.json`. */
function candidates(folder: string, name: string): string[] {
  return [
    `${folder}/${name}.fp16.safetensors`,
    `${folder}/${name}.safetensors.index.fp16.json`,
    `${folder}/${name}.safetensors`,
    `${folder}/${name}.safetensors.index.json`,
  ];
}

export const WEIGHTS: readonly WeightsComponent[] = [
  { component: 'unet', candidates: candidates('unet', 'diffusion_pytorch_model') },
  { component: 'vae', candidates: candidates('vae', 'diffusion_pytorch_model') },
  { component: 'image_encoder', candidates: candidates('image_encoder', 'model') },
];

export function isShardIndex(path: string): boolean {
  return path.endsWith('.json');
}

/**
 * The shard files named by a safetensors index (`weight_map` values), as repo paths next to the index.
 * Throws on a malformed index so a broken download is not mistaken for a complete model.
 */
export function shardsFromIndex(indexPath: string, indexText: string): string[] {
  const folder = indexPath.includes('/') ? indexPath.slice(0, indexPath.lastIndexOf('/') + 1) : '';
  const parsed = JSON.parse(indexText) as { weight_map?: Record<string, unknown> };
  if (!parsed || typeof parsed.weight_map !== 'object' || parsed.weight_map === null) {
    throw new Error(`${indexPath} has no weight_map`);
  }
  const shards = new Set<string>();
  for (const file of Object.values(parsed.weight_map)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('..'))
      throw new Error(`${indexPath}: bad shard name ${JSON.stringify(file)}`);
    shards.add(folder + file);
  }
  return [...shards].sort();
}
