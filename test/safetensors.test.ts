/** Safetensors reader/writer: dtypes, header layout, sharded checkpoints, variants, truncated/corrupt files. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../src/errors.js';
import {
  bfloat16ToFloat,
  openCheckpoint,
  preferredWeightVariant,
  readSafetensorsHeader,
  readTensorBytes,
  readTensorF32,
  weightFileVariant,
  writeSafetensors,
} from '../src/safetensors/index.js';
import { halfBitsToNumber, numberToHalfBits } from '../src/tensor/float16.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('safetensors writer + reader', () => {
  const file = join(dir, 'a.safetensors');
  const f32 = Float32Array.from([1.5, -2.25, 3e-3, 65504, 1e-8, 0]);
  writeSafetensors(
    file,
    {
      w32: { dtype: 'F32', shape: [2, 3], data: f32 },
      w16: { dtype: 'F16', shape: [6], data: f32 },
      wbf: { dtype: 'BF16', shape: [3, 2], data: f32 },
      ids: { dtype: 'I64', shape: [3], data: BigInt64Array.from([0n, -1n, 1n << 40n]) },
    },
    { format: 'pt' },
  );

  it('writes the documented layout: u64 LE header length (multiple of 8), JSON header, data', () => {
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header.w32).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.w16.data_offsets).toEqual([24, 36]);
    // the F32 values sit right after the header
    expect(bytes.readFloatLE(8 + n + 4)).toBe(-2.25);
    expect(bytes.length).toBe(8 + n + 24 + 12 + 12 + 24);
  });

  it('reads dtype, shape, absolute offset and values for F32/F16/BF16/I64', () => {
    const ck = readSafetensorsHeader(file);
    expect(ck.metadata).toEqual({ format: 'pt' });
    const n = Number(readFileSync(file).readBigUInt64LE(0));
    const w32 = ck.tensors.get('w32')!;
    expect(w32).toMatchObject({ dtype: 'F32', shape: [2, 3], offset: 8 + n, byteLength: 24 });
    expect(Array.from(readTensorF32(w32))).toEqual(Array.from(f32));
    const w16 = readTensorF32(ck.tensors.get('w16')!);
    expect(w16[0]).toBe(1.5);
    expect(w16[3]).toBe(65504);
    expect(Math.abs(w16[2] - 3e-3)).toBeLessThan(3e-3 * 2 ** -11);
    const bf = readTensorF32(ck.tensors.get('wbf')!);
    expect(bf[1]).toBe(-2.25);
    expect(Math.abs(bf[2] - 3e-3)).toBeLessThan(3e-3 * 2 ** -8);
    const ids = readTensorBytes(ck.tensors.get('ids')!);
    expect(Array.from(new BigInt64Array(ids.buffer, ids.byteOffset, 3))).toEqual([0n, -1n, 1n << 40n]);
    expect(Array.from(readTensorF32(ck.tensors.get('ids')!))).toEqual([0, -1, 2 ** 40]);
  });

  it('half/bfloat16 conversions round to nearest even and handle subnormals and overflow', () => {
    expect(numberToHalfBits(1)).toBe(0x3c00);
    expect(numberToHalfBits(-2)).toBe(0xc000);
    expect(numberToHalfBits(65520)).toBe(0x7c00); // rounds up to infinity, as torch does
    expect(halfBitsToNumber(numberToHalfBits(2 ** -24))).toBe(2 ** -24); // smallest subnormal
    expect(halfBitsToNumber(numberToHalfBits(2 ** -26))).toBe(0);
    expect(numberToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(numberToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(bfloat16ToFloat(0x3f80)).toBe(1);
  });

  it('a truncated file → CheckpointError naming the file and the tensor', () => {
    const t = join(dir, 'truncated.safetensors');
    writeFileSync(t, readFileSync(file));
    truncateSync(t, readFileSync(file).length - 5);
    let err: unknown;
    try {
      readSafetensorsHeader(t);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).path).toBe(t);
    expect((err as Error).message).toContain('truncated');
    expect((err as Error).message).toContain('ids');
  });

  it('a corrupt header (bad length, bad JSON, a file shorter than 8 bytes) → CheckpointError naming the file', () => {
    const bad = join(dir, 'bad.safetensors');
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(1000n);
    writeFileSync(bad, b);
    expect(() => readSafetensorsHeader(bad)).toThrow(CheckpointError);
    expect(() => readSafetensorsHeader(bad)).toThrow(bad);
    const b2 = Buffer.concat([Buffer.alloc(8), Buffer.from('{not json')]);
    b2.writeBigUInt64LE(9n);
    writeFileSync(bad, b2);
    expect(() => readSafetensorsHeader(bad)).toThrow(/not valid JSON/);
    writeFileSync(bad, Buffer.alloc(3));
    expect(() => readSafetensorsHeader(bad)).toThrow(/only 3 bytes/);
    expect(() => readSafetensorsHeader(join(dir, 'nope.safetensors'))).toThrow(CheckpointError);
  });

  it('reads a sharded checkpoint through its index, and picks files in a component directory', () => {
    const comp = join(dir, 'unet');
    mkdirSync(comp);
    const one = Float32Array.from({ length: 300 }, (_, i) => i);
    writeSafetensors(join(comp, 'diffusion_pytorch_model-00001-of-00002.safetensors'), {
      a: { dtype: 'F32', shape: [300], data: one },
    });
    writeSafetensors(join(comp, 'diffusion_pytorch_model-00002-of-00002.safetensors'), {
      b: { dtype: 'F16', shape: [2], data: Float32Array.from([1, 2]) },
    });
    writeFileSync(
      join(comp, 'diffusion_pytorch_model.safetensors.index.json'),
      JSON.stringify({
        metadata: {},
        weight_map: {
          a: 'diffusion_pytorch_model-00001-of-00002.safetensors',
          b: 'diffusion_pytorch_model-00002-of-00002.safetensors',
        },
      }),
    );
    writeSafetensors(join(comp, 'diffusion_pytorch_model.fp16.safetensors'), {
      a: { dtype: 'F16', shape: [300], data: one },
    });
    const ck = openCheckpoint(comp);
    expect(ck.files).toHaveLength(2);
    expect(ck.tensors.get('a')!.file).toContain('00001-of-00002');
    expect(readTensorF32(ck.tensors.get('a')!)[299]).toBe(299);
    expect(Array.from(readTensorF32(ck.tensors.get('b')!))).toEqual([1, 2]);
    const fp16 = openCheckpoint(comp, { variant: 'fp16' });
    expect(fp16.tensors.get('a')!.dtype).toBe('F16');
    expect(() => openCheckpoint(comp, { variant: 'bf16' })).toThrow(/bf16/);

    // an index that names a tensor its shard does not hold
    writeFileSync(
      join(comp, 'diffusion_pytorch_model.safetensors.index.json'),
      JSON.stringify({
        weight_map: {
          a: 'diffusion_pytorch_model-00002-of-00002.safetensors',
          b: 'diffusion_pytorch_model-00002-of-00002.safetensors',
        },
      }),
    );
    expect(() => openCheckpoint(comp)).toThrow(/a: listed in the index/);
  });
});

describe('variant file naming', () => {
  it('finds diffusers-style sharded variant indexes (<stem>.safetensors.index.fp16.json) and keeps them apart from plain ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'svd-variant-'));
    try {
      writeSafetensors(join(dir, 'diffusion_pytorch_model-00001-of-00001.fp16.safetensors'), {
        a: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0x4000]) },
      });
      writeFileSync(
        join(dir, 'diffusion_pytorch_model.safetensors.index.fp16.json'),
        JSON.stringify({ weight_map: { a: 'diffusion_pytorch_model-00001-of-00001.fp16.safetensors' } }),
      );
      writeSafetensors(join(dir, 'diffusion_pytorch_model.safetensors'), {
        b: { dtype: 'F32', shape: [1], data: new Float32Array([1]) },
      });
      expect([...openCheckpoint(dir, { variant: 'fp16' }).tensors.keys()]).toEqual(['a']);
      expect([...openCheckpoint(dir).tensors.keys()]).toEqual(['b']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the variant of a weight file one way for every reader (single, sharded index, plain, not a weight file)', () => {
    expect(weightFileVariant('diffusion_pytorch_model.fp16.safetensors')).toBe('fp16');
    expect(weightFileVariant('diffusion_pytorch_model.safetensors.index.fp16.json')).toBe('fp16');
    expect(weightFileVariant('model.safetensors')).toBeNull();
    expect(weightFileVariant('diffusion_pytorch_model.safetensors.index.json')).toBeNull();
    expect(weightFileVariant('config.json')).toBeUndefined();
  });

  it('reads fp16 files for float16 builds, and for any build when a component has no plain files', () => {
    const root = mkdtempSync(join(tmpdir(), 'svd-variant-'));
    const component = (name: string, files: string[]) => {
      mkdirSync(join(root, name), { recursive: true });
      for (const f of files) writeFileSync(join(root, name, f), '');
      return join(root, name);
    };
    try {
      const both = component('both', [
        'diffusion_pytorch_model.safetensors',
        'diffusion_pytorch_model.fp16.safetensors',
      ]);
      const fp16Only = component('fp16', ['diffusion_pytorch_model.safetensors.index.fp16.json']);
      const plainOnly = component('plain', ['model.safetensors']);
      expect(preferredWeightVariant([both], 'float16')).toBe('fp16');
      expect(preferredWeightVariant([both], 'float32')).toBeUndefined();
      expect(preferredWeightVariant([both, fp16Only], 'float32')).toBe('fp16');
      expect(preferredWeightVariant([both, plainOnly], 'float16')).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
