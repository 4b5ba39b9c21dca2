/**
 * Frames out: decoded VAE frames → uint8 RGB → mp4/webm/gif (ffmpeg) or PNG frames (sharp).
 *
 *   const frames = framesToUint8(decoded, F, H, W);      // [F,3,H,W] float → RGB24 per frame
 *   await writeVideo(frames, { width: W, height: H, fps: 7, format: 'mp4', output: 'out.mp4' });
 */
export { framesToUint8 } from './frames.js';
export { writeVideo, pngFrameName, type WriteVideoOptions } from './write.js';
export { probeVideo, type VideoInfo } from './probe.js';
export { findFfmpeg, findFfprobe } from './ffmpeg.js';
export { defaultOutputPath } from './output.js';
export { FrameQueue } from './frameQueue.js';
