/**
 * Which tensors of the full-size graphs (webgpu target) are larger than a WebGPU binding limit at a given size,
 * with the CFG batch joint and split: the numbers behind docs/webgpu.md "What still does not fit". Static sizing
 * only (src/onnx/tensorSizes.ts on graphs defined without weights); no GPU, no checkpoint, a few seconds.
 *
 *   npx tsx scripts/webgpu-sizes.ts [--model svd-xt] [--size 1024x576x25] [--dtype float16] [--limit-mib 128]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultAttention } from '../src/onnx/build.js';
import { GraphBuilder } from '../src/onnx/graph.js';
import type { DType, GraphDef } from '../src/onnx/model.js';
import { tensorSizes, type TensorSize } from '../src/onnx/tensorSizes.js';
import { dryWeights } from '../src/onnx/weights.js';
import { readDiffusersConfigs } from '../src/models/diffusersConfig.js';
import { packageRoot } from '../src/models/paths.js';
import { defineUnetGraph } from '../src/unet/build.js';
import { parseUnetConfig } from '../src/unet/config.js';
import { parseVaeConfig } from '../src/vae/config.js';
import { defineVaeDecoder } from '../src/vae/decoderGraph.js';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'svd-xt' },
    size: { type: 'string', default: '1024x576x25' },
    dtype: { type: 'string', default: 'float16' },
    'limit-mib': { type: 'string', default: '128' },
    groups: { type: 'string', default: '12' },
  },
});
const [width, height, frames] = o.size.split('x').map(Number);
const dtype = o.dtype as 'float16' | 'float32';
const limit = Number(o['limit-mib']) * 2 ** 20;
const configs = readDiffusersConfigs(join(packageRoot(), 'models', 'configs', o.model));
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** A GraphDef of a graph defined on dry weights: every requested weight becomes an initializer of its shape. */
function dryGraph(g: GraphBuilder): GraphDef {
  const weights = g.requests.map((r) => ({ name: r.name, dtype: g.dtype as DType, dims: r.shape }));
  const data = g.dataInitializers.map((d) => d.tensor);
  return {
    name: g.name,
    nodes: g.nodes,
    initializers: [...g.inlineInitializers, ...data, ...weights],
    inputs: g.inputs,
    outputs: g.outputs,
  };
}

/** The tensors over the limit, grouped by op and shape (the same layer kind repeats per block). */
function report(label: string, graph: GraphDef, dims: Record<string, number[]>): void {
  const r = tensorSizes(graph, dims);
  const over = r.tensors.filter((t) => t.bytes > limit);
  const groups = new Map<string, { t: TensorSize; n: number }>();
  for (const t of over) {
    const key = `${t.op} [${t.shape.join(',')}] ${t.dtype}`;
    const g = groups.get(key);
    if (g) g.n++;
    else groups.set(key, { t, n: 1 });
  }
  console.log(
    `\n${label}: ${over.length} tensors over ${MiB(limit)} (largest ${MiB(r.tensors[0].bytes)}; ` +
      `${r.unknown.length} unsized)`,
  );
  const shown = [...groups].slice(0, Number(o.groups));
  for (const [key, { t, n }] of shown) console.log(`  ${n}× ${key} = ${MiB(t.bytes)}  e.g. ${t.name}`);
  if (groups.size > shown.length) console.log(`  … ${groups.size - shown.length} more kinds`);
}

/** The largest width×height (multiples of 64 px, this aspect ratio) whose tensors all fit the limit. */
function largestFitting(graph: GraphDef, dimsAt: (h: number, w: number) => Record<string, number[]>): string {
  let best = 'none';
  for (let w = width; w >= 64; w -= 64) {
    const h = Math.floor((w * height) / width / 64) * 64;
    if (h < 64) break;
    if (tensorSizes(graph, dimsAt(h / 8, w / 8)).tensors[0].bytes <= limit) {
      best = `${w}x${h}`;
      break;
    }
  }
  return best;
}

const target = 'webgpu';
const unet = defineUnetGraph(parseUnetConfig(configs.unet), dryWeights(), { dtype, target });
const latent = [height / 8, width / 8];
const unetDims = (batch: number, f: number, lat = latent) => ({
  sample: [batch, f, 8, ...lat],
  timestep: [],
  encoder_hidden_states: [batch, 1, configs.unet.cross_attention_dim as number],
  added_time_ids: [batch, 3],
});
const unetGraph = dryGraph(unet.g);
console.log(`${o.model} at ${width}x${height}, ${frames} frames, ${dtype}, target ${target}`);
report('UNet, CFG batch joint (2 videos)', unetGraph, unetDims(2, frames));
report('UNet, CFG batch split (1 video)', unetGraph, unetDims(1, frames));
report(
  'UNet, 1 video of 1 frame (what a per-frame split of the spatial layers would reach)',
  unetGraph,
  unetDims(1, 1),
);

const vae = new GraphBuilder({ name: 'vae_decoder', dtype, weights: dryWeights(), target, opsets: {} });
defineVaeDecoder(vae, parseVaeConfig(configs.vae), defaultAttention(target));
const decoder = dryGraph(vae);
for (const chunk of [frames, 1]) report(`VAE decoder, chunk of ${chunk}`, decoder, { latent: [chunk, 4, ...latent] });

console.log(`\nlargest size (this aspect ratio) whose tensors all fit ${MiB(limit)}:`);
for (const batch of [2, 1]) {
  const fit = largestFitting(unetGraph, (h, w) => unetDims(batch, frames, [h, w]));
  console.log(`  UNet, ${frames} frames, ${batch === 2 ? 'CFG batch joint' : 'CFG batch split'}: ${fit}`);
}
console.log(`  VAE decoder, chunk of 1: ${largestFitting(decoder, (h, w) => ({ latent: [1, 4, h, w] }))}`);
