/**
 * Build-time weight conversion (`weightStorage: 'convert'`, src/safetensors/convert.ts): every half and
 * bfloat16 widens to exactly its float32 value, narrowing rounds like tensor/float16.ts, a tensor streamed in
 * small pieces equals the one-shot conversion, and a float32 graph over an fp16 checkpoint stores in its
 * `.data` file (aligned offsets, no Cast node) exactly the widened checkpoint values.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointKey } from '../src/models/resolve.js';
import {
  checkpointWeights,
  DATA_ALIGNMENT,
  defaultWeightStorage,
  dryWeights,
  GraphBuilder,
  saveGraph,
} from '../src/onnx/index.js';
import { conv2d, linear } from '../src/onnx/layers/index.js';
import { readGraph } from '../src/onnx/read.js';
import { convertElements, convertTensorStreaming } from '../src/safetensors/convert.js';
import { bfloat16ToFloat, openCheckpoint, writeSafetensors } from '../src/safetensors/index.js';
import { halfBitsToNumber, numberToHalfBits } from '../src/tensor/float16.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-weight-convert-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const allHalves = (): Uint16Array => Uint16Array.from({ length: 65536 }, (_, i) => i);
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const transpose = (m: Float32Array, rows: number, cols: number): Float32Array =>
  Float32Array.from({ length: rows * cols }, (_, i) => m[(i % rows) * cols + Math.floor(i / rows)]);
const asFloat32 = (b: Uint8Array): Float32Array => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);

describe('convertElements', () => {
  it('widens every float16 bit pattern to its exact float32 value (NaN stays NaN)', () => {
    const out = asFloat32(convertElements(bytesOf(allHalves()), 'F16', 'float32'));
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      const want = halfBitsToNumber(h);
      if (Number.isNaN(want) ? !Number.isNaN(out[h]) : !Object.is(out[h], want)) mismatches++;
    }
    expect(mismatches).toBe(0);
    expect(out[0x3c00]).toBe(1);
    expect(Object.is(out[0x8000], -0)).toBe(true);
    expect(out[0x0001]).toBe(2 ** -24); // smallest subnormal
  });

  it('widens every bfloat16 bit pattern to its exact float32 value', () => {
    const out = asFloat32(convertElements(bytesOf(allHalves()), 'BF16', 'float32'));
    let mismatches = 0;
    for (let b = 0; b < 65536; b++) {
      const want = bfloat16ToFloat(b);
      if (Number.isNaN(want) ? !Number.isNaN(out[b]) : !Object.is(out[b], want)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('narrows float32 and float64 to float16 like numberToHalfBits (nearest, ties to even)', () => {
    const values = [0, -0, 1, -2.5, 65504, 65520, 1e6, -Infinity, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 0.1];
    const want = values.map(numberToHalfBits);
    const f32 = convertElements(bytesOf(Float32Array.from(values)), 'F32', 'float16');
    expect(Array.from(new Uint16Array(f32.buffer, f32.byteOffset, values.length))).toEqual(want);
    const f64 = convertElements(bytesOf(Float64Array.from(values)), 'F64', 'float16');
    expect(Array.from(new Uint16Array(f64.buffer, f64.byteOffset, values.length))).toEqual(want);
    const nan = convertElements(bytesOf(Float32Array.of(Number.NaN)), 'F32', 'float16');
    expect(halfBitsToNumber(new Uint16Array(nan.buffer, nan.byteOffset, 1)[0])).toBeNaN();
  });

  it('rounds float64 to float32 and copies float32 unchanged', () => {
    const values = [0.1, 1 / 3, -1e-40, 3.4e38];
    expect(Array.from(asFloat32(convertElements(bytesOf(Float64Array.from(values)), 'F64', 'float32')))).toEqual(
      Array.from(Float32Array.from(values)),
    );
    const f32 = Float32Array.from(values);
    expect(Array.from(asFloat32(convertElements(bytesOf(f32), 'F32', 'float32')))).toEqual(Array.from(f32));
  });

  it('takes the byte-order independent path for a misaligned view and gives the same bytes', () => {
    const halves = Uint16Array.from({ length: 300 }, (_, i) => (i * 2654435761) & 0xffff);
    const shifted = new Uint8Array(halves.byteLength + 1);
    shifted.set(bytesOf(halves), 1);
    const misaligned = shifted.subarray(1);
    expect(misaligned.byteOffset % 2).toBe(1);
    expect(convertElements(misaligned, 'F16', 'float32')).toEqual(convertElements(bytesOf(halves), 'F16', 'float32'));
  });
});

describe('convertTensorStreaming', () => {
  it('streams a tensor in pieces that add up to the one-shot conversion', () => {
    const path = join(dir, 'stream.safetensors');
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    writeSafetensors(path, {
      a: { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2, 3) },
      w: { dtype: 'F16', shape: [10, 100], data: values },
    });
    const info = openCheckpoint(path).tensors.get('w')!;
    const pieces: Uint8Array[] = [];
    const written = convertTensorStreaming(info, 'float32', (p) => pieces.push(p.slice()), 64);
    expect(written).toBe(4000);
    expect(pieces.map((p) => p.byteLength)).toEqual([...Array(15).fill(256), 1000 * 4 - 15 * 256]);
    const whole = new Uint8Array(Buffer.concat(pieces));
    const raw = readFileSync(path).subarray(info.offset, info.offset + info.byteLength);
    expect(whole).toEqual(convertElements(new Uint8Array(raw), 'F16', 'float32'));
  });
});

describe("saveGraph with weightStorage 'convert'", () => {
  it('a float32 graph over an fp16 checkpoint stores the exact widened values, aligned, transposed for MatMul, with no Cast or Transpose', async () => {
    const ckpt = join(dir, 'fp16', 'model.safetensors');
    mkdirSync(join(dir, 'fp16'), { recursive: true });
    const weight = Float32Array.from({ length: 48 * 40 }, (_, i) => Math.cos(i * 0.7) * 0.5);
    const bias = Float32Array.from({ length: 48 }, (_, i) => i / 7 - 3);
    writeSafetensors(ckpt, {
      'proj.weight': { dtype: 'F16', shape: [48, 40], data: weight },
      'proj.bias': { dtype: 'F16', shape: [48], data: bias },
    });
    const g = new GraphBuilder({
      name: 'widen',
      dtype: 'float32',
      weights: checkpointWeights(ckpt),
      weightStorage: 'convert',
    });
    const x = g.input('x', [2, 40]);
    g.output(linear(g, x, 'proj', 40, 48), 'y', [2, 48]);
    const info = saveGraph(g, join(dir, 'fp16', 'out'), 'widen.onnx');
    expect(info.opCounts.Cast ?? 0).toBe(0);
    expect(info.opCounts.Transpose ?? 0).toBe(0);
    expect(info.weightFiles).toEqual([]);

    const source = openCheckpoint(ckpt);
    const data = readFileSync(`${info.path}.data`);
    const stored = readGraph(info.path).initializers.filter((t) => t.external);
    // converted weights all go to the .data file, however small
    expect(stored.map((t) => t.name).sort()).toEqual(['proj.bias', 'proj.weight']);
    for (const t of stored) {
      expect(t.dtype).toBe('float32');
      expect(t.external!.location).toBe('widen.onnx.data');
      expect(t.external!.offset % DATA_ALIGNMENT).toBe(0);
      const src = source.tensors.get(t.name)!;
      const raw = readFileSync(ckpt).subarray(src.offset, src.offset + src.byteLength);
      const widened = Float32Array.from(new Uint16Array(new Uint8Array(raw).buffer), halfBitsToNumber);
      // MatMul takes the [out, in] linear weight as [in, out]: stored transposed
      const want = t.name === 'proj.weight' ? transpose(widened, 48, 40) : widened;
      expect(t.dims).toEqual(t.name === 'proj.weight' ? [40, 48] : [48]);
      const { offset, length } = t.external!;
      const got = new Float32Array(new Uint8Array(data.subarray(offset, offset + length)).buffer);
      expect(got).toEqual(want);
    }

    const session = await ort.InferenceSession.create(info.path);
    const input = Float32Array.from({ length: 80 }, (_, i) => (i % 9) - 4);
    const out = (await session.run({ x: new ort.Tensor('float32', input, [2, 40]) })).y.data as Float32Array;
    await session.release();
    const w16 = Float32Array.from(weight, (v) => halfBitsToNumber(numberToHalfBits(v)));
    const b16 = Float32Array.from(bias, (v) => halfBitsToNumber(numberToHalfBits(v)));
    for (let n = 0; n < 2; n++)
      for (let o = 0; o < 48; o++) {
        let acc = b16[o];
        for (let i = 0; i < 40; i++) acc += input[n * 40 + i] * w16[o * 40 + i];
        expect(out[n * 48 + o]).toBeCloseTo(acc, 4);
      }
  });
});

describe('weight storage by target', () => {
  /** Linear + conv over an fp32 checkpoint, built with `storage`; returns the build and its output on `x`. */
  async function buildAndRun(storage: 'reference' | 'convert', sub: string) {
    const ckpt = join(dir, 'fp32', 'model.safetensors');
    mkdirSync(join(dir, 'fp32'), { recursive: true });
    const r = (i: number) => Math.sin(i * 1.3) * 0.4;
    writeSafetensors(ckpt, {
      'proj.weight': { dtype: 'F32', shape: [32, 24], data: Float32Array.from({ length: 32 * 24 }, (_, i) => r(i)) },
      'proj.bias': { dtype: 'F32', shape: [32], data: Float32Array.from({ length: 32 }, (_, i) => r(i + 7)) },
      'conv.weight': {
        dtype: 'F32',
        shape: [16, 8, 3, 3],
        data: Float32Array.from({ length: 1152 }, (_, i) => r(i + 3)),
      },
    });
    const g = new GraphBuilder({
      name: 'mixed',
      dtype: 'float32',
      weights: checkpointWeights(ckpt),
      weightStorage: storage,
    });
    const x = g.input('x', [3, 24]);
    const y = linear(g, x, 'proj', 24, 32);
    g.output(y, 'y', [3, 32]);
    // the same weight asked for both ways: stored once
    g.output(g.weight('proj.weight', [32, 24]), 'w', [32, 24]);
    const img = g.input('img', [1, 8, 5, 5]);
    g.output(conv2d(g, img, 'conv', { inChannels: 8, outChannels: 16, kernel: 3, bias: false }), 'c', [1, 16, 5, 5]);
    const info = saveGraph(g, join(dir, 'fp32', sub), 'mixed.onnx');
    const session = await ort.InferenceSession.create(info.path);
    const out = await session.run({
      x: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 72 }, (_, i) => (i % 5) - 2),
        [3, 24],
      ),
      img: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 200 }, (_, i) => (i % 7) - 3),
        [1, 8, 5, 5],
      ),
    });
    await session.release();
    return { info, out };
  }

  it("'convert' over an fp32 checkpoint: the MatMul weight transposed into .data, the conv referenced in place", async () => {
    const convert = await buildAndRun('convert', 'convert');
    const reference = await buildAndRun('reference', 'reference');
    expect(reference.info.dataBytes).toBe(0);
    expect(reference.info.opCounts.Transpose).toBe(1);
    expect(convert.info.dataBytes).toBe(32 * 24 * 4);
    expect(convert.info.opCounts.Transpose).toBe(1); // only for the plain request of the weight
    expect(convert.info.weightFiles).toHaveLength(1); // the conv weight stays in the checkpoint
    const stored = readGraph(convert.info.path).initializers.find((t) => t.name === 'proj.weight')!;
    expect(stored.dims).toEqual([24, 32]);
    for (const name of ['y', 'w', 'c'])
      expect(Array.from(convert.out[name].data as Float32Array)).toEqual(
        Array.from(reference.out[name].data as Float32Array),
      );
  });

  it('graphs convert by default on every target; the build cache key changes with the storage', () => {
    expect(defaultWeightStorage('cpu')).toBe('convert');
    expect(defaultWeightStorage('cuda')).toBe('convert');
    expect(defaultWeightStorage('webgpu')).toBe('convert');
    expect(new GraphBuilder({ name: 'd', dtype: 'float32', weights: dryWeights() }).weightStorage).toBe('convert');
    const ckpt = 'models/tiny-svd';
    const key = (weightStorage: 'reference' | 'convert') =>
      checkpointKey(ckpt, { dtype: 'float32', target: 'cpu', weightStorage });
    expect(key('convert')).not.toBe(key('reference'));
    expect(key('convert')).toBe(key('convert'));
  });
});
