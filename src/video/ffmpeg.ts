/**
 * Locating the ffmpeg and ffprobe executables (docs/runtime.md §5), in this order:
 * `FFMPEG_PATH` / `FFPROBE_PATH`, then `PATH`, then the static builds that the optional npm dependencies
 * `@ffmpeg-installer/ffmpeg` and `@ffprobe-installer/ffprobe` ship (so a machine without a system ffmpeg
 * still writes videos; `SVD_BUNDLED_FFMPEG=0` turns that fallback off). A missing binary is a FfmpegError
 * that says how to fix it.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FfmpegError } from '../errors.js';
import { findExecutable, isExecutable, type Env } from '../runtime/executables.js';

const INSTALL_HINT =
  'install ffmpeg (e.g. `apt-get install ffmpeg`, `brew install ffmpeg`), reinstall this package with its optional ' +
  'dependencies (`npm install --include=optional`), or set FFMPEG_PATH to the ffmpeg executable';

/** Where the executable came from: the environment variable, PATH, or the npm package's static build. */
export type ExecutableSource = 'env' | 'path' | 'bundled';

export interface LocatedExecutable {
  path: string;
  source: ExecutableSource;
}

const requireHere = createRequire(import.meta.url);

/** The path an `@ffmpeg-installer`-style package exports, when it is installed for this platform and enabled. */
function bundled(pkg: string, env: Env): string | undefined {
  if (env.SVD_BUNDLED_FFMPEG === '0') return undefined;
  try {
    const path = (requireHere(pkg) as { path?: unknown }).path;
    return typeof path === 'string' && isExecutable(path) ? path : undefined;
  } catch {
    return undefined; // not installed (optional dependency skipped) or no build for this platform
  }
}

/**
 * The ffmpeg executable and where it was found, or a sentence saying why there is none.
 * $FFMPEG_PATH, when set, must exist (a typo is reported, not silently replaced by another ffmpeg).
 */
export function locateFfmpeg(env: Env = process.env): LocatedExecutable | { problem: string } {
  if (env.FFMPEG_PATH) {
    const path = findExecutable(env.FFMPEG_PATH, env);
    return path ? { path, source: 'env' } : { problem: `FFMPEG_PATH=${env.FFMPEG_PATH} is not an executable file` };
  }
  const onPath = findExecutable(process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg', env);
  if (onPath) return { path: onPath, source: 'path' };
  const fallback = bundled('@ffmpeg-installer/ffmpeg', env);
  if (fallback) return { path: fallback, source: 'bundled' };
  return {
    problem: 'not found (FFMPEG_PATH is unset, there is no ffmpeg on PATH and no @ffmpeg-installer/ffmpeg build)',
  };
}

/** The ffmpeg executable (see {@link locateFfmpeg}); throws a FfmpegError with the fix when there is none. */
export function findFfmpeg(env: Env = process.env): string {
  const found = locateFfmpeg(env);
  if ('path' in found) return found.path;
  throw new FfmpegError(`ffmpeg ${found.problem}; ${INSTALL_HINT}`);
}

/**
 * The ffprobe executable: $FFPROBE_PATH if set, else `ffprobe` next to $FFMPEG_PATH, else on PATH, else the
 * `@ffprobe-installer/ffprobe` build.
 */
export function findFfprobe(env: Env = process.env): string {
  const fromEnv = env.FFPROBE_PATH;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new FfmpegError(
      `FFPROBE_PATH=${fromEnv} is not an executable file; point it at ffprobe or unset it to search PATH`,
    );
  }
  if (env.FFMPEG_PATH) {
    const sibling = join(dirname(env.FFMPEG_PATH), process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe');
    if (isExecutable(sibling)) return sibling;
  }
  const found =
    findExecutable(process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe', env) ??
    bundled('@ffprobe-installer/ffprobe', env);
  if (!found)
    throw new FfmpegError('ffprobe was not found on PATH; install ffmpeg (it ships ffprobe) or set FFPROBE_PATH');
  return found;
}
