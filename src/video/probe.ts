/** ffprobe of a written video: what the tests and `svd doctor` check (frame count, rate, codec, size). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FfmpegError } from '../errors.js';
import { findFfprobe } from './ffmpeg.js';

export interface VideoInfo {
  /** Decoded frame count (counted by ffprobe, not read from the header). */
  frames: number;
  /** Nominal frame rate (ffprobe r_frame_rate; the rate the file was written at). */
  fps: number;
  /** Average frame rate over the stream (ffprobe avg_frame_rate); GIF's whole-centisecond delays make it uneven. */
  avgFps: number;
  codec: string;
  width: number;
  height: number;
  pixFmt: string;
  /** Container duration in seconds (NaN when unknown). */
  duration: number;
  formatName: string;
}

const run = promisify(execFile);

/** Probes the first video stream of a file with ffprobe. Throws FfmpegError when ffprobe fails. */
export async function probeVideo(path: string): Promise<VideoInfo> {
  const ffprobe = findFfprobe();
  let stdout: string;
  try {
    ({ stdout } = await run(
      ffprobe,
      [
        '-v',
        'error',
        '-select_streams',
        'v:0',
        '-count_frames',
        '-show_entries',
        'stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_read_frames,pix_fmt:format=duration,format_name',
        '-of',
        'json',
        path,
      ],
      { maxBuffer: 1 << 20 },
    ));
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '')
      .trim()
      .split('\n')
      .slice(-3)
      .join('; ');
    throw new FfmpegError(`ffprobe could not read ${path}: ${stderr || (err as Error).message}`);
  }
  const json = JSON.parse(stdout) as { streams?: Record<string, string | number>[]; format?: Record<string, string> };
  const s = json.streams?.[0];
  if (!s) throw new FfmpegError(`${path} has no video stream`);
  const rate = (r: unknown) => {
    const [n, d] = String(r ?? '0/0')
      .split('/')
      .map(Number);
    return d ? n / d : NaN;
  };
  return {
    frames: Number(s.nb_read_frames),
    fps: rate(s.r_frame_rate),
    avgFps: rate(s.avg_frame_rate),
    codec: String(s.codec_name),
    width: Number(s.width),
    height: Number(s.height),
    pixFmt: String(s.pix_fmt ?? ''),
    duration: Number(json.format?.duration ?? NaN),
    formatName: String(json.format?.format_name ?? ''),
  };
}
