/**
 * A registry variant's generation defaults, before anything is downloaded: the manifest that the builder
 * would write for the variant's configs (models/configs/<name>). The manifest is the one source of
 * model defaults; this only asks it early.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { manifestFromConfigs, readDiffusersConfigs } from './diffusersConfig.js';
import { MANIFEST_FILE, manifestSchema, type ModelManifest } from './manifest.js';
import { variantConfigDir } from './paths.js';

/**
 * Variants built on another's configs whose own sampler differs: MotionCtrl-SVD is SVD img2vid with guidance
 * 1.0→2.5 (its LinearPredictionGuider) and fps 10 (its demo), docs/camera-motion.md.
 */
const DERIVED: Record<string, { base: string; defaults: Partial<ModelManifest['defaults']> }> = {
  'motionctrl-svd': { base: 'svd', defaults: { fps: 10, maxGuidance: 2.5 } },
};

/** What a derived variant changes in the defaults its configs give (none for the others). */
export function variantDefaultOverrides(name: string | undefined): Partial<ModelManifest['defaults']> {
  return (name && DERIVED[name]?.defaults) || {};
}

/** The defaults of `svd`, `svd-xt`, `svd-xt-1-1`, `motionctrl-svd` (or `tiny`); undefined for a name without bundled configs. */
export function variantDefaults(name: string): ModelManifest['defaults'] | undefined {
  const dir = variantConfigDir(DERIVED[name]?.base ?? name);
  if (!existsSync(dir)) return undefined;
  return manifestSchema.shape.defaults.parse({
    ...manifestFromConfigs(readDiffusersConfigs(dir)).defaults,
    ...variantDefaultOverrides(name),
  });
}

/**
 * A model reference's defaults without loading or building anything, when they can be known: the embedded tiny
 * model (no reference), a registry name, a model directory's model.json, or a diffusers checkpoint's configs.
 * Undefined otherwise (a repo id that is not pulled, an unreadable directory).
 */
export function modelRefDefaults(ref: string | undefined): ModelManifest['defaults'] | undefined {
  try {
    const named = variantDefaults(ref ?? 'tiny');
    if (named || ref === undefined) return named;
    if (existsSync(join(ref, MANIFEST_FILE))) {
      return manifestSchema.parse(JSON.parse(readFileSync(join(ref, MANIFEST_FILE), 'utf8'))).defaults;
    }
    if (existsSync(join(ref, 'unet', 'config.json'))) {
      return manifestSchema.shape.defaults.parse(manifestFromConfigs(readDiffusersConfigs(ref)).defaults);
    }
  } catch {
    // not knowable here; the run will say what is wrong
  }
  return undefined;
}
