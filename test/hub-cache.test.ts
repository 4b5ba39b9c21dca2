/**
 * The cache side of the hub module with no network at all: a cache laid out the way Python's
 * huggingface_hub writes it (built here, in a temp dir), HF_HUB_OFFLINE=1, the fallback when the Hub is
 * unreachable, `svd models list | path | rm`, model references and progress text.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubError, ModelNotFoundError } from '../src/errors.js';
import { listModels, modelPath, removeModel } from '../src/hub/models.js';
import { formatBytes, formatProgressLine } from '../src/hub/progress.js';
import { pullModel } from '../src/hub/pull.js';
import { resolveModelRef } from '../src/hub/registry.js';
import { variantDefaults } from '../src/models/variants.js';
import { hubCacheDir, hubSettings } from '../src/hub/settings.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const REPO = 'stabilityai/stable-video-diffusion-img2vid-xt';
const COMMIT = 'b'.repeat(40);
const FILES: Record<string, Buffer> = {
  'model_index.json': Buffer.from('{"_class_name":"StableVideoDiffusionPipeline"}'),
  'scheduler/scheduler_config.json': Buffer.from('{"prediction_type":"v_prediction"}'),
  'feature_extractor/preprocessor_config.json': Buffer.from('{"crop_size":224}'),
  'unet/config.json': Buffer.from('{"num_frames":25}'),
  'vae/config.json': Buffer.from('{"scaling_factor":0.18215}'),
  'image_encoder/config.json': Buffer.from('{"projection_dim":1024}'),
  'unet/diffusion_pytorch_model.fp16.safetensors': randomBytes(3000),
  'vae/diffusion_pytorch_model.fp16.safetensors': randomBytes(2000),
  'image_encoder/model.fp16.safetensors': randomBytes(1000),
};

/** Writes the layout huggingface_hub produces: blobs named by etag, relative symlinks, refs/main, a .no_exist marker. */
function writePythonCache(cache: string, files: Record<string, Buffer>, { ref = true } = {}): string {
  const repoDir = join(cache, `models--${REPO.replace('/', '--')}`);
  for (const [path, bytes] of Object.entries(files)) {
    const etag = path.endsWith('.safetensors')
      ? createHash('sha256').update(bytes).digest('hex')
      : createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    const blob = join(repoDir, 'blobs', etag);
    mkdirSync(dirname(blob), { recursive: true });
    writeFileSync(blob, bytes);
    const link = join(repoDir, 'snapshots', COMMIT, path);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), blob), link);
  }
  if (ref) {
    mkdirSync(join(repoDir, 'refs'), { recursive: true });
    writeFileSync(join(repoDir, 'refs/main'), COMMIT);
  }
  mkdirSync(join(repoDir, '.no_exist', COMMIT), { recursive: true });
  writeFileSync(join(repoDir, '.no_exist', COMMIT, 'model.fp16.safetensors.index.json'), '');
  return join(repoDir, 'snapshots', COMMIT);
}

let cache: string;
const noNetwork = (async () => {
  throw new Error('test: the network must not be used');
}) as unknown as typeof fetch;
const offlineEnv = () => ({
  HF_HUB_CACHE: cache,
  HF_HUB_OFFLINE: '1',
  HF_ENDPOINT: 'http://127.0.0.1:9',
  HF_TOKEN_PATH: join(cache, 'none'),
});

beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'svd-hubcache-'));
});
afterEach(() => {
  rmSync(cache, { recursive: true, force: true });
});

describe('HF_HUB_OFFLINE=1 with a Python-style cache', () => {
  it('returns the cached snapshot without any network call', async () => {
    const snap = writePythonCache(cache, FILES);
    const pulled = await pullModel('svd-xt', { env: offlineEnv(), fetch: noNetwork });
    expect(pulled).toMatchObject({ snapshotDir: snap, source: 'cache', commit: COMMIT, downloadedBytes: 0 });
    expect(pulled.files.sort()).toEqual(Object.keys(FILES).sort());
    expect(
      readFileSync(join(pulled.snapshotDir, 'unet/diffusion_pytorch_model.fp16.safetensors')).equals(
        FILES['unet/diffusion_pytorch_model.fp16.safetensors'],
      ),
    ).toBe(true);
  });

  it('names the missing file and the pull command when something is not cached', async () => {
    const partial = { ...FILES };
    delete partial['unet/diffusion_pytorch_model.fp16.safetensors'];
    writePythonCache(cache, partial);
    const err = await pullModel('svd-xt', { env: offlineEnv(), fetch: noNetwork }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('hub_offline_missing');
    expect(err.message).toContain('HF_HUB_OFFLINE');
    expect(err.message).toContain('unet/diffusion_pytorch_model.fp16.safetensors');
    expect(err.message).toContain('svd models pull svd-xt');
  });

  it('uses fp32 weights when those are what the cache holds', async () => {
    const fp32: Record<string, Buffer> = { ...FILES, 'vae/diffusion_pytorch_model.safetensors': randomBytes(500) };
    delete fp32['vae/diffusion_pytorch_model.fp16.safetensors'];
    writePythonCache(cache, fp32);
    const pulled = await pullModel('svd-xt', { env: offlineEnv(), fetch: noNetwork });
    expect(pulled.files).toContain('vae/diffusion_pytorch_model.safetensors');
  });

  it('without refs/main it says so; a pinned commit works without refs', async () => {
    writePythonCache(cache, FILES, { ref: false });
    const err = await pullModel('svd-xt', { env: offlineEnv(), fetch: noNetwork }).catch((e) => e);
    expect(err.code).toBe('hub_offline_missing');
    expect(err.message).toContain('refs/main');
    const pinned = await pullModel('svd-xt', { env: offlineEnv(), fetch: noNetwork, revision: COMMIT });
    expect(pinned.commit).toBe(COMMIT);
  });

  it('falls back to a complete cache with a warning when the Hub is unreachable', async () => {
    const snap = writePythonCache(cache, FILES);
    const refused = (async () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    }) as unknown as typeof fetch;
    const warnings: string[] = [];
    const env = { ...offlineEnv(), HF_HUB_OFFLINE: undefined };
    const pulled = await pullModel('svd-xt', { env, fetch: refused, onWarning: (w) => warnings.push(w) });
    expect(pulled.snapshotDir).toBe(snap);
    expect(warnings.join('\n')).toContain('ECONNREFUSED');

    rmSync(join(cache, `models--${REPO.replace('/', '--')}`), { recursive: true });
    const err = await pullModel('svd-xt', { env, fetch: refused }).catch((e) => e);
    expect(err.code).toBe('hub_unreachable');
    expect(err.message).toContain('127.0.0.1:9');
  });
});

describe('cache listing, path and removal', () => {
  it('lists registry variants with what is cached, finds the path and removes a model', () => {
    const snap = writePythonCache(cache, FILES);
    const env = offlineEnv();
    const { cacheDir, models } = listModels(env);
    expect(cacheDir).toBe(cache);
    const xt = models.find((m) => m.name === 'svd-xt')!;
    const total = Object.values(FILES).reduce((n, b) => n + b.length, 0);
    expect(xt.cache).toMatchObject({ sizeBytes: total, commit: COMMIT, complete: true, snapshotDir: snap });
    expect(models.find((m) => m.name === 'svd')!.cache).toBeUndefined();

    expect(modelPath('svd-xt', { env })).toBe(snap);
    expect(() => modelPath('svd', { env })).toThrow(/svd models pull svd/);

    expect(removeModel('svd-xt', { env })).toEqual({ repo: REPO, freedBytes: total });
    expect(existsSync(snap)).toBe(false);
    expect(() => removeModel('svd-xt', { env })).toThrow(ModelNotFoundError);
  });

  it('marks an incomplete snapshot as incomplete', () => {
    const partial = { ...FILES };
    delete partial['image_encoder/model.fp16.safetensors'];
    writePythonCache(cache, partial);
    const xt = listModels(offlineEnv()).models.find((m) => m.name === 'svd-xt')!;
    expect(xt.cache?.complete).toBe(false);
  });

  it('CLI: models path / list / pull (offline) / rm', async () => {
    const snap = writePythonCache(cache, FILES);
    const env = { ...process.env, ...offlineEnv() };
    const svd = (...args: string[]) => run(process.execPath, [join(ROOT, 'bin/svd.js'), ...args], { env, cwd: ROOT });

    expect((await svd('models', 'path', 'svd-xt')).stdout.trim()).toBe(snap);
    const list = (await svd('models', 'list')).stdout;
    expect(list).toMatch(/svd-xt\s+stabilityai\/stable-video-diffusion-img2vid-xt\s+25 frames\s+6\.\d KB/);
    expect(list).toMatch(/svd\s+stabilityai\/stable-video-diffusion-img2vid\s+14 frames\s+not cached/);
    expect((await svd('models', 'pull', 'svd-xt')).stdout.trim()).toBe(snap);

    const missing = await svd('models', 'path', 'svd').catch((e) => e);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^svd: .*svd models pull svd/);
    expect(missing.stderr.split('\n').filter(Boolean)).toHaveLength(1);

    expect((await svd('models', 'rm', 'svd-xt')).stdout).toContain(`removed ${REPO}`);
    expect(existsSync(snap)).toBe(false);
  }, 30_000);
});

describe('model references', () => {
  it('resolves registry names, repo ids and local directories', () => {
    expect(resolveModelRef('svd')).toMatchObject({
      kind: 'hub',
      repo: 'stabilityai/stable-video-diffusion-img2vid',
      revision: 'main',
    });
    const xt11 = resolveModelRef('svd-xt-1-1');
    expect(xt11.kind === 'hub' && xt11.variant?.name).toBe('svd-xt-1-1');
    // a variant's defaults are its manifest's, derived from its bundled configs
    expect(variantDefaults('svd-xt-1-1')).toEqual({
      frames: 25,
      steps: 25,
      fps: 7,
      motionBucketId: 127,
      condAug: 0.02,
      minGuidance: 1,
      maxGuidance: 3,
      width: 1024,
      height: 576,
    });
    expect(variantDefaults('svd')).toMatchObject({ frames: 14 });
    expect(variantDefaults('no-such-variant')).toBeUndefined();
    expect(resolveModelRef('someone/svd-finetune', 'v2')).toMatchObject({
      kind: 'hub',
      repo: 'someone/svd-finetune',
      revision: 'v2',
      variant: undefined,
    });

    mkdirSync(join(cache, 'ckpt'));
    writeFileSync(join(cache, 'ckpt/model_index.json'), '{}');
    expect(resolveModelRef(join(cache, 'ckpt'))).toMatchObject({
      kind: 'local',
      dir: join(cache, 'ckpt'),
      layout: 'diffusers',
    });
    mkdirSync(join(cache, 'onnx'));
    writeFileSync(join(cache, 'onnx/model.json'), '{}');
    expect(resolveModelRef(join(cache, 'onnx'))).toMatchObject({ kind: 'local', layout: 'onnx' });
  });

  it('rejects references that are neither', () => {
    expect(() => resolveModelRef('svd-xxl')).toThrow(/svd, svd-xt, svd-xt-1-1/);
    expect(() => resolveModelRef('./no/such/dir')).toThrow(/no such directory/);
    expect(() => resolveModelRef('a--b/c')).toThrow(ModelNotFoundError);
  });

  it('reads the cache dir with the same precedence as huggingface_hub', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/a', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' })).toBe('/a');
    expect(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' })).toBe('/b');
    expect(hubCacheDir({ HF_HOME: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/huggingface/hub');
    expect(hubCacheDir({ HOME: '/home/u' })).toBe('/home/u/.cache/huggingface/hub');
    writeFileSync(join(cache, 'token'), 'hf_fromFile\n');
    expect(hubSettings({ HF_HOME: cache }).token).toBe('hf_fromFile');
    expect(hubSettings({ HF_HOME: cache, HF_TOKEN: 'hf_env' }).token).toBe('hf_env');
    expect(hubSettings({ HF_HOME: cache, HF_TOKEN: 'hf_env' }, 'hf_flag').token).toBe('hf_flag');
    expect(hubSettings({ HF_HUB_OFFLINE: 'true', HF_ENDPOINT: 'http://mirror.local/' })).toMatchObject({
      offline: true,
      endpoint: 'http://mirror.local',
    });
    expect(() => hubSettings({ HF_ENDPOINT: 'huggingface.co' })).toThrow(
      /HF_ENDPOINT="huggingface.co" is not an http\(s\) URL/,
    );
  });
});

describe('progress text', () => {
  it('renders a bar with sizes, rate and ETA', () => {
    const line = formatProgressLine({
      repo: REPO,
      path: 'unet/x.safetensors',
      fileIndex: 3,
      fileCount: 9,
      status: 'downloading',
      done: false,
      downloadedBytes: 750_000_000,
      totalBytes: 3_000_000_000,
      resumedFromBytes: 0,
      bytesPerSecond: 50_000_000,
      etaSeconds: 45,
    });
    expect(line).toBe('[3/9] unet/x.safetensors [#####---------------]  25% 750 MB/3.0 GB 50.0 MB/s ETA 0:45');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_536_000)).toBe('1.5 MB');
  });
});
