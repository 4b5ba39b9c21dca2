/**
 * CLI flags of a generation request. Flag names and help come from this table; values are parsed only
 * into numbers/strings here and validated by the one request schema, whose field errors are then
 * renamed to the flags the user typed.
 */
import type { Command } from 'commander';
import { InvalidRequestError, MemoryBudgetError } from '../errors.js';
import { OUTPUT_FORMATS, RESIZE_MODES, type GenerationRequestInput } from '../request/schema.js';

interface FlagSpec {
  field: keyof GenerationRequestInput;
  flag: string;
  help: string;
  kind: 'int' | 'number' | 'string' | 'boolean';
}

export const REQUEST_FLAGS: FlagSpec[] = [
  {
    field: 'output',
    flag: '-o, --output <path>',
    help: 'output file (mp4/webm/gif) or directory (png frames)',
    kind: 'string',
  },
  {
    field: 'model',
    flag: '--model <dir|name|repo>',
    help: 'model directory, registry name (svd, svd-xt, svd-xt-1-1, motionctrl-svd) or Hugging Face repo id; default: the embedded tiny model',
    kind: 'string',
  },
  {
    field: 'frames',
    flag: '--frames <n>',
    help: "number of frames, 1-128 (default: the model's, 14 for SVD, 25 for XT)",
    kind: 'int',
  },
  {
    field: 'steps',
    flag: '--steps <n>',
    help: "denoising steps, 1-100 (default: the model's, 25 for SVD)",
    kind: 'int',
  },
  {
    field: 'fps',
    flag: '--fps <n>',
    help: 'frames per second of the video, 1-60 (default 7; the model is conditioned on fps-1)',
    kind: 'int',
  },
  {
    field: 'motionBucketId',
    flag: '--motion-bucket-id <n>',
    help: 'amount of motion, 1-255 (default 127)',
    kind: 'int',
  },
  {
    field: 'condAug',
    flag: '--cond-aug <x>',
    help: 'noise added to the conditioning image, 0-10 (default 0.02)',
    kind: 'number',
  },
  {
    field: 'seed',
    flag: '--seed <n>',
    help: 'random seed, 0-4294967295; -1 or absent: random (always printed)',
    kind: 'int',
  },
  {
    field: 'minGuidance',
    flag: '--min-guidance <x>',
    help: 'guidance scale of the first frame, 0-30 (default 1.0)',
    kind: 'number',
  },
  {
    field: 'maxGuidance',
    flag: '--max-guidance <x>',
    help: 'guidance scale of the last frame, 0-30 (default 3.0)',
    kind: 'number',
  },
  {
    field: 'decodeChunkSize',
    flag: '--decode-chunk-size <n>',
    help: 'frames decoded per VAE call (= decoding_t), or auto: the most that fit in memory; default: all frames',
    kind: 'int',
  },
  {
    field: 'cfgBatch',
    flag: '--cfg-batch <mode>',
    help:
      "the UNet's guidance batch: joint (one batch-2 call) | split (two batch-1 calls: same result, half the " +
      'UNet memory) | auto (default: split only when joint does not fit)',
    kind: 'string',
  },
  {
    field: 'camera',
    flag: '--camera <preset|file.json>',
    help:
      'camera motion (MotionCtrl-SVD, --model motionctrl-svd): pan-up | pan-down | pan-left | pan-right | ' +
      'zoom-in | zoom-out | cw | acw, or a JSON file of per-frame 3x4 RT matrices',
    kind: 'string',
  },
  { field: 'motionSpeed', flag: '--motion-speed <x>', help: 'camera motion speed, 0-10 (default 1)', kind: 'number' },
  {
    field: 'width',
    flag: '--width <px>',
    help: "video width, multiple of 64 (default: the model's, 1024 for SVD)",
    kind: 'int',
  },
  {
    field: 'height',
    flag: '--height <px>',
    help: "video height, multiple of 64 (default: the model's, 576 for SVD)",
    kind: 'int',
  },
  {
    field: 'resize',
    flag: '--resize <mode>',
    help: `how the image is fitted: ${RESIZE_MODES.join(' | ')} (default stretch)`,
    kind: 'string',
  },
  {
    field: 'format',
    flag: '--format <fmt>',
    help: `output format: ${OUTPUT_FORMATS.join(' | ')} (default mp4)`,
    kind: 'string',
  },
  {
    field: 'mask',
    flag: '--mask <image>',
    kind: 'string',
    help: 'motion mask, any size: white stays still, black moves (local, and fal-ai/svd)',
  },
  {
    field: 'clips',
    flag: '--clips <n>',
    help: 'chain n clips, each conditioned on the previous one (default 1)',
    kind: 'int',
  },
  {
    field: 'duration',
    flag: '--duration <seconds>',
    kind: 'number',
    help: 'video length: as many chained clips as needed (local); segmind pixverse: 5 or 8; openai: seconds',
  },
  {
    field: 'overlap',
    flag: '--overlap <n>',
    help: 'frames chained clips share and cross-fade (default 3)',
    kind: 'int',
  },
  {
    field: 'loop',
    flag: '--loop',
    help: 'steer the last frames back to the first for a seamless loop',
    kind: 'boolean',
  },
  {
    field: 'device',
    flag: '--device <dev>',
    help: 'auto | cpu | cuda | cuda:N | webgpu (default auto: CUDA when installed, else WebGPU on a real GPU, else CPU)',
    kind: 'string',
  },
];

const FLAG_OF = new Map(REQUEST_FLAGS.map((f) => [f.field as string, `--${/--([a-z-]+)/.exec(f.flag)![1]}`]));

export function addRequestFlags(cmd: Command): Command {
  for (const f of REQUEST_FLAGS) cmd.option(f.flag, f.help);
  return cmd;
}

/** Turns parsed commander options into a request object (numbers parsed, nothing validated yet). */
export function requestFromFlags(image: string, opts: Record<string, unknown>): GenerationRequestInput {
  const req: Record<string, unknown> = { image };
  for (const f of REQUEST_FLAGS) {
    const raw = opts[f.field];
    if (raw === undefined) continue;
    req[f.field] = f.kind === 'string' || f.kind === 'boolean' ? raw : parseNumberFlag(raw as string);
  }
  if (req.format === 'png' && typeof req.output === 'string') req.output = req.output.replace(/\/$/, '');
  return req as GenerationRequestInput;
}

function parseNumberFlag(raw: string): number | string {
  const n = Number(raw);
  return raw.trim() === '' || Number.isNaN(n) ? raw : n;
}

/** Renames schema fields to the CLI flags in field errors (`motionBucketId` → `--motion-bucket-id`). */
export function withFlagNames(err: unknown): unknown {
  if (!(err instanceof InvalidRequestError)) return err;
  const issues = err.issues.map((i) => ({ ...i, field: FLAG_OF.get(i.field) ?? i.field }));
  if (err instanceof MemoryBudgetError) {
    return new MemoryBudgetError([
      ...issues,
      { field: '--force', message: 'runs it anyway (the estimate is within ±25 %; see README "Memory")' },
    ]);
  }
  return new InvalidRequestError(issues);
}
