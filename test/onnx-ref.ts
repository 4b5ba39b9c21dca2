/**
 * Plain-JS reference implementations of the layers (float64 accumulation), used by the ONNX layer tests.
 * Written from the torch definitions, independently of the graph code under test.
 */
import { mulberry32 } from '../src/onnx/randomWeights.js';

export interface T {
  data: Float64Array;
  shape: number[];
}

export const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function tensor(shape: number[], fill: (i: number) => number): T {
  const data = new Float64Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = fill(i);
  return { data, shape };
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
export function rng(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => uniform() * 2 - 1;
}

export function conv2d(x: T, w: T, b: T | null, stride: number, pad: number): T {
  const [n, c, h, wd] = x.shape;
  const [o, ci, k] = w.shape;
  if (ci !== c) throw new Error('channels');
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - k) / stride) + 1;
  const out = new Float64Array(n * o * oh * ow);
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = b ? b.data[oi] : 0;
          for (let cc = 0; cc < c; cc++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = y * stride + ky - pad;
                const ix = xx * stride + kx - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += x.data[((ni * c + cc) * h + iy) * wd + ix] * w.data[((oi * c + cc) * k + ky) * k + kx];
              }
          out[((ni * o + oi) * oh + y) * ow + xx] = s;
        }
  return { data: out, shape: [n, o, oh, ow] };
}

/** Conv3d kernel (k,1,1) padding (k/2,0,0) on [B,C,F,h,w]. */
export function conv3dTemporal(x: T, w: T, b: T | null): T {
  const [bn, c, f, h, wd] = x.shape;
  const [o, , k] = w.shape;
  const p = Math.floor(k / 2);
  const hw = h * wd;
  const out = new Float64Array(bn * o * f * hw);
  for (let bi = 0; bi < bn; bi++)
    for (let oi = 0; oi < o; oi++)
      for (let fi = 0; fi < f; fi++)
        for (let s = 0; s < hw; s++) {
          let acc = b ? b.data[oi] : 0;
          for (let cc = 0; cc < c; cc++)
            for (let kt = 0; kt < k; kt++) {
              const src = fi + kt - p;
              if (src < 0 || src >= f) continue;
              acc += x.data[((bi * c + cc) * f + src) * hw + s] * w.data[(oi * c + cc) * k + kt];
            }
          out[((bi * o + oi) * f + fi) * hw + s] = acc;
        }
  return { data: out, shape: [bn, o, f, h, wd] };
}

/** torch GroupNorm for any rank ≥ 2 (statistics over the group's channels and all trailing axes). */
export function groupNorm(x: T, groups: number, eps: number, scale: T, bias: T): T {
  const [n, c] = x.shape;
  const inner = size(x.shape.slice(2));
  const per = (c / groups) * inner;
  const out = new Float64Array(x.data.length);
  for (let ni = 0; ni < n; ni++)
    for (let gi = 0; gi < groups; gi++) {
      const start = (ni * c + gi * (c / groups)) * inner;
      let mean = 0;
      for (let i = 0; i < per; i++) mean += x.data[start + i];
      mean /= per;
      let v = 0;
      for (let i = 0; i < per; i++) v += (x.data[start + i] - mean) ** 2;
      v /= per;
      const inv = 1 / Math.sqrt(v + eps);
      for (let i = 0; i < per; i++) {
        const ch = gi * (c / groups) + Math.floor(i / inner);
        out[start + i] = (x.data[start + i] - mean) * inv * scale.data[ch] + bias.data[ch];
      }
    }
  return { data: out, shape: x.shape };
}

export function layerNorm(x: T, eps: number, scale: T, bias: T): T {
  const d = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x.data[r * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x.data[r * d + i] - mean) ** 2;
    v /= d;
    for (let i = 0; i < d; i++)
      out[r * d + i] = ((x.data[r * d + i] - mean) / Math.sqrt(v + eps)) * scale.data[i] + bias.data[i];
  }
  return { data: out, shape: x.shape };
}

export const map = (x: T, f: (v: number) => number): T => ({ data: x.data.map(f), shape: x.shape });
export const silu = (x: T): T => map(x, (v) => v / (1 + Math.exp(-v)));

export function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse; use a series / continued fraction good to ~1e-15.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x;
    let term = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}
export const gelu = (x: T): T => map(x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));

/** x [..., in] · Wᵀ + b with W [out, in]. */
export function linear(x: T, w: T, b: T | null): T {
  const [o, i] = w.shape;
  const rows = x.data.length / i;
  const out = new Float64Array(rows * o);
  for (let r = 0; r < rows; r++)
    for (let oi = 0; oi < o; oi++) {
      let s = b ? b.data[oi] : 0;
      for (let k = 0; k < i; k++) s += x.data[r * i + k] * w.data[oi * i + k];
      out[r * o + oi] = s;
    }
  return { data: out, shape: [...x.shape.slice(0, -1), o] };
}

/** Multi-head attention: q [B,Sq,H·D], k/v [B,Sk,H·D]. */
export function attention(q: T, k: T, v: T, heads: number, scale: number): T {
  const [b, sq, hd] = q.shape;
  const sk = k.shape[1];
  const d = hd / heads;
  const out = new Float64Array(b * sq * hd);
  for (let bi = 0; bi < b; bi++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < sq; i++) {
        const scores = new Float64Array(sk);
        let max = -Infinity;
        for (let j = 0; j < sk; j++) {
          let s = 0;
          for (let e = 0; e < d; e++)
            s += q.data[(bi * sq + i) * hd + h * d + e] * k.data[(bi * sk + j) * hd + h * d + e];
          scores[j] = s * scale;
          max = Math.max(max, scores[j]);
        }
        let z = 0;
        for (let j = 0; j < sk; j++) z += scores[j] = Math.exp(scores[j] - max);
        for (let e = 0; e < d; e++) {
          let s = 0;
          for (let j = 0; j < sk; j++) s += (scores[j] / z) * v.data[(bi * sk + j) * hd + h * d + e];
          out[(bi * sq + i) * hd + h * d + e] = s;
        }
      }
  return { data: out, shape: q.shape };
}

export function relErr(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (ours.length !== ref.length) throw new Error(`length ${ours.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (ours[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / den);
}
