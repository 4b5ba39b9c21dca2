/**
 * A registry variant's generation defaults, before anything is downloaded: the manifest that the builder
 * would write for the variant's configs (models/configs/<name>). The manifest is the one source of
 * model defaults; this only asks it early.
 */
import { existsSync } from 'node:fs';
import { manifestFromConfigs, readDiffusersConfigs } from './diffusersConfig.js';
import { manifestSchema, type ModelManifest } from './manifest.js';
import { variantConfigDir } from './paths.js';

/** The defaults of `svd`, `svd-xt`, `svd-xt-1-1` (or `tiny`); undefined for a name without bundled configs. */
export function variantDefaults(name: string): ModelManifest['defaults'] | undefined {
  const dir = variantConfigDir(name);
  if (!existsSync(dir)) return undefined;
  return manifestSchema.shape.defaults.parse(manifestFromConfigs(readDiffusersConfigs(dir)).defaults);
}
