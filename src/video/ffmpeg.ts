/**
 * Locating the ffmpeg and ffprobe executables: `FFMPEG_PATH` / `FFPROBE_PATH` first, then `PATH`
 * (docs/runtime.md §5). A missing binary is a FfmpegError that says how to fix it.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { FfmpegError } from '../errors.js';

const INSTALL_HINT = 'install ffmpeg (e.g. `apt-get install ffmpeg`, `brew install ffmpeg`) or set FFMPEG_PATH to the ffmpeg executable';

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  const names = process.platform === 'win32' ? [`${name}.exe`, name] : [name];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const n of names) if (isExecutable(join(dir, n))) return join(dir, n);
  }
  return undefined;
}

/** The ffmpeg executable: $FFMPEG_PATH if set (it must exist), else the first `ffmpeg` on PATH. */
export function findFfmpeg(): string {
  const fromEnv = process.env.FFMPEG_PATH;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new FfmpegError(`FFMPEG_PATH=${fromEnv} is not an executable file; point it at ffmpeg or unset it to search PATH`);
  }
  const found = onPath('ffmpeg');
  if (!found) throw new FfmpegError(`ffmpeg was not found on PATH; ${INSTALL_HINT}`);
  return found;
}

/**
 * The ffprobe executable: $FFPROBE_PATH if set, else `ffprobe` next to $FFMPEG_PATH, else on PATH.
 */
export function findFfprobe(): string {
  const fromEnv = process.env.FFPROBE_PATH;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new FfmpegError(`FFPROBE_PATH=${fromEnv} is not an executable file; point it at ffprobe or unset it to search PATH`);
  }
  if (process.env.FFMPEG_PATH) {
    const sibling = join(dirname(process.env.FFMPEG_PATH), process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe');
    if (isExecutable(sibling)) return sibling;
  }
  const found = onPath('ffprobe');
  if (!found) throw new FfmpegError('ffprobe was not found on PATH; install ffmpeg (it ships ffprobe) or set FFPROBE_PATH');
  return found;
}
