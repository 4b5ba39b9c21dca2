/**
 * Camera trajectories for MotionCtrl-SVD: per-frame 3×4 [R | t] poses, flattened row-major to 12 numbers and made
 * relative to the first frame, as the model was trained (docs/camera-motion.md). Pure math, no I/O except
 * `readTrajectoryFile`.
 *
 * The eight presets are MotionCtrl's demo motions (its `get_camera_motion`): for frame i of n,
 *   θ_i = (i/n) · speed · π/3 · angle,   R_i = Rz(θz) · Ry(θy) · Rx(θx),   t_i = (i/n) · speed · 1.5 · T.
 * Evaluating the path at i/n for the requested n is the resampling: a preset is a motion over the clip's length.
 */
import { readFileSync } from 'node:fs';
import { InvalidRequestError } from '../errors.js';

export const CAMERA_PRESETS = [
  'Pan Up',
  'Pan Down',
  'Pan Left',
  'Pan Right',
  'Zoom In',
  'Zoom Out',
  'CW',
  'ACW',
] as const;
export type CameraPreset = (typeof CAMERA_PRESETS)[number];

/** Rotation axis weights (x, y, z) and translation direction (x, y, z) of each preset (docs/camera-motion.md table). */
const PRESET_MOTION: Record<CameraPreset, { angle: [number, number, number]; t: [number, number, number] }> = {
  'Pan Up': { angle: [0, 0, 0], t: [0, 1, 0] },
  'Pan Down': { angle: [0, 0, 0], t: [0, -1, 0] },
  'Pan Left': { angle: [0, 0, 0], t: [3, 0, 0] },
  'Pan Right': { angle: [0, 0, 0], t: [-3, 0, 0] },
  'Zoom In': { angle: [0, 0, 0], t: [0, 0, -4] },
  'Zoom Out': { angle: [0, 0, 0], t: [0, 0, 4] },
  ACW: { angle: [0, 0, 1], t: [0, 0, 0] },
  CW: { angle: [0, 0, -1], t: [0, 0, 0] },
};
const BASE_ANGLE = Math.PI / 3;
const BASE_T = 1.5;

/** `pan-up`, `pan_up`, `PAN UP`, `cw` → `Pan Up`, `CW`; anything else unchanged. */
export function normalizeCameraPreset(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const key = value
    .trim()
    .toLowerCase()
    .replace(/[-_\s]+/g, ' ');
  return CAMERA_PRESETS.find((m) => m.toLowerCase() === key) ?? value;
}

export function isCameraPreset(value: unknown): value is CameraPreset {
  return typeof value === 'string' && (CAMERA_PRESETS as readonly string[]).includes(value);
}

/** One pose: a 3×4 [R | t], row-major (12 numbers). */
export type Pose = Float64Array;

/** R = Rz(z) · Ry(y) · Rx(x), row-major 3×3. */
export function rotationZYX(x: number, y: number, z: number): number[] {
  const [cx, sx, cy, sy, cz, sz] = [Math.cos(x), Math.sin(x), Math.cos(y), Math.sin(y), Math.cos(z), Math.sin(z)];
  return [
    cz * cy,
    cz * sy * sx - sz * cx,
    cz * sy * cx + sz * sx,
    sz * cy,
    sz * sy * sx + cz * cx,
    sz * sy * cx - cz * sx,
    -sy,
    cy * sx,
    cy * cx,
  ];
}

const pose = (r: number[], t: number[]): Pose =>
  Float64Array.of(r[0], r[1], r[2], t[0], r[3], r[4], r[5], t[1], r[6], r[7], r[8], t[2]);

/** A preset's absolute poses for `frames` frames at `speed` (MotionCtrl's demo formula; frame 0 is [I | 0]). */
export function presetPoses(preset: CameraPreset, frames: number, speed: number): Pose[] {
  const { angle, t } = PRESET_MOTION[preset];
  return Array.from({ length: frames }, (_, i) => {
    const k = (i / frames) * speed;
    return pose(
      rotationZYX(k * BASE_ANGLE * angle[0], k * BASE_ANGLE * angle[1], k * BASE_ANGLE * angle[2]),
      t.map((v) => k * BASE_T * v),
    );
  });
}

/** Poses relative to frame 0 (MotionCtrl's `to_relative_RT2`): R'_i = R_i · R_0ᵀ, t'_i = t_i − R'_i · t_0. */
export function relativeToFirst(poses: Pose[]): Pose[] {
  if (poses.length === 0) return [];
  const p0 = poses[0];
  const r0 = [p0[0], p0[1], p0[2], p0[4], p0[5], p0[6], p0[8], p0[9], p0[10]];
  const t0 = [p0[3], p0[7], p0[11]];
  return poses.map((p) => {
    const r = [p[0], p[1], p[2], p[4], p[5], p[6], p[8], p[9], p[10]];
    const rel = new Array<number>(9);
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++)
        rel[a * 3 + b] = r[a * 3] * r0[b * 3] + r[a * 3 + 1] * r0[b * 3 + 1] + r[a * 3 + 2] * r0[b * 3 + 2];
    const t = [p[3], p[7], p[11]].map(
      (v, a) => v - (rel[a * 3] * t0[0] + rel[a * 3 + 1] * t0[1] + rel[a * 3 + 2] * t0[2]),
    );
    return pose(rel, t);
  });
}

// ---- resampling a custom trajectory: translation linearly, rotation by quaternion slerp

function toQuaternion(r: number[]): [number, number, number, number] {
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = r;
  const tr = m00 + m11 + m22;
  let q: [number, number, number, number];
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    q = [0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s];
  } else if (m00 > m11 && m00 > m22) {
    const s = Math.sqrt(1 + m00 - m11 - m22) * 2;
    q = [(m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s];
  } else if (m11 > m22) {
    const s = Math.sqrt(1 + m11 - m00 - m22) * 2;
    q = [(m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s];
  } else {
    const s = Math.sqrt(1 + m22 - m00 - m11) * 2;
    q = [(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s];
  }
  const n = Math.hypot(...q);
  return q.map((v) => v / n) as [number, number, number, number];
}

function fromQuaternion([w, x, y, z]: number[]): number[] {
  return [
    1 - 2 * (y * y + z * z),
    2 * (x * y - z * w),
    2 * (x * z + y * w),
    2 * (x * y + z * w),
    1 - 2 * (x * x + z * z),
    2 * (y * z - x * w),
    2 * (x * z - y * w),
    2 * (y * z + x * w),
    1 - 2 * (x * x + y * y),
  ];
}

function slerp(a: number[], b: number[], u: number): number[] {
  let dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
  const bb = dot < 0 ? b.map((v) => -v) : b;
  dot = Math.abs(dot);
  if (dot > 0.9995) {
    const q = a.map((v, i) => v + u * (bb[i] - v));
    const n = Math.hypot(...q);
    return q.map((v) => v / n);
  }
  const theta = Math.acos(dot);
  const s = Math.sin(theta);
  const wa = Math.sin((1 - u) * theta) / s,
    wb = Math.sin(u * theta) / s;
  return a.map((v, i) => wa * v + wb * bb[i]);
}

/**
 * `frames` poses spread evenly from the first to the last of `poses` (same count: unchanged). Translation is
 * interpolated linearly, rotation by quaternion slerp, so a rotation stays a rotation.
 */
export function resamplePoses(poses: Pose[], frames: number): Pose[] {
  if (poses.length === frames) return poses.map((p) => Float64Array.from(p));
  if (poses.length === 1 || frames === 1) return Array.from({ length: frames }, () => Float64Array.from(poses[0]));
  const rot = (p: Pose) => [p[0], p[1], p[2], p[4], p[5], p[6], p[8], p[9], p[10]];
  return Array.from({ length: frames }, (_, i) => {
    const x = (i * (poses.length - 1)) / (frames - 1);
    const k = Math.min(Math.floor(x), poses.length - 2);
    const u = x - k;
    const [a, b] = [poses[k], poses[k + 1]];
    const r = fromQuaternion(slerp(toQuaternion(rot(a)), toQuaternion(rot(b)), u));
    const t = [3, 7, 11].map((j) => a[j] + u * (b[j] - a[j]));
    return pose(r, t);
  });
}

/**
 * Parses a custom trajectory: a JSON array with one pose per frame, each 12 numbers (3×4 row-major, MotionCtrl's
 * files), a 3×4 nested array, or a 4×4 matrix whose last row is dropped. `source` names the file in errors.
 */
export function parseTrajectory(json: unknown, source: string, field = 'camera'): Pose[] {
  const fail = (message: string): never => {
    throw new InvalidRequestError([{ field, value: source, message }]);
  };
  if (!Array.isArray(json) || json.length === 0)
    fail('trajectory file must hold a non-empty JSON array with one pose per frame');
  return (json as unknown[]).map((row, i) => {
    let flat: unknown[] | undefined;
    if (Array.isArray(row) && row.length === 12) flat = row;
    else if (
      Array.isArray(row) &&
      (row.length === 3 || row.length === 4) &&
      row.every((r) => Array.isArray(r) && r.length === 4)
    ) {
      flat = (row as unknown[][]).slice(0, 3).flat();
    }
    if (!flat || !flat.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      fail(`frame ${i}: expected 12 finite numbers (a 3×4 [R|t], row-major) or a 3×4 / 4×4 nested array`);
    }
    return Float64Array.from(flat as number[]);
  });
}

/** Reads and parses a trajectory JSON file; errors name the file and the field. */
export function readTrajectoryFile(path: string, field = 'camera'): Pose[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidRequestError([
      {
        field,
        value: path,
        message: `cannot read the trajectory file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      },
    ]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidRequestError([
      { field, value: path, message: `trajectory file is not valid JSON (${(err as Error).message})` },
    ]);
  }
  return parseTrajectory(json, path, field);
}

export interface CameraPosesInput {
  /** A preset, or absolute per-frame poses (a custom trajectory). */
  preset?: CameraPreset;
  poses?: Pose[];
  frames: number;
  /** Scales a preset's motion (angle and translation) or a custom trajectory's translation; default 1. */
  speed?: number;
}

/**
 * What the UNet's `camera_pose` input gets for one video: [frames, 12] float32, relative to frame 0.
 *
 * @example cameraPoses({ preset: 'Zoom In', frames: 14, speed: 1 }) // Float32Array(168)
 */
export function cameraPoses(o: CameraPosesInput): Float32Array {
  const speed = o.speed ?? 1;
  let poses: Pose[];
  if (o.preset) poses = presetPoses(o.preset, o.frames, speed);
  else if (o.poses) {
    poses = resamplePoses(o.poses, o.frames).map((p) => {
      const q = Float64Array.from(p);
      for (const j of [3, 7, 11]) q[j] *= speed;
      return q;
    });
  } else throw new Error('cameraPoses: a preset or poses is required');
  const rel = relativeToFirst(poses);
  const out = new Float32Array(o.frames * 12);
  rel.forEach((p, i) => out.set(p, i * 12));
  return out;
}
