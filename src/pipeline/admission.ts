/**
 * Memory admission: before a model loads, the request's estimated peak (src/models/memory.ts) is compared with
 * the memory the run may use: the CLI's is what the machine has available now (RAM, or the GPU's free memory);
 * `svd serve`'s is its `--max-memory`. A request that does not fit is refused with a MemoryBudgetError naming
 * width/height, frames and decodeChunkSize with the largest values that fit; `decodeChunkSize: auto` becomes
 * the largest chunk that fits.
 */
import { readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { InvalidRequestError, MemoryBudgetError, type FieldIssue } from '../errors.js';
import type { ModelManifest } from '../models/manifest.js';
import {
  checkMemory,
  largestDecodeChunk,
  modelMemoryFacts,
  type MemoryBudget,
  type MemoryProvider,
  type MemoryRequest,
  type ModelMemoryFacts,
} from '../models/memory.js';
import type { CfgBatchMode, ResolvedRequest } from '../request/schema.js';
import { findCudaProviderLibrary } from '../runtime/device.js';
import { cfgSplitExact } from './denoise.js';
import { gpuFreeMemoryMiB } from '../runtime/gpu.js';

/** Where a request will run and how much memory it may use. */
export interface MemoryContext {
  provider: MemoryProvider;
  budget: MemoryBudget;
  /** The model's facts when known (they fall back to the manifest's). */
  facts?: ModelMemoryFacts;
}

/** The provider a device string will get: `auto` is CUDA when its provider library is installed. */
export function providerForDevice(device: string | undefined, cudaLibrary = findCudaProviderLibrary): MemoryProvider {
  if (device?.startsWith('cuda')) return 'cuda';
  if (device === 'webgpu') return 'webgpu';
  if (device === 'cpu') return 'cpu';
  return cudaLibrary() ? 'cuda' : 'cpu';
}

/** RAM that can be allocated now without swapping (Linux MemAvailable; elsewhere the OS's free memory). */
export function availableHostBytes(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return freemem();
}

/**
 * `svd serve`'s default `--max-memory`: 75 % of the machine's RAM. A server keeps its model loaded and runs one
 * job at a time; the rest is for the OS, ffmpeg's encoder and the page cache that holds the model files
 * (weights are memory-mapped at load), so a server on a 24 GB machine admits jobs that peak at 18 GB.
 */
export function defaultServerMaxMemory(total = totalmem()): number {
  return Math.floor(total * 0.75);
}

/** The CLI's budget: available RAM now, and for CUDA the device's free memory (when nvidia-smi tells). */
export async function currentBudget(provider: MemoryProvider, deviceId = 0): Promise<MemoryBudget> {
  const hostBytes = availableHostBytes();
  if (provider !== 'cuda') return { hostBytes };
  const freeMiB = await gpuFreeMemoryMiB(deviceId).catch(() => null);
  return freeMiB === null ? { hostBytes } : { hostBytes, deviceBytes: freeMiB * 2 ** 20 };
}

/** "12G", "12GiB", "512M", "1.5g" or plain bytes → bytes (binary units); InvalidRequestError naming `field` otherwise. */
export function parseMemorySize(text: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const bytes = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!Number.isFinite(bytes) || bytes < 2 ** 20) {
    throw new InvalidRequestError([
      { field, value: text, message: 'must be a memory size of at least 1M, e.g. 8G, 512M or 1.5G' },
    ]);
  }
  return Math.floor(bytes);
}

/** The estimate's view of a resolved request. */
export function memoryRequestOf(req: ResolvedRequest): MemoryRequest {
  return {
    width: req.width,
    height: req.height,
    frames: req.frames,
    decodeChunkSize: req.decodeChunkSize,
    totalFrames: req.totalFrames,
    guidance: req.maxGuidance > 1 || req.minGuidance > 1,
    cfgSplit: req.cfgBatch === 'split',
  };
}

/**
 * `cfgBatch: auto` with the memory known: split when the joint run does not fit (the split run's estimate is
 * then what the refusal reports, if it does not fit either); else left to the run (WebGPU binding limit).
 */
export function autoCfgBatch(req: ResolvedRequest, manifest: ModelManifest, memory: MemoryContext): CfgBatchMode {
  const asked = memoryRequestOf(req);
  if (req.cfgBatch !== 'auto' || !asked.guidance || !cfgSplitExact(manifest)) return req.cfgBatch;
  const facts = memory.facts ?? modelMemoryFacts(manifest);
  return checkMemory(facts, asked, memory.provider, memory.budget).fits ? 'auto' : 'split';
}

/** `decodeChunkSize: auto`: the largest chunk that fits (1 when none does; the admission check reports that). */
export function autoDecodeChunk(req: ResolvedRequest, manifest: ModelManifest, memory?: MemoryContext): number {
  const provider = memory?.provider ?? 'cpu';
  const budget = memory?.budget ?? { hostBytes: availableHostBytes() };
  const facts = memory?.facts ?? modelMemoryFacts(manifest);
  return largestDecodeChunk(facts, memoryRequestOf(req), provider, budget) ?? 1;
}

const GiB = 2 ** 30;
const gib = (n: number) => `${(n / GiB).toFixed(2)} GiB`;

/**
 * Throws MemoryBudgetError when the resolved request's estimated peak exceeds the budget. The issues name the
 * fields a client can change, each with the largest value that fits when the others stay as asked.
 */
export function assertFitsMemory(req: ResolvedRequest, manifest: ModelManifest, memory: MemoryContext): void {
  const facts = memory.facts ?? modelMemoryFacts(manifest);
  const cell = manifest.vae.spatialScaleFactor * manifest.unet.latentMultiple;
  const v = checkMemory(facts, memoryRequestOf(req), memory.provider, memory.budget, Math.max(cell, 64));
  if (v.fits) return;
  const which = v.short === 'device' ? 'GPU memory' : 'RAM';
  const need = v.short === 'device' ? v.estimate.deviceBytes : v.estimate.hostBytes;
  const have = v.short === 'device' ? v.budget.deviceBytes! : v.budget.hostBytes;
  const what =
    `${req.width}x${req.height}, ${req.frames} frames, decode chunk ${req.decodeChunkSize} needs about ${gib(need)} of ${which}; ` +
    `${gib(have)} is available`;
  const issues: FieldIssue[] = [];
  const l = v.largest;
  issues.push({
    field: 'width',
    value: req.width,
    message: l.width
      ? `${what}; the largest size that fits is ${l.width}x${l.height}`
      : `${what}; no size fits with these frames`,
  });
  issues.push({
    field: 'height',
    value: req.height,
    message: l.height ? `the largest size that fits is ${l.width}x${l.height}` : 'no size fits with these frames',
  });
  issues.push({
    field: 'frames',
    value: req.frames,
    message: l.frames ? `at most ${l.frames} frames fit at this size` : 'not even 1 frame fits at this size',
  });
  if (l.cfgSplit) {
    issues.push({
      field: 'cfgBatch',
      value: req.cfgBatch,
      message: 'split fits: the CFG batch as two batch-1 UNet calls, the same video with half the UNet memory',
    });
  } else if (req.cfgBatch === 'split') {
    issues.push({
      field: 'cfgBatch',
      value: req.cfgBatch,
      message: 'the estimate is already for the split CFG batch (one video per UNet call)',
    });
  }
  if (l.decodeChunkSize) {
    issues.push({
      field: 'decodeChunkSize',
      value: req.decodeChunkSize,
      message: `a decode chunk of ${l.decodeChunkSize} frames would fit`,
    });
  }
  throw new MemoryBudgetError(issues);
}
