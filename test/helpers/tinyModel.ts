/** The embedded tiny model built once per test file into a private cache (SVD_CACHE_DIR). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../../src/models/resolve.js';
import { embeddedTinyCheckpoint } from '../../src/models/paths.js';

export async function buildTinyModel(): Promise<{ cacheDir: string; modelDir: string }> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'svd-cache-'));
  process.env.SVD_CACHE_DIR = cacheDir;
  const modelDir = await ensureBuilt(embeddedTinyCheckpoint(), 'tiny', { device: 'cpu' });
  return { cacheDir, modelDir };
}
