/**
 * `svd models inspect`: compares a diffusers checkpoint's tensors with what the graph builder will ask
 * for under its configs — missing, mis-shaped and unexpected tensors, per component. The build runs the
 * same check first and refuses a checkpoint with missing or mis-shaped tensors, listing each one.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../errors.js';
import { clipImageEncoderWeights } from '../encoders/clipGraph.js';
import { dryWeights, type WeightRequest } from '../onnx/weights.js';
import { openCheckpoint } from '../safetensors/reader.js';
import { defineUnetGraph } from '../unet/build.js';
import { parseUnetConfig } from '../unet/config.js';
import { vaeDecoderWeights } from '../vae/decoderGraph.js';
import { vaeEncoderWeights } from '../vae/encoderGraph.js';
import { readDiffusersConfigs } from './diffusersConfig.js';

export interface ComponentReport {
  component: 'image_encoder' | 'vae' | 'unet';
  files: string[];
  expected: number;
  missing: string[];
  misshaped: string[];
  /** In the checkpoint but never read by the graph (informational: extra tensors do not stop a build). */
  unexpected: string[];
}

export interface InspectReport {
  checkpoint: string;
  components: ComponentReport[];
  ok: boolean;
}

/** Shapes equal up to size-1 axes (a 1×1 conv kernel stored as a matrix, say). */
function sameShape(a: number[], b: number[]): boolean {
  const sa = a.filter((d) => d !== 1);
  const sb = b.filter((d) => d !== 1);
  return sa.length === sb.length && sa.every((d, i) => d === sb[i]);
}

function compare(
  component: ComponentReport['component'],
  dir: string,
  requests: WeightRequest[],
  ignored: Set<string>,
  variant?: string,
): ComponentReport {
  const ckpt = openCheckpoint(dir, variant ? { variant } : {});
  const wanted = new Map(requests.map((r) => [r.name, r.shape]));
  const missing: string[] = [];
  const misshaped: string[] = [];
  for (const [name, shape] of wanted) {
    const info = ckpt.tensors.get(name);
    if (!info) missing.push(`${name} [${shape.join(',')}]`);
    else if (!sameShape(info.shape, shape))
      misshaped.push(`${name}: expected [${shape.join(',')}], found [${info.shape.join(',')}]`);
  }
  const unexpected = [...ckpt.tensors.keys()].filter(
    (n) => !wanted.has(n) && !ignored.has(n) && !n.endsWith('position_ids'),
  );
  return { component, files: ckpt.files, expected: wanted.size, missing, misshaped, unexpected };
}

/** `skipUnet`: the UNet comes from elsewhere (a MotionCtrl `.ckpt`), so `unet/` needs only its config.json. */
export function inspectCheckpoint(
  checkpoint: string,
  options: { variant?: string; skipUnet?: boolean } = {},
): InspectReport {
  const c = readDiffusersConfigs(checkpoint);
  const unet = defineUnetGraph(parseUnetConfig(c.unet, join(checkpoint, 'unet', 'config.json')), dryWeights(), {
    dtype: 'float32',
    target: 'cpu',
  });
  const vaeRequests = [...vaeEncoderWeights(c.vae), ...vaeDecoderWeights(c.vae)];
  const vaeWanted = new Set(vaeRequests.map((r) => r.name));
  // diffusers' temporal decoder builds its mid-block attention but applies it only with layers_per_block ≥ 2.
  const vaeKnownUnused = new Set(
    openCheckpointNames(join(checkpoint, 'vae'), options.variant).filter(
      (n) => n.startsWith('decoder.mid_block.attentions.') && !vaeWanted.has(n),
    ),
  );
  const components = [
    compare(
      'image_encoder',
      join(checkpoint, 'image_encoder'),
      clipImageEncoderWeights(c.imageEncoder),
      new Set(),
      options.variant,
    ),
    compare('vae', join(checkpoint, 'vae'), vaeRequests, vaeKnownUnused, options.variant),
    ...(options.skipUnet
      ? []
      : [compare('unet', join(checkpoint, 'unet'), unet.g.requests, new Set(unet.skipped), options.variant)]),
  ];
  return { checkpoint, components, ok: components.every((r) => r.missing.length === 0 && r.misshaped.length === 0) };
}

function openCheckpointNames(dir: string, variant?: string): string[] {
  if (!existsSync(dir)) return [];
  return [...openCheckpoint(dir, variant ? { variant } : {}).tensors.keys()];
}

/** Human-readable lines of a report. */
export function formatInspectReport(r: InspectReport): string[] {
  const lines: string[] = [];
  for (const c of r.components) {
    const status = c.missing.length || c.misshaped.length ? 'PROBLEMS' : 'ok';
    lines.push(`${c.component}: ${status} (${c.expected} tensors expected; files: ${c.files.join(', ')})`);
    for (const m of c.missing) lines.push(`  missing: ${c.component}/${m}`);
    for (const m of c.misshaped) lines.push(`  mis-shaped: ${c.component}/${m}`);
    for (const m of c.unexpected) lines.push(`  unexpected (ignored): ${c.component}/${m}`);
  }
  return lines;
}

/** Throws one CheckpointError listing every missing and mis-shaped tensor of every component. */
export function assertCheckpointUsable(r: InspectReport): void {
  if (r.ok) return;
  const problems = r.components.flatMap((c) => [
    ...c.missing.map((m) => `missing: ${c.component}/${m}`),
    ...c.misshaped.map((m) => `mis-shaped: ${c.component}/${m}`),
  ]);
  throw new CheckpointError(
    r.checkpoint,
    `checkpoint does not match its configs (${problems.length} problems)`,
    problems,
  );
}
