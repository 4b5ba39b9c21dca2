/**
 * What building either half of the VAE shares: the component's config and weights, the attention choice of the
 * target, one GraphBuilder, and the weights of the other half left out of "unused".
 */
import {
  attentionOpsets,
  defaultAttention,
  resolveComponent,
  unusedUnder,
  type AttentionChoice,
  type ComponentSource,
  type GraphBuildOptions,
} from '../onnx/build.js';
import { GraphBuilder } from '../onnx/graph.js';
import { saveGraph, type BuildInfo } from '../onnx/save.js';
import { parseVaeConfig, type VaeConfig } from './config.js';

export interface VaePart {
  name: 'vae_encoder' | 'vae_decoder';
  docString: string;
  /** Weight prefixes this half reads (the other half's weights are expected to be unused). */
  prefixes: string[];
  define: (g: GraphBuilder, cfg: VaeConfig, attention: AttentionChoice) => void;
}

/** Builds `<outDir>/<name>.onnx` for one half of the VAE. Throws CheckpointError listing every missing or mis-shaped tensor. */
export function buildVaePart(part: VaePart, source: ComponentSource, options: GraphBuildOptions): BuildInfo {
  const c = resolveComponent(source, 'vae', options.variant);
  const cfg = parseVaeConfig(c.config, c.configPath);
  const attention = options.attention ?? defaultAttention(options.target ?? 'cpu');
  const g = new GraphBuilder({
    name: part.name,
    dtype: options.dtype ?? 'float32',
    weights: c.weights,
    weightStorage: options.weightStorage,
    target: options.target,
    opsets: attentionOpsets(attention),
  });
  part.define(g, cfg, attention);
  const docString = `${part.docString} (target ${options.target ?? 'cpu'})`;
  const info = saveGraph(g, options.outDir, options.fileName ?? `${part.name}.onnx`, { docString });
  return { ...info, unusedWeights: unusedUnder(info.unusedWeights, part.prefixes) };
}
