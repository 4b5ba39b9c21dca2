/**
 * Camera presets with a MotionCtrl-layout checkpoint, without downloading anything: the embedded tiny model's VAE
 * and image encoder plus a random-weight `.ckpt` UNet with MotionCtrl's key names (so the "camera motion" is noise,
 * but every piece runs: the .ckpt reader, the camera module, the presets). With the real weights use
 * `--model motionctrl-svd` instead. A few seconds per preset on a CPU.
 *
 *   npx tsx examples/camera-motion.ts [output-dir]
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomMotionCtrlTensors, writeSgmCheckpoint } from '../src/camera/checkpoint.js';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { buildModel, CAMERA_PRESETS, createPipeline } from '../src/index.js';

const outDir = process.argv[2] ?? 'camera-motion';
mkdirSync(outDir, { recursive: true });
const image = new URL('./input.png', import.meta.url).pathname;

const config = JSON.parse(readFileSync(join(embeddedTinyCheckpoint(), 'unet', 'config.json'), 'utf8'));
const ckpt = join(outDir, 'motionctrl_tiny.ckpt');
writeSgmCheckpoint(ckpt, config, randomMotionCtrlTensors(config, 1));
const modelDir = join(outDir, 'model');
await buildModel({ checkpoint: embeddedTinyCheckpoint(), unetCheckpoint: ckpt, outDir: modelDir });

const pipeline = await createPipeline({ modelDir, device: 'cpu' });
try {
  for (const camera of CAMERA_PRESETS) {
    const output = join(outDir, `${camera.toLowerCase().replace(' ', '-')}.mp4`);
    await pipeline.generate({ image, camera, motionSpeed: 2, frames: 8, steps: 4, seed: 3, output });
    console.log(output);
  }
} finally {
  await pipeline.close();
}
