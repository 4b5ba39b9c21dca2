/**
 * `--max-memory` admission for the local backend: the model's manifest is read once (at start for the embedded
 * model or a model directory, in the background for a registry or Hub model), then every submitted request is
 * checked against the memory estimate before it is queued (src/pipeline/admission.ts).
 */
import { existsSync } from 'node:fs';
import { readModelDirectory } from '../models/load.js';
import { modelMemoryFacts } from '../models/memory.js';
import { resolveModelDir } from '../models/resolve.js';
import { assertFitsMemory, providerForDevice, type MemoryContext } from '../pipeline/admission.js';
import { resolveForModel } from '../pipeline/pipeline.js';
import type { GenerationRequestInput } from '../request/schema.js';
import type { ModelManifest } from '../models/manifest.js';

export interface AdmissionOptions {
  model?: string;
  device: string;
  maxMemory: number;
  log: (line: string) => void;
}

/** The admission check of a local server; requests pass unchecked until the model is known. */
export async function localAdmission(
  o: AdmissionOptions,
): Promise<(request: GenerationRequestInput) => GenerationRequestInput | undefined> {
  let known: { manifest: ModelManifest; memory: MemoryContext } | undefined;
  const load = resolveModelDir(o.model, { device: o.device, log: o.log }).then((dir) => {
    const manifest = readModelDirectory(dir).manifest;
    known = {
      manifest,
      memory: {
        provider: providerForDevice(o.device),
        budget: { hostBytes: o.maxMemory },
        facts: modelMemoryFacts(manifest, dir),
      },
    };
  });
  const local = o.model === undefined || o.model === 'tiny' || existsSync(o.model);
  if (local)
    await load; // no network: cheap enough to wait for, so the first request is checked too
  else
    load.catch((err) =>
      o.log(`memory admission off until the model resolves: ${err instanceof Error ? err.message : String(err)}`),
    );
  return (request) => {
    if (!known) return undefined;
    let resolved: ReturnType<typeof resolveForModel>;
    try {
      resolved = resolveForModel(request, known.manifest, () => 0, known.memory);
    } catch {
      return undefined; // other model-dependent field errors are the job's to report, as without admission
    }
    assertFitsMemory(resolved, known.manifest, known.memory);
    // admitted because the CFG batch runs split: the job must run it split
    return resolved.cfgBatch === 'split' && request.cfgBatch !== 'split'
      ? { ...request, cfgBatch: 'split' }
      : undefined;
  };
}
