/**
 * Build-time conversion of checkpoint tensors to a graph's compute dtype (`weightStorage: 'convert'`, see
 * src/onnx/graph.ts): the tensor is read in pieces, each piece converted with typed-array loops (table lookup
 * for halves, shifts for bfloat16) and handed to the writer, so converting a multi-GiB checkpoint is bound by
 * the disk, not by per-element DataView calls, and holds one piece in memory at a time.
 *
 * Bytes are little-endian on both sides (safetensors and ONNX external data). On a little-endian host the
 * typed arrays read them as they are; a big-endian host takes the slower DataView path.
 */
import { closeSync, openSync } from 'node:fs';
import { endianness } from 'node:os';
import { float32BitsToHalfBits, halfBitsToNumber, type FloatDtype } from '../tensor/float16.js';
import { bytesToFloat32, SAFETENSORS_DTYPE_SIZE, type SafetensorsDtype } from './dtype.js';
import { readExactly, readTensorBytes, type TensorInfo } from './reader.js';

/** Source dtypes a float weight can be converted from. */
export type ConvertibleDtype = Extract<SafetensorsDtype, 'F32' | 'F16' | 'BF16' | 'F64'>;

const OUT_SIZE: Record<FloatDtype, number> = { float32: 4, float16: 2 };

/** Elements per piece: 4 Mi elements = 8 MiB of halves in, 16 MiB of float32 out. */
export const CONVERT_CHUNK_ELEMENTS = 1 << 22;

const LITTLE_ENDIAN = endianness() === 'LE';

let halfToFloatBits: Uint32Array | undefined;

/** float32 bit pattern of each of the 65536 halves; NaNs keep sign and payload (as a bit-level widening does). */
function halfTable(): Uint32Array {
  if (halfToFloatBits) return halfToFloatBits;
  const t = new Uint32Array(65536);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) {
      t[h] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
    } else {
      f[0] = halfBitsToNumber(h); // exact: every half is a float32
      t[h] = u[0];
    }
  }
  halfToFloatBits = t;
  return t;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * Converts `src` (little-endian `from` elements, byteOffset a multiple of the element size) to little-endian
 * `to` elements, written into `out` when it is large enough (else a new array). Returns the bytes written.
 * Exact for F16/BF16 → float32; F32/F64 → float16 and F64 → float32 round to nearest even.
 */
export function convertElements(src: Uint8Array, from: ConvertibleDtype, to: FloatDtype, out?: Uint8Array): Uint8Array {
  const n = src.byteLength / SAFETENSORS_DTYPE_SIZE[from];
  const bytes = n * OUT_SIZE[to];
  const dst = out && out.byteLength >= bytes ? out.subarray(0, bytes) : new Uint8Array(bytes);
  if (!LITTLE_ENDIAN || src.byteOffset % SAFETENSORS_DTYPE_SIZE[from] || dst.byteOffset % OUT_SIZE[to]) {
    return convertPortable(src, from, to, dst);
  }
  if (to === 'float32') {
    const o = new Uint32Array(dst.buffer, dst.byteOffset, n);
    if (from === 'F16') {
      const t = halfTable();
      const s = new Uint16Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) o[i] = t[s[i]];
    } else if (from === 'BF16') {
      const s = new Uint16Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) o[i] = s[i] << 16;
    } else if (from === 'F64') {
      new Float32Array(dst.buffer, dst.byteOffset, n).set(new Float64Array(src.buffer, src.byteOffset, n));
    } else {
      dst.set(src);
    }
    return dst;
  }
  const o = new Uint16Array(dst.buffer, dst.byteOffset, n);
  if (from === 'F16') {
    dst.set(src);
  } else if (from === 'F32') {
    const s = new Uint32Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) o[i] = float32BitsToHalfBits(s[i]);
  } else if (from === 'BF16') {
    const s = new Uint16Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) o[i] = float32BitsToHalfBits(s[i] << 16);
  } else {
    const s = new Float64Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) {
      f32Scratch[0] = s[i];
      o[i] = float32BitsToHalfBits(u32Scratch[0]);
    }
  }
  return dst;
}

/** Byte-order independent path (DataView): big-endian hosts and unaligned views. */
function convertPortable(src: Uint8Array, from: ConvertibleDtype, to: FloatDtype, dst: Uint8Array): Uint8Array {
  const values = bytesToFloat32(src, from);
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  if (from === 'F16' && to === 'float32') {
    const t = halfTable();
    const s = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let i = 0; i < values.length; i++) dv.setUint32(i * 4, t[s.getUint16(i * 2, true)], true);
  } else if (to === 'float32') {
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i], true);
  } else {
    for (let i = 0; i < values.length; i++) {
      f32Scratch[0] = values[i];
      dv.setUint16(i * 2, float32BitsToHalfBits(u32Scratch[0]), true);
    }
  }
  return dst;
}

/**
 * Reads the checkpoint tensor `info` piece by piece and calls `write` with each piece converted to `dtype`.
 * A piece is only valid during its `write` call (the buffers are reused). Returns the bytes written.
 */
export function convertTensorStreaming(
  info: TensorInfo,
  dtype: FloatDtype,
  write: (piece: Uint8Array) => void,
  chunkElements = CONVERT_CHUNK_ELEMENTS,
): number {
  const from = info.dtype as ConvertibleDtype;
  const inSize = SAFETENSORS_DTYPE_SIZE[from];
  const total = info.byteLength / inSize;
  const per = Math.min(chunkElements, total);
  // fresh ArrayBuffers: element-aligned views (Buffer.allocUnsafe may hand out an odd pool offset)
  const inBuf = new Uint8Array(new ArrayBuffer(per * inSize));
  const outBuf = new Uint8Array(new ArrayBuffer(per * OUT_SIZE[dtype]));
  const fd = openSync(info.file, 'r');
  try {
    for (let done = 0; done < total; done += per) {
      const count = Math.min(per, total - done);
      const piece = inBuf.subarray(0, count * inSize);
      readExactly(fd, piece, info.offset + done * inSize, info.file);
      write(convertElements(piece, from, dtype, outBuf));
    }
  } finally {
    closeSync(fd);
  }
  return total * OUT_SIZE[dtype];
}

/**
 * The [rows, cols] matrix tensor `info` converted to `dtype` and transposed to [cols, rows] (row-major), in
 * one buffer: the largest such weight (SVD's feed-forward projections, 10240 × 1280) is 50 MiB in float32.
 */
export function convertTensorTransposed(info: TensorInfo, dtype: FloatDtype, rows: number, cols: number): Uint8Array {
  if (rows * cols * SAFETENSORS_DTYPE_SIZE[info.dtype] !== info.byteLength)
    throw new Error(`${info.name}: ${info.byteLength} bytes is not a ${rows} × ${cols} ${info.dtype} matrix`);
  const converted = convertElements(readTensorBytes(info), info.dtype as ConvertibleDtype, dtype);
  const out = new Uint8Array(converted.byteLength);
  const n = rows * cols;
  const [src, dst] =
    dtype === 'float32'
      ? [new Uint32Array(converted.buffer, converted.byteOffset, n), new Uint32Array(out.buffer, 0, n)]
      : [new Uint16Array(converted.buffer, converted.byteOffset, n), new Uint16Array(out.buffer, 0, n)];
  const TILE = 64; // square tiles keep both the reads and the writes within a few cache lines
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
    }
  }
  return out;
}
