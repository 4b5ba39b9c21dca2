/**
 * A longer video from chained clips: each clip is conditioned on the previous clip's frame where their
 * `overlap` shared frames begin, the shared frames are cross-faded, and each clip has its own seed
 * (reported). Embedded tiny model, a few seconds on a CPU.
 *
 *   npx tsx examples/long-video.ts [output.mp4]
 */
import { generateVideo } from '../src/index.js';

const output = process.argv[2] ?? 'long-video.mp4';
const image = new URL('./input.png', import.meta.url).pathname;

const r = await generateVideo(
  { image, frames: 8, steps: 4, clips: 3, overlap: 2, seed: 1, output },
  {
    onProgress: (e) => {
      if (e.stage === 'denoise' && e.step === e.totalSteps) console.log(`clip ${e.clip}/${e.totalClips} done`);
    },
  },
);
console.log(
  `${r.outputPath}: ${r.metadata.frames} frames from ${r.metadata.clips} clips, ` +
    `seeds ${JSON.stringify(r.metadata.clipSeeds)}`,
);
