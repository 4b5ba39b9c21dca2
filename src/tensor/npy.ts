/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): the exchange format of the reference run
 * (`test/fixtures/reference/out`), of `--noise` (injected random draws) and of `--dump` (intermediates).
 *
 * Only what a tensor needs: little-endian (or byte-order-free) dtypes `<f4`, `<f8`, `|u1`, `<i4`, `<i8`,
 * C order, any rank (0-d arrays have shape `[]`).
 */
import { readFileSync } from 'node:fs';
import { SvdError } from '../errors.js';
import { writeBytesAtomically } from '../io/atomicFile.js';

/** A `.npy` file that cannot be read or written; names the file and what is supported. */
export class NpyFormatError extends SvdError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('npy_invalid', `${path}: ${message}`);
  }
}

export type NpyData = Float32Array | Float64Array | Uint8Array | Int32Array | BigInt64Array;

export interface NpyArray {
  data: NpyData;
  /** Row-major (C order) shape; `[]` for a 0-d array. */
  shape: number[];
  /** The numpy dtype string, e.g. `<f4`. */
  dtype: string;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** dtype string → typed-array constructor. `=` (native) is little-endian on every platform Node supports here. */
const DTYPES: Record<string, { bytes: number; make: (buf: ArrayBuffer, n: number) => NpyData }> = {
  f4: { bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  f8: { bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
  u1: { bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  i4: { bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  i8: { bytes: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
};
const SUPPORTED = "'<f4', '<f8', '|u1', '<i4', '<i8'";

/** Reads a `.npy` file. Throws NpyFormatError naming the file on anything unsupported. */
export function readNpy(path: string): NpyArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new NpyFormatError(path, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseNpy(bytes, path);
}

/** Parses the bytes of a `.npy` file; `name` is only used in error messages. */
export function parseNpy(bytes: Uint8Array, name = '<npy bytes>'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    throw new NpyFormatError(name, 'is not a .npy file (bad magic)');
  const major = bytes[6];
  if (major !== 1 && major !== 2 && major !== 3)
    throw new NpyFormatError(name, `has .npy format version ${major}; supported: 1, 2, 3`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw new NpyFormatError(name, 'is truncated (header)');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const { descr, fortranOrder, shape } = parseHeader(header, name);

  const m = /^([<>|=])([a-z])(\d+)$/.exec(descr);
  const key = m ? `${m[2]}${m[3]}` : '';
  const spec = DTYPES[key];
  if (!m || !spec) throw new NpyFormatError(name, `has dtype '${descr}'; supported: ${SUPPORTED}`);
  if (m[1] === '>' && spec.bytes > 1)
    throw new NpyFormatError(name, `is big-endian ('${descr}'); supported: ${SUPPORTED}`);
  if (fortranOrder && shape.length > 1)
    throw new NpyFormatError(name, 'is in Fortran order; only C order is supported');

  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * spec.bytes;
  if (dataStart + byteLength > bytes.length) {
    throw new NpyFormatError(
      name,
      `is truncated: shape [${shape.join(',')}] needs ${byteLength} data bytes, file has ${bytes.length - dataStart}`,
    );
  }
  // Copy into a fresh, aligned buffer: the data offset is only 16/64-aligned relative to the file start.
  const buf = new ArrayBuffer(byteLength);
  new Uint8Array(buf).set(bytes.subarray(dataStart, dataStart + byteLength));
  return { data: spec.make(buf, count), shape, dtype: `${spec.bytes === 1 ? '|' : '<'}${key}` };
}

function parseHeader(header: string, name: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape)
    throw new NpyFormatError(name, `has an unreadable header: ${header.trim().slice(0, 120)}`);
  const dims = shape[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new NpyFormatError(name, `has a bad shape (${shape[1]})`);
  return { descr: descr[1], fortranOrder: fortran[1] === 'True', shape: dims };
}

/** Encodes a C-order array as `.npy` (version 1.0, header padded to 64 bytes). The dtype follows the array type. */
export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || count !== data.length) {
    throw new RangeError(`encodeNpy: shape [${shape.join(',')}] holds ${count} values but the data has ${data.length}`);
  }
  const descr = dtypeOf(data);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  if (header.length > 0xffff) throw new RangeError('encodeNpy: header too long');
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/**
 * Writes a `.npy` file atomically (a temp file next to the target, then rename), so a crash never
 * leaves a half-written array at `path`.
 */
export function writeNpy(path: string, data: NpyData, shape: readonly number[]): void {
  const bytes = encodeNpy(data, shape);
  try {
    writeBytesAtomically(path, bytes);
  } catch (err) {
    throw new NpyFormatError(path, `cannot be written (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

function dtypeOf(data: NpyData): string {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof BigInt64Array) return '<i8';
  throw new TypeError('encodeNpy: data must be a Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array');
}
