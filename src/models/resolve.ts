/**
 * `--model` → a model directory ready to load. Model directories are used as they are; diffusers
 * checkpoints (local, in the Hugging Face cache, or pulled on demand) are built into graphs once and
 * kept in svd-runtime's cache, keyed by the checkpoint files, dtype, target and builder version.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ModelNotFoundError } from '../errors.js';
import { pullModel, resolveModelRef, formatProgressLine, type PullProgress } from '../hub/index.js';
import { defaultWeightStorage, type GraphTarget, type WeightStorage } from '../onnx/graph.js';
import { findCudaProviderLibrary, parseDevice } from '../runtime/device.js';
import { webGpuAdapterOnce, type WebGpuQuery } from '../runtime/webgpu.js';
import { BUILDER_VERSION, buildModel, type BuildModelOptions } from './build.js';
import { MANIFEST_FILE } from './manifest.js';
import { embeddedTinyCheckpoint, svdCacheDir } from './paths.js';
import type { FloatDtype } from '../tensor/float16.js';

export interface ResolveModelOptions {
  log?: (message: string) => void;
  /** Decides the graph flavour (see graphFlavour): CUDA, WebGPU or CPU graphs, fp16 or fp32. */
  device?: string;
  dtype?: FloatDtype;
  token?: string;
  signal?: AbortSignal;
  onPullProgress?: (p: PullProgress) => void;
}

/**
 * The graph flavour for a device, following the choice `auto` will make (runtime/device.ts): fp16 for CUDA
 * (half the memory, tensor cores); WebGPU graphs (attention in query chunks) in fp16 where the adapter has
 * shader-f16, fp32 on a CPU-emulated adapter (no gain there, and exactness is what it is for); fp32 on CPU.
 */
export async function graphFlavour(
  device = 'auto',
  dtype?: FloatDtype,
  adapter: () => Promise<WebGpuQuery> = webGpuAdapterOnce,
): Promise<{ dtype: FloatDtype; target: GraphTarget }> {
  const d = parseDevice(device);
  const cuda = d.kind === 'cuda' || (d.kind === 'auto' && findCudaProviderLibrary() !== undefined);
  if (cuda) return { target: 'cuda', dtype: dtype ?? 'float16' };
  if (d.kind === 'webgpu' || d.kind === 'auto') {
    const a = (await adapter()).adapter;
    if (d.kind === 'webgpu' || (a && !a.emulated))
      return { target: 'webgpu', dtype: dtype ?? (a?.shaderF16 && !a.emulated ? 'float16' : 'float32') };
  }
  return { target: 'cpu', dtype: dtype ?? 'float32' };
}

export async function resolveModelDir(ref: string | undefined, o: ResolveModelOptions = {}): Promise<string> {
  const log = o.log ?? (() => {});
  if (ref === undefined || ref === 'tiny') {
    return ensureBuilt(embeddedTinyCheckpoint(), 'tiny', o);
  }
  const desc = resolveModelRef(ref);
  if (desc.kind === 'local') {
    if (existsSync(join(desc.dir, MANIFEST_FILE))) return desc.dir;
    if (existsSync(join(desc.dir, 'unet', 'config.json'))) return ensureBuilt(desc.dir, undefined, o);
    throw new ModelNotFoundError(
      desc.dir,
      `neither a model directory (${MANIFEST_FILE}) nor a diffusers checkpoint (unet/config.json, vae/, image_encoder/)`,
    );
  }
  log(`model ${desc.ref}: ${desc.repo}@${desc.revision}`);
  const pulled = await pullModel(desc, {
    token: o.token,
    signal: o.signal,
    onWarning: log,
    onProgress:
      o.onPullProgress ??
      ((p) => {
        if (p.status !== 'downloading') log(formatProgressLine(p));
      }),
  });
  const unet = pulled.unetCheckpoint ? { unetCheckpoint: pulled.unetCheckpoint } : {};
  return ensureBuilt(pulled.snapshotDir, desc.variant?.name, o, unet);
}

/** Builds (once) the graphs of a diffusers checkpoint into the cache and returns the model directory. */
export async function ensureBuilt(
  checkpoint: string,
  variant: string | undefined,
  o: ResolveModelOptions = {},
  unet: Pick<BuildModelOptions, 'unetCheckpoint' | 'defaults'> = {},
): Promise<string> {
  if (!existsSync(join(checkpoint, 'unet', 'config.json'))) {
    throw new ModelNotFoundError(
      checkpoint,
      'checkpoint not found (expected unet/, vae/, image_encoder/ with config.json and safetensors)',
    );
  }
  const flavour = await graphFlavour(o.device, o.dtype);
  const key = checkpointKey(
    checkpoint,
    { ...flavour, weightStorage: defaultWeightStorage(flavour.target) },
    unet.unetCheckpoint,
  );
  const dir = join(
    svdCacheDir(),
    'graphs',
    `${variant ?? 'model'}-${flavour.dtype}-${flavour.target}-${key.slice(0, 16)}`,
  );
  if (existsSync(join(dir, MANIFEST_FILE))) return dir;
  const log = o.log ?? (() => {});
  log(`building ONNX graphs for ${checkpoint} (${flavour.dtype}, ${flavour.target}) into ${dir}`);
  const result = await buildModel({
    checkpoint,
    outDir: dir,
    ...flavour,
    ...unet,
    modelVariant: variant,
    log: (m) => log(`  ${m}`),
  });
  log(`built in ${(result.ms / 1000).toFixed(1)} s`);
  return dir;
}

/**
 * Identity of a checkpoint for the build cache: the builder version, the graph flavour (dtype, target, weight
 * storage), its configs and, per weight file, the resolved path, size, inode and mtime (graphs hard-link the
 * files, so a replaced file must give a new key).
 */
export function checkpointKey(
  checkpoint: string,
  flavour: { dtype: string; target: string; weightStorage: WeightStorage },
  unetCheckpoint?: string,
): string {
  const h = createHash('sha256');
  h.update(`builder ${BUILDER_VERSION}\n${flavour.dtype} ${flavour.target} ${flavour.weightStorage}\n`);
  if (unetCheckpoint) {
    const real = realpathSync(unetCheckpoint);
    const st = statSync(real);
    h.update(`unet checkpoint ${real} ${st.size} ${st.ino} ${st.mtimeMs}\n`);
  }
  for (const component of ['unet', 'vae', 'image_encoder', 'scheduler', 'feature_extractor']) {
    const dir = join(checkpoint, component);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (name.endsWith('.json')) {
        h.update(`${component}/${name}\n`);
        h.update(readFileSync(path));
      } else if (name.endsWith('.safetensors')) {
        const real = realpathSync(path);
        const st = statSync(real);
        h.update(`${component}/${name} ${real} ${st.size} ${st.ino} ${st.mtimeMs}\n`);
      }
    }
  }
  return h.digest('hex');
}
