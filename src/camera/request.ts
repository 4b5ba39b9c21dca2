/**
 * A request's `camera` / `motionSpeed` → the UNet's `camera_pose` input, and the check that the model can take it.
 * MotionCtrl feeds the same poses to the unconditional and conditional halves of the CFG batch.
 */
import type { FieldIssue } from '../errors.js';
import { cameraPoses, isCameraPreset, readTrajectoryFile, type Pose } from './trajectory.js';

/** The registry name of the model with the camera module, for messages. */
export const CAMERA_MODEL = 'motionctrl-svd';

/** The request's camera fields (src/request/schema.ts; written out here, request/ sits below camera/). */
type CameraFields = { camera?: string | number[][]; motionSpeed?: number };

/** Why a request's camera cannot run on a model (none when it can). */
export function cameraIssues(
  req: CameraFields,
  model: { variant: string; cameraPoseDim: number | null },
): FieldIssue[] {
  if (req.camera === undefined || model.cameraPoseDim !== null) return [];
  return [
    {
      field: 'camera',
      value: Array.isArray(req.camera) ? '(poses)' : req.camera,
      message: `model ${model.variant} has no camera-motion module; use --model ${CAMERA_MODEL} (MotionCtrl-SVD)`,
    },
  ];
}

/** The absolute poses of a custom trajectory (file or inline), or undefined for a preset / no camera. */
export function customTrajectory(camera: CameraFields['camera']): Pose[] | undefined {
  if (camera === undefined || isCameraPreset(camera)) return undefined;
  if (Array.isArray(camera)) return camera.map((row) => Float64Array.from(row));
  return readTrajectoryFile(camera);
}

/**
 * `camera_pose` for a batch of `batch` identical videos: [batch, frames, 12]. No camera on a camera model is a
 * still camera (every pose [I | 0]), which is what MotionCtrl computes at speed 0.
 */
export function cameraPoseBatch(req: CameraFields, frames: number, batch: number): Float32Array {
  const speed = req.motionSpeed ?? 1;
  const one =
    req.camera === undefined
      ? cameraPoses({ preset: 'CW', frames, speed: 0 })
      : isCameraPreset(req.camera)
        ? cameraPoses({ preset: req.camera, frames, speed })
        : cameraPoses({ poses: customTrajectory(req.camera)!, frames, speed });
  const out = new Float32Array(batch * one.length);
  for (let b = 0; b < batch; b++) out.set(one, b * one.length);
  return out;
}
