/**
 * A seamless loop: the last frames are steered back to the first, and the jump at the wrap-around is
 * measured against the mean change between consecutive frames, with and without `loop`.
 * Embedded tiny model, a few seconds on a CPU.
 *
 *   npx tsx examples/loop.ts [output.mp4]
 */
import { createPipeline, loopJump, resolveModelDir } from '../src/index.js';

const output = process.argv[2] ?? 'loop.mp4';
const image = new URL('./input.png', import.meta.url).pathname;

const pipeline = await createPipeline({ modelDir: await resolveModelDir(undefined), device: 'cpu' });
try {
  const plain = await pipeline.generate({ image, frames: 12, steps: 4, seed: 3 }, { skipVideo: true });
  const looped = await pipeline.generate({ image, frames: 12, steps: 4, seed: 3, loop: true, output });
  const a = loopJump(plain.frames),
    b = loopJump(looped.frames);
  console.log(
    `without loop: jump ${a.jump.toFixed(1)}, mean step ${a.meanStep.toFixed(1)} (ratio ${a.ratio.toFixed(2)})`,
  );
  console.log(
    `with loop:    jump ${b.jump.toFixed(1)}, mean step ${b.meanStep.toFixed(1)} (ratio ${b.ratio.toFixed(2)})`,
  );
  console.log(`${looped.outputPath}`);
} finally {
  await pipeline.close();
}
