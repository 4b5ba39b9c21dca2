/**
 * fal job logs → progress. Runners print tqdm-style lines (` 40%|████      | 8/20 [00:02<00:03]`); a
 * step count or a percentage becomes a fraction, anything else is passed on as a message.
 */
import type { ProgressEvent } from '../types.js';

export function progressFromLog(message: string): ProgressEvent {
  const steps = /(\d+)\s*\/\s*(\d+)(?!\d)/.exec(message);
  if (steps) {
    const step = Number(steps[1]);
    const total = Number(steps[2]);
    if (total > 0 && step <= total)
      return { stage: 'remote', step, totalSteps: total, fraction: step / total, message };
  }
  const percent = /(\d{1,3}(?:\.\d+)?)\s*%/.exec(message);
  if (percent && Number(percent[1]) <= 100) return { stage: 'remote', fraction: Number(percent[1]) / 100, message };
  return { stage: 'remote', message };
}
