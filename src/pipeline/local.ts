/**
 * The one path from a request to a local video: resolve the model (pull and build it when needed) →
 * open its pipeline → generate → close. `generateVideo`, `svd generate` and `LocalBackend` all run it;
 * `LocalBackend` passes a pool so that pipelines stay open between calls.
 */
import { throwIfAborted } from '../errors.js';
import { resolveModelDir } from '../models/resolve.js';
import { parseRequest, type GenerationRequestInput } from '../request/schema.js';
import { readModelDirectory } from '../models/load.js';
import { modelMemoryFacts } from '../models/memory.js';
import { assertFitsMemory, currentBudget, providerForDevice } from './admission.js';
import { checkBeforeModelLoad } from './preflight.js';
import {
  createPipeline,
  resolveForModel,
  type GenerateOptions,
  type GenerateResult,
  type SvdPipeline,
} from './pipeline.js';

export interface OpenModelOptions {
  /** `auto`, `cpu`, `cuda`, `cuda:N` or `webgpu`: decides the graph flavour that is built and the execution provider. */
  device?: string;
  /** Cancels a pull or build in progress. */
  signal?: AbortSignal;
  /** Messages about pulls, builds and fallbacks. Default: stderr. */
  log?: (message: string) => void;
  /** Keeps pipelines open between calls; without one, every call opens its own. */
  pool?: PipelinePool;
}

export interface GenerateVideoOptions extends GenerateOptions, Omit<OpenModelOptions, 'device' | 'signal'> {
  /** Model and device for requests that name none (`svd serve --model ... --device ...`). */
  defaults?: { model?: string; device?: string };
  /** The memory the run may use; default: what the machine has available now (src/pipeline/admission.ts). */
  maxMemoryBytes?: number;
  /** Run even when the memory estimate says the request will not fit (`svd generate --force`). */
  force?: boolean;
}

export const stderrLog = (message: string): void => {
  process.stderr.write(`svd: ${message}\n`);
};

/**
 * One video from one image with the local pipeline: resolves (and builds, once) the model, runs, writes
 * the video, closes the model. Field, image, ffmpeg and CUDA-provider errors come before any model work. For many videos, pass a `pool`
 * or keep a pipeline from `createPipeline`.
 *
 * @example
 *   const r = await generateVideo({ image: 'photo.jpg', model: 'svd-xt', output: 'clip.mp4', seed: 42 });
 *   console.log(r.outputPath, r.seed, r.timings);
 */
export async function generateVideo(
  request: GenerationRequestInput,
  options: GenerateVideoOptions = {},
): Promise<GenerateResult> {
  const { defaults, pool, log = stderrLog, ...generateOptions } = options;
  // field, image, ffmpeg and CUDA-provider errors before any model work
  const device = request.device ?? defaults?.device;
  await checkBeforeModelLoad({ ...parseRequest(request), ...(device ? { device } : {}) }, { signal: options.signal });
  const modelDir = await resolveModelDir(request.model ?? defaults?.model, {
    device: device ?? 'auto',
    log,
    signal: options.signal,
  });
  throwIfAborted(options.signal);
  // the memory check, before anything loads: a request that cannot fit is refused in milliseconds, not by the OOM killer
  const { force, maxMemoryBytes, ...runOptions } = generateOptions;
  if (!force) {
    const provider = providerForDevice(device);
    const budget = await currentBudget(provider);
    // the estimate counts the whole process: what this one holds already (an open pool's model) is part of its budget
    budget.hostBytes = maxMemoryBytes ?? budget.hostBytes + (pool ? process.memoryUsage().rss : 0);
    const manifest = readModelDirectory(modelDir).manifest;
    const memory = { provider, budget, facts: modelMemoryFacts(manifest, modelDir) };
    const req = resolveForModel(request, manifest, undefined, memory);
    assertFitsMemory(req, manifest, memory);
    if (req.decodeChunkAuto) request = { ...request, decodeChunkSize: req.decodeChunkSize };
    if (req.cfgBatch === 'split' && request.cfgBatch !== 'split') {
      log('the UNet runs the CFG batch as two batch-1 calls (same result): only that fits the memory available');
      request = { ...request, cfgBatch: 'split' };
    }
  }
  const pipeline = await (pool
    ? pool.open(modelDir, device ?? 'auto', log)
    : // one-shot: each session goes as soon as the generation is done with it (peak = the largest stage)
      createPipeline({ modelDir, device: device ?? 'auto', log, releaseBetweenStages: true }));
  try {
    return await pipeline.generate(request, runOptions);
  } finally {
    if (!pool) await pipeline.close();
  }
}

/** Resolves a model reference (registry name, directory, repo id; default the embedded tiny model) and opens it. */
export async function openModelPipeline(model: string | undefined, o: OpenModelOptions = {}): Promise<SvdPipeline> {
  const device = o.device ?? 'auto';
  const log = o.log ?? stderrLog;
  const modelDir = await resolveModelDir(model, { device, log, signal: o.signal });
  throwIfAborted(o.signal);
  return o.pool ? o.pool.open(modelDir, device, log) : createPipeline({ modelDir, device, log });
}

/** Open pipelines by model directory and device; a pipeline that fails to open is not kept. */
export class PipelinePool {
  private readonly pipelines = new Map<string, Promise<SvdPipeline>>();

  open(modelDir: string, device: string, log?: (message: string) => void): Promise<SvdPipeline> {
    const key = `${modelDir}\u0000${device}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = createPipeline({ modelDir, device, log });
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.pipelines.values()];
    this.pipelines.clear();
    for (const p of all) await (await p.catch(() => undefined))?.close();
  }
}
