/**
 * A motion mask: the left half of the picture stays still, the right half moves. Uses the embedded tiny
 * model (random weights: the motion is noise, the still half is the point), so it runs in seconds on a CPU.
 *
 *   npx tsx examples/motion-mask.ts [output.mp4]
 */
import sharp from 'sharp';
import { generateVideo } from '../src/index.js';

const output = process.argv[2] ?? 'motion-mask.mp4';
const image = new URL('./input.png', import.meta.url).pathname;

// The mask may have any size (it is resized to the video); white = still, black = moves.
const width = 64,
  height = 32;
const pixels = Buffer.alloc(width * height, 0);
for (let y = 0; y < height; y++) pixels.fill(255, y * width, y * width + width / 2);
const mask = Uint8Array.from(
  await sharp(pixels, { raw: { width, height, channels: 1 } })
    .png()
    .toBuffer(),
);

const r = await generateVideo({ image, mask, frames: 8, steps: 4, seed: 1, output });
console.log(`${r.outputPath}: ${r.metadata.frames} frames, seed ${r.seed}, still fraction ${r.metadata.maskCoverage}`);
