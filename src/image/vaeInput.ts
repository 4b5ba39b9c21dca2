/** The VAE branch's pixel tensor (docs/pipeline.md §2.1): uint8 → /255 → ×2 − 1 in float32, HWC → NCHW. */

/** RGB24 HWC → [1, 3, H, W] float32 in [−1, 1], rounded exactly as numpy/torch float32 do. */
export function toVaeInput(rgb: Uint8Array, width: number, height: number): Float32Array /* [1,3,H,W] */ {
  const plane = width * height;
  if (rgb.length !== plane * 3)
    throw new RangeError(`RGB buffer has ${rgb.length} bytes; ${width}×${height}×3 = ${plane * 3} expected`);
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = Math.fround(Math.fround(rgb[i * 3 + c] / 255) * 2) - 1;
  }
  return out;
}
