/**
 * The model directory contract: `model.json` + four ONNX files with fixed input/output names.
 * Written by `svd models build` (graphs from safetensors) and `svd models import-onnx` (existing exports);
 * validated on load so that a wrong file fails with its name and the mismatch, not deep inside a run.
 */
import { z } from 'zod';

export const MANIFEST_FILE = 'model.json';
export const MANIFEST_FORMAT = 'svd-runtime/model';
export const MANIFEST_VERSION = 1;

/**
 * The generation defaults of diffusers' `StableVideoDiffusionPipeline.__call__` that do not depend on the
 * checkpoint (frames and size do). Written into every manifest the builder and the importer make; a
 * manifest's own `defaults` are what a run uses (docs/pipeline.md §10).
 */
export const DIFFUSERS_CALL_DEFAULTS = {
  fps: 7,
  motionBucketId: 127,
  condAug: 0.02,
  minGuidance: 1.0,
  maxGuidance: 3.0,
  steps: 25,
} as const;

const positive = z.number().positive();
const positiveInt = z.number().int().positive();

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  formatVersion: z.literal(MANIFEST_VERSION),
  /** Known variant name (svd, svd-xt, svd-xt-1-1, tiny) or "custom". */
  variant: z.string().min(1),
  /** Free text: where the graphs came from (checkpoint path or repo, builder version, importer). */
  source: z.record(z.string(), z.unknown()).default({}),
  files: z.object({
    imageEncoder: z.string().min(1),
    vaeEncoder: z.string().min(1),
    unet: z.string().min(1),
    vaeDecoder: z.string().min(1),
  }),
  /** The EulerDiscreteScheduler settings, as `parseSchedulerConfig` reads them from `scheduler_config.json`. */
  scheduler: z.object({
    predictionType: z.enum(['v_prediction', 'epsilon']),
    sigmaMin: positive,
    sigmaMax: positive,
    rho: positive.default(7),
    timestepSpacing: z.enum(['leading', 'linspace', 'trailing']),
    timestepType: z.enum(['continuous', 'discrete']),
    numTrainTimesteps: positiveInt.default(1000),
    betaStart: positive.default(0.00085),
    betaEnd: positive.default(0.012),
    betaSchedule: z.enum(['linear', 'scaled_linear']).default('scaled_linear'),
  }),
  vae: z.object({
    /** 0.18215 for SVD. */
    scalingFactor: positive,
    /** Pixels per latent cell per side: 2^(len(block_out_channels)−1), 8 for SVD. */
    spatialScaleFactor: positiveInt,
    latentChannels: positiveInt,
    /** Set when the decoder graph only accepts this many frames per call (e.g. a traced export). */
    decoderFixedFrames: positiveInt.nullable().default(null),
  }),
  imageEncoder: z.object({
    imageSize: positiveInt,
    imageMean: z.array(z.number()).length(3),
    imageStd: z.array(z.number()).length(3),
    embedDim: positiveInt,
  }),
  unet: z.object({
    inChannels: positiveInt,
    outChannels: positiveInt,
    /** Latent sides must be a multiple of this (2^(levels−1) for our graphs). */
    latentMultiple: positiveInt.default(1),
    /** MotionCtrl's camera module: the width of the `camera_pose` input (12), or null for a plain SVD UNet. */
    cameraPoseDim: positiveInt.nullable().default(null),
  }),
  defaults: z.object({
    frames: positiveInt,
    fps: positiveInt,
    motionBucketId: positiveInt,
    condAug: z.number().min(0),
    minGuidance: z.number().min(0),
    maxGuidance: z.number().min(0),
    width: positiveInt,
    height: positiveInt,
    /** Manifests written before `steps` was recorded get diffusers' 25. */
    steps: positiveInt.default(DIFFUSERS_CALL_DEFAULTS.steps),
    decodeChunkSize: positiveInt.optional(),
  }),
});

export type ModelManifest = z.output<typeof manifestSchema>;

/** The graphs' compute dtype as the builder recorded it in `source`; float32 where not recorded (imported exports). */
export function manifestDtype(manifest: ModelManifest): 'float32' | 'float16' {
  return manifest.source.dtype === 'float16' ? 'float16' : 'float32';
}
export type ModelManifestInput = z.input<typeof manifestSchema>;

/** The fixed IO contract of each graph: input names with their rank, and the output name. */
export const GRAPH_CONTRACT = {
  imageEncoder: { inputs: { pixel_values: 4 }, output: 'image_embeds' },
  vaeEncoder: { inputs: { sample: 4 }, output: 'latent_mean' },
  unet: {
    inputs: { sample: 5, timestep: 0, encoder_hidden_states: 3, added_time_ids: 2 },
    // MotionCtrl-SVD graphs only (manifest unet.cameraPoseDim), docs/camera-motion.md
    optionalInputs: { camera_pose: 3 },
    output: 'noise_pred',
  },
  vaeDecoder: { inputs: { latent: 4 }, output: 'frames' },
} as const;

export type GraphRole = keyof typeof GRAPH_CONTRACT;
export const GRAPH_ROLES = Object.keys(GRAPH_CONTRACT) as GraphRole[];
