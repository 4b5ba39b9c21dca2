/**
 * Chaining clips into a longer video (docs/motion-controls.md §2). Clip k+1 is conditioned on the frame of
 * clip k where their K shared frames begin (the last frame when K = 1), so the K overlapping frames show the
 * same moment in both clips and are cross-faded. Pure functions; the pipeline runs the clips.
 *
 *   clip 0:  0 1 2 3 4 5 [6 7]           F = 8, K = 2: clip 1 is conditioned on clip 0's frame 6
 *   clip 1:              [0 1] 2 3 4 5 [6 7]
 *   output:  0 1 2 3 4 5  x x  2 3 4 5  6 7      (x: cross-faded), F + (N − 1)(F − K) frames
 */
import { InvalidRequestError } from '../errors.js';

/** Overlap when the request gives none: three frames (fewer when a clip is shorter). */
export const DEFAULT_OVERLAP = 3;
/** Most clips one request may chain. */
export const MAX_CLIPS = 32;

export interface ClipPlan {
  clips: number;
  /** Frames shared (cross-faded) by consecutive clips; 0 for a single clip. */
  overlap: number;
  framesPerClip: number;
  /** Frames of the finished video (a `duration` may trim the last clip). */
  totalFrames: number;
}

export interface ClipRequest {
  frames: number;
  fps: number;
  clips?: number;
  /** Seconds; decides the clip count and trims the video to round(duration·fps) frames. */
  duration?: number;
  overlap?: number;
}

/** Frames N chained clips make: F + (N − 1)(F − K). */
export function chainedFrames(frames: number, clips: number, overlap: number): number {
  return frames + (clips - 1) * (frames - overlap);
}

/** The clip count, overlap and final frame count of a request; InvalidRequestError naming the field when impossible. */
export function planClips(r: ClipRequest): ClipPlan {
  const F = r.frames;
  const wanted = r.duration === undefined ? undefined : Math.max(1, Math.round(r.duration * r.fps));
  const single = (r.clips ?? 1) === 1 && (wanted === undefined || wanted <= F);
  if (single) return { clips: 1, overlap: 0, framesPerClip: F, totalFrames: wanted ?? F };
  if (F < 2) {
    const field = r.clips !== undefined ? 'clips' : 'duration';
    throw new InvalidRequestError([
      { field, value: r[field], message: 'needs frames of at least 2 per clip to chain clips' },
    ]);
  }
  const overlap = r.overlap ?? Math.min(DEFAULT_OVERLAP, F - 1);
  if (overlap >= F) {
    throw new InvalidRequestError([{ field: 'overlap', value: overlap, message: `must be less than frames (${F})` }]);
  }
  const clips = wanted === undefined ? r.clips! : 1 + Math.ceil((wanted - F) / (F - overlap));
  if (clips > MAX_CLIPS) {
    const most = (chainedFrames(F, MAX_CLIPS, overlap) / r.fps).toFixed(1);
    throw new InvalidRequestError([
      {
        field: 'duration',
        value: r.duration,
        message:
          `needs ${clips} clips; at most ${MAX_CLIPS} are chained ` +
          `(${most} s at ${F} frames, overlap ${overlap}, ${r.fps} fps)`,
      },
    ]);
  }
  return { clips, overlap, framesPerClip: F, totalFrames: wanted ?? chainedFrames(F, clips, overlap) };
}

/**
 * The seed of clip k: the request's seed for clip 0 (so one clip is exactly today's video), then steps of
 * 0x9E3779B9 (2³² / golden ratio) modulo 2³², which spreads consecutive clips' seeds over the range.
 */
export function clipSeed(seed: number, clip: number): number {
  return (seed + clip * 0x9e3779b9) % 2 ** 32;
}

/** How many of the last clip's frames reach the video (fewer than F when a `duration` trims the end). */
export function lastClipFrames(plan: ClipPlan): number {
  if (plan.clips === 1) return Math.min(plan.totalFrames, plan.framesPerClip);
  const before = chainedFrames(plan.framesPerClip, plan.clips - 1, plan.overlap) - plan.overlap;
  return plan.totalFrames - before;
}

/** The frame of a clip that conditions the next clip: where the K shared frames begin. */
export function conditioningFrameIndex(frames: number, overlap: number): number {
  return frames - Math.max(1, overlap);
}

/**
 * Linear cross-fade of K frames: frame j = (1 − a)·tail[j] + a·head[j] with a = (j + 1)/(K + 1), so the
 * first blended frame is mostly the old clip and the last mostly the new one. RGB24 in, RGB24 out.
 */
export function crossFade(tail: readonly Uint8Array[], head: readonly Uint8Array[]): Uint8Array[] {
  if (tail.length !== head.length) throw new RangeError(`cross-fade of ${tail.length} and ${head.length} frames`);
  const K = tail.length;
  return tail.map((t, j) => {
    const h = head[j];
    const a = (j + 1) / (K + 1);
    const out = new Uint8Array(t.length);
    for (let i = 0; i < t.length; i++) out[i] = Math.round((1 - a) * t[i] + a * h[i]);
    return out;
  });
}

/**
 * Joins clips as they finish, holding back only the K frames the next clip will blend with, so frames can
 * go to the video writer clip by clip. `push` returns the frames that are final; `finish` the rest, trimmed
 * to `totalFrames`.
 */
export class ClipJoiner {
  private held: Uint8Array[] = [];
  private emitted = 0;

  constructor(
    private readonly overlap: number,
    private readonly totalFrames: number,
  ) {}

  push(frames: readonly Uint8Array[]): Uint8Array[] {
    const K = this.overlap;
    const first = this.held.length ? crossFade(this.held, frames.slice(0, K)) : [];
    const rest = this.held.length ? frames.slice(K) : frames.slice();
    const all = [...first, ...rest];
    this.held = K > 0 ? all.splice(all.length - K, K) : [];
    return this.take(all);
  }

  finish(): Uint8Array[] {
    const out = this.take(this.held);
    this.held = [];
    return out;
  }

  private take(frames: Uint8Array[]): Uint8Array[] {
    const room = Math.max(0, this.totalFrames - this.emitted);
    const out = frames.slice(0, room);
    this.emitted += out.length;
    return out;
  }
}

/**
 * How visible the wrap-around of a video is: `jump` = mean |last − first| over all pixel values, `meanStep`
 * = the mean of the same measure between consecutive frames, `ratio` = jump / meanStep (about 1 for a
 * seamless loop, several times more for a visible jump). Values in 0..255 units.
 */
export function loopJump(frames: readonly Uint8Array[]): { jump: number; meanStep: number; ratio: number } {
  if (frames.length < 2) return { jump: 0, meanStep: 0, ratio: 0 };
  const mad = (a: Uint8Array, b: Uint8Array) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
    return s / a.length;
  };
  let steps = 0;
  for (let f = 1; f < frames.length; f++) steps += mad(frames[f], frames[f - 1]);
  const meanStep = steps / (frames.length - 1);
  const jump = mad(frames[frames.length - 1], frames[0]);
  return { jump, meanStep, ratio: meanStep > 0 ? jump / meanStep : jump > 0 ? Infinity : 0 };
}
