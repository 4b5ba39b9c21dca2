/**
 * The memory a generation needs, estimated before anything is loaded: one function from the request, the
 * model manifest, the provider and the dtype to the peak host (RAM) and device (GPU) bytes, and the largest
 * size / frame count / decode chunk that fits a budget. The coefficients were measured with
 * scripts/bench-memory.ts (bench/RESULTS.md §8, where the estimate is compared with measured peaks).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { GraphRole, ModelManifest } from './manifest.js';
import { GRAPH_ROLES, manifestDtype } from './manifest.js';

export type MemoryProvider = 'cpu' | 'cuda' | 'webgpu';
export type AttentionKind = 'primitive' | 'mha' | 'chunked';

/** What the estimate needs to know about a model; `modelMemoryFacts` reads it from a manifest. */
export interface ModelMemoryFacts {
  dtype: 'float32' | 'float16';
  /** How the graphs compute attention; 'primitive' (quadratic scores) when unknown, e.g. imported exports. */
  attention: AttentionKind;
  /** Bytes of each graph's weights in its compute dtype. */
  computeWeightBytes: Record<GraphRole, number>;
  /** How the graphs store their weights (manifest `source.weightStorage`); 'reference' when not recorded. */
  weightStorage?: 'reference' | 'convert';
  /** UNet block_out_channels[0] and num_attention_heads[0]: the full-resolution level that sets the peak. */
  unetChannels: number;
  unetHeads: number;
  /** VAE block_out_channels[0]: the decoder's full-resolution channels. */
  vaeChannels: number;
  /** Pixels per latent cell per side (8). */
  spatialScale: number;
}

/** The request fields the estimate depends on. */
export interface MemoryRequest {
  width: number;
  height: number;
  /** Frames of one UNet call (one clip). */
  frames: number;
  /** Frames decoded per VAE call. */
  decodeChunkSize: number;
  /** Frames of the whole video (chained clips): the decoded frames held before encoding. Default `frames`. */
  totalFrames?: number;
  /** Classifier-free guidance doubles the UNet batch; on unless maxGuidance ≤ 1. */
  guidance: boolean;
  /** The CFG batch runs as two batch-1 UNet calls (`cfgBatch: split`): the UNet's activations are one video's. */
  cfgSplit?: boolean;
}

export interface MemoryEstimate {
  hostBytes: number;
  deviceBytes: number;
  /** Where the bytes go (host or device, by provider). */
  parts: { runtime: number; weights: number; unet: number; vaeEncoder: number; vaeDecoder: number; frames: number };
}

// ----------------------------------------------------------------------------------------------- coefficients
// Measured on onnxruntime-node 1.30 (CPU EP), bench/RESULTS.md §8. Activation peaks are "so many tensors of the
// full-resolution level's size" (ORT's planner reuses buffers, so the peak is set by the largest level).

/** Node, onnxruntime and the worker thread before any session. */
const RUNTIME_BYTES = 160 * 2 ** 20;
/**
 * Peak UNet activations per (video·frame × latent pixel × element byte): a part per level-0 channel and a part that
 * does not follow the channels, fitted through the tiny model (32 channels: 1,264 bytes, whole pipeline with the CPU
 * defaults of src/runtime/sessionOptions.ts) and the full-size SVD-XT UNet (320 channels: 9,501 bytes, latents 32×56,
 * 48×80 and 72×128, bench/RESULTS.md §6). Linear in the pixels for the
 * 'mha' and 'chunked' graphs; the 'primitive' graphs add their score matrices (`scores` below).
 */
const UNET_ACTIVATION = { perChannel: 28.6, fixed: 349 };
/** VAE decoder activations per (frame × output pixel × decoder channel × element byte). */
const DECODER_ACTIVATION = 5.4;
/** VAE encoder activations per (output pixel × channel × element byte): one image. */
const ENCODER_ACTIVATION = 5.4;
/**
 * Host bytes the loaded CPU sessions hold per compute weight byte, by how the graphs store their weights
 * (bench/RESULTS.md §7, full-size SVD-XT UNet). 'convert' (builder 4's CPU default: weights in the dtype and layout
 * the kernels use): float32 graphs hold each weight once, prepacked or mapped (1.00× after load and two steps).
 * 'reference' (Cast/Transpose over the checkpoint, earlier builds): float32 graphs over fp16 checkpoints hold the
 * folded float32 copies plus the touched pages of the mapped checkpoint (1.77×). float16 graphs either way get
 * float32 copies for the kernels the CPU EP has only in float32 (3.3×).
 */
const CPU_WEIGHT_FACTOR = {
  convert: { float32: 1.0, float16: 3.3 },
  reference: { float32: 1.77, float16: 3.3 },
};
/** The CUDA provider's host side during load (a staging copy of the largest graph) and its device runtime. Unmeasured. */
const GPU_RUNTIME_BYTES = 512 * 2 ** 20;
/**
 * WebGPU (bench/RESULTS.md §8, measured on Mesa lavapipe, where "device" buffers are host memory, so only the sum of
 * host and device was measurable): the second process onnxruntime runs in (ChildProcessOrtHost: Node, onnxruntime,
 * Dawn) on the host, and the activations per CPU-arena byte (the EP's buffer cache keeps freed buffers for reuse).
 * A real card adds its driver's own reservation on the device, which lavapipe cannot show.
 */
const WEBGPU_HOST_RUNTIME_BYTES = 202 * 2 ** 20;
const WEBGPU_ACTIVATION_FACTOR = 1.72;

/** The peak host and device bytes of one generation. */
export function estimateMemory(facts: ModelMemoryFacts, req: MemoryRequest, provider: MemoryProvider): MemoryEstimate {
  const e = facts.dtype === 'float16' ? 2 : 4;
  const s = facts.spatialScale;
  const latentPixels = Math.ceil(req.height / s) * Math.ceil(req.width / s);
  const pixels = req.width * req.height;
  const rows = (req.guidance && !req.cfgSplit ? 2 : 1) * req.frames; // the B·F of one UNet call
  const chunk = Math.max(1, Math.min(req.decodeChunkSize, req.frames));
  // materialised attention scores (float32 softmax), plus the probabilities: only the 'primitive' graphs hold them
  const quadratic = facts.attention === 'primitive';
  const scores = (n: number, heads: number, tokens: number) => (quadratic ? 2 * n * heads * tokens * tokens * 4 : 0);

  const unetPerPixel = UNET_ACTIVATION.fixed + UNET_ACTIVATION.perChannel * facts.unetChannels;
  const unet = unetPerPixel * rows * latentPixels * e + scores(rows, facts.unetHeads, latentPixels);
  const vaeDecoder = DECODER_ACTIVATION * chunk * pixels * facts.vaeChannels * e + scores(chunk, 1, latentPixels);
  const vaeEncoder = ENCODER_ACTIVATION * pixels * facts.vaeChannels * e + scores(1, 1, latentPixels);
  const weightsRaw = GRAPH_ROLES.reduce((a, r) => a + facts.computeWeightBytes[r], 0);
  const weights =
    weightsRaw * (provider === 'cpu' ? CPU_WEIGHT_FACTOR[facts.weightStorage ?? 'reference'][facts.dtype] : 1);
  // float32 RGB frames out of the decoder, then RGB24 for the encoder
  const frames = (req.totalFrames ?? req.frames) * pixels * 3 * (4 + 1);
  // each session's memory arena keeps its own peak after the run (measured: the peaks add up, RESULTS.md §8)
  const activations = unet + vaeDecoder + vaeEncoder;
  const parts = { runtime: RUNTIME_BYTES, weights, unet, vaeEncoder, vaeDecoder, frames };
  if (provider === 'cpu') return { hostBytes: RUNTIME_BYTES + weights + activations + frames, deviceBytes: 0, parts };
  const largestGraph = Math.max(...GRAPH_ROLES.map((r) => facts.computeWeightBytes[r]));
  if (provider === 'webgpu') {
    const hostRuntime = RUNTIME_BYTES + WEBGPU_HOST_RUNTIME_BYTES;
    const deviceActivations = WEBGPU_ACTIVATION_FACTOR * activations;
    return {
      hostBytes: hostRuntime + largestGraph + frames,
      deviceBytes: weights + deviceActivations,
      parts: {
        ...parts,
        runtime: hostRuntime,
        unet: WEBGPU_ACTIVATION_FACTOR * unet,
        vaeEncoder: WEBGPU_ACTIVATION_FACTOR * vaeEncoder,
        vaeDecoder: WEBGPU_ACTIVATION_FACTOR * vaeDecoder,
      },
    };
  }
  return {
    hostBytes: RUNTIME_BYTES + GPU_RUNTIME_BYTES + largestGraph + frames,
    deviceBytes: GPU_RUNTIME_BYTES + weights + activations,
    parts: { ...parts, runtime: RUNTIME_BYTES + GPU_RUNTIME_BYTES },
  };
}

// ----------------------------------------------------------------------------------------------- budget

export interface MemoryBudget {
  /** Host bytes the run may use. */
  hostBytes: number;
  /** Device bytes (GPU providers); undefined: not checked. */
  deviceBytes?: number;
}

export interface MemoryVerdict {
  fits: boolean;
  estimate: MemoryEstimate;
  budget: MemoryBudget;
  /** Which memory is short ('host' or 'device'), when it does not fit. */
  short?: 'host' | 'device';
  /**
   * The largest request that fits, changing one thing at a time (undefined: nothing of that kind fits):
   * the size at the same aspect ratio (multiples of `cell`), the frame count, the decode chunk, and whether the
   * CFG batch split in two calls fits.
   */
  largest: { width?: number; height?: number; frames?: number; decodeChunkSize?: number; cfgSplit?: boolean };
}

function fitsIn(est: MemoryEstimate, budget: MemoryBudget): 'host' | 'device' | undefined {
  if (est.hostBytes > budget.hostBytes) return 'host';
  if (budget.deviceBytes !== undefined && est.deviceBytes > budget.deviceBytes) return 'device';
  return undefined;
}

/**
 * Whether a request fits a budget, and if not the largest size, frame count and decode chunk that would.
 * `cell` is the multiple width and height must keep (spatial scale × latent multiple).
 */
export function checkMemory(
  facts: ModelMemoryFacts,
  req: MemoryRequest,
  provider: MemoryProvider,
  budget: MemoryBudget,
  cell = facts.spatialScale,
): MemoryVerdict {
  const estimate = estimateMemory(facts, req, provider);
  const short = fitsIn(estimate, budget);
  if (!short) return { fits: true, estimate, budget, largest: {} };
  const ok = (r: MemoryRequest) => !fitsIn(estimateMemory(facts, r, provider), budget);
  const largest: MemoryVerdict['largest'] = {};
  // size: scale both sides down together, keeping multiples of `cell`
  for (let k = 1; k <= 1000; k++) {
    const scale = 1 - k / 1000;
    const width = Math.floor((req.width * scale) / cell) * cell;
    const height = Math.floor((req.height * scale) / cell) * cell;
    if (width < cell || height < cell) break;
    if (ok({ ...req, width, height })) {
      Object.assign(largest, { width, height });
      break;
    }
  }
  for (let frames = req.frames - 1; frames >= 1; frames--) {
    if (ok({ ...req, frames, decodeChunkSize: Math.min(req.decodeChunkSize, frames), totalFrames: undefined })) {
      largest.frames = frames;
      break;
    }
  }
  const chunk = largestDecodeChunk(facts, req, provider, budget);
  if (chunk !== undefined && chunk < req.decodeChunkSize) largest.decodeChunkSize = chunk;
  if (req.guidance && !req.cfgSplit && ok({ ...req, cfgSplit: true })) largest.cfgSplit = true;
  return { fits: false, estimate, budget, short, largest };
}

/** The largest decode chunk (≤ frames) with which the request fits; undefined when even 1 does not. */
export function largestDecodeChunk(
  facts: ModelMemoryFacts,
  req: MemoryRequest,
  provider: MemoryProvider,
  budget: MemoryBudget,
): number | undefined {
  for (let c = req.frames; c >= 1; c--) {
    if (!fitsIn(estimateMemory(facts, { ...req, decodeChunkSize: c }, provider), budget)) return c;
  }
  return undefined;
}

// ----------------------------------------------------------------------------------------------- facts

interface RecordedSource {
  dtype?: string;
  weightStorage?: string;
  attention?: string;
  computeWeightBytes?: Partial<Record<GraphRole, number>>;
  unetBlockOutChannels?: number[];
  unetAttentionHeads?: number[];
  vaeBlockOutChannels?: number[];
}

/** SVD's published shapes, for manifests written before the builder recorded them (or by the importer). */
const SVD_SHAPES = { unetChannels: 320, unetHeads: 5, vaeChannels: 128 };

/**
 * The facts of a model directory: what `buildModel` recorded in `model.json` `source`; for other manifests the
 * SVD shapes, float32, 'primitive' attention, and the directory's file sizes as the weights.
 */
export function modelMemoryFacts(manifest: ModelManifest, modelDir?: string): ModelMemoryFacts {
  const src = manifest.source as RecordedSource;
  const dtype = manifestDtype(manifest);
  const attention = src.attention === 'mha' || src.attention === 'chunked' ? src.attention : 'primitive';
  let weights = src.computeWeightBytes;
  if (!weights || !GRAPH_ROLES.every((r) => typeof weights![r] === 'number')) {
    const total = modelDir ? directoryBytes(modelDir) : 0;
    weights = { unet: total, imageEncoder: 0, vaeEncoder: 0, vaeDecoder: 0 };
  }
  return {
    dtype,
    attention,
    computeWeightBytes: weights as Record<GraphRole, number>,
    weightStorage: src.weightStorage === 'convert' ? 'convert' : 'reference',
    unetChannels: src.unetBlockOutChannels?.[0] ?? SVD_SHAPES.unetChannels,
    unetHeads: src.unetAttentionHeads?.[0] ?? SVD_SHAPES.unetHeads,
    vaeChannels: src.vaeBlockOutChannels?.[0] ?? SVD_SHAPES.vaeChannels,
    spatialScale: manifest.vae.spatialScaleFactor,
  };
}

/** Bytes of the files under a directory, each inode once (weights/ holds hard links). */
function directoryBytes(dir: string): number {
  const seen = new Set<number>();
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (!seen.has(st.ino)) {
        seen.add(st.ino);
        total += st.size;
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return total;
}
