/**
 * Reads safetensors checkpoints without loading them: the header gives each tensor's dtype, shape and
 * absolute byte range, which the graph builder points ONNX external data at (docs/runtime.md §3).
 * Tensor data is read on demand with chunked positional reads, because Node 20 refuses `fs.readFile`
 * above 2 GiB and a single `fs.read` above 2^31−1 bytes.
 *
 * Format: u64 LE header length N, N bytes of UTF-8 JSON `{name: {dtype, shape, data_offsets: [b, e]},
 * __metadata__?}`, then the data; a tensor's bytes are at 8 + N + b … 8 + N + e.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CheckpointError } from '../errors.js';
import { bytesToFloat32, isSafetensorsDtype, SAFETENSORS_DTYPE_SIZE, type SafetensorsDtype } from './dtype.js';
import type { FloatDtype } from '../tensor/float16.js';

/** One tensor of a checkpoint, located but not read. */
export interface TensorInfo {
  name: string;
  /** Absolute path of the .safetensors file holding it. */
  file: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset in `file` (8 + header length + begin). */
  offset: number;
  byteLength: number;
}

/** All tensors of a (possibly sharded) checkpoint. */
export interface SafetensorsCheckpoint {
  /** The .safetensors files, absolute paths, in shard order. */
  files: string[];
  tensors: Map<string, TensorInfo>;
  /** `__metadata__` of the first file (string map), if any. */
  metadata: Record<string, string>;
}

/** Headers above this are certainly corruption (real ones are a few hundred KiB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
/** Largest single positional read (below Node's 2^31−1 limit). */
const READ_CHUNK = 1 << 30;

/** Reads `buf.length` bytes at `position`; a short file → CheckpointError naming it. */
export function readExactly(fd: number, buf: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, Math.min(READ_CHUNK, buf.length - done), position + done);
    if (n === 0)
      throw new CheckpointError(file, `unexpected end of file at byte ${position + done} (truncated download?)`);
    done += n;
  }
}

/** Parses one .safetensors file's header. Throws CheckpointError naming the file if it is truncated or corrupt. */
export function readSafetensorsHeader(path: string): SafetensorsCheckpoint {
  const file = resolve(path);
  if (!existsSync(file)) throw new CheckpointError(file, 'safetensors file not found');
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new CheckpointError(file, `not a safetensors file: only ${size} bytes`);
    const lenBytes = new Uint8Array(8);
    readExactly(fd, lenBytes, 0, file);
    const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
    if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
      throw new CheckpointError(
        file,
        `corrupt or truncated safetensors header (declared length ${headerLen}, file size ${size})`,
      );
    }
    const headerBytes = new Uint8Array(headerLen);
    readExactly(fd, headerBytes, 8, file);
    let header: Record<string, any>;
    try {
      header = JSON.parse(new TextDecoder().decode(headerBytes));
    } catch (err) {
      throw new CheckpointError(file, `safetensors header is not valid JSON (${(err as Error).message})`);
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) {
      throw new CheckpointError(file, 'safetensors header is not a JSON object');
    }
    const dataStart = 8 + headerLen;
    const tensors = new Map<string, TensorInfo>();
    const problems: string[] = [];
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const info = parseEntry(name, entry, file, dataStart, size);
      if (typeof info === 'string') problems.push(info);
      else tensors.set(name, info);
    }
    if (problems.length) throw new CheckpointError(file, 'corrupt or truncated safetensors file', problems);
    const meta = header.__metadata__;
    return { files: [file], tensors, metadata: meta && typeof meta === 'object' ? meta : {} };
  } finally {
    closeSync(fd);
  }
}

function parseEntry(name: string, e: any, file: string, dataStart: number, size: number): TensorInfo | string {
  if (!e || typeof e !== 'object') return `${name}: entry is not an object`;
  if (!isSafetensorsDtype(e.dtype)) return `${name}: unsupported dtype ${JSON.stringify(e.dtype)}`;
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)) {
    return `${name}: invalid shape ${JSON.stringify(shape)}`;
  }
  const off = e.data_offsets;
  if (
    !Array.isArray(off) ||
    off.length !== 2 ||
    !off.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0) ||
    off[1] < off[0]
  ) {
    return `${name}: invalid data_offsets ${JSON.stringify(off)}`;
  }
  const byteLength = off[1] - off[0];
  const expected =
    shape.reduce((a: number, b: number) => a * b, 1) * SAFETENSORS_DTYPE_SIZE[e.dtype as SafetensorsDtype];
  if (byteLength !== expected)
    return `${name}: data_offsets span ${byteLength} bytes but shape ${JSON.stringify(shape)} × ${e.dtype} needs ${expected}`;
  if (dataStart + off[1] > size) {
    return `${name}: data ends at byte ${dataStart + off[1]} but the file has only ${size} bytes (truncated)`;
  }
  return { name, file, dtype: e.dtype, shape: shape.slice(), offset: dataStart + off[0], byteLength };
}

/** Reads a sharded checkpoint through its `*.safetensors.index.json` (`weight_map`: tensor → shard file). */
export function readSafetensorsIndex(indexPath: string): SafetensorsCheckpoint {
  const file = resolve(indexPath);
  let index: any;
  try {
    index = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckpointError(file, `cannot read safetensors index (${(err as Error).message})`);
  }
  const map = index?.weight_map;
  if (!map || typeof map !== 'object') throw new CheckpointError(file, 'safetensors index has no weight_map object');
  const shardNames = [...new Set(Object.values(map) as string[])];
  const result: SafetensorsCheckpoint = { files: [], tensors: new Map(), metadata: {} };
  const problems: string[] = [];
  for (const shard of shardNames) {
    if (typeof shard !== 'string' || shard.includes('..') || shard.startsWith('/')) {
      problems.push(`invalid shard name ${JSON.stringify(shard)}`);
      continue;
    }
    const part = readSafetensorsHeader(join(dirname(file), shard));
    result.files.push(...part.files);
    if (Object.keys(result.metadata).length === 0) result.metadata = part.metadata;
    for (const [name, info] of part.tensors) result.tensors.set(name, info);
  }
  for (const [name, shard] of Object.entries(map)) {
    const info = result.tensors.get(name);
    if (!info) problems.push(`${name}: listed in the index for ${shard} but not found in that file`);
    else if (basename(info.file) !== shard)
      problems.push(`${name}: the index says ${shard} but it is in ${basename(info.file)}`);
  }
  if (problems.length) throw new CheckpointError(file, 'sharded checkpoint does not match its index', problems);
  return result;
}

/**
 * The variant of a weight file by diffusers' naming: `<stem>.<variant>.safetensors` and, sharded,
 * `<stem>.safetensors.index.<variant>.json` → the variant; `<stem>.safetensors` and
 * `<stem>.safetensors.index.json` → null (plain); anything else → undefined (not a weight file).
 */
export function weightFileVariant(name: string): string | null | undefined {
  const m =
    /^[^.]+(?:\.([A-Za-z0-9_]+))?\.safetensors$/.exec(name) ??
    /^[^.]+\.safetensors\.index(?:\.([A-Za-z0-9_]+))?\.json$/.exec(name);
  return m ? (m[1] ?? null) : undefined;
}

/** The weight-file variants present in a directory (null: plain files). */
export function weightVariantsIn(dir: string): Set<string | null> {
  const found = new Set<string | null>();
  if (!existsSync(dir)) return found;
  for (const name of readdirSync(dir)) {
    const v = weightFileVariant(name);
    if (v !== undefined) found.add(v);
  }
  return found;
}

/**
 * Which weight files a build reads from component directories: the fp16 files when every component has
 * them and the build is float16 or there are no plain files; else the plain ones (undefined).
 */
export function preferredWeightVariant(componentDirs: readonly string[], dtype: FloatDtype): 'fp16' | undefined {
  const present = componentDirs.map(weightVariantsIn);
  const allFp16 = present.every((v) => v.has('fp16'));
  const allPlain = present.every((v) => v.has(null));
  return allFp16 && (dtype === 'float16' || !allPlain) ? 'fp16' : undefined;
}

/**
 * Opens a checkpoint given a `.safetensors` file, a `.safetensors.index.json`, or a component directory
 * (e.g. `vae/`). In a directory the index wins over a single file; `variant` ('fp16', …) selects
 * `*.fp16.safetensors`; without it, non-variant files are preferred.
 */
export function openCheckpoint(path: string, options: { variant?: string } = {}): SafetensorsCheckpoint {
  const p = resolve(path);
  if (!existsSync(p)) throw new CheckpointError(p, 'checkpoint not found');
  if (!statSync(p).isDirectory()) {
    return p.endsWith('.json') ? readSafetensorsIndex(p) : readSafetensorsHeader(p);
  }
  const names = readdirSync(p);
  const variantRe = /\.[A-Za-z0-9_]+\.safetensors(\.index\.json)?$|\.safetensors\.index\.[A-Za-z0-9_]+\.json$/;
  const pick = (suffix: string): string | undefined => {
    const all = names.filter(
      (n) => n.endsWith(suffix) || (suffix.endsWith('.json') && /\.safetensors\.index\.[A-Za-z0-9_]+\.json$/.test(n)),
    );
    // diffusers names sharded variants `<stem>.safetensors.index.<variant>.json`, single files `<stem>.<variant>.safetensors`
    const isVariant = (n: string) =>
      n.endsWith(`.${options.variant}${suffix}`) ||
      (suffix.endsWith('.json') && n.endsWith(`.safetensors.index.${options.variant}.json`));
    const wanted = options.variant ? all.filter(isVariant) : all.filter((n) => !variantRe.test(n));
    const preferred = ['diffusion_pytorch_model', 'model'];
    for (const stem of preferred) {
      const hit = wanted.find((n) => n.startsWith(`${stem}.`));
      if (hit) return hit;
    }
    return wanted.length === 1 ? wanted[0] : undefined;
  };
  const index = pick('.safetensors.index.json');
  if (index) return readSafetensorsIndex(join(p, index));
  const single = pick('.safetensors');
  if (single) return readSafetensorsHeader(join(p, single));
  throw new CheckpointError(
    p,
    options.variant
      ? `no *.${options.variant}.safetensors file or index in this directory`
      : 'no .safetensors file or *.safetensors.index.json in this directory',
  );
}

/** Reads a tensor's raw little-endian bytes (chunked positional reads; works for tensors above 2 GiB). */
export function readTensorBytes(info: TensorInfo): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(info.byteLength));
  const fd = openSync(info.file, 'r');
  try {
    readExactly(fd, out, info.offset, info.file);
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Reads a tensor and converts it to float32 (F16/BF16/F64/integers are converted exactly or rounded to f32). */
export function readTensorF32(info: TensorInfo): Float32Array {
  return bytesToFloat32(readTensorBytes(info), info.dtype);
}
