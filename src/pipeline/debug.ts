/**
 * The debugging contract (stable; documented in the README and used by the parity tests):
 *  --noise DIR reads `init_noise.npy` [1,F,4,h,w] and `aug_noise.npy` [1,3,H,W] (float32, unit normal;
 *              the initial noise before scaling by the initial sigma) instead of drawing noise;
 *  --dump DIR  writes every intermediate as .npy: clip_pixel_values, image_embeddings, image_latents,
 *              added_time_ids, sigmas, timesteps, latents_<i>, decoded, frames.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidRequestError } from '../errors.js';
import { readNpy, writeNpy } from '../tensor/npy.js';

export interface InjectedNoise {
  initNoise: Float32Array /* [1,F,C,h,w] */;
  augNoise: Float32Array /* [1,3,H,W] */;
}

export type DebugDump = (name: string, data: Float32Array | Uint8Array, shape: number[]) => Promise<void> | void;

/** Reads `init_noise.npy` and `aug_noise.npy` from a directory. */
export function readNoiseDir(dir: string): InjectedNoise {
  const read = (file: string) => {
    const path = join(dir, file);
    if (!existsSync(path))
      throw new InvalidRequestError([{ field: 'noise', value: dir, message: `must contain ${file} (float32 .npy)` }]);
    const arr = readNpy(path);
    if (!(arr.data instanceof Float32Array)) {
      throw new InvalidRequestError([
        { field: 'noise', value: path, message: `must be float32 (<f4), got ${arr.dtype}` },
      ]);
    }
    return arr.data;
  };
  return { initNoise: read('init_noise.npy'), augNoise: read('aug_noise.npy') };
}

/** A dump function writing `<dir>/<name>.npy`. */
export function npyDumper(dir: string): DebugDump {
  mkdirSync(dir, { recursive: true });
  return (name, data, shape) => writeNpy(join(dir, `${name}.npy`), data, shape);
}
