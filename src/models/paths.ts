/** Where svd-runtime keeps what it makes: built graphs (the checkpoint weights stay where they are). */
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `SVD_CACHE_DIR`, else `$XDG_CACHE_HOME/svd-runtime`, else `~/.cache/svd-runtime`. */
export function svdCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SVD_CACHE_DIR) return env.SVD_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'svd-runtime');
}

/** The package root (works from src/ through tsx and from dist/). */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The embedded tiny checkpoint (seeded random weights, diffusers layout): the default model. */
export function embeddedTinyCheckpoint(): string {
  return join(packageRoot(), 'models', 'tiny-svd');
}

/** The diffusers configs (no weights) of a known variant or of the tiny test model: models/configs/<name>. */
export function variantConfigDir(name: string): string {
  return join(packageRoot(), 'models', 'configs', name);
}
