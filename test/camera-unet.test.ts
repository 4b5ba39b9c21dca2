/**
 * MotionCtrl-SVD's UNet from a `.ckpt` in sgm layout (random weights under MotionCtrl's exact key names and shapes,
 * written by our torch writer), run in onnxruntime on CPU: it builds and runs; with every cc_projection at its
 * initialisation (identity on the hidden part, zero on the pose part) it equals the plain SVD UNet built from the
 * same weights in diffusers layout; and different camera poses change its output.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildSgmUnetGraph,
  CAMERA_POSE_DIM,
  randomMotionCtrlTensors,
  writeSgmCheckpoint,
} from '../src/camera/checkpoint.js';
import { cameraPoses } from '../src/camera/trajectory.js';
import { openTorchCheckpoint } from '../src/ckpt/reader.js';
import { CheckpointError } from '../src/errors.js';
import { seededNormal } from '../src/onnx/randomWeights.js';
import { checkpointWeights } from '../src/onnx/weights.js';
import { writeSafetensors } from '../src/safetensors/writer.js';
import { buildUnetGraph } from '../src/unet/index.js';

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1 };
const dir = mkdtempSync(join(tmpdir(), 'svd-camera-unet-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = JSON.parse(readFileSync('models/tiny-svd/unet/config.json', 'utf8'));
const B = 2,
  F = 4,
  h = 4,
  w = 6;

function feeds(pose: Float32Array): Record<string, ort.Tensor> {
  const normal = seededNormal(11);
  const fill = (n: number) => Float32Array.from({ length: n }, normal);
  return {
    sample: new ort.Tensor('float32', fill(B * F * 8 * h * w), [B, F, 8, h, w]),
    timestep: new ort.Tensor('float32', Float32Array.of(0.7), []),
    encoder_hidden_states: new ort.Tensor('float32', fill(B * 32), [B, 1, 32]),
    added_time_ids: new ort.Tensor('float32', Float32Array.from([6, 127, 0.02, 6, 127, 0.02]), [B, 3]),
    camera_pose: new ort.Tensor('float32', pose, [B, F, CAMERA_POSE_DIM]),
  };
}

/** The same poses for the uncond and cond halves, as MotionCtrl's sampler passes them. */
function batchPoses(poses: Float32Array): Float32Array {
  const out = new Float32Array(B * poses.length);
  for (let b = 0; b < B; b++) out.set(poses, b * poses.length);
  return out;
}

async function run(path: string, feed: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path, SESSION_OPTIONS);
  const names = new Set(session.inputNames);
  const used = Object.fromEntries(Object.entries(feed).filter(([k]) => names.has(k)));
  const out = (await session.run(used)).noise_pred.data as Float32Array;
  await session.release();
  return out;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('MotionCtrl-SVD UNet from an sgm .ckpt', () => {
  it('holds MotionCtrl key names and shapes, builds with a camera_pose input, and runs', async () => {
    const ckptPath = join(dir, 'random.ckpt');
    writeSgmCheckpoint(ckptPath, config, randomMotionCtrlTensors(config, 3));
    const ckpt = openTorchCheckpoint(ckptPath);
    // MotionCtrl adds cc_projection = Linear(C + 12, C) to each VideoTransformerBlock (sgm's `time_stack.<d>`)
    expect(ckpt.tensors.get('model.diffusion_model.input_blocks.1.1.time_stack.0.cc_projection.weight')?.shape).toEqual(
      [32, 44],
    );
    expect(ckpt.tensors.get('model.diffusion_model.input_blocks.1.1.time_stack.0.cc_projection.bias')?.shape).toEqual([
      32,
    ]);
    expect(ckpt.tensors.get('model.diffusion_model.middle_block.1.time_stack.0.cc_projection.weight')?.shape).toEqual([
      64, 76,
    ]);
    expect(ckpt.tensors.has('model.diffusion_model.output_blocks.5.1.time_stack.0.cc_projection.weight')).toBe(true);
    expect(ckpt.tensors.has('model.diffusion_model.input_blocks.1.0.time_stack.in_layers.2.weight')).toBe(true);
    expect(ckpt.tensors.has('model.diffusion_model.input_blocks.3.0.op.weight')).toBe(true);
    expect(ckpt.tensors.has('model.diffusion_model.output_blocks.2.1.conv.weight')).toBe(true);

    const info = buildSgmUnetGraph(ckpt, config, { outDir: join(dir, 'random') });
    expect(info.cameraPoseDim).toBe(12);
    expect(info.unexpectedWeights).toEqual([]);
    const out = await run(info.path, feeds(batchPoses(cameraPoses({ preset: 'Zoom In', frames: F, speed: 1 }))));
    expect(out.length).toBe(B * F * 4 * h * w);
    expect(out.every(Number.isFinite)).toBe(true);
  });

  it('with identity-on-hidden, zero-on-pose projections equals the plain SVD UNet to 1e-6', async () => {
    const tensors = randomMotionCtrlTensors(config, 5, { identityCamera: true });
    writeSgmCheckpoint(join(dir, 'identity.ckpt'), config, tensors);
    const camera = buildSgmUnetGraph(join(dir, 'identity.ckpt'), config, { outDir: join(dir, 'identity') });
    const plainTensors = Object.fromEntries(Object.entries(tensors).filter(([n]) => !n.includes('.cc_projection.')));
    writeSafetensors(join(dir, 'plain', 'diffusion_pytorch_model.safetensors'), plainTensors);
    const plain = buildUnetGraph(
      { config, weights: checkpointWeights(join(dir, 'plain')) },
      { outDir: join(dir, 'plain-graph') },
    );
    const pose = batchPoses(cameraPoses({ preset: 'Pan Left', frames: F, speed: 4 }));
    const a = await run(camera.path, feeds(pose));
    const b = await run(plain.path, feeds(pose));
    const diff = maxAbsDiff(a, b);
    console.log(`identity camera module vs plain UNet: max |Δ| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-6);
  });

  it('different presets change the output', async () => {
    const info = buildSgmUnetGraph(join(dir, 'random.ckpt'), config, { outDir: join(dir, 'random2') });
    const outs = new Map<string, Float32Array>();
    for (const preset of ['Pan Up', 'Zoom In', 'CW'] as const) {
      outs.set(preset, await run(info.path, feeds(batchPoses(cameraPoses({ preset, frames: F, speed: 2 })))));
    }
    const [up, zoom, cw] = [...outs.values()];
    expect(maxAbsDiff(up, zoom)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(zoom, cw)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(up, cw)).toBeGreaterThan(1e-3);
  });

  it('a diffusers-layout conversion (cc_projection under diffusers names) builds the same camera UNet', async () => {
    const tensors = randomMotionCtrlTensors(config, 3);
    writeSafetensors(join(dir, 'diffusers', 'diffusion_pytorch_model.safetensors'), tensors);
    const info = buildUnetGraph(
      { config, weights: checkpointWeights(join(dir, 'diffusers')) },
      { outDir: join(dir, 'diffusers-graph') },
    );
    expect(info.cameraPoseDim).toBe(12);
    expect(info.unexpectedWeights).toEqual([]);
    const pose = batchPoses(cameraPoses({ preset: 'ACW', frames: F, speed: 2 }));
    const fromSgm = buildSgmUnetGraph(join(dir, 'random.ckpt'), config, { outDir: join(dir, 'random3') });
    expect(maxAbsDiff(await run(info.path, feeds(pose)), await run(fromSgm.path, feeds(pose)))).toBe(0);
  });

  it('refuses a checkpoint missing a camera tensor, naming it by its diffusers name', () => {
    const tensors = randomMotionCtrlTensors(config, 7);
    delete tensors['down_blocks.0.attentions.0.temporal_transformer_blocks.0.cc_projection.bias'];
    writeSgmCheckpoint(join(dir, 'broken.ckpt'), config, tensors);
    let err: unknown;
    try {
      buildSgmUnetGraph(join(dir, 'broken.ckpt'), config, { outDir: join(dir, 'broken') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).problems.join('\n')).toContain(
      'down_blocks.0.attentions.0.temporal_transformer_blocks.0.cc_projection.bias: missing',
    );
  });
});
