#!/usr/bin/env node
// One-op reproduction: onnxruntime's WebGPU execution provider computes a float16 MatMul with an error that grows
// with the reduction length K (as f16 accumulation would), where the CPU provider rounds only the result.
//
//   npm i onnxruntime-node@1.30.0
//   node matmul-f16.mjs                    # writes matmul-f16.onnx next to this file; K = 32 320 2048 5120
//   node matmul-f16.mjs 64 11520           # other reduction lengths
//
// The model is a single MatMul of A: float16 [256, K] by B: float16 [K, 320]. A ~ N(0, 1), B ~ N(0, 1/K), so every
// output is ~N(0, 1): nothing near the float16 range. Both providers get the same float16 inputs; the reference is
// the float64 product of those same values. Only onnxruntime-node is needed.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ort = createRequire(import.meta.url)('onnxruntime-node');
const [M, N] = [256, 320];

// --- the ONNX file, as raw protobuf (ModelProto, IR 8, opset 13) ---
const varint = (n) => {
  const o = [];
  while (n >= 0x80) {
    o.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  o.push(n);
  return o;
};
const key = (field, wire) => varint(field * 8 + wire);
const int = (field, n) => [...key(field, 0), ...varint(n)];
const bytes = (field, b) => [...key(field, 2), ...varint(b.length), ...b];
const str = (field, s) => bytes(field, [...Buffer.from(s, 'utf8')]);
const dim = (s) => bytes(1, str(2, s));
const f16Type = (dims) => bytes(1, [...int(1, 10 /* FLOAT16 */), ...bytes(2, dims.flat())]);
const valueInfo = (name, dims) => [...str(1, name), ...bytes(2, f16Type(dims.map(dim)))];
const node = [...str(1, 'A'), ...str(1, 'B'), ...str(2, 'Y'), ...str(3, 'matmul'), ...str(4, 'MatMul')];
const graph = [
  ...bytes(1, node),
  ...str(2, 'matmul_f16_repro'),
  ...bytes(11, valueInfo('A', ['M', 'K'])),
  ...bytes(11, valueInfo('B', ['K', 'N'])),
  ...bytes(12, valueInfo('Y', ['M', 'N'])),
];
const model = Uint8Array.from([
  ...int(1, 8),
  ...str(2, 'webgpu-f16-repro'),
  ...bytes(7, graph),
  ...bytes(8, int(2, 13)),
]);
const path = join(dirname(fileURLToPath(import.meta.url)), 'matmul-f16.onnx');
writeFileSync(path, model);

// float32 → float16 bits (round to nearest even; the values here are normal numbers) and back
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const toHalf = (v) => {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign; // tiny: flush to zero (does not occur at these scales)
  const mant = x & 0x7fffff;
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return h;
};
const fromHalf = (h) => {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
};
let seed = 12345;
const normal = () => {
  const u = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return (seed + 1) / 2147483649;
  };
  return Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
};

const cpu = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
const gpu = await ort.InferenceSession.create(path, { executionProviders: ['webgpu'] });
const ks = process.argv.slice(2).map(Number);
for (const K of ks.length ? ks : [32, 320, 2048, 5120]) {
  const a = Uint16Array.from({ length: M * K }, () => toHalf(normal()));
  const b = Uint16Array.from({ length: K * N }, () => toHalf(normal() / Math.sqrt(K)));
  const ref = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const x = fromHalf(a[i * K + k]);
      for (let j = 0; j < N; j++) ref[i * N + j] += x * fromHalf(b[k * N + j]);
    }
  const feeds = { A: new ort.Tensor('float16', a, [M, K]), B: new ort.Tensor('float16', b, [K, N]) };
  const err = (y) => {
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = fromHalf(y[i]) - ref[i];
      num += d * d;
      den += ref[i] * ref[i];
    }
    return Math.sqrt(num / den).toExponential(2);
  };
  const c = (await cpu.run(feeds)).Y.data;
  const g = (await gpu.run(feeds)).Y.data;
  console.log(`MatMul float16 [${M}, ${K}] x [${K}, ${N}]: relative error CPU ${err(c)}, WebGPU ${err(g)}`);
}
