/**
 * Memory of chained clips: peak RSS of a generation with 1, 2 and 6 chained clips, with the frames streamed to
 * the video writer only (`keepFrames: false`, what the CLI and server do) and with every frame also returned
 * (`keepFrames: true`). Model memory should not grow with the clip count; only returned frames should.
 * Each run is a child process (its own peak RSS), on the embedded tiny model at a larger size so a clip's
 * tensors and frames are megabytes, not kilobytes.
 *
 *   npx tsx scripts/bench-clips.ts [--width 256 --height 128 --frames 14 --steps 2 --clips 1,2,6]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { ensureBuilt } from '../src/models/resolve.js';
import { createPipeline } from '../src/pipeline/pipeline.js';
import { bytes, duration, GiB, peakRss, reportToParent, runChild } from './bench-util.js';

const { values: a } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    'model-dir': { type: 'string' },
    keep: { type: 'string', default: '0' },
    width: { type: 'string', default: '256' },
    height: { type: 'string', default: '128' },
    frames: { type: 'string', default: '14' },
    steps: { type: 'string', default: '2' },
    clips: { type: 'string', default: '1,2,6' },
    out: { type: 'string' },
  },
});
const IMAGE = join(import.meta.dirname, '..', 'examples', 'input.png');

interface ChildResult {
  peakRss: number;
  rssBeforeGenerate: number;
  totalMs: number;
  frames: number;
}

if (a.child) {
  const pipeline = await createPipeline({ modelDir: a['model-dir']!, device: 'cpu', log: () => {} });
  await pipeline.generate({ image: IMAGE, width: 128, height: 64, frames: 2, steps: 1, seed: 1 }, { skipVideo: true }); // warm-up
  const rssBeforeGenerate = peakRss();
  const t = performance.now();
  const r = await pipeline.generate(
    {
      image: IMAGE,
      width: Number(a.width),
      height: Number(a.height),
      frames: Number(a.frames),
      steps: Number(a.steps),
      clips: Number(a.clips),
      overlap: 3,
      seed: 1,
      output: a.out,
    },
    { keepFrames: a.keep === '1' },
  );
  await pipeline.close();
  const result: ChildResult = {
    peakRss: peakRss(),
    rssBeforeGenerate,
    totalMs: performance.now() - t,
    frames: Number(r.metadata.frames),
  };
  reportToParent(result);
} else {
  const cache = mkdtempSync(join(tmpdir(), 'svd-bench-clips-'));
  try {
    process.env.SVD_CACHE_DIR = cache;
    const modelDir = await ensureBuilt(embeddedTinyCheckpoint(), 'tiny', { device: 'cpu' });
    const self = fileURLToPath(import.meta.url);
    console.log(`tiny model, ${a.width}×${a.height}, ${a.frames} frames per clip, overlap 3, ${a.steps} steps, CPU`);
    console.log('| clips | video frames | keepFrames | peak RSS | peak RSS − RSS after warm-up | generate |');
    console.log('|---|---|---|---|---|---|');
    for (const clips of a.clips.split(',').map(Number)) {
      for (const keep of ['0', '1']) {
        const run = await runChild<ChildResult>(
          self,
          [
            '--child',
            '--model-dir',
            modelDir,
            '--keep',
            keep,
            '--clips',
            String(clips),
            '--width',
            a.width,
            '--height',
            a.height,
            '--frames',
            a.frames,
            '--steps',
            a.steps,
            '--out',
            join(cache, `c${clips}-${keep}.mp4`),
          ],
          { rssCapBytes: 3 * GiB },
        );
        const r = run.result;
        if (!r) throw new Error(`child failed (exit ${run.exitCode}): ${run.stderrTail}`);
        console.log(
          `| ${clips} | ${r.frames} | ${keep === '1'} | ${bytes(r.peakRss)} | ${bytes(r.peakRss - r.rssBeforeGenerate)} | ${duration(r.totalMs)} |`,
        );
      }
    }
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}
