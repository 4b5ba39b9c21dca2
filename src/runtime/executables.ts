/**
 * Finding and running external programs (ffmpeg, nvidia-smi, ldd) with an injectable environment, so
 * tests can point PATH at fake executables without touching the real process environment.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export type Env = Record<string, string | undefined>;

/** True for an existing regular file we may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** `name` looked up on `env.PATH` (or taken as is when it contains a slash); undefined when not found. */
export function findExecutable(name: string, env: Env = process.env): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export interface CommandResult {
  /** Exit code; null when the program could not be started or was killed. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Why it failed to start or finish (ENOENT, timeout). */
  error?: string;
}

/** Runs `file args` to completion; never throws. */
export function runCommand(
  file: string,
  args: string[],
  options: { env?: Env; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: options.env as NodeJS.ProcessEnv | undefined, timeout: options.timeoutMs ?? 15_000, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : null
          : 0;
        const error =
          err && code === null ? ((err as { killed?: boolean }).killed ? `timed out` : err.message) : undefined;
        resolve({ code, stdout: String(stdout), stderr: String(stderr), error });
      },
    );
  });
}
