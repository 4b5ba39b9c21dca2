/** The `svd` command line as a user runs it (a child process per call). */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../src/tensor/npy.js';
import { probeVideo } from '../src/video/index.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
let cache: string;
let out: string;

function svd(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SVD_CACHE_DIR: cache, ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'svd-cli-cache-'));
  out = mkdtempSync(join(tmpdir(), 'svd-cli-out-'));
});
afterAll(() => {
  rmSync(cache, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

describe('svd generate', () => {
  it('makes the README video with the embedded tiny model and all defaults', async () => {
    const target = join(out, 'first.mp4');
    const r = svd(['generate', REFERENCE_IMAGE, '-o', target]);
    expect(r.stderr).toMatch(/building ONNX graphs/);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^seed: \d+$/m);
    expect(r.stdout).toContain(`output: ${target}`);
    expect(r.stdout).toMatch(/timings: load \d+ ms, preprocess \d+ ms, encode \d+ ms, unet 25 steps/);
    expect(await probeVideo(target)).toMatchObject({ frames: 14, fps: 7, codec: 'h264', width: 128, height: 64 });
    const again = svd([
      'generate',
      REFERENCE_IMAGE,
      '-o',
      join(out, 'second.gif'),
      '--format',
      'gif',
      '--frames',
      '3',
      '--steps',
      '2',
      '--fps',
      '12',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/building/); // graphs come from the cache now
    expect(await probeVideo(join(out, 'second.gif'))).toMatchObject({ frames: 3, codec: 'gif' });
  });

  it('refuses bad flags before loading anything, naming each flag and what is allowed', () => {
    const r = svd([
      'generate',
      REFERENCE_IMAGE,
      '--steps',
      '0',
      '--motion-bucket-id',
      '300',
      '--format',
      'avi',
      '--seed',
      'abc',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--steps: must be from 1 to 100 \(got 0\)/);
    expect(r.stderr).toMatch(/--motion-bucket-id: must be from 1 to 255 \(got 300\)/);
    expect(r.stderr).toMatch(/--format: must be one of mp4, webm, gif, png/);
    expect(r.stderr).toMatch(/--seed: must be a number/);
    expect(r.stderr).not.toMatch(/building|at .*\.ts:\d+/);
  });

  it('honours the debugging contract: --noise replaces the random draws, --dump writes every intermediate', () => {
    const noise = join(out, 'noise');
    mkdirSync(noise);
    const F = 2,
      H = 64,
      W = 128,
      h = 8,
      w = 16;
    const wave = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k));
    writeNpy(join(noise, 'init_noise.npy'), wave(F * 4 * h * w, 0.37), [1, F, 4, h, w]);
    writeNpy(join(noise, 'aug_noise.npy'), wave(3 * H * W, 0.11), [1, 3, H, W]);
    const dumps = [join(out, 'd1'), join(out, 'd2')];
    for (const [i, seed] of ['1', '2'].entries()) {
      const r = svd([
        'generate',
        REFERENCE_IMAGE,
        '-o',
        join(out, `n${i}.mp4`),
        '--frames',
        '2',
        '--steps',
        '2',
        '--seed',
        seed,
        '--noise',
        noise,
        '--dump',
        dumps[i],
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    const shapes = Object.fromEntries(readdirSync(dumps[0]).map((f) => [f, readNpy(join(dumps[0], f)).shape]));
    expect(shapes).toEqual({
      'clip_pixel_values.npy': [1, 3, 224, 224],
      'image_embeddings.npy': [1, 1, 32],
      'image_latents.npy': [1, 4, h, w],
      'added_time_ids.npy': [1, 3],
      'sigmas.npy': [3],
      'timesteps.npy': [2],
      'latents_0.npy': [1, F, 4, h, w],
      'latents_1.npy': [1, F, 4, h, w],
      'decoded.npy': [F, 3, H, W],
      'frames.npy': [F, H, W, 3],
    });
    expect(readNpy(join(dumps[0], 'frames.npy')).dtype).toBe('|u1');
    expect(Array.from(readNpy(join(dumps[0], 'added_time_ids.npy')).data as Float32Array)).toEqual([
      6,
      127,
      Math.fround(0.02),
    ]);
    // injected noise makes the seed irrelevant
    expect(Buffer.from(readNpy(join(dumps[0], 'frames.npy')).data as Uint8Array)).toEqual(
      Buffer.from(readNpy(join(dumps[1], 'frames.npy')).data as Uint8Array),
    );
    const wrong = svd([
      'generate',
      REFERENCE_IMAGE,
      '--frames',
      '3',
      '--steps',
      '1',
      '--noise',
      noise,
      '-o',
      join(out, 'wrong.mp4'),
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/init_noise: must have shape \[1,3,4,8,16\]/);
    expect(existsSync(join(out, 'wrong.mp4'))).toBe(false);
  });

  it('writes PNG frames into a directory', () => {
    const dir = join(out, 'frames');
    const r = svd(['generate', REFERENCE_IMAGE, '--format', 'png', '-o', dir, '--frames', '3', '--steps', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['frame_0000.png', 'frame_0001.png', 'frame_0002.png']);
  });

  it('says how to get ffmpeg when it is missing, before any model work, and leaves no file behind', () => {
    const target = join(out, 'noffmpeg.mp4');
    // a model that does not exist: the ffmpeg error must come first, so nothing was loaded
    const args = ['generate', REFERENCE_IMAGE, '-o', target, '--model', './nowhere'];
    const typo = svd(args, { FFMPEG_PATH: join(out, 'no-such-ffmpeg') });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/FFMPEG_PATH=.*no-such-ffmpeg is not an executable file/);
    const none = svd(args, { PATH: join(out, 'empty-path'), SVD_BUNDLED_FFMPEG: '0' });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/ffmpeg not found .*apt-get install ffmpeg/);
    expect(none.stderr).not.toMatch(/nowhere/);
    expect(existsSync(target)).toBe(false);
    // png frames need no ffmpeg: then the model is the first thing at fault
    const png = svd([...args, '--format', 'png'], { PATH: join(out, 'empty-path'), SVD_BUNDLED_FFMPEG: '0' });
    expect(png.stderr).toMatch(/nowhere: no such directory/);
  });

  it('reports a missing image file before any model work', () => {
    const r = svd(['generate', join(out, 'no-such-image.png'), '--model', './nowhere']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no-such-image\.png.*no such file/);
    expect(r.stderr).not.toMatch(/nowhere/);
  });

  it('refuses a model that does not exist, and a remote backend without a key, naming the fix', () => {
    const a = svd(['generate', REFERENCE_IMAGE, '--model', './nowhere']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/nowhere: no such directory/);
    const b = svd(['generate', REFERENCE_IMAGE, '--backend', 'segmind'], { SEGMIND_API_KEY: '' });
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/SEGMIND_API_KEY/);
  });
});

describe('svd models inspect / build on the embedded model', () => {
  it('inspect reads its fp16-only weight files and finds nothing missing', () => {
    const r = svd(['models', 'inspect', join(import.meta.dirname, '..', 'models', 'tiny-svd')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/unet: ok .*diffusion_pytorch_model\.fp16\.safetensors/);
    expect(r.stdout).toContain('ok: the checkpoint builds');
  });

  it('build logs the final paths of the graphs, which exist (not the staging directory)', () => {
    const target = join(out, 'built-tiny');
    const r = svd(['models', 'build', join(import.meta.dirname, '..', 'models', 'tiny-svd'), '--out', target]);
    expect(r.code, r.stderr).toBe(0);
    const logged = [...r.stderr.matchAll(/^(?:svd: )?\w+: (\/\S+\.onnx) \(/gm)].map((m) => m[1]);
    expect(logged).toHaveLength(4);
    for (const path of logged) {
      expect(path.startsWith(`${target}/`), path).toBe(true);
      expect(existsSync(path), path).toBe(true);
    }
  });
});

describe('svd generate, interrupted', () => {
  it('Ctrl-C stops between steps, exits 130 (the SIGINT convention) and leaves no file', async () => {
    const target = join(out, 'interrupted.mp4');
    const child = spawn(process.execPath, [BIN, 'generate', REFERENCE_IMAGE, '-o', target, '--steps', '100'], {
      env: { ...process.env, SVD_CACHE_DIR: cache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (/step 1\/100/.test(stderr) && !child.killed) child.kill('SIGINT'); // once: a second signal exits at once
    });
    const [code] = await once(child, 'exit');
    expect(stderr).toMatch(/step 1\/100/);
    expect(code).toBe(130);
    expect(stderr).toMatch(/svd: .*abort/);
    expect(existsSync(target)).toBe(false);
  });
});
