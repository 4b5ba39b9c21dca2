/**
 * The one generation-request schema. CLI flags, the module API and the HTTP server derive from it;
 * per-model defaults (frames, fps, size, ...) come from the model manifest and are applied by
 * `resolveRequest`, so fields that depend on the model have no default here.
 */
import { z } from 'zod';
import { InvalidRequestError, type FieldIssue } from '../errors.js';
import { CAMERA_PRESETS, normalizeCameraPreset } from '../camera/trajectory.js';
import { intRange, numRange } from './fields.js';
import { MAX_CLIPS, planClips } from '../motion/clips.js';

export const RESIZE_MODES = ['maintain_aspect_ratio', 'crop_to_16_9', 'stretch'] as const;
export const OUTPUT_FORMATS = ['mp4', 'webm', 'gif', 'png'] as const;
export const MAX_SEED = 2 ** 32 - 1;
/** How the UNet runs the CFG batch (uncond, cond): one batch-2 call, two batch-1 calls, or chosen per run. */
export const CFG_BATCH_MODES = ['auto', 'joint', 'split'] as const;
export type CfgBatchMode = (typeof CFG_BATCH_MODES)[number];

const side = z
  .number({ error: 'must be a multiple of 64 from 64 to 2048' })
  .int({ error: 'must be a multiple of 64 from 64 to 2048' })
  .min(64, { error: 'must be a multiple of 64 from 64 to 2048' })
  .max(2048, { error: 'must be a multiple of 64 from 64 to 2048' })
  .refine((v) => v % 64 === 0, { error: 'must be a multiple of 64 from 64 to 2048' });

export const DEVICE_PATTERN = /^(auto|cpu|cuda(:\d+)?|webgpu)$/;
export const MAX_DURATION_SECONDS = 600;

const imageSource = z.union([z.string().min(1, { error: 'must not be empty' }), z.instanceof(Uint8Array)], {
  error: 'must be a file path, an http(s) URL, a data: URI, base64 text or image bytes',
});

const CAMERA_ERROR = `must be a camera preset (${CAMERA_PRESETS.join(', ')}) or a .json trajectory file`;
const POSE_ERROR = 'each pose must be 12 finite numbers (a 3×4 [R|t], row-major)';

/**
 * MotionCtrl-SVD camera motion (docs/camera-motion.md): a preset name (CLI spellings such as `pan-left` accepted),
 * a path to a JSON file of per-frame 3×4 RT matrices, or (module API) those matrices as arrays of 12 numbers.
 */
const cameraField = z.preprocess(
  normalizeCameraPreset,
  z.union(
    [
      z.enum(CAMERA_PRESETS, { error: CAMERA_ERROR }),
      z.string().regex(/\.json$/i, { error: CAMERA_ERROR }),
      z
        .array(z.array(z.number().refine(Number.isFinite), { error: POSE_ERROR }).length(12, { error: POSE_ERROR }), {
          error: CAMERA_ERROR,
        })
        .min(1, { error: CAMERA_ERROR }),
    ],
    { error: CAMERA_ERROR },
  ),
);

export const generationRequestSchema = z.strictObject({
  /** Local path, http(s) URL, `data:` URI or bare base64 string; or the encoded bytes (module API). */
  image: imageSource,
  /**
   * Motion mask, any size, same sources as `image`: white stays still, black moves (fal's `mask_image_url`).
   * Resized to the latent grid and feathered; see docs/motion-controls.md.
   */
  mask: imageSource.optional(),
  /** Chain this many clips, each conditioned on the previous one (default 1). Exclusive with `duration`. */
  clips: intRange(1, MAX_CLIPS).optional(),
  /** Video length in seconds: as many chained clips as needed, trimmed to round(duration·fps) frames. */
  duration: numRange(0, MAX_DURATION_SECONDS)
    .refine((v) => v > 0, { error: `must be more than 0 and at most ${MAX_DURATION_SECONDS} seconds` })
    .optional(),
  /** Frames consecutive chained clips share and cross-fade (default 3, fewer for short clips). */
  overlap: intRange(1, 127).optional(),
  /** Steer the last frames back to the first so the video plays as a seamless loop. */
  loop: z.boolean({ error: 'must be true or false' }).optional(),
  /** Camera motion (MotionCtrl-SVD models only): preset or trajectory; see cameraField. */
  camera: cameraField.optional(),
  /** Scales the camera motion, 0-10 (MotionCtrl's demo `speed`, Segmind's `motion_speed`); default 1. */
  motionSpeed: numRange(0, 10).optional(),
  width: side.optional(),
  height: side.optional(),
  resize: z.enum(RESIZE_MODES, { error: `must be one of ${RESIZE_MODES.join(', ')}` }).optional(),
  frames: intRange(1, 128).optional(),
  steps: intRange(1, 100).optional(),
  fps: intRange(1, 60).optional(),
  motionBucketId: intRange(1, 255).optional(),
  condAug: numRange(0, 10).optional(),
  /** −1 or absent: a random seed, reported back in the result. */
  seed: intRange(-1, MAX_SEED).optional(),
  minGuidance: numRange(0, 30).optional(),
  maxGuidance: numRange(0, 30).optional(),
  /**
   * Frames decoded per VAE call (Segmind's `decoding_t`); default: all frames at once. `auto`: the largest that
   * fits in the memory available (src/models/memory.ts).
   */
  decodeChunkSize: z
    .union([intRange(1, 128), z.literal('auto')], { error: 'must be a whole number from 1 to 128, or auto' })
    .optional(),
  /**
   * The CFG batch as one batch-2 UNet call (`joint`, diffusers) or two batch-1 calls (`split`: the same result,
   * half the UNet's activation memory, a little slower). `auto` (default): joint unless the joint run does not fit
   * the memory available or a WebGPU adapter's binding limit and the split one does (src/pipeline/denoise.ts).
   */
  cfgBatch: z.enum(CFG_BATCH_MODES, { error: `must be one of ${CFG_BATCH_MODES.join(', ')}` }).optional(),
  format: z.enum(OUTPUT_FORMATS, { error: `must be one of ${OUTPUT_FORMATS.join(', ')}` }).default('mp4'),
  /** Output file (mp4/webm/gif) or directory (png frames). */
  output: z.string().min(1, { error: 'must not be empty' }).optional(),
  /** Registry name, model directory or Hugging Face repo id. */
  model: z.string().min(1, { error: 'must not be empty' }).optional(),
  device: z.string().regex(DEVICE_PATTERN, { error: 'must be auto, cpu, cuda, cuda:N or webgpu' }).default('auto'),
});

/** What callers pass (optional fields may be omitted). */
export type GenerationRequestInput = z.input<typeof generationRequestSchema>;
/** A validated request, schema defaults applied, model defaults not yet applied. */
export type GenerationRequest = z.output<typeof generationRequestSchema>;

/** Model-dependent defaults, read from the model manifest (`model.json` `defaults`). */
export interface ModelDefaults {
  frames: number;
  fps: number;
  motionBucketId: number;
  condAug: number;
  minGuidance: number;
  maxGuidance: number;
  width: number;
  height: number;
  steps: number;
  /** Frames per VAE decoder call; absent: all frames at once. */
  decodeChunkSize?: number;
}

/** A request with every field decided; what the local pipeline runs. */
export interface ResolvedRequest
  extends Omit<
    GenerationRequest,
    | 'frames'
    | 'fps'
    | 'motionBucketId'
    | 'condAug'
    | 'minGuidance'
    | 'maxGuidance'
    | 'seed'
    | 'resize'
    | 'steps'
    | 'clips'
    | 'overlap'
    | 'loop'
    | 'cfgBatch'
  > {
  /** Frames of one clip (one UNet call). */
  frames: number;
  /** Chained clips (1 unless `clips` or `duration` asked for more), the frames they share, and the video's length. */
  clips: number;
  overlap: number;
  totalFrames: number;
  loop: boolean;
  fps: number;
  motionBucketId: number;
  condAug: number;
  minGuidance: number;
  maxGuidance: number;
  steps: number;
  /** Target size before `resize` is applied to the image; see `src/image`. */
  width: number;
  height: number;
  resize: (typeof RESIZE_MODES)[number];
  seed: number;
  /** Frames per decoder call; for `auto`, all frames until the memory check picks the largest that fits. */
  decodeChunkSize: number;
  /** The request asked for `decodeChunkSize: auto`. */
  decodeChunkAuto: boolean;
  /** `auto` until the memory check or the WebGPU binding limit decides (src/pipeline/denoise.ts). */
  cfgBatch: CfgBatchMode;
}

/** Converts zod issues into our field issues (one per bad field, naming field, value and what is allowed). */
export function fieldIssuesFromZod(error: z.ZodError, input: unknown): FieldIssue[] {
  const seen = new Set<string>();
  const issues: FieldIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const field = [...issue.path.map(String), key].join('.');
        if (seen.has(field)) continue;
        seen.add(field);
        issues.push({ field, message: 'is not a known field' });
      }
      continue;
    }
    const field = issue.path.map(String).join('.') || '(request)';
    if (seen.has(field)) continue;
    seen.add(field);
    issues.push({ field, value: valueAt(input, issue.path), message: issue.message });
  }
  return issues;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** Validates a request; throws InvalidRequestError listing every bad field. */
export function parseRequest(input: unknown): GenerationRequest {
  const result = generationRequestSchema.safeParse(input);
  if (!result.success) throw new InvalidRequestError(fieldIssuesFromZod(result.error, input));
  const req = result.data;
  const issues: FieldIssue[] = [];
  if (req.minGuidance !== undefined && req.maxGuidance !== undefined && req.minGuidance > req.maxGuidance) {
    issues.push({
      field: 'minGuidance',
      value: req.minGuidance,
      message: `must not exceed maxGuidance (${req.maxGuidance})`,
    });
  }
  if (req.motionSpeed !== undefined && req.camera === undefined) {
    issues.push({
      field: 'motionSpeed',
      value: req.motionSpeed,
      message: 'only applies with camera (a preset or trajectory file)',
    });
  }
  if (req.clips !== undefined && req.duration !== undefined) {
    issues.push({ field: 'duration', value: req.duration, message: 'give clips or duration, not both' });
  }
  if ((req.width === undefined) !== (req.height === undefined) && req.resize !== 'maintain_aspect_ratio') {
    issues.push({
      field: req.width === undefined ? 'width' : 'height',
      message: 'width and height must be given together',
    });
  }
  if (issues.length) throw new InvalidRequestError(issues);
  return req;
}

/** Fills model-dependent defaults and checks limits that depend on the model. */
export function resolveRequest(
  req: GenerationRequest,
  defaults: ModelDefaults,
  randomSeed: () => number,
): ResolvedRequest {
  const frames = req.frames ?? defaults.frames;
  const seed = req.seed === undefined || req.seed === -1 ? randomSeed() : req.seed;
  const asked = req.decodeChunkSize === 'auto' ? undefined : req.decodeChunkSize;
  const decodeChunkSize = Math.min(asked ?? defaults.decodeChunkSize ?? frames, frames);
  const fps = req.fps ?? defaults.fps;
  const plan = planClips({ frames, fps, clips: req.clips, duration: req.duration, overlap: req.overlap });
  return {
    ...req,
    frames,
    clips: plan.clips,
    overlap: plan.overlap,
    totalFrames: plan.totalFrames,
    loop: req.loop ?? false,
    fps,
    steps: req.steps ?? defaults.steps,
    motionBucketId: req.motionBucketId ?? defaults.motionBucketId,
    condAug: req.condAug ?? defaults.condAug,
    minGuidance: req.minGuidance ?? defaults.minGuidance,
    maxGuidance: req.maxGuidance ?? defaults.maxGuidance,
    width: req.width ?? defaults.width,
    height: req.height ?? defaults.height,
    resize: req.resize ?? 'stretch',
    seed,
    decodeChunkSize,
    decodeChunkAuto: req.decodeChunkSize === 'auto',
    cfgBatch: req.cfgBatch ?? 'auto',
  };
}
