import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy, NpyFormatError, parseNpy, readNpy, writeNpy } from '../src/tensor/npy.js';

const REF_OUT = join(import.meta.dirname, 'fixtures', 'reference', 'out');
// Bytes written by numpy 2.4 (np.save / numpy.lib.format.write_array), base64.
const NUMPY = {
  f8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAD4PwAAAAAAAALANVgAZi3rUX4AAAAAAAAAAAAAAAAAAACAVVVVVVVV1T8=',
  i4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAA/v///////38AAACA',
  i8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAAAAAP7/////////AAAAAAAAAEAAAAAAAAAAgA==',
  v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAA/AADAPwAAIEA=',
  bigEndian:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/gAAAQAAAAA==',
  fortran:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAABAQAAAgD8AAIBAAAAAQAAAoEA=',
  complex:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGM4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQA==',
  f4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAA/AADAPwAAIEA=',
  u1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAgP/',
  scalar:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoMAC9E',
};
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'svd-npy-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('readNpy on the diffusers reference files', () => {
  it('reads a float32 4-d array', () => {
    const a = readNpy(join(REF_OUT, 'clip_pixel_values.npy'));
    expect(a.dtype).toBe('<f4');
    expect(a.shape).toEqual([1, 3, 224, 224]);
    expect(a.data).toBeInstanceOf(Float32Array);
    // index.json: min -1.7922636270523071, max 2.7906081676483154
    const d = a.data as Float32Array;
    expect(d.reduce((m, x) => Math.min(m, x), Infinity)).toBeCloseTo(-1.7922636270523071, 6);
    expect(d.reduce((m, x) => Math.max(m, x), -Infinity)).toBeCloseTo(2.7906081676483154, 6);
  });

  it('reads a uint8 HWC image', () => {
    const a = readNpy(join(REF_OUT, 'input_image_uint8.npy'));
    expect(a.dtype).toBe('|u1');
    expect(a.shape).toEqual([64, 128, 3]);
    expect(a.data).toBeInstanceOf(Uint8Array);
    expect(a.data.length).toBe(64 * 128 * 3);
  });

  it('reads a 0-d array as shape []', () => {
    const a = readNpy(join(REF_OUT, 'init_noise_sigma.npy'));
    expect(a.shape).toEqual([]);
    expect(a.data.length).toBe(1);
    expect((a.data as Float32Array)[0]).toBeCloseTo(700.000714, 3);
  });
});

describe('parseNpy on numpy-written bytes', () => {
  it('float64', () => {
    const a = parseNpy(bytes(NUMPY.f8));
    expect(a.dtype).toBe('<f8');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data as Float64Array)).toEqual([1.5, -2.25, 3e300, 0, -0, 1 / 3]);
  });
  it('int32', () => {
    const a = parseNpy(bytes(NUMPY.i4));
    expect(a.dtype).toBe('<i4');
    expect(a.shape).toEqual([4]);
    expect(Array.from(a.data as Int32Array)).toEqual([1, -2, 2147483647, -2147483648]);
  });
  it('int64', () => {
    const a = parseNpy(bytes(NUMPY.i8));
    expect(a.dtype).toBe('<i8');
    expect(Array.from(a.data as BigInt64Array)).toEqual([1n, -2n, 2n ** 62n, -(2n ** 63n)]);
  });
  it('format version 2.0', () => {
    const a = parseNpy(bytes(NUMPY.v2));
    expect(Array.from(a.data as Float32Array)).toEqual([0.5, 1.5, 2.5]);
  });
  it('0-d float32', () => {
    const a = parseNpy(bytes(NUMPY.scalar));
    expect(a.shape).toEqual([]);
    expect((a.data as Float32Array)[0]).toBe(Math.fround(700.00073));
  });
  it('refuses big-endian, Fortran order, unsupported dtypes, truncation and non-npy bytes with NpyFormatError', () => {
    expect(() => parseNpy(bytes(NUMPY.bigEndian), 'be.npy')).toThrow(/be\.npy: is big-endian/);
    expect(() => parseNpy(bytes(NUMPY.fortran), 'f.npy')).toThrow(/Fortran order/);
    expect(() => parseNpy(bytes(NUMPY.complex), 'c.npy')).toThrow(/dtype '<c8'; supported: '<f4'/);
    const full = bytes(NUMPY.f8);
    expect(() => parseNpy(full.subarray(0, full.length - 1), 't.npy')).toThrow(/truncated/);
    expect(() => parseNpy(new TextEncoder().encode('hello world, not numpy'), 'x.npy')).toThrow(NpyFormatError);
  });
  it('readNpy of a missing file names it', () => {
    expect(() => readNpy('/nonexistent/dir/a.npy')).toThrow(/\/nonexistent\/dir\/a\.npy: cannot be read \(ENOENT\)/);
  });
});

describe('encodeNpy / writeNpy', () => {
  it('writes exactly the bytes numpy writes', () => {
    expect(encodeNpy(Float32Array.of(0.5, 1.5, 2.5), [3])).toEqual(bytes(NUMPY.f4));
    expect(encodeNpy(Uint8Array.of(1, 2, 3, 255), [2, 2])).toEqual(bytes(NUMPY.u1));
    expect(encodeNpy(Float32Array.of(700.00073), [])).toEqual(bytes(NUMPY.scalar));
    expect(encodeNpy(Float64Array.of(1.5, -2.25, 3e300, 0, -0, 1 / 3), [2, 3])).toEqual(bytes(NUMPY.f8));
    expect(encodeNpy(Int32Array.of(1, -2, 2147483647, -2147483648), [4])).toEqual(bytes(NUMPY.i4));
    expect(encodeNpy(BigInt64Array.of(1n, -2n, 2n ** 62n, -(2n ** 63n)), [2, 2])).toEqual(bytes(NUMPY.i8));
  });

  it('round-trips through a file, with a subarray view as input', () => {
    const dir = tmp();
    const big = new Float32Array(1000).map((_, i) => Math.sin(i));
    const view = big.subarray(10, 10 + 2 * 3 * 5);
    writeNpy(join(dir, 'a.npy'), view, [2, 3, 5]);
    const back = readNpy(join(dir, 'a.npy'));
    expect(back.shape).toEqual([2, 3, 5]);
    expect(back.data).toEqual(view);
    expect(readdirSync(dir)).toEqual(['a.npy']); // no temp file left
    expect(readFileSync(join(dir, 'a.npy')).length % 64).toBe((2 * 3 * 5 * 4) % 64);
  });

  it('refuses a shape that does not match the data', () => {
    expect(() => encodeNpy(new Float32Array(6), [2, 2])).toThrow(/holds 4 values but the data has 6/);
  });

  it('fails cleanly when the directory does not exist, leaving nothing', () => {
    const dir = tmp();
    expect(() => writeNpy(join(dir, 'missing', 'a.npy'), new Float32Array(1), [1])).toThrow(NpyFormatError);
    expect(readdirSync(dir)).toEqual([]);
  });
});
