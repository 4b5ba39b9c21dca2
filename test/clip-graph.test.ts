/**
 * CLIP image encoder graph: against transformers' output for the tiny reference checkpoint, and against a
 * plain-JS forward pass for another config (quick_gelu, batch 2) built from random weights.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../src/errors.js';
import { buildClipImageEncoderGraph, clipImageEncoderWeights } from '../src/encoders/clipGraph.js';
import { parseClipVisionConfig } from '../src/encoders/clipConfig.js';
import { writeRandomCheckpoint } from '../src/onnx/randomWeights.js';
import { openCheckpoint, readTensorF32 } from '../src/safetensors/reader.js';
import { readNpy } from '../src/tensor/npy.js';
import { relativeError } from '../src/tensor/compare.js';
import * as ref from './onnx-ref.js';

const REF = join(import.meta.dirname, 'fixtures', 'reference');
const out = mkdtempSync(join(tmpdir(), 'svd-clip-graph-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 2 });
  try {
    return (await s.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await s.release();
  }
}

describe('CLIP image encoder graph (tiny reference checkpoint)', () => {
  it('pixel_values → image_embeds matches transformers', async () => {
    const info = buildClipImageEncoderGraph(join(REF, 'tiny-svd'), { outDir: out });
    expect(info.unusedWeights).toEqual([]);
    console.log(`image_encoder: ${info.nodeCount} nodes, ${info.weightBytes} weight bytes`);
    const x = readNpy(join(REF, 'out', 'clip_pixel_values.npy'));
    const r = await run(info.path, { pixel_values: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
    const want = readNpy(join(REF, 'out', 'image_embeds.npy'));
    expect(r.image_embeds.dims).toEqual(want.shape);
    const err = relativeError(r.image_embeds.data as Float32Array, want.data as Float32Array);
    console.log(`image_encoder relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  });
});

/** transformers' CLIPVisionModelWithProjection, written out in plain JS for a small config. */
function clipReference(
  pixels: ref.T,
  w: (n: string) => ref.T,
  c: { d: number; heads: number; layers: number; p: number; inter: number; eps: number },
): ref.T {
  const [b] = pixels.shape;
  const conv = ref.conv2d(pixels, w('vision_model.embeddings.patch_embedding.weight'), null, c.p, 0); // [B,d,g,g]
  const g2 = conv.shape[2] * conv.shape[3];
  const cls = w('vision_model.embeddings.class_embedding');
  const pos = w('vision_model.embeddings.position_embedding.weight');
  let x = ref.tensor([b, g2 + 1, c.d], (i) => {
    const e = i % c.d;
    const t = Math.floor(i / c.d) % (g2 + 1);
    const bi = Math.floor(i / (c.d * (g2 + 1)));
    const v = t === 0 ? cls.data[e] : conv.data[(bi * c.d + e) * g2 + (t - 1)];
    return v + pos.data[t * c.d + e];
  });
  const ln = (t: ref.T, name: string) => ref.layerNorm(t, c.eps, w(`${name}.weight`), w(`${name}.bias`));
  const lin = (t: ref.T, name: string, bias = true) =>
    ref.linear(t, w(`${name}.weight`), bias ? w(`${name}.bias`) : null);
  const plus = (a: ref.T, q: ref.T): ref.T => ({ data: a.data.map((v, i) => v + q.data[i]), shape: a.shape });
  x = ln(x, 'vision_model.pre_layrnorm');
  for (let l = 0; l < c.layers; l++) {
    const p = `vision_model.encoder.layers.${l}`;
    const h = ln(x, `${p}.layer_norm1`);
    const a = ref.attention(
      lin(h, `${p}.self_attn.q_proj`),
      lin(h, `${p}.self_attn.k_proj`),
      lin(h, `${p}.self_attn.v_proj`),
      c.heads,
      1 / Math.sqrt(c.d / c.heads),
    );
    x = plus(x, lin(a, `${p}.self_attn.out_proj`));
    const m = ref.map(lin(ln(x, `${p}.layer_norm2`), `${p}.mlp.fc1`), (v) => v / (1 + Math.exp(-1.702 * v))); // quick_gelu
    x = plus(x, lin(m, `${p}.mlp.fc2`));
  }
  const pooled = ref.tensor([b, c.d], (i) => x.data[Math.floor(i / c.d) * (g2 + 1) * c.d + (i % c.d)]);
  return lin(ln(pooled, 'vision_model.post_layernorm'), 'visual_projection', false);
}

describe('CLIP image encoder graph (another config, random weights)', () => {
  // no hidden_act: transformers' default quick_gelu applies
  const config = {
    hidden_size: 48,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 3,
    patch_size: 8,
    image_size: 32,
    projection_dim: 24,
    layer_norm_eps: 1e-5,
  };
  const dir = join(out, 'other', 'image_encoder');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeRandomCheckpoint(join(dir, 'model.safetensors'), clipImageEncoderWeights(config), 9);

  it('batch 2, quick_gelu: matches a plain-JS forward pass', async () => {
    const info = buildClipImageEncoderGraph(join(out, 'other'), { outDir: join(out, 'other-out') });
    expect(info.unusedWeights).toEqual([]);
    const r = ref.rng(3);
    const pixels = ref.tensor([2, 3, 32, 32], () => r());
    const res = await run(info.path, {
      pixel_values: new ort.Tensor('float32', Float32Array.from(pixels.data), pixels.shape),
    });
    expect(res.image_embeds.dims).toEqual([2, 24]);
    const ck = openCheckpoint(dir);
    const w = (n: string): ref.T => {
      const t = ck.tensors.get(n)!;
      return { data: Float64Array.from(readTensorF32(t)), shape: t.shape };
    };
    const want = clipReference(pixels, w, { d: 48, heads: 3, layers: 2, p: 8, inter: 40, eps: 1e-5 });
    const err = relativeError(res.image_embeds.data as Float32Array, want.data);
    expect(err).toBeLessThan(1e-5);
    // the two images give different embeddings (batch rows are not mixed up or broadcast)
    const e = res.image_embeds.data as Float32Array;
    expect(relativeError(e.subarray(0, 24), e.subarray(24))).toBeGreaterThan(0.01);
  });

  it('bad configs → ModelFormatError naming the key', () => {
    expect(() => parseClipVisionConfig({ ...config, num_attention_heads: 5 })).toThrow(ModelFormatError);
    expect(() => parseClipVisionConfig({ ...config, num_attention_heads: 5 })).toThrow(/num_attention_heads/);
    expect(() => parseClipVisionConfig({ ...config, hidden_act: 'mish' })).toThrow(/hidden_act/);
    expect(() => parseClipVisionConfig({ ...config, image_size: 30 })).toThrow(/patch_size/);
    expect(parseClipVisionConfig(config).hiddenAct).toBe('quick_gelu');
  });
});

describe('CLIP weight list for the real SVD image encoder config', () => {
  it('matches the analytic parameter count of docs/pipeline.md §7.7 (632,076,800)', () => {
    const config = {
      hidden_size: 1280,
      intermediate_size: 5120,
      num_hidden_layers: 32,
      num_attention_heads: 16,
      patch_size: 14,
      image_size: 224,
      projection_dim: 1024,
      hidden_act: 'gelu',
    };
    const ws = clipImageEncoderWeights(config);
    expect(ws.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0)).toBe(632_076_800);
  });
});
