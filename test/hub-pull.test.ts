/**
 * The whole pull path against a loopback imitation of the Hub (test/hubMock.ts): redirects to a CDN on
 * another origin, ETag / X-Linked-Etag / X-Repo-Commit, the Python cache layout, gated repos, a transfer
 * cut half-way and resumed with Range, a corrupted file caught by sha256.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../src/errors.js';
import { pullModel, type PullProgress } from '../src/hub/pull.js';
import { gitBlobSha1, sha256, startMockHub, type MockHub, type MockRepo } from './hubMock.js';

const FIXTURE = join(import.meta.dirname, 'fixtures/reference/tiny-svd');
const CONFIGS = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'feature_extractor/preprocessor_config.json',
  'unet/config.json',
  'vae/config.json',
  'image_encoder/config.json',
];
const COMMIT = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef';
const TOKEN = 'hf_secretTokenValue123';

function svdRepo(repo: string, extra: Partial<MockRepo> = {}): MockRepo {
  const files: Record<string, Uint8Array> = {};
  for (const p of CONFIGS) files[p] = readFileSync(join(FIXTURE, p));
  files['unet/diffusion_pytorch_model.fp16.safetensors'] = randomBytes(400_000);
  files['unet/diffusion_pytorch_model.safetensors'] = randomBytes(800_000); // fp32: must not be fetched
  files['vae/diffusion_pytorch_model.safetensors'] = randomBytes(200_000); // no fp16 variant: fp32 is used
  files['image_encoder/model.fp16.safetensors'] = randomBytes(100_000);
  return { repo, commit: COMMIT, files, ...extra };
}

const XT = svdRepo('stabilityai/stable-video-diffusion-img2vid-xt', { gatedToken: TOKEN });
const OPEN = svdRepo('someone/svd-finetune', { renamedFrom: 'someone/old-name' });
const SHARDED = svdRepo('someone/sharded');
delete SHARDED.files['unet/diffusion_pytorch_model.fp16.safetensors'];
delete SHARDED.files['unet/diffusion_pytorch_model.safetensors'];
SHARDED.files['unet/diffusion_pytorch_model.safetensors.index.json'] = Buffer.from(
  JSON.stringify({
    metadata: {},
    weight_map: {
      'a.weight': 'diffusion_pytorch_model-00001-of-00002.safetensors',
      'b.weight': 'diffusion_pytorch_model-00002-of-00002.safetensors',
      'c.weight': 'diffusion_pytorch_model-00001-of-00002.safetensors',
    },
  }),
);
SHARDED.files['unet/diffusion_pytorch_model-00001-of-00002.safetensors'] = randomBytes(50_000);
SHARDED.files['unet/diffusion_pytorch_model-00002-of-00002.safetensors'] = randomBytes(60_000);
const SVD_BASE = svdRepo('stabilityai/stable-video-diffusion-img2vid', { gatedToken: TOKEN });
const MOTIONCTRL: MockRepo = {
  repo: 'TencentARC/MotionCtrl',
  commit: 'b'.repeat(40),
  files: { 'motionctrl_svd.ckpt': randomBytes(300_000), 'README.md': Buffer.from('x') },
};
const EXPECTED_FILES = [
  ...CONFIGS,
  'unet/diffusion_pytorch_model.fp16.safetensors',
  'vae/diffusion_pytorch_model.safetensors',
  'image_encoder/model.fp16.safetensors',
];

let hub: MockHub;
let cache: string;
const env = () => ({
  HF_HUB_CACHE: cache,
  HF_ENDPOINT: hub.endpoint,
  HF_TOKEN: TOKEN,
  HF_TOKEN_PATH: join(cache, 'no-token'),
});

beforeAll(async () => {
  hub = await startMockHub([XT, OPEN, SHARDED, SVD_BASE, MOTIONCTRL]);
});
afterAll(async () => {
  await hub.close();
});
beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'svd-hub-'));
  hub.requests.length = 0;
});
afterEach(() => {
  rmSync(cache, { recursive: true, force: true });
});

describe('pullModel against a mock Hub', () => {
  it('downloads configs + fp16 weights into the Python cache layout and reuses them on a second pull', async () => {
    const events: PullProgress[] = [];
    const pulled = await pullModel('svd-xt', { env: env(), onProgress: (p) => events.push(p) });

    const repoDir = join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt');
    expect(pulled.snapshotDir).toBe(join(repoDir, 'snapshots', COMMIT));
    expect(pulled.commit).toBe(COMMIT);
    expect(pulled.files.sort()).toEqual([...EXPECTED_FILES].sort());
    expect(readFileSync(join(repoDir, 'refs/main'), 'utf8')).toBe(COMMIT);
    for (const path of EXPECTED_FILES) {
      const link = join(pulled.snapshotDir, path);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link).startsWith('../')).toBe(true); // relative, like huggingface_hub
      expect(Buffer.compare(readFileSync(link), Buffer.from(XT.files[path]))).toBe(0);
      const blob = path.endsWith('.safetensors') ? sha256(XT.files[path]) : gitBlobSha1(XT.files[path]);
      expect(existsSync(join(repoDir, 'blobs', blob))).toBe(true);
    }
    expect(readdirSync(join(repoDir, 'blobs')).some((n) => n.endsWith('.incomplete'))).toBe(false);
    const weightBytes = 400_000 + 200_000 + 100_000;
    const configBytes = CONFIGS.reduce((n, p) => n + XT.files[p].length, 0);
    expect(pulled.downloadedBytes).toBe(weightBytes + configBytes);

    // the fp32 UNet was never requested; the token went to the Hub origin but never to the CDN
    expect(
      hub.requests.some((r) => r.url.includes('unet/diffusion_pytorch_model.safetensors') && r.method === 'GET'),
    ).toBe(false);
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    expect(cdn).toHaveLength(3);
    expect(cdn.every((r) => r.authorization === undefined)).toBe(true);
    expect(hub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(
      true,
    );
    // files after model_index.json are pinned to the commit
    expect(
      hub.requests
        .filter((r) => r.server === 'hub' && !r.url.includes('model_index.json'))
        .every((r) => r.url.includes(`/resolve/${COMMIT}/`)),
    ).toBe(true);

    const unetDone = events.filter((e) => e.path === 'unet/diffusion_pytorch_model.fp16.safetensors');
    expect(unetDone.at(-1)).toMatchObject({
      done: true,
      status: 'done',
      downloadedBytes: 400_000,
      totalBytes: 400_000,
    });
    expect(new Set(events.map((e) => e.fileCount))).toEqual(new Set([EXPECTED_FILES.length]));

    // second pull: HEADs only, everything reported as cached
    hub.requests.length = 0;
    const again: PullProgress[] = [];
    const second = await pullModel('svd-xt', { env: env(), onProgress: (p) => again.push(p) });
    expect(second.downloadedBytes).toBe(0);
    expect(hub.requests.every((r) => r.method === 'HEAD' && r.server === 'hub')).toBe(true);
    expect(again.every((e) => e.status === 'cached')).toBe(true);
  });

  it('motionctrl-svd: the base SVD without its UNet weights plus motionctrl_svd.ckpt, then the same from the cache offline', async () => {
    const pulled = await pullModel('motionctrl-svd', { env: env() });
    expect(pulled.snapshotDir).toBe(
      join(cache, 'models--stabilityai--stable-video-diffusion-img2vid', 'snapshots', COMMIT),
    );
    expect(pulled.files.some((f) => f.startsWith('unet/') && f.endsWith('.safetensors'))).toBe(false);
    expect(pulled.files).toContain('unet/config.json');
    expect(pulled.files).toContain('vae/diffusion_pytorch_model.safetensors');
    expect(pulled.unetCheckpoint).toBe(
      join(cache, 'models--TencentARC--MotionCtrl', 'snapshots', MOTIONCTRL.commit, 'motionctrl_svd.ckpt'),
    );
    expect(
      Buffer.compare(readFileSync(pulled.unetCheckpoint!), Buffer.from(MOTIONCTRL.files['motionctrl_svd.ckpt'])),
    ).toBe(0);
    expect(hub.requests.some((r) => r.url.includes('unet/diffusion_pytorch_model') && r.method === 'GET')).toBe(false);
    expect(hub.requests.some((r) => r.url.includes('README.md'))).toBe(false);

    const offline = await pullModel('motionctrl-svd', { env: { ...env(), HF_HUB_OFFLINE: '1' } });
    expect(offline.source).toBe('cache');
    expect(offline.unetCheckpoint).toBe(pulled.unetCheckpoint);
    rmSync(pulled.unetCheckpoint!);
    await expect(pullModel('motionctrl-svd', { env: { ...env(), HF_HUB_OFFLINE: '1' } })).rejects.toThrow(
      /TencentARC\/MotionCtrl@main: motionctrl_svd.ckpt is not in the cache/,
    );
  });

  it('reuses blobs that Python already put in the cache (no CDN transfer for them)', async () => {
    const first = await pullModel('svd-xt', { env: env() });
    // drop the snapshot links and refs, keep the blobs: what a different revision layout would leave
    rmSync(join(first.snapshotDir, '..', '..', 'snapshots'), { recursive: true });
    hub.requests.length = 0;
    const second = await pullModel('svd-xt', { env: env() });
    expect(hub.requests.filter((r) => r.server === 'cdn')).toHaveLength(0);
    expect(readFileSync(join(second.snapshotDir, 'unet/diffusion_pytorch_model.fp16.safetensors')).length).toBe(
      400_000,
    );
  });

  it('two concurrent pulls of the same model share each transfer', async () => {
    const [a, b] = await Promise.all([pullModel('svd-xt', { env: env() }), pullModel('svd-xt', { env: env() })]);
    expect(a.snapshotDir).toBe(b.snapshotDir);
    expect(hub.requests.filter((r) => r.server === 'cdn')).toHaveLength(3);
    const path = 'unet/diffusion_pytorch_model.fp16.safetensors';
    expect(sha256(readFileSync(join(a.snapshotDir, path)))).toBe(sha256(XT.files[path]));
  });

  it('a gated repo without a token fails with the licence page and HF_TOKEN in the message', async () => {
    const noToken = { ...env(), HF_TOKEN: undefined };
    const err = await pullModel('svd-xt', { env: noToken }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('hub_auth_required');
    expect(err.status).toBe(401);
    expect(err.message).toContain('https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt');
    expect(err.message).toContain('HF_TOKEN');

    const wrong = await pullModel('svd-xt', { env: noToken, token: 'hf_wrongTokenXYZ' }).catch((e) => e);
    expect(wrong.code).toBe('hub_auth_required');
    expect(wrong.status).toBe(403);
    expect(wrong.message).not.toContain('hf_wrongTokenXYZ');
    // once the model is cached, a missing token only warns (as huggingface_hub does)
    await pullModel('svd-xt', { env: env() });
    const warnings: string[] = [];
    const cached = await pullModel('svd-xt', { env: noToken, onWarning: (w) => warnings.push(w) });
    expect(cached.source).toBe('cache');
    expect(warnings.join()).toContain('is gated');
  });

  it('an unknown repo is reported as not found', async () => {
    const err = await pullModel('nobody/nothing-here', { env: env() }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('hub_not_found');
    expect(err.message).toContain('nobody/nothing-here');
  });

  it('follows a renamed repo and pulls any diffusers-layout repo id', async () => {
    const pulled = await pullModel('someone/old-name', { env: env() });
    expect(pulled.files).toContain('unet/diffusion_pytorch_model.fp16.safetensors');
    expect(
      readFileSync(join(pulled.snapshotDir, 'vae/diffusion_pytorch_model.safetensors')).equals(
        Buffer.from(OPEN.files['vae/diffusion_pytorch_model.safetensors']),
      ),
    ).toBe(true);
  });

  it('fetches every shard named by a safetensors index when the repo has no single weights file', async () => {
    const pulled = await pullModel('someone/sharded', { env: env() });
    const shards = [
      'unet/diffusion_pytorch_model-00001-of-00002.safetensors',
      'unet/diffusion_pytorch_model-00002-of-00002.safetensors',
    ];
    expect(pulled.files).toEqual(
      expect.arrayContaining(['unet/diffusion_pytorch_model.safetensors.index.json', ...shards]),
    );
    for (const shard of shards)
      expect(readFileSync(join(pulled.snapshotDir, shard)).equals(Buffer.from(SHARDED.files[shard]))).toBe(true);
    // and the offline view of the same cache agrees
    const offline = await pullModel('someone/sharded', { env: { ...env(), HF_HUB_OFFLINE: '1' } });
    expect(offline.files.sort()).toEqual(pulled.files.sort());
  });

  it('resumes a transfer cut half-way with an HTTP Range request (automatic retry)', async () => {
    const path = 'unet/diffusion_pytorch_model.fp16.safetensors';
    hub.cutNext(path, 150_000);
    const warnings: string[] = [];
    const pulled = await pullModel('svd-xt', { env: env(), retryDelayMs: 0, onWarning: (m) => warnings.push(m) });
    const unetGets = hub.requests.filter((r) => r.server === 'cdn' && r.url.includes(sha256(XT.files[path])));
    expect(unetGets).toHaveLength(2);
    expect(unetGets[0].range).toBeUndefined();
    expect(unetGets[1].range).toBe('bytes=150000-');
    expect(warnings.some((w) => w.includes(path) && w.includes('retrying'))).toBe(true);
    expect(sha256(readFileSync(join(pulled.snapshotDir, path)))).toBe(sha256(XT.files[path]));
  });

  it('keeps the partial file when retries run out, and the next pull resumes it', async () => {
    const path = 'unet/diffusion_pytorch_model.fp16.safetensors';
    const oid = sha256(XT.files[path]);
    hub.cutNext(path, 200_000);
    const err = await pullModel('svd-xt', { env: env(), retries: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('hub_download_failed');
    const partial = join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt/blobs', `${oid}.incomplete`);
    expect(lstatSync(partial).size).toBe(200_000);

    hub.requests.length = 0;
    const pulled = await pullModel('svd-xt', { env: env(), retries: 0 });
    const resumed = hub.requests.filter((r) => r.server === 'cdn' && r.url.includes(oid));
    expect(resumed.map((r) => r.range)).toEqual(['bytes=200000-']);
    expect(sha256(readFileSync(join(pulled.snapshotDir, path)))).toBe(oid);
    expect(existsSync(partial)).toBe(false);
  });

  it('deletes and reports a corrupted file (sha256 of an LFS file does not match its oid)', async () => {
    const path = 'vae/diffusion_pytorch_model.safetensors';
    const bad = Uint8Array.from(XT.files[path]);
    bad[1234] ^= 0xff;
    hub.corrupt(path, bad);
    try {
      const err = await pullModel('svd-xt', { env: env() }).catch((e) => e);
      expect(err).toBeInstanceOf(HubError);
      expect(err.code).toBe('hub_integrity');
      expect(err.message).toContain(path);
      expect(err.message).toContain(sha256(XT.files[path]));
      const blobs = readdirSync(join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt/blobs'));
      expect(blobs.some((b) => b.startsWith(sha256(XT.files[path])))).toBe(false);
      expect(
        existsSync(join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt/snapshots', COMMIT, path)),
      ).toBe(false);
    } finally {
      hub.corrupt(path, XT.files[path]);
    }
  });

  it('catches a corrupted small (non-LFS) file by its git blob sha1', async () => {
    const path = 'unet/config.json';
    const bad = Buffer.from(XT.files[path]);
    bad[5] = bad[5] === 0x20 ? 0x21 : 0x20;
    hub.corrupt(path, bad);
    try {
      const err = await pullModel('svd-xt', { env: env() }).catch((e) => e);
      expect(err.code).toBe('hub_integrity');
      expect(err.message).toContain(`${path} is corrupt: git blob sha1`);
      expect(
        existsSync(
          join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt/blobs', gitBlobSha1(XT.files[path])),
        ),
      ).toBe(false);
    } finally {
      hub.corrupt(path, XT.files[path]);
    }
  });

  it('an abort stops the pull between files with AbortError; finished files stay linked', async () => {
    const controller = new AbortController();
    const err = await pullModel('svd-xt', {
      env: env(),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.path === 'unet/diffusion_pytorch_model.fp16.safetensors' && p.done) controller.abort();
      },
    }).catch((e) => e);
    expect(err.code).toBe('aborted');
    const snap = join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt/snapshots', COMMIT);
    expect(existsSync(join(snap, 'unet/diffusion_pytorch_model.fp16.safetensors'))).toBe(true);
    expect(existsSync(join(snap, 'vae/diffusion_pytorch_model.safetensors'))).toBe(false);
    expect(existsSync(join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt/refs/main'))).toBe(false);
  });

  it('CLI: svd models pull prints progress on stderr, the snapshot on stdout, and never the token', async () => {
    const run = promisify(execFile);
    const root = join(import.meta.dirname, '..');
    const cliEnv = { ...process.env, ...env(), HF_TOKEN: '' };
    const svd = (...args: string[]) =>
      run(process.execPath, [join(root, 'bin/svd.js'), ...args], { env: cliEnv, cwd: root });

    const denied = await svd('models', 'pull', 'svd-xt').catch((e) => e);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toContain('https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt');

    const { stdout, stderr } = await svd('models', 'pull', 'svd-xt', '--token', TOKEN);
    expect(stdout.trim()).toBe(join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt/snapshots', COMMIT));
    expect(stderr).toMatch(/\[7\/9\] unet\/diffusion_pytorch_model\.fp16\.safetensors \[#{20}\] 100% 400 KB\/400 KB/);
    expect(stderr).toContain(`@${COMMIT}: 9 files`);
    expect(stdout + stderr).not.toContain(TOKEN);
  }, 30_000);
});
