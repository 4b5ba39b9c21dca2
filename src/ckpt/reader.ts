/**
 * `openTorchCheckpoint`: a PyTorch `.ckpt`/`.pt`/`.pth` file (`torch.save`'s ZIP archive: `<root>/data.pkl` plus one
 * STORED entry `<root>/data/<key>` per storage) → the same located-not-read tensors a safetensors header gives, so
 * the graph builder references the bytes in place. The pickle is read by our restricted reader (pickle.ts): tensors
 * and plain containers only; any other Python global makes the whole file refused.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { CheckpointError } from '../errors.js';
import { SAFETENSORS_DTYPE_SIZE } from '../safetensors/dtype.js';
import type { SafetensorsCheckpoint, TensorInfo } from '../safetensors/reader.js';
import {
  PickleError,
  STORAGE_DTYPES,
  unpickle,
  type PickleValue,
  type TorchStorage,
  type TorchTensor,
} from './pickle.js';
import { readZipDirectory, readZipEntry, type ZipEntry } from './zip.js';

/** File names we treat as PyTorch checkpoints. */
export const TORCH_CHECKPOINT_EXTENSIONS = ['.ckpt', '.pt', '.pth', '.bin'] as const;

export function isTorchCheckpointPath(path: string): boolean {
  return TORCH_CHECKPOINT_EXTENSIONS.some((e) => path.toLowerCase().endsWith(e));
}

export interface TorchCheckpoint extends SafetensorsCheckpoint {
  /** The pickled object with tensors as references (for callers that want more than the state dict). */
  root: PickleValue;
}

const isTensor = (v: unknown): v is TorchTensor =>
  typeof v === 'object' && v !== null && (v as TorchTensor).kind === 'tensor';

/**
 * Opens a torch checkpoint and lists the tensors of its state dict: `root["state_dict"]` when present (Lightning
 * and sgm checkpoints), else the root dict itself. Throws CheckpointError naming the file: not a ZIP (legacy
 * pre-1.6 format), a refused global, compressed or non-contiguous tensor data, or a truncated file.
 *
 * @example
 *   const ckpt = openTorchCheckpoint('motionctrl_svd.ckpt');
 *   ckpt.tensors.get('model.diffusion_model.input_blocks.1.1.time_stack.0.cc_projection.weight')?.shape // [320, 332]
 */
export function openTorchCheckpoint(path: string): TorchCheckpoint {
  const file = resolve(path);
  if (!existsSync(file)) throw new CheckpointError(file, 'checkpoint not found');
  let entries: Map<string, ZipEntry>;
  try {
    entries = readZipDirectory(file);
  } catch (err) {
    if (err instanceof CheckpointError && /not a ZIP/.test(err.message)) {
      throw new CheckpointError(
        file,
        'not a PyTorch ZIP checkpoint (files saved by torch < 1.6 are not supported; re-save it with a recent torch ' +
          'or convert it to safetensors)',
      );
    }
    throw err;
  }
  const pkl = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new CheckpointError(file, 'ZIP archive without <name>/data.pkl: not a torch.save checkpoint');
  const prefix = pkl.slice(0, -'data.pkl'.length);

  const persistentLoad = (pid: PickleValue[]): PickleValue => {
    const [tag, type, key, , numel] = pid as [unknown, unknown, unknown, unknown, unknown];
    const dtype =
      typeof type === 'object' && type !== null ? (type as { storageDtype?: string }).storageDtype : undefined;
    if (tag !== 'storage' || typeof key !== 'string' || typeof numel !== 'number' || !dtype) {
      throw new PickleError(
        `unsupported persistent id ${JSON.stringify(pid.map((v) => (typeof v === 'object' ? '(object)' : v)))}`,
      );
    }
    return { kind: 'storage', key, dtype: dtype as TorchStorage['dtype'], numel };
  };

  let root: PickleValue;
  try {
    root = unpickle(readZipEntry(file, entries.get(pkl)!), { persistentLoad: persistentLoad as never });
  } catch (err) {
    if (err instanceof PickleError) throw new CheckpointError(file, `refused: ${err.message}`);
    throw err;
  }

  const stateDict = pickStateDict(root);
  if (!stateDict)
    throw new CheckpointError(file, 'no state dict: expected a dict of tensors or a dict with a "state_dict" entry');
  const tensors = new Map<string, TensorInfo>();
  const problems: string[] = [];
  for (const [name, value] of stateDict) {
    if (typeof name !== 'string' || !isTensor(value)) continue;
    const info = locate(name, value, file, prefix, entries);
    if (typeof info === 'string') problems.push(info);
    else tensors.set(name, info);
  }
  if (problems.length) throw new CheckpointError(file, 'tensors that cannot be referenced in place', problems);
  return { files: [file], tensors, metadata: {}, root };
}

function pickStateDict(root: PickleValue): Map<PickleValue, PickleValue> | undefined {
  if (!(root instanceof Map)) return undefined;
  const inner = root.get('state_dict');
  if (inner instanceof Map) return inner;
  return [...root.values()].some(isTensor) ? root : undefined;
}

/** A tensor's absolute byte range, or why it has none (it must be a contiguous view of a STORED entry). */
function locate(
  name: string,
  t: TorchTensor,
  file: string,
  prefix: string,
  entries: Map<string, ZipEntry>,
): TensorInfo | string {
  const entry = entries.get(`${prefix}data/${t.storage.key}`);
  if (!entry) return `${name}: storage ${t.storage.key} is not in the archive`;
  if (entry.method !== 0)
    return `${name}: storage ${t.storage.key} is compressed (torch.save stores data uncompressed)`;
  const elem = SAFETENSORS_DTYPE_SIZE[t.storage.dtype];
  if (entry.size !== t.storage.numel * elem) {
    return `${name}: storage ${t.storage.key} holds ${entry.size} bytes, expected ${t.storage.numel} × ${elem}`;
  }
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expected)
      return `${name}: not contiguous (stride [${t.stride}] for shape [${t.shape}])`;
    expected *= t.shape[i];
  }
  const numel = expected;
  if (t.storageOffset < 0 || t.storageOffset + numel > t.storage.numel)
    return `${name}: view [${t.storageOffset}, +${numel}) is outside its storage`;
  return {
    name,
    file,
    dtype: t.storage.dtype,
    shape: [...t.shape],
    offset: entry.dataOffset + t.storageOffset * elem,
    byteLength: numel * elem,
  };
}

export { STORAGE_DTYPES };
