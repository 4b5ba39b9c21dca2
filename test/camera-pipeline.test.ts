/**
 * Camera motion end to end with a MotionCtrl-layout checkpoint: the embedded tiny model's VAE and image encoder plus
 * a random-weight `.ckpt` UNet with MotionCtrl's key names (our writer), built with `svd models build
 * --unet-checkpoint`. Every preset runs through the module API and changes the video; the CLI and the Segmind
 * motionctrl dialect run it; a plain model refuses a camera request naming the model to use.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backends/local.js';
import { randomMotionCtrlTensors, writeSgmCheckpoint } from '../src/camera/checkpoint.js';
import { CAMERA_PRESETS } from '../src/camera/trajectory.js';
import { InvalidRequestError } from '../src/errors.js';
import { buildModel } from '../src/models/build.js';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { createPipeline, type SvdPipeline } from '../src/pipeline/pipeline.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import { FIXTURE_IMAGE } from './server-helpers.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const dir = mkdtempSync(join(tmpdir(), 'svd-camera-pipeline-'));
const ckpt = join(dir, 'motionctrl_tiny.ckpt');
const modelDir = join(dir, 'motionctrl-tiny');
let pipeline: SvdPipeline;
let plain: SvdPipeline;

const FAST = { image: FIXTURE_IMAGE, steps: 2, frames: 4, seed: 7 } as const;

beforeAll(async () => {
  const config = JSON.parse(readFileSync(join(embeddedTinyCheckpoint(), 'unet', 'config.json'), 'utf8'));
  writeSgmCheckpoint(ckpt, config, randomMotionCtrlTensors(config, 21));
  const built = await buildModel({
    checkpoint: embeddedTinyCheckpoint(),
    outDir: modelDir,
    unetCheckpoint: ckpt,
    modelVariant: 'motionctrl-tiny',
  });
  expect(built.manifest.unet.cameraPoseDim).toBe(12);
  pipeline = await createPipeline({ modelDir, device: 'cpu', log: () => {} });
  const plainDir = join(dir, 'plain');
  await buildModel({ checkpoint: embeddedTinyCheckpoint(), outDir: plainDir });
  plain = await createPipeline({ modelDir: plainDir, device: 'cpu', log: () => {} });
}, 300_000);

afterAll(async () => {
  await pipeline?.close();
  await plain?.close();
  rmSync(dir, { recursive: true, force: true });
});

const meanAbsDiff = (a: Uint8Array[], b: Uint8Array[]) => {
  let sum = 0,
    n = 0;
  a.forEach((f, k) =>
    f.forEach((v, i) => {
      sum += Math.abs(v - b[k][i]);
      n++;
    }),
  );
  return sum / n;
};

describe('MotionCtrl-layout model, locally', () => {
  it('runs every preset, and each moves the video differently from a still camera and from the others', async () => {
    const still = (await pipeline.generate({ ...FAST, camera: 'CW', motionSpeed: 0 }, { skipVideo: true })).frames!;
    const byPreset = new Map<string, Uint8Array[]>();
    for (const camera of CAMERA_PRESETS) {
      const r = await pipeline.generate({ ...FAST, camera, motionSpeed: 3 }, { skipVideo: true });
      byPreset.set(camera, r.frames!);
      // frame 0's pose is [I | 0] for every preset, the later ones differ
      expect(meanAbsDiff(r.frames!.slice(1), still.slice(1)), camera).toBeGreaterThan(0);
    }
    expect(meanAbsDiff(byPreset.get('Pan Up')!, byPreset.get('Pan Down')!)).toBeGreaterThan(0);
    expect(meanAbsDiff(byPreset.get('Zoom In')!, byPreset.get('CW')!)).toBeGreaterThan(0);
    // no camera on a camera model is the still camera
    const none = (await pipeline.generate({ ...FAST }, { skipVideo: true })).frames!;
    expect(meanAbsDiff(none, still)).toBe(0);
  }, 300_000);

  it('takes a custom trajectory file and refuses a malformed one before running', async () => {
    const file = join(dir, 'traj.json');
    writeFileSync(
      file,
      JSON.stringify([
        [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
        [1, 0, 0, 0.8, 0, 1, 0, 0.2, 0, 0, 1, -0.5],
      ]),
    );
    const r = await pipeline.generate({ ...FAST, camera: file }, { skipVideo: true });
    expect(r.frames).toHaveLength(4);
    writeFileSync(join(dir, 'bad.json'), '[[1, 2]]');
    await expect(pipeline.generate({ ...FAST, camera: join(dir, 'bad.json') }, { skipVideo: true })).rejects.toThrow(
      /frame 0: expected 12 finite numbers/,
    );
  }, 120_000);

  it('a model without the camera module refuses a camera request, naming the model to use', async () => {
    let err: unknown;
    try {
      await plain.generate({ ...FAST, camera: 'Zoom In' }, { skipVideo: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect((err as InvalidRequestError).issues[0]).toMatchObject({ field: 'camera', value: 'Zoom In' });
    expect((err as Error).message).toContain('--model motionctrl-svd');
  });

  it('the CLI generates with --camera and --motion-speed', () => {
    const out = join(dir, 'cli.mp4');
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        'generate',
        FIXTURE_IMAGE,
        '--model',
        modelDir,
        '--camera',
        'zoom-out',
        '--motion-speed',
        '2',
        '--steps',
        '2',
        '--frames',
        '4',
        '--device',
        'cpu',
        '-o',
        out,
      ],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, SVD_CACHE_DIR: join(dir, 'cache') },
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    const bad = spawnSync(
      process.execPath,
      [BIN, 'generate', FIXTURE_IMAGE, '--model', modelDir, '--camera', 'barrel-roll', '--device', 'cpu'],
      {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, SVD_CACHE_DIR: join(dir, 'cache') },
      },
    );
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--camera');
    expect(bad.stderr).toContain('Pan Up');
  }, 180_000);

  it('the Segmind motionctrl dialect applies motion and motion_speed (nothing reported ignored)', async () => {
    const backend = new LocalBackend({ model: modelDir, device: 'cpu' });
    let server: RunningServer | undefined;
    try {
      server = await startServer({ port: 0, backend, defaults: { steps: 2 } });
      const res = await fetch(`${server.url}/v1/motionctrl-svd`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          input_image: readFileSync(FIXTURE_IMAGE).toString('base64'),
          motion: 'Pan Left',
          motion_speed: 2,
          decoding_t: 7,
        }),
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(res.status, bytes.subarray(0, 300).toString()).toBe(200);
      expect(res.headers.get('x-svd-ignored-fields')).toBeNull();
      expect(bytes.subarray(4, 8).toString()).toBe('ftyp'); // an MP4
    } finally {
      await server?.close();
      await backend.close();
    }
  }, 180_000);
});
