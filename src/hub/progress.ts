/**
 * Text rendering of download progress for the CLI (a bar on stderr). Pure functions so the format is
 * tested without a terminal.
 */
import type { PullProgress } from './pull.js';

/** 1536 → "1.5 KB"; decimal units like the Hub's own file listings. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** 75 → "1:15"; 3725 → "1:02:05". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/**
 * One status line:
 * `[3/9] unet/diffusion_pytorch_model.fp16.safetensors [#####---------------]  25% 760 MB/3.0 GB 52 MB/s ETA 0:43`
 */
export function formatProgressLine(p: PullProgress, barWidth = 20): string {
  const head = `[${p.fileIndex}/${p.fileCount}] ${p.path}`;
  if (p.status === 'cached') return `${head} cached (${formatBytes(p.totalBytes)})`;
  const fraction = p.totalBytes > 0 ? Math.min(1, p.downloadedBytes / p.totalBytes) : 1;
  const filled = Math.round(fraction * barWidth);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const sizes = `${formatBytes(p.downloadedBytes)}/${formatBytes(p.totalBytes)}`;
  if (p.status === 'done') return `${head} ${bar} ${percent} ${sizes}`;
  const rate = p.bytesPerSecond > 0 ? ` ${formatBytes(p.bytesPerSecond)}/s` : '';
  const eta = p.etaSeconds !== undefined ? ` ETA ${formatDuration(p.etaSeconds)}` : '';
  return `${head} ${bar} ${percent} ${sizes}${rate}${eta}`;
}
