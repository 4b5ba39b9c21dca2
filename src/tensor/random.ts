/**
 * Seeded Gaussian noise for the local pipeline's two random draws (docs/pipeline.md §4: augmentation noise, then the
 * initial latents). torch's Philox/MT19937 streams cannot be reproduced here, so the same seed gives a
 * different (but equally valid) video than diffusers; to compare with a diffusers run, inject its noise.
 *
 * The algorithm is fixed and documented so that a seed means the same video in every version:
 *
 * 1. Seeding: a uint32 `seed` initialises SplitMix64 (state = seed as a uint64). Its first two outputs
 *    s0, s1 (64-bit) give the xoshiro128** state words, low half first: [lo(s0), hi(s0), lo(s1), hi(s1)].
 *    (SplitMix64: state += 0x9E3779B97F4A7C15; z = state; z = (z ^ z>>30)·0xBF58476D1CE4E5B9;
 *    z = (z ^ z>>27)·0x94D049BB133111EB; output z ^ z>>31, all mod 2^64.)
 * 2. Generator: xoshiro128** 1.1 (Blackman & Vigna): output = rotl(s[1]·5, 7)·9, then the usual
 *    xor/shift/rotate state update, all on uint32.
 * 3. Uniforms: two consecutive outputs a, b form a 53-bit double u = ((a>>>5)·2^26 + (b>>>6)) / 2^53 in [0, 1).
 * 4. Normals: Box–Muller in float64 on two uniforms u1, u2 (in that order):
 *    r = sqrt(−2·ln(1 − u1)), θ = 2π·u2; the pair (r·cos θ, r·sin θ) gives two consecutive samples,
 *    each rounded to float32. A call for an odd count drops the unused second value of its last pair,
 *    so the values of a call depend only on the generator state and the count.
 */

/** A deterministic stream of uniform random numbers. */
export interface Rng {
  /** The next uint32 (0 … 2^32−1). */
  nextUint32(): number;
  /** A 53-bit uniform double in [0, 1). */
  nextFloat64(): number;
}

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 output stream from a 64-bit state; used to seed xoshiro128**. */
export function splitMix64(seed: bigint): () => bigint {
  let state = seed & MASK64;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  };
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** A xoshiro128** generator seeded from a uint32 through SplitMix64 (see the module comment). */
export function createRng(seed: number): Rng {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be a whole number from 0 to ${0xffffffff} (got ${seed})`);
  }
  const next64 = splitMix64(BigInt(seed));
  const a = next64();
  const b = next64();
  return xoshiro128StarStar([Number(a & 0xffffffffn), Number(a >> 32n), Number(b & 0xffffffffn), Number(b >> 32n)]);
}

/** xoshiro128** 1.1 from an explicit state of four uint32 words (not all zero). */
export function xoshiro128StarStar(state: readonly [number, number, number, number]): Rng {
  const s = Uint32Array.from(state);
  // The all-zero state is a fixed point of xoshiro; SplitMix64 seeding never produces it.
  if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new RangeError('xoshiro128** state must not be all zero');
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };
  return {
    nextUint32,
    nextFloat64: () => ((nextUint32() >>> 5) * 67108864 + (nextUint32() >>> 6)) / 9007199254740992,
  };
}

/** `count` float32 samples of N(0, 1) drawn from `rng` (Box–Muller, see the module comment). */
export function gaussianNoise(rng: Rng, count: number): Float32Array {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a whole number ≥ 0 (got ${count})`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u1 = rng.nextFloat64();
    const u2 = rng.nextFloat64();
    const r = Math.sqrt(-2 * Math.log(1 - u1));
    const theta = 2 * Math.PI * u2;
    out[i] = r * Math.cos(theta);
    if (i + 1 < count) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}
