/**
 * MotionCtrl-SVD checkpoints (`motionctrl_svd.ckpt`: an sgm DiffusionEngine state dict whose temporal transformer
 * blocks carry a `cc_projection`, docs/camera-motion.md): detecting the camera module, building the UNet graph from
 * such a file with the base SVD's `unet/config.json`, and writing random-weight ones for tests.
 */
import { isTorchCheckpointPath, openTorchCheckpoint } from '../ckpt/reader.js';
import { pyOrderedDict, pyTensor, writeTorchCheckpoint, type PyValue } from '../ckpt/writer.js';
import { CheckpointError } from '../errors.js';
import { randomTensors } from '../onnx/randomWeights.js';
import type { SafetensorsCheckpoint } from '../safetensors/reader.js';
import { openCheckpoint } from '../safetensors/reader.js';
import type { TensorToWrite } from '../safetensors/writer.js';
import { buildUnetGraph, unetWeights, type UnetBuildOptions, type UnetBuildResult } from '../unet/build.js';
import { parseUnetConfig } from '../unet/config.js';
import { diffusersToSgm, looksLikeSgmUnet, SGM_UNET_PREFIX, sgmUnetWeights } from '../unet/sgmNames.js';

/** MotionCtrl's pose: a row-major 3×4 [R | t] per frame (pose_dim = 12, pose_embedding_dim = 1). */
export const CAMERA_POSE_DIM = 12;

/** The pose width of a checkpoint's camera module (any cc_projection weight is [C, C + P]); undefined without one. */
export function cameraPoseDim(names: Map<string, { shape: number[] }>): number | undefined {
  for (const [name, info] of names) {
    if (name.endsWith('.cc_projection.weight') && info.shape.length === 2) return info.shape[1] - info.shape[0];
  }
  return undefined;
}

/** Opens a UNet checkpoint in sgm layout: a torch `.ckpt`/`.pt` or a `.safetensors` file. */
export function openSgmCheckpoint(path: string): SafetensorsCheckpoint {
  const ckpt = isTorchCheckpointPath(path) ? openTorchCheckpoint(path) : openCheckpoint(path);
  if (!looksLikeSgmUnet(ckpt.tensors.keys())) {
    throw new CheckpointError(
      path,
      `no ${SGM_UNET_PREFIX}input_blocks.* tensors: not an SVD/MotionCtrl checkpoint in sgm layout`,
    );
  }
  return ckpt;
}

/**
 * Builds `<outDir>/unet.onnx` from an sgm-layout UNet checkpoint (MotionCtrl-SVD's `.ckpt`, or an original SVD
 * checkpoint) with a diffusers `unet/config.json` object for its shape. A checkpoint with cc_projection tensors
 * gives a graph with the `camera_pose` input. Throws CheckpointError listing missing or mis-shaped tensors.
 *
 * @example buildSgmUnetGraph('motionctrl_svd.ckpt', svdUnetConfig, { outDir: 'out', dtype: 'float16', target: 'cuda' })
 */
export function buildSgmUnetGraph(
  checkpoint: string | SafetensorsCheckpoint,
  config: Record<string, unknown>,
  options: UnetBuildOptions,
): UnetBuildResult {
  const ckpt = typeof checkpoint === 'string' ? openSgmCheckpoint(checkpoint) : checkpoint;
  const parsed = parseUnetConfig(config);
  const poseDim = cameraPoseDim(ckpt.tensors);
  const camera = poseDim === undefined ? undefined : { poseDim };
  const names = unetWeights(config, { camera }).map((r) => r.name);
  const weights = sgmUnetWeights(ckpt, parsed, names);
  return buildUnetGraph({ config, weights, configPath: 'unet/config.json' }, { ...options, camera });
}

/**
 * Random UNet tensors under diffusers names for `config` with MotionCtrl's camera module. `identityCamera`
 * sets every cc_projection to MotionCtrl's initialisation (identity on the hidden part, zero on the pose part,
 * zero bias), which makes the UNet compute exactly the plain SVD UNet.
 */
export function randomMotionCtrlTensors(
  config: Record<string, unknown>,
  seed: number,
  o: { identityCamera?: boolean } = {},
): Record<string, TensorToWrite> {
  const tensors = randomTensors(unetWeights(config, { camera: { poseDim: CAMERA_POSE_DIM } }), seed);
  if (o.identityCamera) {
    for (const [name, t] of Object.entries(tensors)) {
      if (!name.includes('.cc_projection.')) continue;
      const data = t.data as Float32Array;
      data.fill(0);
      if (name.endsWith('.weight')) {
        const [rows, cols] = t.shape;
        for (let i = 0; i < rows; i++) data[i * cols + i] = 1;
      }
    }
  }
  return tensors;
}

/**
 * Writes tensors (diffusers names) as a MotionCtrl-style `.ckpt`: `{"state_dict": OrderedDict}` with sgm names
 * under `model.diffusion_model.`, float32, in torch's ZIP layout (our writer, src/ckpt/writer.ts).
 */
export function writeSgmCheckpoint(
  path: string,
  config: Record<string, unknown>,
  tensors: Record<string, TensorToWrite>,
): void {
  const toSgm = diffusersToSgm(parseUnetConfig(config));
  const entries: Array<[string, PyValue]> = [];
  for (const [name, t] of Object.entries(tensors)) {
    const sgm = toSgm(name);
    if (!sgm) throw new Error(`no sgm name for ${name}`);
    const f32 = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
    entries.push([
      SGM_UNET_PREFIX + sgm,
      pyTensor('F32', t.shape, new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength)),
    ]);
  }
  writeTorchCheckpoint(
    path,
    new Map<string, PyValue>([
      ['state_dict', pyOrderedDict(entries)],
      ['global_step', 0],
    ]),
    { archiveName: 'motionctrl_svd' },
  );
}
