/**
 * `svd models import-onnx`: turns ONNX files exported the way `torch.onnx.export` exported the reference
 * (one file per component, described by `onnx_index.json`) plus the checkpoint's diffusers configs into a
 * model directory. Traced exports may bake the decoder's frame count into the graph even where the axis
 * is declared dynamic; the importer finds out by running the decoder and records it in the manifest.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ModelFormatError, ModelNotFoundError } from '../errors.js';
import { InProcessOrtHost, type HostedSession, type OrtHost } from '../runtime/ortHost.js';
import { relativeError } from '../tensor/compare.js';
import { float16ToFloat32, float32ToFloat16 } from '../tensor/float16.js';
import { readDiffusersConfigs, manifestFromConfigs } from './diffusersConfig.js';
import { checkGraphContract } from './load.js';
import { GRAPH_ROLES, MANIFEST_FILE, manifestSchema, type GraphRole, type ModelManifest } from './manifest.js';
import { writeDirectoryAtomically } from '../io/stagingDir.js';

/** `onnx_index.json` keys for each role, as the reference export writes them. */
const INDEX_KEYS: Record<GraphRole, string> = {
  imageEncoder: 'image_encoder',
  vaeEncoder: 'vae_encoder',
  unet: 'unet',
  vaeDecoder: 'vae_decoder',
};

export interface ImportOptions {
  onnxDir: string;
  configDir: string;
  outDir: string;
  variant?: string;
  width?: number;
  height?: number;
  host?: OrtHost;
  log?: (message: string) => void;
}

export async function importOnnx(options: ImportOptions): Promise<ModelManifest> {
  const onnxDir = resolve(options.onnxDir);
  const outDir = resolve(options.outDir);
  const log = options.log ?? (() => {});
  if (!existsSync(onnxDir) || !statSync(onnxDir).isDirectory())
    throw new ModelNotFoundError(onnxDir, 'ONNX directory not found');
  const index = readIndex(onnxDir);
  const configs = readDiffusersConfigs(resolve(options.configDir));

  const files = {} as Record<GraphRole, string>;
  for (const role of GRAPH_ROLES) {
    const file = index?.[INDEX_KEYS[role]]?.file ?? `${INDEX_KEYS[role]}.onnx`;
    if (!existsSync(join(onnxDir, file))) throw new ModelNotFoundError(join(onnxDir, file), `missing ${role} graph`);
    files[role] = file;
  }

  const host = options.host ?? new InProcessOrtHost();
  const sessions: Partial<Record<GraphRole, HostedSession>> = {};
  let decoderFixedFrames: number | null = null;
  try {
    for (const role of GRAPH_ROLES) {
      const session = await host.createSession({ path: join(onnxDir, files[role]), executionProviders: ['cpu'] });
      sessions[role] = session;
      checkGraphContract(role, session);
    }
    const traced = index?.vae_decoder?.inputs?.latent?.shape as number[] | undefined;
    decoderFixedFrames = await probeDecoderFrames(sessions.vaeDecoder!, configs.vae.latent_channels ?? 4, traced);
    if (decoderFixedFrames)
      log(
        `vae decoder accepts exactly ${decoderFixedFrames} frames per call (traced export); recorded in ${MANIFEST_FILE}`,
      );
  } finally {
    for (const s of Object.values(sessions)) await s?.release();
    if (!options.host) await host.close();
  }

  const manifest = manifestSchema.parse(
    manifestFromConfigs(configs, {
      variant: options.variant,
      width: options.width,
      height: options.height,
      decoderFixedFrames,
      decodeChunkSize: decoderFixedFrames ?? undefined,
      files,
      source: { importedFrom: onnxDir, configFrom: resolve(options.configDir), importer: 'svd models import-onnx' },
    }),
  );

  // An interrupted import never leaves a half model directory.
  writeDirectoryAtomically(outDir, (staging) => {
    for (const name of readdirSync(onnxDir)) {
      const src = join(onnxDir, name);
      if (name === 'onnx_index.json' || !statSync(src).isFile()) continue;
      copyFileSync(src, join(staging, basename(name)));
    }
    writeFileSync(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  });
  log(`model directory written: ${outDir}`);
  return manifest;
}

function readIndex(onnxDir: string): Record<string, any> | undefined {
  const path = join(onnxDir, 'onnx_index.json');
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelFormatError(path, `not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Returns the frame count a traced decoder is limited to, or null when it takes any count. A traced
 * export may run on other counts yet still treat the input as videos of the traced length (the count is
 * baked into reshapes), so running is not proof: decode a chunk of the traced length t and the same
 * chunk twice over (2t frames). A decoder that sees 2t frames as one video mixes across the seam and
 * differs; one that splits them into videos of t frames returns the first result twice.
 */
async function probeDecoderFrames(
  session: HostedSession,
  channels: number,
  traced: number[] | undefined,
): Promise<number | null> {
  const t = traced?.[0] ?? 2;
  const sizes: Array<[number, number]> = [[8, 8]];
  if (traced && traced.length === 4) sizes.push([traced[2], traced[3]]);
  const half = session.inputs[0].type === 'float16';
  for (const [h, w] of sizes) {
    const per = channels * h * w;
    const latent = new Float32Array(2 * t * per);
    for (let i = 0; i < t * per; i++) latent[i] = latent[i + t * per] = Math.sin(i * 12.9898) * 0.8;
    const decode = async (n: number): Promise<Float32Array | undefined> => {
      const data = latent.subarray(0, n * per);
      try {
        const out = await session.run({
          latent: half
            ? { type: 'float16', data: float32ToFloat16(data), dims: [n, channels, h, w] }
            : { type: 'float32', data: data.slice(), dims: [n, channels, h, w] },
        });
        const frames = Object.values(out)[0];
        return frames.type === 'float16' ? float16ToFloat32(frames.data as Uint16Array) : (frames.data as Float32Array);
      } catch {
        return undefined;
      }
    };
    const single = await decode(t);
    if (!single) continue;
    const double = await decode(2 * t);
    if (!double) return t;
    const first = relativeError(double.subarray(0, single.length), single);
    const second = relativeError(double.subarray(single.length), single);
    return first < 1e-5 && second < 1e-5 ? t : null;
  }
  throw new ModelFormatError(session.path, `the VAE decoder did not run on a test latent of ${t} frames`);
}
