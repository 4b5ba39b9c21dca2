/**
 * Writes a diffusers-layout checkpoint with seeded random weights for the configs in a directory.
 *   npx tsx scripts/make-random-checkpoint.ts --configs models/configs/tiny --out models/tiny-svd --seed 20261121
 * The embedded tiny model (models/tiny-svd) was made this way; it is random noise, not a video model.
 */
import { parseArgs } from 'node:util';
import { readCheckpointConfigs, writeRandomCheckpointDir } from '../src/models/randomCheckpoint.js';

const { values } = parseArgs({
  options: {
    configs: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '20261121' },
    dtype: { type: 'string', default: 'F32' },
  },
});
if (!values.configs || !values.out) {
  console.error(
    'usage: make-random-checkpoint --configs <dir with unet/ vae/ image_encoder/ scheduler/ configs> --out <dir> [--seed N] [--dtype F32|F16]',
  );
  process.exit(2);
}
const t0 = performance.now();
writeRandomCheckpointDir(
  values.out,
  readCheckpointConfigs(values.configs),
  Number(values.seed),
  values.dtype === 'F16' ? 'F16' : 'F32',
);
console.log(`wrote ${values.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
