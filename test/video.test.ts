import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { AbortError, FfmpegError, InvalidRequestError } from '../src/errors.js';
import {
  defaultOutputPath,
  findFfmpeg,
  framesToUint8,
  pngFrameName,
  probeVideo,
  writeVideo,
} from '../src/video/index.js';
import type { OutputFormat } from '../src/request/types.js';
import { ref } from './helpers/reference.js';

const root = mkdtempSync(join(tmpdir(), 'svd-video-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const d = join(root, `case${n++}`);
  mkdirSync(d);
  return d;
};

const W = 64;
const H = 48;
/** Frame i: a moving diagonal gradient with a square, so encoders see real motion. */
function frame(i: number, w = W, h = H): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inSquare = Math.abs(x - 8 - i * 4) < 6 && Math.abs(y - h / 2) < 6;
      rgb.set(inSquare ? [255, 255, 255] : [(x * 4 + i * 10) & 255, (y * 5) & 255, 128], (y * w + x) * 3);
    }
  }
  return rgb;
}
const frames = (count: number) => Array.from({ length: count }, (_, i) => frame(i));

describe('framesToUint8', () => {
  it('matches diffusers: decoded_frames → round(frames_np · 255)', () => {
    const dec = ref('decoded_frames'); // [1,3,F,H,W]
    const np = ref('frames_np'); // [1,F,H,W,3] in [0,1]
    const [, C, F, h, w] = dec.shape;
    expect(C).toBe(3);
    // to our layout [F,3,H,W]
    const fchw = new Float32Array(dec.data.length);
    for (let c = 0; c < 3; c++)
      for (let f = 0; f < F; f++) {
        fchw.set(dec.data.subarray((c * F + f) * h * w, (c * F + f + 1) * h * w), (f * 3 + c) * h * w);
      }
    const got = framesToUint8(fchw, F, h, w);
    expect(got.length).toBe(F);
    let mismatches = 0;
    for (let f = 0; f < F; f++) {
      for (let i = 0; i < h * w * 3; i++) {
        const v = Math.fround(np.data[f * h * w * 3 + i] * 255);
        const r = Math.round(v);
        const want = r - v === 0.5 && r % 2 ? r - 1 : r; // numpy rounds half to even
        if (got[f][i] !== want) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it('clamps to [0,1], rounds half to even, maps NaN to 0, and lays out HWC', () => {
    // one frame 1×5, channels: R = [-1, 1, 3, -5, 0], G = 0, B = NaN
    const x = Float32Array.of(-1, 1, 3, -5, 0, 0, 0, 0, 0, 0, NaN, NaN, NaN, NaN, NaN);
    const [rgb] = framesToUint8(x, 1, 1, 5);
    // x = 0 → 0.5·255 = 127.5 → 128 (even)
    expect(Array.from(rgb)).toEqual([0, 128, 0, 255, 128, 0, 255, 128, 0, 0, 128, 0, 128, 128, 0]);
    expect(() => framesToUint8(new Float32Array(10), 1, 1, 5)).toThrow(/1×3×1×5 = 15 expected/);
  });
});

/** The static build of the optional npm dependency, the fallback when a machine has no ffmpeg of its own. */
const NPM_FFMPEG: string = createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg').path;

describe('writeVideo', () => {
  const cases: [OutputFormat, string, number][] = [
    ['mp4', 'h264', 7],
    ['webm', 'vp9', 7],
    ['gif', 'gif', 7],
  ];
  const ffmpegs: [string, string | undefined][] = [
    ['the ffmpeg found', undefined],
    ['the npm ffmpeg build', NPM_FFMPEG],
  ];
  for (const [format, codec, fps] of cases)
    for (const [which, ffmpegPath] of ffmpegs) {
      it(`${format} with ${which}: frame count, fps, codec and size as asked; no temp file left`, async () => {
        const saved = process.env.FFMPEG_PATH;
        if (ffmpegPath) process.env.FFMPEG_PATH = ffmpegPath;
        onTestFinished(() => {
          if (saved === undefined) delete process.env.FFMPEG_PATH;
          else process.env.FFMPEG_PATH = saved;
        });
        const dir = freshDir();
        const output = join(dir, `out.${format}`);
        const written = await writeVideo(frames(10), { width: W, height: H, fps, format, output });
        expect(written).toBe(output);
        expect(readdirSync(dir)).toEqual([`out.${format}`]);
        const info = await probeVideo(output);
        expect(info.frames).toBe(10);
        expect(info.codec).toBe(codec);
        expect([info.width, info.height]).toEqual([W, H]);
        expect(info.fps).toBeCloseTo(fps, 6);
        // GIF delays are whole centiseconds (14 or 15 for 1/7 s), so only the total length is exact to ~1 cs
        if (format === 'gif') expect(Math.abs(info.duration - 10 / fps)).toBeLessThan(0.02);
        else expect(info.avgFps).toBeCloseTo(fps, 6);
        if (format !== 'gif') expect(info.pixFmt).toBe('yuv420p');
        if (format === 'mp4') {
          const bytes = readFileSync(output);
          expect(bytes.indexOf('moov')).toBeGreaterThan(0);
          expect(bytes.indexOf('moov')).toBeLessThan(bytes.indexOf('mdat')); // +faststart
        }
      });
    }

  it('gif: lasts frames/fps to the centisecond, also when the last delay does not round that way (12 fps, 14 frames)', async () => {
    const output = join(freshDir(), 'timing.gif');
    await writeVideo(frames(14), { width: W, height: H, fps: 12, format: 'gif', output });
    const info = await probeVideo(output);
    expect(info.frames).toBe(14);
    expect(info.duration).toBeCloseTo(1.17, 6); // 14/12 s = 116.7 cs → 117 cs
  });

  it('mp4 at another fps, from an async iterable, into a directory that does not exist yet', async () => {
    const dir = freshDir();
    const output = join(dir, 'nested', 'deeper', 'clip.mp4');
    async function* gen() {
      for (let i = 0; i < 6; i++) yield frame(i);
    }
    await writeVideo(gen(), { width: W, height: H, fps: 12, format: 'mp4', output });
    const info = await probeVideo(output);
    expect(info.frames).toBe(6);
    expect(info.fps).toBeCloseTo(12, 6);
    expect(info.duration).toBeCloseTo(0.5, 1);
  });

  it('png: a directory of lossless frames named frame_0000.png …', async () => {
    const dir = freshDir();
    const output = join(dir, 'frames');
    const input = frames(3);
    await writeVideo(input, { width: W, height: H, fps: 7, format: 'png', output });
    expect(readdirSync(dir)).toEqual(['frames']);
    expect(readdirSync(output).sort()).toEqual(['frame_0000.png', 'frame_0001.png', 'frame_0002.png']);
    for (let i = 0; i < 3; i++) {
      const { data, info } = await sharp(join(output, pngFrameName(i)))
        .raw()
        .toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([W, H, 3]);
      expect(Buffer.compare(data, Buffer.from(input[i]))).toBe(0);
    }
    // writing again replaces an earlier frame directory …
    await writeVideo(frames(2), { width: W, height: H, fps: 7, format: 'png', output });
    expect(readdirSync(output).sort()).toEqual(['frame_0000.png', 'frame_0001.png']);
    // … but never a directory with other files in it
    writeFileSync(join(output, 'notes.txt'), 'mine');
    await expect(writeVideo(frames(2), { width: W, height: H, fps: 7, format: 'png', output })).rejects.toThrow(
      /is a directory with other files in it/,
    );
    expect(readFileSync(join(output, 'notes.txt'), 'utf8')).toBe('mine');
    expect(readdirSync(dir)).toEqual(['frames']);
  });

  for (const format of ['mp4', 'png'] as const) {
    it(`${format}: abort mid-write rejects with AbortError and leaves nothing`, async () => {
      const dir = freshDir();
      const output = join(dir, format === 'png' ? 'frames' : 'out.mp4');
      const ac = new AbortController();
      async function* slow() {
        for (let i = 0; i < 50; i++) {
          if (i === 3) ac.abort();
          yield frame(i);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      await expect(
        writeVideo(slow(), { width: W, height: H, fps: 7, format, output, signal: ac.signal }),
      ).rejects.toBeInstanceOf(AbortError);
      expect(readdirSync(dir)).toEqual([]);
    });
  }

  it('a bad frame size fails with a clear error and leaves nothing', async () => {
    const dir = freshDir();
    const bad = [frame(0), new Uint8Array(10)];
    await expect(
      writeVideo(bad, { width: W, height: H, fps: 7, format: 'mp4', output: join(dir, 'x.mp4') }),
    ).rejects.toThrow(/frame 1 has 10 bytes; 64×48×3 = 9216 expected/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('odd sides are refused for mp4/webm but fine for gif', async () => {
    const dir = freshDir();
    const odd = [frame(0, 63, 47), frame(1, 63, 47)];
    await expect(
      writeVideo(odd, { width: 63, height: 47, fps: 7, format: 'mp4', output: join(dir, 'x.mp4') }),
    ).rejects.toThrow(InvalidRequestError);
    await expect(
      writeVideo(odd, { width: 63, height: 47, fps: 7, format: 'webm', output: join(dir, 'x.webm') }),
    ).rejects.toThrow(/width: must be even for webm/);
    await writeVideo(odd, { width: 63, height: 47, fps: 7, format: 'gif', output: join(dir, 'x.gif') });
    expect((await probeVideo(join(dir, 'x.gif'))).frames).toBe(2);
  });

  describe('ffmpeg location and failures', () => {
    const saved = {
      FFMPEG_PATH: process.env.FFMPEG_PATH,
      PATH: process.env.PATH,
      SVD_BUNDLED_FFMPEG: process.env.SVD_BUNDLED_FFMPEG,
    };
    afterEach(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });

    it('FFMPEG_PATH pointing to a missing file gives FfmpegError naming it, and nothing is written', async () => {
      const dir = freshDir();
      process.env.FFMPEG_PATH = join(dir, 'no-such-ffmpeg');
      const err = await writeVideo(frames(2), {
        width: W,
        height: H,
        fps: 7,
        format: 'mp4',
        output: join(dir, 'a.mp4'),
      }).catch((e) => e);
      expect(err).toBeInstanceOf(FfmpegError);
      expect(err.message).toContain(`FFMPEG_PATH=${join(dir, 'no-such-ffmpeg')} is not an executable file`);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('no ffmpeg on PATH: the npm build is used; without it too, says how to install one', () => {
      delete process.env.FFMPEG_PATH;
      process.env.PATH = freshDir();
      expect(findFfmpeg()).toBe(NPM_FFMPEG);
      expect(() => findFfmpeg({ ...process.env, SVD_BUNDLED_FFMPEG: '0' })).toThrow(
        /ffmpeg not found .*; install ffmpeg \(e\.g\. `apt-get install ffmpeg`/,
      );
    });

    it('no ffmpeg at all: video formats fail, png output still works', async () => {
      const dir = freshDir();
      delete process.env.FFMPEG_PATH;
      process.env.PATH = dir;
      process.env.SVD_BUNDLED_FFMPEG = '0';
      await expect(
        writeVideo(frames(2), { width: W, height: H, fps: 7, format: 'gif', output: join(dir, 'a.gif') }),
      ).rejects.toThrow(FfmpegError);
      await writeVideo(frames(2), { width: W, height: H, fps: 7, format: 'png', output: join(dir, 'pngs') });
      expect(readdirSync(join(dir, 'pngs'))).toHaveLength(2);
    });

    it('ffmpeg exiting with an error gives FfmpegError with its stderr, and no partial file', async () => {
      const dir = freshDir();
      const fake = join(dir, 'fake-ffmpeg');
      writeFileSync(fake, '#!/bin/sh\ncat > /dev/null\necho "Unknown encoder libx264" >&2\nexit 3\n');
      chmodSync(fake, 0o755);
      process.env.FFMPEG_PATH = fake;
      const out = join(dir, 'out');
      mkdirSync(out);
      await expect(
        writeVideo(frames(3), { width: W, height: H, fps: 7, format: 'mp4', output: join(out, 'a.mp4') }),
      ).rejects.toThrow(/ffmpeg failed writing mp4 \(exit 3\):\n {2}Unknown encoder libx264/);
      expect(readdirSync(out)).toEqual([]);
    });

    it('ffmpeg dying early (before reading all frames) is reported, not hung on', async () => {
      const dir = freshDir();
      const fake = join(dir, 'early-exit');
      writeFileSync(fake, '#!/bin/sh\necho "crashed" >&2\nexit 1\n');
      chmodSync(fake, 0o755);
      process.env.FFMPEG_PATH = fake;
      const big = Array.from({ length: 40 }, () => new Uint8Array(512 * 512 * 3));
      await expect(
        writeVideo(big, { width: 512, height: 512, fps: 7, format: 'mp4', output: join(dir, 'a.mp4') }),
      ).rejects.toThrow(/exit 1[\s\S]*crashed/);
      expect(existsSync(join(dir, 'a.mp4'))).toBe(false);
    });
  });

  it('probeVideo on a non-video is a FfmpegError', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'x.mp4'), 'not a video');
    await expect(probeVideo(join(dir, 'x.mp4'))).rejects.toBeInstanceOf(FfmpegError);
  });
});

describe('defaultOutputPath', () => {
  it('uses the image stem and seed; svd for non-path sources', () => {
    expect(defaultOutputPath('photos/cat.jpg', 'mp4', 42)).toBe('cat-42.mp4');
    expect(defaultOutputPath('/abs/dir/my image.png', 'gif', 7)).toBe('my_image-7.gif');
    expect(defaultOutputPath('photos/cat.jpg', 'png', 42)).toBe('cat-42-frames');
    expect(defaultOutputPath('https://x.org/a.png', 'webm', 1)).toBe('svd-1.webm');
    expect(defaultOutputPath('data:image/png;base64,AAAA', 'mp4', 1)).toBe('svd-1.mp4');
    expect(defaultOutputPath('iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB', 'mp4', 3)).toBe('svd-3.mp4');
    expect(defaultOutputPath(undefined, 'mp4', 5)).toBe('svd-5.mp4');
  });
});
