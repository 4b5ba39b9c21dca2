/**
 * Camera trajectories (src/camera/trajectory.ts) against MotionCtrl's published example poses, and the sgm ↔
 * diffusers name mapping on the full-size SVD config.
 *
 * Published numbers: TencentARC/MotionCtrl, branch `svd`, examples/camera_poses/test_camera_{L,R,U,D,I,O}.json and
 * test_camera_SPIN-{CW,ACW}-60.json (16 rows × 12 numbers each). Only the few entries compared are copied here.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cameraPoses,
  normalizeCameraPreset,
  presetPoses,
  readTrajectoryFile,
  relativeToFirst,
  resamplePoses,
  rotationZYX,
  type CameraPreset,
  type Pose,
} from '../src/camera/trajectory.js';
import { InvalidRequestError } from '../src/errors.js';
import { parseUnetConfig, unetWeights } from '../src/unet/index.js';
import { diffusersToSgm } from '../src/unet/sgmNames.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-camera-traj-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** test_camera_L.json rows 0, 1, 15: R = I, t_x = 0.2, 0.2875, 1.5125 (t_y, t_z = 0). */
const PUBLISHED_PAN_ROWS = [0.2, 0.28750000000000003, 1.5125000000000004];
/** Axis (index into the 12 numbers) and sign of the moving component in each pan/zoom file. */
const PUBLISHED_PANS: Array<[file: string, preset: CameraPreset, index: number, sign: number]> = [
  ['L', 'Pan Left', 3, 1],
  ['R', 'Pan Right', 3, -1],
  ['U', 'Pan Up', 7, 1],
  ['D', 'Pan Down', 7, -1],
  ['I', 'Zoom In', 11, -1],
  ['O', 'Zoom Out', 11, 1],
];
/** test_camera_SPIN-CW-60.json rows 1, 2, 15: [[c, s, 0], [−s, c, 0], [0, 0, 1]] (ACW: s negated). */
const PUBLISHED_SPIN_CW = [
  [1, 0.9978589232386035, 0.06540312923014306],
  [2, 0.9914448613738104, 0.13052619222005157],
  [15, 0.5555702330196024, 0.8314696123025451],
] as const;

const rowOf = (poses: Float32Array | Pose[], i: number) =>
  Array.isArray(poses) ? Array.from(poses[i]) : Array.from(poses.subarray(i * 12, i * 12 + 12));

describe('presets vs MotionCtrl example poses', () => {
  it('CW and ACW at speed 1 over 16 frames are the published SPIN-CW-60 / SPIN-ACW-60 rotations', () => {
    const cw = cameraPoses({ preset: 'CW', frames: 16, speed: 1 });
    const acw = cameraPoses({ preset: 'ACW', frames: 16, speed: 1 });
    for (const [i, c, s] of PUBLISHED_SPIN_CW) {
      const expectedCw = [c, s, 0, 0, -s, c, 0, 0, 0, 0, 1, 0];
      const expectedAcw = [c, -s, 0, 0, s, c, 0, 0, 0, 0, 1, 0];
      rowOf(cw, i).forEach((v, k) => expect(v).toBeCloseTo(expectedCw[k], 6));
      rowOf(acw, i).forEach((v, k) => expect(v).toBeCloseTo(expectedAcw[k], 6));
    }
  });

  it.each(PUBLISHED_PANS)(
    'test_camera_%s relative to frame 0 is %s: same axis, sign and linear steps, R = I',
    (_f, preset, index, sign) => {
      // the published file moves 0.0875 per frame; our preset moves (1/n)·speed·1.5·|T| per frame
      const published: Pose[] = Array.from({ length: 16 }, (_, i) => {
        const p = Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0);
        p[index] = sign * (0.2 + 0.0875 * i);
        return p;
      });
      [0, 1, 15].forEach((i, k) => expect(Math.abs(published[i][index])).toBeCloseTo(PUBLISHED_PAN_ROWS[k], 12));
      const magnitude = { 'Pan Left': 3, 'Pan Right': 3, 'Pan Up': 1, 'Pan Down': 1, 'Zoom In': 4, 'Zoom Out': 4 }[
        preset as string
      ]!;
      const speed = (0.0875 * 16) / (1.5 * magnitude);
      const ours = cameraPoses({ preset, frames: 16, speed });
      const theirs = relativeToFirst(published);
      for (let i = 0; i < 16; i++) rowOf(ours, i).forEach((v, k) => expect(v).toBeCloseTo(theirs[i][k], 6));
    },
  );

  it('speed scales the motion linearly; speed 0 is a still camera', () => {
    const one = cameraPoses({ preset: 'Zoom In', frames: 14, speed: 1 });
    const three = cameraPoses({ preset: 'Zoom In', frames: 14, speed: 3 });
    expect(three[13 * 12 + 11]).toBeCloseTo(3 * one[13 * 12 + 11], 5);
    expect(one[13 * 12 + 11]).toBeCloseTo(-(13 / 14) * 1.5 * 4, 5); // −5.5714 at the last of 14 frames
    const still = cameraPoses({ preset: 'CW', frames: 5, speed: 0 });
    for (let i = 0; i < 5; i++) expect(rowOf(still, i)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
  });

  it('presets are one motion over the clip, sampled at the requested frame count', () => {
    const p14 = presetPoses('Pan Right', 14, 2);
    const p28 = presetPoses('Pan Right', 28, 2);
    expect(p14).toHaveLength(14);
    expect(p28).toHaveLength(28);
    // frame 7 of 14 and frame 14 of 28 are both halfway through the motion
    expect(p14[7][3]).toBeCloseTo(p28[14][3], 12);
    expect(p14[7][3]).toBeCloseTo(-0.5 * 2 * 1.5 * 3, 12);
  });

  it('accepts CLI spellings of preset names', () => {
    expect(normalizeCameraPreset('pan-left')).toBe('Pan Left');
    expect(normalizeCameraPreset('ZOOM_OUT')).toBe('Zoom Out');
    expect(normalizeCameraPreset('acw')).toBe('ACW');
    expect(normalizeCameraPreset('barrel roll')).toBe('barrel roll');
  });
});

describe('custom trajectories', () => {
  it('reads 12-number rows, resamples them to the frame count (rotations stay rotations), scales translation', () => {
    const rows = Array.from({ length: 16 }, (_, i) => {
      const r = rotationZYX(0, 0.05 * i, 0);
      return [r[0], r[1], r[2], 0.1 * i, r[3], r[4], r[5], 0, r[6], r[7], r[8], -0.2 * i];
    });
    const file = join(dir, 'orbit.json');
    writeFileSync(file, JSON.stringify(rows));
    const poses = readTrajectoryFile(file);
    const out = cameraPoses({ poses, frames: 6, speed: 2 });
    expect(out).toHaveLength(6 * 12);
    // last frame = last file row (rotation 0.75 rad about y), translation doubled
    const last = rowOf(out, 5);
    const r = rotationZYX(0, 0.75, 0);
    expect(last[0]).toBeCloseTo(r[0], 6);
    expect(last[2]).toBeCloseTo(r[2], 6);
    expect(last[3]).toBeCloseTo(2 * 1.5, 5);
    expect(last[11]).toBeCloseTo(2 * -3, 5);
    const mid = resamplePoses(poses, 6)[2]; // x = 2·15/5 = 6 → exactly row 6
    expect(Array.from(mid)).toEqual(rows[6].map((v) => expect.closeTo(v, 9)));
  });

  it('accepts 3×4 and 4×4 nested matrices', () => {
    const file = join(dir, 'nested.json');
    writeFileSync(
      file,
      JSON.stringify([
        [
          [1, 0, 0, 0],
          [0, 1, 0, 0],
          [0, 0, 1, 0],
          [0, 0, 0, 1],
        ],
        [
          [1, 0, 0, 0.5],
          [0, 1, 0, 0],
          [0, 0, 1, 0],
        ],
      ]),
    );
    const poses = readTrajectoryFile(file);
    expect(Array.from(poses[1])).toEqual([1, 0, 0, 0.5, 0, 1, 0, 0, 0, 0, 1, 0]);
  });

  it('refuses a malformed file naming the field, the file and the frame', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify([
        [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
        [1, 2, 3],
      ]),
    );
    let err: unknown;
    try {
      readTrajectoryFile(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRequestError);
    const issue = (err as InvalidRequestError).issues[0];
    expect(issue.field).toBe('camera');
    expect(issue.value).toBe(file);
    expect(issue.message).toContain('frame 1');
    expect(() => readTrajectoryFile(join(dir, 'missing.json'))).toThrow(/cannot read the trajectory file \(ENOENT\)/);
  });
});

describe('sgm names of the full-size SVD UNet', () => {
  const raw = JSON.parse(readFileSync('models/configs/svd/unet/config.json', 'utf8'));
  const names = unetWeights(raw, { camera: { poseDim: 12 } });
  const toSgm = diffusersToSgm(parseUnetConfig(raw));

  it('maps every tensor, one-to-one', () => {
    const mapped = names.map((n) => toSgm(n.name));
    expect(mapped.filter((m) => m === undefined)).toEqual([]);
    expect(new Set(mapped).size).toBe(names.length);
  });

  it('puts the 16 cc_projections where MotionCtrl has them, with Linear(C + 12 → C) shapes', () => {
    const cc = names.filter((n) => n.name.endsWith('cc_projection.weight'));
    expect(cc).toHaveLength(16);
    const byName = new Map(names.map((n) => [toSgm(n.name), n.shape]));
    expect(byName.get('input_blocks.1.1.time_stack.0.cc_projection.weight')).toEqual([320, 332]);
    expect(byName.get('input_blocks.5.1.time_stack.0.cc_projection.weight')).toEqual([640, 652]);
    expect(byName.get('middle_block.1.time_stack.0.cc_projection.weight')).toEqual([1280, 1292]);
    expect(byName.get('output_blocks.11.1.time_stack.0.cc_projection.weight')).toEqual([320, 332]);
    // sgm's numbering of resamplers and the blocks without attention
    expect(byName.get('input_blocks.3.0.op.weight')).toEqual([320, 320, 3, 3]);
    expect(byName.get('input_blocks.11.0.time_stack.in_layers.2.weight')).toEqual([1280, 1280, 3, 1, 1]);
    expect(byName.get('output_blocks.2.1.conv.weight')).toEqual([1280, 1280, 3, 3]);
    expect(byName.get('output_blocks.5.2.conv.weight')).toEqual([1280, 1280, 3, 3]);
    expect(byName.get('label_emb.0.0.weight')).toEqual([1280, 768]);
    expect(byName.get('input_blocks.1.1.time_pos_embed.0.weight')).toEqual([1280, 320]);
    // 5·(320·332 + 320) + 5·(640·652 + 640) + 6·(1280·1292 + 1280) parameters in the camera module
    const cameraParams = names
      .filter((n) => n.name.includes('.cc_projection.'))
      .reduce((t, n) => t + n.shape.reduce((a, b) => a * b, 1), 0);
    expect(cameraParams).toBe(12_552_640);
  });
});
