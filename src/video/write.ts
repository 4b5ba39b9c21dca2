/**
 * Frames → a video file (mp4, webm, gif) through ffmpeg, or a directory of PNG frames through sharp.
 *
 * Never leaves a partial result at the target: everything is written to a temporary path next to the
 * target and renamed into place only when complete; on error or abort ffmpeg is killed and the
 * temporary file or directory is removed.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { AbortError, FfmpegError, InvalidRequestError, throwIfAborted } from '../errors.js';
import { partialPathFor, sweepStalePartials } from '../io/partial.js';
import { findFfmpeg } from './ffmpeg.js';
import type { OutputFormat } from '../request/types.js';

export interface WriteVideoOptions {
  width: number;
  height: number;
  /** Playback frame rate. */
  fps: number;
  format: OutputFormat;
  /** Target file (mp4/webm/gif) or directory (png frames). Parent directories are created. */
  output: string;
  signal?: AbortSignal;
}

/** Codec arguments per container (docs/runtime.md §5). Every format plays at the requested fps. */
const CODEC_ARGS: Record<Exclude<OutputFormat, 'png'>, string[]> = {
  mp4: [
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    '-crf',
    '18',
    '-preset',
    'medium',
    '-movflags',
    '+faststart',
    '-f',
    'mp4',
  ],
  webm: [
    '-c:v',
    'libvpx-vp9',
    '-pix_fmt',
    'yuv420p',
    '-crf',
    '32',
    '-b:v',
    '0',
    '-row-mt',
    '1',
    '-deadline',
    'good',
    '-cpu-used',
    '4',
    '-f',
    'webm',
  ],
  gif: [
    '-filter_complex',
    '[0:v]split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=sierra2_4a',
    '-loop',
    '0',
    '-f',
    'gif',
  ],
};

/** Name of frame `i` in a PNG frame directory. */
export function pngFrameName(i: number): string {
  return `frame_${String(i).padStart(4, '0')}.png`;
}

/**
 * Writes RGB24 HWC frames (each width·height·3 bytes) as a video or PNG directory; resolves to the
 * absolute output path. Throws FfmpegError (ffmpeg missing or failing), AbortError, or
 * InvalidRequestError for options that cannot work (odd sides for mp4/webm, a bad output path).
 */
export async function writeVideo(
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: WriteVideoOptions,
): Promise<string> {
  const { width, height, fps, format, signal } = options;
  checkOptions(options);
  throwIfAborted(signal);
  const output = resolve(options.output);
  const ffmpeg = format === 'png' ? undefined : findFfmpeg(); // fail before creating anything
  await mkdir(dirname(output), { recursive: true });
  // A run killed with -9 mid-encode cannot remove its partial; the next write here does (io/partial.ts).
  await sweepStalePartials(dirname(output));
  const tmp = partialPathFor(output);
  try {
    if (format === 'png') {
      await writePngFrames(frames, tmp, options);
      await replaceDirectory(tmp, output);
    } else {
      await encode(ffmpeg as string, frames, tmp, { width, height, fps, format, signal });
      await rename(tmp, output);
    }
    return output;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

function checkOptions(o: WriteVideoOptions): void {
  const issues = [];
  for (const field of ['width', 'height'] as const) {
    const v = o[field];
    if (!Number.isInteger(v) || v < 1) issues.push({ field, value: v, message: 'must be a positive whole number' });
    else if ((o.format === 'mp4' || o.format === 'webm') && v % 2 !== 0)
      issues.push({ field, value: v, message: `must be even for ${o.format} (yuv420p)` });
  }
  if (!(o.fps > 0) || !Number.isFinite(o.fps))
    issues.push({ field: 'fps', value: o.fps, message: 'must be a positive number' });
  if (!['mp4', 'webm', 'gif', 'png'].includes(o.format))
    issues.push({ field: 'format', value: o.format, message: 'must be one of mp4, webm, gif, png' });
  if (!o.output) issues.push({ field: 'output', value: o.output, message: 'must be a path' });
  if (issues.length) throw new InvalidRequestError(issues);
}

function checkFrame(frame: Uint8Array, index: number, width: number, height: number): void {
  if (!(frame instanceof Uint8Array) || frame.length !== width * height * 3) {
    throw new RangeError(
      `frame ${index} has ${frame?.length} bytes; ${width}×${height}×3 = ${width * height * 3} expected (RGB24)`,
    );
  }
}

/**
 * GIF delays are whole centiseconds. ffmpeg rounds each frame's start time, which keeps the total right, except that the
 * last frame gets its own rounded duration (12 fps, 14 frames: 1.16 s instead of 1.17). When the frame count is known,
 * the last delay is set so the GIF lasts frames/fps rounded to a centisecond.
 */
function gifFinalDelay(
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  o: { fps: number; format: string },
): string[] {
  if (o.format !== 'gif' || !Array.isArray(frames) || frames.length === 0) return [];
  const end = (n: number) => Math.round((100 * n) / o.fps);
  return ['-final_delay', String(end(frames.length) - end(frames.length - 1))];
}

async function encode(
  ffmpeg: string,
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  tmpFile: string,
  o: { width: number; height: number; fps: number; format: Exclude<OutputFormat, 'png'>; signal?: AbortSignal },
): Promise<void> {
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    '-s',
    `${o.width}x${o.height}`,
    '-framerate',
    String(o.fps),
    '-i',
    'pipe:0',
    ...CODEC_ARGS[o.format],
    ...gifFinalDelay(frames, o),
    tmpFile,
  ];
  const child = spawn(ffmpeg, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8192);
  });
  child.stdin.on('error', () => {}); // EPIPE when ffmpeg dies early; the exit status tells what happened
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((done) => {
    child.once('error', (error) => {
      exited = true;
      done({ code: null, signal: null, error });
    });
    child.once('close', (code, sig) => {
      exited = true;
      done({ code, signal: sig });
    });
  });
  const kill = () => {
    if (!exited) child.kill('SIGKILL');
  };
  o.signal?.addEventListener('abort', kill, { once: true });
  try {
    let index = 0;
    for await (const frame of frames) {
      throwIfAborted(o.signal);
      checkFrame(frame, index++, o.width, o.height);
      if (exited) break;
      if (!child.stdin.write(frame)) await Promise.race([once(child.stdin, 'drain').catch(() => {}), exit]);
    }
    if (index === 0) throw new RangeError('no frames to write');
    throwIfAborted(o.signal);
    child.stdin.end();
    const result = await exit;
    throwIfAborted(o.signal);
    if (result.error) throw new FfmpegError(`could not run ${ffmpeg}: ${result.error.message}`);
    if (result.code !== 0) {
      const detail = stderr.trim().split('\n').slice(-5).join('\n  ');
      throw new FfmpegError(
        `ffmpeg failed writing ${o.format} (exit ${result.code ?? result.signal})${detail ? `:\n  ${detail}` : ''}`,
      );
    }
  } catch (err) {
    kill();
    await exit;
    throw err instanceof AbortError || o.signal?.aborted ? new AbortError() : err;
  } finally {
    o.signal?.removeEventListener('abort', kill);
  }
}

async function writePngFrames(
  frames: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  dir: string,
  o: WriteVideoOptions,
): Promise<void> {
  await mkdir(dir);
  let index = 0;
  for await (const frame of frames) {
    throwIfAborted(o.signal);
    checkFrame(frame, index, o.width, o.height);
    await sharp(frame, { raw: { width: o.width, height: o.height, channels: 3 } })
      .png()
      .toFile(join(dir, pngFrameName(index)));
    index++;
  }
  if (index === 0) throw new RangeError('no frames to write');
  throwIfAborted(o.signal);
}

/**
 * Moves a finished frame directory to `target`. An existing target is replaced only when it holds
 * nothing but frame_NNNN.png files (an earlier run); anything else is refused rather than deleted.
 */
async function replaceDirectory(tmp: string, target: string): Promise<void> {
  const existing = await stat(target).catch(() => undefined);
  if (!existing) {
    await rename(tmp, target);
    return;
  }
  const refuse = (why: string) =>
    new InvalidRequestError([
      { field: 'output', value: target, message: `${why}; choose another path for png frames` },
    ]);
  if (!existing.isDirectory()) throw refuse('exists and is not a directory');
  const entries = await readdir(target);
  if (entries.some((e) => !/^frame_\d{4,}\.png$/.test(e))) throw refuse('is a directory with other files in it');
  const old = `${tmp}.old`;
  await rename(target, old);
  try {
    await rename(tmp, target);
  } catch (err) {
    await rename(old, target).catch(() => {});
    throw err;
  }
  await rm(old, { recursive: true, force: true });
}
