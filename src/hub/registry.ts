/**
 * Known SVD checkpoints on the Hugging Face Hub and how a model reference (`--model`) is resolved:
 * a registry name, a local directory, or any Hub repo id in diffusers layout. A variant's generation
 * defaults are its manifest's (`variantDefaults` in src/models reads them from models/configs/<name>).
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ModelNotFoundError } from '../errors.js';

export interface RegistryVariant {
  name: string;
  repo: string;
  revision: string;
  description: string;
  /** Licence / access note shown by `svd models list` and in gated-repo errors. */
  licence: string;
  /**
   * The UNet comes from another repo's file (sgm-layout `.ckpt`) instead of `repo`'s `unet/` weights, which are
   * then not fetched; `repo` still gives the configs, the VAE and the image encoder.
   */
  unetFrom?: { repo: string; revision: string; file: string };
}

const GATED_NOTE =
  'gated on the Hub: sign in on the model page, read and accept the Stability AI licence there, then set HF_TOKEN';

export const REGISTRY: readonly RegistryVariant[] = [
  {
    name: 'svd',
    repo: 'stabilityai/stable-video-diffusion-img2vid',
    revision: 'main',
    description: 'SVD image-to-video, 14 frames at 576x1024',
    licence: GATED_NOTE,
  },
  {
    name: 'svd-xt',
    repo: 'stabilityai/stable-video-diffusion-img2vid-xt',
    revision: 'main',
    description: 'SVD-XT image-to-video, 25 frames at 576x1024',
    licence: GATED_NOTE,
  },
  {
    name: 'svd-xt-1-1',
    repo: 'stabilityai/stable-video-diffusion-img2vid-xt-1-1',
    revision: 'main',
    description: 'SVD-XT 1.1, 25 frames at 576x1024, fine-tuned at fixed fps 6 / motion bucket 127',
    licence: GATED_NOTE,
  },
  {
    // MotionCtrl-SVD (TencentARC/MotionCtrl, branch svd): trained on SVD img2vid (14 frames); its sampler uses
    // guidance 1.0→2.5 and its demo fps 10 (docs/camera-motion.md)
    name: 'motionctrl-svd',
    repo: 'stabilityai/stable-video-diffusion-img2vid',
    revision: 'main',
    description: 'MotionCtrl-SVD: SVD with camera motion (8 presets or a trajectory), 14 frames at 576x1024',
    licence: `base SVD ${GATED_NOTE}; the camera module's weights (TencentARC/MotionCtrl) are public`,
    unetFrom: { repo: 'TencentARC/MotionCtrl', revision: 'main', file: 'motionctrl_svd.ckpt' },
  },
];

/** What a model reference points at. */
export type ModelDescriptor =
  | {
      kind: 'hub';
      /** The reference as given. */
      ref: string;
      repo: string;
      revision: string;
      /** Set for registry names; undefined for an arbitrary repo id. */
      variant: RegistryVariant | undefined;
    }
  | {
      kind: 'local';
      ref: string;
      /** Absolute directory. */
      dir: string;
      /** `diffusers` (model_index.json), `onnx` (model.json written by `svd models build`) or unknown. */
      layout: 'diffusers' | 'onnx' | 'unknown';
    };

/** Hub repo ids: `owner/name`, letters, digits, `-`, `_`, `.` (no `--` or `..`, like the Hub itself). */
const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function findVariant(name: string): RegistryVariant | undefined {
  return REGISTRY.find((v) => v.name === name);
}

export function isRepoId(ref: string): boolean {
  return REPO_ID.test(ref) && !ref.includes('--') && !ref.includes('..');
}

/**
 * Resolves `ref`: a registry name (`svd-xt`), an existing local directory (`./models/svd-xt`), or a Hub
 * repo id (`someone/svd-finetune`). A path-like reference (starting with `.`, `/` or `~`) must exist.
 * `revision` overrides the registry's revision for Hub references.
 *
 * @example resolveModelRef('svd-xt') // { kind: 'hub', repo: 'stabilityai/stable-video-diffusion-img2vid-xt', ... }
 */
export function resolveModelRef(ref: string, revision?: string): ModelDescriptor {
  const variant = findVariant(ref);
  if (variant) return { kind: 'hub', ref, repo: variant.repo, revision: revision ?? variant.revision, variant };

  const expanded = ref.startsWith('~/') ? join(homedir(), ref.slice(2)) : ref;
  const looksLikePath = /^(\.{1,2}\/|\/|~\/)/.test(ref) || ref === '.' || ref === '..';
  if (existsSync(expanded) && statSync(expanded).isDirectory()) {
    const dir = resolve(expanded);
    return { kind: 'local', ref, dir, layout: localLayout(dir) };
  }
  if (!looksLikePath && isRepoId(ref)) {
    const known = REGISTRY.find((v) => v.repo === ref && !v.unetFrom);
    return { kind: 'hub', ref, repo: ref, revision: revision ?? known?.revision ?? 'main', variant: known };
  }
  throw new ModelNotFoundError(
    ref,
    looksLikePath
      ? 'no such directory'
      : `not a known model; use one of ${REGISTRY.map((v) => v.name).join(', ')}, a model directory, or a Hugging Face repo id (owner/name)`,
  );
}

function localLayout(dir: string): 'diffusers' | 'onnx' | 'unknown' {
  if (existsSync(join(dir, 'model.json'))) return 'onnx';
  if (existsSync(join(dir, 'model_index.json'))) return 'diffusers';
  return 'unknown';
}
