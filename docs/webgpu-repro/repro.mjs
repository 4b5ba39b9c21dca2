#!/usr/bin/env node
// One-op reproduction: onnxruntime's WebGPU execution provider returns wrong values, without an error, when a
// tensor is larger than the device's maxStorageBufferBindingSize (128 MiB on Mesa lavapipe, WebGPU's default).
//
//   npm i onnxruntime-node@1.30.0          # its linux-x64 binary includes the WebGPU EP (Dawn, Vulkan)
//   node repro.mjs                         # writes softmax.onnx next to this file, runs it on CPU and WebGPU
//   node repro.mjs 16384 16385 32768       # row counts (default 16384 16385; 2048 float32 columns: 16384 rows = 128 MiB)
//
// The model is a single Softmax(axis=1) over X: float32 [N, 2048] (N dynamic). Only onnxruntime-node is needed.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ort = createRequire(import.meta.url)('onnxruntime-node');
const COLS = 2048;

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
const dimParam = (s) => bytes(1, str(2, s));
const dimValue = (n) => bytes(1, int(1, n));
const tensorType = (dims) => bytes(1, [...int(1, 1 /* FLOAT */), ...bytes(2, dims.flat())]);
const valueInfo = (name) => [...str(1, name), ...bytes(2, tensorType([dimParam('N'), dimValue(COLS)]))];
const axis = [...str(1, 'axis'), ...int(3, 1), ...int(20, 2 /* INT */)]; // the last axis of [N, 2048]
const node = [...str(1, 'X'), ...str(2, 'Y'), ...str(3, 'softmax'), ...str(4, 'Softmax'), ...bytes(5, axis)];
const graph = [
  ...bytes(1, node),
  ...str(2, 'softmax_repro'),
  ...bytes(11, valueInfo('X')),
  ...bytes(12, valueInfo('Y')),
];
const model = Uint8Array.from([
  ...int(1, 8),
  ...str(2, 'webgpu-binding-limit-repro'),
  ...bytes(7, graph),
  ...bytes(8, int(2, 13)),
]);
const path = join(dirname(fileURLToPath(import.meta.url)), 'softmax.onnx');
writeFileSync(path, model);

const cpu = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
const gpu = await ort.InferenceSession.create(path, { executionProviders: ['webgpu'] });
const rows = process.argv.slice(2).map(Number);
for (const n of rows.length ? rows : [16384, 16385]) {
  const x = new Float32Array(n * COLS);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    x[i] = (s / 2147483648) * 8 - 4;
  }
  const feeds = { X: new ort.Tensor('float32', x, [n, COLS]) };
  const a = (await cpu.run(feeds)).Y.data;
  const b = (await gpu.run(feeds)).Y.data;
  let num = 0,
    den = 0,
    max = 0,
    firstBadRow = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    num += d * d;
    den += a[i] * a[i];
    if (d > max) max = d;
    if (firstBadRow < 0 && d > 1e-5) firstBadRow = Math.floor(i / COLS);
  }
  const mib = (n * COLS * 4) / 2 ** 20;
  console.log(
    `Softmax [${n}, ${COLS}] float32 (${mib.toFixed(3)} MiB): relative error ${Math.sqrt(num / den).toExponential(2)}, max abs ${max.toExponential(2)}, first differing row ${firstBadRow}`,
  );
}
