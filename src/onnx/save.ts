/**
 * Writes a built graph to `<outDir>/<fileName>`.
 *
 * Where external data may live (measured on onnxruntime-node 1.30.0, see test/onnx-external.test.ts):
 * ORT resolves `location` relative to the .onnx file's directory and refuses anything that resolves
 * outside it — `../ckpt/x.safetensors` ("External data path escapes model directory"), an absolute path
 * ("Absolute path not allowed for external data location"), and also a *symlink* inside the model
 * directory that points outside (ORT canonicalises the path before checking). A *hard link* passes, since
 * it is an ordinary directory entry. So each checkpoint file the graph reads is hard-linked into
 * `<outDir>/weights/<component>-<file>` (no copy, no extra disk), falling back to a copy (a reflink where
 * the filesystem can) when the checkpoint is on another filesystem.
 */
import { constants, copyFileSync, existsSync, linkSync, mkdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createFileAtomically, writeAll, writeBytesAtomically, writeFileAtomically } from '../io/atomicFile.js';
import { basename, dirname, join } from 'node:path';
import type { GraphBuilder } from './graph.js';
import { DTYPE_SIZE, encodeModel, IR_VERSION, type TensorDef } from './model.js';

export interface WeightFileLink {
  /** Location as written in the model (relative to outDir). */
  location: string;
  /** The checkpoint file it stands for. */
  source: string;
  /** 'hardlink' (no extra disk), 'existing' (already linked by an earlier build), or 'copy'. */
  mode: 'hardlink' | 'existing' | 'copy';
}

export interface BuildInfo {
  /** Absolute path of the written .onnx. */
  path: string;
  nodeCount: number;
  /** Node count per op type. */
  opCounts: Record<string, number>;
  initializerCount: number;
  /** Bytes of checkpoint tensors the graph references. */
  weightBytes: number;
  /** Bytes of the weights in the graph's compute dtype (what a session holds when it converts them once). */
  computeWeightBytes: number;
  /** Bytes written to the side `.data` file (converted weights, large constants); 0 when none. */
  dataBytes: number;
  weightFiles: WeightFileLink[];
  /** Checkpoint tensors the graph did not use. */
  unusedWeights: string[];
}

export interface SaveOptions {
  /** Doc string stored in the model. */
  docString?: string;
  producerVersion?: string;
}

const SAME_FILE = (a: string, b: string): boolean => {
  const sa = statSync(a);
  const sb = statSync(b);
  return sa.ino === sb.ino && sa.dev === sb.dev;
};

/**
 * Offset alignment of each tensor in the side `.data` file. onnxruntime maps the file at any alignment; 4096
 * (page-aligned tensors) measured the same RSS within 1 % (bench/RESULTS.md §7), so 64 keeps the file compact.
 */
export const DATA_ALIGNMENT = 64;

/**
 * Appends to the `.data` file through one 8 MiB buffer: the many small tensors (biases, norms) cost one
 * write call per buffer, not one each; large pieces go straight to the file.
 */
class DataFileWriter {
  private readonly buf = new Uint8Array(8 << 20);
  private used = 0;
  position = 0;

  constructor(private readonly fd: number) {}

  write(piece: Uint8Array): void {
    if (piece.byteLength > this.buf.byteLength - this.used) this.flush();
    if (piece.byteLength >= this.buf.byteLength) writeAll(this.fd, piece);
    else {
      this.buf.set(piece, this.used);
      this.used += piece.byteLength;
    }
    this.position += piece.byteLength;
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  align(alignment: number): void {
    const pad = (alignment - (this.position % alignment)) % alignment;
    if (pad) this.write(new Uint8Array(pad));
  }

  flush(): void {
    if (this.used) writeAll(this.fd, this.buf.subarray(0, this.used));
    this.used = 0;
  }
}

/** Makes `file` reachable as `<outDir>/weights/<name>`; returns how. */
export function linkWeightFile(outDir: string, file: string, name: string): WeightFileLink {
  const target = realpathSync(file);
  const location = `weights/${name}`;
  const dest = join(outDir, 'weights', name);
  mkdirSync(dirname(dest), { recursive: true });
  if (existsSync(dest) && SAME_FILE(dest, target)) return { location, source: file, mode: 'existing' };
  let mode: WeightFileLink['mode'] = 'hardlink';
  createFileAtomically(dest, (tmp) => {
    try {
      linkSync(target, tmp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK' && code !== 'EACCES')
        throw err;
      copyFileSync(target, tmp, constants.COPYFILE_FICLONE);
      mode = 'copy';
    }
  });
  return { location, source: file, mode };
}

/** Writes the graph and returns what was written. Throws CheckpointError (nothing written) if weights are missing. */
export function saveGraph(g: GraphBuilder, outDir: string, fileName: string, options: SaveOptions = {}): BuildInfo {
  g.assertComplete();
  if (g.weights.dry) throw new Error(`graph ${g.name}: built from a dry-run weight source; nothing to save`);
  mkdirSync(outDir, { recursive: true });
  const modelPath = join(outDir, fileName);

  // 1. checkpoint files → hard links inside outDir
  const linkByFile = new Map<string, WeightFileLink>();
  const usedNames = new Set<string>();
  for (const { source } of g.checkpointInitializers) {
    if (linkByFile.has(source.file)) continue;
    const component = basename(dirname(source.file));
    let name = `${component}-${basename(source.file)}`;
    for (let i = 2; usedNames.has(name); i++) name = `${component}-${i}-${basename(source.file)}`;
    usedNames.add(name);
    linkByFile.set(source.file, linkWeightFile(outDir, source.file, name));
  }
  const external: TensorDef[] = g.checkpointInitializers.map(({ tensor, source }) => ({
    ...tensor,
    external: { location: linkByFile.get(source.file)!.location, offset: source.offset, length: source.byteLength },
  }));

  // 2. converted weights and large constants → <fileName>.data
  const dataName = `${fileName}.data`;
  const dataPath = join(outDir, dataName);
  let dataBytes = 0;
  if (g.dataInitializers.length) {
    writeFileAtomically(dataPath, (fd) => {
      const out = new DataFileWriter(fd);
      for (const { tensor, byteLength, produce } of g.dataInitializers) {
        out.align(DATA_ALIGNMENT);
        const offset = out.position;
        produce((piece) => out.write(piece));
        if (out.position - offset !== byteLength)
          throw new Error(
            `graph ${g.name}: ${tensor.name} wrote ${out.position - offset} bytes, expected ${byteLength}`,
          );
        external.push({ ...tensor, external: { location: dataName, offset, length: byteLength } });
      }
      out.flush();
      dataBytes = out.position;
    });
  } else {
    rmSync(dataPath, { force: true }); // a stale side file from an earlier build would mislead
  }

  // 3. the model itself
  const bytes = encodeModel({
    irVersion: IR_VERSION,
    opsets: Object.entries(g.opsets).map(([domain, version]) => ({ domain, version })),
    producerName: 'svd-runtime',
    ...(options.producerVersion ? { producerVersion: options.producerVersion } : {}),
    ...(options.docString ? { docString: options.docString } : {}),
    graph: {
      name: g.name,
      nodes: g.nodes,
      initializers: [...g.inlineInitializers, ...external],
      inputs: g.inputs,
      outputs: g.outputs,
    },
  });
  writeBytesAtomically(modelPath, bytes);

  const opCounts: Record<string, number> = {};
  for (const n of g.nodes) opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
  return {
    path: modelPath,
    nodeCount: g.nodes.length,
    opCounts,
    initializerCount: g.inlineInitializers.length + external.length,
    weightBytes: g.weightBytes(),
    computeWeightBytes: g.requests.reduce((a, r) => a + r.shape.reduce((n, d) => n * d, 1), 0) * DTYPE_SIZE[g.dtype],
    dataBytes,
    weightFiles: [...linkByFile.values()],
    unusedWeights: g.unusedWeights(),
  };
}
