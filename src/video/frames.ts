/** Decoded VAE frames → uint8 RGB (docs/pipeline.md §8.4 postprocess). */

/**
 * [F, 3, H, W] float32 in about [−1, 1] → one RGB24 HWC Uint8Array per frame, as diffusers'
 * postprocess + numpy_to_pil: v = clamp(x/2 + 0.5, 0, 1) in float32, then round(v·255) with numpy's
 * round-half-to-even.
 */
export function framesToUint8(
  decoded: Float32Array /* [F,3,H,W] */,
  frames: number,
  height: number,
  width: number,
): Uint8Array[] {
  const plane = height * width;
  if (decoded.length !== frames * 3 * plane) {
    throw new RangeError(
      `decoded frames have ${decoded.length} values; ${frames}×3×${height}×${width} = ${frames * 3 * plane} expected`,
    );
  }
  const f = Math.fround;
  const out: Uint8Array[] = [];
  for (let fr = 0; fr < frames; fr++) {
    const rgb = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      const src = (fr * 3 + c) * plane;
      for (let i = 0; i < plane; i++) {
        const x = decoded[src + i];
        let v = f(f(x / 2) + 0.5);
        v = v > 1 ? 1 : v >= 0 ? v : 0; // NaN → 0
        rgb[i * 3 + c] = roundHalfEven(f(v * 255));
      }
    }
    out.push(rgb);
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
