/**
 * The graph DSL's `rearrange` (einops patterns, as sgm writes them): every pattern the model builders use, run
 * in onnxruntime against a plain-JS rearrange, and the nodes each one emits (no more than hand-written code).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointWeights, GraphBuilder, saveGraph } from '../src/onnx/index.js';
import { parsePattern, rearrange, shapeOf, type AxisSize } from '../src/onnx/layers/index.js';
import { writeSafetensors } from '../src/safetensors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-rearrange-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ckpt = join(dir, 'none.safetensors');
writeSafetensors(ckpt, { unused: { dtype: 'F32', shape: [1], data: new Float32Array([0]) } });

/** einops.rearrange in plain JS: the reference. */
function jsRearrange(
  data: Float32Array,
  shape: number[],
  pattern: string,
  sizes: Record<string, number>,
): { data: Float32Array; shape: number[] } {
  const { left, right } = parsePattern(pattern);
  const size: Record<string, number> = { ...sizes };
  left.forEach((group, i) => {
    const known = group.filter((a) => size[a] !== undefined).reduce((p, a) => p * size[a], 1);
    const unknown = group.filter((a) => size[a] === undefined);
    if (unknown.length === 1) size[unknown[0]] = shape[i] / known;
  });
  const axes = left.flat();
  const strides = new Map<string, number>();
  let stride = 1;
  for (const a of [...axes].reverse()) {
    strides.set(a, stride);
    stride *= size[a];
  }
  const outAxes = right.flat();
  const out = new Float32Array(data.length);
  const index = outAxes.map(() => 0);
  for (let o = 0; o < out.length; o++) {
    out[o] = data[outAxes.reduce((s, a, k) => s + index[k] * strides.get(a)!, 0)];
    for (let k = outAxes.length - 1; k >= 0; k--) {
      if (++index[k] < size[outAxes[k]]) break;
      index[k] = 0;
    }
  }
  return { data: out, shape: right.map((group) => group.reduce((p, a) => p * size[a], 1)) };
}

interface Case {
  pattern: string;
  shape: number[];
  /** Sizes given as literals; `fromInput` ones are given to the graph as Values (Shape of a second input). */
  sizes: Record<string, number>;
  asValues?: string[];
  /** The ops the graph should use. */
  ops: string[];
}

const CASES: Case[] = [
  {
    pattern: '(b f) c h w -> b c f h w',
    shape: [6, 4, 2, 3],
    sizes: { f: 3, c: 4 },
    asValues: ['f'],
    ops: ['Reshape', 'Transpose'],
  },
  { pattern: 'b c f h w -> (b f) c h w', shape: [2, 4, 3, 2, 3], sizes: { c: 4 }, ops: ['Transpose', 'Reshape'] },
  { pattern: 'n c h w -> n (h w) c', shape: [2, 4, 3, 5], sizes: {}, ops: ['Reshape', 'Transpose'] },
  {
    pattern: 'n (h w) c -> n c h w',
    shape: [2, 15, 4],
    sizes: { h: 3, w: 5 },
    asValues: ['h', 'w'],
    ops: ['Transpose', 'Reshape'],
  },
  { pattern: '(b f) s c -> b f s c', shape: [6, 5, 4], sizes: { f: 3 }, asValues: ['f'], ops: ['Reshape'] },
  { pattern: 'b s f d -> (b s) f d', shape: [2, 5, 3, 4], sizes: {}, ops: ['Reshape'] },
  {
    pattern: '(b f) c h w -> b f c h w',
    shape: [6, 2, 3, 2],
    sizes: { b: 2, f: 3 },
    asValues: ['b', 'f'],
    ops: ['Reshape'],
  },
  { pattern: '(b n) d -> b (n d)', shape: [6, 4], sizes: { b: 2 }, asValues: ['b'], ops: ['Reshape'] },
  { pattern: 'b s (h d) -> b h s d', shape: [2, 5, 12], sizes: { h: 3, d: 4 }, ops: ['Reshape', 'Transpose'] },
  { pattern: 'b h s d -> b s (h d)', shape: [2, 3, 5, 4], sizes: {}, ops: ['Transpose', 'Reshape'] },
  { pattern: 'b s (h d) -> b h d s', shape: [2, 5, 12], sizes: { h: 3, d: 4 }, ops: ['Reshape', 'Transpose'] },
  { pattern: '(n s) o x -> n s o x', shape: [6, 1, 4], sizes: { s: 3 }, asValues: ['s'], ops: ['Reshape'] },
];

describe('rearrange', () => {
  it.each(CASES)('$pattern matches einops and uses $ops', async ({ pattern, shape, sizes, asValues = [], ops }) => {
    const g = new GraphBuilder({ name: 'rearrange', dtype: 'float32', weights: checkpointWeights(ckpt) });
    const x = g.input(
      'x',
      shape.map((_, i) => `d${i}`),
    );
    // sizes known only at run time arrive as Shape slices of a second input, as in the model graphs
    const carrier = g.input(
      'sizes',
      asValues.map((a) => `s_${a}`),
    );
    const given: Record<string, AxisSize> = {};
    for (const [a, n] of Object.entries(sizes))
      given[a] = asValues.includes(a) ? shapeOf(g, carrier, asValues.indexOf(a), asValues.indexOf(a) + 1) : n;
    const before = g.nodes.length;
    const y = rearrange(g, x, pattern, given);
    const used = g.nodes
      .slice(before)
      .map((n) => n.opType)
      .filter((op) => op === 'Reshape' || op === 'Transpose');
    expect(used).toEqual(ops);
    g.output(
      y,
      'y',
      parsePattern(pattern).right.map((_, i) => `o${i}`),
    );
    const info = saveGraph(g, join(dir, pattern.replace(/\W+/g, '_')), 'g.onnx');
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i);
    const session = await ort.InferenceSession.create(info.path);
    try {
      const out = await session.run({
        x: new ort.Tensor('float32', data, shape),
        sizes: new ort.Tensor(
          'float32',
          new Float32Array(asValues.reduce((p, a) => p * sizes[a], 1)),
          asValues.map((a) => sizes[a]),
        ),
      });
      const want = jsRearrange(data, shape, pattern, sizes);
      expect(out.y.dims).toEqual(want.shape);
      expect(Array.from(out.y.data as Float32Array)).toEqual(Array.from(want.data));
    } finally {
      await session.release();
    }
  });

  it('refuses a malformed pattern and sizes it cannot know, at build time', () => {
    const g = new GraphBuilder({ name: 'bad', dtype: 'float32', weights: checkpointWeights(ckpt) });
    const x = g.input('x', ['a', 'b']);
    expect(() => rearrange(g, x, 'a b', {})).toThrow(/exactly one "->"/);
    expect(() => rearrange(g, x, 'a b -> a c', {})).toThrow(/same axes/);
    expect(() => rearrange(g, x, '(a b) (c d) -> a b c d', {})).toThrow(/needs more sizes/);
  });
});
