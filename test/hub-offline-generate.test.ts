/**
 * A checkpoint already in a Python-style Hugging Face cache is used by repo id with HF_HUB_OFFLINE=1 and no
 * network at all: the pull is skipped, graphs are built, the video is made.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { probeVideo } from '../src/video/index.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const REPO = 'someone/svd-tiny-finetune';
const COMMIT = 'c'.repeat(40);
let work: string;

/** huggingface_hub's layout: blobs named by sha256 (LFS) or git sha1, relative symlinks in snapshots, refs/main. */
function writePythonCache(cache: string, checkpoint: string): void {
  const repoDir = join(cache, `models--${REPO.replace('/', '--')}`);
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
  for (const file of walk(checkpoint)) {
    const rel = relative(checkpoint, file);
    const bytes = readFileSync(file);
    const etag = rel.endsWith('.safetensors')
      ? createHash('sha256').update(bytes).digest('hex')
      : createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    const blob = join(repoDir, 'blobs', etag);
    mkdirSync(dirname(blob), { recursive: true });
    writeFileSync(blob, bytes);
    const link = join(repoDir, 'snapshots', COMMIT, rel);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), blob), link);
  }
  mkdirSync(join(repoDir, 'refs'), { recursive: true });
  writeFileSync(join(repoDir, 'refs', 'main'), COMMIT);
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'svd-offline-'));
  writePythonCache(join(work, 'hub'), embeddedTinyCheckpoint());
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('offline generation from the Hugging Face cache', () => {
  it('builds graphs from the cached snapshot and makes the video without any network', async () => {
    const out = join(work, 'offline.mp4');
    const env = {
      ...process.env,
      HF_HUB_CACHE: join(work, 'hub'),
      HF_HUB_OFFLINE: '1',
      HF_ENDPOINT: 'http://127.0.0.1:9',
      SVD_CACHE_DIR: join(work, 'svd'),
      HTTPS_PROXY: 'http://127.0.0.1:9',
      HTTP_PROXY: 'http://127.0.0.1:9',
    };
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [BIN, 'generate', REFERENCE_IMAGE, '--model', REPO, '--frames', '3', '--steps', '2', '-o', out],
        { env, timeout: 120_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(`building ONNX graphs for .*models--someone--svd-tiny-finetune/snapshots/${COMMIT}`),
    );
    expect(await probeVideo(out)).toMatchObject({ frames: 3, codec: 'h264' });
    // the float32 CPU graphs hold the fp16 snapshot's weights converted in their own .data files (read through the
    // snapshot's symlinks), so nothing in the graph directory points into the Hugging Face cache
    const graphs = readdirSync(join(work, 'svd', 'graphs'));
    expect(graphs).toHaveLength(1);
    const files = readdirSync(join(work, 'svd', 'graphs', graphs[0]));
    expect(files.filter((f) => f.endsWith('.onnx.data')).sort()).toEqual([
      'image_encoder.onnx.data',
      'unet.onnx.data',
      'vae_decoder.onnx.data',
      'vae_encoder.onnx.data',
    ]);
    expect(files).not.toContain('weights');
  });

  it('names the missing model when the cache does not hold it', async () => {
    const env = {
      ...process.env,
      HF_HUB_CACHE: join(work, 'hub'),
      HF_HUB_OFFLINE: '1',
      SVD_CACHE_DIR: join(work, 'svd'),
    };
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [BIN, 'generate', REFERENCE_IMAGE, '--model', 'someone/not-cached'],
        { env, timeout: 60_000 },
        (err, _stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/someone\/not-cached/);
    expect(r.stderr).toMatch(/svd models pull someone\/not-cached/);
  });
});
