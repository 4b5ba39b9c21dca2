/**
 * IEEE 754 binary16 ("half") ⇄ float32, for ONNX models with float16 inputs and outputs.
 * Node 20 has no Float16Array, so halves travel as their bit patterns in a Uint16Array.
 *
 * float32 → float16 rounds to nearest, ties to even (what numpy and torch do), produces subnormals
 * below 2^−14, ±Infinity above 65504 (after rounding), and keeps NaN a NaN (quiet, sign kept).
 */

let halfTable: Float32Array | undefined;

/** The 65536 possible halves as float32, built on first use (256 KiB). */
function table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = halfBitsToNumber(h);
  halfTable = t;
  return t;
}

/** The value of one binary16 bit pattern. */
/** The float dtypes graphs compute in and tensors cross the session boundary as. */
export type FloatDtype = 'float32' | 'float16';

export function halfBitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern nearest to `x` (after rounding `x` to float32). */
export function numberToHalfBits(x: number): number {
  f32[0] = x;
  return float32BitsToHalfBits(u32[0]);
}

/** float32 bit pattern → binary16 bit pattern (round to nearest even). */
export function float32BitsToHalfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e >= 1) {
    // Normal half: keep 10 mantissa bits; a carry out of the mantissa correctly bumps the exponent (up to Infinity).
    let h = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
    return sign | h;
  }
  // Subnormal half (unit 2^−24): shift the float's 24-bit significand right; beyond 24 bits it rounds to zero.
  const shift = 14 - e;
  if (shift > 24) return sign;
  const sig = mant | 0x800000;
  let h = sig >>> shift;
  const rest = sig & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && h & 1)) h++;
  return sign | h;
}

/** float32 → float16 bit patterns (round to nearest even). */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = float32BitsToHalfBits(bits[i]);
  return out;
}

/** float16 bit patterns → float32 (exact). */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const t = table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}
