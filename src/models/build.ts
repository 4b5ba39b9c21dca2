/**
 * `svd models build`: a diffusers checkpoint → a model directory (four graphs + model.json). The graphs
 * reference the checkpoint's own safetensors bytes (hard links under `weights/`, see src/onnx/save.ts),
 * so a build takes seconds and no extra disk. The checkpoint is inspected first and refused as a whole
 * when a tensor is missing or mis-shaped.
 */
import { writeFileSync } from 'node:fs';
import { writeDirectoryAtomically } from '../io/stagingDir.js';
import { preferredWeightVariant } from '../safetensors/reader.js';
import { join, relative, resolve } from 'node:path';
import { buildClipImageEncoderGraph } from '../encoders/clipGraph.js';
import { defaultAttention, type AttentionChoice } from '../onnx/build.js';
import { defaultWeightStorage, type GraphTarget, type WeightStorage } from '../onnx/graph.js';
import type { BuildInfo } from '../onnx/save.js';
import { buildSgmUnetGraph, openSgmCheckpoint } from '../camera/checkpoint.js';
import { variantDefaultOverrides } from './variants.js';
import { buildUnetGraph, type UnetBuildResult } from '../unet/build.js';
import type { TemporalContextOrder } from '../unet/context.js';
import { buildVaeDecoderGraph } from '../vae/decoderGraph.js';
import { buildVaeEncoderGraph } from '../vae/encoderGraph.js';
import { manifestFromConfigs, readDiffusersConfigs } from './diffusersConfig.js';
import { assertCheckpointUsable, inspectCheckpoint } from './inspect.js';
import { MANIFEST_FILE, manifestSchema, type ModelManifest } from './manifest.js';
import type { FloatDtype } from '../tensor/float16.js';

/** Bumped whenever graph building changes what it writes; part of the build-cache key. */
// 3: MultiHeadAttention on the CPU target (linear-memory attention)
// 4: CPU/CUDA weights converted and MatMul weights transposed at build time (weightStorage 'convert')
// 5: feed-forwards in token chunks with 'chunked' attention (the WebGPU target), within the same byte budget
// 6: WebGPU graphs store weights with 'convert' too
export const BUILDER_VERSION = '6';

export interface BuildModelOptions {
  checkpoint: string;
  outDir: string;
  dtype?: FloatDtype;
  target?: GraphTarget;
  /** Weight file variant ('fp16' → `*.fp16.safetensors`); default: fp16 files for fp16 builds when present, else the plain ones. */
  variant?: string;
  /** Manifest name of the variant (svd, svd-xt, ...); default: guessed from the configs. */
  modelVariant?: string;
  /**
   * The temporal transformer's cross-attention context: 'per-video' (default; sgm, docs/pipeline.md §7.6, diffusers ≥ 0.28) or
   * 'diffusers-0.27', which reproduces that release's pixel-interleaved layout (our reference run was made with it).
   */
  temporalContextOrder?: TemporalContextOrder;
  /**
   * How weights reach the graphs: 'convert' (the default: converted to `dtype` and, for MatMul, transposed once
   * into each graph's `.data` file, so a session holds each weight once; bench/RESULTS.md §7) or 'reference'
   * (Cast/Transpose nodes over the checkpoint's own bytes: no extra disk, but onnxruntime folds them into copies).
   */
  weightStorage?: WeightStorage;
  /**
   * The UNet from an sgm-layout checkpoint instead of `unet/*.safetensors` (MotionCtrl-SVD's `motionctrl_svd.ckpt`,
   * docs/camera-motion.md); `unet/config.json` of `checkpoint` still gives its shape. A checkpoint with MotionCtrl's
   * camera module gives a UNet with the `camera_pose` input.
   */
  unetCheckpoint?: string;
  /** Generation defaults over the configs' (default: the variant's own, e.g. MotionCtrl's fps 10 and guidance 1→2.5). */
  defaults?: Partial<ModelManifest['defaults']>;
  /** Attention formulation of the UNet and VAE graphs; default `defaultAttention(target)` (src/onnx/build.ts). */
  attention?: AttentionChoice;
  log?: (message: string) => void;
}

export interface BuildModelResult {
  manifest: ModelManifest;
  graphs: Record<'imageEncoder' | 'vaeEncoder' | 'vaeDecoder', BuildInfo> & { unet: UnetBuildResult };
  ms: number;
}

/** The safetensors variant to read: explicit, else as `preferredWeightVariant` decides for the components read. */
export function chooseWeightVariant(
  checkpoint: string,
  dtype: FloatDtype,
  explicit?: string,
  components = ['unet', 'vae', 'image_encoder'],
): string | undefined {
  return (
    explicit ??
    preferredWeightVariant(
      components.map((c) => join(checkpoint, c)),
      dtype,
    )
  );
}

export async function buildModel(o: BuildModelOptions): Promise<BuildModelResult> {
  const t0 = performance.now();
  const checkpoint = resolve(o.checkpoint);
  const outDir = resolve(o.outDir);
  const dtype = o.dtype ?? 'float32';
  const target = o.target ?? 'cpu';
  const weightStorage = o.weightStorage ?? defaultWeightStorage(target);
  const log = o.log ?? (() => {});
  const configs = readDiffusersConfigs(checkpoint);
  const unetCheckpoint = o.unetCheckpoint === undefined ? undefined : resolve(o.unetCheckpoint);
  const variant = chooseWeightVariant(
    checkpoint,
    dtype,
    o.variant,
    unetCheckpoint ? ['vae', 'image_encoder'] : undefined,
  );
  assertCheckpointUsable(inspectCheckpoint(checkpoint, { variant, skipUnet: unetCheckpoint !== undefined }));
  // open (and vet) the sgm checkpoint before any graph is written
  const sgmUnet = unetCheckpoint ? openSgmCheckpoint(unetCheckpoint) : undefined;

  const built = writeDirectoryAtomically(outDir, (staging) => {
    const common = {
      outDir: staging,
      dtype,
      target,
      variant,
      ...(o.attention ? { attention: o.attention } : {}),
      weightStorage,
    } as const;
    log(`building image encoder (${dtype}, ${target})`);
    const imageEncoder = buildClipImageEncoderGraph(checkpoint, common);
    log('building VAE encoder');
    const vaeEncoder = buildVaeEncoderGraph(checkpoint, common);
    log('building VAE temporal decoder');
    const vaeDecoder = buildVaeDecoderGraph(checkpoint, common);
    log('building UNet');
    const temporalContextOrder = o.temporalContextOrder ?? 'per-video';
    const unet = sgmUnet
      ? buildSgmUnetGraph(sgmUnet, configs.unet, { ...common, variant: undefined, temporalContextOrder })
      : buildUnetGraph(checkpoint, { ...common, temporalContextOrder });
    const fromConfigs = manifestFromConfigs(configs, {
      variant: o.modelVariant,
      source: {
        checkpoint,
        builder: 'svd-runtime',
        builderVersion: BUILDER_VERSION,
        dtype,
        target,
        weightVariant: variant ?? null,
        weightStorage,
        temporalContextOrder,
        ...(unetCheckpoint ? { unetCheckpoint } : {}),
        attention: (o.attention ?? defaultAttention(target)).impl,
        // what the memory estimate (src/models/memory.ts) needs without opening the graphs
        computeWeightBytes: {
          imageEncoder: imageEncoder.computeWeightBytes,
          vaeEncoder: vaeEncoder.computeWeightBytes,
          vaeDecoder: vaeDecoder.computeWeightBytes,
          unet: unet.computeWeightBytes,
        },
        unetBlockOutChannels: configs.unet.block_out_channels,
        unetAttentionHeads: configs.unet.num_attention_heads,
        vaeBlockOutChannels: configs.vae.block_out_channels,
      },
    });
    const manifest = manifestSchema.parse({
      ...fromConfigs,
      unet: { ...fromConfigs.unet, cameraPoseDim: unet.cameraPoseDim },
      defaults: { ...fromConfigs.defaults, ...(o.defaults ?? variantDefaultOverrides(o.modelVariant)) },
    });
    writeFileSync(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return { staging, manifest, graphs: { imageEncoder, vaeEncoder, unet, vaeDecoder } };
  });
  // the graphs were written into the staging directory: report where they are now
  const moved = <T extends { path: string }>(info: T): T => ({
    ...info,
    path: join(outDir, relative(built.staging, info.path)),
  });
  const { imageEncoder, vaeEncoder, unet, vaeDecoder } = built.graphs;
  const graphs = {
    imageEncoder: moved(imageEncoder),
    vaeEncoder: moved(vaeEncoder),
    unet: moved(unet),
    vaeDecoder: moved(vaeDecoder),
  };
  return { manifest: built.manifest, graphs, ms: performance.now() - t0 };
}
