/**
 * Writes .safetensors files (used by the tiny-checkpoint generator and tests). The file is written to a
 * temporary name and renamed, so a failure never leaves a partial checkpoint behind.
 */
import { writeAll, writeFileAtomically } from '../io/atomicFile.js';
import { float32ToBytes, SAFETENSORS_DTYPE_SIZE, type SafetensorsDtype } from './dtype.js';

export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: number[];
  /**
   * Float32Array: converted to `dtype` (F32, F16, BF16, F64). Uint16Array: raw F16/BF16 bits.
   * BigInt64Array: I64. Uint8Array: raw little-endian bytes of any dtype.
   */
  data: Float32Array | Uint16Array | BigInt64Array | Uint8Array;
}

function tensorBytes(name: string, t: TensorToWrite): Uint8Array {
  const count = t.shape.reduce((a, b) => a * b, 1);
  let bytes: Uint8Array;
  if (t.data instanceof Float32Array) {
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16' && t.dtype !== 'F64') {
      throw new TypeError(`${name}: Float32Array data cannot be written as ${t.dtype}`);
    }
    bytes = float32ToBytes(t.data, t.dtype);
  } else {
    bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  const expected = count * SAFETENSORS_DTYPE_SIZE[t.dtype];
  if (bytes.byteLength !== expected) {
    throw new TypeError(
      `${name}: shape ${JSON.stringify(t.shape)} × ${t.dtype} needs ${expected} bytes, got ${bytes.byteLength}`,
    );
  }
  return bytes;
}

/** Writes `{name → tensor}` to `path` (header padded with spaces to a multiple of 8 bytes). */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = tensorBytes(name, t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    blobs.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const padded = Math.ceil((Buffer.byteLength(json) + 8) / 8) * 8 - 8;
  json = json.padEnd(json.length + (padded - Buffer.byteLength(json)), ' ');
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));

  writeFileAtomically(path, (fd) => {
    writeAll(fd, len);
    writeAll(fd, headerBytes);
    for (const b of blobs) writeAll(fd, b);
  });
}
