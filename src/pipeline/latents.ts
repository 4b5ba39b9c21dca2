/**
 * The noise and the initial latents (diffusers `prepare_latents`): unit-normal draws in diffusers'
 * order — the augmentation noise of the conditioning image first, then the initial latents — and the
 * initial latents scaled by the scheduler's initial sigma.
 */
import { InvalidRequestError } from '../errors.js';
import type { ModelManifest } from '../models/manifest.js';
import { createRng, gaussianNoise } from '../tensor/random.js';
import type { InjectedNoise } from './debug.js';

/** The latent video's shape: [1, frames, channels, height, width] (height and width in latent cells). */
export interface LatentShape {
  frames: number;
  channels: number;
  height: number;
  width: number;
}

export function latentShape(manifest: ModelManifest, frames: number, width: number, height: number): LatentShape {
  const scale = manifest.vae.spatialScaleFactor;
  return { frames, channels: manifest.vae.latentChannels, height: height / scale, width: width / scale };
}

/** Values in one latent frame (C · h · w). */
export function frameSize(s: LatentShape): number {
  return s.channels * s.height * s.width;
}

export interface Noise {
  augNoise: Float32Array /* [1, 3, H, W] */;
  initNoise: Float32Array /* [1, F, C, h, w] */;
}

/** Draws both noises from the seed, or checks the injected ones (the `--noise` debugging contract). */
export function drawNoise(
  seed: number,
  image: { width: number; height: number },
  latent: LatentShape,
  injected?: InjectedNoise,
): Noise {
  const { width: W, height: H } = image;
  const rng = createRng(seed);
  const augNoise = injected?.augNoise ?? gaussianNoise(rng, 3 * H * W);
  const initNoise = injected?.initNoise ?? gaussianNoise(rng, latent.frames * frameSize(latent));
  checkNoise(augNoise, 'aug_noise', [1, 3, H, W]);
  checkNoise(initNoise, 'init_noise', [1, latent.frames, latent.channels, latent.height, latent.width]);
  return { augNoise, initNoise };
}

/** The initial latents: the noise times the scheduler's initial sigma. */
export function prepareLatents(initNoise: Float32Array, initNoiseSigma: number): Float32Array /* [1, F, C, h, w] */ {
  const latents = new Float32Array(initNoise.length);
  for (let i = 0; i < latents.length; i++) latents[i] = initNoise[i] * initNoiseSigma;
  return latents;
}

function checkNoise(data: Float32Array, name: string, shape: number[]): void {
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw new InvalidRequestError([
      {
        field: name,
        value: `${data.length} values`,
        message: `must have shape [${shape.join(',')}] (${expected} values) for this request`,
      },
    ]);
  }
}
