/**
 * A step-counting progress line on stderr (the pipeline reports between steps; onnxruntime runs in a
 * worker, so the line updates as steps finish). Plain lines when stderr is not a terminal.
 */
import type { ProgressEvent } from '../request/types.js';
import { formatDuration } from '../hub/progress.js';

/** Renders "step 5/25 [#####...................] 2.00 it/s ETA 0:10". */
export function renderStep(step: number, total: number, elapsedMs: number, width = 24): string {
  const filled = Math.round((step / total) * width);
  const rate = step / (elapsedMs / 1000);
  const eta = ((total - step) / rate) * 1000;
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const speed = rate >= 1 ? `${rate.toFixed(2)} it/s` : `${(1 / rate).toFixed(2)} s/it`;
  return `step ${step}/${total} [${bar}] ${speed} ETA ${Number.isFinite(eta) ? formatDuration(eta / 1000) : '?'}`;
}

export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr): (e: ProgressEvent) => void {
  const tty = Boolean(stream.isTTY);
  let denoiseStart = performance.now();
  let lastStage = '';
  return (e) => {
    if (e.stage === 'denoise' && e.step !== undefined && e.totalSteps !== undefined) {
      if (e.step === 0) {
        denoiseStart = performance.now();
      } else {
        const clip = e.totalClips ? `clip ${e.clip}/${e.totalClips} ` : '';
        const line = clip + renderStep(e.step, e.totalSteps, performance.now() - denoiseStart);
        if (tty) stream.write(`\r${line}${e.step === e.totalSteps ? '\n' : ''}`);
        else if (e.step === e.totalSteps || e.step === 1 || e.step % 5 === 0) stream.write(`${line}\n`);
      }
    } else if (e.message || e.stage !== lastStage) {
      stream.write(`${e.message ?? `${e.stage}...`}\n`);
    }
    lastStage = e.stage;
  };
}
