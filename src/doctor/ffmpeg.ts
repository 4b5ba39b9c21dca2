/**
 * ffmpeg for `svd doctor`: the one the video writer would use (FFMPEG_PATH, PATH, then the npm build); its version; and whether the encoders
 * the video writer uses exist (`ffmpeg -hide_banner -encoders`).
 */
import { runCommand, type Env } from '../runtime/executables.js';
import { locateFfmpeg } from '../video/ffmpeg.js';
import type { Check } from './types.js';

/** Encoders per output format; mp4 is the default format, so libx264 missing is a problem, the rest warnings. */
export const REQUIRED_ENCODERS: ReadonlyArray<{ encoder: string; format: string; required: boolean }> = [
  { encoder: 'libx264', format: 'mp4', required: true },
  { encoder: 'libvpx-vp9', format: 'webm', required: false },
  { encoder: 'gif', format: 'gif', required: false },
];

export function ffmpegInstallHint(platform: NodeJS.Platform = process.platform): string {
  const install =
    platform === 'darwin'
      ? '`brew install ffmpeg`'
      : platform === 'win32'
        ? '`winget install ffmpeg`'
        : '`sudo apt-get install ffmpeg` (Debian/Ubuntu; `sudo dnf install ffmpeg` on Fedora)';
  return `install ffmpeg: ${install}, or set FFMPEG_PATH=/path/to/ffmpeg`;
}

/** Encoder names from `ffmpeg -encoders` lines like ` V....D libx264   libx264 H.264 / AVC ...`. */
export function parseEncoders(output: string): Set<string> {
  const names = new Set<string>();
  for (const line of output.split('\n')) {
    const m = /^\s*[VAS][A-Z.]{5}\s+(\S+)/.exec(line);
    if (m && m[1] !== '=') names.add(m[1]);
  }
  return names;
}

export async function checkFfmpeg(env: Env): Promise<Check[]> {
  const found = locateFfmpeg(env);
  if (!('path' in found))
    return [{ id: 'ffmpeg', label: 'ffmpeg', status: 'fail', detail: found.problem, fix: ffmpegInstallHint() }];
  const { path, source } = found;
  const [version, encoders] = await Promise.all([
    runCommand(path, ['-hide_banner', '-version'], { env }),
    runCommand(path, ['-hide_banner', '-encoders'], { env }),
  ]);
  if (version.code !== 0) {
    const why =
      (version.stderr || version.stdout).trim().split('\n')[0] || version.error || `exit code ${version.code}`;
    return [
      {
        id: 'ffmpeg',
        label: 'ffmpeg',
        status: 'fail',
        detail: `${path} does not run: ${why}`,
        fix: ffmpegInstallHint(),
      },
    ];
  }
  const versionText = /ffmpeg version (\S+)/.exec(version.stdout)?.[1] ?? version.stdout.split('\n')[0].trim();
  const checks: Check[] = [
    {
      id: 'ffmpeg',
      label: 'ffmpeg',
      status: 'ok',
      detail: `${versionText} (${path}${source === 'bundled' ? ', the npm build from @ffmpeg-installer' : ''})`,
    },
  ];
  const available = parseEncoders(encoders.stdout);
  for (const { encoder, format, required } of REQUIRED_ENCODERS) {
    const id = `ffmpeg.encoder.${encoder}`;
    const label = `encoder ${encoder}`;
    if (available.has(encoder)) {
      checks.push({ id, label, status: 'ok', detail: `for --format ${format}` });
    } else {
      checks.push({
        id,
        label,
        status: required ? 'fail' : 'warn',
        detail: `missing from this ffmpeg build; --format ${format} will not work`,
        fix:
          `install an ffmpeg build with ${encoder} (the Debian/Ubuntu and Homebrew ffmpeg packages have it) ` +
          `and point FFMPEG_PATH at it${required ? ', or use --format webm, gif or png' : ''}`,
      });
    }
  }
  return checks;
}
