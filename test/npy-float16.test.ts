import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16, halfBitsToNumber, numberToHalfBits } from '../src/tensor/float16.js';
import { maxAbsDiff, relativeError } from '../src/tensor/compare.js';

// [float32 bits, float16 bits] pairs computed by numpy 2.4 (`a.astype(np.float16)`).
const NUMPY_PAIRS: [number, number][] = [
  [0x00000000, 0x0000],
  [0x80000000, 0x8000],
  [0x3f800000, 0x3c00],
  [0xbf800000, 0xbc00],
  [0x3dcccccd, 0x2e66],
  [0x3eaaaaab, 0x3555],
  [0x477fe000, 0x7bff],
  [0x477feffd, 0x7bff],
  [0x477ff000, 0x7c00],
  [0x49742400, 0x7c00],
  [0xc9742400, 0xfc00],
  [0x38800000, 0x0400],
  [0x387fda40, 0x03ff],
  [0x33800000, 0x0001],
  [0x33000000, 0x0000],
  [0x33000001, 0x0001],
  [0x322bcc77, 0x0000],
  [0x0da24260, 0x0000],
  [0x3f801000, 0x3c00],
  [0x3f803000, 0x3c02],
  [0x3f802000, 0x3c01],
  [0x40001000, 0x4000],
  [0x3ca3e000, 0x251f],
  [0x3ca3d70a, 0x251f],
  [0x442f000c, 0x6178],
  [0xc0490fd0, 0xc248],
  [0x7f800000, 0x7c00],
  [0xff800000, 0xfc00],
  [0x00000001, 0x0000],
  [0x33c00000, 0x0002],
  [0x38400000, 0x0300],
  [0x41492b19, 0x4a49],
  [0xc1535e26, 0xca9b],
  [0x428015a4, 0x5401],
  [0x4127d716, 0x493f],
  [0xc256448c, 0xd2b2],
  [0x4210a356, 0x5085],
  [0x43026667, 0x5813],
  [0x42bd6a8c, 0x55eb],
  [0xc28cbf3e, 0xd466],
  [0xc2fd1595, 0xd7e9],
  [0xc2794f4e, 0xd3ca],
  [0x40843e3e, 0x4422],
];

describe('float32 → float16', () => {
  it('matches numpy on normals, ties, subnormals, overflow and infinities', () => {
    const src = new Float32Array(new Uint32Array(NUMPY_PAIRS.map(([f]) => f)).buffer);
    const got = Array.from(float32ToFloat16(src));
    expect(got.map((h) => h.toString(16))).toEqual(NUMPY_PAIRS.map(([, h]) => h.toString(16)));
  });

  it('keeps NaN a NaN', () => {
    const h = float32ToFloat16(Float32Array.of(NaN, -NaN))[0];
    expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
    expect(Number.isNaN(float16ToFloat32(Uint16Array.of(h))[0])).toBe(true);
  });

  it('every finite half round-trips exactly, and every midpoint rounds to the even neighbour', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = float16ToFloat32(all);
    const back = float32ToFloat16(values);
    let bad = 0;
    let badTies = 0;
    for (let h = 0; h < 65536; h++) {
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (!isNan && back[h] !== h) bad++;
      // Midpoint between h and h+1 within the same sign, both finite (float64 midpoint is exact in float32 here).
      const next = h + 1;
      if ((h & 0x7fff) < 0x7bff && (next & 0x8000) === (h & 0x8000)) {
        const mid = (halfBitsToNumber(h) + halfBitsToNumber(next)) / 2;
        const even = h % 2 === 0 ? h : next;
        if (numberToHalfBits(mid) !== even) badTies++;
      }
    }
    expect(bad).toBe(0);
    expect(badTies).toBe(0);
  });

  it('decodes known halves', () => {
    expect(
      Array.from(float16ToFloat32(Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x8000))),
    ).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, -0]);
  });
});

describe('compare', () => {
  it('relativeError is ‖a−b‖/‖b‖', () => {
    expect(relativeError([3, 4], [0, 5])).toBeCloseTo(Math.sqrt(9 + 1) / 5, 12);
    expect(relativeError([1, 2], [1, 2])).toBe(0);
    expect(relativeError([1, 1], [0, 0])).toBeCloseTo(Math.SQRT2, 12);
    expect(() => relativeError([1], [1, 2])).toThrow(/1 and 2 values/);
  });
  it('maxAbsDiff', () => {
    expect(maxAbsDiff([1, -5, 2], [1, 5, 2.5])).toBe(10);
    expect(maxAbsDiff([NaN], [1])).toBeNaN();
  });
});
